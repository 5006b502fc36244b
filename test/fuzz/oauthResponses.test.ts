/**
 * Fuzzing the decoders of what OAuth endpoints answer: protected-resource and authorization-server
 * metadata, token, registration and revocation responses — directly (`decodeJson` with each
 * schema) and over loopback (the services against a server answering the fuzzed body). The result
 * is always a value or a typed error: never a defect, never a hang, never the body quoted back.
 */
import { Headers } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, FastCheck as fc, Option, Redacted, Schema } from "effect"
import * as Discovery from "../../src/Discovery.js"
import { decodeJson, type OAuthResponse } from "../../src/internal/oauthHttp.js"
import * as Registration from "../../src/Registration.js"
import * as Revocation from "../../src/Revocation.js"
import {
  AuthorizationServerMetadata,
  ClientInformation,
  ClientInformationResponse,
  OAuthErrorResponse,
  ProtectedResourceMetadata,
  StoredToken,
  TokenResponse
} from "../../src/Schemas.js"
import * as TokenExchange from "../../src/TokenExchange.js"
import { asMetadata, rawOAuthServer, type Reply } from "../oauthRawServer.js"
import { assertAsyncProperty, assertProperty, bodyText } from "./arbitraries.js"

const ORIGIN = "http://127.0.0.1:1"

const templates = {
  prm: { resource: `${ORIGIN}/mcp`, authorization_servers: [ORIGIN], scopes_supported: ["read"] },
  as: asMetadata(ORIGIN, { revocation_endpoint: `${ORIGIN}/revoke`, scopes_supported: ["read"] }),
  token: { access_token: "at", token_type: "Bearer", expires_in: 3600, refresh_token: "rt", scope: "read" },
  registration: { client_id: "c1", client_secret: "s1", token_endpoint_auth_method: "client_secret_basic" },
  error: { error: "invalid_grant", error_description: "no", error_uri: "https://example.com/e" }
}

const schemas = [
  ["protected-resource metadata", ProtectedResourceMetadata, templates.prm],
  ["authorization-server metadata", AuthorizationServerMetadata, templates.as],
  ["token response", TokenResponse, templates.token],
  ["registration response", ClientInformationResponse, templates.registration],
  ["OAuth error response", OAuthErrorResponse, templates.error]
] as const

const response = (text: string, contentType = "application/json"): OAuthResponse => ({
  url: `${ORIGIN}/x`,
  status: 200,
  headers: Headers.fromInput({ "content-type": contentType }),
  text
})

describe("fuzz: decodeJson over every OAuth response schema", () => {
  for (const [name, schema, template] of schemas) {
    it(`${name}: a value or a short message, never a throw`, () => {
      assertProperty(
        fc.property(bodyText(template), (text) => {
          const started = Date.now()
          const result = decodeJson(schema as Schema.Schema<unknown, unknown>, response(text))
          expect(Date.now() - started).toBeLessThan(2_000)
          if (Either.isLeft(result)) {
            // A description of the body (path, expected type, media type, size), never the body.
            expect(result.left.length).toBeLessThan(1_500)
            expect(result.left).not.toContain("x".repeat(40))
          }
        }),
        { numRuns: 60 }
      )
    })
  }
})

/** A loopback server whose every answer is `current` (set by each run). */
const fuzzServer = Effect.gen(function*() {
  let current: Reply = { status: 404 }
  const server = yield* rawOAuthServer(() => current)
  return { server, set: (reply: Reply) => (current = reply) }
})

const replyArb = (template: Record<string, unknown>): fc.Arbitrary<Reply> =>
  fc.record({
    text: bodyText(template),
    status: fc.constantFrom(200, 200, 200, 201, 201, 400, 401, 404, 500),
    contentType: fc.constantFrom("application/json", "text/html", "application/x-www-form-urlencoded", "")
  }).map(({ contentType, status, text }) => ({ status, text, contentType }))

const expectValueOrTypedError = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) {
    // A value must survive storage (JSON): no Infinity or NaN instants.
    const value = exit.value
    if (value instanceof StoredToken && value.expiresAt !== undefined) expect(Number.isFinite(value.expiresAt)).toBe(true)
    if (value instanceof ClientInformation && value.clientSecretExpiresAt !== undefined) {
      expect(Number.isFinite(value.clientSecretExpiresAt)).toBe(true)
    }
  }
  if (Exit.isFailure(exit)) {
    expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause).slice(0, 300)).toBe(false)
    expect(Cause.isInterruptedOnly(exit.cause)).toBe(false)
    const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
    expect(failure).toBeInstanceOf(Error)
    expect(String((failure as Error).message).length).toBeLessThan(2_000)
  }
}

describe("fuzz: the OAuth services over loopback", () => {
  const client = (issuer: string) =>
    new ClientInformation({
      clientId: "c1",
      tokenEndpointAuthMethod: "none",
      source: "preregistered",
      issuer,
      redirectUris: ["http://127.0.0.1:33418/callback"]
    })

  const cases: ReadonlyArray<
    readonly [string, Record<string, unknown>, (url: string) => Effect.Effect<unknown, unknown, never>]
  > = [
    [
      "discovery (PRM and AS metadata answer the same fuzzed body)",
      templates.prm,
      (url) =>
        Effect.flatMap(Discovery.make({ timeout: "5 seconds" }), (d) => d.discover(`${url}/mcp`)).pipe(
          Effect.provide(NodeHttpClient.layerUndici)
        )
    ],
    [
      "token exchange",
      templates.token,
      (url) => {
        const discovery: Discovery.DiscoveryResult = {
          mcpUrl: `${url}/mcp`,
          protectedResource: Option.none(),
          resource: `${url}/mcp`,
          authorizationServer: Schema.decodeUnknownSync(AuthorizationServerMetadata)(asMetadata(url)),
          issuer: url,
          legacy: false
        }
        return Effect.flatMap(TokenExchange.make({ timeout: "5 seconds" }), (exchange) =>
          exchange.authorizationCode({
            discovery,
            client: client(url),
            code: "c",
            codeVerifier: Redacted.make("v".repeat(43)),
            redirectUri: "http://127.0.0.1:33418/callback"
          })).pipe(Effect.provide(NodeHttpClient.layerUndici))
      }
    ],
    [
      "dynamic registration",
      templates.registration,
      (url) => {
        const discovery: Discovery.DiscoveryResult = {
          mcpUrl: `${url}/mcp`,
          protectedResource: Option.none(),
          resource: `${url}/mcp`,
          authorizationServer: Schema.decodeUnknownSync(AuthorizationServerMetadata)(asMetadata(url)),
          issuer: url,
          legacy: false
        }
        return Effect.flatMap(Registration.make({ timeout: "5 seconds" }), (r) =>
          r.register({ discovery, redirectUri: "http://127.0.0.1:33418/callback" })).pipe(
            Effect.provide(NodeHttpClient.layerUndici)
          )
      }
    ],
    [
      "revocation",
      templates.error,
      (url) =>
        Revocation.revoke({ endpoint: `${url}/revoke`, token: Redacted.make("t"), client: client(url) }).pipe(
          Effect.provide(NodeHttpClient.layerUndici)
        )
    ]
  ]

  for (const [name, template, call] of cases) {
    it.scopedLive(`${name}: a value or a typed error for any answer`, () =>
      Effect.gen(function*() {
        const { server, set } = yield* fuzzServer
        yield* Effect.promise(() =>
          assertAsyncProperty(
            fc.asyncProperty(replyArb(template), async (reply) => {
              set(reply)
              expectValueOrTypedError(await Effect.runPromiseExit(call(server.url)))
            }),
            { numRuns: 20 }
          )
        )
      }), 60_000)
  }
})
