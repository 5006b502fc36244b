/**
 * Several authorization servers in the PRM (RFC 9728 §2): the selectors, discovery trying them in
 * the selected order (a dead one skipped), and the orchestrator's default order (the `issuer`
 * option first, then the issuer a client is registered with).
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as AuthorizationServerSelection from "../src/AuthorizationServerSelection.js"
import * as Authorizer from "../src/Authorizer.js"
import * as Discovery from "../src/Discovery.js"
import * as FlowContext from "../src/FlowContext.js"
import * as Pkce from "../src/Pkce.js"
import * as Registration from "../src/Registration.js"
import { ClientInformation } from "../src/Schemas.js"
import * as TokenExchange from "../src/TokenExchange.js"
import * as TokenStorage from "../src/TokenStorage.js"
import { asMetadata, deadPort, notFound, rawOAuthServer } from "./oauthRawServer.js"

const PRM = "/.well-known/oauth-protected-resource"
const OAUTH_AS = "/.well-known/oauth-authorization-server"

/** A PRM listing a dead authorization server (connection refused), then `/a`, then `/b`. */
const threeServers = Effect.gen(function*() {
  const port = yield* deadPort
  const dead = `http://127.0.0.1:${port}`
  const server = yield* rawOAuthServer((req, s) => {
    if (req.path === `${PRM}/mcp`) {
      return { json: { resource: `${s.url}/mcp`, authorization_servers: [dead, `${s.url}/a`, `${s.url}/b`] } }
    }
    if (req.path === `${OAUTH_AS}/a`) return { json: asMetadata(`${s.url}/a`) }
    if (req.path === `${OAUTH_AS}/b`) return { json: asMetadata(`${s.url}/b`) }
    return notFound
  })
  return { server, dead, a: `${server.url}/a`, b: `${server.url}/b` }
})

const services = Layer.mergeAll(
  TokenStorage.layerMemory,
  Authorizer.layerTest("unused"),
  Pkce.layer,
  Discovery.layer({ timeout: "5 seconds" }),
  Registration.layer(),
  TokenExchange.layer()
).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))

describe("AuthorizationServerSelection: selectors", () => {
  it("only listed issuers are ever tried, each once, trailing slashes aside", () => {
    const context = { listed: ["https://a", "https://b/", "https://c"], registeredIssuer: "https://c", configuredIssuer: undefined }
    expect(AuthorizationServerSelection.order(AuthorizationServerSelection.asListed, context)).toEqual(context.listed)
    expect(AuthorizationServerSelection.order(AuthorizationServerSelection.preferIssuers("https://b", "https://x"), context))
      .toEqual(["https://b/", "https://a", "https://c"])
    expect(AuthorizationServerSelection.order(AuthorizationServerSelection.onlyIssuers("https://x", "https://c"), context))
      .toEqual(["https://c"])
    expect(AuthorizationServerSelection.order(() => ["https://evil", "https://a", "https://a"], context)).toEqual(["https://a"])
    expect(AuthorizationServerSelection.order(AuthorizationServerSelection.preferConfiguredThenRegistered, context))
      .toEqual(["https://c", "https://a", "https://b/"])
    expect(
      AuthorizationServerSelection.order(AuthorizationServerSelection.preferConfiguredThenRegistered, {
        ...context,
        configuredIssuer: "https://b"
      })
    ).toEqual(["https://b/", "https://c", "https://a"])
  })
})

describe("Discovery: the order of the listed authorization servers", () => {
  it.scopedLive("a PRM listing a dead AS first: it is skipped, the next listed one is used", () =>
    Effect.gen(function*() {
      const { a, server } = yield* threeServers
      const found = yield* Effect.flatMap(Discovery.Discovery, (d) => d.discover(`${server.url}/mcp`)).pipe(
        Effect.provide(services)
      )
      expect(found.issuer).toBe(a)
    }))

  it.scopedLive("orderAuthorizationServers decides; an unlisted issuer it names is never fetched", () =>
    Effect.gen(function*() {
      const { b, server } = yield* threeServers
      const found = yield* Effect.flatMap(Discovery.Discovery, (d) =>
        d.discover(`${server.url}/mcp`, {
          orderAuthorizationServers: (listed) => ["http://127.0.0.1:1/evil", ...[...listed].reverse()]
        })).pipe(Effect.provide(services))
      expect(found.issuer).toBe(b)
      expect(server.paths()).toEqual([`${PRM}/mcp`, `${OAUTH_AS}/b`])
    }))

  it.scopedLive("a selection that keeps none of the listed servers → DiscoveryError NotFound, nothing fetched", () =>
    Effect.gen(function*() {
      const { server } = yield* threeServers
      const error = yield* Effect.flatMap(Discovery.Discovery, (d) =>
        Effect.flip(d.discover(`${server.url}/mcp`, { orderAuthorizationServers: () => [] }))).pipe(
          Effect.provide(services)
        )
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "NotFound" })
      expect(server.paths()).toEqual([`${PRM}/mcp`])
    }))
})

describe("OAuth flows: which listed authorization server", () => {
  it.scopedLive("the issuer option names the second listed server: it is used (not an IssuerMismatch on the first)", () =>
    Effect.gen(function*() {
      const { b, server } = yield* threeServers
      const ctx = yield* FlowContext.make({ mcpUrl: `${server.url}/mcp`, issuer: b })
      const found = yield* FlowContext.discover(ctx, Option.none(), false)
      expect(found.issuer).toBe(b)
    }).pipe(Effect.provide(services)))

  it.scopedLive("a client already registered with the second listed server: it is preferred (no new registration)", () =>
    Effect.gen(function*() {
      const { b, server } = yield* threeServers
      const mcpUrl = `${server.url}/mcp`
      const storage = yield* TokenStorage.TokenStorage
      yield* storage.setClient(
        TokenStorage.serverKey(mcpUrl),
        new ClientInformation({
          clientId: "registered-at-b",
          tokenEndpointAuthMethod: "none",
          source: "dynamic",
          issuer: b,
          redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
        })
      )
      const ctx = yield* FlowContext.make({ mcpUrl })
      expect((yield* FlowContext.discover(ctx, Option.none(), false)).issuer).toBe(b)
    }).pipe(Effect.provide(services)))

  it.scopedLive("selectAuthorizationServer: the app's choice wins over the listed order", () =>
    Effect.gen(function*() {
      const { b, server } = yield* threeServers
      const ctx = yield* FlowContext.make({
        mcpUrl: `${server.url}/mcp`,
        selectAuthorizationServer: AuthorizationServerSelection.preferIssuers(b)
      })
      expect((yield* FlowContext.discover(ctx, Option.none(), false)).issuer).toBe(b)
    }).pipe(Effect.provide(services)))
})
