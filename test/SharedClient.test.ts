/**
 * One client registration per authorization server: three MCP servers (resource servers on their
 * own loopback ports) on one authorization server share one registration, while each holds its
 * own tokens, audience-bound to it (RFC 8707) and never sent to another server.
 */
import { HttpBody, HttpClient, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../src/Authorizer.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import { ClientInformation } from "../src/Schemas.js"
import * as BearerAuth from "../src/server/BearerAuth.js"
import * as TokenVerifier from "../src/server/TokenVerifier.js"
import * as TokenStorage from "../src/TokenStorage.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"

/** An MCP resource server at `/<name>` on its own port, trusting `as`; it records the bearer tokens it is sent. */
const resourceServer = (as: TestServer, name: string) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const url = `${HttpServer.formatAddress(server.address)}/${name}`
    const seen: Array<string> = []
    const mcp = BearerAuth.middleware({ resource: url })(
      Effect.map(BearerAuth.AuthenticatedToken, (token) =>
        HttpServerResponse.unsafeJson({ ok: true, clientId: token.clientId, resource: token.resource ?? null }))
    )
    const record = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const authorization = request.headers["authorization"]
      if (authorization !== undefined) seen.push(authorization.replace(/^Bearer /i, ""))
      return mcp
    })
    const router = HttpRouter.post(
      BearerAuth.metadataRoutes({ resource: url, authorizationServers: [as.issuer] }, "path"),
      `/${name}`,
      record.pipe(Effect.provideService(TokenVerifier.TokenVerifier, TokenVerifier.make(as.provider.verifyAccessToken)))
    )
    yield* server.serve(router)
    return { url, key: TokenStorage.serverKey(url), seen }
  }).pipe(Effect.orDie)

/** Calls the server through the OAuth layer of `url` (signing in when needed) over `storage`. */
const callMcp = (url: string, storage: TokenStorage.TokenStorage) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, {
      body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    return { status: response.status, json: (yield* response.json) as { clientId: string; resource: string } }
  }).pipe(Effect.scoped, Effect.provide(clientLayer(url, storage)))

const clientLayer = (url: string, storage: TokenStorage.TokenStorage) =>
  HttpAuth.OAuthLayer({ mcpUrl: url }).pipe(
    Layer.provideMerge(Layer.succeed(TokenStorage.TokenStorage, storage)),
    Layer.provide(Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const accessTokenOf = (storage: TokenStorage.TokenStorage, key: string) =>
  Effect.map(storage.getTokens(key), (t) => Redacted.value(Option.getOrThrow(t).accessToken))

describe("one client registration per authorization server", () => {
  it.scopedLive("3 MCP servers on one AS → 1 registration, 3 token sets, each audience-bound and sent only to its server", () =>
    Effect.gen(function*() {
      const as = yield* startTestServer()
      const servers = [
        yield* resourceServer(as, "a"),
        yield* resourceServer(as, "b"),
        yield* resourceServer(as, "c")
      ]
      const storage = yield* TokenStorage.makeMemory
      for (const s of servers) {
        const answer = yield* callMcp(s.url, storage)
        expect(answer.status).toBe(200)
        expect(answer.json.resource).toBe(s.url)
      }
      // Each server again: the stored token of that server, no sign-in.
      for (const s of servers) expect((yield* callMcp(s.url, storage)).status).toBe(200)

      expect(yield* as.count("register")).toBe(1)
      expect(yield* as.count("authorize")).toBe(3)
      const shared = Option.getOrThrow(yield* storage.getClient(TokenStorage.clientKey(as.issuer, "browser")))
      const tokens: Array<string> = []
      for (const s of servers) {
        expect(Option.getOrThrow(yield* storage.getClient(s.key)).clientId).toBe(shared.clientId)
        const token = Option.getOrThrow(yield* storage.getTokens(s.key))
        expect(token.resource).toBe(s.url)
        const access = Redacted.value(token.accessToken)
        tokens.push(access)
        // The authorization server bound it to this server only (RFC 8707).
        const verified = Option.getOrThrow(yield* as.provider.verifyAccessToken(access))
        expect(verified.resource).toBe(s.url)
        expect(verified.clientId).toBe(shared.clientId)
      }
      expect(new Set(tokens).size).toBe(3)
      // Asserted at the servers: each saw its own token (after the unauthenticated first try), never another's.
      servers.forEach((s, i) => {
        expect(s.seen.length).toBeGreaterThan(0)
        expect(new Set(s.seen)).toEqual(new Set([tokens[i]]))
      })

      // Signing out of one server keeps the shared registration: signing in there again registers nothing.
      yield* Effect.flatMap(OAuth.OAuth, (oauth) => oauth.logout).pipe(
        Effect.provide(clientLayer(servers[0]!.url, storage))
      )
      expect(Option.isNone(yield* storage.getTokens(servers[0]!.key))).toBe(true)
      expect(Option.isSome(yield* storage.getClient(TokenStorage.clientKey(as.issuer, "browser")))).toBe(true)
      expect((yield* callMcp(servers[0]!.url, storage)).status).toBe(200)
      expect(yield* as.count("register")).toBe(1)
      expect(yield* accessTokenOf(storage, servers[0]!.key)).not.toBe(tokens[0])
    }), 60_000)

  it.scopedLive("a client stored per server by earlier versions is still used, and shared with the other servers", () =>
    Effect.gen(function*() {
      const as = yield* startTestServer()
      const a = yield* resourceServer(as, "a")
      const b = yield* resourceServer(as, "b")
      const legacy = yield* as.registerClient({
        tokenEndpointAuthMethod: "none",
        redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      const storage = yield* TokenStorage.makeMemory
      yield* storage.setClient(
        a.key,
        new ClientInformation({
          clientId: legacy.clientId,
          tokenEndpointAuthMethod: "none",
          source: "dynamic",
          issuer: as.issuer,
          redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
        })
      )
      const first = yield* callMcp(a.url, storage)
      const second = yield* callMcp(b.url, storage)
      expect([first.status, second.status]).toEqual([200, 200])
      expect([first.json.clientId, second.json.clientId]).toEqual([legacy.clientId, legacy.clientId])
      expect(yield* as.count("register")).toBe(0)
      const shared = Option.getOrThrow(yield* storage.getClient(TokenStorage.clientKey(as.issuer, "browser")))
      expect(shared.clientId).toBe(legacy.clientId)
    }), 60_000)
})
