/**
 * CORS of the embedded authorization server and the protected MCP endpoint, byte for byte (the
 * browser's view of the same is in test/browser/Cors.chromium.test.ts), and the OIDC Discovery
 * decision: the embedded server serves no `/.well-known/openid-configuration`.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { createServer } from "node:http"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as Cors from "../../src/server/Cors.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import { postForm, request } from "./http.js"

const APP = "http://127.0.0.1:4999"

const endpoint = McpEndpoint.make({
  name: "cors",
  tools: [
    McpEndpoint.tool({ name: "echo", parameters: Schema.Struct({ text: Schema.String }), handler: ({ text }) => Effect.succeed(text) })
  ]
})

/** The AS and the MCP endpoint on one origin, with the given CORS options. */
const serve = (
  options: { readonly provider?: Cors.Options | false; readonly mcp?: Cors.Options | false; readonly issuerPath?: string } = {}
) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const base = HttpServer.formatAddress(server.address)
    const provider = yield* OAuthProvider.make({
      issuer: `${base}${options.issuerPath ?? ""}`,
      ...(options.provider === undefined ? {} : { cors: options.provider })
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    const auth = AuthProvider.fromOAuthProvider(provider, {
      baseUrl: base,
      ...(options.mcp === undefined ? {} : { cors: options.mcp })
    })
    yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
    return { base, provider, mcpUrl: auth.resourceUrl("/mcp") }
  }).pipe(Effect.orDie)

const preflight = (url: string, origin: string, method: string, headers: string) =>
  request(url, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers }
  })

const exposed = (h: Headers) => (h.get("access-control-expose-headers") ?? "").toLowerCase().split(/\s*,\s*/)
const allowedHeaders = (h: Headers) => (h.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/)

describe("CORS (default: any origin, no credentials)", () => {
  it.scoped("the MCP endpoint's preflight is answered before the bearer check, and its 401 is readable cross-origin", () =>
    Effect.gen(function*() {
      const { mcpUrl } = yield* serve()
      const pre = yield* preflight(mcpUrl, APP, "POST", "authorization,content-type,mcp-protocol-version")
      expect(pre.status).toBe(204)
      expect(pre.headers.get("www-authenticate")).toBeNull()
      expect(pre.headers.get("access-control-allow-origin")).toBe("*")
      expect(pre.headers.get("access-control-allow-credentials")).toBeNull()
      expect(pre.headers.get("access-control-allow-methods")).toContain("POST")
      expect(allowedHeaders(pre.headers)).toEqual(
        expect.arrayContaining(["authorization", "content-type", "mcp-protocol-version", "mcp-session-id", "last-event-id"])
      )

      const unauthorized = yield* request(mcpUrl, {
        method: "POST",
        headers: { origin: APP, "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
      })
      expect(unauthorized.status).toBe(401)
      expect(unauthorized.headers.get("www-authenticate")).toContain("resource_metadata=")
      expect(unauthorized.headers.get("access-control-allow-origin")).toBe("*")
      expect(exposed(unauthorized.headers)).toEqual(
        expect.arrayContaining(["www-authenticate", "mcp-session-id", "mcp-protocol-version"])
      )
    }))

  it.scoped("metadata, registration, token and revocation answer preflights and allow the origin", () =>
    Effect.gen(function*() {
      const { base, provider } = yield* serve()
      const wellKnown = [
        provider.endpoints.metadata,
        `${base}/.well-known/oauth-protected-resource/mcp`,
        `${base}/.well-known/oauth-protected-resource`
      ]
      for (const url of wellKnown) {
        const pre = yield* preflight(url, APP, "GET", "mcp-protocol-version")
        expect([pre.status, pre.headers.get("access-control-allow-origin")], url).toEqual([204, "*"])
        expect(allowedHeaders(pre.headers), url).toContain("mcp-protocol-version")
        const get = yield* request(url, { headers: { origin: APP, "mcp-protocol-version": "2025-11-25" } })
        expect([get.status, get.headers.get("access-control-allow-origin")], url).toEqual([200, "*"])
      }
      for (const url of [provider.endpoints.registration, provider.endpoints.token, provider.endpoints.revocation]) {
        const pre = yield* preflight(url, APP, "POST", "content-type,authorization")
        expect([pre.status, pre.headers.get("access-control-allow-origin")], url).toEqual([204, "*"])
      }
      const registered = yield* request(provider.endpoints.registration, {
        method: "POST",
        headers: { origin: APP, "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [`${APP}/cb`], token_endpoint_auth_method: "none" })
      })
      expect([registered.status, registered.headers.get("access-control-allow-origin")]).toEqual([201, "*"])
      const clientId = String(registered.body["client_id"])
      const pre = yield* preflight(`${provider.endpoints.registration}/${clientId}`, APP, "PUT", "authorization")
      expect([pre.status, pre.headers.get("access-control-allow-origin")]).toEqual([204, "*"])

      const badClient = yield* postForm(provider.endpoints.token, { grant_type: "authorization_code", code: "x", client_id: "nobody" }, { origin: APP })
      expect([badClient.status, badClient.headers.get("access-control-allow-origin")]).toEqual([401, "*"])
      expect(exposed(badClient.headers)).toContain("www-authenticate")
      const revoked = yield* postForm(provider.endpoints.revocation, { token: "x", client_id: clientId }, { origin: APP })
      expect([revoked.status, revoked.headers.get("access-control-allow-origin")]).toEqual([200, "*"])
    }))

  it.scoped("the authorization and consent endpoints are never CORS-readable", () =>
    Effect.gen(function*() {
      const { provider } = yield* serve()
      const authorize = yield* request(`${provider.endpoints.authorization}?client_id=nobody`, { headers: { origin: APP } })
      expect(authorize.headers.get("access-control-allow-origin")).toBeNull()
      const pre = yield* preflight(provider.endpoints.consent, APP, "POST", "content-type")
      expect(pre.headers.get("access-control-allow-origin")).toBeNull()
    }))
})

describe("CORS with an origin list or predicate", () => {
  it.scoped("an allowed origin is echoed with Vary: Origin; another origin gets no Access-Control-Allow-Origin", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* serve({
        provider: { allowedOrigins: [APP] },
        mcp: { allowedOrigins: (origin) => origin === APP, credentials: true }
      })
      for (const url of [mcpUrl, provider.endpoints.token, provider.endpoints.registration]) {
        const ok = yield* preflight(url, APP, "POST", "content-type")
        expect([ok.status, ok.headers.get("access-control-allow-origin")], url).toEqual([204, APP])
        expect(ok.headers.get("vary"), url).toContain("Origin")
        const other = yield* preflight(url, "http://127.0.0.1:5000", "POST", "content-type")
        expect(other.headers.get("access-control-allow-origin"), url).toBeNull()
        expect(other.headers.get("access-control-allow-credentials"), url).toBe(url === mcpUrl ? "true" : null)
      }
      const denied = yield* request(mcpUrl, { method: "POST", headers: { origin: "http://evil.test" } })
      expect([denied.status, denied.headers.get("access-control-allow-origin")]).toEqual([401, null])
      // the metadata stays readable from anywhere
      const metadata = yield* request(provider.endpoints.metadata, { headers: { origin: "http://evil.test" } })
      expect(metadata.headers.get("access-control-allow-origin")).toBe("*")
    }))

  it.scoped("an empty list allows no origin (not `*`); `false` turns CORS off", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* serve({ provider: { allowedOrigins: [] }, mcp: false })
      const token = yield* preflight(provider.endpoints.token, APP, "POST", "content-type")
      expect(token.headers.get("access-control-allow-origin")).toBeNull()
      const mcp = yield* preflight(mcpUrl, APP, "POST", "authorization")
      expect([mcp.status, mcp.headers.get("access-control-allow-origin")]).toEqual([401, null])
    }))

  it.scoped("credentials are never allowed with `*`, even when forced past the type", () =>
    Effect.gen(function*() {
      const forced = { allowedOrigins: "*", credentials: true } as unknown as Cors.Options
      const { mcpUrl } = yield* serve({ mcp: forced })
      const pre = yield* preflight(mcpUrl, APP, "POST", "authorization")
      expect([pre.headers.get("access-control-allow-origin"), pre.headers.get("access-control-allow-credentials")])
        .toEqual(["*", null])
    }))
})

describe("OpenID Connect Discovery", () => {
  it.scoped("the embedded server serves no /.well-known/openid-configuration (it issues no ID tokens, has no jwks_uri)", () =>
    Effect.gen(function*() {
      for (const issuerPath of ["", "/tenant1"]) {
        const { base, provider } = yield* serve({ issuerPath })
        expect((yield* request(provider.endpoints.metadata)).status).toBe(200)
        for (const url of [`${base}/.well-known/openid-configuration${issuerPath}`, `${base}${issuerPath}/.well-known/openid-configuration`]) {
          expect((yield* request(url)).status, url).toBe(404)
        }
      }
    }))
})
