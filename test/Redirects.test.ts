/**
 * Redirects and credentials (issue 10 item 4), over loopback with a second, "evil" server that
 * records what it receives: OAuth endpoint calls never use an answer from a redirect, and the
 * middleware's token never goes to another origin, whatever HTTP client sits below (or above).
 *
 * With `FetchHttpClient` underneath, OAuth calls tell fetch `redirect: "error"`: there is no 3xx
 * for even `HttpClient.followRedirects` below `OAuthLayer` to follow, so nothing is re-sent.
 * What cannot hold: a non-fetch client *below* the library that follows redirects by itself
 * (`HttpClient.followRedirects` over undici under `OAuthLayer`) re-sends the request before
 * anything above it sees the 3xx. Those tests pin what the library does then: a typed error, the
 * answer unused, what was sent named (`exposed`), the tokens revoked at their issuer and forgotten.
 */
import { FetchHttpClient, HttpBody, HttpClient, type HttpClientError, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import * as Discovery from "../src/Discovery.js"
import { type OAuthError, StorageError } from "../src/Errors.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import * as Revocation from "../src/Revocation.js"
import { AuthorizationServerMetadata, ClientInformation, StoredToken } from "../src/Schemas.js"
import * as TestStorage from "../src/TestStorage.js"
import * as TokenStorage from "../src/TokenStorage.js"
import * as TokenExchange from "../src/TokenExchange.js"
import { startTestServer } from "./fixtures/TestAuthServer.js"
import { asMetadata, rawOAuthServer, type RawOAuthServer } from "./oauthRawServer.js"

const ACCESS_TOKEN = "at-for-the-mcp-server-only"
const REFRESH_TOKEN = "rt-for-the-issuer-only"
const CLIENT_SECRET = "secret-for-the-issuer-only"

/** A server that records every request and answers 200 `{}` (or a token response at /token). */
const evilServer = rawOAuthServer((request) =>
  request.path === "/token"
    ? { json: { access_token: "evil-token", token_type: "Bearer", expires_in: 3600 } }
    : { json: {} }
)

/** What reached `server` that it must never see. */
const leaks = (server: RawOAuthServer): ReadonlyArray<string> =>
  server.requests.flatMap((r) => [
    ...(r.headers["authorization"] === undefined ? [] : [`authorization: ${r.headers["authorization"]}`]),
    ...(r.headers["dpop"] === undefined ? [] : ["dpop"]),
    ...[REFRESH_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, "code_verifier"].filter((s) => r.body.includes(s))
  ])

/** A redirect to `target` for every request: 307 keeps the method and body (RFC 9110 §15.4.8). */
const redirectingServer = (target: () => string, status = 307) =>
  rawOAuthServer((request) => ({ status, headers: { location: `${target()}${request.path}` } }))

const fetchLayer = FetchHttpClient.layer
const followingFetch = Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, HttpClient.followRedirects())).pipe(
  Layer.provide(FetchHttpClient.layer)
)
const followingUndici = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(HttpClient.HttpClient, HttpClient.followRedirects())
).pipe(Layer.provide(NodeHttpClient.layerUndici))

describe("OAuth endpoint calls and redirects (issue 10 item 4)", () => {
  const discovery = (server: RawOAuthServer): Discovery.DiscoveryResult => ({
    mcpUrl: `${server.url}/mcp`,
    protectedResource: Option.none(),
    resource: `${server.url}/mcp`,
    authorizationServer: Schema.decodeUnknownSync(AuthorizationServerMetadata)(asMetadata(server.url)),
    issuer: server.url,
    legacy: false
  })
  const basicClient = (issuer: string) =>
    new ClientInformation({
      clientId: "client-1",
      clientSecret: Redacted.make(CLIENT_SECRET),
      tokenEndpointAuthMethod: "client_secret_basic",
      source: "preregistered",
      issuer,
      redirectUris: ["http://127.0.0.1:33418/callback"]
    })
  const refreshVia = (inner: Layer.Layer<HttpClient.HttpClient>) =>
    Effect.gen(function*() {
      const evil = yield* evilServer
      let evilUrl = ""
      const as = yield* redirectingServer(() => evilUrl)
      evilUrl = evil.url
      const result = yield* Effect.flatMap(TokenExchange.make(), (exchange) =>
        exchange.refresh({
          discovery: discovery(as),
          client: basicClient(as.url),
          refreshToken: Redacted.make(REFRESH_TOKEN)
        })).pipe(Effect.either, Effect.provide(inner))
      return { result, evil }
    })

  it.scopedLive("FetchHttpClient (which follows by default): a token-endpoint 307 is a typed error; the other server gets nothing", () =>
    Effect.gen(function*() {
      const { evil, result } = yield* refreshVia(fetchLayer)
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") expect(result.left).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
      expect(evil.requests).toHaveLength(0)
    }))

  it.scopedLive("HttpClient.followRedirects over undici below: the redirected answer (a token from elsewhere) is refused", () =>
    Effect.gen(function*() {
      const { result } = yield* refreshVia(followingUndici)
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") {
        expect(result.left).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
        expect(result.left.message).toContain("followed a redirect")
        // What went there is named; a client secret cannot be revoked, so the message says rotate it.
        expect(result.left).toMatchObject({ exposed: ["client_secret", "refresh_token"] })
        expect(result.left.message).toContain("rotate it at the authorization server")
        expect(result.left.message).toContain("HttpClient.followRedirects above OAuthLayer")
      }
    }))

  it.scopedLive("HttpClient.followRedirects over undici below: a code exchange sent elsewhere names the code, code_verifier and secret", () =>
    Effect.gen(function*() {
      const evil = yield* evilServer
      const as = yield* redirectingServer(() => evil.url)
      const error = yield* Effect.flatMap(TokenExchange.make(), (exchange) =>
        exchange.authorizationCode({
          discovery: discovery(as),
          client: basicClient(as.url),
          code: "the-code-1234",
          codeVerifier: Redacted.make("v".repeat(43)),
          redirectUri: "http://127.0.0.1:33418/callback"
        })).pipe(Effect.flip, Effect.provide(followingUndici))
      expect(evil.requests[0]?.form.get("code_verifier")).toBe("v".repeat(43))
      expect(error).toMatchObject({
        _tag: "OAuthRequestError",
        reason: "Redirect",
        exposed: ["authorization_code", "client_secret", "code_verifier"]
      })
      expect(error.message).toContain("sent the authorization code, the client secret and the code verifier there")
    }))

  it.scopedLive("HttpClient.followRedirects over fetch below: nothing is followed (fetch is told redirect: error), the other server gets nothing", () =>
    Effect.gen(function*() {
      const { evil, result } = yield* refreshVia(followingFetch)
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") expect(result.left).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
      expect(evil.requests).toHaveLength(0)
    }))
})

describe("metadata and revocation calls and redirects (issue 10 item 4)", () => {
  it.scopedLive("HttpClient.followRedirects below: protected-resource metadata served from elsewhere is refused", () =>
    Effect.gen(function*() {
      let mcpUrl = ""
      // The other server copies the MCP server's resource and names itself as the AS.
      const evil = yield* rawOAuthServer((request, s) =>
        request.path.startsWith("/.well-known/oauth-protected-resource")
          ? { json: { resource: mcpUrl, authorization_servers: [s.url] } }
          : request.path === "/.well-known/oauth-authorization-server"
          ? { json: asMetadata(s.url) }
          : undefined
      )
      const mcp = yield* redirectingServer(() => evil.url)
      mcpUrl = `${mcp.url}/mcp`
      const error = yield* Effect.flatMap(Discovery.make(), (d) => Effect.flip(d.discover(`${mcp.url}/mcp`))).pipe(
        Effect.provide(followingUndici)
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
    }))

  it.scopedLive("HttpClient.followRedirects below: a revocation answered from elsewhere is not success", () =>
    Effect.gen(function*() {
      const evil = yield* evilServer
      const as = yield* redirectingServer(() => evil.url)
      const error = yield* Revocation.revoke({
        endpoint: `${as.url}/revoke`,
        token: Redacted.make(REFRESH_TOKEN),
        client: new ClientInformation({
          clientId: "client-1",
          tokenEndpointAuthMethod: "none",
          source: "preregistered",
          issuer: as.url,
          redirectUris: ["http://127.0.0.1:33418/callback"]
        })
      }).pipe(Effect.flip, Effect.provide(followingUndici))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
    }))
})

describe("the middleware's token never crosses origins (issue 10 item 4)", () => {
  /** A stored Bearer token for the MCP server at `mcp`. */
  const storage = (mcp: RawOAuthServer) =>
    TestStorage.layer({
      tokens: new StoredToken({
        accessToken: Redacted.make(ACCESS_TOKEN),
        tokenType: "Bearer",
        expiresAt: Date.now() + 3_600_000,
        scopes: [],
        issuer: mcp.url,
        resource: `${mcp.url}/mcp`,
        obtainedAt: Date.now()
      })
    })

  const oauthLayer = (mcp: RawOAuthServer, inner: Layer.Layer<HttpClient.HttpClient>) =>
    HttpAuth.OAuthLayer({ mcpUrl: `${mcp.url}/mcp` }).pipe(
      Layer.provide(storage(mcp)),
      Layer.provide(Authorizer.layerHeadless()),
      Layer.provide(inner)
    )

  const post = (client: HttpClient.HttpClient.With<HttpClientError.HttpClientError | OAuthError>, url: string) =>
    client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" }) }).pipe(
      Effect.flatMap((response) => Effect.as(response.arrayBuffer, response.status)),
      Effect.scoped,
      Effect.either
    )

  /**
   * An MCP server redirecting every request to the evil server. 302, because Node's fetch cannot
   * re-send a buffered body on a 307 (it fails with "detached ArrayBuffer"), which would hide
   * what a follower does with the headers.
   */
  const servers = Effect.gen(function*() {
    const evil = yield* evilServer
    const mcp = yield* redirectingServer(() => evil.url, 302)
    return { evil, mcp }
  })

  it.scopedLive("a redirect follower above the middleware (HttpAuth.authenticate) does not carry the token", () =>
    Effect.gen(function*() {
      const { evil, mcp } = yield* servers
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const inner = Context.get(yield* Layer.build(NodeHttpClient.layerUndici), HttpClient.HttpClient)
        const client = HttpClient.followRedirects(HttpAuth.authenticate(inner, oauth))
        return yield* post(client, `${mcp.url}/mcp`)
      }).pipe(Effect.provide(oauthLayer(mcp, NodeHttpClient.layerUndici)))
      expect(Either.getOrUndefined(result)).toBe(200)
      expect(mcp.requests[0]?.headers["authorization"]).toBe(`Bearer ${ACCESS_TOKEN}`)
      expect(evil.requests).toHaveLength(1)
      expect(leaks(evil)).toEqual([])
    }))

  it.scopedLive("a redirect follower above OAuthLayer's client does not carry the token", () =>
    Effect.gen(function*() {
      const { evil, mcp } = yield* servers
      const result = yield* Effect.flatMap(HttpClient.HttpClient, (client) =>
        post(HttpClient.followRedirects(client), `${mcp.url}/mcp`)).pipe(
          Effect.provide(oauthLayer(mcp, NodeHttpClient.layerUndici))
        )
      expect(Either.getOrUndefined(result)).toBe(200)
      expect(evil.requests).toHaveLength(1)
      expect(leaks(evil)).toEqual([])
    }))

  it.scopedLive("a client below that adds a base URL still gets the token on the MCP origin (its preprocessing runs first)", () =>
    Effect.gen(function*() {
      const mcp = yield* rawOAuthServer(() => ({ json: {} }))
      const withBaseUrl = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.prependUrl(mcp.url)))
      ).pipe(Layer.provide(NodeHttpClient.layerUndici))
      const result = yield* Effect.flatMap(HttpClient.HttpClient, (client) => post(client, "/mcp")).pipe(
        Effect.provide(oauthLayer(mcp, withBaseUrl))
      )
      expect(Either.getOrUndefined(result)).toBe(200)
      expect(mcp.requests[0]?.headers["authorization"]).toBe(`Bearer ${ACCESS_TOKEN}`)
    }))

  it.scopedLive("FetchHttpClient below (fetch follows by itself): the other origin never sees the token", () =>
    Effect.gen(function*() {
      const { evil, mcp } = yield* servers
      yield* Effect.flatMap(HttpClient.HttpClient, (client) => post(client, `${mcp.url}/mcp`)).pipe(
        Effect.provide(oauthLayer(mcp, fetchLayer))
      )
      expect(mcp.requests[0]?.headers["authorization"]).toBe(`Bearer ${ACCESS_TOKEN}`)
      expect(leaks(evil)).toEqual([])
    }))

  it.scopedLive("HttpClient.followRedirects over FetchHttpClient below: fetch follows first, without the token", () =>
    Effect.gen(function*() {
      const { evil, mcp } = yield* servers
      yield* Effect.flatMap(HttpClient.HttpClient, (client) => post(client, `${mcp.url}/mcp`)).pipe(
        Effect.provide(oauthLayer(mcp, followingFetch))
      )
      expect(evil.requests).toHaveLength(1)
      expect(leaks(evil)).toEqual([])
    }))

  it.scopedLive("HttpClient.followRedirects over undici below OAuthLayer: the foreign answer is a typed Redirect error", () =>
    Effect.gen(function*() {
      const { mcp } = yield* servers
      const result = yield* Effect.flatMap(HttpClient.HttpClient, (client) => post(client, `${mcp.url}/mcp`)).pipe(
        Effect.provide(oauthLayer(mcp, followingUndici))
      )
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") {
        const error = result.left
        expect(HttpAuth.isOAuthError(error) ? error : error.cause).toMatchObject({
          _tag: "OAuthRequestError",
          reason: "Redirect"
        })
      }
    }))
})

/**
 * Damage limitation (issue 10 item 4): a redirect follower below `OAuthLayer` (undici) sends the
 * credentials before anything above it sees the 3xx. The library then treats them as leaked:
 * revoked at their issuer, forgotten, a typed error that says so; the next call signs in again.
 */
describe("credentials a client below sent elsewhere are revoked and forgotten (issue 10 item 4)", () => {
  /** An AS (the embedded one), a resource server in front that redirects `redirects` authorized requests to `evil`. */
  const setup = (redirects: number) =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const evil = yield* evilServer
      let left = redirects
      const front = yield* rawOAuthServer((request, s) => {
        if (request.path.startsWith("/.well-known/oauth-protected-resource")) {
          return { json: { resource: `${s.url}/mcp`, authorization_servers: [server.issuer] } }
        }
        if (request.path !== "/mcp") return undefined
        if (request.headers["authorization"] === undefined) {
          return {
            status: 401,
            json: {},
            headers: {
              "www-authenticate": `Bearer resource_metadata="${s.url}/.well-known/oauth-protected-resource/mcp"`
            }
          }
        }
        if (left > 0) {
          left--
          return { status: 302, headers: { location: `${evil.url}/mcp` } }
        }
        return { json: { jsonrpc: "2.0", id: 1, result: {} } }
      })
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
      const issued = yield* server.issueToken({
        clientId: registered.clientId,
        refreshToken: true,
        resource: `${front.url}/mcp`
      })
      const token = (expiresAt: number) =>
        new StoredToken({
          accessToken: issued.accessToken,
          tokenType: "Bearer",
          ...(issued.refreshToken === undefined ? {} : { refreshToken: issued.refreshToken }),
          expiresAt,
          scopes: [],
          issuer: server.issuer,
          resource: `${front.url}/mcp`,
          obtainedAt: Date.now()
        })
      const layer = (stored: StoredToken, inner: Layer.Layer<HttpClient.HttpClient>) =>
        HttpAuth.OAuthLayer({ mcpUrl: `${front.url}/mcp` }).pipe(
          Layer.provideMerge(TestStorage.layer({ tokens: stored, client })),
          // The headless sign-in reads the authorization redirect itself: a client that does not follow.
          Layer.provide(Authorizer.layerHeadless().pipe(Layer.provide(NodeHttpClient.layerUndici))),
          Layer.provide(inner)
        )
      /** Whether the AS still accepts the token (RFC 7662 introspection with the same client). */
      const active = (value: Redacted.Redacted<string>) =>
        Effect.map(server.provider.verifyAccessToken(Redacted.value(value)), Option.isSome)
      return { server, evil, front, issued, token, layer, active, client }
    })

  const call = (url: string) =>
    Effect.flatMap(HttpClient.HttpClient, (client) =>
      client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" }) }).pipe(
        Effect.flatMap((response) => Effect.as(response.arrayBuffer, response.status)),
        Effect.scoped
      ))

  const oauthError = (e: HttpClientError.HttpClientError | OAuthError) =>
    HttpAuth.isOAuthError(e) ? e : Option.getOrUndefined(HttpAuth.oauthErrorOf(e))

  /**
   * Through an `OAuthLayer` over `storage` with a redirect-following client below: the first
   * call (whose request the front server redirects elsewhere) fails, the second is made after it.
   */
  const exposeThenCall = (mcpUrl: string, storage: TokenStorage.TokenStorage) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(call(mcpUrl))
      const status = yield* call(mcpUrl)
      return { error: oauthError(error), status }
    }).pipe(
      Effect.provide(
        HttpAuth.OAuthLayer({ mcpUrl }).pipe(
          Layer.provide(Layer.succeed(TokenStorage.TokenStorage, storage)),
          Layer.provide(Authorizer.layerHeadless().pipe(Layer.provide(NodeHttpClient.layerUndici))),
          Layer.provide(followingUndici)
        )
      )
    )

  it.scopedLive("the access token sent to another origin: both tokens revoked at the AS, forgotten, and the next call signs in", () =>
    Effect.gen(function*() {
      const { active, evil, front, issued, layer, server, token } = yield* setup(1)
      const { error, status, stored } = yield* Effect.gen(function*() {
        const error = yield* Effect.flip(call(`${front.url}/mcp`))
        const stored = yield* Effect.flatMap(OAuth.OAuth, (o) => o.tokens)
        const status = yield* call(`${front.url}/mcp`)
        return { error: oauthError(error), status, stored }
      }).pipe(Effect.provide(layer(token(Date.now() + 3_600_000), followingUndici)))
      // The leak itself happened below us (that is the limit): the evil server got the token.
      expect(leaks(evil)).toEqual([`authorization: Bearer ${Redacted.value(issued.accessToken)}`])
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", exposed: ["access_token"] })
      expect(error?.message).toMatch(/revoked at .* and the tokens forgotten/)
      expect(error?.message).toContain("install HttpClient.followRedirects above OAuthLayer")
      const revoked = (yield* server.requestsTo("revoke")).map((r) => r.form["token"])
      expect(revoked).toEqual([Redacted.value(issued.refreshToken!), Redacted.value(issued.accessToken)])
      expect(yield* active(issued.accessToken)).toBe(false)
      expect(stored).toEqual(Option.none())
      // The next call signs in again and succeeds.
      expect(status).toBe(200)
      expect(yield* server.count("authorize")).toBe(1)
    }))

  it.scopedLive("a refresh stored while the exposed set is revoked is kept: only the exposed set is revoked", () =>
    Effect.gen(function*() {
      const { active, client, front, issued, server, token } = yield* setup(1)
      const mcpUrl = `${front.url}/mcp`
      const key = TokenStorage.serverKey(mcpUrl)
      const refreshed = yield* server.issueToken({ clientId: client.clientId, refreshToken: true, resource: mcpUrl })
      const [storage] = yield* TestStorage.make({ client })
      // The exposed set's revocation endpoint: while the first revocation is under way, a
      // concurrent refresh (another request's, another process's) stores a new set.
      const revoker = yield* rawOAuthServer((request) => {
        if (request.path !== "/revoke") return undefined
        if (revoker.requests.length === 1) {
          Effect.runSync(storage.setTokens(
            key,
            new StoredToken({ ...token(Date.now() + 3_600_000), accessToken: refreshed.accessToken, refreshToken: refreshed.refreshToken })
          ))
        }
        return { json: {} }
      })
      yield* storage.setTokens(key, new StoredToken({ ...token(Date.now() + 3_600_000), revocationEndpoint: `${revoker.url}/revoke` }))
      const { error, status } = yield* exposeThenCall(mcpUrl, storage)
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", exposed: ["access_token"] })
      expect(error?.message).toContain("the newer token set stored meanwhile kept")
      // The exposed set, and only it, was revoked.
      expect(revoker.requests.map((r) => r.form.get("token"))).toEqual([
        Redacted.value(issued.refreshToken!),
        Redacted.value(issued.accessToken)
      ])
      // The refreshed set is still stored, and the next call uses it: no new sign-in.
      const kept = yield* storage.getTokens(key)
      expect(Option.map(kept, (t) => Redacted.value(t.accessToken))).toEqual(Option.some(Redacted.value(refreshed.accessToken)))
      expect(status).toBe(200)
      expect(front.requests.at(-1)?.headers["authorization"]).toBe(`Bearer ${Redacted.value(refreshed.accessToken)}`)
      expect(yield* server.count("authorize")).toBe(0)
      expect(yield* active(refreshed.accessToken)).toBe(true)
    }))

  it.scopedLive("the exposed set was only in memory (storage refused it): it is revoked and never stored later", () =>
    Effect.gen(function*() {
      const { active, client, front, server, token } = yield* setup(1)
      const mcpUrl = `${front.url}/mcp`
      const [storage, test] = yield* TestStorage.make({ client })
      yield* storage.setTokens(TokenStorage.serverKey(mcpUrl), token(Date.now() - 1000))
      // The refresh's set cannot be stored: it is kept in memory, and the request carrying it is
      // redirected to another origin by the client below.
      yield* test.failNext("setTokens", new StorageError({ reason: "Io", detail: "disk full" }))
      const { error, status } = yield* exposeThenCall(mcpUrl, storage)
      const refreshed = front.requests.map((r) => r.headers["authorization"]).find((a) => a !== undefined)!
      const exposed = Redacted.make(refreshed.replace("Bearer ", ""))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", exposed: ["access_token"] })
      expect(error?.message).toMatch(/revoked at .* and the tokens forgotten/)
      expect((yield* server.requestsTo("revoke")).map((r) => r.form["token"])).toContain(Redacted.value(exposed))
      expect(yield* active(exposed)).toBe(false)
      // The next call never carries it, nor is it written once storage accepts writes again.
      expect(status).toBe(200)
      expect(front.requests.at(-1)?.headers["authorization"]).not.toBe(refreshed)
      const stored = yield* storage.getTokens(TokenStorage.serverKey(mcpUrl))
      expect(Option.map(stored, (t) => Redacted.value(t.accessToken))).not.toEqual(Option.some(Redacted.value(exposed)))
    }))

  it.scopedLive("a token-endpoint 307 sent the refresh token elsewhere: it is revoked at its issuer and forgotten", () =>
    Effect.gen(function*() {
      const { active, evil, front, issued, layer, server, token } = yield* setup(0)
      yield* server.setFaults({ tokenRedirect: `${evil.url}/token` })
      const { error, status, stored } = yield* Effect.gen(function*() {
        const error = yield* Effect.flip(call(`${front.url}/mcp`))
        const stored = yield* Effect.flatMap(OAuth.OAuth, (o) => o.tokens)
        yield* server.setFaults({ tokenRedirect: undefined })
        const status = yield* call(`${front.url}/mcp`)
        return { error: oauthError(error), status, stored }
      }).pipe(Effect.provide(layer(token(Date.now() - 1000), followingUndici)))
      expect(evil.requests.some((r) => r.form.get("refresh_token") === Redacted.value(issued.refreshToken!))).toBe(true)
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", exposed: ["refresh_token"] })
      expect(error?.message).toMatch(/sent the refresh token there/)
      expect(error?.message).toMatch(/revoked at .* and the tokens forgotten/)
      const revoked = (yield* server.requestsTo("revoke")).map((r) => r.form["token"])
      expect(revoked).toContain(Redacted.value(issued.refreshToken!))
      expect(stored).toEqual(Option.none())
      expect(yield* active(issued.accessToken)).toBe(false)
      // The next call signs in again.
      expect(status).toBe(200)
      expect(yield* server.count("authorize")).toBe(1)
    }))

  it.scopedLive("the issuer refuses to revoke the exposed refresh token: the error says that it stays usable", () =>
    Effect.gen(function*() {
      const { evil, front, layer, server, token } = yield* setup(0)
      yield* server.setFaults({ tokenRedirect: `${evil.url}/token` })
      const revoker = yield* rawOAuthServer((request) =>
        request.path === "/revoke" ? { status: 503, json: { error: "temporarily_unavailable" } } : undefined
      )
      const expired = new StoredToken({ ...token(Date.now() - 1000), revocationEndpoint: `${revoker.url}/revoke` })
      const error = yield* Effect.flip(call(`${front.url}/mcp`)).pipe(Effect.provide(layer(expired, followingUndici)))
      expect(revoker.requests).toHaveLength(2)
      expect(oauthError(error)).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", exposed: ["refresh_token"] })
      expect(oauthError(error)?.message).toMatch(
        /revocation at .* failed \(revoking the refresh_token failed: the revocation endpoint answered temporarily_unavailable \(HTTP 503\)/
      )
      expect(oauthError(error)?.message).toContain(
        "the exposed refresh token was not revoked and stays usable until the authorization server expires it"
      )
    }))

  it.scopedLive("HttpClient.followRedirects over FetchHttpClient below: a token-endpoint 307 sends nothing elsewhere", () =>
    Effect.gen(function*() {
      const { evil, front, layer, server, token } = yield* setup(0)
      yield* server.setFaults({ tokenRedirect: `${evil.url}/token` })
      const error = yield* Effect.flip(call(`${front.url}/mcp`)).pipe(
        Effect.provide(layer(token(Date.now() - 1000), followingFetch))
      )
      expect(evil.requests).toHaveLength(0)
      expect(oauthError(error)).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
    }))
})
