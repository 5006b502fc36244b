/**
 * Redirects and credentials (issue 10 item 4), over loopback with a second, "evil" server that
 * records what it receives: OAuth endpoint calls never use an answer from a redirect, and the
 * middleware's token never goes to another origin, whatever HTTP client sits below (or above).
 *
 * What cannot hold: a client *below* the library that follows redirects by itself
 * (`HttpClient.followRedirects` under `OAuthLayer`) re-sends the request before anything above it
 * sees the 3xx. Those tests pin what the library does then: a typed error, the answer unused.
 */
import { FetchHttpClient, HttpBody, HttpClient, type HttpClientError, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import * as Discovery from "../src/Discovery.js"
import type { OAuthError } from "../src/Errors.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import * as Revocation from "../src/Revocation.js"
import { AuthorizationServerMetadata, ClientInformation, StoredToken } from "../src/Schemas.js"
import * as TestStorage from "../src/TestStorage.js"
import * as TokenExchange from "../src/TokenExchange.js"
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

  for (const [name, inner] of [["undici", followingUndici], ["fetch", followingFetch]] as const) {
    it.scopedLive(`HttpClient.followRedirects over ${name} below: the redirected answer (a token from elsewhere) is refused`, () =>
      Effect.gen(function*() {
        const { result } = yield* refreshVia(inner)
        expect(result._tag).toBe("Left")
        if (result._tag === "Left") {
          expect(result.left).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect" })
          expect(result.left.message).toContain("followed a redirect")
        }
      }))
  }
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
