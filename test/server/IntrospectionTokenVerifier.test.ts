/**
 * RFC 7662 introspection, both sides: the `IntrospectionTokenVerifier` against two independent
 * introspection endpoints (the embedded OAuthProvider's `/introspect` and oidc-provider's
 * `/token/introspection`, opaque tokens both), against a raw loopback AS for the answers neither
 * gives (expired-but-active, wrong issuer, hanging, oversized, malformed), and behind the bearer
 * middleware for the 401 / 503 a client sees. Every request the verifier makes is counted at the AS.
 */
import { FetchHttpClient, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { exportJWK, exportPKCS8, generateKeyPair } from "jose"
import { createServer } from "node:http"
import type * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import * as IntrospectionTokenVerifier from "../../src/server/IntrospectionTokenVerifier.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import * as TokenVerifier from "../../src/server/TokenVerifier.js"
import { startOidcProvider } from "../interop/oidcProvider.js"
import { basic, postForm, request } from "./http.js"

const RS_SECRET = "resource-server-secret"

/** The embedded AS on loopback, counting the requests to its introspection endpoint. */
const serveEmbedded = Effect.gen(function*() {
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const issuer = HttpServer.formatAddress(server.address)
  const provider = yield* OAuthProvider.make({ issuer }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  const counts = { introspections: 0 }
  yield* server.serve(provider.router, (app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) => {
      if (req.url.startsWith("/introspect")) counts.introspections++
      return app
    }))
  yield* provider.registerClient({ clientId: "rs", clientSecret: RS_SECRET, tokenEndpointAuthMethod: "client_secret_basic" })
  yield* provider.registerClient({ clientId: "rs-post", clientSecret: RS_SECRET, tokenEndpointAuthMethod: "client_secret_post" })
  yield* provider.registerClient({ clientId: "public-app", tokenEndpointAuthMethod: "none" })
  return { provider, issuer, counts, resource: `${issuer}/mcp` }
}).pipe(Effect.orDie)

/** A raw AS whose introspection endpoint answers whatever `answer` says (or hangs, or floods). */
const serveRaw = (answer: (res: http.ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; counts: { introspections: number }; server: http.Server }>((resolve) => {
        const counts = { introspections: 0 }
        const server = createServer((req, res) => {
          counts.introspections++
          req.resume()
          answer(res)
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            counts,
            server
          }))
      })
    ),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  )

const json = (body: unknown) => (res: http.ServerResponse) =>
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body))

const verifierFor = (options: IntrospectionTokenVerifier.Options) =>
  IntrospectionTokenVerifier.make(options).pipe(Effect.provide(FetchHttpClient.layer))

const basicAuth = { method: "client_secret_basic", clientSecret: Redacted.make(RS_SECRET) } as const

/** A resource behind the bearer middleware, verifying with `verifier`: what an MCP client sees. */
const protect = (verifier: TokenVerifier.TokenVerifier, resource: string) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const base = HttpServer.formatAddress(server.address)
    const router = HttpRouter.empty.pipe(
      HttpRouter.post(
        "/mcp",
        BearerAuth.middleware({ resource })(
          Effect.map(BearerAuth.AuthenticatedToken, (t) => HttpServerResponse.unsafeJson({ sub: t.subject }))
        )
      ),
      HttpRouter.provideService(TokenVerifier.TokenVerifier, verifier)
    )
    yield* server.serve(router)
    return (token: string) =>
      Effect.map(
        request(`${base}/mcp`, { method: "POST", headers: { authorization: `Bearer ${token}` } }),
        (r) => r.status
      )
  }).pipe(Effect.orDie)

describe("OAuthProvider /introspect (RFC 7662 §2)", () => {
  it.scoped("advertised in the metadata; an active access token's claims, inactive for unknown, refresh and revoked tokens", () =>
    Effect.gen(function*() {
      const as = yield* serveEmbedded
      const metadata = yield* request(`${as.issuer}/.well-known/oauth-authorization-server`)
      expect(metadata.body["introspection_endpoint"]).toBe(`${as.issuer}/introspect`)
      const issued = yield* as.provider.issueToken({
        clientId: "app",
        subject: "alice",
        scopes: ["mcp:read"],
        resource: as.resource,
        refreshToken: true
      })
      const introspect = (token: string) =>
        postForm(`${as.issuer}/introspect`, { token }, { authorization: basic("rs", RS_SECRET) })
      const active = yield* introspect(Redacted.value(issued.accessToken))
      expect(active.status).toBe(200)
      expect(active.headers.get("cache-control")).toBe("no-store")
      expect(active.body).toEqual({
        active: true,
        token_type: "Bearer",
        client_id: "app",
        sub: "alice",
        scope: "mcp:read",
        aud: as.resource,
        iss: as.issuer,
        exp: Math.floor(issued.expiresAt / 1000)
      })
      expect((yield* introspect("no-such-token")).body).toEqual({ active: false })
      expect((yield* introspect(Redacted.value(issued.refreshToken!))).body).toEqual({ active: false })
      // client_secret_post works as well
      const viaPost = yield* postForm(`${as.issuer}/introspect`, {
        token: Redacted.value(issued.accessToken),
        client_id: "rs-post",
        client_secret: RS_SECRET
      })
      expect(viaPost.body["active"]).toBe(true)
      yield* as.provider.revokeToken(Redacted.value(issued.accessToken))
      expect((yield* introspect(Redacted.value(issued.accessToken))).body).toEqual({ active: false })
    }))

  it.scoped("only authenticated confidential clients may introspect: none, a public client, a wrong secret → 401", () =>
    Effect.gen(function*() {
      const as = yield* serveEmbedded
      const issued = yield* as.provider.issueToken({ clientId: "app", resource: as.resource })
      const token = Redacted.value(issued.accessToken)
      const anonymous = yield* postForm(`${as.issuer}/introspect`, { token })
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get("www-authenticate")).toContain("Basic")
      const publicClient = yield* postForm(`${as.issuer}/introspect`, { token, client_id: "public-app" })
      expect(publicClient.status).toBe(401)
      expect(publicClient.body["error"]).toBe("invalid_client")
      expect(publicClient.text).not.toContain("alice")
      const wrong = yield* postForm(`${as.issuer}/introspect`, { token }, { authorization: basic("rs", "nope") })
      expect(wrong.status).toBe(401)
      const missing = yield* postForm(`${as.issuer}/introspect`, {}, { authorization: basic("rs", RS_SECRET) })
      expect(missing.status).toBe(400)
    }))
})

describe("IntrospectionTokenVerifier against the embedded OAuthProvider", () => {
  it.scoped("discovers the endpoint from RFC 8414 metadata; a valid token verifies, then comes from the cache", () =>
    Effect.gen(function*() {
      const as = yield* serveEmbedded
      const verifier = yield* verifierFor({
        issuer: as.issuer,
        audience: as.resource,
        clientId: "rs",
        clientAuthentication: basicAuth
      })
      const issued = yield* as.provider.issueToken({
        clientId: "app",
        subject: "alice",
        scopes: ["mcp:read", "mcp:write"],
        resource: as.resource
      })
      const token = Redacted.value(issued.accessToken)
      const first = yield* verifier.verify(token)
      expect(Option.map(first, (t) => ({ ...t, token: Redacted.value(t.token) }))).toEqual(Option.some({
        token,
        clientId: "app",
        subject: "alice",
        scopes: ["mcp:read", "mcp:write"],
        resource: as.resource,
        expiresAt: Math.floor(issued.expiresAt / 1000) * 1000 + 30_000
      }))
      for (let i = 0; i < 5; i++) expect(Option.isSome(yield* verifier.verify(token))).toBe(true)
      expect(as.counts.introspections).toBe(1)
      // unknown tokens: 401 once asked, the negative answer cached too
      expect(Option.isNone(yield* verifier.verify("unknown"))).toBe(true)
      expect(Option.isNone(yield* verifier.verify("unknown"))).toBe(true)
      expect(as.counts.introspections).toBe(2)
    }))

  it.scopedLive("wrong audience, wrong issuer, missing scope, other client, expired → None (401 behind the bearer middleware)", () =>
    Effect.gen(function*() {
      const as = yield* serveEmbedded
      const options = {
        issuer: as.issuer,
        introspectionEndpoint: `${as.issuer}/introspect`,
        audience: as.resource,
        clientId: "rs",
        clientAuthentication: basicAuth
      }
      const good = Redacted.value((yield* as.provider.issueToken({ clientId: "app", resource: as.resource, scopes: ["mcp:read"] })).accessToken)
      const foreign = Redacted.value((yield* as.provider.issueToken({ clientId: "app", resource: "http://127.0.0.1:1/other" })).accessToken)
      const unbound = Redacted.value((yield* as.provider.issueToken({ clientId: "app" })).accessToken)
      const expired = Redacted.value((yield* as.provider.issueToken({ clientId: "app", resource: as.resource, ttl: 1 })).accessToken)
      yield* Effect.sleep("5 millis")
      const verifier = yield* verifierFor(options)
      const call = yield* protect(verifier, as.resource)
      expect(yield* call(good)).toBe(200)
      expect(yield* call(foreign)).toBe(401)
      expect(yield* call(unbound)).toBe(401)
      expect(yield* call(expired)).toBe(401)
      const otherIssuer = yield* verifierFor({ ...options, issuer: "http://127.0.0.1:1" })
      expect(Option.isNone(yield* otherIssuer.verify(good))).toBe(true)
      const needsWrite = yield* verifierFor({ ...options, requiredScopes: ["mcp:write"] })
      expect(Option.isNone(yield* needsWrite.verify(good))).toBe(true)
      const onlyOtherClients = yield* verifierFor({ ...options, allowedClientIds: ["someone-else"] })
      expect(Option.isNone(yield* onlyOtherClients.verify(good))).toBe(true)
    }))

  it.scoped("the resource server's own credentials refused by the AS → 503, not 401", () =>
    Effect.gen(function*() {
      const as = yield* serveEmbedded
      const verifier = yield* verifierFor({
        issuer: as.issuer,
        audience: as.resource,
        clientId: "rs",
        clientAuthentication: { method: "client_secret_basic", clientSecret: Redacted.make("wrong") }
      })
      const token = Redacted.value((yield* as.provider.issueToken({ clientId: "app", resource: as.resource })).accessToken)
      const call = yield* protect(verifier, as.resource)
      expect(yield* call(token)).toBe(503)
    }))
})

describe("IntrospectionTokenVerifier against a raw AS", () => {
  const base = (url: string): IntrospectionTokenVerifier.Options => ({
    issuer: url,
    introspectionEndpoint: `${url}/introspect`,
    audience: "http://127.0.0.1/mcp",
    clientId: "rs",
    clientAuthentication: basicAuth,
    timeout: "300 millis"
  })
  const activeFor = (overrides: Record<string, unknown>, issuer = "http://placeholder") => ({
    active: true,
    iss: issuer,
    aud: "http://127.0.0.1/mcp",
    sub: "alice",
    client_id: "app",
    exp: Math.floor(Date.now() / 1000) + 3600,
    ...overrides
  })

  it.scopedLive("active but past exp (beyond the leeway), issued by another issuer, a refresh token → None", () =>
    Effect.gen(function*() {
      let body: unknown = {}
      const as = yield* serveRaw((res) => json(body)(res))
      const verifier = yield* verifierFor({ ...base(as.url), negativeCacheTtl: 0 })
      body = activeFor({ exp: Math.floor(Date.now() / 1000) - 60 }, as.url)
      expect(Option.isNone(yield* verifier.verify("t1"))).toBe(true)
      body = activeFor({}, "http://evil.example")
      expect(Option.isNone(yield* verifier.verify("t2"))).toBe(true)
      body = activeFor({ token_type: "refresh_token" }, as.url)
      expect(Option.isNone(yield* verifier.verify("t3"))).toBe(true)
      body = activeFor({ aud: ["http://other/mcp"] }, as.url)
      expect(Option.isNone(yield* verifier.verify("t4"))).toBe(true)
      body = activeFor({ aud: ["http://other/mcp", "http://127.0.0.1/mcp"] }, as.url)
      expect(Option.isSome(yield* verifier.verify("t5"))).toBe(true)
      expect(as.counts.introspections).toBe(5)
    }))

  it.scopedLive("a positive answer is cached no longer than the token's exp, nor than cacheTtl", () =>
    Effect.gen(function*() {
      let body: unknown = {}
      const as = yield* serveRaw((res) => json(body)(res))
      const verifier = yield* verifierFor({ ...base(as.url), cacheTtl: "60 seconds" })
      body = activeFor({ exp: Math.ceil(Date.now() / 1000) + 1 }, as.url)
      expect(Option.isSome(yield* verifier.verify("short"))).toBe(true)
      expect(Option.isSome(yield* verifier.verify("short"))).toBe(true)
      expect(as.counts.introspections).toBe(1)
      yield* Effect.sleep("2100 millis")
      // past exp: asked again (still within the 30 s leeway, so still accepted)
      expect(Option.isSome(yield* verifier.verify("short"))).toBe(true)
      expect(as.counts.introspections).toBe(2)

      const briefly = yield* verifierFor({ ...base(as.url), cacheTtl: "100 millis" })
      body = activeFor({}, as.url)
      yield* briefly.verify("long")
      yield* briefly.verify("long")
      expect(as.counts.introspections).toBe(3)
      yield* Effect.sleep("150 millis")
      yield* briefly.verify("long")
      expect(as.counts.introspections).toBe(4)
    }))

  it.scopedLive("50 concurrent requests with one new token: one introspection; a request that goes away does not fail the others", () =>
    Effect.gen(function*() {
      const as = yield* serveRaw((res) => setTimeout(() => json(activeFor({}, as.url))(res), 100))
      const verifier = yield* verifierFor(base(as.url))
      const results = yield* Effect.all(Array.from({ length: 50 }, () => verifier.verify("same")), {
        concurrency: "unbounded"
      })
      expect(results.every(Option.isSome)).toBe(true)
      expect(as.counts.introspections).toBe(1)
      // the first caller is interrupted while the introspection runs; the second still gets it
      const first = yield* Effect.fork(verifier.verify("other"))
      yield* Effect.sleep("20 millis")
      const second = yield* Effect.fork(verifier.verify("other"))
      yield* Effect.sleep("20 millis")
      yield* first.interruptAsFork(first.id())
      expect(Option.isSome(yield* second.await.pipe(Effect.flatten))).toBe(true)
      expect(as.counts.introspections).toBe(2)
    }))

  it.scopedLive("the cache holds at most maxCacheEntries tokens, the oldest evicted first", () =>
    Effect.gen(function*() {
      const as = yield* serveRaw((res) => json(activeFor({}, as.url))(res))
      const verifier = yield* verifierFor({ ...base(as.url), maxCacheEntries: 2 })
      for (const t of ["a", "b", "c"]) yield* verifier.verify(t)
      expect(as.counts.introspections).toBe(3)
      yield* verifier.verify("c")
      yield* verifier.verify("b")
      expect(as.counts.introspections).toBe(3)
      yield* verifier.verify("a")
      expect(as.counts.introspections).toBe(4)
    }))

  it.scopedLive("an AS that is down, hangs, floods or answers garbage → TokenVerifierError (503), never cached", () =>
    Effect.gen(function*() {
      const hanging = yield* serveRaw(() => {})
      const flooding = yield* serveRaw((res) =>
        json({ active: true, padding: "x".repeat(200_000) })(res)
      )
      const garbage = yield* serveRaw(json({ active: "yes" }))
      const failing = yield* serveRaw((res) => res.writeHead(500).end("oops"))
      const down = yield* serveRaw(json({}))
      yield* Effect.promise(() => new Promise<void>((r) => down.server.close(() => r())))
      for (const as of [hanging, flooding, garbage, failing, down]) {
        const verifier = yield* verifierFor(base(as.url))
        const started = Date.now()
        const result = yield* Effect.either(verifier.verify("t"))
        expect(Either.isLeft(result)).toBe(true)
        expect(Date.now() - started).toBeLessThan(2000)
        yield* Effect.either(verifier.verify("t"))
        const call = yield* protect(verifier, "http://127.0.0.1/mcp")
        expect(yield* call("t")).toBe(503)
      }
      // not cached: every verification asked again
      expect(garbage.counts.introspections).toBe(3)
      expect(hanging.counts.introspections).toBe(3)
    }))
})

describe("IntrospectionTokenVerifier against oidc-provider (opaque tokens)", () => {
  it.scopedLive("client_secret_basic, client_secret_post and private_key_jwt; cached; revoked, foreign-audience and unknown tokens are None", () =>
    Effect.gen(function*() {
      const resource = "http://127.0.0.1:9/mcp"
      const { privateKey, publicKey } = yield* Effect.promise(() => generateKeyPair("ES256", { extractable: true }))
      const publicJwk = yield* Effect.promise(() => exportJWK(publicKey))
      const pem = yield* Effect.promise(() => exportPKCS8(privateKey))
      const op = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startOidcProvider({
            resource,
            accessTokenFormat: "opaque",
            introspection: true,
            clientCredentials: true,
            registration: false,
            clients: [
              {
                client_id: "app",
                client_secret: "app-secret",
                grant_types: ["client_credentials"],
                redirect_uris: [],
                response_types: [],
                scope: "mcp:read mcp:write"
              },
              {
                client_id: "rs",
                client_secret: RS_SECRET,
                grant_types: [],
                redirect_uris: [],
                response_types: [],
                token_endpoint_auth_method: "client_secret_basic"
              },
              {
                client_id: "rs-post",
                client_secret: RS_SECRET,
                grant_types: [],
                redirect_uris: [],
                response_types: [],
                token_endpoint_auth_method: "client_secret_post"
              },
              {
                client_id: "rs-jwt",
                grant_types: [],
                redirect_uris: [],
                response_types: [],
                token_endpoint_auth_method: "private_key_jwt",
                jwks: { keys: [{ ...publicJwk, alg: "ES256", use: "sig" }] }
              }
            ]
          })
        ),
        (server) => Effect.promise(() => server.close())
      )
      const clientCredentials = Effect.map(
        postForm(`${op.issuer}/token`, { grant_type: "client_credentials", scope: "mcp:read", resource }, {
          authorization: basic("app", "app-secret")
        }),
        (r) => {
          expect(r.status).toBe(200)
          return String(r.body["access_token"])
        }
      )
      const token = yield* clientCredentials
      expect(token.split(".")).toHaveLength(1) // opaque, not a JWT

      const common = { issuer: op.issuer, audience: resource }
      const viaBasic = yield* verifierFor({ ...common, clientId: "rs", clientAuthentication: basicAuth })
      const viaPost = yield* verifierFor({
        ...common,
        clientId: "rs-post",
        clientAuthentication: { method: "client_secret_post", clientSecret: Redacted.make(RS_SECRET) }
      })
      const viaJwt = yield* verifierFor({
        ...common,
        clientId: "rs-jwt",
        clientAuthentication: { method: "private_key_jwt", privateKeyPem: Redacted.make(pem), algorithm: "ES256" }
      })
      for (const verifier of [viaBasic, viaPost, viaJwt]) {
        const claims = yield* verifier.verify(token)
        expect(Option.map(claims, (c) => [c.clientId, c.scopes, c.resource])).toEqual(
          Option.some(["app", ["mcp:read"], resource])
        )
        yield* verifier.verify(token)
      }
      // three verifiers, each asked twice: three introspections (the second answer came from the cache)
      expect(op.counts.introspections).toBe(3)

      const wrongAudience = yield* verifierFor({ ...common, audience: "http://127.0.0.1:9/other", clientId: "rs", clientAuthentication: basicAuth })
      expect(Option.isNone(yield* wrongAudience.verify(token))).toBe(true)
      const wrongIssuer = yield* verifierFor({
        issuer: "http://127.0.0.1:1",
        introspectionEndpoint: `${op.issuer}/token/introspection`,
        audience: resource,
        clientId: "rs",
        clientAuthentication: basicAuth
      })
      expect(Option.isNone(yield* wrongIssuer.verify(token))).toBe(true)

      const revoked = yield* clientCredentials
      const revoke = yield* postForm(`${op.issuer}/token/revocation`, { token: revoked }, {
        authorization: basic("app", "app-secret")
      })
      expect(revoke.status).toBe(200)
      const fresh = yield* verifierFor({ ...common, clientId: "rs", clientAuthentication: basicAuth })
      expect(Option.isNone(yield* fresh.verify(revoked))).toBe(true)
      expect(Option.isNone(yield* fresh.verify("not-a-token"))).toBe(true)
      const call = yield* protect(fresh, resource)
      expect(yield* call(revoked)).toBe(401)
      expect(yield* call(token)).toBe(200)
    }))
})
