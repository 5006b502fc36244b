/**
 * The per-call cost of `McpClient` (issue 13, "MCP client per-call cost"): a signed-in
 * `tools/call` over Streamable HTTP forks a handful of fibers, not a stream pipeline per
 * request. The request timeout's clock (which stops while a token is obtained, see
 * OAuthSession.test.ts) used to build a SubscriptionRef, a change stream and a switching
 * `flatMap` for every request (10 fibers a call): most of the client's CPU per call.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, Supervisor } from "effect"
import type { Context, Exit, Fiber, Option } from "effect"
import { createServer } from "node:http"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpEndpoint } from "../../src/server/index.js"

/** Counts the fibers started under it. */
class CountFibers extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart<A, E, R>(
    _context: Context.Context<R>,
    _effect: Effect.Effect<A, E, R>,
    _parent: Option.Option<Fiber.RuntimeFiber<unknown, unknown>>,
    _fiber: Fiber.RuntimeFiber<A, E>
  ): void {
    this.started++
  }
  override onEnd<A, E>(_value: Exit.Exit<A, E>, _fiber: Fiber.RuntimeFiber<A, E>): void {}
}

const endpoint = McpEndpoint.make({
  name: "cost",
  version: "1.0.0",
  tools: [
    McpEndpoint.tool({
      name: "add",
      parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
      handler: ({ a, b }) => Effect.succeed(String(a + b))
    })
  ]
})

describe("McpClient per-call cost", () => {
  it.live("a tools/call forks at most 3 fibers (no stream pipeline per request for its timeout)", () =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(endpoint)
      const client = yield* McpClient.connect(new URL("/", HttpServer.formatAddress(server.address)))
      yield* client.callTool("add", { a: 1, b: 2 })
      const calls = 20
      const counter = new CountFibers()
      yield* Effect.supervised(
        Effect.repeatN(client.callTool("add", { a: 1, b: 2 }), calls - 1),
        counter
      )
      const perCall = counter.started / calls
      expect(perCall).toBeLessThanOrEqual(3)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
