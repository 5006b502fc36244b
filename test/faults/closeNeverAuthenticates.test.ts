/**
 * Closing never authenticates: the Streamable HTTP session `DELETE` sent when an `McpClient`
 * closes carries the stored token (or none) and never refreshes, signs in or opens a browser —
 * even when the grant was revoked and the MCP server answers it 401.
 */
import { HttpClient, HttpClientRequest, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, Ref, Scope } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import {
  AuthProvider,
  OAuthProvider,
  OAuthProviderStore
} from "../../src/server/index.js"
import * as TestStorage from "../../src/TestStorage.js"
import { pingEndpoint, remoteAuthFor } from "../fixtures/remoteProtected.js"

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

/** An authorization server counting every request it gets, and an MCP server logging method and status. */
const startServers = Effect.gen(function*() {
  const asRequests = yield* Ref.make<ReadonlyArray<string>>([])
  const mcpRequests = yield* Ref.make<ReadonlyArray<{ method: string; authorization: string | undefined }>>([])
  const asServer = yield* listen
  const provider = yield* OAuthProvider.make({
    issuer: HttpServer.formatAddress(asServer.address),
    scopesSupported: ["tools"]
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  yield* asServer.serve(Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.zipRight(Ref.update(asRequests, (all) => [...all, `${request.method} ${request.url}`]), provider.router)))
  const mcpServer = yield* listen
  const auth = remoteAuthFor(mcpServer, provider)
  const endpoint = pingEndpoint("close-test")
  const protectedApp = AuthProvider.protect(auth, "/mcp", endpoint)
  yield* mcpServer.serve(Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.zipRight(
      Ref.update(mcpRequests, (all) => [...all, { method: request.method, authorization: request.headers["authorization"] }]),
      // a session, so that closing has one to DELETE
      Effect.map(protectedApp, HttpServerResponse.setHeader("mcp-session-id", "session-1"))
    )))
  return { provider, mcpUrl: auth.resourceUrl("/mcp"), asRequests, mcpRequests }
})

const clientDeps = Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

describe("closing never authenticates", () => {
  it.scopedLive("the grant revoked, closing the client sends the session DELETE with the stored token, gets 401, and makes 0 OAuth requests", () =>
    Effect.gen(function*() {
      const { asRequests, mcpRequests, mcpUrl, provider } = yield* startServers
      const scope = yield* Scope.make()
      const client = yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } }).pipe(
        Scope.extend(scope)
      )
      yield* client.callTool("ping")
      // the authorization server revokes the grant (access and refresh tokens)
      const stored = [...(yield* TestStorage.tokens).values()]
      expect(stored.length).toBe(1)
      const token = stored[0]!
      expect(token.refreshToken).toBeDefined()
      yield* provider.revokeToken(Redacted.value(token.refreshToken!))
      yield* provider.revokeToken(Redacted.value(token.accessToken))
      yield* Ref.set(asRequests, [])
      yield* Ref.set(mcpRequests, [])

      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const took = Date.now() - started

      expect(yield* Ref.get(asRequests)).toEqual([]) // no PRM, metadata, register, authorize or token request
      const deletes = (yield* Ref.get(mcpRequests)).filter((r) => r.method === "DELETE")
      expect(deletes.length).toBe(1) // sent once, not retried after its 401
      expect(deletes[0]!.authorization).toBe(`Bearer ${Redacted.value(token.accessToken)}`)
      expect(took).toBeLessThan(2_000)
    }).pipe(Effect.provide(clientDeps)))

  it.scopedLive("a request made whileClosing with no stored token goes without one and its 401 is returned, not signed in", () =>
    Effect.gen(function*() {
      const { asRequests, mcpRequests, mcpUrl } = yield* startServers
      const response = yield* HttpAuth.whileClosing(
        HttpClient.execute(HttpClientRequest.post(mcpUrl).pipe(HttpClientRequest.bodyUnsafeJson({})))
      ).pipe(Effect.provide(HttpAuth.OAuthLayer({ mcpUrl, scopes: ["tools"] })))
      expect(response.status).toBe(401)
      expect(yield* Ref.get(asRequests)).toEqual([])
      expect((yield* Ref.get(mcpRequests)).map((r) => r.authorization)).toEqual([undefined])
    }).pipe(Effect.provide(clientDeps)))

  it.scopedLive("a request made after the OAuthLayer began closing (a fiber still running) never signs in", () =>
    Effect.gen(function*() {
      const { asRequests, mcpUrl } = yield* startServers
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(HttpAuth.OAuthLayer({ mcpUrl, scopes: ["tools"] }), scope)
      const http = Context.get(context, HttpClient.HttpClient)
      yield* Scope.close(scope, Exit.void)
      const response = yield* http.execute(HttpClientRequest.post(mcpUrl).pipe(HttpClientRequest.bodyUnsafeJson({})))
      expect(response.status).toBe(401)
      expect(yield* Ref.get(asRequests)).toEqual([])
    }).pipe(Effect.provide(clientDeps)))
})
