import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { AccessToken } from "../../src/server/AccessToken.js"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import * as TokenVerifier from "../../src/server/TokenVerifier.js"
import { request } from "./http.js"

const AS = "https://auth.example.com"

/** A resource server on loopback: PRM routes plus /mcp behind the middleware, with the given verifier. */
const startResource = (verifier: TokenVerifier.TokenVerifier, options: Partial<BearerAuth.BearerOptions> = {}) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const base = `http://127.0.0.1:${port}`
    const resource = `${base}/mcp`
    const handler = Effect.map(BearerAuth.AuthenticatedToken, (token) =>
      HttpServerResponse.unsafeJson({ sub: token.subject, scopes: token.scopes }))
    const router = BearerAuth.metadataRoutes({
      resource,
      authorizationServers: [AS],
      scopesSupported: ["read", "write"],
      resourceName: "Test MCP"
    }).pipe(
      HttpRouter.post("/mcp", BearerAuth.middleware({ resource, ...options })(handler)),
      HttpRouter.provideService(TokenVerifier.TokenVerifier, verifier)
    )
    yield* server.serve(router)
    return { base, resource, prm: `${base}/.well-known/oauth-protected-resource/mcp` }
  }).pipe(Effect.orDie)

const call = (url: string, token?: string) =>
  request(url, { method: "POST", headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

describe("BearerAuth", () => {
  it.scoped("serves RFC 9728 metadata at the path-based and the root well-known URLs", () =>
    Effect.gen(function*() {
      const rs = yield* startResource(TokenVerifier.makeStatic({}))
      const expected = {
        resource: rs.resource,
        authorization_servers: [AS],
        scopes_supported: ["read", "write"],
        bearer_methods_supported: ["header"],
        resource_name: "Test MCP"
      }
      expect((yield* request(rs.prm)).body).toEqual(expected)
      expect((yield* request(`${rs.base}/.well-known/oauth-protected-resource`)).body).toEqual(expected)
      expect(BearerAuth.resourceMetadataUrl("https://h.example/a/mcp/")).toBe(
        "https://h.example/.well-known/oauth-protected-resource/a/mcp"
      )
    }))

  it.scoped("no token: 401 with resource_metadata (and the scope hint when configured)", () =>
    Effect.gen(function*() {
      const rs = yield* startResource(TokenVerifier.makeStatic({}), { requiredScopes: ["read"] })
      const res = yield* call(`${rs.resource}`)
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toBe(`Bearer scope="read", resource_metadata="${rs.prm}"`)
      const basicOnly = yield* request(rs.resource, { method: "POST", headers: { authorization: "Basic abc" } })
      expect(basicOnly.status).toBe(401)
      expect(basicOnly.headers.get("www-authenticate")).not.toContain("error=")
    }))

  it.scoped("unknown, foreign-audience and unbound tokens: 401 invalid_token; malformed header: 400", () =>
    Effect.gen(function*() {
      const rs = yield* startResource(TokenVerifier.makeStatic({
        foreign: { resource: "https://other.example.com/mcp" },
        unbound: {}
      }))
      for (const token of ["nope", "foreign", "unbound"]) {
        const res = yield* call(rs.resource, token)
        expect(res.status, token).toBe(401)
        expect(res.headers.get("www-authenticate"), token).toMatch(
          new RegExp(`^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="${rs.prm}"$`)
        )
        expect(res.body["error"]).toBe("invalid_token")
      }
      const malformed = yield* request(rs.resource, { method: "POST", headers: { authorization: "Bearer a b" } })
      expect(malformed.status).toBe(400)
      expect(malformed.headers.get("www-authenticate")).toContain(`error="invalid_request"`)
    }))

  it.scoped("a token without the required scope: 403 insufficient_scope naming the scope", () =>
    Effect.gen(function*() {
      const rs = yield* startResourceWith(["write"])
      const res = yield* call(rs.resource, "good")
      expect(res.status).toBe(403)
      expect(res.headers.get("www-authenticate")).toBe(
        `Bearer error="insufficient_scope", error_description="the access token lacks a required scope", ` +
          `scope="write", resource_metadata="${rs.prm}"`
      )
      expect((yield* call(rs.resource, "admin")).body).toEqual({ sub: "root", scopes: ["read", "write"] })
    }))

  it.scoped("unbound tokens pass when requireAudience is false; resource_metadata can be left out", () =>
    Effect.gen(function*() {
      const rs = yield* startResource(TokenVerifier.makeStatic({ unbound: { subject: "u" } }), {
        requireAudience: false,
        resourceMetadataUrl: false
      })
      expect((yield* call(rs.resource, "unbound")).body).toEqual({ sub: "u", scopes: [] })
      expect((yield* call(rs.resource)).headers.get("www-authenticate")).toBe("Bearer")
    }))

  it.scopedLive("an expired token is refused even if the verifier returns it; a failing verifier gives 503", () =>
    Effect.gen(function*() {
      const expiring = TokenVerifier.make((token) =>
        Effect.succeed(Option.some(
          new AccessToken({
            token: Redacted.make(token),
            clientId: "c",
            subject: "s",
            scopes: [],
            expiresAt: Date.now() - 1000
          })
        ))
      )
      const rs = yield* startResource(expiring, { requireAudience: false })
      const res = yield* call(rs.resource, "t")
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toContain("expired")
      const broken = yield* startResource(
        TokenVerifier.make(() =>
          Effect.fail(
            new TokenVerifier.TokenVerifierError({ detail: "jwks unreachable: http://10.1.2.3/keys said secret-body" })
          )
        )
      )
      const down = yield* call(broken.resource, "t")
      expect(down.status).toBe(503)
      // the verifier's error text (internal URLs, upstream bodies) is not echoed to the caller
      expect(down.text).not.toContain("jwks unreachable")
      expect(down.text).not.toContain("10.1.2.3")
      expect(down.body["error"]).toBe("temporarily_unavailable")
    }))

  it("challenge quotes and escapes parameters", () => {
    expect(BearerAuth.challenge({ error: "invalid_token", errorDescription: `say "hi" \\ bye` })).toBe(
      `Bearer error="invalid_token", error_description="say \\"hi\\" \\\\ bye"`
    )
    expect(BearerAuth.challenge({})).toBe("Bearer")
  })
})

/** A resource server whose static tokens are bound to its own /mcp URL. */
const startResourceWith = (requiredScopes: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const resource = `http://127.0.0.1:${port}/mcp`
    const verifier = TokenVerifier.makeStatic({
      good: { subject: "alice", scopes: ["read"], resource },
      admin: { subject: "root", scopes: ["read", "write"], resource }
    })
    const handler = Effect.map(BearerAuth.AuthenticatedToken, (token) =>
      HttpServerResponse.unsafeJson({ sub: token.subject, scopes: token.scopes }))
    yield* server.serve(
      HttpRouter.empty.pipe(
        HttpRouter.post("/mcp", BearerAuth.middleware({ resource, requiredScopes })(handler)),
        HttpRouter.provideService(TokenVerifier.TokenVerifier, verifier)
      )
    )
    const base = `http://127.0.0.1:${port}`
    return { resource: `${base}/mcp`, prm: `${base}/.well-known/oauth-protected-resource/mcp` }
  }).pipe(Effect.orDie)
