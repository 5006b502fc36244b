import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, TestClock } from "effect"
import * as ClientConfiguration from "../../src/ClientConfiguration.js"
import { ClientInformation } from "../../src/Schemas.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import type { TestServer } from "../fixtures/TestAuthServer.js"
import {
  authorize,
  authorizeUrl,
  basic,
  codeFlow,
  pkcePair,
  postForm,
  postJson,
  REDIRECT,
  registerPublicClient,
  request,
  serveProvider
} from "./http.js"

const tokenUrl = (s: TestServer) => `${s.issuer}/token`

describe("OAuthProvider metadata (RFC 8414)", () => {
  it.scoped("serves the metadata at the RFC 8414 well-known URL (and the test fixture at the OIDC one)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["mcp:read", "mcp:write"] })
      const res = yield* request(`${server.baseUrl}/.well-known/oauth-authorization-server`)
      expect(res.status).toBe(200)
      expect(res.body).toEqual({
        issuer: server.baseUrl,
        authorization_endpoint: `${server.baseUrl}/authorize`,
        token_endpoint: `${server.baseUrl}/token`,
        registration_endpoint: `${server.baseUrl}/register`,
        revocation_endpoint: `${server.baseUrl}/revoke`,
        introspection_endpoint: `${server.baseUrl}/introspect`,
        scopes_supported: ["mcp:read", "mcp:write"],
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
        token_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post"],
        revocation_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post"],
        introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
        code_challenge_methods_supported: ["S256"],
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: false
      })
      // The fixture plays an AS that also serves OIDC Discovery (OAuthProvider itself does not:
      // test/server/Cors.test.ts).
      const oidc = yield* request(`${server.baseUrl}/.well-known/openid-configuration`)
      expect(oidc.body).toEqual(res.body)
    }))

  it.scoped("an issuer with a path serves metadata under the path and its endpoints below it", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ issuerPath: "/tenant1" })
      const res = yield* request(`${server.baseUrl}/.well-known/oauth-authorization-server/tenant1`)
      expect(res.body["issuer"]).toBe(`${server.baseUrl}/tenant1`)
      expect(res.body["token_endpoint"]).toBe(`${server.baseUrl}/tenant1/token`)
      expect((yield* request(`${server.baseUrl}/.well-known/openid-configuration/tenant1`)).status).toBe(200)
      expect((yield* request(`${server.baseUrl}/tenant1/.well-known/openid-configuration`)).status).toBe(200)
      const { token } = yield* codeFlow(server)
      expect(token.status).toBe(200)
      expect((yield* postForm(`${server.baseUrl}/token`, { grant_type: "client_credentials" })).status).toBe(404)
    }))
})

describe("OAuthProvider registration (RFC 7591)", () => {
  it.scoped("registers a confidential client with a secret and a public client without", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const res = yield* postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        client_name: "c",
        grant_types: ["authorization_code", "refresh_token"]
      })
      expect(res.status).toBe(201)
      expect(res.headers.get("cache-control")).toBe("no-store")
      expect(res.body).toMatchObject({
        client_id: expect.any(String),
        client_secret: expect.any(String),
        client_secret_expires_at: 0,
        client_id_issued_at: expect.any(Number),
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [REDIRECT],
        client_name: "c"
      })
      const pub = yield* postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none"
      })
      expect(pub.status).toBe(201)
      expect(pub.body["client_secret"]).toBeUndefined()
      expect(pub.body["token_endpoint_auth_method"]).toBe("none")
      const stored = yield* server.provider.store.getClient(pub.body["client_id"] as string)
      expect(Option.isSome(stored)).toBe(true)
    }))

  it.scoped("rejects malformed bodies and bad metadata with 400 and the RFC 7591 error codes", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const url = `${server.issuer}/register`
      const notJson = yield* request(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json"
      })
      expect(notJson.status).toBe(400)
      expect(notJson.body["error"]).toBe("invalid_client_metadata")
      const wrongType = yield* postJson(url, { redirect_uris: "http://127.0.0.1/cb" })
      expect(wrongType.body["error"]).toBe("invalid_client_metadata")
      const noRedirects = yield* postJson(url, { client_name: "x" })
      expect(noRedirects.status).toBe(400)
      expect(noRedirects.body["error"]).toBe("invalid_redirect_uri")
      const httpRemote = yield* postJson(url, { redirect_uris: ["http://evil.example.com/cb"] })
      expect(httpRemote.body["error"]).toBe("invalid_redirect_uri")
      const fragment = yield* postJson(url, { redirect_uris: ["https://app.example.com/cb#x"] })
      expect(fragment.body["error"]).toBe("invalid_redirect_uri")
      const js = yield* postJson(url, { redirect_uris: ["javascript:alert(1)"] })
      expect(js.body["error"]).toBe("invalid_redirect_uri")
      const method = yield* postJson(url, { redirect_uris: [REDIRECT], token_endpoint_auth_method: "magic" })
      expect(method.body["error"]).toBe("invalid_client_metadata")
      const grant = yield* postJson(url, { redirect_uris: [REDIRECT], grant_types: ["password"] })
      expect(grant.body["error"]).toBe("invalid_client_metadata")
      const publicCc = yield* postJson(url, { grant_types: ["client_credentials"], token_endpoint_auth_method: "none" })
      expect(publicCc.body["error"]).toBe("invalid_client_metadata")
      const form = yield* postForm(url, { redirect_uris: REDIRECT })
      expect(form.body["error"]).toBe("invalid_client_metadata")
      // a client_credentials client needs no redirect URI; a private-use scheme is fine
      expect((yield* postJson(url, { grant_types: ["client_credentials"] })).status).toBe(201)
      expect((yield* postJson(url, { redirect_uris: ["com.example.app:/cb"], application_type: "native" })).status)
        .toBe(201)
    }))

  it.scoped("private-use schemes need application_type native in reverse-DNS form; dangerous schemes never register", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const url = `${server.issuer}/register`
      const errorOf = (redirectUri: string, applicationType?: string) =>
        Effect.map(
          postJson(url, {
            redirect_uris: [redirectUri],
            ...(applicationType === undefined ? {} : { application_type: applicationType })
          }),
          (res) => [res.status, res.body["error"]]
        )
      const refused = [400, "invalid_redirect_uri"]
      for (const uri of ["ms-msdt:/id", "ms-msdt:?id=PCWDiagnostic", "search-ms:query=x", "vbscript:msgbox", "file:///etc/passwd"]) {
        expect(yield* errorOf(uri), uri).toEqual(refused)
        expect(yield* errorOf(uri, "native"), uri).toEqual(refused)
      }
      expect(yield* errorOf("data:text/html,hi", "native")).toEqual(refused)
      // RFC 8252 §7.1: a private-use scheme only for native apps, and only a reverse domain name
      expect(yield* errorOf("com.example.app:/cb")).toEqual(refused)
      expect(yield* errorOf("com.example.app:/cb", "web")).toEqual(refused)
      expect(yield* errorOf("myapp:/cb", "native")).toEqual(refused)
      expect(yield* errorOf("com.example.app:/cb", "desktop")).toEqual([400, "invalid_client_metadata"])
      const native = yield* postJson(url, { redirect_uris: ["com.example.app:/cb"], application_type: "native" })
      expect([native.status, native.body["application_type"]]).toEqual([201, "native"])
      expect((yield* postJson(url, { redirect_uris: ["https://app.example.com/cb"] })).status).toBe(201)
    }))

  it.scoped("dynamic registration is bounded: per address per window (429, Retry-After) and in all", () =>
    Effect.gen(function*() {
      const perAddress = yield* serveProvider({ registrationLimit: { perAddress: 3, window: "1 minute" } })
      const register = (server: { readonly issuer: string }) =>
        postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT] })
      for (let i = 0; i < 3; i++) expect((yield* register(perAddress)).status).toBe(201)
      // an invalid request does not spend the allowance, and is still answered as invalid
      expect((yield* postJson(`${perAddress.issuer}/register`, { redirect_uris: ["ms-msdt:/x"] })).status).toBe(400)
      const limited = yield* register(perAddress)
      expect([limited.status, limited.body["error"]]).toEqual([429, "temporarily_unavailable"])
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0)
      yield* TestClock.adjust("61 seconds")
      expect((yield* register(perAddress)).status).toBe(201)

      const total = yield* serveProvider({ registrationLimit: { maxClients: 2 } })
      expect((yield* register(total)).status).toBe(201)
      expect((yield* register(total)).status).toBe(201)
      const full = yield* register(total)
      expect([full.status, full.body["error"]]).toEqual([400, "invalid_client_metadata"])
      expect(String(full.body["error_description"])).toContain("no more dynamic registrations")
    }))

  it.scoped("RFC 7592: the registration access token reads, updates (e.g. widens the scope) and deletes the client", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["read", "write", "admin"] })
      const reg = yield* postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none",
        scope: "read"
      })
      const clientId = String(reg.body["client_id"])
      const uri = String(reg.body["registration_client_uri"])
      const rat = String(reg.body["registration_access_token"])
      expect(uri).toBe(`${server.issuer}/register/${clientId}`)
      const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
      const read = yield* request(uri, { headers: bearer(rat) })
      expect([read.status, read.body["client_id"], read.body["scope"]]).toEqual([200, clientId, "read"])
      expect([read.body["registration_client_uri"], read.body["registration_access_token"]]).toEqual([uri, rat])
      expect(read.headers.get("cache-control")).toBe("no-store")
      // wrong token, no token, another client's URI: 401 invalid_token, alike
      for (const [url, headers] of [[uri, bearer("wrong")], [uri, {}], [`${server.issuer}/register/nope`, bearer(rat)]] as const) {
        const res = yield* request(url, { headers })
        expect([res.status, res.body["error"]]).toEqual([401, "invalid_token"])
      }
      const put = (body: Record<string, unknown>) =>
        request(uri, {
          method: "PUT",
          headers: { ...bearer(rat), "content-type": "application/json" },
          body: JSON.stringify(body)
        })
      const base = { client_id: clientId, redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }
      expect((yield* put({ ...base, scope: "read superuser" })).body["error"]).toBe("invalid_client_metadata")
      expect((yield* put({ ...base, client_id: "other", scope: "read write" })).body["error"]).toBe(
        "invalid_client_metadata"
      )
      expect((yield* put({ ...base, redirect_uris: ["ms-msdt:/x"] })).body["error"]).toBe("invalid_redirect_uri")
      const widened = yield* put({ ...base, scope: "read write" })
      expect([widened.status, widened.body["scope"]]).toEqual([200, "read write"])
      const { challenge } = pkcePair()
      const stepUp = yield* authorize(server, { clientId, challenge, scope: "read write" })
      expect(stepUp.location.searchParams.get("code")).not.toBeNull()
      expect((yield* authorize(server, { clientId, challenge, scope: "admin" })).location.searchParams.get("error"))
        .toBe("invalid_scope")
      const deleted = yield* request(uri, { method: "DELETE", headers: bearer(rat) })
      expect(deleted.status).toBe(204)
      expect(Option.isNone(yield* server.provider.store.getClient(clientId))).toBe(true)
      expect((yield* request(uri, { headers: bearer(rat) })).status).toBe(401)
      // an operator-registered client has no registration access token
      const operator = yield* server.registerClient({ clientId: "op", tokenEndpointAuthMethod: "none" })
      expect((yield* request(`${server.issuer}/register/${operator.clientId}`, { headers: bearer(rat) })).status)
        .toBe(401)
    }))

  it.scoped("RFC 7592 §2.3: after DELETE /register/{id}, the client's access and refresh tokens stop working; another client's do not", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const signIn = Effect.gen(function*() {
        const reg = yield* postJson(`${server.issuer}/register`, {
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: "none",
          grant_types: ["authorization_code", "refresh_token"]
        })
        const clientId = String(reg.body["client_id"])
        const { challenge, verifier } = pkcePair()
        const { location } = yield* authorize(server, { clientId, challenge, resource: server.mcpUrl })
        const token = yield* postForm(tokenUrl(server), {
          grant_type: "authorization_code",
          code: location.searchParams.get("code")!,
          code_verifier: verifier,
          redirect_uri: REDIRECT,
          client_id: clientId,
          resource: server.mcpUrl
        })
        return {
          clientId,
          uri: String(reg.body["registration_client_uri"]),
          rat: String(reg.body["registration_access_token"]),
          access: String(token.body["access_token"]),
          refresh: String(token.body["refresh_token"])
        }
      })
      const deleted = yield* signIn
      const kept = yield* signIn
      // The resource server introspects with its own confidential client (RFC 7662 §2.1).
      yield* server.registerClient({ clientId: "rs", clientSecret: "rs-secret", tokenEndpointAuthMethod: "client_secret_basic" })
      const introspect = (token: string) =>
        Effect.map(
          postForm(`${server.issuer}/introspect`, { token }, { authorization: basic("rs", "rs-secret") }),
          (res) => res.body["active"]
        )
      const mcp = (token: string) =>
        Effect.map(request(server.mcpUrl, { method: "POST", headers: { authorization: `Bearer ${token}` } }), (r) => r.status)
      expect(yield* introspect(deleted.access)).toBe(true)
      expect(yield* mcp(deleted.access)).not.toBe(401)

      const res = yield* request(deleted.uri, { method: "DELETE", headers: { authorization: `Bearer ${deleted.rat}` } })
      expect(res.status).toBe(204)

      expect(yield* introspect(deleted.access)).toBe(false)
      expect(yield* introspect(deleted.refresh)).toBe(false)
      expect(yield* mcp(deleted.access)).toBe(401)
      expect(Option.isNone(yield* server.provider.store.getRefreshToken(deleted.refresh))).toBe(true)
      const refreshed = yield* postForm(tokenUrl(server), {
        grant_type: "refresh_token",
        refresh_token: deleted.refresh,
        client_id: deleted.clientId
      })
      expect(refreshed.status).toBeGreaterThanOrEqual(400)
      expect(refreshed.body["access_token"]).toBeUndefined()
      // Another client's grant is untouched.
      expect(yield* introspect(kept.access)).toBe(true)
      expect(yield* mcp(kept.access)).not.toBe(401)
      const other = yield* postForm(tokenUrl(server), {
        grant_type: "refresh_token",
        refresh_token: kept.refresh,
        client_id: kept.clientId
      })
      expect(other.status).toBe(200)
    }))

  it.scoped("RFC 7592 interop: the client library's ClientConfiguration.update widens the scope at the embedded AS", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["read", "write"] })
      const reg = yield* postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "client_secret_basic",
        scope: "read"
      })
      const client = new ClientInformation({
        clientId: String(reg.body["client_id"]),
        clientSecret: Redacted.make(String(reg.body["client_secret"])),
        tokenEndpointAuthMethod: "client_secret_basic",
        source: "dynamic",
        issuer: server.issuer,
        redirectUris: [REDIRECT],
        scope: "read",
        registrationClientUri: String(reg.body["registration_client_uri"]),
        registrationAccessToken: Redacted.make(String(reg.body["registration_access_token"]))
      })
      const updated = yield* ClientConfiguration.update(client, { addScopes: ["write"] }).pipe(
        Effect.provide(NodeHttpClient.layer)
      )
      expect(updated.metadata["scope"]).toBe("read write")
      const stored = yield* server.provider.store.getClient(client.clientId)
      expect(Option.map(stored, (c) => [c.scope, c.tokenEndpointAuthMethod])).toEqual(
        Option.some(["read write", "client_secret_basic"])
      )
      yield* ClientConfiguration.remove(updated.client).pipe(Effect.provide(NodeHttpClient.layer))
      expect(Option.isNone(yield* server.provider.store.getClient(client.clientId))).toBe(true)
    }))

  it.scoped("refuses an oversized body with 413", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const big = { redirect_uris: [REDIRECT], client_name: "x".repeat(100 * 1024) }
      const res = yield* postJson(`${server.issuer}/register`, big)
      expect(res.status).toBe(413)
      const token = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", pad: "y".repeat(70 * 1024) })
      expect(token.status).toBe(413)
    }))
})

describe("OAuthProvider authorization endpoint", () => {
  it.scoped("redirects with code, state and iss; loopback redirect URIs match on any port", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server)
      const { challenge } = pkcePair()
      const { location, status } = yield* authorize(server, {
        clientId: client.client_id,
        challenge,
        redirectUri: "http://127.0.0.1:61000/callback",
        state: "xyz"
      })
      expect(status).toBe(302)
      expect(`${location.origin}${location.pathname}`).toBe("http://127.0.0.1:61000/callback")
      expect(location.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(location.searchParams.get("state")).toBe("xyz")
      expect(location.searchParams.get("iss")).toBe(server.issuer)
    }))

  it.scoped("an unknown client or an unregistered redirect_uri answers 400 and never redirects", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server)
      const { challenge } = pkcePair()
      const unknown = yield* request(authorizeUrl(server, { clientId: "nope", challenge }))
      expect(unknown.status).toBe(400)
      expect(unknown.headers.get("location")).toBeNull()
      expect(unknown.body).toEqual({ error: "invalid_client", error_description: `Client ID "nope" not found` })
      const html = yield* request(authorizeUrl(server, { clientId: "nope", challenge }), {
        headers: { accept: "text/html" }
      })
      expect(html.status).toBe(400)
      expect(html.text).toContain("invalid_client")
      expect(html.text).toContain("Client ID &quot;nope&quot; not found")
      const tricks = [
        "http://127.0.0.1:53123/callback/../evil",
        "http://127.0.0.1:53123/callbackX",
        "http://127.0.0.1:53123/callback/extra",
        "http://127.0.0.1:53123/callback?x=1",
        "http://127.0.0.2:53123/callback",
        "https://127.0.0.1:53123/callback",
        "http://evil.example.com/callback",
        "http://127.0.0.1:53123@evil.example.com/callback",
        "http://user@127.0.0.1:53123/callback"
      ]
      for (const redirectUri of tricks) {
        const res = yield* request(authorizeUrl(server, { clientId: client.client_id, challenge, redirectUri }))
        expect(res.status, redirectUri).toBe(400)
        expect(res.headers.get("location"), redirectUri).toBeNull()
        expect(res.body["error"]).toBe("invalid_request")
      }
    }))

  it.scoped("PKCE is required with S256; other errors redirect with error and state", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["mcp:read"] })
      const client = yield* registerPublicClient(server)
      const { challenge } = pkcePair()
      const errorOf = (extra: Record<string, string>, options: { readonly scope?: string } = {}) =>
        Effect.map(
          authorize(server, { clientId: client.client_id, challenge, extra, ...options }),
          ({ location }) => [location.searchParams.get("error"), location.searchParams.get("state")]
        )
      expect(yield* errorOf({ code_challenge_method: "plain" })).toEqual(["invalid_request", "st-123"])
      const noMethod = new URL(authorizeUrl(server, { clientId: client.client_id, challenge }))
      noMethod.searchParams.delete("code_challenge_method")
      expect(new URL((yield* request(noMethod.toString())).headers.get("location")!).searchParams.get("error"))
        .toBe("invalid_request")
      const noChallenge = new URL(authorizeUrl(server, { clientId: client.client_id, challenge }))
      noChallenge.searchParams.delete("code_challenge")
      expect(new URL((yield* request(noChallenge.toString())).headers.get("location")!).searchParams.get("error"))
        .toBe("invalid_request")
      expect(yield* errorOf({ response_type: "token" })).toEqual(["unsupported_response_type", "st-123"])
      // RFC 6749 §4.1.2.1: a missing response_type is invalid_request, not unsupported_response_type.
      const noResponseType = new URL(authorizeUrl(server, { clientId: client.client_id, challenge }))
      noResponseType.searchParams.delete("response_type")
      expect(new URL((yield* request(noResponseType.toString())).headers.get("location")!).searchParams.get("error"))
        .toBe("invalid_request")
      expect(yield* errorOf({ response_type: "" })).toEqual(["invalid_request", "st-123"])
      expect(yield* errorOf({}, { scope: "admin" })).toEqual(["invalid_scope", "st-123"])
      expect(yield* errorOf({ resource: "not a uri" })).toEqual(["invalid_target", "st-123"])
      expect(yield* errorOf({ code_challenge: "short" })).toEqual(["invalid_request", "st-123"])
    }))

  it.scoped("errors for a dynamically registered https client are shown to the user, not redirected (RFC 9700 §4.11.2)", () =>
    Effect.gen(function*() {
      const evil = "https://evil.example.com/landing"
      const server = yield* startTestServer({
        scopesSupported: ["read"],
        clients: [{ clientId: "operator-app", tokenEndpointAuthMethod: "none", redirectUris: [evil] }]
      })
      const registered = yield* registerPublicClient(server, { redirect_uris: [evil] })
      const { challenge } = pkcePair()
      const attempts: ReadonlyArray<readonly [Record<string, string>, string | undefined, string]> = [
        [{}, "admin", "invalid_scope"],
        [{ response_type: "token" }, undefined, "unsupported_response_type"],
        [{ code_challenge_method: "plain" }, undefined, "invalid_request"],
        [{ resource: "not a uri" }, undefined, "invalid_target"]
      ]
      for (const [extra, scope, error] of attempts) {
        const params = { clientId: registered.client_id, challenge, redirectUri: evil, extra, ...(scope ? { scope } : {}) }
        const res = yield* request(authorizeUrl(server, params))
        expect([res.status, res.headers.get("location"), res.body["error"]], error).toEqual([400, null, error])
        const html = yield* request(authorizeUrl(server, params), { headers: { accept: "text/html" } })
        expect([html.status, html.headers.get("location")]).toEqual([400, null])
        expect(html.text).toContain(error)
        // a client the operator registered keeps RFC 6749 §4.1.2.1 error redirects
        const operator = yield* authorize(server, { ...params, clientId: "operator-app" })
        expect(operator.location.searchParams.get("error")).toBe(error)
      }
      // a client stored with a dangerous redirect URI (before registration refused it) is never sent there
      const legacy = yield* server.registerClient({ clientId: "legacy", tokenEndpointAuthMethod: "none", redirectUris: ["ms-msdt:/id"] })
      const legacyRes = yield* request(authorizeUrl(server, { clientId: legacy.clientId, challenge, redirectUri: "ms-msdt:/id" }))
      expect([legacyRes.status, legacyRes.headers.get("location")]).toEqual([400, null])
      // a denial by the consent step (no user decision) is not bounced there either
      yield* server.setFaults({ consent: "deny" })
      const denied = yield* request(authorizeUrl(server, { clientId: registered.client_id, challenge, redirectUri: evil }))
      expect([denied.status, denied.headers.get("location")]).toEqual([400, null])
      // the user's own Deny on the consent page goes back to the client
      yield* server.setFaults({ consent: "page" })
      const consentPage = yield* request(authorizeUrl(server, { clientId: registered.client_id, challenge, redirectUri: evil }))
      const requestId = /name="request_id" value="([^"]+)"/.exec(consentPage.text)![1]!
      const userDenied = yield* postForm(`${server.issuer}/authorize/consent`, { request_id: requestId, decision: "deny" })
      expect(userDenied.status).toBe(303)
      expect(new URL(userDenied.headers.get("location")!).searchParams.get("error")).toBe("access_denied")
    }))

  it.scoped("the consent page approves and denies through a form POST", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ consent: "page" })
      const client = yield* registerPublicClient(server)
      const { challenge, verifier } = pkcePair()
      const pageRes = yield* request(authorizeUrl(server, { clientId: client.client_id, challenge, scope: "a b" }))
      expect(pageRes.status).toBe(200)
      expect(pageRes.headers.get("content-type")).toContain("text/html")
      expect(pageRes.headers.get("x-frame-options")).toBe("DENY")
      expect(pageRes.text).toContain(`id="approve"`)
      expect(pageRes.text).toContain(`id="deny"`)
      const requestId = /name="request_id" value="([^"]+)"/.exec(pageRes.text)![1]!
      const approved = yield* postForm(`${server.issuer}/authorize/consent`, {
        request_id: requestId,
        decision: "approve"
      })
      expect(approved.status).toBe(303)
      const code = new URL(approved.headers.get("location")!).searchParams.get("code")!
      const token = yield* postForm(tokenUrl(server), {
        grant_type: "authorization_code",
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
        client_id: client.client_id
      })
      expect(token.body["scope"]).toBe("a b")
      // the request id is single-use
      const again = yield* postForm(`${server.issuer}/authorize/consent`, { request_id: requestId, decision: "approve" })
      expect(again.status).toBe(400)
      const page2 = yield* request(authorizeUrl(server, { clientId: client.client_id, challenge }))
      const id2 = /name="request_id" value="([^"]+)"/.exec(page2.text)![1]!
      const denied = yield* postForm(`${server.issuer}/authorize/consent`, { request_id: id2, decision: "deny" })
      const location = new URL(denied.headers.get("location")!)
      expect(location.searchParams.get("error")).toBe("access_denied")
      expect(location.searchParams.get("code")).toBeNull()
    }))
})

describe("OAuthProvider token endpoint", () => {
  it.scoped("exchanges a code with PKCE for audience-bound tokens, with no-store", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { token } = yield* codeFlow(server, { resource: server.mcpUrl, scope: "mcp:read" })
      expect(token.status).toBe(200)
      expect(token.headers.get("cache-control")).toBe("no-store")
      expect(token.body).toEqual({
        access_token: expect.any(String),
        token_type: "Bearer",
        expires_in: 3600,
        scope: "mcp:read",
        refresh_token: expect.any(String)
      })
      const verified = yield* server.provider.verifyAccessToken(token.body["access_token"] as string)
      expect(Option.map(verified, (t) => [t.subject, t.resource, t.scopes])).toEqual(
        Option.some(["test-user", server.mcpUrl, ["mcp:read"]])
      )
      expect(Option.isNone(yield* server.provider.verifyAccessToken("made-up"))).toBe(true)
    }))

  it.scoped("a wrong code_verifier is invalid_grant and burns the code", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server)
      const { challenge, verifier } = pkcePair()
      const { location } = yield* authorize(server, { clientId: client.client_id, challenge })
      const fields = {
        grant_type: "authorization_code",
        code: location.searchParams.get("code")!,
        redirect_uri: REDIRECT,
        client_id: client.client_id
      }
      const wrong = yield* postForm(tokenUrl(server), { ...fields, code_verifier: pkcePair().verifier })
      expect(wrong.status).toBe(400)
      expect(wrong.body["error"]).toBe("invalid_grant")
      const right = yield* postForm(tokenUrl(server), { ...fields, code_verifier: verifier })
      expect(right.body["error"]).toBe("invalid_grant")
      const missing = yield* postForm(tokenUrl(server), fields)
      expect(missing.body["error"]).toBe("invalid_request")
    }))

  it.scoped("a reused code is invalid_grant and revokes the tokens issued from it", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, code, token, verifier } = yield* codeFlow(server)
      const replay = yield* postForm(tokenUrl(server), {
        grant_type: "authorization_code",
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
        client_id: client.client_id
      })
      expect(replay.status).toBe(400)
      expect(replay.body["error"]).toBe("invalid_grant")
      expect(Option.isNone(yield* server.provider.verifyAccessToken(token.body["access_token"] as string))).toBe(true)
    }))

  it.scoped("redirect_uri and resource must match the authorization request", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server)
      const exchange = (redirectUri: string, resource?: string) =>
        Effect.gen(function*() {
          const { challenge, verifier } = pkcePair()
          const { location } = yield* authorize(server, {
            clientId: client.client_id,
            challenge,
            resource: server.mcpUrl
          })
          return yield* postForm(tokenUrl(server), {
            grant_type: "authorization_code",
            code: location.searchParams.get("code")!,
            code_verifier: verifier,
            redirect_uri: redirectUri,
            client_id: client.client_id,
            ...(resource === undefined ? {} : { resource })
          })
        })
      expect((yield* exchange("http://127.0.0.1:1/callback")).body["error"]).toBe("invalid_grant")
      expect((yield* exchange(REDIRECT, "https://other.example.com/mcp")).body["error"]).toBe("invalid_target")
      expect((yield* exchange(REDIRECT)).status).toBe(200)
    }))

  it.scoped("a grant authorized without resource is not redeemed or refreshed for a resource (RFC 8707)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server)
      const exchange = (resource?: string) =>
        Effect.gen(function*() {
          const { challenge, verifier } = pkcePair()
          const { location } = yield* authorize(server, { clientId: client.client_id, challenge })
          return yield* postForm(tokenUrl(server), {
            grant_type: "authorization_code",
            code: location.searchParams.get("code")!,
            code_verifier: verifier,
            redirect_uri: REDIRECT,
            client_id: client.client_id,
            ...(resource === undefined ? {} : { resource })
          })
        })
      const widened = yield* exchange("https://other.example.com/mcp")
      expect([widened.status, widened.body["error"]]).toEqual([400, "invalid_target"])
      const unbound = yield* exchange()
      expect(unbound.status).toBe(200)
      const claims = yield* server.provider.verifyAccessToken(String(unbound.body["access_token"]))
      expect(Option.map(claims, (c) => c.resource)).toEqual(Option.some(undefined))
      const refreshed = yield* postForm(tokenUrl(server), {
        grant_type: "refresh_token",
        refresh_token: String(unbound.body["refresh_token"]),
        client_id: client.client_id,
        resource: server.mcpUrl
      })
      expect([refreshed.status, refreshed.body["error"]]).toEqual([400, "invalid_target"])
    }))

  it.scoped("refresh rotates the refresh token; reusing an old one revokes the family", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, token } = yield* codeFlow(server, { scope: "a b", resource: server.mcpUrl })
      const refresh = (refreshToken: string, extra: Record<string, string> = {}) =>
        postForm(tokenUrl(server), {
          grant_type: "refresh_token",
          refresh_token: refreshToken,
          client_id: client.client_id,
          ...extra
        })
      const first = token.body["refresh_token"] as string
      const second = yield* refresh(first, { scope: "a" })
      expect(second.status).toBe(200)
      expect(second.body["scope"]).toBe("a")
      expect(second.body["refresh_token"]).not.toBe(first)
      const verified = yield* server.provider.verifyAccessToken(second.body["access_token"] as string)
      expect(Option.map(verified, (t) => t.resource)).toEqual(Option.some(server.mcpUrl))
      const wider = yield* refresh(second.body["refresh_token"] as string, { scope: "a b c" })
      expect(wider.body["error"]).toBe("invalid_scope")
      const third = yield* refresh(second.body["refresh_token"] as string)
      expect(third.status).toBe(200)
      // replay of the first (rotated) refresh token: reuse detected, the family is revoked
      const replay = yield* refresh(first)
      expect(replay.status).toBe(400)
      expect(replay.body["error"]).toBe("invalid_grant")
      expect((yield* refresh(third.body["refresh_token"] as string)).body["error"]).toBe("invalid_grant")
      expect(Option.isNone(yield* server.provider.verifyAccessToken(third.body["access_token"] as string))).toBe(true)
      // another grant of the same client is untouched
      const other = yield* codeFlow(server)
      expect((yield* refresh(other.token.body["refresh_token"] as string, {
        client_id: other.client.client_id
      })).status).toBe(200)
    }))

  it.scoped("client authentication: unknown client, wrong secret, wrong method → 401 invalid_client", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({
        clients: [
          { clientId: "conf", clientSecret: "pw", tokenEndpointAuthMethod: "client_secret_basic", grantTypes: ["client_credentials"] },
          { clientId: "post", clientSecret: "pw", tokenEndpointAuthMethod: "client_secret_post", grantTypes: ["client_credentials"] }
        ]
      })
      const cc = { grant_type: "client_credentials" }
      const unknown = yield* postForm(tokenUrl(server), { ...cc, client_id: "ghost" })
      expect(unknown.status).toBe(401)
      expect(unknown.body["error"]).toBe("invalid_client")
      // RFC 9110 §15.5.2: a 401 carries a challenge, also for a client that authenticated in the body.
      expect(unknown.headers.get("www-authenticate")).toMatch(/^Basic realm=/)
      const unknownBasic = yield* postForm(tokenUrl(server), cc, { authorization: basic("ghost", "x") })
      expect(unknownBasic.status).toBe(401)
      expect(unknownBasic.headers.get("www-authenticate")).toMatch(/^Basic /)
      const wrongSecret = yield* postForm(tokenUrl(server), cc, { authorization: basic("conf", "nope") })
      expect(wrongSecret.status).toBe(401)
      expect(wrongSecret.body["error"]).toBe("invalid_client")
      expect(wrongSecret.headers.get("www-authenticate")).toMatch(/^Basic realm=/)
      const wrongMethod = yield* postForm(tokenUrl(server), { ...cc, client_id: "conf", client_secret: "pw" })
      expect(wrongMethod.status).toBe(401)
      const postAsBasic = yield* postForm(tokenUrl(server), cc, { authorization: basic("post", "pw") })
      expect(postAsBasic.status).toBe(401)
      const malformed = yield* postForm(tokenUrl(server), cc, { authorization: "Basic !!!" })
      expect(malformed.status).toBe(401)
      const both = yield* postForm(tokenUrl(server), { ...cc, client_secret: "pw" }, { authorization: basic("conf", "pw") })
      expect(both.status).toBe(400)
      expect(both.body["error"]).toBe("invalid_request")
      expect((yield* postForm(tokenUrl(server), cc, { authorization: basic("conf", "pw") })).status).toBe(200)
      expect((yield* postForm(tokenUrl(server), { ...cc, client_id: "post", client_secret: "pw" })).status).toBe(200)
      const noClient = yield* postForm(tokenUrl(server), cc)
      expect(noClient.status).toBe(401)
      const json = yield* postJson(tokenUrl(server), cc, { authorization: basic("conf", "pw") })
      expect(json.status).toBe(400)
      expect(json.body["error"]).toBe("invalid_request")
      const bad = yield* postForm(tokenUrl(server), { grant_type: "password" }, { authorization: basic("conf", "pw") })
      expect(bad.body["error"]).toBe("unsupported_grant_type")
    }))

  it.scoped("Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1), non-ASCII included", () =>
    Effect.gen(function*() {
      const secret = "pässwörd: with space&+/=%é🔑"
      const server = yield* startTestServer({
        clients: [{
          clientId: "client:1 ü",
          clientSecret: secret,
          tokenEndpointAuthMethod: "client_secret_basic",
          grantTypes: ["client_credentials"]
        }]
      })
      const ok = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", resource: server.mcpUrl }, {
        authorization: basic("client:1 ü", secret)
      })
      expect(ok.status).toBe(200)
      const claims = yield* server.provider.verifyAccessToken(ok.body["access_token"] as string)
      expect(Option.map(claims, (c) => [c.clientId, c.subject, c.resource])).toEqual(
        Option.some(["client:1 ü", "client:1 ü", server.mcpUrl])
      )
      // the raw secret without form-encoding does not authenticate
      const raw = `Basic ${Buffer.from(`client%3A1+%C3%BC:${secret}`, "utf8").toString("base64")}`
      expect((yield* postForm(tokenUrl(server), { grant_type: "client_credentials" }, { authorization: raw })).status)
        .toBe(401)
    }))

  it.scoped("client_credentials is only for confidential clients registered for it", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const pub = yield* registerPublicClient(server)
      const res = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", client_id: pub.client_id })
      expect(res.body["error"]).toBe("unauthorized_client")
      const conf = yield* server.registerClient({ clientSecret: "s", grantTypes: ["authorization_code"] })
      const res2 = yield* postForm(tokenUrl(server), { grant_type: "client_credentials" }, {
        authorization: basic(conf.clientId, "s")
      })
      expect(res2.body["error"]).toBe("unauthorized_client")
    }))
})

describe("OAuthProvider registered scope", () => {
  it.scoped("a client registered for read gets invalid_scope for admin, at /authorize and by client_credentials", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const client = yield* registerPublicClient(server, { scope: "read" })
      const { challenge } = pkcePair()
      const denied = yield* authorize(server, { clientId: client.client_id, challenge, scope: "read admin" })
      expect(denied.location.searchParams.get("error")).toBe("invalid_scope")
      expect(denied.location.searchParams.get("code")).toBeNull()
      const allowed = yield* authorize(server, { clientId: client.client_id, challenge, scope: "read" })
      expect(allowed.location.searchParams.get("code")).not.toBeNull()

      const cc = yield* postJson(`${server.issuer}/register`, { grant_types: ["client_credentials"], scope: "read" })
      const credentials = { authorization: basic(String(cc.body["client_id"]), String(cc.body["client_secret"])) }
      const admin = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", scope: "admin" }, credentials)
      expect([admin.status, admin.body["error"]]).toEqual([400, "invalid_scope"])
      const read = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", scope: "read" }, credentials)
      expect([read.status, read.body["scope"]]).toEqual([200, "read"])
      // without a registered scope, nothing is narrowed
      const open = yield* postJson(`${server.issuer}/register`, { grant_types: ["client_credentials"] })
      const any = yield* postForm(tokenUrl(server), { grant_type: "client_credentials", scope: "admin" }, {
        authorization: basic(String(open.body["client_id"]), String(open.body["client_secret"]))
      })
      expect(any.status).toBe(200)
    }))
})

describe("OAuthProvider revocation (RFC 7009)", () => {
  it.scoped("revokes access tokens and refresh tokens (with their grant); foreign tokens are left alone", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const a = yield* codeFlow(server)
      const b = yield* codeFlow(server)
      const revokeUrl = `${server.issuer}/revoke`
      const access = a.token.body["access_token"] as string
      const res = yield* postForm(revokeUrl, { token: access, client_id: a.client.client_id })
      expect(res.status).toBe(200)
      expect(Option.isNone(yield* server.provider.verifyAccessToken(access))).toBe(true)
      // b's token revoked by a: answered 200 but not revoked
      const bAccess = b.token.body["access_token"] as string
      expect((yield* postForm(revokeUrl, { token: bAccess, client_id: a.client.client_id })).status).toBe(200)
      expect(Option.isSome(yield* server.provider.verifyAccessToken(bAccess))).toBe(true)
      yield* postForm(revokeUrl, { token: b.token.body["refresh_token"] as string, client_id: b.client.client_id })
      expect(Option.isNone(yield* server.provider.verifyAccessToken(bAccess))).toBe(true)
      const refresh = yield* postForm(tokenUrl(server), {
        grant_type: "refresh_token",
        refresh_token: b.token.body["refresh_token"] as string,
        client_id: b.client.client_id
      })
      expect(refresh.body["error"]).toBe("invalid_grant")
      expect((yield* postForm(revokeUrl, { token: "x", client_id: "ghost" })).status).toBe(401)
      expect((yield* postForm(revokeUrl, { client_id: a.client.client_id })).body["error"]).toBe("invalid_request")
    }))
})

describe("OAuthProvider token lifetime", () => {
  it.effect("issueToken with a ttl expires on the server's clock", () =>
    Effect.gen(function*() {
      const server = yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* startTestServer()
        const issued = yield* s.issueToken({ ttlSeconds: 10 })
        const token = Redacted.value(issued.accessToken)
        expect(Option.isSome(yield* s.provider.verifyAccessToken(token))).toBe(true)
        yield* TestClock.adjust("11 seconds")
        expect(Option.isNone(yield* s.provider.verifyAccessToken(token))).toBe(true)
        return s
      }))
      expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    }))

  it.scoped("authorization codes live 60 seconds and refresh tokens their configured lifetime", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ refreshTokenTtlSeconds: 120 })
      const client = yield* registerPublicClient(server)
      const { challenge, verifier } = pkcePair()
      const { location } = yield* authorize(server, { clientId: client.client_id, challenge })
      yield* TestClock.adjust("61 seconds")
      const late = yield* postForm(tokenUrl(server), {
        grant_type: "authorization_code",
        code: location.searchParams.get("code")!,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
        client_id: client.client_id
      })
      expect(late.body).toMatchObject({ error: "invalid_grant", error_description: "authorization code expired" })
      const second = yield* codeFlow(server)
      yield* TestClock.adjust("121 seconds")
      const refresh = yield* postForm(tokenUrl(server), {
        grant_type: "refresh_token",
        refresh_token: second.token.body["refresh_token"] as string,
        client_id: second.client.client_id
      })
      expect(refresh.body).toMatchObject({ error: "invalid_grant", error_description: "refresh token expired" })
    }))

  it.scoped("RFC 9207 iss can be turned off, and the metadata says so", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ issuerParameter: false })
      expect((yield* request(server.asMetadataUrl)).body["authorization_response_iss_parameter_supported"]).toBe(false)
      const client = yield* registerPublicClient(server)
      const { location } = yield* authorize(server, { clientId: client.client_id, challenge: pkcePair().challenge })
      expect(location.searchParams.get("code")).not.toBeNull()
      expect(location.searchParams.has("iss")).toBe(false)
    }))
})
