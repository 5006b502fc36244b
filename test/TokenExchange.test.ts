import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schema, TestClock } from "effect"
import * as Jose from "jose"
import { createHash, randomBytes } from "node:crypto"
import * as Http from "node:http"
import * as Discovery from "../src/Discovery.js"
import { AuthorizationServerMetadata, ClientInformation, type TokenEndpointAuthMethod } from "../src/Schemas.js"
import * as TokenExchange from "../src/TokenExchange.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"
import { asMetadata, rawOAuthServer, type RawOAuthServer, type RecordedRequest, type Reply } from "./oauthRawServer.js"

const REDIRECT = "http://127.0.0.1:33418/callback"
const SECRET = "pä ss:wörd+/%&=?#€🔑"
const CLIENT_ID = "client:id with space&é"

/** Runs `body` with TokenExchange (and Discovery) built on undici. */
const withServices = <A, E, R>(
  body: (services: { readonly exchange: TokenExchange.TokenExchange; readonly discovery: Discovery.Discovery }) =>
    Effect.Effect<A, E, R>,
  config: TokenExchange.TokenExchangeConfig = {}
) =>
  Effect.all({ exchange: TokenExchange.make(config), discovery: Discovery.make() }).pipe(
    Effect.flatMap(body),
    Effect.provide(NodeHttpClient.layerUndici)
  )

const withExchange = <A, E, R>(
  body: (exchange: TokenExchange.TokenExchange) => Effect.Effect<A, E, R>,
  config: TokenExchange.TokenExchangeConfig = {}
) => withServices(({ exchange }) => body(exchange), config)

/** A discovery result for the raw server as issuer (token endpoint `/token`). */
const rawDiscovery = (server: RawOAuthServer): Discovery.DiscoveryResult => ({
  mcpUrl: `${server.url}/mcp`,
  protectedResource: Option.none(),
  resource: `${server.url}/mcp`,
  authorizationServer: Schema.decodeUnknownSync(AuthorizationServerMetadata)(asMetadata(server.url)),
  issuer: server.url,
  legacy: false
})

const client = (
  method: TokenEndpointAuthMethod,
  issuer: string,
  options: { readonly clientId?: string; readonly secret?: string } = {}
) =>
  new ClientInformation({
    clientId: options.clientId ?? "client-1",
    ...(options.secret === undefined ? {} : { clientSecret: Redacted.make(options.secret) }),
    tokenEndpointAuthMethod: method,
    source: "preregistered",
    issuer,
    redirectUris: [REDIRECT]
  })

/** A raw token endpoint at `/token` answering `reply`. */
const tokenServer = (reply: (request: RecordedRequest) => Reply) =>
  rawOAuthServer((req) => (req.path === "/token" ? reply(req) : undefined))

const bearer = (extra: Record<string, unknown> = {}): Reply => ({
  json: { access_token: "at-1", token_type: "Bearer", expires_in: 3600, ...extra },
  headers: { "cache-control": "no-store" }
})

/** Server side of client_secret_basic: Base64 → split at the first colon → form-decode each half. */
const decodeBasic = (header: string | undefined): readonly [string, string] | undefined => {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? "")
  if (match?.[1] === undefined) return undefined
  const decoded = Buffer.from(match[1], "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "))
  return [formDecode(decoded.slice(0, colon)), formDecode(decoded.slice(colon + 1))]
}

const codeGrant = {
  code: "the-code",
  codeVerifier: Redacted.make("v".repeat(43)),
  redirectUri: REDIRECT
}

describe("TokenExchange helpers", () => {
  it("formUrlEncode encodes reserved and non-ASCII characters (RFC 6749 §2.3.1 / Appendix B)", () => {
    expect(TokenExchange.formUrlEncode("a b+c:d/é")).toBe("a+b%2Bc%3Ad%2F%C3%A9")
  })

  it("basicAuthorization round-trips through a server-side decoder", () => {
    expect(decodeBasic(TokenExchange.basicAuthorization(CLIENT_ID, Redacted.make(SECRET)))).toEqual([
      CLIENT_ID,
      SECRET
    ])
  })

  it("parseScope splits on spaces and drops empty tokens", () => {
    expect(TokenExchange.parseScope(" read  write ")).toEqual(["read", "write"])
    expect(TokenExchange.parseScope(undefined)).toEqual([])
  })
})

describe("TokenExchange: authorization_code request", () => {
  it.scopedLive("public client: code, redirect_uri, code_verifier, resource and client_id in the form body", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer({ scope: "read write", refresh_token: "rt-1" }))
      const discovery = rawDiscovery(server)
      const before = Date.now()
      const token = yield* withExchange((exchange) =>
        exchange.authorizationCode({
          ...codeGrant,
          discovery,
          client: client("none", server.url),
          resource: `${server.url}/mcp`,
          scopes: ["ignored-because-the-response-says"]
        })
      )
      const after = Date.now()
      const [request] = server.requests
      expect(request?.method).toBe("POST")
      expect(request?.headers["content-type"]).toContain("application/x-www-form-urlencoded")
      expect(request?.headers["authorization"]).toBeUndefined()
      expect(Object.fromEntries(request?.form ?? [])).toStrictEqual({
        grant_type: "authorization_code",
        code: "the-code",
        redirect_uri: REDIRECT,
        code_verifier: "v".repeat(43),
        resource: `${server.url}/mcp`,
        client_id: "client-1"
      })
      expect(Redacted.value(token.accessToken)).toBe("at-1")
      expect(token.tokenType).toBe("Bearer")
      expect(token.refreshToken === undefined ? undefined : Redacted.value(token.refreshToken)).toBe("rt-1")
      expect(token.scopes).toEqual(["read", "write"])
      expect(token.issuer).toBe(server.url)
      expect(token.resource).toBe(`${server.url}/mcp`)
      // Absolute expiry: now + expires_in * 1000.
      expect(token.expiresAt).toBeGreaterThanOrEqual(before + 3600_000)
      expect(token.expiresAt).toBeLessThanOrEqual(after + 3600_000)
      expect(token.obtainedAt).toBeGreaterThanOrEqual(before)
      expect(token.obtainedAt).toBeLessThanOrEqual(after)
    }))

  it.scopedLive("no resource parameter when none is given; requested scopes kept when the response omits scope", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer({ expires_in: undefined }))
      const token = yield* withExchange((exchange) =>
        exchange.authorizationCode({
          ...codeGrant,
          discovery: rawDiscovery(server),
          client: client("none", server.url),
          scopes: ["read", "mcp:tools"]
        })
      )
      expect(server.requests[0]?.form.has("resource")).toBe(false)
      expect(token.scopes).toEqual(["read", "mcp:tools"])
      expect(token.expiresAt).toBeUndefined()
      expect(token.resource).toBeUndefined()
      expect(token.refreshToken).toBeUndefined()
    }))

  it.scopedLive("token_type is case-insensitive and expires_in may be a string", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer({ token_type: "bearer", expires_in: "60" }))
      const before = Date.now()
      const token = yield* withExchange((exchange) =>
        exchange.authorizationCode({ ...codeGrant, discovery: rawDiscovery(server), client: client("none", server.url) })
      )
      expect(token.tokenType).toBe("Bearer")
      expect(token.expiresAt).toBeGreaterThanOrEqual(before + 60_000)
      expect(token.expiresAt).toBeLessThan(before + 120_000)
    }))

  it.scoped("expiry is absolute on the Effect clock (TestClock)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_000)
      const server = yield* tokenServer(() => bearer({ expires_in: 120 }))
      const token = yield* withExchange((exchange) =>
        exchange.authorizationCode({ ...codeGrant, discovery: rawDiscovery(server), client: client("none", server.url) })
      )
      expect(token.obtainedAt).toBe(1_700_000_000_000)
      expect(token.expiresAt).toBe(1_700_000_120_000)
      expect(token.expiresIn(1_700_000_000_000)).toBe(120)
      expect(token.isExpired(1_700_000_119_999)).toBe(false)
      expect(token.isExpired(1_700_000_120_000)).toBe(true)
    }))
})

describe("TokenExchange: client authentication", () => {
  it.scopedLive("client_secret_basic: Base64 of form-encoded id ':' secret; no client_id or secret in the body", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      yield* withExchange((exchange) =>
        exchange.authorizationCode({
          ...codeGrant,
          discovery: rawDiscovery(server),
          client: client("client_secret_basic", server.url, { clientId: CLIENT_ID, secret: SECRET })
        })
      )
      const [request] = server.requests
      expect(decodeBasic(request?.headers["authorization"])).toEqual([CLIENT_ID, SECRET])
      expect(request?.form.has("client_id")).toBe(false)
      expect(request?.form.has("client_secret")).toBe(false)
      expect(request?.body).not.toContain("w%C3%B6rd")
    }))

  it.scopedLive("client_secret_post: client_id and client_secret in the body, no Authorization header", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      yield* withExchange((exchange) =>
        exchange.authorizationCode({
          ...codeGrant,
          discovery: rawDiscovery(server),
          client: client("client_secret_post", server.url, { clientId: CLIENT_ID, secret: SECRET })
        })
      )
      const [request] = server.requests
      expect(request?.headers["authorization"]).toBeUndefined()
      expect(request?.form.get("client_id")).toBe(CLIENT_ID)
      expect(request?.form.get("client_secret")).toBe(SECRET)
    }))

  it.scopedLive("private_key_jwt: an ES256 assertion whose iss/sub/aud/exp verify on the server side", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = yield* Effect.promise(() =>
        Jose.generateKeyPair("ES256", { extractable: true })
      )
      const pem = yield* Effect.promise(() => Jose.exportPKCS8(privateKey))
      const server = yield* tokenServer(() => bearer())
      yield* withExchange((exchange) =>
        exchange.clientCredentials({
          discovery: rawDiscovery(server),
          client: client("private_key_jwt", server.url, { clientId: "jwt-client" }),
          scopes: ["svc"]
        }), { privateKeyJwt: { privateKeyPem: Redacted.make(pem), algorithm: "ES256", keyId: "k1" } })
      const [request] = server.requests
      const form = request?.form ?? new URLSearchParams()
      expect(request?.headers["authorization"]).toBeUndefined()
      expect(form.get("grant_type")).toBe("client_credentials")
      expect(form.get("scope")).toBe("svc")
      expect(form.get("client_id")).toBe("jwt-client")
      expect(form.get("client_assertion_type")).toBe("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
      const assertion = form.get("client_assertion") ?? ""
      const verified = yield* Effect.promise(() =>
        Jose.jwtVerify(assertion, publicKey, {
          issuer: "jwt-client",
          subject: "jwt-client",
          audience: server.url,
          algorithms: ["ES256"]
        })
      )
      expect(verified.protectedHeader.kid).toBe("k1")
      const { exp, iat, jti } = verified.payload
      const now = Math.floor(Date.now() / 1000)
      expect(exp).toBeGreaterThan(now)
      expect((exp ?? 0) - (iat ?? 0)).toBe(60)
      expect(typeof jti).toBe("string")
      // A wrong key does not verify it: the server-side check is real.
      const other = yield* Effect.promise(() => Jose.generateKeyPair("ES256"))
      const rejected = yield* Effect.promise(() =>
        Jose.jwtVerify(assertion, other.publicKey).then(() => false, () => true)
      )
      expect(rejected).toBe(true)
    }))

  it.scopedLive("private_key_jwt without a configured key → OAuthRequestError, nothing sent", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      const error = yield* withExchange((exchange) =>
        Effect.flip(
          exchange.clientCredentials({
            discovery: rawDiscovery(server),
            client: client("private_key_jwt", server.url)
          })
        )
      )
      expect(error._tag).toBe("OAuthRequestError")
      expect(error.message).toContain("privateKeyJwt")
      expect(server.requests).toEqual([])
    }))

  it.scopedLive("client_secret_basic with a non-ASCII secret is accepted by the real authorization server", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      yield* server.registerClient({
        clientId: CLIENT_ID,
        clientSecret: SECRET,
        tokenEndpointAuthMethod: "client_secret_basic",
        grantTypes: ["client_credentials"]
      })
      const token = yield* withServices(({ discovery, exchange }) =>
        Effect.flatMap(
          discovery.discover(server.mcpUrl),
          (d) =>
            exchange.clientCredentials({
              discovery: d,
              client: client("client_secret_basic", server.issuer, { clientId: CLIENT_ID, secret: SECRET }),
              resource: d.resource
            })
        )
      )
      expect(token.issuer).toBe(server.issuer)
      const [request] = yield* server.requestsTo("token")
      expect(decodeBasic(request?.headers["authorization"])).toEqual([CLIENT_ID, SECRET])
      expect(request?.form["client_id"]).toBeUndefined()
      expect(request?.form["resource"]).toBe(server.mcpUrl)
    }))
})

/** A real authorization code from the fixture: GET /authorize (auto-approved) and read the redirect. */
const authorizationCode = (server: TestServer, clientId: string, challenge: string) =>
  Effect.async<string, Error>((resume) => {
    const url = new URL(`${server.issuer}/authorize`)
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st",
      scope: "read",
      resource: server.mcpUrl
    }).toString()
    const request = Http.get(url, { agent: false }, (res) => {
      res.resume()
      const location = res.headers.location
      const code = location === undefined ? null : new URL(location).searchParams.get("code")
      resume(code === null ? Effect.fail(new Error(`no code: ${res.statusCode} ${location}`)) : Effect.succeed(code))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
  })

describe("TokenExchange against the real authorization server", () => {
  it.scopedLive("authorization_code with PKCE, then refresh with rotation; reusing the old refresh token → invalid_grant", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["read", "write"] })
      const registered = yield* server.registerClient({ tokenEndpointAuthMethod: "none", redirectUris: [REDIRECT] })
      const info = client("none", server.issuer, { clientId: registered.clientId })
      const verifier = randomBytes(32).toString("base64url")
      const challenge = createHash("sha256").update(verifier).digest("base64url")
      const code = yield* authorizationCode(server, registered.clientId, challenge)
      yield* withServices(({ discovery, exchange }) =>
        Effect.gen(function*() {
          const d = yield* discovery.discover(server.mcpUrl)
          const context = { discovery: d, client: info, resource: d.resource, scopes: ["read"] }
          const token = yield* exchange.authorizationCode({
            ...context,
            code,
            codeVerifier: Redacted.make(verifier),
            redirectUri: REDIRECT
          })
          expect(token.scopes).toEqual(["read"])
          expect(token.resource).toBe(server.mcpUrl)
          expect(token.refreshToken).toBeDefined()
          const verified = yield* server.provider.verifyAccessToken(Redacted.value(token.accessToken))
          expect(Option.map(verified, (t) => t.clientId)).toEqual(Option.some(registered.clientId))

          const oldRefresh = token.refreshToken ?? Redacted.make("")
          const refreshed = yield* exchange.refresh({ ...context, refreshToken: oldRefresh })
          expect(refreshed.refreshToken === undefined ? undefined : Redacted.value(refreshed.refreshToken)).not.toBe(
            Redacted.value(oldRefresh)
          )
          const refreshRequest = (yield* server.requestsTo("token"))[1]
          expect(refreshRequest?.form).toMatchObject({
            grant_type: "refresh_token",
            refresh_token: Redacted.value(oldRefresh),
            scope: "read",
            resource: server.mcpUrl,
            client_id: registered.clientId
          })

          const reuse = yield* Effect.flip(exchange.refresh({ ...context, refreshToken: oldRefresh }))
          expect(reuse._tag).toBe("OAuthTokenError")
          if (reuse._tag !== "OAuthTokenError") return
          expect(reuse.error).toBe("invalid_grant")
          expect(reuse.isTransient).toBe(false)
        })
      )
    }))
})

describe("TokenExchange: refresh", () => {
  it.scopedLive("keeps the old refresh token when not rotated, sends scope, keeps scopes when omitted", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      const token = yield* withExchange((exchange) =>
        exchange.refresh({
          discovery: rawDiscovery(server),
          client: client("none", server.url),
          refreshToken: Redacted.make("rt-old"),
          scopes: ["read", "write"],
          resource: `${server.url}/mcp`
        })
      )
      expect(Object.fromEntries(server.requests[0]?.form ?? [])).toStrictEqual({
        grant_type: "refresh_token",
        refresh_token: "rt-old",
        scope: "read write",
        resource: `${server.url}/mcp`,
        client_id: "client-1"
      })
      expect(token.refreshToken === undefined ? undefined : Redacted.value(token.refreshToken)).toBe("rt-old")
      expect(token.scopes).toEqual(["read", "write"])
    }))

  it.scopedLive("a rotated refresh token replaces the old one; a narrower granted scope is recorded", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer({ refresh_token: "rt-new", scope: "read" }))
      const token = yield* withExchange((exchange) =>
        exchange.refresh({
          discovery: rawDiscovery(server),
          client: client("none", server.url),
          refreshToken: Redacted.make("rt-old"),
          scopes: ["read", "write"]
        })
      )
      expect(token.refreshToken === undefined ? undefined : Redacted.value(token.refreshToken)).toBe("rt-new")
      expect(token.scopes).toEqual(["read"])
    }))

  it.scopedLive("no scope parameter when no scopes are given", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      yield* withExchange((exchange) =>
        exchange.refresh({
          discovery: rawDiscovery(server),
          client: client("none", server.url),
          refreshToken: Redacted.make("rt-old")
        })
      )
      expect(server.requests[0]?.form.has("scope")).toBe(false)
    }))
})

describe("TokenExchange: errors", () => {
  const failWith = (reply: Reply, config: TokenExchange.TokenExchangeConfig = {}) =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => reply)
      return yield* withExchange((exchange) =>
        Effect.flip(
          exchange.authorizationCode({
            ...codeGrant,
            discovery: rawDiscovery(server),
            client: client("client_secret_basic", server.url, { secret: "s" })
          })
        ), config)
    })

  it.scopedLive("invalid_client JSON → ClientNotFound with the description", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 401,
        json: { error: "invalid_client", error_description: "Client ID not found" }
      })
      expect(error).toMatchObject({ _tag: "ClientNotFound", clientId: "client-1", description: "Client ID not found" })
      const as400 = yield* failWith({ status: 400, json: { error: "invalid_client" } })
      expect(as400._tag).toBe("ClientNotFound")
    }))

  it.scopedLive("401 without a body → ClientNotFound", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 401, headers: { "www-authenticate": "Basic realm=\"as\"" } })
      expect(error).toMatchObject({ _tag: "ClientNotFound", clientId: "client-1" })
    }))

  it.scopedLive("invalid_grant → OAuthTokenError, not transient", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 400,
        json: { error: "invalid_grant", error_description: "code expired", error_uri: "https://as.example/e" }
      })
      expect(error).toMatchObject({
        _tag: "OAuthTokenError",
        error: "invalid_grant",
        status: 400,
        errorDescription: "code expired",
        errorUri: "https://as.example/e"
      })
      expect(error._tag === "OAuthTokenError" && error.isTransient).toBe(false)
    }))

  it.scopedLive("503 without a body → server_error, transient; 429 → transient", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 503, text: "Service Unavailable" })
      expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "server_error", status: 503 })
      expect(error._tag === "OAuthTokenError" && error.isTransient).toBe(true)
      const slowDown = yield* failWith({ status: 429, json: { error: "slow_down" } })
      expect(slowDown._tag === "OAuthTokenError" && slowDown.isTransient).toBe(true)
    }))

  it.scopedLive("an HTML page with 200 → OAuthTokenError invalid_response", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ text: "<html><body>Sign in</body></html>", contentType: "text/html" })
      expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_response", status: 200 })
      expect(error._tag === "OAuthTokenError" && error.isTransient).toBe(false)
    }))

  it.scopedLive("a 400 HTML page → OAuthTokenError invalid_response with the status", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 400, text: "<html>bad</html>", contentType: "text/html" })
      expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_response", status: 400 })
    }))

  it.scopedLive("a token response without access_token (or an empty one) → invalid_response", () =>
    Effect.gen(function*() {
      const missing = yield* failWith({ json: { token_type: "Bearer" } })
      expect(missing).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_response" })
      const empty = yield* failWith(bearer({ access_token: "" }))
      expect(empty).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_response" })
    }))

  it.scopedLive("token_type mac → unsupported_token_type; DPoP without a DPoP key as well", () =>
    Effect.gen(function*() {
      const mac = yield* failWith(bearer({ token_type: "mac" }))
      expect(mac).toMatchObject({ _tag: "OAuthTokenError", error: "unsupported_token_type", status: 200 })
      const dpop = yield* failWith(bearer({ token_type: "DPoP" }))
      expect(dpop).toMatchObject({ _tag: "OAuthTokenError", error: "unsupported_token_type" })
    }))

  it.scopedLive("a redirect from the token endpoint → OAuthRequestError Redirect", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 302, headers: { location: "https://elsewhere.example/token" } })
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", status: 302 })
    }))

  it.scopedLive("a body over 1 MiB → OAuthRequestError Decode; exactly 1 MiB is read", () =>
    Effect.gen(function*() {
      const json = JSON.stringify({ access_token: "at-big", token_type: "Bearer" })
      const limit = 1024 * 1024
      const atLimit = json + " ".repeat(limit - json.length)
      const server = yield* tokenServer((req) =>
        req.form.get("code") === "big"
          ? { text: atLimit + " ", contentType: "application/json" }
          : { text: atLimit, contentType: "application/json" }
      )
      yield* withExchange((exchange) =>
        Effect.gen(function*() {
          const context = { discovery: rawDiscovery(server), client: client("none", server.url) }
          const ok = yield* exchange.authorizationCode({ ...codeGrant, ...context, code: "fits" })
          expect(Redacted.value(ok.accessToken)).toBe("at-big")
          const error = yield* Effect.flip(exchange.authorizationCode({ ...codeGrant, ...context, code: "big" }))
          expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Decode", status: 200 })
        })
      )
    }))

  it.scopedLive("no token_endpoint in the metadata → OAuthRequestError", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      const discovery = rawDiscovery(server)
      const { token_endpoint: _omitted, ...rest } = discovery.authorizationServer
      const error = yield* withExchange((exchange) =>
        Effect.flip(
          exchange.authorizationCode({
            ...codeGrant,
            discovery: { ...discovery, authorizationServer: new AuthorizationServerMetadata(rest) },
            client: client("none", server.url)
          })
        )
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError" })
      expect(error.message).toContain("token_endpoint")
      expect(server.requests).toEqual([])
    }))

  it.scopedLive("fixture tokenStatus5xx: 503 temporarily_unavailable → transient OAuthTokenError", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ tokenStatus5xx: true })
      const error = yield* withServices(({ discovery, exchange }) =>
        Effect.flatMap(discovery.discover(server.mcpUrl), (d) =>
          Effect.flip(
            exchange.refresh({ discovery: d, client: client("none", server.issuer), refreshToken: Redacted.make("r") })
          ))
      )
      expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "temporarily_unavailable", status: 503 })
      expect(error._tag === "OAuthTokenError" && error.isTransient).toBe(true)
    }))

  it.scopedLive("fixture tokenHang with a short timeout → OAuthRequestError Timeout", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ tokenHang: true })
      const started = Date.now()
      const error = yield* withServices(({ discovery, exchange }) =>
        Effect.flatMap(discovery.discover(server.mcpUrl), (d) =>
          Effect.flip(
            exchange.refresh({ discovery: d, client: client("none", server.issuer), refreshToken: Redacted.make("r") })
          )), { timeout: "300 millis" })
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Timeout" })
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(yield* server.count("token")).toBe(1)
    }))

  it.scopedLive("an http:// non-loopback token endpoint → InsecureUrl", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer(() => bearer())
      const error = yield* withExchange((exchange) =>
        Effect.flip(
          exchange.grant({
            discovery: rawDiscovery(server),
            client: client("none", server.url),
            tokenEndpoint: "http://as.example.com/token"
          }, { grant_type: "urn:ietf:params:oauth:grant-type:token-exchange" })
        )
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      expect(server.requests).toEqual([])
    }))
})

describe("TokenExchange: what a server sends back is not trusted blindly (issue 10)", () => {
  it.scopedLive("an error description that echoes the refresh token or the client secret is scrubbed", () =>
    Effect.gen(function*() {
      const refreshToken = "RT-echoed-4f2a9c"
      const secret = "client-secret-echoed-77"
      const server = yield* tokenServer((request) => ({
        status: 400,
        json: {
          error: "invalid_grant",
          error_description: `refresh_token ${request.form.get("refresh_token")} is revoked (client secret ${secret})`
        }
      }))
      const error = yield* withExchange((exchange) =>
        Effect.flip(
          exchange.refresh({
            discovery: rawDiscovery(server),
            client: client("client_secret_basic", server.url, { secret }),
            refreshToken: Redacted.make(refreshToken)
          })
        )
      )
      expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_grant" })
      const seen = `${error.message} ${JSON.stringify(error)}`
      expect(seen).not.toContain(refreshToken)
      expect(seen).not.toContain(secret)
      expect(seen).toContain("refresh_token [redacted] is revoked")
    }))

  for (const expiresIn of ["1e400", "\"NaN\"", "\"Infinity\"", "-5"]) {
    it.scopedLive(`expires_in ${expiresIn} is an invalid response, not an expiry of NaN, Infinity or the past`, () =>
      Effect.gen(function*() {
        const server = yield* tokenServer(() => ({
          text: `{"access_token":"at","token_type":"Bearer","expires_in":${expiresIn}}`,
          contentType: "application/json"
        }))
        const error = yield* withExchange((exchange) =>
          Effect.flip(
            exchange.authorizationCode({ ...codeGrant, discovery: rawDiscovery(server), client: client("none", server.url) })
          )
        )
        expect(error).toMatchObject({ _tag: "OAuthTokenError", error: "invalid_response" })
      }))
  }
})
