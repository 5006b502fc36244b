/**
 * One client identity per authorization server, end to end with the browser sign-in (a fake
 * browser that follows the authorization server's redirect to the loopback callback), against the
 * loopback authorization server made strict: the registered `scope` is enforced, optionally with
 * RFC 7592 client configuration.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Option } from "effect"
import { AuthorizationServerMetadata, ClientInformation, ProtectedResourceMetadata } from "../src/Schemas.js"
import type { Scope } from "effect"
import * as Http from "node:http"
import * as Authorizer from "../src/Authorizer.js"
import * as ClientIdentity from "../src/ClientIdentity.js"
import type * as Discovery from "../src/Discovery.js"
import { namesRejectedRedirectUri } from "../src/internal/authorizationProbe.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as OAuth from "../src/OAuth.js"
import * as TestStorage from "../src/TestStorage.js"
import { serverKey, TokenStorage } from "../src/TokenStorage.js"
import { httpGet } from "./AuthorizerRawServer.js"
import { startTestServer, type TestServer, type TestServerOptions } from "./fixtures/TestAuthServer.js"

/** Plays the user's browser: GET the authorization URL, follow its redirect to the callback. */
const fakeBrowser = (opened: Array<string>) =>
  Layer.succeed(Authorizer.BrowserOpener, {
    open: (url) =>
      Effect.gen(function*() {
        opened.push(url)
        const first = yield* httpGet(url)
        const location = first.headers.location
        if (location !== undefined) yield* httpGet(new URL(location, url).href)
      }).pipe(
        Effect.catchAll((error) => Effect.fail(new Authorizer.BrowserOpenError({ detail: error.message }))),
        Effect.forkDaemon,
        Effect.asVoid
      )
  })

const browserClient = (server: TestServer, opened: Array<string>, scopes: ReadonlyArray<string>) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl, scopes }).pipe(
    Layer.provideMerge(TestStorage.layer()),
    Layer.provide(Authorizer.layerBrowser().pipe(Layer.provide(fakeBrowser(opened)))),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const callMcp = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, {
      body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/call" })
    })
    const json = yield* response.json
    return { status: response.status, json }
  }).pipe(Effect.scoped)

const storedClient = (server: TestServer) =>
  Effect.flatMap(TokenStorage, (s) => s.getClient(serverKey(server.mcpUrl))).pipe(Effect.map(Option.getOrThrow))

/** Keeps a loopback port busy for the scope, so the next sign-in cannot listen on it. */
const occupy = (port: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((_req, res) => res.end())
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.asVoid)

const portOf = (uri: string) => Number(new URL(uri).port)

const strict = (extra: TestServerOptions = {}) =>
  startTestServer({ enforceRegisteredScope: true, requiredScopes: ["mcp:read"], ...extra })

/**
 * A strict authorization server (`options`) and a client that signs in to it for `mcp:read` with
 * the fake browser: `signedIn` runs an effect as that client; `opened` lists the browser's visits.
 */
const scenario = (options: TestServerOptions) =>
  Effect.map(strict(options), (server) => {
    const opened: Array<string> = []
    const signedIn = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, browserClient(server, opened, ["mcp:read"]))
    return { server, opened, signedIn }
  })

/** The first call signs in (registering the client) and succeeds; the client record it stored. */
const firstSignIn = (server: TestServer) =>
  Effect.gen(function*() {
    expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
    return yield* storedClient(server)
  })

/**
 * Signs in, drops `scope` from the stored client record (as an older store kept it), then a call
 * that needs `mcp:write` as well succeeds and the stored record holds both scopes.
 */
const stepUpFromRecordWithoutScope = (server: TestServer) =>
  Effect.gen(function*() {
    const { scope: _scope, ...withoutScope } = yield* firstSignIn(server)
    const storage = yield* TokenStorage
    yield* storage.setClient(serverKey(server.mcpUrl), new ClientInformation(withoutScope))
    yield* server.setFaults({ requiredScopes: ["mcp:read", "mcp:write"] })
    expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
    expect((yield* storedClient(server)).scope?.split(" ")).toEqual(expect.arrayContaining(["mcp:read", "mcp:write"]))
  })

describe("one client identity per authorization server (browser sign-in)", () => {
  it.scopedLive("RFC 7592: sign-ins, re-logins on another port and a step-up → 1 registration, no pre-flight", () =>
    Effect.gen(function*() {
      const { server, opened, signedIn } = yield* scenario({ clientManagement: true })
      yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const first = yield* firstSignIn(server)
        yield* oauth.login
        // The port the client was registered with is busy: the sign-in uses another one.
        yield* Effect.scoped(Effect.zipRight(occupy(portOf(first.redirectUris[0]!)), oauth.login))
        yield* oauth.login
        expect(opened).toHaveLength(4)
        const ports = opened.map((u) => portOf(new URL(u).searchParams.get("redirect_uri")!))
        expect(ports[1]).toBe(ports[0])
        expect(ports[2]).not.toBe(ports[0])
        expect(ports[3]).toBe(ports[0])

        // Step-up to a scope the client was not registered for: the registration is widened (PUT).
        yield* server.setFaults({ requiredScopes: ["mcp:read", "mcp:write"] })
        const stepped = yield* callMcp(server.mcpUrl)
        expect(stepped.status).toBe(200)
        expect((stepped.json as { scopes: Array<string> }).scopes).toEqual(
          expect.arrayContaining(["mcp:read", "mcp:write"])
        )
        const after = yield* storedClient(server)
        expect(after.clientId).toBe(first.clientId)
        expect(after.scope?.split(" ")).toEqual(expect.arrayContaining(["mcp:read", "mcp:write"]))
      }).pipe(signedIn)

      expect(yield* server.count("register")).toBe(1)
      const configuration = yield* server.requestsTo("clientConfiguration")
      expect(configuration.filter((r) => r.method === "PUT")).toHaveLength(1)
      // One authorization request per sign-in (RFC 7592 answered, so no pre-flight GET), plus one
      // pre-flight (prompt=none) for the sign-in on another port, to learn whether the server accepts it.
      expect(opened).toHaveLength(5)
      const authorizations = yield* server.requestsTo("authorize")
      expect(authorizations).toHaveLength(opened.length + 1)
      expect(authorizations.filter((r) => r.query["prompt"] === "none")).toHaveLength(1)
      const clientIds = new Set((yield* server.requestsTo("authorize")).map((r) => r.query["client_id"]))
      expect(clientIds.size).toBe(1)
    }), 120_000)

  it.scopedLive("RFC 7592: a stored record without scope (an older store) learns the registered scope from the read and widens it", () =>
    Effect.gen(function*() {
      const { server, signedIn } = yield* scenario({ clientManagement: true })
      yield* signedIn(stepUpFromRecordWithoutScope(server))
      expect(yield* server.count("register")).toBe(1)
      expect((yield* server.requestsTo("clientConfiguration")).filter((r) => r.method === "PUT")).toHaveLength(1)
    }), 120_000)

  it.scopedLive("without RFC 7592: sign-ins and re-logins → 1 registration; a step-up registers once more with the wider scope", () =>
    Effect.gen(function*() {
      const { server, signedIn } = yield* scenario({ clientManagement: false })
      yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const first = yield* firstSignIn(server)
        yield* oauth.login
        yield* Effect.scoped(Effect.zipRight(occupy(portOf(first.redirectUris[0]!)), oauth.login))
        expect(yield* server.count("register")).toBe(1)

        yield* server.setFaults({ requiredScopes: ["mcp:read", "mcp:write"] })
        expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
        const after = yield* storedClient(server)
        expect(after.clientId).not.toBe(first.clientId)
        expect(after.scope?.split(" ")).toEqual(expect.arrayContaining(["mcp:read", "mcp:write"]))
        // Held from now on: more sign-ins and calls need no registration.
        yield* oauth.login
        expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
      }).pipe(signedIn)
      expect(yield* server.count("register")).toBe(2)
    }), 120_000)

  it.scopedLive("without RFC 7592: a stored record without scope that the server refuses a scope for is registered again, once", () =>
    Effect.gen(function*() {
      const { server, opened, signedIn } = yield* scenario({ clientManagement: false })
      yield* signedIn(stepUpFromRecordWithoutScope(server))
      expect(yield* server.count("register")).toBe(2)
      // The pre-flight caught the refusal: the browser never opened on it.
      expect(opened).toHaveLength(2)
    }), 120_000)

  it.scopedLive("the resource's scopes_supported are registered up front: a step-up needs no registration change", () =>
    Effect.gen(function*() {
      const { server, opened, signedIn } = yield* scenario({ scopesSupported: ["mcp:read", "mcp:write"] })
      yield* Effect.gen(function*() {
        const first = yield* firstSignIn(server)
        expect(first.scope?.split(" ")).toEqual(["mcp:read", "mcp:write"])
        // The first authorization asked only for what was configured.
        const [authorize] = yield* server.requestsTo("authorize")
        expect(authorize!.query["scope"]).toBe("mcp:read")
        yield* server.setFaults({ requiredScopes: ["mcp:read", "mcp:write"] })
        expect((yield* callMcp(server.mcpUrl)).status).toBe(200)
        expect((yield* storedClient(server)).clientId).toBe(first.clientId)
      }).pipe(signedIn)
      expect(yield* server.count("register")).toBe(1)
      expect(opened).toHaveLength(2)
    }), 120_000)

  for (const clientManagement of [false, true]) {
    it.scopedLive(`an authorization server that refuses another loopback port: registered again once, before the browser opens, with a log line (RFC 7592: ${clientManagement})`, () =>
      Effect.gen(function*() {
        const { server, opened, signedIn } = yield* scenario({ exactRedirectPort: true, clientManagement })
        const lines: Array<string> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          Logger.map(Logger.logfmtLogger, (line) => void lines.push(line))
        )
        yield* Effect.gen(function*() {
          const oauth = yield* OAuth.OAuth
          const first = yield* firstSignIn(server)
          yield* Effect.scoped(Effect.zipRight(occupy(portOf(first.redirectUris[0]!)), oauth.login))
          const second = yield* storedClient(server)
          expect(second.clientId).not.toBe(first.clientId)
          // Then the new port is the preferred one: no further registration.
          yield* oauth.login
        }).pipe(signedIn, Effect.provide(capture))
        expect(yield* server.count("register")).toBe(2)
        // The browser never saw the refused client.
        expect(opened).toHaveLength(3)
        const clientIds = opened.map((u) => new URL(u).searchParams.get("client_id"))
        expect(clientIds[1]).toBe(clientIds[2])
        expect(clientIds[0]).not.toBe(clientIds[1])
        expect(lines.join("\n")).toContain("does not accept the redirect URI")
      }), 120_000)
  }

  it.scopedLive("a stored client deleted at the authorization server is registered again before the browser opens", () =>
    Effect.gen(function*() {
      const { server, opened, signedIn } = yield* scenario({ clientManagement: true })
      yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const first = yield* firstSignIn(server)
        yield* server.forgetClients
        yield* server.resetCounters
        yield* oauth.login
        const second = yield* storedClient(server)
        expect(second.clientId).not.toBe(first.clientId)
        const sequence = (yield* server.requests).map((r) => `${r.endpoint}:${r.method}`)
          .filter((r) => !r.startsWith("prm") && !r.startsWith("asMetadata"))
        // RFC 7592 read (401) → registration → the one authorization request → token.
        expect(sequence).toEqual(["clientConfiguration:GET", "register:POST", "authorize:GET", "token:POST"])
        const [authorize] = yield* server.requestsTo("authorize")
        expect(authorize!.query["client_id"]).toBe(second.clientId)
      }).pipe(signedIn)
      // Each browser visit used a client the server knew.
      expect(opened).toHaveLength(2)
    }), 120_000)
})

describe("client identity rules", () => {
  it("redirectUriMatch: a loopback redirect URI matches on another port (RFC 8252 §7.3), nothing else does", () => {
    const registered = ["http://127.0.0.1:5000/callback"]
    expect(ClientIdentity.redirectUriMatch(registered, "http://127.0.0.1:5000/callback")).toBe("exact")
    expect(ClientIdentity.redirectUriMatch(registered, "http://127.0.0.1:6000/callback")).toBe("loopbackPort")
    expect(ClientIdentity.redirectUriMatch(registered, "http://127.0.0.1:6000/other")).toBe("none")
    expect(ClientIdentity.redirectUriMatch(registered, "http://localhost:6000/callback")).toBe("none")
    expect(ClientIdentity.redirectUriMatch(["https://app.example.com:5000/cb"], "https://app.example.com:6000/cb")).toBe(
      "none"
    )
    expect(ClientIdentity.redirectUriMatch(["http://[::1]:5000/callback"], "http://[::1]:7000/callback")).toBe(
      "loopbackPort"
    )
  })

  it("upfrontScopes: the resource's scopes_supported, limited to the authorization server's list when it has one", () => {
    const discovery = (
      prm: ReadonlyArray<string> | undefined,
      as: ReadonlyArray<string> | undefined
    ): Discovery.DiscoveryResult => ({
        mcpUrl: "https://mcp.example.com/mcp",
        protectedResource: Option.some(
          new ProtectedResourceMetadata({
            resource: "https://mcp.example.com/mcp",
            ...(prm === undefined ? {} : { scopes_supported: prm })
          })
        ),
        resource: "https://mcp.example.com/mcp",
        authorizationServer: new AuthorizationServerMetadata({
          issuer: "https://as.example.com",
          ...(as === undefined ? {} : { scopes_supported: as })
        }),
        issuer: "https://as.example.com",
        legacy: false
      })
    const of = (prm: ReadonlyArray<string> | undefined, as: ReadonlyArray<string> | undefined) =>
      ClientIdentity.upfrontScopes(discovery(prm, as))
    expect(of(["mcp:read", "mcp:write"], undefined)).toEqual(["mcp:read", "mcp:write"])
    expect(of(["mcp:read", "mcp:write"], ["mcp:read", "openid"])).toEqual(["mcp:read"])
    expect(of(undefined, ["mcp:read"])).toEqual([])
  })

  it("a 400 page that refuses the redirect URI is recognised (embedded AS, oidc-provider, generic wording)", () => {
    expect(namesRejectedRedirectUri(400, `redirect_uri "http://127.0.0.1:1/callback" is not registered for client "x"`))
      .toBe(true)
    expect(
      namesRejectedRedirectUri(
        400,
        `<h1>oops! something went wrong</h1><pre>error: invalid_redirect_uri\nerror_description: redirect_uri did not match any of the client's registered redirect_uris</pre>`
      )
    ).toBe(true)
    expect(namesRejectedRedirectUri(400, "Invalid redirect URI")).toBe(true)
    expect(namesRejectedRedirectUri(200, "<form>Sign in</form>")).toBe(false)
    expect(namesRejectedRedirectUri(400, `{"error":"invalid_request","error_description":"code_challenge is required"}`))
      .toBe(false)
  })
})
