/**
 * The orchestrator's half of lock fencing (RFC 9700 §4.14.2): `Refresh.refreshOrSignIn` checks
 * the lease right before redeeming a refresh token. A holder whose lease was lost neither
 * redeems it nor signs in; it uses the token the new holder stored, or fails typed.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import { StorageError } from "../src/Errors.js"
import * as HttpAuth from "../src/HttpAuth.js"
import { ClientInformation, StoredToken } from "../src/Schemas.js"
import * as TestStorage from "../src/TestStorage.js"
import * as TokenLock from "../src/TokenLock.js"
import { serverKey, TokenStorage } from "../src/TokenStorage.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"

/** A lock whose lease is already lost when the guarded work checks it; `before` runs first. */
const lostLeaseLock = (before: Effect.Effect<void, never, TokenStorage> = Effect.void) =>
  Layer.effect(
    TokenLock.TokenLock,
    Effect.map(Effect.context<TokenStorage>(), (context) =>
      TokenLock.TokenLock.of({
        withLock: (key, effect) =>
          TokenLock.withLease({
            key,
            ensureHeld: Effect.zipRight(
              Effect.provide(before, context),
              Effect.fail(new StorageError({ reason: "Conflict", detail: `the lease of ${key} was lost` }))
            )
          })(effect)
      }))
  )

const seed = (server: TestServer) =>
  Effect.gen(function*() {
    const registered = yield* server.registerClient({
      tokenEndpointAuthMethod: "none",
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    })
    const client = new ClientInformation({
      clientId: registered.clientId,
      tokenEndpointAuthMethod: "none",
      source: "dynamic",
      issuer: server.issuer,
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    })
    const issued = yield* server.issueToken({ clientId: registered.clientId, refreshToken: true })
    const token = (accessToken: Redacted.Redacted<string>, expiresAt: number) =>
      new StoredToken({
        accessToken,
        tokenType: "Bearer",
        ...(issued.refreshToken === undefined ? {} : { refreshToken: issued.refreshToken }),
        expiresAt,
        scopes: [],
        issuer: server.issuer,
        resource: server.mcpUrl,
        obtainedAt: Date.now()
      })
    return { client, expired: token(issued.accessToken, Date.now() - 1000), issued, token }
  })

const callMcp = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" }) })
    return response.status
  }).pipe(Effect.scoped)

const layerWith = (server: TestServer, storage: Layer.Layer<TestStorage.TestStorage | TokenStorage>, lock: Layer.Layer<TokenLock.TokenLock, never, TokenStorage>) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
    Layer.provide(lock),
    Layer.provideMerge(storage),
    Layer.provide(Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

describe("refresh under a lost lease (fencing)", () => {
  it.scopedLive("the refresh token is not redeemed and no sign-in starts: a typed StorageError Conflict", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, expired } = yield* seed(server)
      const failure = yield* callMcp(server.mcpUrl).pipe(
        Effect.flip,
        Effect.map((e) => Option.getOrUndefined(HttpAuth.oauthErrorOf(e))),
        Effect.provide(layerWith(server, TestStorage.layer({ tokens: expired, client }), lostLeaseLock()))
      )
      expect(failure).toMatchObject({ _tag: "StorageError", reason: "Conflict" })
      expect(yield* server.count("token")).toBe(0)
      expect(yield* server.count("authorize")).toBe(0)
    }))

  it.scopedLive("the new holder's token, stored meanwhile, is used: no refresh from the stale holder", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, expired, token } = yield* seed(server)
      const fresh = yield* server.issueToken({ clientId: client.clientId, refreshToken: true })
      const storeFresh = Effect.flatMap(TokenStorage, (storage) =>
        storage.setTokens(serverKey(server.mcpUrl), token(fresh.accessToken, Date.now() + 3_600_000))).pipe(Effect.orDie)
      const status = yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(layerWith(server, TestStorage.layer({ tokens: expired, client }), lostLeaseLock(storeFresh)))
      )
      expect(status).toBe(200)
      expect(yield* server.count("token")).toBe(0)
      const [seen] = (yield* server.requests).filter((r) => r.path === new URL(server.mcpUrl).pathname)
      expect(seen!.headers["authorization"]).toBe(`Bearer ${Redacted.value(fresh.accessToken)}`)
    }))
})
