import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref } from "effect"
import * as RedisStorage from "../../src/RedisStorage.js"
import * as TokenLock from "../../src/TokenLock.js"
import { redisTestsEnabled, startRedis } from "../storage/redisServer.js"

const KEY = "http://127.0.0.1:9001/mcp"

const open = (url: string, options: TokenLock.RedisLockOptions = {}) =>
  Effect.map(
    Layer.build(TokenLock.layerRedis(options).pipe(Layer.provideMerge(RedisStorage.layerConnection(url).pipe(Layer.orDie)))),
    (ctx) => ({ lock: Context.get(ctx, TokenLock.TokenLock), redis: Context.get(ctx, RedisStorage.RedisConnection) })
  )

describe.runIf(redisTestsEnabled)("TokenLock.layerRedis against a real redis-server", () => {
  it.scopedLive("mutual exclusion across connections; the key is gone after release", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const a = yield* open(server.url)
      const b = yield* open(server.url)
      const inside = yield* Ref.make(0)
      const max = yield* Ref.make(0)
      const critical = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(inside, (x) => x + 1)
        yield* Ref.update(max, (m) => Math.max(m, n))
        yield* Effect.sleep("5 millis")
        yield* Ref.update(inside, (x) => x - 1)
      })
      yield* Effect.forEach(Array.from({ length: 12 }, (_, i) => i), (i) => (i % 2 ? a : b).lock.withLock(KEY, critical), {
        concurrency: "unbounded"
      })
      expect(yield* Ref.get(max)).toBe(1)
      expect(yield* Effect.promise(() => a.redis.call("EXISTS", `mcp-oauth:lock:${KEY}`))).toBe(0)
    }))

  it.scopedLive("a held lock times out as Conflict; release never deletes another holder's lock; the lease is renewed", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const { lock, redis } = yield* open(server.url, { lease: "600 millis", acquireTimeout: "300 millis" })
      yield* Effect.promise(() => redis.call("SET", `mcp-oauth:lock:${KEY}`, "someone-else", "PX", 60_000))
      const error = yield* Effect.flip(lock.withLock(KEY, Effect.void))
      expect(error.reason).toBe("Conflict")
      expect(yield* Effect.promise(() => redis.call("GET", `mcp-oauth:lock:${KEY}`))).toBe("someone-else")
      yield* Effect.promise(() => redis.call("DEL", `mcp-oauth:lock:${KEY}`))
      const ttlLater = yield* lock.withLock(KEY, Effect.gen(function*() {
        yield* Effect.sleep("1500 millis") // > 2 leases: still ours thanks to renewal
        return yield* Effect.promise(() => redis.call("PTTL", `mcp-oauth:lock:${KEY}`))
      }))
      expect(typeof ttlLater === "number" && ttlLater > 0).toBe(true)
      expect(yield* Effect.promise(() => redis.call("EXISTS", `mcp-oauth:lock:${KEY}`))).toBe(0)
    }))
})
