import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schema } from "effect"
import * as Discovery from "../src/Discovery.js"
import * as Registration from "../src/Registration.js"
import { AuthorizationServerMetadata } from "../src/Schemas.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"
import { asMetadata, rawOAuthServer, type RawOAuthServer, type Reply } from "./oauthRawServer.js"

const REDIRECT = "http://127.0.0.1:33418/callback"

/** Runs `body` with Registration (and Discovery) built on undici. */
const withServices = <A, E, R>(
  body: (services: { readonly registration: Registration.Registration; readonly discovery: Discovery.Discovery }) =>
    Effect.Effect<A, E, R>,
  config: Registration.RegistrationConfig = {}
) =>
  Effect.all({ registration: Registration.make(config), discovery: Discovery.make() }).pipe(
    Effect.flatMap(body),
    Effect.provide(NodeHttpClient.layerUndici)
  )

/** A discovery result for an issuer on a raw server, with the metadata overridden by `extra`. */
const rawDiscovery = (server: RawOAuthServer, extra: Record<string, unknown> = {}): Discovery.DiscoveryResult => {
  const as = Schema.decodeUnknownSync(AuthorizationServerMetadata)(
    Object.fromEntries(Object.entries(asMetadata(server.url, extra)).filter(([, v]) => v !== undefined))
  )
  return {
    mcpUrl: `${server.url}/mcp`,
    protectedResource: Option.none(),
    resource: `${server.url}/mcp`,
    authorizationServer: as,
    issuer: server.url,
    legacy: false
  }
}

/** A fixture discovery with the AS metadata patched. */
const patched = (
  discovery: Discovery.DiscoveryResult,
  patch: Partial<ConstructorParameters<typeof AuthorizationServerMetadata>[0]>
): Discovery.DiscoveryResult => ({
  ...discovery,
  authorizationServer: new AuthorizationServerMetadata({ ...discovery.authorizationServer, ...patch })
})

/** A raw registration endpoint answering `reply`; every other path is 404. */
const registrationServer = (reply: (server: RawOAuthServer) => Reply) =>
  rawOAuthServer((req, s) => (req.path === "/register" ? reply(s) : undefined))

const discoverFixture = (server: TestServer, discovery: Discovery.Discovery) =>
  discovery.discover(server.mcpUrl, { resourceMetadataUrl: server.prmUrl })

describe("Registration: auth method selection", () => {
  it("chooseAuthMethod: basic preferred, post when only post, none without a secret", () => {
    expect(Registration.chooseAuthMethod(["client_secret_post", "client_secret_basic"], true)).toBe("client_secret_basic")
    expect(Registration.chooseAuthMethod(["client_secret_post"], true)).toBe("client_secret_post")
    expect(Registration.chooseAuthMethod(undefined, true)).toBe("client_secret_basic")
    expect(Registration.chooseAuthMethod(["client_secret_basic", "client_secret_post"], false)).toBe("none")
  })

  it("requestedAuthMethod: none when accepted or unspecified, else the first secret method", () => {
    expect(Registration.requestedAuthMethod(undefined)).toBe("none")
    expect(Registration.requestedAuthMethod([])).toBe("none")
    expect(Registration.requestedAuthMethod(["client_secret_basic", "none"])).toBe("none")
    expect(Registration.requestedAuthMethod(["client_secret_post", "client_secret_basic"])).toBe("client_secret_basic")
    expect(Registration.requestedAuthMethod(["client_secret_post"])).toBe("client_secret_post")
    // client_credentials only: a confidential client even where `none` is allowed (RFC 6749 §4.4)
    expect(Registration.requestedAuthMethod(["none", "client_secret_basic"], { confidential: true })).toBe("client_secret_basic")
    expect(Registration.requestedAuthMethod(["none", "client_secret_post"], { confidential: true })).toBe("client_secret_post")
    expect(Registration.requestedAuthMethod(undefined, { confidential: true })).toBe("client_secret_basic")
  })
})

describe("Registration: pre-registered client", () => {
  it.scopedLive("the method follows the server list; no request is made; bound to the issuer", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const secret = Redacted.make("s3cret")
      const run = (
        config: Registration.RegistrationConfig,
        methods: ReadonlyArray<string> | undefined
      ) =>
        withServices(({ discovery, registration }) =>
          Effect.gen(function*() {
            expect(registration.isStatic).toBe(true)
            const d = yield* discoverFixture(server, discovery)
            return yield* registration.register({
              discovery: patched(d, { token_endpoint_auth_methods_supported: methods }),
              redirectUri: REDIRECT
            })
          }), config)

      const basic = yield* run({ clientId: "app", clientSecret: secret }, ["client_secret_post", "client_secret_basic"])
      expect(basic.tokenEndpointAuthMethod).toBe("client_secret_basic")
      expect(basic.source).toBe("preregistered")
      expect(basic.clientId).toBe("app")
      expect(basic.issuer).toBe(server.issuer)
      expect(basic.redirectUris).toEqual([REDIRECT])
      expect(basic.clientSecret === undefined ? undefined : Redacted.value(basic.clientSecret)).toBe("s3cret")

      const post = yield* run({ clientId: "app", clientSecret: secret }, ["client_secret_post"])
      expect(post.tokenEndpointAuthMethod).toBe("client_secret_post")

      const none = yield* run({ clientId: "app" }, ["client_secret_basic", "client_secret_post", "none"])
      expect(none.tokenEndpointAuthMethod).toBe("none")
      expect(none.clientSecret).toBeUndefined()

      const explicit = yield* run(
        { clientId: "app", clientSecret: secret, tokenEndpointAuthMethod: "client_secret_post" },
        ["client_secret_basic"]
      )
      expect(explicit.tokenEndpointAuthMethod).toBe("client_secret_post")

      expect(yield* server.count("register")).toBe(0)
    }))
})

describe("Registration: client ID metadata documents", () => {
  it.scopedLive("used when the server advertises CIMD: the URL is the client id, nothing is registered", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ cimd: true })
      const url = "https://app.example.com/oauth/client.json"
      const info = yield* withServices(({ discovery, registration }) =>
        Effect.gen(function*() {
          expect(registration.isStatic).toBe(false)
          const d = yield* discoverFixture(server, discovery)
          expect(d.authorizationServer.client_id_metadata_document_supported).toBe(true)
          return yield* registration.register({ discovery: d, redirectUri: REDIRECT })
        }), { clientMetadataUrl: url })
      expect(info).toMatchObject({
        clientId: url,
        source: "metadata-document",
        tokenEndpointAuthMethod: "none",
        issuer: server.issuer,
        redirectUris: [REDIRECT]
      })
      expect(yield* server.count("register")).toBe(0)
    }))

  it.scopedLive("not advertised: dynamic registration instead", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ cimd: false })
      const info = yield* withServices(({ discovery, registration }) =>
        Effect.flatMap(discoverFixture(server, discovery), (d) => registration.register({ discovery: d, redirectUri: REDIRECT })), {
        clientMetadataUrl: "https://app.example.com/oauth/client.json"
      })
      expect(info.source).toBe("dynamic")
      expect(info.clientId).not.toBe("https://app.example.com/oauth/client.json")
      expect(yield* server.count("register")).toBe(1)
    }))
})

describe("Registration: dynamic registration (RFC 7591)", () => {
  it.scopedLive("the request body against the fixture; the client is bound to the issuer", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const info = yield* withServices(({ discovery, registration }) =>
        Effect.flatMap(
          discoverFixture(server, discovery),
          (d) => registration.register({ discovery: d, redirectUri: REDIRECT, scope: "read write" })
        ), { additionalClientMetadata: { client_uri: "https://app.example.com", software_id: "sw-1" } })
      const [request, ...rest] = yield* server.requestsTo("register")
      expect(rest).toEqual([])
      expect(request?.method).toBe("POST")
      expect(request?.headers["content-type"]).toContain("application/json")
      expect(request?.json).toStrictEqual({
        client_name: "effect-mcp-oauth",
        redirect_uris: [REDIRECT],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        // The fixture accepts `none`: a public client is requested.
        token_endpoint_auth_method: "none",
        application_type: "native",
        scope: "read write",
        client_uri: "https://app.example.com",
        software_id: "sw-1"
      })

      expect(info.source).toBe("dynamic")
      expect(info.issuer).toBe(server.issuer)
      expect(info.tokenEndpointAuthMethod).toBe("none")
      expect(info.clientSecret).toBeUndefined()
      expect(info.redirectUris).toEqual([REDIRECT])
      expect(info.clientId.length).toBeGreaterThan(0)
      // The server really knows the client.
      const known = yield* server.provider.store.getClient(info.clientId)
      expect(Option.isSome(known)).toBe(true)
    }))

  it.scopedLive("clientName and grantTypes are sent as given; no scope when none is requested", () =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => ({ status: 201, json: { client_id: "c1" } }))
      yield* withServices(({ registration }) =>
        registration.register({
          discovery: rawDiscovery(server),
          redirectUri: REDIRECT,
          grantTypes: ["authorization_code"]
        }), { clientName: "My App" })
      expect(server.requests[0]?.json).toMatchObject({ client_name: "My App", grant_types: ["authorization_code"] })
      expect(server.requests[0]?.json).not.toHaveProperty("scope")
    }))

  it.scopedLive("a client_credentials-only client asks for no response type (RFC 7591 §2.1), and the embedded AS registers it", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const info = yield* withServices(({ discovery, registration }) =>
        Effect.flatMap(
          discoverFixture(server, discovery),
          (d) => registration.register({ discovery: d, redirectUri: REDIRECT, grantTypes: ["client_credentials"] })
        ))
      const [request] = yield* server.requestsTo("register")
      expect(request?.json).toMatchObject({
        grant_types: ["client_credentials"],
        response_types: [],
        token_endpoint_auth_method: "client_secret_basic"
      })
      expect(info.source).toBe("dynamic")
      expect(info.clientSecret).toBeDefined()
      expect(Option.isSome(yield* server.provider.store.getClient(info.clientId))).toBe(true)
    }))

  it.scopedLive("the requested method follows the server list: client_secret_post when only that is offered", () =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => ({
        status: 201,
        json: { client_id: "c1", client_secret: "sec", token_endpoint_auth_method: "client_secret_post" }
      }))
      const info = yield* withServices(({ registration }) =>
        registration.register({
          discovery: rawDiscovery(server, { token_endpoint_auth_methods_supported: ["client_secret_post"] }),
          redirectUri: REDIRECT
        })
      )
      expect(server.requests[0]?.json).toMatchObject({ token_endpoint_auth_method: "client_secret_post" })
      expect(info.tokenEndpointAuthMethod).toBe("client_secret_post")
      expect(info.clientSecret === undefined ? undefined : Redacted.value(info.clientSecret)).toBe("sec")
      expect(info.issuer).toBe(server.url)
    }))

  it.scopedLive("the server's method wins over the requested one", () =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => ({
        status: 201,
        json: {
          client_id: "c2",
          client_secret: "sec",
          token_endpoint_auth_method: "client_secret_basic",
          redirect_uris: ["http://127.0.0.1:1/cb"],
          client_secret_expires_at: 0,
          registration_client_uri: "https://as.example/register/c2",
          registration_access_token: "rat"
        }
      }))
      const info = yield* withServices(({ registration }) =>
        registration.register({ discovery: rawDiscovery(server), redirectUri: REDIRECT })
      )
      expect(server.requests[0]?.json).toMatchObject({ token_endpoint_auth_method: "none" })
      expect(info.tokenEndpointAuthMethod).toBe("client_secret_basic")
      expect(info.redirectUris).toEqual(["http://127.0.0.1:1/cb"])
      expect(info.clientSecretExpiresAt).toBeUndefined()
      expect(info.registrationClientUri).toBe("https://as.example/register/c2")
      expect(info.registrationAccessToken === undefined ? undefined : Redacted.value(info.registrationAccessToken))
        .toBe("rat")
    }))

  it.scopedLive("a secret without a method after asking for none → client_secret_basic", () =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => ({ status: 201, json: { client_id: "c3", client_secret: "x" } }))
      const info = yield* withServices(({ registration }) =>
        registration.register({ discovery: rawDiscovery(server), redirectUri: REDIRECT })
      )
      expect(info.tokenEndpointAuthMethod).toBe("client_secret_basic")
    }))

  it.scopedLive("a future client_secret_expires_at is kept as epoch milliseconds", () =>
    Effect.gen(function*() {
      const expiresAt = Math.floor(Date.now() / 1000) + 3600
      const server = yield* registrationServer(() => ({
        status: 201,
        json: { client_id: "c4", client_secret: "x", client_secret_expires_at: expiresAt }
      }))
      const info = yield* withServices(({ registration }) =>
        registration.register({ discovery: rawDiscovery(server), redirectUri: REDIRECT })
      )
      expect(info.clientSecretExpiresAt).toBe(expiresAt * 1000)
    }))
})

describe("Registration: unusable responses", () => {
  it.effect("an unsupported token_endpoint_auth_method of any length is quoted at most 60 characters long", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Registration.clientInformationFromResponse(
        { client_id: "c1", client_secret: "s1", token_endpoint_auth_method: "x".repeat(5000) },
        { issuer: "https://as.example.com", requestedMethod: "none", redirectUris: ["http://127.0.0.1/callback"] }
      ))
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
      expect(error.message.length).toBeLessThan(300)
      expect(error.message).toContain(`"${"x".repeat(60)}…"`)
    }))

  const failWith = (reply: Reply, extra: Record<string, unknown> = {}) =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => reply)
      return yield* withServices(({ registration }) =>
        Effect.flip(registration.register({ discovery: rawDiscovery(server, extra), redirectUri: REDIRECT }))
      )
    })

  it.scopedLive("a secret-based method without a secret → InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 201,
        json: { client_id: "c", token_endpoint_auth_method: "client_secret_post" }
      })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
      const empty = yield* failWith({
        status: 201,
        json: { client_id: "c", client_secret: "", token_endpoint_auth_method: "client_secret_basic" }
      })
      expect(empty).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
    }))

  it.scopedLive("an already expired client secret → InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 201,
        json: { client_id: "c", client_secret: "x", client_secret_expires_at: Math.floor(Date.now() / 1000) - 10 }
      })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
      expect(error.message).toContain("expired")
    }))

  it.scopedLive("client_secret_expires_at 1e400 (Infinity once parsed; found by fuzzing) → InvalidResponse, not a client that cannot be stored", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 201,
        text: "{\"client_id\":\"c\",\"client_secret\":\"x\",\"client_secret_expires_at\":1e400}",
        contentType: "application/json"
      })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
      expect(error.message).toContain("client_secret_expires_at")
    }))

  it.scopedLive("an auth method this library cannot use → InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 201,
        json: { client_id: "c", token_endpoint_auth_method: "tls_client_auth" }
      })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
    }))

  it.scopedLive("a body that is not a client information response → InvalidResponse", () =>
    Effect.gen(function*() {
      const html = yield* failWith({ status: 201, text: "<html>welcome</html>", contentType: "text/html" })
      expect(html).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
      const noId = yield* failWith({ status: 201, json: { client_secret: "x" } })
      expect(noId).toMatchObject({ _tag: "OAuthRegistrationError", reason: "InvalidResponse" })
    }))

  it.scopedLive("400 invalid_client_metadata → Rejected with the error code and description", () =>
    Effect.gen(function*() {
      const error = yield* failWith({
        status: 400,
        json: { error: "invalid_client_metadata", error_description: "redirect_uris must be https" }
      })
      expect(error).toMatchObject({
        _tag: "OAuthRegistrationError",
        reason: "Rejected",
        status: 400,
        error: "invalid_client_metadata",
        errorDescription: "redirect_uris must be https"
      })
    }))

  it.scopedLive("a 500 HTML page → Rejected with the status", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 500, text: "<h1>oops</h1>", contentType: "text/html" })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "Rejected", status: 500 })
      expect(error.message).toContain("500")
    }))

  it.scopedLive("a redirect from the registration endpoint → OAuthRequestError Redirect", () =>
    Effect.gen(function*() {
      const error = yield* failWith({ status: 307, headers: { location: "https://elsewhere.example/register" } })
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", status: 307 })
    }))

  it.scopedLive("no registration endpoint → NotSupported, naming the way out", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ omitRegistrationEndpoint: true })
      const error = yield* withServices(({ discovery, registration }) =>
        Effect.flatMap(
          discoverFixture(server, discovery),
          (d) => Effect.flip(registration.register({ discovery: d, redirectUri: REDIRECT }))
        ), { clientMetadataUrl: "https://app.example.com/client.json" })
      expect(error).toMatchObject({ _tag: "OAuthRegistrationError", reason: "NotSupported" })
      expect(error.message).toContain(server.issuer)
      expect(error.message).toContain("pre-registered clientId")
      expect(error.message).toContain("client metadata documents")
      expect(yield* server.count("register")).toBe(0)
    }))

  it.scopedLive("an http:// non-loopback registration endpoint → InsecureUrl", () =>
    Effect.gen(function*() {
      const server = yield* registrationServer(() => ({ status: 201, json: { client_id: "c" } }))
      const error = yield* withServices(({ registration }) =>
        Effect.flip(
          registration.register({
            discovery: rawDiscovery(server, { registration_endpoint: "http://as.example.com/register" }),
            redirectUri: REDIRECT
          })
        )
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      expect(server.requests).toEqual([])
    }))
})
