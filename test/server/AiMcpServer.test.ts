/**
 * `@effect/ai`'s `McpServer` behind `AiMcpServer.layerProtocolHttp`, on a real loopback server
 * with the embedded `OAuthProvider` on the same origin: the library's own `McpClient` signs in
 * (`OAuthLayer`, headless) and calls an `@effect/ai` tool that answers with the subject of the
 * token it was called with; no token is a 401 with the RFC 9728 challenge; concurrent clients of
 * different users each see their own subject; and the same server behind an `OAuthProxy` in front
 * of oidc-provider (no dynamic registration), as the README shows.
 */
import { McpServer, Tool, Toolkit } from "@effect/ai"
import { FetchHttpClient, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../../src/Authorizer.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import {
  AiMcpServer,
  AuthProvider,
  BearerAuth,
  Consent,
  OAuthProvider,
  OAuthProviderStore,
  OAuthProxy
} from "../../src/server/index.js"
import * as TestStorage from "../../src/TestStorage.js"
import { httpUser, startOidcProvider } from "../interop/oidcProvider.js"

const WhoAmI = Tool.make("whoami", {
  description: "Who signed in",
  success: Schema.Struct({ subject: Schema.String, scopes: Schema.Array(Schema.String) })
})
const Tools = Toolkit.make(WhoAmI)
const ToolsLive = Tools.toLayer({
  // The pause lets calls of the other user run in between: each must still read its own token.
  whoami: () =>
    Effect.zipRight(
      Effect.sleep("20 millis"),
      Effect.map(AiMcpServer.accessToken, (token) => ({ subject: token.subject, scopes: token.scopes }))
    )
})

/** A resource whose content is who read it: resource handlers see the request's token too. */
const WhoAmIResource = McpServer.resource({
  uri: "whoami://me",
  name: "me",
  content: Effect.map(AiMcpServer.accessToken, (token) => token.subject)
})

/** A loopback HTTP server on port 0: its platform context and base URL. */
const listen = Effect.gen(function*() {
  const platform = yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  const server = yield* Effect.provide(HttpServer.HttpServer, platform)
  return { platform, baseUrl: HttpServer.formatAddress(server.address) }
})

/** The `@effect/ai` server with its tools, its protocol behind the `AuthProvider` that `auth` builds. */
const aiMcpServer = <E, R>(auth: Layer.Layer<AuthProvider.AuthProvider, E, R>) =>
  Layer.mergeAll(McpServer.toolkit(Tools), WhoAmIResource, HttpRouter.Default.serve()).pipe(
    Layer.provide(ToolsLive),
    Layer.provide(McpServer.layer({ name: "ai-test", version: "1.0.0" })),
    Layer.provide(AiMcpServer.layerProtocolHttp({ path: "/mcp" })),
    Layer.provide(auth)
  )

/**
 * One loopback server: the embedded authorization server (whose consent step signs the user in
 * as the registering client's `client_name`) and the `@effect/ai` MCP server at `/mcp`.
 */
const startServer = Effect.gen(function*() {
  const { baseUrl, platform } = yield* listen
  const provider = yield* OAuthProvider.make({
    issuer: baseUrl,
    scopesSupported: ["tools"],
    consent: (request) =>
      Effect.succeed(Consent.ConsentDecision.Approve({ subject: request.clientName ?? "anonymous" }))
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  yield* Layer.build(
    aiMcpServer(
      Layer.succeed(AuthProvider.AuthProvider, AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["tools"] }))
    ).pipe(Layer.provide(Layer.succeedContext(platform)))
  )
  return { mcpUrl: `${baseUrl}/mcp`, baseUrl, provider }
})

/** A user's own MCP client: its own token storage, a headless sign-in, registered as `name`. */
const connectAs = (mcpUrl: string, name: string) =>
  McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"], clientName: name } } }).pipe(
    Effect.provide(Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()))
  )

// @effect/ai 0.37 requires `arguments` on tools/call (the MCP schema makes it optional):
// McpClient.callTool sends `{}` when it is given none.
const whoami = (client: McpClient.McpClient) =>
  Effect.map(client.callTool("whoami"), (result) => {
    expect(result.isError).not.toBe(true)
    return Schema.decodeUnknownSync(WhoAmI.successSchema)(result.structuredContent)
  })

describe("an @effect/ai McpServer behind AiMcpServer.layerProtocolHttp", () => {
  it.scopedLive("McpClient signs in with OAuthLayer; the @effect/ai tool and resource read the authenticated subject", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServer
      const client = yield* connectAs(mcpUrl, "alice")
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["whoami"])
      expect(yield* whoami(client)).toEqual({ subject: "alice", scopes: ["tools"] })
      const read = yield* client.readResource("whoami://me")
      expect(read.contents).toMatchObject([{ uri: "whoami://me", text: "alice" }])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("no token or an unknown one is a 401 with the RFC 9728 challenge, a token without the scope a 403; the metadata is served", () =>
    Effect.gen(function*() {
      const { baseUrl, mcpUrl, provider } = yield* startServer
      const initialize = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } }
      })
      const post = (headers: Record<string, string>) =>
        Effect.promise(() =>
          fetch(mcpUrl, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
            body: initialize
          })
        )
      const metadataUrl = BearerAuth.resourceMetadataUrl(mcpUrl)

      const anonymous = yield* post({})
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get("www-authenticate")).toBe(`Bearer scope="tools", resource_metadata="${metadataUrl}"`)

      const forged = yield* post({ authorization: "Bearer not-a-token-it-issued" })
      expect(forged.status).toBe(401)
      expect(forged.headers.get("www-authenticate")).toContain(`error="invalid_token"`)
      expect(forged.headers.get("www-authenticate")).toContain(`resource_metadata="${metadataUrl}"`)

      const listen = yield* Effect.promise(() => fetch(mcpUrl, { headers: { accept: "text/event-stream" } }))
      expect(listen.status).toBe(401)

      const bearer = (scopes: ReadonlyArray<string>) =>
        Effect.map(
          provider.issueToken({ clientId: "raw", subject: "carol", scopes, resource: mcpUrl }),
          (issued) => `Bearer ${Redacted.value(issued.accessToken)}`
        )
      const narrow = yield* post({ authorization: yield* bearer([]) })
      expect(narrow.status).toBe(403)
      expect(narrow.headers.get("www-authenticate")).toContain(`error="insufficient_scope"`)
      // authenticated, a GET finds no server-initiated stream: 405 (Streamable HTTP)
      const authorization = yield* bearer(["tools"])
      const stream = yield* Effect.promise(() => fetch(mcpUrl, { headers: { accept: "text/event-stream", authorization } }))
      expect(stream.status).toBe(405)

      const metadata = yield* Effect.promise(() => fetch(metadataUrl).then((r) => r.json()))
      expect(metadata).toMatchObject({ resource: mcpUrl, authorization_servers: [baseUrl] })
    }))

  it.scopedLive("two users' clients calling concurrently each get their own subject back", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* startServer
      const [alice, bob] = yield* Effect.all([connectAs(mcpUrl, "alice"), connectAs(mcpUrl, "bob")], {
        concurrency: 2
      })
      const calls = Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? ["alice", alice] as const : ["bob", bob] as const)
      const answers = yield* Effect.forEach(
        calls,
        ([name, client]) => Effect.map(whoami(client), (answer) => [name, answer.subject] as const),
        { concurrency: "unbounded" }
      )
      for (const [name, subject] of answers) expect(subject).toBe(name)
      expect(answers.filter(([name]) => name === "bob")).toHaveLength(10)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("behind an OAuthProxy in front of oidc-provider, built from layers: McpClient signs in upstream, the tool reads the upstream user", () =>
    Effect.gen(function*() {
      const { baseUrl, platform } = yield* listen
      const upstream = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startOidcProvider({
            resource: "http://127.0.0.1:9/upstream-api",
            registration: false,
            clients: [{
              client_id: "proxy",
              client_secret: "proxy-upstream-secret",
              redirect_uris: [`${baseUrl}/callback`],
              grant_types: ["authorization_code", "refresh_token"],
              response_types: ["code"],
              token_endpoint_auth_method: "client_secret_basic",
              scope: "openid"
            }]
          })
        ),
        (s) => Effect.promise(() => s.close())
      )
      yield* Layer.build(
        aiMcpServer(OAuthProxy.layerAuthProvider()).pipe(
          Layer.provide(OAuthProxy.layer({
            issuer: baseUrl,
            resource: `${baseUrl}/mcp`,
            upstream: { issuer: upstream.issuer, clientId: "proxy", clientSecret: Redacted.make("proxy-upstream-secret") }
          })),
          Layer.provide([OAuthProviderStore.layerMemory, FetchHttpClient.layer, Layer.succeedContext(platform)])
        )
      )
      // A user agent that approves the proxy's consent page, then logs in and consents upstream.
      const user = httpUser(upstream.issuer, { alsoOrigins: [baseUrl] })
      const client = yield* McpClient.connect(new URL(`${baseUrl}/mcp`), { auth: { oauth: { clientName: "ai e2e" } } }).pipe(
        Effect.provide(Layer.mergeAll(
          TestStorage.layer(),
          Authorizer.layerBrowser({ timeout: "15 seconds" }).pipe(
            Layer.provide(Layer.succeed(Authorizer.BrowserOpener, user))
          )
        ))
      )
      expect((yield* whoami(client)).subject).toBe("alice")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("on a router tag of the app's own, next to the app's other routes", () =>
    Effect.gen(function*() {
      class AppRouter extends HttpRouter.Tag("AiMcpServerTest/AppRouter")<AppRouter>() {}
      const { baseUrl, platform } = yield* listen
      const provider = yield* OAuthProvider.make({ issuer: baseUrl, scopesSupported: ["tools"] }).pipe(
        Effect.provide(OAuthProviderStore.layerMemory)
      )
      yield* Layer.build(
        Layer.mergeAll(
          McpServer.toolkit(Tools),
          AppRouter.use((router) => router.get("/health", HttpServerResponse.text("ok"))),
          AppRouter.serve()
        ).pipe(
          Layer.provide(ToolsLive),
          Layer.provide(McpServer.layer({ name: "ai-test", version: "1.0.0" })),
          Layer.provide(AiMcpServer.layerProtocolHttp({ path: "/mcp", routerTag: AppRouter })),
          Layer.provide(Layer.succeed(AuthProvider.AuthProvider, AuthProvider.fromOAuthProvider(provider))),
          Layer.provide(Layer.succeedContext(platform))
        )
      )
      const health = yield* Effect.promise(() => fetch(`${baseUrl}/health`).then((r) => r.text()))
      expect(health).toBe("ok")
      const anonymous = yield* Effect.promise(() => fetch(`${baseUrl}/mcp`, { method: "POST", body: "{}" }))
      expect(anonymous.status).toBe(401)
      const client = yield* connectAs(`${baseUrl}/mcp`, "dana")
      expect((yield* whoami(client)).subject).toBe("test-user")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
