/**
 * Fault: the client's wall clock jumps forward an hour, then back. The client runs on a `Clock`
 * whose time is the real one plus an offset the test moves (its timers stay real); the servers
 * keep the real time. What must hold: forward, the token looks expired, so one refresh (not one
 * per call) and every call succeeds; back, the token looks fresher than it is, so nothing is
 * refreshed and every call still succeeds; no sign-in either way.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"

const HOUR = 3_600_000

/** The live clock shifted by `offset()` milliseconds. */
const shiftedClock = (offset: () => number): Clock.Clock => {
  const live = Clock.make()
  return Object.assign(Object.create(live) as Clock.Clock, {
    unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis() + offset(),
    currentTimeMillis: Effect.sync(() => live.unsafeCurrentTimeMillis() + offset()),
    unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos() + BigInt(offset()) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => live.unsafeCurrentTimeNanos() + BigInt(offset()) * 1_000_000n)
  })
}

const callMcp = Effect.fn("callMcp")(function*(url: string) {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" }) })
  return response.status
}, Effect.scoped)

describe("fault: the wall clock jumps", () => {
  it.scopedLive("an hour forward then back: one refresh forward, none back, every call OK, no refresh storm", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 3600 })
      let offset = 0
      const clock = shiftedClock(() => offset)
      const refreshes = Effect.map(
        server.requestsTo("token"),
        (all) => all.filter((r) => r.form["grant_type"] === "refresh_token").length
      )
      const herd = Effect.all(Array.from({ length: 100 }, () => callMcp(server.mcpUrl)), { concurrency: "unbounded" })
      yield* Effect.gen(function*() {
        expect(yield* callMcp(server.mcpUrl)).toBe(200) // signed in, token valid for an hour
        expect(yield* refreshes).toBe(0)

        offset = HOUR + 60_000 // forward: the token looks expired
        expect(new Set(yield* herd)).toEqual(new Set([200]))
        expect(yield* refreshes).toBe(1)
        expect(new Set(yield* herd)).toEqual(new Set([200]))
        expect(yield* refreshes).toBe(1)

        offset = 0 // back: the new token looks valid for two hours; it is valid for one
        expect(new Set(yield* herd)).toEqual(new Set([200]))
        expect(yield* refreshes).toBe(1)
        expect(yield* server.count("authorize")).toBe(1)
      }).pipe(
        Effect.provide(
          HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
            Layer.provide(Authorizer.layerHeadless()),
            Layer.provide(NodeHttpClient.layerUndici)
          )
        ),
        Effect.withClock(clock)
      )
    }))
})
