/**
 * An MCP session signed in by `OAuthLayer` (through `McpClient`'s `auth: { oauth }`) against an
 * OAuth-protected MCP server on loopback: the token expiring in the middle of the session is
 * refreshed, and a token revoked mid-session is replaced after the server's 401 — the session
 * goes on either way.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../../src/Authorizer.js"
import { AuthorizationError } from "../../src/Errors.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpTransportError } from "../../src/mcp/McpErrors.js"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore
} from "../../src/server/index.js"
import * as TestStorage from "../../src/TestStorage.js"
import { remoteAuthFor } from "../fixtures/remoteProtected.js"

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

/** An authorization server and an MCP server (tool `whoami`, which echoes the token it saw) that trusts it. */
const startServers = (
  accessTokenTtl: Duration.DurationInput,
  options: { readonly consent?: Consent.ConsentStep; readonly path?: string; readonly slowTool?: boolean } = {}
) =>
  Effect.gen(function*() {
    const asServer = yield* listen
    const provider = yield* OAuthProvider.make({
      issuer: HttpServer.formatAddress(asServer.address),
      scopesSupported: ["tools"],
      accessTokenTtl,
      ...(options.consent === undefined ? {} : { consent: options.consent })
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    yield* asServer.serve(provider.router)
    const mcpServer = yield* listen
    const auth = remoteAuthFor(mcpServer, provider)
    const endpoint = McpEndpoint.make({
      name: "session-test",
      tools: [
        McpEndpoint.tool({
          name: "whoami",
          parameters: Schema.Struct({}),
          handler: () => Effect.map(BearerAuth.AuthenticatedToken, (t) => `${t.subject}:${Redacted.value(t.token)}`)
        }),
        ...(options.slowTool === true
          ? [McpEndpoint.tool({
            name: "slow",
            parameters: Schema.Struct({}),
            handler: () => Effect.as(Effect.sleep("6 seconds"), "late")
          })]
          : [])
      ]
    })
    const path = options.path ?? "/mcp"
    yield* mcpServer.serve(AuthProvider.protect(auth, path, endpoint))
    return { provider, mcpUrl: auth.resourceUrl(path) }
  })

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): string => {
  const first = result.content[0]
  return typeof first === "object" && first !== null && "text" in first && typeof first.text === "string"
    ? first.text
    : ""
}

const clientDeps = Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

describe("an MCP session with OAuthLayer", () => {
  it.scopedLive("a token that expires mid-session is refreshed and the session goes on", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServers("2 seconds")
      const client = yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } })
      const first = textOf(yield* client.callTool("whoami"))
      expect(first.startsWith("test-user:")).toBe(true)
      // Past 1.5 s of the 2 s lifetime: inside the refresh margin (a quarter of a lifetime this short).
      yield* Effect.sleep("1600 millis")
      const second = textOf(yield* client.callTool("whoami"))
      expect(second.startsWith("test-user:")).toBe(true)
      expect(second).not.toBe(first) // a new access token, in the same session
      const stored = yield* TestStorage.tokens
      expect([...stored.values()].map((t) => t.refreshToken !== undefined)).toEqual([true])
    }).pipe(Effect.provide(clientDeps)))

  it.scopedLive("a token revoked mid-session: the server's 401 leads to a refresh, and the call is retried once", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* startServers("1 hour")
      const client = yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } })
      const first = textOf(yield* client.callTool("whoami"))
      const token = first.slice("test-user:".length)
      yield* provider.revokeToken(token)
      const second = textOf(yield* client.callTool("whoami"))
      expect(second.startsWith("test-user:")).toBe(true)
      expect(second).not.toBe(first)
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["whoami"])
    }).pipe(Effect.provide(clientDeps)))

  it.scopedLive("a denied sign-in fails the MCP call with the typed AuthorizationError (Denied), not a closed transport", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServers("1 hour", { consent: Consent.autoDeny() })
      const error = yield* Effect.flip(McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } }))
      expect(error).toBeInstanceOf(AuthorizationError)
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Denied")
      expect(error._tag === "AuthorizationError" && error.error).toBe("access_denied")
      // the helper finds it whatever wraps it
      expect(Option.getOrNull(McpClient.oauthCause(error))).toBe(error)
      const wrapped = new McpTransportError({ reason: "Authorization", description: "wrapped", cause: error })
      expect(Option.getOrNull(McpClient.oauthCause(wrapped))).toBe(error)
      expect(Option.isNone(McpClient.oauthCause(new McpTransportError({ reason: "Closed", description: "x" })))).toBe(
        true
      )
    }).pipe(Effect.provide(clientDeps)))

  it.scopedLive("a denied sign-in while a legacy SSE transport connects: the same typed AuthorizationError", () =>
    Effect.gen(function*() {
      // the bearer guard answers the GET /sse with 401 before any MCP traffic: only the sign-in matters
      const { mcpUrl } = yield* startServers("1 hour", { consent: Consent.autoDeny(), path: "/sse" })
      const error = yield* Effect.flip(McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } }))
      expect(error).toBeInstanceOf(AuthorizationError)
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Denied")
    }).pipe(Effect.provide(clientDeps)))

  /** A browser whose user takes `delay` to approve: it then follows the authorization URL to the callback. */
  const slowUser = (delay: Duration.DurationInput) =>
    Layer.succeed(Authorizer.BrowserOpener, {
      open: (url) =>
        Effect.asVoid(Effect.forkDaemon(Effect.zipRight(
          Effect.sleep(delay),
          Effect.promise(() => fetch(url, { redirect: "follow" }).then((r) => r.text()))
        )))
    })

  /** A user who never comes back. */
  const absentUser = Layer.succeed(Authorizer.BrowserOpener, { open: () => Effect.void })

  const browserDeps = (signInTimeout: Duration.DurationInput, opener: Layer.Layer<Authorizer.BrowserOpener>) =>
    Layer.mergeAll(
      TestStorage.layer(),
      // no pre-flight GET: these tests are about timing
      Authorizer.layerBrowser({ timeout: signInTimeout, preflight: false }).pipe(Layer.provide(opener))
    ).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))

  it.scopedLive("a sign-in that outlasts the MCP request timeout still completes: the timeout bounds the server's answer", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServers("1 hour", { slowTool: true })
      const client = yield* McpClient.connect(new URL(mcpUrl), {
        auth: { oauth: { scopes: ["tools"] } },
        requestTimeout: "2 seconds"
      })
      const text = textOf(yield* client.callTool("whoami"))
      expect(text.startsWith("test-user:")).toBe(true)
      // the request timeout still bounds the server's answer
      const late = yield* Effect.flip(client.callTool("slow"))
      expect(late._tag === "McpTransportError" && late.reason).toBe("Timeout")
    }).pipe(Effect.provide(browserDeps("30 seconds", slowUser("4 seconds")))))

  it.scopedLive("a sign-in past the sign-in timeout fails with AuthorizationError Timeout, not an MCP request timeout", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServers("1 hour")
      const started = Date.now()
      const error = yield* Effect.flip(McpClient.connect(new URL(mcpUrl), {
        auth: { oauth: { scopes: ["tools"] } },
        requestTimeout: "1 second"
      }))
      expect(error).toBeInstanceOf(AuthorizationError)
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Timeout")
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000)
    }).pipe(Effect.provide(browserDeps("2 seconds", absentUser))))
})
