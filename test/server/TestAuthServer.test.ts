import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import { authorize, codeFlow, pkcePair, postForm, postJson, registerPublicClient, request } from "./http.js"

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

describe("TestAuthServer fixture", () => {
  it.scoped("runs the code flow end to end and the token opens /mcp", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      expect(server.mcpUrl).toBe(`${server.baseUrl}/mcp`)
      const { token } = yield* codeFlow(server, { resource: server.mcpUrl })
      expect(token.status).toBe(200)
      const access = token.body["access_token"] as string
      const res = yield* postJson(server.mcpUrl, { jsonrpc: "2.0", id: 1, method: "ping" }, bearer(access))
      expect(res.status).toBe(200)
      expect(res.body).toEqual({
        ok: true,
        sub: "test-user",
        clientId: expect.any(String),
        scopes: [],
        resource: server.mcpUrl,
        body: { jsonrpc: "2.0", id: 1, method: "ping" }
      })
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, token: 1, resource: 1 })
      const [tokenRequest] = yield* server.requestsTo("token")
      expect(tokenRequest!.form["resource"]).toBe(server.mcpUrl)
      expect(tokenRequest!.form["code_verifier"]).toMatch(/^[A-Za-z0-9_-]{43}$/)
      yield* server.resetCounters
      expect(yield* server.count("token")).toBe(0)
    }))

  it.scoped("401 on /mcp carries resource_metadata, and the PRM is served at both well-known URLs", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const res = yield* postJson(server.mcpUrl, {})
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${server.prmUrl}"`)
      const prm = yield* request(server.prmUrl)
      expect(prm.body).toMatchObject({ resource: server.mcpUrl, authorization_servers: [server.issuer] })
      expect((yield* request(`${server.baseUrl}/.well-known/oauth-protected-resource`)).status).toBe(200)
      expect(yield* server.count("prm")).toBe(2)
    }))

  it.scoped("prmLocation moves or hides the PRM and drops it from the header", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      const root = `${server.baseUrl}/.well-known/oauth-protected-resource`
      expect((yield* postJson(server.mcpUrl, {})).headers.get("www-authenticate")).toBe("Bearer")
      expect((yield* request(server.prmUrl)).status).toBe(200)
      expect((yield* request(root)).status).toBe(404)
      yield* server.setFaults({ prmLocation: "root" })
      expect((yield* request(server.prmUrl)).status).toBe(404)
      expect((yield* request(root)).status).toBe(200)
      yield* server.setFaults({ prmLocation: "none" })
      expect((yield* request(root)).status).toBe(404)
      yield* server.setFaults({ prmLocation: "header", prmResource: "https://evil.example.com/mcp" })
      expect((yield* request(server.prmUrl)).body["resource"]).toBe("https://evil.example.com/mcp")
    }))

  it.scoped("token endpoint faults: 503, then forgotten clients, then revoked refresh tokens", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, token } = yield* codeFlow(server)
      yield* server.setFaults({ tokenStatus5xx: true })
      const refresh = { grant_type: "refresh_token", refresh_token: token.body["refresh_token"] as string }
      const failed = yield* postForm(`${server.issuer}/token`, { ...refresh, client_id: client.client_id })
      expect(failed.status).toBe(503)
      expect(failed.body["error"]).toBe("temporarily_unavailable")
      yield* server.setFaults({ tokenStatus5xx: false })
      yield* server.revokeRefreshTokens
      const revoked = yield* postForm(`${server.issuer}/token`, { ...refresh, client_id: client.client_id })
      expect(revoked.body["error"]).toBe("invalid_grant")
      yield* server.forgetClients
      const forgotten = yield* postForm(`${server.issuer}/token`, { ...refresh, client_id: client.client_id })
      expect(forgotten.status).toBe(401)
      expect(forgotten.body["error"]).toBe("invalid_client")
      const { challenge } = pkcePair()
      const auth = yield* request(`${server.issuer}/authorize?response_type=code&client_id=${client.client_id}` +
        `&code_challenge=${challenge}&code_challenge_method=S256`)
      expect(auth.status).toBe(400)
      expect(auth.body["error"]).toBe("invalid_client")
    }))

  it.scopedLive("tokenHang never answers (the caller's timeout fires) and the server still shuts down", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ tokenHang: true })
      const result = yield* postForm(`${server.issuer}/token`, { grant_type: "client_credentials" }).pipe(
        Effect.timeout("300 millis"),
        Effect.either
      )
      expect(result._tag).toBe("Left")
      expect(yield* server.count("token")).toBe(1)
    }))

  it.scoped("metadata faults: wrong issuer, no S256, no registration endpoint, CIMD, redirect, malformed", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ issuerPath: "/tenant1" })
      expect(server.issuer).toBe(`${server.baseUrl}/tenant1`)
      expect(server.asMetadataUrl).toBe(`${server.baseUrl}/.well-known/oauth-authorization-server/tenant1`)
      const ok = yield* request(server.asMetadataUrl)
      expect(ok.body).toMatchObject({
        issuer: server.issuer,
        code_challenge_methods_supported: ["S256"],
        registration_endpoint: `${server.issuer}/register`,
        client_id_metadata_document_supported: false
      })
      yield* server.setFaults({ wrongIssuer: true, noS256: "plain", omitRegistrationEndpoint: true, cimd: true })
      const bad = yield* request(server.asMetadataUrl)
      expect(bad.body["issuer"]).not.toBe(server.issuer)
      expect(bad.body["code_challenge_methods_supported"]).toEqual(["plain"])
      expect(bad.body["registration_endpoint"]).toBeUndefined()
      expect(bad.body["client_id_metadata_document_supported"]).toBe(true)
      yield* server.setFaults({ noS256: "omit" })
      expect((yield* request(server.asMetadataUrl)).body["code_challenge_methods_supported"]).toBeUndefined()
      yield* server.setFaults({ metadataRedirect: true })
      const moved = yield* request(server.asMetadataUrl)
      expect(moved.status).toBe(302)
      yield* server.setFaults({ metadataRedirect: false, metadataMalformed: true })
      const html = yield* request(server.asMetadataUrl)
      expect(html.status).toBe(200)
      expect(() => JSON.parse(html.text)).toThrow()
      yield* server.setFaults({ metadataMalformed: "missingIssuer", wrongIssuer: false })
      expect((yield* request(server.asMetadataUrl)).body["issuer"]).toBeUndefined()
      // the root metadata URL does not exist for a path issuer
      expect((yield* request(`${server.baseUrl}/.well-known/oauth-authorization-server`)).status).toBe(404)
    }))

  it.scoped("issueToken pre-seeds tokens; requiredScopes gives 403 insufficient_scope; TTL is honoured", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ requiredScopes: ["mcp:write"] })
      const weak = yield* server.issueToken({ scopes: ["mcp:read"] })
      const denied = yield* postJson(server.mcpUrl, {}, bearer(Redacted.value(weak.accessToken)))
      expect(denied.status).toBe(403)
      expect(denied.headers.get("www-authenticate")).toBe(
        `Bearer error="insufficient_scope", error_description="the access token lacks a required scope", ` +
          `scope="mcp:write", resource_metadata="${server.prmUrl}"`
      )
      const strong = yield* server.issueToken({ scopes: ["mcp:read", "mcp:write"] })
      expect((yield* postJson(server.mcpUrl, {}, bearer(Redacted.value(strong.accessToken)))).status).toBe(200)
      const expired = yield* server.issueToken({ scopes: ["mcp:write"], ttlSeconds: -1 })
      const res = yield* postJson(server.mcpUrl, {}, bearer(Redacted.value(expired.accessToken)))
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toContain(`error="invalid_token"`)
      expect(res.headers.get("www-authenticate")).toContain(`scope="mcp:write"`)
      yield* server.setFaults({ accessTokenTtlSeconds: 5 })
      const { token } = yield* codeFlow(server)
      expect(token.body["expires_in"]).toBe(5)
    }))

  it.scoped("pre-registered confidential client and consent deny", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({
        clients: [{
          clientId: "pre",
          clientSecret: "s3cret",
          tokenEndpointAuthMethod: "client_secret_post",
          redirectUris: ["http://127.0.0.1/cb"],
          grantTypes: ["authorization_code", "client_credentials"]
        }],
        consent: "deny"
      })
      const cc = yield* postForm(`${server.issuer}/token`, {
        grant_type: "client_credentials",
        client_id: "pre",
        client_secret: "s3cret",
        resource: server.mcpUrl
      })
      expect(cc.status).toBe(200)
      expect(cc.body["refresh_token"]).toBeUndefined()
      const { challenge } = pkcePair()
      const { location } = yield* authorize(server, {
        clientId: "pre",
        challenge,
        redirectUri: "http://127.0.0.1:4444/cb"
      })
      expect(location.origin).toBe("http://127.0.0.1:4444")
      expect(location.searchParams.get("error")).toBe("access_denied")
      expect(location.searchParams.get("state")).toBe("st-123")
      expect(location.searchParams.get("iss")).toBe(server.issuer)
      const registered = yield* registerPublicClient(server)
      expect(registered.client_id).toBeTypeOf("string")
    }))
})
