import { HttpBody, HttpClient, HttpClientError } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Schema, Scope, TestClock } from "effect"
import { inspect } from "node:util"
import * as Authorizer from "../src/Authorizer.js"
import { ClientNotFound, type OAuthError } from "../src/Errors.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import { AuthorizationServerMetadata, ClientInformation, StoredDiscovery, StoredToken } from "../src/Schemas.js"
import * as TestStorage from "../src/TestStorage.js"
import { clientKey, serverKey, type TokenStorage, TokenStorage as TokenStorageTag } from "../src/TokenStorage.js"
import { seededClient, seededToken, startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"
import { asMetadata, rawOAuthServer } from "./oauthRawServer.js"

type Storage = Layer.Layer<TestStorage.TestStorage | TokenStorage>

/** OAuthLayer over undici, with the headless authorizer (or another) and test storage. */
const clientLayer = (
  server: TestServer,
  options: Partial<OAuth.OAuthOptions> = {},
  deps: { readonly storage?: Storage; readonly authorizer?: Layer.Layer<Authorizer.Authorizer, never, HttpClient.HttpClient> } = {}
) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl, ...options }).pipe(
    Layer.provideMerge(deps.storage ?? TestStorage.layer()),
    Layer.provide(deps.authorizer ?? Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const callMcp = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, {
      body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    const json = yield* response.json
    return { status: response.status, json }
  }).pipe(Effect.scoped)

/** The typed OAuth error carried by a failed request. */
const oauthFailure = <A, R>(effect: Effect.Effect<A, HttpClientError.HttpClientError, R>) =>
  Effect.flip(effect).pipe(
    Effect.map((error): OAuthError | HttpClientError.HttpClientError =>
      Option.getOrElse(HttpAuth.oauthErrorOf(error), () => error)
    )
  )

describe("OAuthLayer end to end against a loopback authorization server", () => {
  it.scopedLive("signs in on the first 401 (7 round trips), stores the token and retries the request once", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const result = yield* Effect.gen(function*() {
        const response = yield* callMcp(server.mcpUrl)
        const stored = yield* TestStorage.tokens
        return { response, stored }
      }).pipe(Effect.provide(clientLayer(server)))
      expect(result.response.status).toBe(200)
      expect(result.stored.get(serverKey(server.mcpUrl))).toBeDefined()
      const counts = yield* server.counts
      expect(counts.resource).toBe(2)
      expect(counts.prm).toBe(1)
      expect(counts.asMetadata).toBe(1)
      expect(counts.register).toBe(1)
      expect(counts.authorize).toBe(1)
      expect(counts.token).toBe(1)
      expect((yield* server.requests).length).toBe(7)
      const [authorize] = yield* server.requestsTo("authorize")
      const [token] = yield* server.requestsTo("token")
      expect(authorize!.query["code_challenge_method"]).toBe("S256")
      expect(authorize!.query["resource"]).toBe(server.mcpUrl)
      expect(token!.form["code_verifier"]).toMatch(/^[A-Za-z0-9\-._~]{43,128}$/)
      expect(token!.form["resource"]).toBe(server.mcpUrl)
    }))

  it.scopedLive("uses a valid stored token with no network call beyond the request itself", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId)
      const response = yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) }))
      )
      expect(response.status).toBe(200)
      expect(yield* server.counts).toMatchObject({ resource: 1, prm: 0, asMetadata: 0, token: 0, authorize: 0 })
    }))

  it.scopedLive("never sends the token to another origin", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const other = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId)
      yield* callMcp(other.baseUrl + "/elsewhere").pipe(
        Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) }))
      )
      const [seen] = yield* other.requests
      expect(seen!.headers["authorization"]).toBeUndefined()
    }))

  it.scopedLive("an expired token with a refresh token causes one refresh, then the request", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { expired: true, refresh: true })
      const response = yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) }))
      )
      expect(response.status).toBe(200)
      const tokenRequests = yield* server.requestsTo("token")
      expect(tokenRequests.map((r) => r.form["grant_type"])).toEqual(["refresh_token"])
      expect(tokenRequests[0]!.form["resource"]).toBe(server.mcpUrl)
      expect(yield* server.count("authorize")).toBe(0)
    }))

  it.scopedLive("200 concurrent requests with an expired token cause exactly one token request", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { expired: true, refresh: true })
      const statuses = yield* Effect.forEach(
        Array.from({ length: 200 }, () => callMcp(server.mcpUrl)),
        (e) => Effect.map(e, (r) => r.status),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) })))
      expect(statuses.every((s) => s === 200)).toBe(true)
      expect(yield* server.count("token")).toBe(1)
    }))

  it.scopedLive("200 concurrent 401s cause one discovery, one registration, one authorization", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const statuses = yield* Effect.forEach(
        Array.from({ length: 200 }, () => callMcp(server.mcpUrl)),
        (e) => Effect.map(e, (r) => r.status),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(clientLayer(server)))
      expect(statuses.every((s) => s === 200)).toBe(true)
      expect(yield* server.counts).toMatchObject({ prm: 1, asMetadata: 1, register: 1, authorize: 1, token: 1 })
    }))

  it.scopedLive("requests with a valid token never wait on the lock while a sign-in is in progress", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId)
      const release = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const blockingAuthorizer = Authorizer.layerTest((request) =>
        Deferred.succeed(entered, undefined).pipe(
          Effect.zipRight(Deferred.await(release)),
          Effect.as({ code: "never-used", state: request.state, iss: request.issuer })
        )
      )
      yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const login = yield* Effect.fork(oauth.login)
        yield* Deferred.await(entered)
        // The lock is held by the login above; a request with the valid token goes straight through.
        const response = yield* callMcp(server.mcpUrl).pipe(Effect.timeout("5 seconds"))
        expect(response.status).toBe(200)
        yield* Fiber.interrupt(login)
      }).pipe(
        Effect.provide(
          clientLayer(server, {}, {
            storage: TestStorage.layer({ tokens: token, client }),
            authorizer: blockingAuthorizer
          })
        )
      )
    }))

  it.scopedLive("closing the layer during a sign-in ends the waiting requests instead of leaving them hanging", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const entered = yield* Deferred.make<void>()
      const stuckUser = Authorizer.layerTest(() => Effect.zipRight(Deferred.succeed(entered, undefined), Effect.never))
      const layerScope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(clientLayer(server, {}, { authorizer: stuckUser }), layerScope)
      const oauth = Context.get(context, OAuth.OAuth)
      const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.fork(oauth.login))
      yield* Deferred.await(entered)
      yield* Scope.close(layerScope, Exit.void)
      const exits = yield* Effect.forEach(waiters, (f) => Fiber.await(f)).pipe(Effect.timeout("5 seconds"))
      expect(exits.every(Exit.isInterrupted)).toBe(true)
    }))

  it.scopedLive("refresh invalid_grant clears the tokens and signs in again", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { expired: true, refresh: true })
      yield* server.revokeRefreshTokens
      const result = yield* Effect.gen(function*() {
        const response = yield* callMcp(server.mcpUrl)
        return { response, ops: yield* TestStorage.operations }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) })))
      expect(result.response.status).toBe(200)
      expect(result.ops.some((o) => o.op === "clearTokens")).toBe(true)
      const grants = (yield* server.requestsTo("token")).map((r) => r.form["grant_type"])
      expect(grants).toEqual(["refresh_token", "authorization_code"])
      expect(yield* server.count("authorize")).toBe(1)
    }))

  it.scopedLive("a transient refresh failure (5xx) is a typed error and keeps the refresh token", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ tokenStatus5xx: true })
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { expired: true, refresh: true })
      const result = yield* Effect.gen(function*() {
        const error = yield* oauthFailure(callMcp(server.mcpUrl))
        return { error, stored: yield* TestStorage.tokens, ops: yield* TestStorage.operations }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) })))
      expect(result.error._tag).toBe("OAuthTokenError")
      expect(result.ops.some((o) => o.op === "clearTokens" || o.op === "clear")).toBe(false)
      expect(yield* server.count("authorize")).toBe(0)
    }))

  it.scopedLive("a refresh against an unreachable server is a typed error and keeps the refresh token", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* startTestServer().pipe(Scope.extend(scope))
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { expired: true, refresh: true })
      yield* Scope.close(scope, Exit.void)
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const error = yield* Effect.flip(oauth.accessToken)
        return { error, ops: yield* TestStorage.operations }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ tokens: token, client }) })))
      expect(result.error._tag).toBe("OAuthRequestError")
      expect(result.ops.some((o) => o.op === "clearTokens" || o.op === "clear")).toBe(false)
    }))

  it.scopedLive("a second 401 after signing in is a typed error, not a loop", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 0 })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(Effect.provide(clientLayer(server)))
      expect(error._tag).toBe("Unauthorized")
      expect(yield* server.count("authorize")).toBe(1)
      expect(yield* server.count("resource")).toBe(2)
    }))

  it.scopedLive("403 insufficient_scope steps up with the union of scopes", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["mcp:basic", "mcp:write"] })
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        yield* server.setFaults({ requiredScopes: ["mcp:basic"] })
        yield* callMcp(server.mcpUrl)
        yield* server.setFaults({ requiredScopes: ["mcp:basic", "mcp:write"] })
        const response = yield* callMcp(server.mcpUrl)
        return { response, tokens: yield* oauth.tokens }
      }).pipe(Effect.provide(clientLayer(server)))
      expect(result.response.status).toBe(200)
      const scopes = (yield* server.requestsTo("authorize")).map((r) => r.query["scope"])
      expect(scopes).toHaveLength(2)
      expect(scopes[1]!.split(" ").sort()).toEqual(["mcp:basic", "mcp:write"])
    }))

  it.scopedLive("step-up is bounded: at most 3 authorizations, then InsufficientScope", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({
        scopesSupported: ["mcp:basic", "mcp:write"],
        requiredScopes: ["mcp:basic", "mcp:write"]
      })
      // The user grants less than asked every time (unticks mcp:write on the consent screen).
      const stingyUser = Layer.effect(
        Authorizer.Authorizer,
        Effect.gen(function*() {
          const headless = yield* Authorizer.makeHeadless()
          return Authorizer.Authorizer.of({
            session: Effect.map(headless.session, (session) => ({
              redirectUri: session.redirectUri,
              authorize: (request: Authorizer.AuthorizationRequest) => {
                const url = new URL(request.url)
                url.searchParams.set("scope", "mcp:basic")
                return session.authorize({ ...request, url })
              }
            }))
          })
        })
      )
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(
        Effect.provide(clientLayer(server, {}, { authorizer: stingyUser }))
      )
      expect(error._tag).toBe("InsufficientScope")
      expect(yield* server.count("authorize")).toBe(3)
    }))

  it.scopedLive("stale client: invalid_client → cleared → registered again → retried once", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const ghost = new ClientInformation({
        clientId: "ghost-client",
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: server.issuer,
        redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      const result = yield* Effect.gen(function*() {
        const response = yield* callMcp(server.mcpUrl)
        return { response, ops: yield* TestStorage.operations }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ client: ghost }) })))
      expect(result.response.status).toBe(200)
      expect(result.ops.some((o) => o.op === "clear")).toBe(true)
      expect(yield* server.count("register")).toBe(1)
      const clientIds = (yield* server.requestsTo("authorize")).map((r) => r.query["client_id"])
      expect(clientIds[0]).toBe("ghost-client")
      expect(clientIds.at(-1)).not.toBe("ghost-client")
    }))

  it.scopedLive("stale client twice: the second ClientNotFound surfaces after exactly one retry", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const alwaysUnknown = Authorizer.layerTest((request) =>
        Effect.fail(new ClientNotFound({ clientId: request.clientId }))
      )
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(
        Effect.provide(clientLayer(server, {}, { authorizer: alwaysUnknown }))
      )
      expect(error._tag).toBe("ClientNotFound")
      expect(yield* server.count("register")).toBe(2)
    }))

  it.scopedLive("a PRM resource that does not match the server is ResourceMismatch, and /authorize is never called", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmResource: "https://evil.example.com/mcp" })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(Effect.provide(clientLayer(server)))
      expect(error._tag).toBe("ResourceMismatch")
      expect(yield* server.count("authorize")).toBe(0)
    }))

  it.scopedLive("a state mismatch is an AuthorizationError and nothing is stored", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const wrongState = Authorizer.layerTest((request) => ({ code: "x", state: "forged", iss: request.issuer }))
      const result = yield* Effect.gen(function*() {
        const error = yield* oauthFailure(callMcp(server.mcpUrl))
        return { error, tokens: yield* TestStorage.tokens }
      }).pipe(Effect.provide(clientLayer(server, {}, { authorizer: wrongState })))
      expect(result.error._tag).toBe("AuthorizationError")
      expect(result.error._tag === "AuthorizationError" && result.error.reason).toBe("StateMismatch")
      expect(result.tokens.size).toBe(0)
      expect(yield* server.count("token")).toBe(0)
    }))

  it.scopedLive("refuses a server that does not advertise S256", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ noS256: "plain" })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(Effect.provide(clientLayer(server)))
      expect(error._tag === "DiscoveryError" && error.reason).toBe("PkceNotSupported")
      expect(yield* server.count("authorize")).toBe(0)
    }))

  it.scopedLive("a redirect on an OAuth call is an error, never followed", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ metadataRedirect: true })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(Effect.provide(clientLayer(server)))
      expect(error._tag === "OAuthRequestError" && error.reason).toBe("Redirect")
    }))

  it.scopedLive("a hanging token endpoint times out with a typed error", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ tokenHang: true })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(
        Effect.provide(clientLayer(server, { timeout: "300 millis" }))
      )
      expect(error._tag === "OAuthRequestError" && error.reason).toBe("Timeout")
    }))

  it.scopedLive("a malformed metadata document is a DiscoveryError", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ metadataMalformed: "notJson" })
      const error = yield* oauthFailure(callMcp(server.mcpUrl)).pipe(Effect.provide(clientLayer(server)))
      expect(error._tag === "DiscoveryError" && error.reason).toBe("Malformed")
    }))

  it.scopedLive("secrets are Redacted: logging a token set prints no secret", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const lines: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.map(Logger.logfmtLogger, (line) => void lines.push(line))
      )
      const token = yield* Effect.gen(function*() {
        yield* callMcp(server.mcpUrl)
        const oauth = yield* OAuth.OAuth
        const stored = Option.getOrThrow(yield* oauth.tokens)
        yield* Effect.log("token set", stored)
        return stored
      }).pipe(Effect.provide(clientLayer(server)), Effect.provide(capture))
      const secret = Redacted.value(token.accessToken)
      expect(secret.length).toBeGreaterThan(10)
      expect(lines.join("\n")).not.toContain(secret)
      expect(lines.join("\n")).toContain("token set")
      expect(String(token)).not.toContain(secret)
      expect(JSON.stringify(token)).not.toContain(secret)
      expect(inspect(token, { depth: 5 })).not.toContain(secret)
    }))

  it.scopedLive("the layer's own OAuth calls use the inner client it wraps", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const tagged = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, (inner) =>
          HttpClient.mapRequest(inner, (r) => ({ ...r, headers: { ...r.headers, "x-inner": "yes" } })))
      ).pipe(Layer.provide(NodeHttpClient.layerUndici))
      yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(
          HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
            Layer.provide(Authorizer.layerHeadless()),
            Layer.provide(tagged)
          )
        )
      )
      const oauthCalls = (yield* server.requests).filter((r) => r.endpoint !== "resource")
      expect(oauthCalls.length).toBeGreaterThan(3)
      expect(oauthCalls.every((r) => r.headers["x-inner"] === "yes")).toBe(true)
    }))
})

describe("logout", () => {
  it.scopedLive("revokes the refresh and access tokens (RFC 7009), then forgets the server", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const result = yield* Effect.gen(function*() {
        yield* callMcp(server.mcpUrl)
        const oauth = yield* OAuth.OAuth
        const before = Option.getOrThrow(yield* oauth.tokens)
        const signedOut = yield* oauth.logout
        return { before, signedOut, after: yield* oauth.tokens, clients: yield* TestStorage.clients }
      }).pipe(Effect.provide(clientLayer(server)))
      expect(result.signedOut).toEqual({ revoked: ["refresh_token", "access_token"], warnings: [] })
      expect(Option.isNone(result.after)).toBe(true)
      // The server's client record is gone; the registration shared by the servers of its
      // authorization server stays (other servers use it; `--forget-client` deletes it).
      expect([...result.clients.keys()]).toEqual([clientKey(server.issuer, "browser")])
      expect((yield* server.requestsTo("revoke")).map((r) => r.form["token_type_hint"])).toEqual([
        "refresh_token",
        "access_token"
      ])
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

  it.scopedLive("an unreachable authorization server still signs out locally, with a warning", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* startTestServer().pipe(Scope.extend(scope))
      const client = yield* seededClient(server)
      const token = yield* seededToken(server, client.clientId, { refresh: true })
      yield* Scope.close(scope, Exit.void)
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const signedOut = yield* oauth.logout
        return { signedOut, after: yield* oauth.tokens }
      }).pipe(Effect.provide(clientLayer(server, { timeout: "2 seconds" }, { storage: TestStorage.layer({ tokens: token, client }) })))
      expect(result.signedOut.revoked).toEqual([])
      expect(result.signedOut.warnings.join(" ")).toMatch(/could not reach/)
      expect(Option.isNone(result.after)).toBe(true)
    }))
})

describe("refresh failures", () => {
  /** A resource + AS whose token endpoint answers 503 (Retry-After: 1) `failures` times, then a token. */
  const flakyServer = (failures: number) =>
    rawOAuthServer((request, server) => {
      if (request.path === "/.well-known/oauth-protected-resource/mcp") {
        return { json: { resource: `${server.url}/mcp`, authorization_servers: [server.url] } }
      }
      if (request.path === "/.well-known/oauth-authorization-server") return { json: asMetadata(server.url) }
      if (request.path === "/token") {
        const seen = server.requests.filter((r) => r.path === "/token").length
        return seen <= failures
          ? { status: 503, json: { error: "temporarily_unavailable" }, headers: { "retry-after": "1" } }
          : { json: { access_token: "fresh-token", token_type: "Bearer", expires_in: 3600, refresh_token: "rt-2" } }
      }
      if (request.path === "/mcp") {
        return request.headers["authorization"] === "Bearer fresh-token"
          ? { json: { ok: true } }
          : { status: 401, json: { error: "invalid_token" }, headers: { "www-authenticate": "Bearer" } }
      }
      return undefined
    })

  const expiredWithRefresh = (issuer: string) =>
    new StoredToken({
      accessToken: Redacted.make("old-token"),
      tokenType: "Bearer",
      refreshToken: Redacted.make("rt-1"),
      expiresAt: Date.now() - 1000,
      scopes: [],
      issuer,
      obtainedAt: Date.now() - 3_600_000
    })

  const staticClient = { clientId: "flaky-client" } as const

  it.scopedLive("a 503 with Retry-After is retried after the delay, and the refresh then succeeds", () =>
    Effect.gen(function*() {
      const server = yield* flakyServer(1)
      const layer = HttpAuth.OAuthLayer({ mcpUrl: `${server.url}/mcp`, ...staticClient }).pipe(
        Layer.provide(TestStorage.layer({ tokens: expiredWithRefresh(server.url) })),
        Layer.provide(Authorizer.layerTest("unused")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const response = yield* callMcp(`${server.url}/mcp`).pipe(Effect.provide(layer))
      expect(response.status).toBe(200)
      const tokenRequests = server.requests.filter((r) => r.path === "/token")
      expect(tokenRequests).toHaveLength(2)
      expect(tokenRequests.every((r) => r.form.get("refresh_token") === "rt-1")).toBe(true)
    }))

  it.scopedLive("invalid_grant after another process already refreshed: its newer token is kept and used", () =>
    Effect.gen(function*() {
      const sibling = new StoredToken({
        accessToken: Redacted.make("fresh-token"),
        tokenType: "Bearer",
        refreshToken: Redacted.make("rt-2"),
        expiresAt: Date.now() + 3_600_000,
        scopes: [],
        issuer: "",
        obtainedAt: Date.now()
      })
      let storage: TokenStorage | undefined
      // The refresh token was already redeemed by a sibling process, which stored its new token
      // a moment before this process's refresh is refused.
      const server = yield* rawOAuthServer((request, self) => {
        if (request.path === "/.well-known/oauth-protected-resource/mcp") {
          return { json: { resource: `${self.url}/mcp`, authorization_servers: [self.url] } }
        }
        if (request.path === "/.well-known/oauth-authorization-server") return { json: asMetadata(self.url) }
        if (request.path === "/token") {
          if (storage !== undefined) Effect.runSync(storage.setTokens(serverKey(`${self.url}/mcp`), sibling))
          return { status: 400, json: { error: "invalid_grant" } }
        }
        if (request.path === "/mcp") {
          return request.headers["authorization"] === "Bearer fresh-token"
            ? { json: { ok: true } }
            : { status: 401, json: { error: "invalid_token" }, headers: { "www-authenticate": "Bearer" } }
        }
        return undefined
      })
      const layer = HttpAuth.OAuthLayer({ mcpUrl: `${server.url}/mcp`, ...staticClient, refreshRetry: false }).pipe(
        Layer.provideMerge(TestStorage.layer({ tokens: expiredWithRefresh(server.url) })),
        Layer.provide(Authorizer.layerTest("unused")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const result = yield* Effect.gen(function*() {
        storage = yield* TokenStorageTag
        const response = yield* callMcp(`${server.url}/mcp`)
        return { response, ops: yield* TestStorage.operations }
      }).pipe(Effect.provide(layer))
      expect(result.response.status).toBe(200)
      expect(result.ops.some((o) => o.op === "clearTokens" || o.op === "clear")).toBe(false)
      expect(server.requests.filter((r) => r.path === "/token")).toHaveLength(1)
    }))

  it.scopedLive("retries are bounded; the refresh token is kept and the error is typed", () =>
    Effect.gen(function*() {
      const server = yield* flakyServer(100)
      const layer = HttpAuth.OAuthLayer({
        mcpUrl: `${server.url}/mcp`,
        ...staticClient,
        refreshRetry: { base: "10 millis", maxRetries: 2, maxDelay: "20 millis" }
      }).pipe(
        Layer.provideMerge(TestStorage.layer({ tokens: expiredWithRefresh(server.url) })),
        Layer.provide(Authorizer.layerTest("unused")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const error = yield* Effect.flip(oauth.accessToken)
        return { error, stored: yield* oauth.tokens }
      }).pipe(Effect.provide(layer))
      expect(result.error._tag === "OAuthTokenError" && result.error.retryAfter).toBe(1)
      expect(server.requests.filter((r) => r.path === "/token")).toHaveLength(3)
      expect(Option.map(result.stored, (t) => t.refreshToken !== undefined)).toEqual(Option.some(true))
    }))
})

describe("client identity", () => {
  const CIMD_URL = "https://client.example.com/oauth/metadata.json"

  it.scopedLive("a Client ID Metadata Document client is used when advertised, stored, and refreshes later", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ cimd: true, accessTokenTtlSeconds: 2 })
      yield* server.setClientMetadataDocument(CIMD_URL, {
        client_id: CIMD_URL,
        client_name: "CIMD client",
        redirect_uris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      yield* Effect.gen(function*() {
        yield* callMcp(server.mcpUrl)
        yield* callMcp(server.mcpUrl) // the fresh 2 s token is used as it is
        // Within the refresh margin (a quarter of a lifetime this short): the next request refreshes first.
        yield* Effect.sleep("1600 millis")
        const response = yield* callMcp(server.mcpUrl)
        expect(response.status).toBe(200)
        const clients = yield* TestStorage.clients
        expect(clients.get(serverKey(server.mcpUrl))?.source).toBe("metadata-document")
      }).pipe(Effect.provide(clientLayer(server, { clientMetadataUrl: CIMD_URL })))
      expect(yield* server.count("register")).toBe(0)
      expect((yield* server.requestsTo("authorize")).map((r) => r.query["client_id"])).toEqual([CIMD_URL])
      const grants = (yield* server.requestsTo("token")).map((r) => r.form["grant_type"])
      expect(grants).toEqual(["authorization_code", "refresh_token"])
    }))

  it.scopedLive("a configured pre-registered client wins over a stored dynamic one", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      yield* server.registerClient({
        clientId: "configured-client",
        clientSecret: "s3cret ünïcode:%",
        tokenEndpointAuthMethod: "client_secret_basic",
        redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      const storedDynamic = yield* seededClient(server)
      const response = yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(
          clientLayer(server, { clientId: "configured-client", clientSecret: "s3cret ünïcode:%" }, {
            storage: TestStorage.layer({ client: storedDynamic })
          })
        )
      )
      expect(response.status).toBe(200)
      expect((yield* server.requestsTo("authorize")).map((r) => r.query["client_id"])).toEqual(["configured-client"])
      const [token] = yield* server.requestsTo("token")
      expect(token!.headers["authorization"]).toMatch(/^Basic /)
      expect(token!.form["client_id"]).toBeUndefined()
    }))

  it.scopedLive("a stored client registered for another loopback port is reused (RFC 8252 §7.3): no new registration", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const registered = yield* server.registerClient({
        tokenEndpointAuthMethod: "none",
        redirectUris: ["http://127.0.0.1:1111/callback"]
      })
      const oldPort = new ClientInformation({
        clientId: registered.clientId,
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: server.issuer,
        redirectUris: ["http://127.0.0.1:1111/callback"]
      })
      const result = yield* Effect.gen(function*() {
        const response = yield* callMcp(server.mcpUrl)
        const storage = yield* TokenStorageTag
        return { response, stored: yield* storage.getClient(serverKey(server.mcpUrl)) }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ client: oldPort }) })))
      expect(result.response.status).toBe(200)
      expect(yield* server.count("register")).toBe(0)
      expect(Option.map(result.stored, (c) => c.clientId)).toEqual(Option.some(registered.clientId))
      const [authorize] = yield* server.requestsTo("authorize")
      expect(authorize!.query["client_id"]).toBe(registered.clientId)
      expect(authorize!.query["redirect_uri"]).toBe(Authorizer.DEFAULT_REDIRECT_URI)
    }))

  it.scopedLive("credentials of another authorization server are discarded, and the client registers again (SEP-2352)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const foreign = new ClientInformation({
        clientId: "client-of-another-issuer",
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: "https://old-issuer.example.com",
        redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      const result = yield* Effect.gen(function*() {
        const response = yield* callMcp(server.mcpUrl)
        return { response, clients: yield* TestStorage.clients }
      }).pipe(Effect.provide(clientLayer(server, {}, { storage: TestStorage.layer({ client: foreign }) })))
      expect(result.response.status).toBe(200)
      expect(yield* server.count("register")).toBe(1)
      expect(result.clients.get(serverKey(server.mcpUrl))?.issuer).toBe(server.issuer)
      const ids = (yield* server.requests).map((r) => r.query["client_id"] ?? r.form["client_id"])
      expect(ids).not.toContain("client-of-another-issuer")
    }))
})

describe("request counts at the minimum", () => {
  /** Signs in once; returns what was stored, keyed, to seed another process with. */
  const signedIn = (server: TestServer) =>
    Effect.gen(function*() {
      expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
      const key = serverKey(server.mcpUrl)
      return { key, token: (yield* TestStorage.tokens).get(key)!, client: (yield* TestStorage.clients).get(key)! }
    })

  it.scopedLive("herd: N concurrent calls with a token the server no longer accepts cost 2N + 1 requests (one refresh, no re-discovery)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const n = 50
      const result = yield* Effect.gen(function*() {
        const { token } = yield* signedIn(server)
        yield* server.provider.revokeToken(Redacted.value(token.accessToken))
        yield* server.resetCounters
        return yield* Effect.forEach(Array.from({ length: n }), () => callMcp(server.mcpUrl), {
          concurrency: "unbounded"
        })
      }).pipe(Effect.provide(clientLayer(server)))
      expect(result.every((r) => r.status === 200)).toBe(true)
      expect(yield* server.counts).toMatchObject({ prm: 0, asMetadata: 0, token: 1, resource: 2 * n })
      expect((yield* server.requests).length).toBe(2 * n + 1)
    }))

  it.scopedLive("stale client and a refused token: 6 requests (401, refresh, register, authorize, token, retry), discovery never repeated", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const response = yield* Effect.gen(function*() {
        const { token } = yield* signedIn(server)
        yield* server.forgetClients
        yield* server.provider.revokeToken(Redacted.value(token.accessToken))
        yield* server.resetCounters
        return yield* callMcp(server.mcpUrl)
      }).pipe(Effect.provide(clientLayer(server)))
      expect(response.status).toBe(200)
      expect(yield* server.counts).toMatchObject({ prm: 0, asMetadata: 0, register: 1, authorize: 1, token: 2 })
      expect((yield* server.requests).length).toBe(6)
    }))

  it.scopedLive("a new process with the stored token expired refreshes with the stored discovery: 2 requests (refresh, call)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const first = yield* signedIn(server).pipe(Effect.provide(clientLayer(server)))
      expect(first.token.discovery?.authorizationServer.issuer).toBe(server.issuer)
      // Through the storage's wire format, as a file or Redis store keeps it.
      const roundTripped = yield* Schema.decode(StoredToken)(yield* Schema.encode(StoredToken)(first.token))
      const expired = new StoredToken({ ...roundTripped, expiresAt: Date.now() - 1000 })
      yield* server.resetCounters
      const response = yield* callMcp(server.mcpUrl).pipe(
        Effect.provide(clientLayer(server, {}, {
          storage: TestStorage.layer({ tokens: { [first.key]: expired }, client: { [first.key]: first.client } })
        }))
      )
      expect(response.status).toBe(200)
      expect(yield* server.counts).toMatchObject({ prm: 0, asMetadata: 0, token: 1, resource: 1 })
      expect((yield* server.requests).length).toBe(2)
    }))

  it.scopedLive("stored discovery is bound to the token's issuer and its freshness: otherwise the new process discovers first", () =>
    Effect.gen(function*() {
      for (const spoil of ["stale", "foreign"] as const) {
        const server = yield* startTestServer()
        const first = yield* signedIn(server).pipe(Effect.provide(clientLayer(server)))
        const stored = first.token.discovery!
        const discovery = spoil === "stale"
          ? new StoredDiscovery({ ...stored, freshUntil: Date.now() - 1 })
          : new StoredDiscovery({
            ...stored,
            authorizationServer: new AuthorizationServerMetadata({
              ...stored.authorizationServer,
              issuer: "http://127.0.0.1:1/other"
            })
          })
        yield* server.resetCounters
        const response = yield* callMcp(server.mcpUrl).pipe(
          Effect.provide(clientLayer(server, {}, {
            storage: TestStorage.layer({
              tokens: { [first.key]: new StoredToken({ ...first.token, expiresAt: Date.now() - 1000, discovery }) },
              client: { [first.key]: first.client }
            })
          }))
        )
        expect(response.status).toBe(200)
        expect(yield* server.counts).toMatchObject({ prm: 1, asMetadata: 1, token: 1, authorize: 0 })
      }
    }))
})

describe("expiry with TestClock", () => {
  it.scoped("a token that expires while the app runs is refreshed on the next request", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 600 })
      yield* Effect.gen(function*() {
        yield* callMcp(server.mcpUrl)
        expect(yield* server.count("token")).toBe(1)
        yield* TestClock.adjust("5 minutes")
        yield* callMcp(server.mcpUrl)
        expect(yield* server.count("token")).toBe(1)
        yield* TestClock.adjust("6 minutes")
        const response = yield* callMcp(server.mcpUrl)
        expect(response.status).toBe(200)
        const grants = (yield* server.requestsTo("token")).map((r) => r.form["grant_type"])
        expect(grants).toEqual(["authorization_code", "refresh_token"])
      }).pipe(Effect.provide(clientLayer(server)))
    }))
})

describe("proactive refresh once per lifetime (TestClock)", () => {
  it.scoped("a 60 s token used every 5 s for 10 lifetimes is refreshed 10 times (not every half-lifetime), with no 401 after the sign-in", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 60 })
      yield* Effect.gen(function*() {
        expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
        const calls = 120
        for (let i = 0; i < calls; i++) {
          yield* TestClock.adjust("5 seconds")
          expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
        }
        const grants = (yield* server.requestsTo("token")).map((r) => r.form["grant_type"])
        expect(grants.filter((g) => g === "refresh_token")).toHaveLength(10)
        // The first call's 401 and its retry, then one request per call: never a 401 again.
        expect(yield* server.count("resource")).toBe(2 + calls)
      }).pipe(Effect.provide(clientLayer(server)))
    }))
})

describe("checkIfAuthRequired", () => {
  it.scopedLive("says true for a protected endpoint, false for an open one, and fails typed when unreachable", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const protectedEndpoint = yield* OAuth.checkIfAuthRequired(server.mcpUrl)
      const open = yield* OAuth.checkIfAuthRequired(server.asMetadataUrl)
      const unreachable = yield* Effect.flip(OAuth.checkIfAuthRequired("http://127.0.0.1:1/mcp"))
      expect(protectedEndpoint).toBe(true)
      expect(open).toBe(false)
      expect(unreachable._tag).toBe("OAuthRequestError")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
