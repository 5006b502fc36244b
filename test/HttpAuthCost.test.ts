/**
 * What `OAuthLayer` adds to a request that already has a valid token (issue 13, "OAuth overhead,
 * valid token"): counted in effect steps against the same request made by the bare client with
 * the same token, both against the test authorization server's MCP endpoint on loopback.
 */
import { HttpBody, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, FiberRef, Layer, Redacted } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import { OAuthLayer } from "../src/HttpAuth.js"
import * as TestStorage from "../src/TestStorage.js"
import { counted } from "./fixtures/effectCost.js"
import { recordingTracer } from "./fixtures/recordingTracer.js"
import { seedSignedIn, startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"

const ping = (client: HttpClient.HttpClient, url: string) =>
  client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) }).pipe(
    Effect.flatMap((response) => Effect.as(response.arrayBuffer, response.status))
  )

describe("OAuthLayer's cost on a request with a valid token", () => {
  it.scopedLive("at most 6 effect steps more than the bare client sending the same token, and no fiber", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { accessToken, client, token } = yield* seedSignedIn(server)
      const bare = yield* HttpClient.HttpClient
      const bareWithToken = HttpClient.mapRequest(bare, HttpClientRequest.bearerToken(Redacted.value(accessToken)))
      const authed = Context.get(
        yield* Layer.build(
          OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
            Layer.provide(TestStorage.layer({ tokens: token, client })),
            Layer.provide(Authorizer.layerHeadless())
          )
        ),
        HttpClient.HttpClient
      )
      expect(yield* ping(bareWithToken, server.mcpUrl)).toBe(200)
      expect(yield* ping(authed, server.mcpUrl)).toBe(200)
      // OAuthLayer runs its requests with tracing off under Effect's own tracer (which records
      // nothing): like for like, the bare client does the same
      const bareUntraced = HttpClient.withTracerDisabledWhen(bareWithToken, () => true)
      expect(yield* ping(bareUntraced, server.mcpUrl)).toBe(200)
      const [withoutLayer] = yield* counted(ping(bareUntraced, server.mcpUrl))
      const [withLayer] = yield* counted(ping(authed, server.mcpUrl))
      const [tracedBare] = yield* counted(ping(bareWithToken, server.mcpUrl))
      // was 38 (a chain of five client wrappers, a Ref read, two FiberRef reads), then 18 (the token
      // read through effects, an error handler per request), then 5: one wrapper, the token and the
      // clock read in place, no error handler unless an OAuth error can arise; now 6 with the
      // fiber-ref switch that turns tracing off
      expect(withLayer.steps - withoutLayer.steps).toBeLessThanOrEqual(6)
      // the bare client with tracing on makes the platform's http.client span: more steps than ours
      expect(withLayer.steps).toBeLessThan(tracedBare.steps)
      expect(withLayer.started).toBe(0)
      expect(yield* server.count("token")).toBe(0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  const lastTraceparent = (server: TestServer) =>
    Effect.map(server.requests, (requests) => requests[requests.length - 1]?.headers["traceparent"])

  it.scopedLive("with Effect's own tracer a request runs with tracing off and sends no traceparent; with a tracer installed it keeps its span and traceparent", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { client, token } = yield* seedSignedIn(server)
      // the HTTP client below the layer notes whether tracing is on while it sends
      const tracing: Array<boolean> = []
      const below = HttpClient.mapRequestEffect(yield* HttpClient.HttpClient, (request) =>
        Effect.map(FiberRef.get(FiberRef.currentTracerEnabled), (enabled) => {
          tracing.push(enabled)
          return request
        }))
      const authed = Context.get(
        yield* Layer.build(
          OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
            Layer.provide(TestStorage.layer({ tokens: token, client })),
            Layer.provide(Authorizer.layerHeadless()),
            Layer.provide(Layer.succeed(HttpClient.HttpClient, below))
          )
        ),
        HttpClient.HttpClient
      )
      expect(yield* ping(authed, server.mcpUrl)).toBe(200)
      expect(tracing).toEqual([false])
      expect(yield* lastTraceparent(server)).toBeUndefined()
      // the caller's tracing is as it was after the request
      expect(yield* FiberRef.get(FiberRef.currentTracerEnabled)).toBe(true)

      const recording = recordingTracer(yield* Effect.tracer)
      yield* Effect.withTracer(ping(authed, server.mcpUrl), recording.tracer)
      expect(tracing).toEqual([false, true])
      expect(recording.spans.map((span) => span.name)).toContain("http.client POST")
      expect(yield* lastTraceparent(server)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
