/**
 * The per-call cost of `McpClient` (issue 13, "MCP client per-call cost"): a signed-in
 * `tools/call` over Streamable HTTP forks a handful of fibers, not a stream pipeline per
 * request. The request timeout's clock (which stops while a token is obtained, see
 * OAuthSession.test.ts) used to build a SubscriptionRef, a change stream and a switching
 * `flatMap` for every request (10 fibers a call): most of the client's CPU per call.
 */
import { HttpServer, HttpServerRequest } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, RuntimeFlagsPatch, Tracer } from "effect"
import * as RuntimeFlags from "effect/RuntimeFlags"
import { createServer } from "node:http"
import * as McpClient from "../../src/mcp/McpClient.js"
import { addEndpoint, CountFibers } from "../fixtures/effectCost.js"

describe("McpClient per-call cost", () => {
  it.live("a tools/call forks at most 2 fibers: its send and its timeout clock (no scope, race or stream pipeline per request)", () =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(addEndpoint)
      const client = yield* McpClient.connect(new URL("/", HttpServer.formatAddress(server.address)))
      yield* client.callTool("add", { a: 1, b: 2 })
      const calls = 20
      const counter = new CountFibers()
      yield* Effect.supervised(
        Effect.repeatN(client.callTool("add", { a: 1, b: 2 }), calls - 1),
        counter
      )
      const perCall = counter.started / calls
      expect(perCall).toBeLessThanOrEqual(2)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a tools/call runs a bounded number of effect steps in the client (the CPU it costs)", () =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(addEndpoint)
      const client = yield* McpClient.connect(new URL("/", HttpServer.formatAddress(server.address)), {
        standaloneStream: false
      })
      yield* client.callTool("add", { a: 1, b: 2 })
      const calls = 20
      const counter = new CountFibers()
      yield* Effect.supervised(
        Effect.repeatN(client.callTool("add", { a: 1, b: 2 }), calls - 1),
        counter
      ).pipe(Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)))
      const perCall = counter.steps / calls
      // 466 steps a call with a scope, a race, a schema-run encode/decode, spans and a
      // semaphore per request; about 250 without them, about 207 with no FiberRef scoped per
      // request (set in the send's own fiber) and one exchange on a stateful session
      expect(perCall).toBeLessThanOrEqual(230)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a tools/call parses no URL of its own: the transport builds its POST once per session", () =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(addEndpoint)
      const client = yield* McpClient.connect(new URL("/", HttpServer.formatAddress(server.address)), {
        standaloneStream: false
      })
      yield* client.callTool("add", { a: 1, b: 2 })
      const calls = 20
      const Original = globalThis.URL
      let parsed = 0
      class CountingUrl extends Original {
        constructor(url: string | URL, base?: string | URL) {
          super(url, base)
          parsed++
        }
      }
      yield* Effect.acquireUseRelease(
        Effect.sync(() => {
          globalThis.URL = CountingUrl
        }),
        () => Effect.repeatN(client.callTool("add", { a: 1, b: 2 }), calls - 1),
        () =>
          Effect.sync(() => {
            globalThis.URL = Original
          })
      )
      // one by the HTTP client (it parses every request's URL), one by the server's request logger
      // (in this process); the transport used to add one per message (HttpClientRequest.post of a URL)
      expect(parsed / calls).toBeLessThanOrEqual(2)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  /** A server that remembers the `traceparent` header of each tools/call. */
  const recordingTraceparent = Effect.gen(function*() {
    const traceparents: Array<string | undefined> = []
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    yield* server.serve(
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        traceparents.push(request.headers["traceparent"])
        return addEndpoint
      })
    )
    return { url: new URL("/", HttpServer.formatAddress(server.address)), traceparents }
  })

  it.live("with Effect's own tracer (which records nothing) a call makes no spans: no traceparent is sent", () =>
    Effect.gen(function*() {
      const { url, traceparents } = yield* recordingTraceparent
      const client = yield* McpClient.connect(url, { standaloneStream: false })
      traceparents.length = 0
      yield* client.callTool("add", { a: 1, b: 2 })
      expect(traceparents).toEqual([undefined])
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  it.live("with a tracer installed a call keeps its spans: McpClient.request, the HTTP client's, and traceparent", () =>
    Effect.gen(function*() {
      const { url, traceparents } = yield* recordingTraceparent
      const names: Array<string> = []
      const native = yield* Effect.tracer
      const recording = Tracer.make({
        span: (...args) => {
          names.push(args[0])
          return native.span(...args)
        },
        context: native.context
      })
      yield* Effect.gen(function*() {
        const client = yield* McpClient.connect(url, { standaloneStream: false })
        traceparents.length = 0
        names.length = 0
        yield* client.callTool("add", { a: 1, b: 2 })
      }).pipe(Effect.scoped, Effect.withTracer(recording))
      expect(names).toContain("McpClient.request")
      expect(names).toContain("http.client POST")
      expect(traceparents).toHaveLength(1)
      expect(traceparents[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
