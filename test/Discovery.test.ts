import { HttpClient, HttpClientError } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Discovery from "../src/Discovery.js"
import { startTestServer } from "./fixtures/TestAuthServer.js"
import { asMetadata, deadPort, notFound, rawOAuthServer } from "./oauthRawServer.js"

const PRM = "/.well-known/oauth-protected-resource"
const OAUTH_AS = "/.well-known/oauth-authorization-server"
const OIDC = "/.well-known/openid-configuration"

/** Runs `body` with the Discovery service built on undici (the dispatcher lives as long as `body`). */
const withDiscovery = <A, E, R>(
  body: (discovery: Discovery.Discovery) => Effect.Effect<A, E, R>,
  config: Discovery.DiscoveryConfig = {}
) =>
  Discovery.make(config).pipe(
    Effect.flatMap(body),
    Effect.provide(NodeHttpClient.layerUndici)
  )

describe("Discovery.defaultValidateResource", () => {
  const server = "https://api.example.com:8443/v1/mcp"
  it.each([
    ["exact", "https://api.example.com:8443/v1/mcp", true],
    ["exact, trailing slash on the resource", "https://api.example.com:8443/v1/mcp/", true],
    ["parent path", "https://api.example.com:8443/v1", true],
    ["parent path with trailing slash", "https://api.example.com:8443/v1/", true],
    ["origin only, no slash", "https://api.example.com:8443", true],
    ["origin only, with slash", "https://api.example.com:8443/", true],
    ["host in upper case", "https://API.EXAMPLE.COM:8443/v1/mcp", true],
    ["another origin", "https://evil.example.com:8443/v1/mcp", false],
    ["another port", "https://api.example.com:9443/v1/mcp", false],
    ["default port instead of 8443", "https://api.example.com/v1/mcp", false],
    ["another scheme", "http://api.example.com:8443/v1/mcp", false],
    ["a fragment", "https://api.example.com:8443/v1/mcp#frag", false],
    ["a sibling path", "https://api.example.com:8443/v1/other", false],
    ["a prefix that is not a path segment", "https://api.example.com:8443/v1/mc", false],
    ["a child path", "https://api.example.com:8443/v1/mcp/sub", false],
    ["not a URL", "not a url", false]
  ])("%s", (_name, resource, expected) => {
    expect(Discovery.defaultValidateResource(server, resource)).toBe(expected)
  })

  it("accepts a server URL with a trailing slash against the same resource without one", () => {
    expect(Discovery.defaultValidateResource("https://a.example/mcp/", "https://a.example/mcp")).toBe(true)
    expect(Discovery.defaultValidateResource("not a url", "https://a.example/mcp")).toBe(false)
  })
})

describe("Discovery URL builders", () => {
  it("protectedResourceMetadataUrls: path-aware then root; root only for a root URL", () => {
    expect(Discovery.protectedResourceMetadataUrls("https://h.example/a/mcp/")).toEqual([
      `https://h.example${PRM}/a/mcp`,
      `https://h.example${PRM}`
    ])
    expect(Discovery.protectedResourceMetadataUrls("https://h.example/")).toEqual([`https://h.example${PRM}`])
  })

  it("authorizationServerMetadataUrls: path insertion, OIDC insertion, OIDC append; never the bare root", () => {
    expect(Discovery.authorizationServerMetadataUrls("https://as.example/tenant1/")).toEqual([
      `https://as.example${OAUTH_AS}/tenant1`,
      `https://as.example${OIDC}/tenant1`,
      `https://as.example/tenant1${OIDC}`
    ])
    expect(Discovery.authorizationServerMetadataUrls("https://as.example")).toEqual([
      `https://as.example${OAUTH_AS}`,
      `https://as.example${OIDC}`
    ])
  })
})

describe("Discovery: protected resource metadata order", () => {
  it.scopedLive("challenge URL first; when it 404s, path-aware then root", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === PRM) return { json: { resource: `${s.url}/mcp`, authorization_servers: [s.url] } }
        if (req.path === OAUTH_AS) return { json: asMetadata(s.url) }
        return notFound
      })
      const result = yield* withDiscovery((d) =>
        d.discover(`${server.url}/mcp`, { resourceMetadataUrl: `${server.url}/custom/prm` })
      )
      expect(server.paths()).toEqual(["/custom/prm", `${PRM}/mcp`, PRM, OAUTH_AS])
      expect(result.legacy).toBe(false)
      expect(result.resource).toBe(`${server.url}/mcp`)
      expect(result.issuer).toBe(server.url)
    }))

  it.scopedLive("a PRM only at the custom challenge URL is used; no well-known URL is fetched", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === "/meta/for-mcp") return { json: { resource: `${s.url}/mcp`, authorization_servers: [s.url] } }
        if (req.path === OAUTH_AS) return { json: asMetadata(s.url) }
        return notFound
      })
      const result = yield* withDiscovery((d) =>
        d.discover(`${server.url}/mcp`, { resourceMetadataUrl: `${server.url}/meta/for-mcp` })
      )
      expect(server.paths()).toEqual(["/meta/for-mcp", OAUTH_AS])
      expect(Option.map(result.protectedResource, (p) => p.resource)).toEqual(Option.some(`${server.url}/mcp`))
    }))

  it.scopedLive("fixture prmLocation=header: the challenge URL is the only PRM request", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "header" })
      yield* withDiscovery((d) => d.discover(server.mcpUrl, { resourceMetadataUrl: server.prmUrl }))
      expect((yield* server.requestsTo("prm")).map((r) => r.path)).toEqual([`${PRM}/mcp`])
    }))

  it.scopedLive("fixture prmLocation=path: the root is never fetched when the path-aware URL exists", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl))
      expect((yield* server.requestsTo("prm")).map((r) => r.path)).toEqual([`${PRM}/mcp`])
      expect(result.resource).toBe(server.mcpUrl)
      expect(result.issuer).toBe(server.issuer)
      expect(result.authorizationServer.token_endpoint).toBe(`${server.issuer}/token`)
    }))

  it.scopedLive("fixture prmLocation=root: path-aware (404) then root", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "root" })
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl))
      expect((yield* server.requestsTo("prm")).map((r) => r.path)).toEqual([`${PRM}/mcp`, PRM])
      expect(result.legacy).toBe(false)
    }))

  it.scopedLive("a 5xx on the path-aware PRM is an error, not a silent fallback to the root", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `${PRM}/mcp`) return { status: 503, text: "down" }
        if (req.path === PRM) return { json: { resource: `${s.url}/mcp`, authorization_servers: [s.url] } }
        return notFound
      })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error._tag).toBe("OAuthRequestError")
      if (error._tag !== "OAuthRequestError") return
      expect(error.reason).toBe("Status")
      expect(error.status).toBe(503)
      expect(server.paths()).toEqual([`${PRM}/mcp`])
    }))

  it.scopedLive("protectedResource: None when nothing is published", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer(() => notFound)
      const prm = yield* withDiscovery((d) => d.protectedResource(`${server.url}/a/b`))
      expect(Option.isNone(prm)).toBe(true)
      expect(server.paths()).toEqual([`${PRM}/a/b`, PRM])
    }))

  it.scopedLive("a PRM that is not JSON is Malformed", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer(() => ({ text: "<html>hi</html>", contentType: "text/html" }))
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Malformed", url: `${server.url}${PRM}/mcp` })
    }))

  it.scopedLive("a PRM without authorization_servers is Malformed", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path.startsWith(PRM) ? { json: { resource: `${s.url}/mcp` } } : notFound
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Malformed" })
    }))
})

describe("Discovery: authorization server metadata order", () => {
  it.scopedLive("issuer with a path: path insertion → OIDC insertion → OIDC append; the bare root never", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `/tenant1${OIDC}`) {
          return { json: asMetadata(`${s.url}/tenant1`) }
        }
        // The root documents exist but describe another issuer: fetching them would be wrong.
        if (req.path === OAUTH_AS || req.path === OIDC) return { json: asMetadata(s.url) }
        return notFound
      })
      const as = yield* withDiscovery((d) => d.authorizationServer(`${server.url}/tenant1`))
      expect(server.paths()).toEqual([`${OAUTH_AS}/tenant1`, `${OIDC}/tenant1`, `/tenant1${OIDC}`])
      expect(as.issuer).toBe(`${server.url}/tenant1`)
    }))

  it.scopedLive("issuer with a path: the first URL that exists wins (OIDC path insertion)", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === `${OIDC}/tenant1` || req.path === `/tenant1${OIDC}`
          ? { json: asMetadata(`${s.url}/tenant1`, { token_endpoint: `${s.url}/from/${req.path}` }) }
          : notFound
      )
      const as = yield* withDiscovery((d) => d.authorizationServer(`${server.url}/tenant1`))
      expect(server.paths()).toEqual([`${OAUTH_AS}/tenant1`, `${OIDC}/tenant1`])
      expect(as.token_endpoint).toBe(`${server.url}/from/${OIDC}/tenant1`)
    }))

  it.scopedLive("issuer with a path and no metadata anywhere: NotFound after exactly three URLs", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === OAUTH_AS || req.path === OIDC ? { json: asMetadata(s.url) } : notFound
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.authorizationServer(`${server.url}/tenant1`)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "NotFound" })
      expect(server.paths()).toEqual([`${OAUTH_AS}/tenant1`, `${OIDC}/tenant1`, `/tenant1${OIDC}`])
    }))

  it.scopedLive("root issuer: RFC 8414 then OIDC", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => req.path === OIDC ? { json: asMetadata(s.url) } : notFound)
      const as = yield* withDiscovery((d) => d.authorizationServer(server.url))
      expect(server.paths()).toEqual([OAUTH_AS, OIDC])
      expect(as.issuer).toBe(server.url)
    }))

  it.scopedLive("a 5xx on the first metadata URL is an error; the OIDC URLs are not tried", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === `${OAUTH_AS}/tenant1` ? { status: 500, text: "boom" } : { json: asMetadata(`${s.url}/tenant1`) }
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.authorizationServer(`${server.url}/tenant1`)))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Status", status: 500 })
      expect(server.paths()).toEqual([`${OAUTH_AS}/tenant1`])
    }))

  it.scopedLive("fixture issuerPath=/tenant1: discovery reaches the tenant issuer through path insertion", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ issuerPath: "/tenant1", prmLocation: "path" })
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl))
      expect(result.issuer).toBe(`${server.baseUrl}/tenant1`)
      expect((yield* server.requestsTo("asMetadata")).map((r) => r.path)).toEqual([`${OAUTH_AS}/tenant1`])
    }))
})

describe("Discovery: validation of the authorization server", () => {
  it.scopedLive("issuer mismatch → DiscoveryError IssuerMismatch", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ wrongIssuer: true })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "IssuerMismatch" })
    }))

  it.scopedLive("code_challenge_methods_supported omitted → PkceNotSupported", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ noS256: "omit" })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "PkceNotSupported" })
    }))

  it.scopedLive("only plain PKCE → PkceNotSupported", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ noS256: "plain" })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "PkceNotSupported" })
    }))

  it.scopedLive("metadata that is not JSON → Malformed", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ metadataMalformed: "notJson" })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Malformed", url: server.asMetadataUrl })
    }))

  it.scopedLive("metadata without issuer → Malformed", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ metadataMalformed: "missingIssuer" })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Malformed" })
    }))

  it.scopedLive("a redirect on the metadata URL → OAuthRequestError Redirect, not followed", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ metadataRedirect: true })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Redirect", status: 302 })
      expect((yield* server.requests).some((r) => r.path.startsWith("/moved/"))).toBe(false)
    }))
})

describe("Discovery: resource validation", () => {
  it.scopedLive("a PRM naming another resource → ResourceMismatch; no AS metadata is fetched", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      yield* server.setFaults({ prmResource: `${server.baseUrl}/other` })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error).toMatchObject({ _tag: "ResourceMismatch", expected: server.mcpUrl, actual: `${server.baseUrl}/other` })
      expect(yield* server.count("asMetadata")).toBe(0)
    }))

  it.scopedLive("a PRM naming another port → ResourceMismatch", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      const port = yield* deadPort
      yield* server.setFaults({ prmResource: `http://127.0.0.1:${port}/mcp` })
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(server.mcpUrl)))
      expect(error._tag).toBe("ResourceMismatch")
    }))

  it.scopedLive("the PRM resource is returned verbatim (origin without a trailing slash)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      yield* server.setFaults({ prmResource: server.baseUrl })
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl))
      expect(result.resource).toBe(server.baseUrl)
      expect(result.resource?.endsWith("/")).toBe(false)
    }))

  it.scopedLive("a custom validateResource decides", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      yield* server.setFaults({ prmResource: "https://elsewhere.example/mcp" })
      const seen: Array<readonly [string, string]> = []
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl), {
        validateResource: (s, r) => {
          seen.push([s, r])
          return true
        }
      })
      expect(seen).toEqual([[server.mcpUrl, "https://elsewhere.example/mcp"]])
      expect(result.resource).toBe("https://elsewhere.example/mcp")
    }))
})

describe("Discovery: caching", () => {
  it.scopedLive("the second discover makes no request; refresh and invalidate fetch again", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path" })
      yield* withDiscovery((d) =>
        Effect.gen(function*() {
          const first = yield* d.discover(server.mcpUrl)
          const afterFirst = (yield* server.requests).length
          expect(afterFirst).toBe(2)
          const second = yield* d.discover(server.mcpUrl)
          // The same URL with a trailing slash is the same server.
          yield* d.discover(`${server.mcpUrl}/`)
          expect(second).toBe(first)
          expect((yield* server.requests).length).toBe(afterFirst)

          yield* d.discover(server.mcpUrl, { refresh: true })
          expect((yield* server.requests).length).toBe(afterFirst * 2)

          yield* d.invalidate(server.mcpUrl)
          yield* d.discover(server.mcpUrl)
          expect((yield* server.requests).length).toBe(afterFirst * 3)
          yield* d.discover(server.mcpUrl)
          expect((yield* server.requests).length).toBe(afterFirst * 3)
        })
      )
    }))

  it.scopedLive("a failed discovery is not cached", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "path", wrongIssuer: true })
      yield* withDiscovery((d) =>
        Effect.gen(function*() {
          yield* Effect.flip(d.discover(server.mcpUrl))
          yield* server.setFaults({ wrongIssuer: false })
          const result = yield* d.discover(server.mcpUrl)
          expect(result.issuer).toBe(server.issuer)
        })
      )
    }))
})

describe("Discovery: several authorization servers", () => {
  it.scopedLive("first issuer has no metadata → the second is used", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `${PRM}/mcp`) {
          return { json: { resource: `${s.url}/mcp`, authorization_servers: [`${s.url}/dead`, `${s.url}/good`] } }
        }
        if (req.path === `${OAUTH_AS}/good`) return { json: asMetadata(`${s.url}/good`) }
        return notFound
      })
      const result = yield* withDiscovery((d) => d.discover(`${server.url}/mcp`))
      expect(result.issuer).toBe(`${server.url}/good`)
      expect(server.paths()).toEqual([
        `${PRM}/mcp`,
        `${OAUTH_AS}/dead`,
        `${OIDC}/dead`,
        `/dead${OIDC}`,
        `${OAUTH_AS}/good`
      ])
    }))

  it.scopedLive("first issuer refuses connections → the second is used", () =>
    Effect.gen(function*() {
      const port = yield* deadPort
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `${PRM}/mcp`) {
          return { json: { resource: `${s.url}/mcp`, authorization_servers: [`http://127.0.0.1:${port}`, s.url] } }
        }
        if (req.path === OAUTH_AS) return { json: asMetadata(s.url) }
        return notFound
      })
      const result = yield* withDiscovery((d) => d.discover(`${server.url}/mcp`), { timeout: "5 seconds" })
      expect(result.issuer).toBe(server.url)
    }))

  it.scopedLive("first issuer without S256 → the second is used; all unusable → the last error", () =>
    Effect.gen(function*() {
      let second = true
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `${PRM}/mcp`) {
          return { json: { resource: `${s.url}/mcp`, authorization_servers: [`${s.url}/a`, `${s.url}/b`] } }
        }
        if (req.path === `${OAUTH_AS}/a`) {
          return { json: asMetadata(`${s.url}/a`, { code_challenge_methods_supported: ["plain"] }) }
        }
        if (req.path === `${OAUTH_AS}/b`) {
          return { json: asMetadata(second ? `${s.url}/b` : `${s.url}/not-b`) }
        }
        return notFound
      })
      yield* withDiscovery((d) =>
        Effect.gen(function*() {
          const result = yield* d.discover(`${server.url}/mcp`)
          expect(result.issuer).toBe(`${server.url}/b`)
          second = false
          const error = yield* Effect.flip(d.discover(`${server.url}/mcp`, { refresh: true }))
          expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "IssuerMismatch" })
        })
      )
    }))

  it.scopedLive("an http:// non-loopback issuer in the PRM → InsecureUrl (when it is the only one)", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === `${PRM}/mcp`
          ? { json: { resource: `${s.url}/mcp`, authorization_servers: ["http://as.example.com"] } }
          : notFound
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      expect(server.paths()).toEqual([`${PRM}/mcp`])
    }))
})

describe("Discovery: 2025-03-26 servers without PRM", () => {
  it.scopedLive("fixture prmLocation=none: metadata on the origin, legacy, no resource", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ prmLocation: "none" })
      const result = yield* withDiscovery((d) => d.discover(server.mcpUrl))
      expect(result.legacy).toBe(true)
      expect(result.resource).toBeUndefined()
      expect(Option.isNone(result.protectedResource)).toBe(true)
      expect(result.issuer).toBe(server.issuer)
      expect((yield* server.requests).map((r) => r.path)).toEqual([`${PRM}/mcp`, PRM, OAUTH_AS])
    }))

  it.scopedLive("nothing published: default /authorize /token /register on the origin", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer(() => notFound)
      const result = yield* withDiscovery((d) => d.discover(`${server.url}/deep/mcp`))
      expect(result.legacy).toBe(true)
      expect(result.issuer).toBe(server.url)
      expect(result.authorizationServer.authorization_endpoint).toBe(`${server.url}/authorize`)
      expect(result.authorizationServer.token_endpoint).toBe(`${server.url}/token`)
      expect(result.authorizationServer.registration_endpoint).toBe(`${server.url}/register`)
      expect(server.paths()).toEqual([`${PRM}/deep/mcp`, PRM, OAUTH_AS])
    }))

  it.scopedLive("origin metadata whose issuer has a path is accepted", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === OAUTH_AS ? { json: asMetadata(`${s.url}/tenant`) } : notFound
      )
      const result = yield* withDiscovery((d) => d.discover(`${server.url}/mcp`))
      expect(result.legacy).toBe(true)
      expect(result.issuer).toBe(`${server.url}/tenant`)
      expect(result.authorizationServer.token_endpoint).toBe(`${server.url}/tenant/token`)
    }))

  it.scopedLive("origin metadata naming an issuer on another origin → IssuerMismatch", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req) =>
        req.path === OAUTH_AS ? { json: asMetadata("https://as.example.com") } : notFound
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "IssuerMismatch" })
    }))

  it.scopedLive("origin metadata without S256 → PkceNotSupported", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) =>
        req.path === OAUTH_AS ? { json: asMetadata(s.url, { code_challenge_methods_supported: undefined }) } : notFound
      )
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)))
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "PkceNotSupported" })
    }))
})

describe("Discovery: transport security", () => {
  /** An HttpClient that records every request it is asked to send and never sends it. */
  const recordingClient = (sent: Array<string>) =>
    HttpClient.make((request) =>
      Effect.sync(() => sent.push(request.url)).pipe(
        Effect.zipRight(
          Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "offline" }))
        )
      )
    )

  it.effect("an http://example.com MCP URL → InsecureUrl without any request", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const discovery = yield* Discovery.make().pipe(
        Effect.provideService(HttpClient.HttpClient, recordingClient(sent))
      )
      const error = yield* Effect.flip(discovery.discover("http://example.com/mcp"))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      const issuerError = yield* Effect.flip(discovery.authorizationServer("http://example.com/tenant"))
      expect(issuerError).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      expect(sent).toEqual([])
    }))

  it.effect("an http:// challenge URL on another host → InsecureUrl without any request", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const discovery = yield* Discovery.make().pipe(
        Effect.provideService(HttpClient.HttpClient, recordingClient(sent))
      )
      const error = yield* Effect.flip(
        discovery.discover("https://api.example.com/mcp", { resourceMetadataUrl: "http://evil.example.com/prm" })
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "InsecureUrl" })
      expect(sent).toEqual([])
    }))
})

/** URLs that do not parse are typed errors (or skipped, in a list of issuers), never defects. */
describe("Discovery: URLs that do not parse", () => {
  const typedFailure = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.map(Effect.exit(effect), (exit) => exit._tag === "Failure" && exit.cause._tag === "Fail")

  it.scopedLive("discover('not a url') fails with a typed error", () =>
    Effect.gen(function*() {
      expect(yield* withDiscovery((d) => typedFailure(d.discover("not a url")))).toBe(true)
    }))

  it.scopedLive("authorizationServer('not a url') fails with a typed error", () =>
    Effect.gen(function*() {
      expect(yield* withDiscovery((d) => typedFailure(d.authorizationServer("not a url")))).toBe(true)
    }))

  it.scopedLive("a PRM listing a non-URL authorization server first: the second one is used", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((req, s) => {
        if (req.path === `${PRM}/mcp`) {
          return { json: { resource: `${s.url}/mcp`, authorization_servers: ["not a url", s.url] } }
        }
        if (req.path === OAUTH_AS) return { json: asMetadata(s.url) }
        return notFound
      })
      const result = yield* withDiscovery((d) => d.discover(`${server.url}/mcp`))
      expect(result.issuer).toBe(server.url)
    }))
})

describe("Discovery: one overall deadline (issue 10 item 7)", () => {
  /** A PRM listing `n` authorization servers (issuers with a path) whose metadata never answers. */
  const hangingServers = (n: number) =>
    rawOAuthServer((req, s) => {
      if (req.path === `${PRM}/mcp`) {
        return {
          json: {
            resource: `${s.url}/mcp`,
            authorization_servers: Array.from({ length: n }, (_, i) => `${s.url}/as${i}`)
          }
        }
      }
      return req.path.includes("/as") ? "hang" : notFound
    })

  it.scopedLive("8 hanging authorization servers cost the deadline, not 8 × the call timeout", () =>
    Effect.gen(function*() {
      const server = yield* hangingServers(8)
      const started = Date.now()
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)), {
        timeout: "300 millis",
        deadline: "700 millis"
      })
      const elapsed = Date.now() - started
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Timeout", url: `${server.url}/mcp` })
      expect(error.message).toContain("700ms")
      expect(elapsed).toBeLessThan(1_500)
    }))

  it.scopedLive("the default deadline is twice the call timeout", () =>
    Effect.gen(function*() {
      const server = yield* hangingServers(4)
      const started = Date.now()
      const error = yield* withDiscovery((d) => Effect.flip(d.discover(`${server.url}/mcp`)), {
        timeout: "200 millis"
      })
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Timeout" })
      expect(error.message).toContain("400ms")
      expect(Date.now() - started).toBeLessThan(1_500)
    }))

  it.scopedLive("authorizationServer alone has the deadline too (here shorter than the call timeout)", () =>
    Effect.gen(function*() {
      const server = yield* hangingServers(1)
      const error = yield* withDiscovery((d) => Effect.flip(d.authorizationServer(`${server.url}/as0`)), {
        timeout: "5 seconds",
        deadline: "300 millis"
      })
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Timeout", url: `${server.url}/as0` })
    }))
})
