/**
 * An INDEPENDENT authorization server for interop tests: panva's oidc-provider (OpenID-certified),
 * configured the way a production deployment in front of an MCP server is — open dynamic client
 * registration (RFC 7591) with RFC 7592 client configuration, PKCE S256 required, RFC 8707
 * resource indicators issuing RFC 9068 JWT access tokens whose `aud` is the MCP URL, rotating
 * refresh tokens with reuse detection, RFC 9207 `iss`, PAR enabled, login and consent as HTML
 * forms (oidc-provider's own devInteractions pages: any login and password), and a client's
 * registered `scope` enforced as an allow-list. Native (`application_type: "native"`) clients may
 * use their loopback redirect URI on any port (RFC 8252 §7.3; oidc-provider does this itself).
 *
 * Next to it, an MCP server on the official SDK (Streamable HTTP, stateful) that verifies those
 * JWTs against the provider's JWKS, binds each session to the token's `sub` + `client_id` (a
 * request of another client on that session gets 404), answers 401 with
 * `resource_metadata` + `scope`, serves its RFC 9728 metadata naming the provider, and answers 403
 * `insufficient_scope` to a call of the tool `write` without `mcp:write`.
 *
 * Plus the user, two ways: Chromium clicking the forms (`approveInChromium`), or a scripted user
 * agent that GETs and POSTs the same forms over HTTP with a cookie jar (`httpUser`), both handed
 * to `Authorizer.layerBrowser` as its `BrowserOpener`.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { calculateJwkThumbprint, createRemoteJWKSet, EmbeddedJWK, exportJWK, generateKeyPair, jwtVerify } from "jose"
import type { JWTPayload } from "jose"
import { createHash, randomBytes, randomUUID } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import Provider, { errors } from "oidc-provider"
import type { ClientMetadata, KoaContextWithOIDC } from "oidc-provider"
import type { Page } from "playwright-core"
import { BrowserOpenError } from "../../src/Authorizer.js"
import type { BrowserOpener } from "../../src/Authorizer.js"

// -----------------------------------------------------------------------------
// Counters
// -----------------------------------------------------------------------------

/** What the authorization server saw, for the scenario's assertions and its closing log line. */
export interface AsCounts {
  /** POSTs to the registration endpoint (RFC 7591). */
  registrations: number
  /** RFC 7592 client configuration requests, by method (GET read, PUT update, DELETE). */
  clientConfiguration: { GET: number; PUT: number; DELETE: number }
  /** Requests to the authorization endpoint `/auth` itself (not the `/auth/:uid` resumes). */
  authorizationRequests: number
  /** The `client_id` of each of those requests, in order. */
  authorizationClientIds: Array<string>
  /** Authorization responses with a code (oidc-provider's `authorization.success`). */
  codesIssued: number
  /** Authorization error responses (`authorization.error`: access_denied, invalid_scope, ...). */
  authorizationErrors: Array<string>
  /** Login / consent interactions started. */
  interactions: number
  /** Token requests by `grant_type`, with their outcome. */
  tokenRequests: Record<string, { ok: number; error: number }>
  /** Token endpoint errors, e.g. `refresh_token:invalid_grant`. */
  tokenErrors: Array<string>
  /** Requests to the discovery documents, by path, including the ones answered 404. */
  discovery: Record<string, number>
  /** POSTs to the RFC 7662 introspection endpoint. */
  introspections: number
  /** The HTTP status of each POST to the RFC 7009 revocation endpoint, in order. */
  revocations: Array<number>
}

const emptyCounts = (): AsCounts => ({
  registrations: 0,
  clientConfiguration: { GET: 0, PUT: 0, DELETE: 0 },
  authorizationRequests: 0,
  authorizationClientIds: [],
  codesIssued: 0,
  authorizationErrors: [],
  interactions: 0,
  tokenRequests: {},
  tokenErrors: [],
  discovery: {},
  introspections: 0,
  revocations: []
})

/** A one-line summary of the counts, for the test log. */
export const summarize = (scenario: string, counts: AsCounts, mcp?: McpCounts): string => {
  const tokens = Object.entries(counts.tokenRequests)
    .map(([grant, c]) => `${grant}=${c.ok + c.error}${c.error > 0 ? ` (${c.error} failed)` : ""}`)
    .join(", ")
  const rfc7592 = Object.entries(counts.clientConfiguration)
    .filter(([, n]) => n > 0)
    .map(([method, n]) => `${method}=${n}`)
    .join(", ")
  return `[oidc-provider] ${scenario}: registrations=${counts.registrations}, ` +
    `authorization requests=${counts.authorizationRequests}, codes=${counts.codesIssued}, ` +
    `token requests: ${tokens === "" ? "none" : tokens}` +
    (rfc7592 === "" ? "" : `, RFC 7592: ${rfc7592}`) +
    (counts.authorizationErrors.length > 0 ? `, authorization errors: ${counts.authorizationErrors.join(" ")}` : "") +
    (mcp === undefined ? "" : `, MCP: sessions=${mcp.sessions}, 401=${mcp.status401}, 403=${mcp.status403}, 404=${mcp.status404}`)
}

// -----------------------------------------------------------------------------
// The authorization server
// -----------------------------------------------------------------------------

/** Which discovery documents the server publishes. */
export type DiscoveryMode = "both" | "oidc" | "rfc8414"

export interface OidcProviderOptions {
  /** The MCP server's URL: the only resource (RFC 8707) and the `aud` of the access tokens. */
  readonly resource: string
  /** Access token lifetime, seconds (default 3600). */
  readonly accessTokenTtl?: number
  readonly discovery?: DiscoveryMode
  /** Enable the device authorization grant (RFC 8628, oidc-provider's `features.deviceFlow`). Default off. */
  readonly deviceFlow?: boolean
  /** Format of the access tokens for the resource (default `jwt`, RFC 9068); `opaque` for introspection. */
  readonly accessTokenFormat?: "jwt" | "opaque"
  /** RFC 7662 introspection at `/token/introspection` (default off). */
  readonly introspection?: boolean
  /** The client credentials grant (default off). */
  readonly clientCredentials?: boolean
  /** Open dynamic registration (default on); off, clients exist only as `clients`. */
  readonly registration?: boolean
  /** Statically configured clients (oidc-provider `clients`). */
  readonly clients?: ReadonlyArray<ClientMetadata>
  /**
   * DPoP (RFC 9449, oidc-provider's `features.dPoP`) with server nonces required (§8): tokens
   * are bound to the client's key, and so are a public client's refresh tokens (§5). Default off.
   */
  readonly dpop?: boolean
}

export interface OidcProviderServer {
  readonly issuer: string
  readonly provider: Provider
  readonly counts: AsCounts
  /** Which discovery documents are published, switchable at runtime. */
  setDiscovery(mode: DiscoveryMode): void
  /** Forgets a client at the AS, as an administrator deleting it would (its RFC 7592 reads then fail). */
  deleteClient(clientId: string): Promise<void>
  /** Whether the AS still knows `clientId`. */
  hasClient(clientId: string): Promise<boolean>
  close(): Promise<void>
}

export const SCOPES = ["mcp:read", "mcp:write"] as const

const listen = (server: http.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

const closeServer = (server: http.Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

const OIDC_PATH = "/.well-known/openid-configuration"
const RFC8414_PATH = "/.well-known/oauth-authorization-server"

/** Starts oidc-provider on 127.0.0.1, port 0. */
export const startOidcProvider = async (options: OidcProviderOptions): Promise<OidcProviderServer> => {
  const counts = emptyCounts()
  let mode: DiscoveryMode = options.discovery ?? "both"
  const server = http.createServer()
  const port = await listen(server)
  const issuer = `http://127.0.0.1:${port}`

  const { privateKey } = await generateKeyPair("RS256", { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: "interop-rs256", alg: "RS256", use: "sig" }

  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    ...(options.clients === undefined ? {} : { clients: [...options.clients] }),
    cookies: { keys: ["interop-cookie-key"] },
    // The MCP scopes are static scopes, so a client's registered `scope` is an allow-list for them
    // (checkScope: "requested scope is not allowed" → invalid_scope).
    scopes: ["openid", "offline_access", ...SCOPES],
    claims: { openid: ["sub"] },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    pkce: { required: () => true },
    // MCP clients do not ask for offline_access; like most MCP deployments, issue refresh tokens
    // to every client allowed the refresh_token grant. Rotated on every use; a consumed refresh
    // token presented again revokes the grant (oidc-provider's reuse detection).
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: options.deviceFlow === true },
      // Off unless asked for: MCP authorization uses Bearer tokens. On, the MCP server below
      // checks the proofs of DPoP-bound tokens (RFC 9449 §7.1).
      dPoP: options.dpop === true
        ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: false },
      registration: {
        enabled: options.registration ?? true,
        initialAccessToken: false,
        issueRegistrationAccessToken: true
      },
      registrationManagement: { enabled: options.registration ?? true, rotateRegistrationAccessToken: true },
      introspection: { enabled: options.introspection ?? false },
      clientCredentials: { enabled: options.clientCredentials ?? false },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== options.resource) throw new errors.InvalidTarget()
          return {
            scope: SCOPES.join(" "),
            audience: options.resource,
            accessTokenTTL: options.accessTokenTtl ?? 3600,
            ...(options.accessTokenFormat === "opaque"
              ? { accessTokenFormat: "opaque" as const }
              : { accessTokenFormat: "jwt" as const, jwt: { sign: { alg: "RS256" as const } } })
          }
        }
      }
    }
  })

  provider.on("interaction.started", () => {
    counts.interactions++
  })
  provider.on("authorization.success", () => {
    counts.codesIssued++
  })
  provider.on("authorization.error", (_ctx, error: Error & { error?: string }) => {
    counts.authorizationErrors.push(error.error ?? error.message)
  })
  const grantOf = (ctx: KoaContextWithOIDC): string => {
    const grant = ctx.oidc.params?.["grant_type"]
    return typeof grant === "string" ? grant : "unknown"
  }
  const tally = (grant: string) => (counts.tokenRequests[grant] ??= { ok: 0, error: 0 })
  provider.on("grant.success", (ctx) => {
    tally(grantOf(ctx)).ok++
  })
  provider.on("grant.error", (ctx, error: Error & { error?: string }) => {
    const grant = grantOf(ctx)
    tally(grant).error++
    counts.tokenErrors.push(`${grant}:${error.error ?? error.message}`)
  })

  const app = provider.callback()
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", issuer)
    const path = url.pathname
    if (path === OIDC_PATH || path === RFC8414_PATH) {
      counts.discovery[path] = (counts.discovery[path] ?? 0) + 1
      const published = mode === "both" || (mode === "oidc" ? path === OIDC_PATH : path === RFC8414_PATH)
      if (!published) {
        res.writeHead(404, { "content-type": "application/json" }).end("{\"error\":\"not_found\"}")
        return
      }
      // oidc-provider serves one document; the RFC 8414 well-known URL shows the same metadata.
      req.url = OIDC_PATH + url.search
    }
    if (path === "/reg" && req.method === "POST") counts.registrations++
    if (path === "/token/introspection" && req.method === "POST") counts.introspections++
    if (path === "/token/revocation" && req.method === "POST") res.on("finish", () => counts.revocations.push(res.statusCode))
    if (path.startsWith("/reg/")) {
      const method = req.method
      if (method === "GET" || method === "PUT" || method === "DELETE") counts.clientConfiguration[method]++
    }
    if (path === "/auth") {
      counts.authorizationRequests++
      counts.authorizationClientIds.push(url.searchParams.get("client_id") ?? "")
    }
    void app(req, res)
  })

  return {
    issuer,
    provider,
    counts,
    setDiscovery: (next) => {
      mode = next
    },
    deleteClient: async (clientId) => {
      // oidc-provider's default in-memory adapter of the Client model (not in its typings).
      const adapter: { destroy(id: string): Promise<void> } = Reflect.get(provider.Client, "adapter")
      await adapter.destroy(clientId)
    },
    hasClient: async (clientId) => (await provider.Client.find(clientId)) !== undefined,
    close: () => closeServer(server)
  }
}

// -----------------------------------------------------------------------------
// The MCP server (official SDK)
// -----------------------------------------------------------------------------

export interface McpCounts {
  /** Requests whose DPoP-bound token came with a valid proof (RFC 9449 §7.1). */
  dpopBound: number
  sessions: number
  status401: number
  status403: number
  status404: number
  /** `sub client_id` of every session created. */
  readonly principals: Array<string>
}

export interface InteropMcpServer {
  readonly url: string
  readonly prmUrl: string
  readonly counts: McpCounts
  /** Drops every session, as a restarted server would: their next request gets 404. */
  forgetSessions(): Promise<void>
  /**
   * The next request to the MCP endpoint is answered `307` to `location` (a misconfigured or
   * compromised server, or a proxy in front of it).
   */
  redirectNext(location: string): void
  close(): Promise<void>
}

interface Principal {
  readonly sub: string
  readonly clientId: string
  readonly scopes: ReadonlyArray<string>
  readonly token: string
}

const buildMcpServer = (): McpServer => {
  const server = new McpServer({ name: "oidc-interop", version: "1.0.0" })
  server.registerTool("whoami", { description: "Who the token says you are" }, async (extra) => {
    const info = extra.authInfo
    return {
      content: [{
        type: "text",
        text: JSON.stringify({ sub: info?.extra?.["sub"], clientId: info?.clientId, scopes: info?.scopes })
      }]
    }
  })
  server.registerTool("write", { description: "Needs mcp:write" }, async () => ({
    content: [{ type: "text", text: "written" }]
  }))
  return server
}

const readJson = async (req: http.IncomingMessage): Promise<unknown> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString("utf8")
  return text === "" ? undefined : JSON.parse(text)
}

const messagesOf = (body: unknown): ReadonlyArray<unknown> => Array.isArray(body) ? body : [body]

const callsTool = (body: unknown, name: string): boolean =>
  messagesOf(body).some((m) =>
    typeof m === "object" && m !== null && "method" in m && m.method === "tools/call" &&
    "params" in m && typeof m.params === "object" && m.params !== null && "name" in m.params && m.params.name === name
  )

/** The MCP server for `issuer`'s tokens, on 127.0.0.1 port 0, at `/mcp`. */
export const startMcpServer = async (
  port: number,
  server: http.Server,
  issuer: string
): Promise<InteropMcpServer> => {
  const url = `http://127.0.0.1:${port}/mcp`
  const prmUrl = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`
  const counts: McpCounts = { dpopBound: 0, sessions: 0, status401: 0, status403: 0, status404: 0, principals: [] }
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`))
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; sub: string; clientId: string }>()
  let redirect: string | undefined

  /**
   * RFC 9449 §4.3 and §7.1: a DPoP-bound token (`cnf.jkt`) only with `Authorization: DPoP` and a
   * proof signed by that key, for this request (`htm`, `htu`), recent, and carrying the token's
   * hash (`ath`); a Bearer token never has `cnf`.
   */
  const proofHolds = async (req: http.IncomingMessage, token: string, jkt: string | undefined, scheme: string) => {
    if (jkt === undefined) return scheme.toLowerCase() === "bearer"
    const proof = req.headers["dpop"]
    if (scheme.toLowerCase() !== "dpop" || typeof proof !== "string") return false
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: "dpop+jwt", maxTokenAge: "60s" })
    return payload["htm"] === req.method && payload["htu"] === url &&
      payload["ath"] === createHash("sha256").update(token).digest("base64url") &&
      protectedHeader.jwk !== undefined && (await calculateJwkThumbprint(protectedHeader.jwk, "sha256")) === jkt
  }

  const verify = async (req: http.IncomingMessage): Promise<Principal | "missing" | "invalid"> => {
    const header = req.headers["authorization"]
    const match = header === undefined ? null : /^(Bearer|DPoP) +(.+)$/i.exec(header)
    if (match === null) return "missing"
    try {
      const token = match[2]!
      const { payload } = await jwtVerify<JWTPayload & { client_id?: string; scope?: string; cnf?: { jkt?: string } }>(
        token,
        jwks,
        { issuer, audience: url, typ: "at+jwt" }
      )
      if (payload.sub === undefined || payload.client_id === undefined) return "invalid"
      if (!(await proofHolds(req, token, payload.cnf?.jkt, match[1]!))) return "invalid"
      if (payload.cnf?.jkt !== undefined) counts.dpopBound++
      return {
        sub: payload.sub,
        clientId: payload.client_id,
        scopes: (payload.scope ?? "").split(" ").filter((s) => s !== ""),
        token
      }
    } catch {
      return "invalid"
    }
  }

  const challenge = (extra: string) =>
    `Bearer ${extra}resource_metadata="${prmUrl}", scope="mcp:read"`

  server.on("request", async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      const path = new URL(req.url ?? "/", url).pathname
      if (path === "/.well-known/oauth-protected-resource/mcp" || path === "/.well-known/oauth-protected-resource") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          resource: url,
          authorization_servers: [issuer],
          scopes_supported: [...SCOPES],
          bearer_methods_supported: ["header"]
        }))
        return
      }
      if (path !== "/mcp") {
        res.writeHead(404).end()
        return
      }
      if (redirect !== undefined) {
        res.writeHead(307, { location: redirect }).end()
        redirect = undefined
        return
      }
      const principal = await verify(req)
      if (principal === "missing" || principal === "invalid") {
        counts.status401++
        res.writeHead(401, {
          "www-authenticate": challenge(principal === "invalid" ? "error=\"invalid_token\", " : ""),
          "content-type": "application/json"
        }).end("{\"error\":\"unauthorized\"}")
        return
      }
      const body = req.method === "POST" ? await readJson(req) : undefined
      if (callsTool(body, "write") && !principal.scopes.includes("mcp:write")) {
        counts.status403++
        res.writeHead(403, {
          "www-authenticate":
            `Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata="${prmUrl}"`,
          "content-type": "application/json"
        }).end("{\"error\":\"insufficient_scope\"}")
        return
      }
      const auth = {
        token: principal.token,
        clientId: principal.clientId,
        scopes: [...principal.scopes],
        extra: { sub: principal.sub }
      }
      const sessionId = req.headers["mcp-session-id"]
      if (typeof sessionId === "string") {
        const session = sessions.get(sessionId)
        // A session belongs to the user AND the client that opened it.
        if (session === undefined || session.sub !== principal.sub || session.clientId !== principal.clientId) {
          counts.status404++
          res.writeHead(404, { "content-type": "application/json" }).end(
            JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null })
          )
          return
        }
        await session.transport.handleRequest(Object.assign(req, { auth }), res, body)
        return
      }
      if (req.method === "POST" && isInitializeRequest(body)) {
        const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            counts.sessions++
            counts.principals.push(`${principal.sub} ${principal.clientId}`)
            sessions.set(id, { transport, sub: principal.sub, clientId: principal.clientId })
          },
          onsessionclosed: (id) => {
            sessions.delete(id)
          }
        })
        await buildMcpServer().connect(transport)
        await transport.handleRequest(Object.assign(req, { auth }), res, body)
        return
      }
      res.writeHead(400, { "content-type": "application/json" }).end(
        JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Bad request: no session" }, id: null })
      )
    } catch (error) {
      if (!res.headersSent) res.writeHead(500).end(String(error))
    }
  })

  return {
    url,
    prmUrl,
    counts,
    redirectNext: (location) => {
      redirect = location
    },
    forgetSessions: async () => {
      const dropped = [...sessions.values()]
      sessions.clear()
      for (const session of dropped) await session.transport.close()
    },
    close: async () => {
      for (const session of sessions.values()) await session.transport.close()
      await closeServer(server)
    }
  }
}

/** The pair: oidc-provider and the MCP server that trusts it. */
export interface Interop {
  readonly as: OidcProviderServer
  readonly mcp: InteropMcpServer
}

/** Both servers, closed with the scope. */
export const startInterop = (
  options: {
    readonly accessTokenTtl?: number
    readonly discovery?: DiscoveryMode
    readonly deviceFlow?: boolean
    readonly dpop?: boolean
  } = {}
) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<Interop> => {
      // The MCP URL is the provider's only resource, so the MCP server's port comes first.
      const mcpHttp = http.createServer()
      const mcpPort = await listen(mcpHttp)
      const resource = `http://127.0.0.1:${mcpPort}/mcp`
      const as = await startOidcProvider({ resource, ...options })
      const mcp = await startMcpServer(mcpPort, mcpHttp, as.issuer)
      return { as, mcp }
    }),
    ({ as, mcp }) => Effect.promise(() => Promise.all([as.close(), mcp.close()]))
  )

// -----------------------------------------------------------------------------
// The user: Chromium, or a scripted user agent over HTTP
// -----------------------------------------------------------------------------

/** What the user does on the consent page. */
export type Decision = "approve" | "deny"

/**
 * Chromium as the user: on oidc-provider's login page type any login and password and click
 * Sign-in; on its consent page click Continue (approve) or the Cancel link (deny); stop once the
 * browser has left the authorization server (the library's callback page).
 */
export const clickThrough = async (page: Page, url: string, issuer: string, decision: Decision = "approve") => {
  /** Clicks `selector` and waits until the browser has moved on (each prompt has its own URL). */
  const clickAndWait = async (selector: string) => {
    const before = page.url()
    await Promise.all([page.waitForURL((u) => u.href !== before), page.click(selector)])
    await page.waitForLoadState("load")
  }
  await page.goto(url)
  for (let step = 0; step < 6; step++) {
    if (!page.url().startsWith(issuer)) return
    const prompt = await page.locator("form input[name=prompt]").first().getAttribute("value", { timeout: 5000 })
      .catch(() => null)
    if (prompt === "login") {
      await page.fill("input[name=login]", "alice")
      await page.fill("input[name=password]", "correct horse")
      await clickAndWait("button[type=submit]")
    } else if (prompt === "consent") {
      await clickAndWait(decision === "deny" ? "a[href$='/abort']" : "button[type=submit]")
    } else {
      throw new Error(`stuck on ${page.url()}: ${(await page.textContent("body"))?.slice(0, 300)}`)
    }
  }
  throw new Error(`still at the authorization server after 6 steps: ${page.url()}`)
}

/**
 * Chromium as the user of a device sign-in (RFC 8628): opens the verification URI (with the user
 * code in it), clicks Continue on the confirmation page, logs in, and consents (Continue) or
 * denies (the Cancel link); done on the page the authorization server ends on.
 */
export const clickThroughDevice = async (page: Page, url: string, decision: Decision = "approve") => {
  const clickAndWait = async (selector: string) => {
    const before = page.url()
    await Promise.all([page.waitForURL((u) => u.href !== before), page.click(selector)])
    await page.waitForLoadState("load")
  }
  await page.goto(url)
  for (let step = 0; step < 6; step++) {
    if ((await page.title()) === "Sign-in Success") return
    if (await page.locator("form[id='op.deviceConfirmForm']").count() > 0) {
      await clickAndWait("button[autofocus]")
      continue
    }
    const prompt = await page.locator("form input[name=prompt]").first().getAttribute("value", { timeout: 5000 })
      .catch(() => null)
    if (prompt === "login") {
      await page.fill("input[name=login]", "alice")
      await page.fill("input[name=password]", "correct horse")
      await clickAndWait("button[type=submit]")
    } else if (prompt === "consent") {
      if (decision === "deny") {
        await clickAndWait("a[href$='/abort']")
        return
      }
      await clickAndWait("button[type=submit]")
    } else {
      throw new Error(`stuck on ${page.url()}: ${(await page.textContent("body"))?.slice(0, 300)}`)
    }
  }
  throw new Error(`the device sign-in did not finish after 6 steps: ${page.url()}`)
}

/** A `BrowserOpener` that hands each URL to Chromium, which clicks through as the user. */
export const chromiumUser = (
  page: Page,
  issuer: string,
  options: { readonly decision?: Decision; readonly delayMillis?: number; readonly opened?: Array<string> } = {}
): BrowserOpener => ({
  open: (url) =>
    Effect.tryPromise({
      try: async () => {
        options.opened?.push(url)
        if (options.delayMillis !== undefined) await new Promise((r) => setTimeout(r, options.delayMillis))
        await clickThrough(page, url, issuer, options.decision)
      },
      catch: (error) => new BrowserOpenError({ detail: String(error) })
    })
})

/** Cookies of one host, with RFC 6265 path matching: enough for oidc-provider's interaction cookies. */
class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>()
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";")
      const eq = pair!.indexOf("=")
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const path = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith("path="))?.slice(5) ?? "/"
      const expired = attributes.some((a) => /^\s*max-age=0\b/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a))
      if (expired || value === "") this.cookies.delete(`${name};${path}`)
      else this.cookies.set(`${name};${path}`, { value, path })
    }
  }
  header(url: URL): string {
    return [...this.cookies.entries()]
      .filter(([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith("/") ? c.path : c.path + "/"))
      .map(([key, c]) => `${key.slice(0, key.indexOf(";"))}=${c.value}`)
      .join("; ")
  }
}

const attribute = (tag: string, name: string): string | undefined =>
  new RegExp(`\\b${name}="([^"]*)"`, "i").exec(tag)?.[1]?.replace(/&amp;/g, "&")

/**
 * The user as a scripted user agent: follows redirects, keeps cookies, fills and posts
 * oidc-provider's login and consent forms (or follows the Cancel link to deny) exactly as a
 * browser would, and finally loads the redirect URI it is sent to — the library's loopback
 * callback server. Each `open` is a fresh browser profile unless `jar` is shared (`session`).
 */
export const httpUser = (
  issuer: string,
  options: {
    readonly decision?: Decision
    readonly delayMillis?: number
    readonly opened?: Array<string>
    /** Keep the AS session between sign-ins (a browser that stays open). Default true. */
    readonly keepSession?: boolean
    /**
     * The user of a device sign-in (RFC 8628): opens the verification URI, confirms the user
     * code, logs in and consents (or denies); done at the page the AS ends on (no redirect away).
     */
    readonly device?: boolean
    /** Other origins the user agent browses (an OAuth proxy in front of the AS), cookies kept. */
    readonly alsoOrigins?: ReadonlyArray<string>
    /** The answer on a page with `decision` buttons (the OAuth proxy's consent page); default approve. */
    readonly proxyDecision?: Decision
  } = {}
): BrowserOpener & { readonly run: (start: string) => Promise<void> } => {
  let jar = new CookieJar()
  const run = async (start: string) => {
    let denied = false
    if (options.keepSession === false) jar = new CookieJar()
    let request: { url: URL; method: "GET" | "POST"; body?: URLSearchParams } = { url: new URL(start), method: "GET" }
    for (let hop = 0; hop < 20; hop++) {
      const sameAs = request.url.origin === issuer || (options.alsoOrigins ?? []).includes(request.url.origin)
      const headers: Record<string, string> = { accept: "text/html" }
      const cookie = sameAs ? jar.header(request.url) : ""
      if (cookie !== "") headers["cookie"] = cookie
      if (request.body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded"
      const response = await fetch(request.url, {
        method: request.method,
        headers,
        redirect: "manual",
        ...(request.body === undefined ? {} : { body: request.body.toString() })
      })
      if (sameAs) jar.store(response)
      if (!sameAs) {
        // The redirect URI: the library's callback server answered; the user is done.
        await response.arrayBuffer()
        return
      }
      const location = response.headers.get("location")
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.arrayBuffer()
        request = { url: new URL(location, request.url), method: "GET" }
        continue
      }
      const html = await response.text()
      const form = /<form\b[^>]*>[\s\S]*?<\/form>/i.exec(html)?.[0]
      // The device flow ends on the AS: its success page (no form), or the page after a denial.
      if (options.device === true && response.status === 200 && (form === undefined || denied)) return
      if (response.status !== 200 || form === undefined) {
        throw new Error(`the authorization server answered ${response.status} at ${request.url.pathname}: ${html.slice(0, 300)}`)
      }
      const action = new URL(attribute(form.slice(0, form.indexOf(">")), "action") ?? request.url.href, request.url)
      const fields = new URLSearchParams()
      for (const input of form.match(/<input\b[^>]*>/gi) ?? []) {
        const name = attribute(input, "name")
        if (name === undefined) continue
        fields.set(name, attribute(input, "value") ?? (name === "login" ? "alice" : name === "password" ? "correct horse" : ""))
      }
      if (/<button\b[^>]*name="decision"/i.test(form)) fields.set("decision", options.proxyDecision ?? "approve")
      if (fields.get("prompt") === "consent" && options.decision === "deny") {
        const abort = /<a\b[^>]*href="([^"]*\/abort)"/i.exec(html)?.[1]
        if (abort === undefined) throw new Error("no Cancel link on the consent page")
        denied = true
        request = { url: new URL(abort.replace(/&amp;/g, "&"), request.url), method: "GET" }
        continue
      }
      request = { url: action, method: "POST", body: fields }
    }
    throw new Error("too many redirects")
  }
  return {
    run,
    open: (url) =>
      Effect.tryPromise({
        try: async () => {
          options.opened?.push(url)
          if (options.delayMillis !== undefined) await new Promise((r) => setTimeout(r, options.delayMillis))
          await run(url)
        },
        catch: (error) => new BrowserOpenError({ detail: String(error) })
      })
  }
}
