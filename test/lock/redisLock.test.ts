import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, Ref } from "effect"
import * as RedisStorage from "../../src/RedisStorage.js"
import * as TokenLock from "../../src/TokenLock.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { makeToken } from "../storageConformance.js"
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

  it.scopedLive("fencing: a holder whose lease expired and was taken meanwhile fails ensureHeld; RedisStorage refuses its token writes (in the CAS script on the lock's connection, by ensureHeld on another)", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const storageOn = (layer: Layer.Layer<RedisStorage.RedisConnection>) =>
        Effect.map(Layer.build(RedisStorage.layer({ prefix: "fence:" }).pipe(Layer.provide(layer))), (ctx) =>
          Context.get(ctx, TokenStorage.TokenStorage))
      const a = yield* open(server.url, { prefix: "fence:" })
      const b = yield* open(server.url, { prefix: "fence:" })
      const sameConnection = yield* storageOn(RedisStorage.layerClient(a.redis))
      const otherConnection = yield* storageOn(RedisStorage.layerConnection(server.url).pipe(Layer.orDie))
      const bStorage = yield* storageOn(RedisStorage.layerClient(b.redis))
      yield* bStorage.setTokens(KEY, makeToken({ accessToken: Redacted.make("original") }))
      const outcome = yield* a.lock.withLock(KEY, Effect.gen(function*() {
        yield* TokenLock.ensureHeld
        // A stalls past its lease (the key expires) and B takes the lock and writes.
        yield* Effect.promise(() => a.redis.call("DEL", `fence:lock:${KEY}`))
        yield* b.lock.withLock(KEY, bStorage.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-b") })))
        // A resumes.
        const held = yield* Effect.flip(TokenLock.ensureHeld)
        const atomic = yield* Effect.flip(sameConnection.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-a") })))
        const checked = yield* Effect.flip(otherConnection.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-a") })))
        return { held, atomic, checked }
      }))
      for (const e of [outcome.held, outcome.atomic, outcome.checked]) {
        expect(e.reason).toBe("Conflict")
        expect(e.detail).toContain("lost")
      }
      expect(outcome.atomic.detail).toContain("the tokens were not written") // refused by the CAS script
      expect(outcome.checked.detail).toContain("Redis token lock") // refused by ensureHeld
      expect(Option.map(yield* bStorage.getTokens(KEY), (t) => Redacted.value(t.accessToken))).toEqual(Option.some("from-b"))
    }))
})
