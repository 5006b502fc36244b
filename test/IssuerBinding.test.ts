/**
 * Credentials are bound to their issuer (MCP SEP-2352): tokens, refresh tokens and client
 * secrets are only ever presented to the authorization server that issued them. Two real
 * authorization servers on loopback; the MCP server's metadata (or its 401 challenge) moves from
 * the first to the second, and the second's request log proves what it never received.
 */
import { HttpBody, HttpClient, HttpClientError } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import type { OAuthError } from "../src/Errors.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import { type ClientInformation, StoredToken } from "../src/Schemas.js"
import * as TestStorage from "../src/TestStorage.js"
import { serverKey } from "../src/TokenStorage.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"

const STATIC_ID = "static-client"
const STATIC_SECRET = "static-secret"
const staticOptions = { clientId: STATIC_ID, clientSecret: STATIC_SECRET }

/** The same pre-registered confidential client at an authorization server. */
const registerStatic = (server: TestServer, grantTypes?: ReadonlyArray<string>) =>
  server.registerClient({
    clientId: STATIC_ID,
    clientSecret: STATIC_SECRET,
    tokenEndpointAuthMethod: "client_secret_basic",
    redirectUris: [Authorizer.DEFAULT_REDIRECT_URI],
    ...(grantTypes === undefined ? {} : { grantTypes })
  })

const clientLayer = (server: TestServer, options: Partial<OAuth.OAuthOptions>, seed: TestStorage.Seed = {}) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl, ...options }).pipe(
    Layer.provideMerge(TestStorage.layer(seed)),
    Layer.provide(Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const callMcp = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, {
      body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    return response.status
  }).pipe(Effect.scoped)

const oauthFailure = <A, R>(effect: Effect.Effect<A, HttpClientError.HttpClientError, R>) =>
  Effect.flip(effect).pipe(
    Effect.map((error): OAuthError | HttpClientError.HttpClientError =>
      Option.getOrElse(HttpAuth.oauthErrorOf(error), () => error)
    )
  )

/** Signs in at `server` with a fresh store; returns what was stored (tokens and client, by key). */
const signInAt = (server: TestServer, options: Partial<OAuth.OAuthOptions>) =>
  Effect.gen(function*() {
    expect(yield* callMcp(server.mcpUrl)).toBe(200)
    const tokens = yield* TestStorage.tokens
    const clients = yield* TestStorage.clients
    const key = serverKey(server.mcpUrl)
    return { key, token: tokens.get(key)!, client: clients.get(key) }
  }).pipe(Effect.provide(clientLayer(server, options)))

/**
 * The stored state as a seed, with the token expired (so the next use refreshes) and without
 * the discovery stored with it (as when it has gone stale, or the record predates it), so the
 * next process discovers again and sees the move.
 */
const expiredSeed = (stored: {
  readonly key: string
  readonly token: StoredToken
  readonly client?: ClientInformation | undefined
}): TestStorage.Seed => ({
  tokens: {
    [stored.key]: new StoredToken({ ...stored.token, expiresAt: Date.now() - 1000, discovery: undefined })
  },
  ...(stored.client === undefined ? {} : { client: { [stored.key]: stored.client } })
})

/** Everything `server` received, as one string, to search for credentials in. */
const everythingReceived = (server: TestServer) =>
  Effect.map(server.requests, (all) => JSON.stringify(all.map((r) => [r.path, r.query, r.form, r.json, r.headers])))

const basic = `Basic ${Buffer.from(`${STATIC_ID}:${STATIC_SECRET}`).toString("base64")}`

describe("issuer binding (SEP-2352): credentials only go to the issuer that issued them", () => {
  it.scopedLive("pre-registered client, PRM moves to a second AS without the issuer option: IssuerMismatch, and the second AS receives neither the refresh token nor the client secret", () =>
    Effect.gen(function*() {
      const first = yield* startTestServer()
      const second = yield* startTestServer()
      yield* registerStatic(first)
      yield* registerStatic(second)
      const stored = yield* signInAt(first, staticOptions)
      expect(stored.token.refreshToken).toBeDefined()
      yield* first.setFaults({ prmAuthorizationServers: [second.issuer] })
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const outcome = yield* Effect.either(oauth.accessToken)
        return { outcome, tokens: yield* oauth.tokens }
      }).pipe(Effect.provide(clientLayer(first, staticOptions, expiredSeed(stored))))
      const seen = yield* everythingReceived(second)
      expect(seen).not.toContain(Redacted.value(stored.token.refreshToken!))
      expect(seen).not.toContain(STATIC_SECRET)
      expect(seen).not.toContain(basic.slice("Basic ".length))
      expect(yield* second.counts).toMatchObject({ token: 0, authorize: 0, register: 0, revoke: 0 })
      expect(result.outcome).toMatchObject({
        _tag: "Left",
        left: { _tag: "IssuerMismatch", reason: "Changed", expected: first.issuer, actual: second.issuer }
      })
      expect(Option.isNone(result.tokens)).toBe(true)
    }))

  it.scopedLive("pre-registered client, a store written before client records (tokens only): the token's issuer binds the client; IssuerMismatch, nothing sent", () =>
    Effect.gen(function*() {
      const first = yield* startTestServer()
      const second = yield* startTestServer()
      yield* registerStatic(first)
      yield* registerStatic(second)
      const stored = yield* signInAt(first, staticOptions)
      yield* first.setFaults({ prmAuthorizationServers: [second.issuer] })
      const { client: _, ...tokensOnly } = stored
      const outcome = yield* Effect.flatMap(OAuth.OAuth, (oauth) => Effect.either(oauth.accessToken)).pipe(
        Effect.provide(clientLayer(first, staticOptions, expiredSeed(tokensOnly)))
      )
      const seen = yield* everythingReceived(second)
      expect(seen).not.toContain(Redacted.value(stored.token.refreshToken!))
      expect(seen).not.toContain(basic.slice("Basic ".length))
      expect(yield* second.counts).toMatchObject({ token: 0, authorize: 0 })
      expect(outcome).toMatchObject({ _tag: "Left", left: { _tag: "IssuerMismatch", reason: "Changed" } })
    }))

  it.scopedLive("pre-registered client with the issuer option naming the second AS: the old refresh token is dropped, and a new sign-in happens there", () =>
    Effect.gen(function*() {
      const first = yield* startTestServer()
      const second = yield* startTestServer()
      yield* registerStatic(first)
      yield* registerStatic(second)
      const stored = yield* signInAt(first, staticOptions)
      yield* first.setFaults({ prmAuthorizationServers: [second.issuer] })
      const token = yield* Effect.flatMap(OAuth.OAuth, (oauth) => Effect.zipRight(oauth.accessToken, oauth.tokens)).pipe(
        Effect.provide(clientLayer(first, { ...staticOptions, issuer: second.issuer }, expiredSeed(stored)))
      )
      expect(Option.getOrThrow(token).issuer).toBe(second.issuer)
      expect((yield* second.requestsTo("token")).map((r) => r.form["grant_type"])).toEqual(["authorization_code"])
      expect(yield* second.count("authorize")).toBe(1)
      expect(yield* everythingReceived(second)).not.toContain(Redacted.value(stored.token.refreshToken!))
    }))

  it.scopedLive("dynamic client, PRM moves to a second AS: it never receives the first's refresh token, client or (on logout) tokens; logout revokes at the first; a new sign-in registers at the second", () =>
    Effect.gen(function*() {
      const first = yield* startTestServer()
      const second = yield* startTestServer()
      const stored = yield* signInAt(first, {})
      expect(stored.client?.issuer).toBe(first.issuer)
      yield* first.setFaults({ prmAuthorizationServers: [second.issuer] })
      yield* first.resetCounters

      // Logout while the resource names the second AS: the tokens are revoked at their own issuer.
      const signedOut = yield* Effect.flatMap(OAuth.OAuth, (oauth) => oauth.logout).pipe(
        Effect.provide(clientLayer(first, {}, expiredSeed(stored)))
      )
      expect(signedOut).toEqual({ revoked: ["refresh_token", "access_token"], warnings: [] })
      expect((yield* first.requestsTo("revoke")).map((r) => r.form["token_type_hint"])).toEqual([
        "refresh_token",
        "access_token"
      ])
      expect(yield* second.count("revoke")).toBe(0)

      // The same store again, the token expired: no refresh at the second AS, a sign-in there.
      const token = yield* Effect.flatMap(OAuth.OAuth, (oauth) => Effect.zipRight(oauth.accessToken, oauth.tokens)).pipe(
        Effect.provide(clientLayer(first, {}, expiredSeed(stored)))
      )
      expect(Option.getOrThrow(token).issuer).toBe(second.issuer)
      expect(yield* second.count("register")).toBe(1)
      expect((yield* second.requestsTo("token")).map((r) => r.form["grant_type"])).toEqual(["authorization_code"])
      const seen = yield* everythingReceived(second)
      expect(seen).not.toContain(Redacted.value(stored.token.refreshToken!))
      expect(seen).not.toContain(Redacted.value(stored.token.accessToken))
      expect(seen).not.toContain(stored.client!.clientId)
    }))

  it.scopedLive("client_credentials: a 401 naming another origin's resource_metadata sends the client secret nowhere new (IssuerMismatch)", () =>
    Effect.gen(function*() {
      const first = yield* startTestServer()
      const second = yield* startTestServer()
      yield* registerStatic(first, ["client_credentials"])
      yield* registerStatic(second, ["client_credentials"])
      // The second origin's metadata claims the first's MCP URL and names the second AS.
      yield* second.setFaults({ prmResource: first.mcpUrl })
      const options = { ...staticOptions, grant: "client_credentials" as const }
      const outcome = yield* Effect.gen(function*() {
        expect(yield* callMcp(first.mcpUrl)).toBe(200)
        const oauth = yield* OAuth.OAuth
        const held = Option.getOrThrow(yield* oauth.tokens)
        // The resource now refuses the token and points at the other origin's metadata.
        yield* first.provider.revokeToken(Redacted.value(held.accessToken))
        yield* first.setFaults({ challengeResourceMetadata: second.prmUrl })
        return yield* oauthFailure(callMcp(first.mcpUrl))
      }).pipe(Effect.provide(clientLayer(first, options)))
      expect(yield* second.count("prm")).toBeGreaterThan(0)
      const seen = yield* everythingReceived(second)
      expect(seen).not.toContain(STATIC_SECRET)
      expect(seen).not.toContain(basic.slice("Basic ".length))
      expect(yield* second.count("token")).toBe(0)
      expect(outcome).toMatchObject({ _tag: "IssuerMismatch", expected: first.issuer, actual: second.issuer })
    }))
})

describe("logout with a pre-registered client", () => {
  it.scopedLive("revokes both tokens at the token's issuer with the configured client's credentials", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      yield* registerStatic(server)
      const result = yield* Effect.gen(function*() {
        expect(yield* callMcp(server.mcpUrl)).toBe(200)
        const oauth = yield* OAuth.OAuth
        const before = Option.getOrThrow(yield* oauth.tokens)
        const signedOut = yield* oauth.logout
        return { before, signedOut, after: yield* oauth.tokens }
      }).pipe(Effect.provide(clientLayer(server, staticOptions)))
      expect(result.signedOut).toEqual({ revoked: ["refresh_token", "access_token"], warnings: [] })
      expect(Option.isNone(result.after)).toBe(true)
      const revokes = yield* server.requestsTo("revoke")
      expect(revokes.map((r) => r.headers["authorization"])).toEqual([basic, basic])
      // The revoked access token no longer opens the resource.
      const status = yield* Effect.promise(() =>
        fetch(server.mcpUrl, {
          method: "POST",
          headers: { authorization: `Bearer ${Redacted.value(result.before.accessToken)}` },
          body: "{}"
        }).then((r) => r.status)
      )
      expect(status).toBe(401)
    }))
})
