import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Encoding, Exit, Layer, Option, Redacted } from "effect"
import * as KvStore from "../../src/internal/kvStore.js"
import * as RedisStorage from "../../src/RedisStorage.js"
import { StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { ACCESS, conformance, KEY_A, KEY_B, makeClient, makeToken } from "../storageConformance.js"
import { redisTestsEnabled, startRedis } from "./redisServer.js"

const connection = (url: string) => RedisStorage.layerConnection(url).pipe(Layer.orDie)

const openWith = (url: string, options: RedisStorage.RedisStorageOptions = {}) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(RedisStorage.layer(options).pipe(Layer.provideMerge(connection(url))))
    return { storage: Context.get(ctx, TokenStorage.TokenStorage), redis: Context.get(ctx, RedisStorage.RedisConnection) }
  })

describe.runIf(redisTestsEnabled)("RedisStorage against a real redis-server", () => {
  conformance({
    name: "RedisStorage.layer",
    persistent: true,
    medium: Effect.map(startRedis, (server) => RedisStorage.layer({ prefix: "conf:" }).pipe(Layer.provide(connection(server.url))))
  })

  conformance({
    name: "encrypted(RedisStorage.layer)",
    persistent: true,
    medium: Effect.map(startRedis, (server) =>
      TokenStorage.encrypted(RedisStorage.layer({ prefix: "enc:" }), {
        key: Redacted.make(Encoding.encodeHex(new Uint8Array(32).fill(9)))
      }).pipe(Layer.provide(connection(server.url)), Layer.orDie))
  })

  it.scopedLive("keys live under the prefix; clearAll leaves other prefixes and foreign keys alone", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const one = yield* openWith(server.url, { prefix: "app1:" })
      const two = yield* openWith(server.url, { prefix: "app2:" })
      yield* Effect.promise(() => one.redis.call("SET", "unrelated", "x"))
      yield* one.storage.setTokens(KEY_A, makeToken())
      yield* one.storage.setClient(KEY_B, makeClient())
      yield* two.storage.setTokens(KEY_A, makeToken({ scopes: ["two"] }))
      const keys = yield* Effect.promise(() => one.redis.call("KEYS", "*"))
      expect(Array.isArray(keys) && keys.every((k) => k === "unrelated" || String(k).startsWith("app1:") || String(k).startsWith("app2:"))).toBe(true)
      expect(yield* Effect.promise(() => one.redis.call("EXISTS", `app1:${KvStore.entryKey("tokens", KEY_A)}`))).toBe(1)
      yield* one.storage.clearAll
      expect(yield* one.storage.keys).toEqual([])
      expect(Option.map(yield* two.storage.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["two"]))
      expect(yield* Effect.promise(() => one.redis.call("GET", "unrelated"))).toBe("x")
    }))

  it.scopedLive("TTLs follow the tokens: expiresAt + margin without a refresh token; refresh lifetime when known; client never", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const { redis, storage } = yield* openWith(server.url, { prefix: "ttl:", expiryMargin: "1 minute" })
      const pttl = (kind: "tokens" | "client", key: string) =>
        Effect.promise(() => redis.call("PTTL", `ttl:${KvStore.entryKey(kind, key)}`))
      const now = Date.now()
      yield* storage.setTokens(KEY_A, new StoredToken({
        accessToken: Redacted.make(ACCESS), tokenType: "Bearer", expiresAt: now + 120_000, scopes: [], issuer: "i", obtainedAt: now
      }))
      const a = yield* pttl("tokens", KEY_A)
      expect(typeof a === "number" && a > 170_000 && a <= 180_000).toBe(true)
      yield* storage.setTokens(KEY_B, makeToken({ expiresAt: now + 1_000, obtainedAt: now })) // has a refresh token
      expect(yield* pttl("tokens", KEY_B)).toBe(-1)
      yield* storage.setClient(KEY_A, makeClient())
      expect(yield* pttl("client", KEY_A)).toBe(-1)

      const withLifetime = yield* openWith(server.url, { prefix: "ttl2:", refreshTokenLifetime: "1 hour" })
      yield* withLifetime.storage.setTokens(KEY_A, makeToken({ expiresAt: now + 1_000, obtainedAt: now }))
      const b = yield* Effect.promise(() => redis.call("PTTL", `ttl2:${KvStore.entryKey("tokens", KEY_A)}`))
      expect(typeof b === "number" && b > 3_590_000 && b <= 3_600_000).toBe(true)
    }))

  it.scopedLive("an expired entry really disappears from Redis (and from keys)", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const { storage } = yield* openWith(server.url, { prefix: "gone:", expiryMargin: 0 })
      const now = Date.now()
      yield* storage.setTokens(KEY_A, new StoredToken({
        accessToken: Redacted.make(ACCESS), tokenType: "Bearer", expiresAt: now, scopes: [], issuer: "i", obtainedAt: now
      }))
      expect(Option.isSome(yield* storage.getTokens(KEY_A))).toBe(true)
      yield* Effect.sleep("1200 millis") // the minimum TTL is 1 s
      expect(yield* storage.getTokens(KEY_A)).toEqual(Option.none())
      expect(yield* storage.keys).toEqual([])
    }))

  it.scopedLive("compare-and-set is atomic across connections: one winner among concurrent writers", () =>
    Effect.gen(function*() {
      const server = yield* startRedis
      const conns = yield* Effect.forEach([1, 2, 3], () => openWith(server.url, { prefix: "cas:" }))
      const r = yield* conns[0]!.storage.revisions!.setTokens(KEY_A, makeToken(), 0)
      const results = yield* Effect.forEach(
        Array.from({ length: 15 }, (_, i) => i),
        (i) => Effect.either(conns[i % 3]!.storage.revisions!.setTokens(KEY_A, makeToken({ accessToken: Redacted.make(`at-${i}`) }), r)),
        { concurrency: "unbounded" }
      )
      expect(results.filter((e) => e._tag === "Right")).toHaveLength(1)
      expect(results.filter((e) => e._tag === "Left" && e.left.reason === "Conflict")).toHaveLength(14)
      // the index survives concurrent adds of different keys from different connections
      const keys = Array.from({ length: 30 }, (_, i) => `http://127.0.0.1:${9300 + i}/mcp`)
      yield* Effect.forEach(keys, (k, i) => conns[i % 3]!.storage.setClient(k, makeClient()), { concurrency: "unbounded" })
      expect([...(yield* conns[1]!.storage.keys)].sort()).toEqual([...keys, KEY_A].sort())
    }))

  it.scopedLive("an unreachable server is StorageError Io when the connection layer is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(RedisStorage.layerConnection("redis://127.0.0.1:1")))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("cannot connect to Redis")
    }))
})

describe("RedisStorage.tokenTtl", () => {
  const now = 1_000_000
  it("without a refresh token: expiresAt + margin (default 5 minutes), at least 1 s; none without expiry", () => {
    const t = new StoredToken({ accessToken: Redacted.make("a"), tokenType: "Bearer", expiresAt: now + 10_000, scopes: [], issuer: "i", obtainedAt: now })
    expect(RedisStorage.tokenTtl(t, now)).toBe(310_000)
    expect(RedisStorage.tokenTtl(t, now, { expiryMargin: "1 second" })).toBe(11_000)
    expect(RedisStorage.tokenTtl(t, now + 1e9)).toBe(1_000)
    const noExpiry = new StoredToken({ accessToken: Redacted.make("a"), tokenType: "Bearer", scopes: [], issuer: "i", obtainedAt: now })
    expect(RedisStorage.tokenTtl(noExpiry, now)).toBeUndefined()
  })
  it("with a refresh token: until the refresh token's known lifetime ends, else no TTL", () => {
    const t = makeToken({ obtainedAt: now, expiresAt: now + 10 })
    expect(RedisStorage.tokenTtl(t, now)).toBeUndefined()
    expect(RedisStorage.tokenTtl(t, now + 1000, { refreshTokenLifetime: "1 day" })).toBe(86_400_000 - 1000)
  })
})
