/**
 * The client-side cost of a cold sign-in (issue 13, "cold sign-in wall time"): building
 * `OAuthLayer` and signing in from nothing — discovery, registration, authorization, token — then
 * the first `tools/call`. Counted in effect steps and fibers (repeatable, unlike times) by a
 * supervisor over the client only; the authorization and MCP servers run on loopback in this
 * process under their own fibers.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, RuntimeFlagsPatch, Schema, Scope, Supervisor } from "effect"
import * as RuntimeFlags from "effect/RuntimeFlags"
import type { Context, Fiber, Option } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../../src/Authorizer.js"
import { OAuthLayer } from "../../src/HttpAuth.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import { AuthProvider, Consent, McpEndpoint, OAuthProvider, OAuthProviderStore } from "../../src/server/index.js"
import * as TestStorage from "../../src/TestStorage.js"
import * as TokenStorage from "../../src/TokenStorage.js"

/** Counts the fibers started under it and the effects they run (with op supervision on). */
class Count extends Supervisor.AbstractSupervisor<void> {
  fibers = 0
  steps = 0
  override onEffect<A, E>(_fiber: Fiber.RuntimeFiber<A, E>, _effect: Effect.Effect<unknown, unknown, unknown>): void {
    this.steps++
  }
  get value() {
    return Effect.void
  }
  override onStart<A, E, R>(
    _context: Context.Context<R>,
    _effect: Effect.Effect<A, E, R>,
    _parent: Option.Option<Fiber.RuntimeFiber<unknown, unknown>>,
    _fiber: Fiber.RuntimeFiber<A, E>
  ): void {
    this.fibers++
  }
  override onEnd<A, E>(_value: Exit.Exit<A, E>, _fiber: Fiber.RuntimeFiber<A, E>): void {}
}

const counted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const count = new Count()
    const value = yield* Effect.supervised(effect, count).pipe(
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
    return [count, value] as const
  })

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

const protectedServer = Effect.gen(function*() {
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const provider = yield* OAuthProvider.make({
    issuer: HttpServer.formatAddress(server.address),
    scopesSupported: ["mcp"],
    consent: Consent.autoApprove("cost-user"),
    registrationLimit: false
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  const auth = AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["mcp"] })
  yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  return new URL(auth.resourceUrl("/mcp"))
})

/** A cold sign-in and the first call, with fresh storage and a headless authorizer. */
const coldCall = (url: URL) =>
  Effect.gen(function*() {
    const [storage] = yield* TestStorage.make()
    const authorizer = yield* Authorizer.makeHeadless()
    const scope = yield* Scope.make()
    const [count, result] = yield* counted(
      Effect.flatMap(
        McpClient.connect(url, { auth: { oauth: { scopes: ["mcp"] } } }),
        (client) => client.callTool("add", { a: 1, b: 2 })
      ).pipe(
        Effect.provideService(TokenStorage.TokenStorage, storage),
        Effect.provideService(Authorizer.Authorizer, authorizer),
        Scope.extend(scope)
      )
    )
    yield* Scope.close(scope, Exit.void)
    return [count, result] as const
  })

describe("cold sign-in cost in the client", () => {
  it.live("building OAuthLayer forks no fiber and runs a bounded number of effect steps", () =>
    Effect.gen(function*() {
      const [storage] = yield* TestStorage.make()
      const authorizer = yield* Authorizer.makeHeadless()
      for (let i = 0; i < 2; i++) {
        const scope = yield* Scope.make()
        const [count] = yield* counted(
          Layer.buildWithScope(OAuthLayer({ mcpUrl: "http://127.0.0.1:1/mcp" }), scope).pipe(
            Effect.provideService(TokenStorage.TokenStorage, storage),
            Effect.provideService(Authorizer.Authorizer, authorizer)
          )
        )
        yield* Scope.close(scope, Exit.void)
        // a graph of a dozen memoized layers: 9 fibers and ~3 700 steps; one scoped effect: 0 and ~470
        expect(count.fibers).toBe(0)
        expect(count.steps).toBeLessThanOrEqual(600)
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a cold sign-in and the first tools/call: bounded fibers and effect steps", () =>
    Effect.gen(function*() {
      const url = yield* protectedServer
      yield* coldCall(url) // warm up (module state, connections)
      const [count, result] = yield* coldCall(url)
      expect(result.content).toEqual([{ type: "text", text: "3" }])
      // 37 fibers and ~10 200 steps with OAuthLayer as a layer graph and every OAuth answer read
      // through a Stream; ~24 and ~5 100 now
      expect(count.fibers).toBeLessThanOrEqual(28)
      expect(count.steps).toBeLessThanOrEqual(6500)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
