/**
 * `makeOAuthFetch` under the official MCP SDK: `Client` + `StreamableHTTPClientTransport({ fetch })`
 * against an OAuth-protected SDK server on loopback — sign-in (headless), 200 concurrent calls
 * with an expired token (exactly one refresh, counted at the authorization server), and a
 * step-up on 403 `insufficient_scope` that the call survives. Then against oidc-provider (an
 * independent authorization server), with and without DPoP: a sign-in through its forms, and a
 * second bridge on the same directory that needs none.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import { makeOAuthFetch, type OAuthFetchOptions } from "../../src/fetch/index.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { httpUser, startInterop } from "../interop/oidcProvider.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-fetch-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

const textOf = (result: unknown): string => {
  const content = (result as { content: Array<{ type: string; text?: string }> }).content
  return content.map((c) => c.text ?? "").join("")
}

/** The SDK client on `makeOAuthFetch`, closed (client, then the fetch's runtime) with the scope. */
const connect = (mcpUrl: string, dir: string, options: Partial<OAuthFetchOptions> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const oauth = makeOAuthFetch({ ...options, mcpUrl, dir, signIn: "headless" })
      const client = new Client({ name: "sdk-on-oauth-fetch", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: oauth.fetch }))
      return { client, oauth }
    }),
    ({ client, oauth }) => Effect.promise(async () => {
      await client.close()
      await oauth.close()
    })
  )

const storedScopes = (dir: string, mcpUrl: string) =>
  Effect.flatMap(TokenStorage.TokenStorage, (s) => s.getTokens(TokenStorage.serverKey(mcpUrl))).pipe(
    Effect.map(Option.map((t) => t.scopes)),
    Effect.provide(TokenStorage.layerFileSystemNode(dir))
  )

describe("makeOAuthFetch: the official SDK client signed in by this library", () => {
  it.scopedLive("signs in once (headless), then 200 concurrent calls with an expired token refresh exactly once", () =>
    Effect.gen(function*() {
      // Tokens live 2 s (due for refresh after 1.5 s: the margin is a quarter of a lifetime this short).
      const server = yield* startProtectedMcpServer({ accessTokenTtl: Duration.seconds(2) })
      const dir = yield* tempDir
      const { client } = yield* connect(server.mcpUrl, dir)

      expect(client.getServerVersion()?.name).toBe("fixture-server")
      const tools = yield* Effect.promise(() => client.listTools())
      expect(tools.tools.map((t) => t.name)).toContain("add")
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 2, b: 40 } })))).toBe("42")
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })

      // From now on tokens live an hour; wait until every token issued so far has expired.
      yield* server.setAccessTokenTtl(Duration.hours(1))
      yield* Effect.sleep("2500 millis")
      yield* server.resetCounts
      const results = yield* Effect.promise(() =>
        Promise.all(
          Array.from({ length: 200 }, (_, i) => client.callTool({ name: "add", arguments: { a: i, b: 1 } }))
        )
      )
      expect(results.map(textOf)).toEqual(Array.from({ length: 200 }, (_, i) => String(i + 1)))
      expect(yield* server.counts).toEqual({ register: 0, authorize: 0, tokenCode: 0, tokenRefresh: 1 })
    }))

  it.scopedLive("a 403 insufficient_scope re-authorizes with the union of scopes and the call succeeds", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      // The embedded AS grants only scopes within the registered `scope`: the step-up widens the
      // registration (RFC 7592) before it asks for the union.
      const { client } = yield* connect(server.mcpUrl, dir, {})
      const before = Option.getOrElse(yield* storedScopes(dir, server.mcpUrl), () => [])
      expect(before).toContain("mcp")
      expect(before).not.toContain("admin")

      server.toolScopes.set("echo", ["admin"])
      const answer = yield* Effect.promise(() => client.callTool({ name: "echo", arguments: { message: "hi" } }))
      expect(textOf(answer)).toBe("echo: hi")
      expect((yield* server.counts).authorize).toBe(2)
      const scopes = Option.getOrElse(yield* storedScopes(dir, server.mcpUrl), () => [])
      expect(scopes).toEqual(expect.arrayContaining(["admin", "mcp"]))
    }))
})

describe("makeOAuthFetch against oidc-provider (an independent authorization server)", () => {
  for (const dpop of [false, true]) {
    it.scopedLive(`the SDK client on the fetch bridge signs in through oidc-provider's forms; a second bridge on the same directory needs no sign-in${dpop ? " (DPoP)" : ""}`, () =>
      Effect.gen(function*() {
        const interop = yield* startInterop({ dpop })
        const dir = yield* tempDir
        const opened: Array<string> = []
        const user = httpUser(interop.as.issuer, { opened })
        const authorizer = Authorizer.layerBrowser({ timeout: "15 seconds" }).pipe(
          Layer.provide(Layer.succeed(Authorizer.BrowserOpener, user))
        )
        const whoami = (client: Client) =>
          Effect.map(Effect.promise(() => client.callTool({ name: "whoami", arguments: {} })), textOf)
        const first = yield* Effect.scoped(Effect.flatMap(connect(interop.mcp.url, dir, { authorizer }), ({ client }) => whoami(client)))
        const signedIn = structuredClone(interop.as.counts)
        const second = yield* Effect.scoped(Effect.flatMap(connect(interop.mcp.url, dir, { authorizer }), ({ client }) => whoami(client)))
        expect(JSON.parse(second)).toMatchObject({ sub: "alice" })
        expect(second).toBe(first)
        expect(opened).toHaveLength(1)
        expect(signedIn.codesIssued).toBe(1)
        expect(interop.as.counts).toEqual(signedIn)
        if (dpop) expect(interop.mcp.counts.dpopBound).toBeGreaterThanOrEqual(4)
      }))
  }
})

