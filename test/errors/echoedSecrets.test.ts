/**
 * Error texts never quote the credentials we sent: a hostile (or careless) server that echoes
 * back the `Authorization` header or the form body it received — in an error body or an
 * `error_description` — must not get our token, refresh token or client secret into our error
 * messages and logs. Every spelling we sent (raw, form-encoded, the Basic blob) becomes
 * `[redacted]`.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { probe, summarizeBody } from "../../src/internal/authorizationProbe.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpTransport } from "../../src/mcp/McpTransport.js"
import * as StreamableHttp from "../../src/mcp/StreamableHttp.js"
import * as Revocation from "../../src/Revocation.js"
import { ClientInformation } from "../../src/Schemas.js"
import { rawOAuthServer, type RecordedRequest } from "../oauthRawServer.js"

const TOKEN = "rt-echo+me/please=5678"
const SECRET = "s3cret echo:1234&x"
const ACCESS = "at-echoed-back-9012"

/** Everything the server received, as it would echo it back. */
const echo = (r: RecordedRequest) => `you sent ${r.headers["authorization"] ?? "no authorization"} with ${r.body}`

/** The spellings of our secrets that must not appear. */
const spellings = (value: string) => [value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)]

const expectScrubbed = (text: string, secrets: ReadonlyArray<string>) => {
  for (const secret of secrets) for (const s of spellings(secret)) expect(text).not.toContain(s)
  expect(text).toContain("[redacted]")
}

const client = (method: "client_secret_basic" | "client_secret_post", issuer: string) =>
  new ClientInformation({
    clientId: "client-1",
    clientSecret: Redacted.make(SECRET),
    tokenEndpointAuthMethod: method,
    source: "preregistered",
    issuer,
    redirectUris: ["http://127.0.0.1:33418/callback"]
  })

describe("error texts never quote the credentials we sent", () => {
  for (const method of ["client_secret_basic", "client_secret_post"] as const) {
    it.scopedLive(`revocation (${method}): an error_description echoing the request is scrubbed`, () =>
      Effect.gen(function*() {
        const server = yield* rawOAuthServer((r) => ({
          status: 400,
          json: { error: "invalid_request", error_description: echo(r) }
        }))
        const error = yield* Revocation.revoke({
          endpoint: `${server.url}/revoke`,
          token: Redacted.make(TOKEN),
          client: client(method, server.url)
        }).pipe(Effect.flip, Effect.provide(NodeHttpClient.layerUndici))
        // the server did echo them
        expect(echo(server.requests[0]!)).toContain(encodeURIComponent(TOKEN).slice(0, 8))
        const basic = server.requests[0]!.headers["authorization"]
        expectScrubbed(error.message, [TOKEN, SECRET, ...(basic === undefined ? [] : [basic.slice(6)])])
      }))
  }

  it.scopedLive("Streamable HTTP: a 4xx JSON body echoing the Authorization header is scrubbed", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((r) => ({ status: 400, json: { message: echo(r) } }))
      const http = (yield* HttpClient.HttpClient).pipe(HttpClient.mapRequest(HttpClientRequest.bearerToken(ACCESS)))
      const error = yield* McpClient.make().pipe(
        Effect.provideServiceEffect(McpTransport, StreamableHttp.make({ url: `${server.url}/mcp` })),
        Effect.provideService(HttpClient.HttpClient, http),
        Effect.flip
      )
      expect(server.requests[0]!.headers["authorization"]).toBe(`Bearer ${ACCESS}`)
      expect(error.message).toContain("answered HTTP 400")
      expectScrubbed(error.message, [ACCESS])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("authorization-endpoint probe: an error page echoing the request's Authorization is scrubbed", () =>
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((r) => ({ status: 400, text: `<p>${echo(r)}</p>`, contentType: "text/html" }))
      const http = (yield* HttpClient.HttpClient).pipe(HttpClient.mapRequest(HttpClientRequest.bearerToken(ACCESS)))
      const result = yield* probe(http, new URL(`${server.url}/authorize?client_id=x`), "5 seconds")
      expectScrubbed(summarizeBody(result.text), [ACCESS])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
