/**
 * A browser-based MCP client, for real: a page served from one loopback origin runs the whole
 * MCP authorization with `fetch` against the embedded authorization server and MCP endpoint on
 * another origin — the 401 and its `WWW-Authenticate`, RFC 9728 and RFC 8414 discovery (with the
 * `MCP-Protocol-Version` header, so with preflights), RFC 7591 registration, the authorization
 * step as a navigation (auto-approved consent, the code read from the redirect back to the page's
 * origin), the token exchange, and MCP calls with the bearer token. A server that lists other
 * origins is refused by the browser. Fails (not skips) in CI when Chromium is missing.
 */
import { HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { createServer } from "node:http"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import type * as Cors from "../../src/server/Cors.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import { available, CHROMIUM, inCi, launch, newPage } from "./chromium.js"

const endpoint = McpEndpoint.make({
  name: "browser-cors",
  tools: [
    McpEndpoint.tool({
      name: "whoami",
      parameters: Schema.Struct({}),
      handler: () => Effect.map(BearerAuth.AuthenticatedToken, (t) => ({ subject: t.subject, client: t.clientId }))
    })
  ]
})

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

/** The AS and the MCP endpoint on one loopback origin. */
const serveMcp = (cors?: Cors.Options) =>
  Effect.gen(function*() {
    const server = yield* listen
    const base = HttpServer.formatAddress(server.address)
    const provider = yield* OAuthProvider.make({
      issuer: base,
      scopesSupported: ["mcp"],
      ...(cors === undefined ? {} : { cors })
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    const auth = AuthProvider.fromOAuthProvider(provider, { ...(cors === undefined ? {} : { cors }) })
    yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
    return { provider, mcpUrl: auth.resourceUrl("/mcp") }
  }).pipe(Effect.orDie)

/** The web app's origin: a blank page at every path (its `/cb` is the redirect URI). */
const serveApp = Effect.gen(function*() {
  const server = yield* listen
  yield* server.serve(Effect.succeed(HttpServerResponse.html("<!doctype html><title>web MCP client</title>")))
  return HttpServer.formatAddress(server.address)
}).pipe(Effect.orDie)

const PROTOCOL = "2025-11-25"

/** Step 1 in the page: 401 → discovery → registration → PKCE; returns the authorization URL. */
const discoverAndRegister = (mcpUrl: string) => `(async () => {
  const mcpUrl = ${JSON.stringify(mcpUrl)}
  const protocol = { "mcp-protocol-version": ${JSON.stringify(PROTOCOL)} }
  const initialize = { jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: ${JSON.stringify(PROTOCOL)}, capabilities: {}, clientInfo: { name: "page", version: "1" } } }
  const first = await fetch(mcpUrl, { method: "POST", headers: { ...protocol, "content-type": "application/json",
    accept: "application/json, text/event-stream" }, body: JSON.stringify(initialize) })
  const challenge = first.headers.get("www-authenticate")
  const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge ?? "")?.[1]
  const prm = await (await fetch(prmUrl, { headers: protocol })).json()
  const issuer = new URL(prm.authorization_servers[0])
  const as = await (await fetch(issuer.origin + "/.well-known/oauth-authorization-server" + issuer.pathname.replace(/\\/$/, ""),
    { headers: protocol })).json()
  const redirectUri = location.origin + "/cb"
  const registration = await fetch(as.registration_endpoint, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "web page", redirect_uris: [redirectUri], token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] }) })
  const client = await registration.json()
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "")
  const verifier = b64(crypto.getRandomValues(new Uint8Array(32)))
  const codeChallenge = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)))
  sessionStorage.setItem("flow", JSON.stringify({ verifier, clientId: client.client_id, redirectUri, tokenEndpoint: as.token_endpoint, mcpUrl }))
  const authorize = new URL(as.authorization_endpoint)
  for (const [k, v] of Object.entries({ response_type: "code", client_id: client.client_id, redirect_uri: redirectUri,
    code_challenge: codeChallenge, code_challenge_method: "S256", scope: "mcp", state: "s1", resource: prm.resource })) {
    authorize.searchParams.set(k, v)
  }
  return { firstStatus: first.status, challenge, prmResource: prm.resource, issuer: as.issuer,
    registrationStatus: registration.status, authorizeUrl: authorize.toString() }
})()`

/** Step 2 in the page, back at the redirect URI: token exchange, then MCP calls with the token. */
const exchangeAndCall = `(async () => {
  const flow = JSON.parse(sessionStorage.getItem("flow"))
  const params = new URLSearchParams(location.search)
  const tokenResponse = await fetch(flow.tokenEndpoint, { method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"), code_verifier: flow.verifier,
      redirect_uri: flow.redirectUri, client_id: flow.clientId, resource: flow.mcpUrl }) })
  const token = await tokenResponse.json()
  const call = async (id, method, params) => {
    const response = await fetch(flow.mcpUrl, { method: "POST", headers: { authorization: "Bearer " + token.access_token,
      "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-protocol-version": ${JSON.stringify(PROTOCOL)} }, body: JSON.stringify({ jsonrpc: "2.0", id, method, params }) })
    return { status: response.status, body: await response.json() }
  }
  const initialized = await call(1, "initialize", { protocolVersion: ${JSON.stringify(PROTOCOL)}, capabilities: {},
    clientInfo: { name: "page", version: "1" } })
  const whoami = await call(2, "tools/call", { name: "whoami", arguments: {} })
  return { state: params.get("state"), tokenStatus: tokenResponse.status, tokenType: token.token_type,
    clientId: flow.clientId, initialized, whoami }
})()`

/** From the page: what each request gives, or the browser's refusal. */
const attempts = (mcpUrl: string, tokenEndpoint: string, metadataUrl: string) => `(async () => {
  const outcome = (p) => p.then((r) => "status " + r.status, (e) => e.name)
  return {
    metadata: await outcome(fetch(${JSON.stringify(metadataUrl)}, { headers: { "mcp-protocol-version": ${JSON.stringify(PROTOCOL)} } })),
    token: await outcome(fetch(${JSON.stringify(tokenEndpoint)}, { method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" })),
    mcp: await outcome(fetch(${JSON.stringify(mcpUrl)}, { method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer abc" }, body: "{}" }))
  }
})()`

describe("a browser-based MCP client on another origin (headless Chromium)", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  it.scopedLive("discovers, registers, signs in, exchanges the code and calls the MCP endpoint with fetch", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* serveMcp()
      const app = yield* serveApp
      const page = yield* Effect.flatMap(launch, newPage)
      yield* Effect.promise(() => page.goto(`${app}/`))
      const step1 = yield* Effect.promise(() =>
        page.evaluate<{
          firstStatus: number
          challenge: string | null
          prmResource: string
          issuer: string
          registrationStatus: number
          authorizeUrl: string
        }>(discoverAndRegister(mcpUrl))
      )
      expect(step1.firstStatus).toBe(401)
      expect(step1.challenge).toContain(`resource_metadata="${BearerAuth.resourceMetadataUrl(mcpUrl)}"`)
      expect(step1.prmResource).toBe(mcpUrl)
      expect(step1.issuer).toBe(provider.issuer)
      expect(step1.registrationStatus).toBe(201)

      // The authorization step is a navigation (auto-approved consent), back to the page's origin.
      yield* Effect.promise(() => page.goto(step1.authorizeUrl))
      expect(page.url()).toMatch(new RegExp(`^${app}/cb\\?`))
      const step2 = yield* Effect.promise(() =>
        page.evaluate<{
          state: string
          tokenStatus: number
          tokenType: string
          clientId: string
          initialized: { status: number; body: { result: { serverInfo: { name: string } } } }
          whoami: { status: number; body: { result: { structuredContent: unknown } } }
        }>(exchangeAndCall)
      )
      expect(step2.state).toBe("s1")
      expect([step2.tokenStatus, step2.tokenType]).toEqual([200, "Bearer"])
      expect(step2.initialized.status).toBe(200)
      expect(step2.initialized.body.result.serverInfo.name).toBe("browser-cors")
      expect(step2.whoami.status).toBe(200)
      expect(step2.whoami.body.result.structuredContent).toEqual({ subject: "test-user", client: step2.clientId })
    }))

  it.scopedLive("a server that allows other origins is refused by the browser (the metadata stays readable)", () =>
    Effect.gen(function*() {
      const elsewhere: Cors.Options = { allowedOrigins: ["http://127.0.0.1:1"] }
      const restricted = yield* serveMcp(elsewhere)
      const open = yield* serveMcp()
      const app = yield* serveApp
      const page = yield* Effect.flatMap(launch, newPage)
      yield* Effect.promise(() => page.goto(`${app}/`))
      const run = (server: typeof open) =>
        Effect.promise(() =>
          page.evaluate<{ metadata: string; token: string; mcp: string }>(
            attempts(server.mcpUrl, server.provider.endpoints.token, server.provider.endpoints.metadata)
          )
        )
      expect(yield* run(restricted)).toEqual({ metadata: "status 200", token: "TypeError", mcp: "TypeError" })
      // the same requests to a server with the default (any origin) reach the page
      expect(yield* run(open)).toEqual({ metadata: "status 200", token: "status 401", mcp: "status 401" })
    }))
})
