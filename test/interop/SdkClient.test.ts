/**
 * Our server pieces against an INDEPENDENT client: the official `@modelcontextprotocol/sdk`
 * `Client` over `StreamableHTTPClientTransport` with an `OAuthClientProvider`. The provider below
 * completes the authorization headlessly (GET the authorization URL without following redirects,
 * read the code from `Location`), which our OAuthProvider allows with `Consent.autoApprove`.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Option, Schema } from "effect"
import { createServer } from "node:http"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import * as Consent from "../../src/server/Consent.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import * as RemoteAuthProvider from "../../src/server/RemoteAuthProvider.js"
import * as TokenVerifier from "../../src/server/TokenVerifier.js"
import { connectSdkClient, SdkOAuthProvider } from "../fixtures/SdkOAuthClient.js"
import { postForm } from "../server/http.js"

/**
 * The SDK's provider, with the headless user agent (`codeFromRedirect`), and a `fetch` for the
 * transport that notes when a GET of the MCP endpoint was answered and what errors the token
 * endpoint answered.
 */
class HeadlessProvider extends SdkOAuthProvider {
  private answerGet: () => void = () => {}
  /** Settles once a GET of the MCP endpoint has been answered. */
  readonly getAnswered = new Promise<void>((resolve) => {
    this.answerGet = resolve
  })
  /** Error answers of the token endpoint the SDK met: status and `WWW-Authenticate`. */
  readonly tokenErrors: Array<{ readonly status: number; readonly challenge: string | null }> = []
  /** The fetch given to the transport: plain fetch, noting when a GET has been answered. */
  readonly fetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(url, init)
    const path = new URL(url).pathname
    if (init?.method === "GET" && path === "/mcp") this.answerGet()
    if (path === "/token" && !response.ok) {
      this.tokenErrors.push({ status: response.status, challenge: response.headers.get("www-authenticate") })
    }
    return response
  }
}

const tools = [
  McpEndpoint.tool({
    name: "add",
    description: "Adds two numbers",
    parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    handler: ({ a, b }) => Effect.succeed(String(a + b))
  }),
  McpEndpoint.tool({
    name: "whoami",
    parameters: Schema.Struct({}),
    handler: () =>
      Effect.map(BearerAuth.AuthenticatedToken, (t) => ({ subject: t.subject, scopes: t.scopes, resource: t.resource }))
  }),
  McpEndpoint.tool({
    name: "time",
    parameters: Schema.Struct({}),
    handler: () => Effect.map(Clock.currentTimeMillis, (now) => new Date(now).toISOString())
  })
]
const endpoint = McpEndpoint.make({ name: "interop", version: "1.0.0", tools })

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

const makeProvider = (issuer: string) =>
  OAuthProvider.make({ issuer, scopesSupported: ["mcp"], consent: Consent.autoApprove("sdk-user") }).pipe(
    Effect.provide(OAuthProviderStore.layerMemory)
  )

/** The authorization server and the MCP endpoint on one origin (AuthProvider.fromOAuthProvider). */
const startCombined = Effect.gen(function*() {
  const server = yield* listen
  const base = HttpServer.formatAddress(server.address)
  const provider = yield* makeProvider(base)
  const auth = AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["mcp"] })
  yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  return { provider, mcpUrl: auth.resourceUrl("/mcp") }
}).pipe(Effect.orDie)

/** The authorization server on one origin, the MCP server (RemoteAuthProvider) on another. */
const startSplit = Effect.gen(function*() {
  const asServer = yield* listen
  const provider = yield* makeProvider(HttpServer.formatAddress(asServer.address))
  yield* asServer.serve(provider.router)
  const rsServer = yield* listen
  const auth = RemoteAuthProvider.make(
    {
      baseUrl: HttpServer.formatAddress(rsServer.address),
      authorizationServers: [provider.issuer],
      scopesSupported: ["mcp"],
      requiredScopes: ["mcp"]
    },
    TokenVerifier.make(provider.verifyAccessToken)
  )
  yield* rsServer.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  return { provider, mcpUrl: auth.resourceUrl("/mcp") }
}).pipe(Effect.orDie)

/** Connect as the SDK's own examples do: UnauthorizedError → finishAuth(code) → connect again. */
const connectSdk = (mcpUrl: string, authProvider: HeadlessProvider) =>
  Effect.acquireRelease(
    Effect.promise(() => connectSdkClient(mcpUrl, authProvider, { name: "sdk-interop", fetch: authProvider.fetch })),
    (client) => Effect.promise(() => client.close())
  )

const textOf = (result: unknown): string => {
  const content = (result as { content: Array<{ type: string; text?: string }> }).content
  return content.map((c) => c.text ?? "").join("")
}

describe("the official MCP SDK client against our server", () => {
  for (const [name, start] of [["one origin (fromOAuthProvider)", startCombined], [
    "AS and MCP server apart (RemoteAuthProvider)",
    startSplit
  ]] as const) {
    it.scoped(`${name}: discovers, registers, signs in with PKCE and a resource, calls tools`, () =>
      Effect.gen(function*() {
        const { mcpUrl, provider } = yield* start
        const authProvider = new HeadlessProvider()
        const client = yield* connectSdk(mcpUrl, authProvider)

        expect(client.getServerVersion()).toEqual({ name: "interop", version: "1.0.0" })
        const listed = yield* Effect.promise(() => client.listTools())
        expect(listed.tools.map((t) => t.name)).toEqual(["add", "whoami", "time"])
        expect(listed.tools[0]!.inputSchema).toMatchObject({
          type: "object",
          properties: { a: { type: "number" }, b: { type: "number" } },
          required: ["a", "b"]
        })
        const sum = yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 2, b: 40 } }))
        expect(textOf(sum)).toBe("42")
        const me = yield* Effect.promise(() => client.callTool({ name: "whoami", arguments: {} }))
        expect(JSON.parse(textOf(me))).toEqual({ subject: "sdk-user", scopes: ["mcp"], resource: mcpUrl })
        const bad = yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: "two" } }))
        expect(bad.isError).toBe(true)

        // The SDK registered dynamically, used PKCE S256 and RFC 8707 resource, and the AS knows it.
        const url = authProvider.authorizationUrls[0]!
        expect(url.origin + url.pathname).toBe(provider.endpoints.authorization)
        expect(url.searchParams.get("code_challenge_method")).toBe("S256")
        expect(url.searchParams.get("resource")).toBe(mcpUrl)
        const clientId = authProvider.client?.client_id ?? ""
        expect(Option.isSome(yield* provider.store.getClient(clientId))).toBe(true)
        const token = authProvider.saved?.access_token ?? ""
        const verified = yield* provider.verifyAccessToken(token)
        expect(Option.map(verified, (t) => [t.clientId, t.resource])).toEqual(Option.some([clientId, mcpUrl]))
      }))
  }

  it.scoped("a revoked access token: the SDK refreshes (rotation), and the old refresh token is then refused", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* startCombined
      const authProvider = new HeadlessProvider()
      const client = yield* connectSdk(mcpUrl, authProvider)
      const before = authProvider.saved!
      expect(before.refresh_token).toBeDefined()
      // The SDK opens its standalone GET stream in the background after initializing (405 here).
      // Let it finish first: a GET and a POST that both meet a 401 make this SDK refresh twice at
      // once with the same refresh token, which OAuth 2.1 reuse detection answers by revoking the grant.
      yield* Effect.promise(() => authProvider.getAnswered)
      yield* provider.revokeToken(before.access_token)
      expect(Option.isNone(yield* provider.verifyAccessToken(before.access_token))).toBe(true)

      // The next call gets 401 invalid_token; the SDK refreshes and retries by itself.
      const sum = yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 1, b: 1 } }))
      expect(textOf(sum)).toBe("2")
      const after = authProvider.saved!
      expect(after.access_token).not.toBe(before.access_token)
      expect(after.refresh_token).not.toBe(before.refresh_token)
      expect(authProvider.authorizationUrls).toHaveLength(1) // no second sign-in

      // Presenting the rotated-out refresh token again is reuse: invalid_grant, and the grant is revoked.
      const reuse = yield* postForm(provider.endpoints.token, {
        grant_type: "refresh_token",
        refresh_token: before.refresh_token!,
        client_id: authProvider.client!.client_id
      })
      expect(reuse.status).toBe(400)
      expect(reuse.body["error"]).toBe("invalid_grant")
      expect(Option.isNone(yield* provider.verifyAccessToken(after.access_token))).toBe(true)
    }))

  it.scoped("a client the server forgot: the refresh meets 401 invalid_client with a challenge, the SDK registers and signs in again", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* startCombined
      const authProvider = new HeadlessProvider()
      yield* connectSdk(mcpUrl, authProvider)
      yield* Effect.promise(() => authProvider.getAnswered)
      const forgotten = authProvider.client!.client_id
      // What a server restart on a memory store does to this client: registration and tokens gone.
      yield* provider.store.deleteClient(forgotten)
      yield* provider.revokeToken(authProvider.saved!.refresh_token!)

      const retried = yield* connectSdk(mcpUrl, authProvider)
      const sum = yield* Effect.promise(() => retried.callTool({ name: "add", arguments: { a: 3, b: 4 } }))
      expect(textOf(sum)).toBe("7")
      // RFC 9110 §15.5.2: the 401 carried a challenge although the (public) client sent no Authorization header.
      expect(authProvider.tokenErrors).toEqual([{ status: 401, challenge: `Basic realm="${provider.issuer}", charset="UTF-8"` }])
      expect(authProvider.authorizationUrls).toHaveLength(2)
      const again = authProvider.authorizationUrls[1]!.searchParams.get("client_id")
      expect(again).not.toBe(forgotten)
      expect(again).toBe(authProvider.client!.client_id)
    }))
})
