/**
 * The client-side cost of a cold sign-in (issue 13, "cold sign-in wall time"): building
 * `OAuthLayer` and signing in from nothing — discovery, registration, authorization, token — then
 * the first `tools/call`. Counted in effect steps and fibers (repeatable, unlike times) by a
 * supervisor over the client only; the authorization and MCP servers run on loopback in this
 * process under their own fibers.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import { OAuthLayer } from "../../src/HttpAuth.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as TestStorage from "../../src/TestStorage.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { counted, protectedAddServer } from "../fixtures/effectCost.js"

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
        expect(count.started).toBe(0)
        expect(count.steps).toBeLessThanOrEqual(600)
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a cold sign-in and the first tools/call: bounded fibers and effect steps", () =>
    Effect.gen(function*() {
      const url = yield* protectedAddServer
      yield* coldCall(url) // warm up (module state, connections)
      const [count, result] = yield* coldCall(url)
      expect(result.content).toEqual([{ type: "text", text: "3" }])
      // 37 fibers and ~10 200 steps with OAuthLayer as a layer graph and every OAuth answer read
      // through a Stream; ~24 and ~5 100 now
      expect(count.started).toBeLessThanOrEqual(28)
      expect(count.steps).toBeLessThanOrEqual(6500)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
