import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted, Schema, Scope, TestClock } from "effect"
import * as jose from "jose"
import { createServer } from "node:http"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as JwtTokenVerifier from "../../src/server/JwtTokenVerifier.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as RemoteAuthProvider from "../../src/server/RemoteAuthProvider.js"
import { request } from "./http.js"

const ISSUER = "https://as.example.com"
const RESOURCE = "https://mcp.example.com/mcp"

const keyPair = Effect.promise(async () => {
  const pair = await jose.generateKeyPair("ES256", { extractable: true })
  const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }
  return { ...pair, jwks: { keys: [jwk] } }
})

type Pair = Effect.Effect.Success<typeof keyPair>

const sign = (
  pair: Pair,
  claims: Record<string, unknown> = {},
  options: {
    readonly issuer?: string
    readonly audience?: string | Array<string>
    readonly exp?: number
    /** The `typ` header (default `at+jwt`); `null` leaves it out. */
    readonly typ?: string | null
  } = {}
) =>
  Effect.promise(() => {
    const now = Math.floor(Date.now() / 1000)
    return new jose.SignJWT({ client_id: "client-1", scope: "read write", ...claims })
      .setProtectedHeader({
        alg: "ES256",
        kid: "k1",
        ...(options.typ === null ? {} : { typ: options.typ ?? "at+jwt" })
      })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? RESOURCE)
      .setSubject("alice")
      .setIssuedAt(now)
      .setExpirationTime(options.exp ?? now + 600)
      .sign(pair.privateKey)
  })

/** A JWKS endpoint on loopback; `hits` counts fetches. */
const serveJwks = (jwks: jose.JSONWebKeySet) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    let hits = 0
    yield* server.serve(
      HttpRouter.empty.pipe(
        HttpRouter.get("/jwks", Effect.sync(() => {
          hits++
          return HttpServerResponse.unsafeJson(jwks)
        })),
        HttpRouter.get("/broken", Effect.succeed(HttpServerResponse.text("<html>oops</html>", { status: 500 })))
      )
    )
    const base = HttpServer.formatAddress(server.address)
    return { url: `${base}/jwks`, broken: `${base}/broken`, hits: () => hits }
  }).pipe(Effect.orDie)

const verify = (verifier: ReturnType<typeof JwtTokenVerifier.make>, token: string) => verifier.verify(token)

describe("JwtTokenVerifier", () => {
  it.scoped("verifies against a JWKS URL (fetched once) and maps the claims", () =>
    Effect.gen(function*() {
      const pair = yield* keyPair
      const jwks = yield* serveJwks(pair.jwks)
      const verifier = JwtTokenVerifier.make({ jwksUrl: jwks.url, issuer: ISSUER, audience: RESOURCE })
      const token = yield* sign(pair)
      const claims = Option.getOrThrow(yield* verify(verifier, token))
      expect(claims.subject).toBe("alice")
      expect(claims.clientId).toBe("client-1")
      expect(claims.scopes).toEqual(["read", "write"])
      expect(claims.resource).toBe(RESOURCE)
      expect(Redacted.value(claims.token)).toBe(token)
      expect(Option.isSome(yield* verify(verifier, yield* sign(pair, { scope: undefined, scp: ["x"] })))).toBe(true)
      expect(jwks.hits()).toBe(1)
    }))

  it.effect("refuses wrong issuer, wrong audience, foreign key, alg none, garbage and missing scopes as None", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.now())
      const pair = yield* keyPair
      const other = yield* keyPair
      const verifier = JwtTokenVerifier.make({
        jwks: pair.jwks,
        issuer: ISSUER,
        audience: RESOURCE,
        requiredScopes: ["read"]
      })
      const none = (token: string) => Effect.map(verify(verifier, token), Option.isNone)
      expect(yield* none(yield* sign(pair, {}, { issuer: "https://evil.example.com" }))).toBe(true)
      expect(yield* none(yield* sign(pair, {}, { audience: "https://other.example.com/mcp" }))).toBe(true)
      expect(yield* none(yield* sign(other))).toBe(true)
      expect(yield* none(yield* sign(pair, { scope: "write" }))).toBe(true)
      const unsigned = new jose.UnsecuredJWT({ scope: "read" }).setIssuer(ISSUER).setAudience(RESOURCE).setSubject(
        "alice"
      ).setExpirationTime("10m").encode()
      expect(yield* none(unsigned)).toBe(true)
      expect(yield* none("not-a-jwt")).toBe(true)
      expect(yield* none(yield* sign(pair))).toBe(false)
      // one of several audiences is enough, and it is the one reported as the resource
      const multi = yield* verify(verifier, yield* sign(pair, {}, { audience: ["https://x.example", RESOURCE] }))
      expect(Option.map(multi, (t) => t.resource)).toEqual(Option.some(RESOURCE))
    }))

  it.effect("RFC 9068 §4: typ must be at+jwt (or application/at+jwt) unless acceptPlainJwt is set", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.now())
      const pair = yield* keyPair
      const strict = JwtTokenVerifier.make({ jwks: pair.jwks, issuer: ISSUER, audience: RESOURCE })
      const plain = JwtTokenVerifier.make({ jwks: pair.jwks, issuer: ISSUER, audience: RESOURCE, acceptPlainJwt: true })
      const isSome = (verifier: typeof strict, token: string) => Effect.map(verify(verifier, token), Option.isSome)
      expect(yield* isSome(strict, yield* sign(pair))).toBe(true)
      expect(yield* isSome(strict, yield* sign(pair, {}, { typ: "application/at+jwt" }))).toBe(true)
      // an ID token or any other JWT signed with the same keys is not an access token
      expect(yield* isSome(strict, yield* sign(pair, {}, { typ: "JWT" }))).toBe(false)
      expect(yield* isSome(strict, yield* sign(pair, {}, { typ: null }))).toBe(false)
      expect(yield* isSome(plain, yield* sign(pair, {}, { typ: "JWT" }))).toBe(true)
      expect(yield* isSome(plain, yield* sign(pair, {}, { typ: null }))).toBe(true)
    }))

  it.effect("expiry honours the leeway (30 s by default), on the Effect clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.now())
      const pair = yield* keyPair
      const now = Math.floor(Date.now() / 1000)
      const strict = JwtTokenVerifier.make({ key: pair.publicKey, issuer: ISSUER, audience: RESOURCE, clockTolerance: 0 })
      const lenient = JwtTokenVerifier.make({ key: pair.publicKey, issuer: ISSUER, audience: RESOURCE })
      const justExpired = yield* sign(pair, {}, { exp: now - 10 })
      const longExpired = yield* sign(pair, {}, { exp: now - 120 })
      expect(Option.isNone(yield* verify(strict, justExpired))).toBe(true)
      expect(Option.isSome(yield* verify(lenient, justExpired))).toBe(true)
      expect(Option.isNone(yield* verify(lenient, longExpired))).toBe(true)
      // the verifier reads Effect's Clock: an hour later, a fresh token has expired too
      const fresh = yield* sign(pair)
      expect(Option.isSome(yield* verify(lenient, fresh))).toBe(true)
      yield* TestClock.adjust("1 hour")
      expect(Option.isNone(yield* verify(lenient, fresh))).toBe(true)
    }))

  it.scoped("an unreachable or broken JWKS is TokenVerifierError, not an invalid token; plain http off loopback is refused", () =>
    Effect.gen(function*() {
      const pair = yield* keyPair
      const jwks = yield* serveJwks(pair.jwks)
      const token = yield* sign(pair)
      const broken = JwtTokenVerifier.make({ jwksUrl: jwks.broken, issuer: ISSUER, audience: RESOURCE })
      const brokenResult = yield* Effect.either(verify(broken, token))
      expect(Either.isLeft(brokenResult) && brokenResult.left._tag).toBe("TokenVerifierError")
      // a port nothing listens on: a closed scope's server
      const closed = yield* Effect.gen(function*() {
        const scope = yield* Scope.make()
        const s = yield* serveJwks(pair.jwks).pipe(Scope.extend(scope))
        yield* Scope.close(scope, Effect.void as never)
        return s.url
      })
      const down = JwtTokenVerifier.make({ jwksUrl: closed, issuer: ISSUER, audience: RESOURCE })
      expect(Either.isLeft(yield* Effect.either(verify(down, token)))).toBe(true)
      const insecure = JwtTokenVerifier.make({ jwksUrl: "http://keys.example.com/jwks", issuer: ISSUER, audience: RESOURCE })
      const refused = yield* Effect.either(verify(insecure, token))
      expect(Either.isLeft(refused) && refused.left.detail).toContain("not https")
    }))

  it.scoped("behind RemoteAuthProvider: 200 with a valid JWT, 401 invalid_token with a bad one, 503 when keys are unavailable", () =>
    Effect.gen(function*() {
      const pair = yield* keyPair
      const jwks = yield* serveJwks(pair.jwks)
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" }).pipe(Effect.orDie)
      const base = HttpServer.formatAddress(server.address)
      const resource = `${base}/mcp`
      const endpoint = McpEndpoint.make({
        name: "jwt",
        tools: [McpEndpoint.tool({ name: "ping", parameters: Schema.Struct({}), handler: () => Effect.succeed("pong") })]
      })
      const provider = (jwksUrl: string) =>
        RemoteAuthProvider.make(
          { baseUrl: base, authorizationServers: [ISSUER], scopesSupported: ["read"] },
          JwtTokenVerifier.make({ jwksUrl, issuer: ISSUER, audience: resource })
        )
      yield* server.serve(
        HttpRouter.concat(
          AuthProvider.protect(provider(jwks.url), "/mcp", endpoint),
          HttpRouter.mount(HttpRouter.empty, "/down", AuthProvider.protect(provider(jwks.broken), "/mcp", endpoint))
        )
      )
      const call = (url: string, token: string) =>
        request(url, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "ping" } })
        })
      const good = yield* sign(pair, {}, { audience: resource })
      const ok = yield* call(resource, good)
      expect(ok.status).toBe(200)
      expect(ok.body["result"]).toEqual({ content: [{ type: "text", text: "pong" }] })
      const foreign = yield* call(resource, yield* sign(pair))
      expect(foreign.status).toBe(401)
      expect(foreign.headers.get("www-authenticate")).toContain(`error="invalid_token"`)
      expect(foreign.headers.get("www-authenticate")).toContain(
        `resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`
      )
      const prm = yield* request(`${base}/.well-known/oauth-protected-resource/mcp`)
      expect(prm.body).toMatchObject({ resource, authorization_servers: [ISSUER], scopes_supported: ["read"] })
      expect((yield* request(`${base}/.well-known/oauth-protected-resource`)).body).toEqual(prm.body)
      const unavailable = yield* call(`${base}/down/mcp`, good)
      expect(unavailable.status).toBe(503)
      // the JWKS fetch error (URLs, status, body) stays on the server
      expect(unavailable.text).not.toContain("cannot verify")
      expect(unavailable.text).not.toContain("JSON Web Key Set")
    }))
})
