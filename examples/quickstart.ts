/**
 * Quick start: an Effect program whose HttpClient is signed in by `OAuthLayer`.
 *
 *   npx tsx examples/quickstart.ts
 *
 * To be self-contained it first starts, on 127.0.0.1, the library's own authorization server
 * (`effect-mcp-oauth/server`) and an API protected by bearer tokens — stand-ins for a real
 * OAuth-protected MCP server. The client part is the five lines under "the client".
 */
import { HttpBody, HttpClient, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Authorizer, OAuth, OAuthLayer, TokenStorage } from "../src/index.js"
import { BearerAuth, OAuthProvider, OAuthProviderStore, TokenVerifier } from "../src/server/index.js"

/** A loopback authorization server + a protected `/mcp` endpoint that echoes who called it. */
const startServer = Effect.gen(function*() {
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const baseUrl = `http://127.0.0.1:${port}`
  const mcpUrl = `${baseUrl}/mcp`
  const provider = yield* OAuthProvider.make({ issuer: baseUrl }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  const protectedApi = BearerAuth.middleware({ resource: mcpUrl })(
    Effect.map(BearerAuth.AuthenticatedToken, (token) =>
      HttpServerResponse.unsafeJson({ hello: token.subject, scopes: token.scopes }))
  ).pipe(Effect.provideService(TokenVerifier.TokenVerifier, TokenVerifier.make(provider.verifyAccessToken)))
  const router = provider.router.pipe(
    HttpRouter.concat(BearerAuth.metadataRoutes({ resource: mcpUrl, authorizationServers: [baseUrl] })),
    HttpRouter.post("/mcp", protectedApi)
  )
  yield* server.serve(HttpRouter.toHttpApp(router).pipe(Effect.flatten))
  return mcpUrl
})

const program = Effect.gen(function*() {
  const mcpUrl = yield* startServer
  yield* Console.log(`Protected endpoint: ${mcpUrl}`)
  const cacheDir = mkdtempSync(join(tmpdir(), "effect-mcp-oauth-quickstart-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(cacheDir, { recursive: true, force: true })))

  // ---- the client -------------------------------------------------------------------------
  const ClientLive = OAuthLayer({ mcpUrl, scopes: ["read"] }).pipe(
    Layer.provide(TokenStorage.layerFileSystemNode(cacheDir)), // default: memory
    Layer.provide(Authorizer.layerHeadless()), // default: the browser sign-in
    Layer.provide(NodeHttpClient.layerUndici) // or any HttpClient
  )
  // -----------------------------------------------------------------------------------------

  const call = Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(mcpUrl, { body: HttpBody.unsafeJson({ ping: true }) })
    return yield* response.json
  }).pipe(Effect.scoped)

  yield* Effect.gen(function*() {
    yield* Console.log("First call (401 → discovery → registration → sign-in → token → retry):")
    yield* Console.log(" ", JSON.stringify(yield* call))
    yield* Console.log("Second call (the stored token, no OAuth traffic):")
    yield* Console.log(" ", JSON.stringify(yield* call))
    const oauth = yield* OAuth.OAuth
    const stored = yield* oauth.tokens
    yield* Console.log(
      "Stored token:",
      Option.match(stored, {
        onNone: () => "none",
        onSome: (t) => `expires in ${t.expiresIn(Date.now())} s, scopes [${t.scopes.join(" ")}], ${String(t.accessToken)}`
      })
    )
  }).pipe(Effect.provide(ClientLive))
})

program.pipe(Effect.scoped, Effect.provide(HttpServer.layerContext), NodeRuntime.runMain)
