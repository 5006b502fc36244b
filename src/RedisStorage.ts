/**
 * Token storage in Redis, for deployments where several processes or hosts share credentials:
 * a `KeyValueStore` over a Redis connection (`KeyValueStore.makeStringOnly`), under a key
 * prefix, with atomic compare-and-set (a Lua script) for token revisions and the index, and
 * TTLs that follow the tokens' usefulness. `ioredis` (5.x) is an optional peer dependency: it is
 * loaded only by {@link layerConnection}; any client with an ioredis-style `call` works.
 *
 * @since 0.1.0
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { SystemError } from "@effect/platform/Error"
import type { PlatformError } from "@effect/platform/Error"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { StorageError } from "./Errors.js"
import * as KvStore from "./internal/kvStore.js"
import * as RedisLock from "./internal/redisLock.js"
import * as Format from "./internal/storageFormat.js"
import type { StoredToken } from "./Schemas.js"
import { TokenStorage } from "./TokenStorage.js"

/**
 * The part of a Redis client this library uses: ioredis's generic `call(command, ...args)`.
 * An `ioredis` `Redis` instance fits as it is.
 *
 * @see https://redis.io/docs/latest/commands/
 * @since 0.1.0
 * @category models
 */
export interface RedisClient {
  readonly call: (command: string, ...args: Array<string | number>) => Promise<unknown>
}

/**
 * The Redis connection shared by {@link layer} and `TokenLock.layerRedis`.
 *
 * @since 0.1.0
 * @category tags
 */
export class RedisConnection extends Context.Tag("effect-mcp-oauth/RedisConnection")<RedisConnection, RedisClient>() {}

/**
 * Provides an existing client (its lifetime stays the caller's).
 *
 * @see https://redis.io/docs/latest/commands/
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (client: RedisClient): Layer.Layer<RedisConnection> => Layer.succeed(RedisConnection, client)

/**
 * Connects to `url` (`redis://[user:password@]host:port[/db]`) with ioredis — loaded on demand,
 * so it is only needed when this layer is used — and disconnects when the layer is released.
 * Fails with `StorageError` "Io" when ioredis is not installed or the server cannot be reached.
 *
 * @see https://www.iana.org/assignments/uri-schemes/prov/redis
 * @since 0.1.0
 * @category layers
 */
export const layerConnection = (url: string): Layer.Layer<RedisConnection, StorageError> =>
  Layer.scoped(
    RedisConnection,
    Effect.gen(function*() {
      const module = yield* Effect.tryPromise({
        try: () => import("ioredis"),
        catch: () =>
          new StorageError({ reason: "Io", detail: "the Redis storage needs the ioredis package: npm install ioredis" })
      })
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const c = new module.Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true })
          // connection errors surface as failed commands (StorageError "Io"); no unhandled events
          c.on("error", () => undefined)
          return c
        }),
        (c) => Effect.promise(() => c.quit().catch(() => c.disconnect()))
      )
      yield* Effect.tryPromise({
        try: () => client.connect(),
        catch: (e) => new StorageError({ reason: "Io", detail: `cannot connect to Redis: ${String(e)}` })
      })
      const call = (command: string, ...args: Array<string | number>): Promise<unknown> => client.call(command, ...args)
      return { call }
    })
  )

const platformError = (method: string) => (cause: unknown): PlatformError =>
  new SystemError({ reason: "Unknown", module: "KeyValueStore", method, description: String(cause), cause })

const command = (client: RedisClient, method: string, name: string, ...args: Array<string | number>) =>
  Effect.tryPromise({ try: () => client.call(name, ...args), catch: platformError(method) })

const SCAN_COUNT = 500

/** Every key under `prefix` (SCAN, never KEYS). */
const scanKeys = (client: RedisClient, prefix: string) =>
  Effect.gen(function*() {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`
    const found: Array<string> = []
    let cursor = "0"
    do {
      const reply = yield* command(client, "scan", "SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT)
      if (!Array.isArray(reply) || typeof reply[0] !== "string" || !Array.isArray(reply[1])) {
        return yield* Effect.fail(platformError("scan")("unexpected SCAN reply"))
      }
      cursor = reply[0]
      for (const k of reply[1]) if (typeof k === "string") found.push(k)
    } while (cursor !== "0")
    return found
  })

/**
 * A `KeyValueStore` over Redis strings under `prefix` (`GET`/`SET`/`DEL`; `clear` and `size`
 * by `SCAN` of the prefix, so nothing outside it is touched).
 *
 * @see https://redis.io/docs/latest/commands/scan/
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyValueStore = (client: RedisClient, prefix: string): KeyValueStore.KeyValueStore =>
  KeyValueStore.makeStringOnly({
    get: (key) =>
      Effect.map(command(client, "get", "GET", prefix + key), (v) => Option.fromNullable(typeof v === "string" ? v : null)),
    set: (key, value) => Effect.asVoid(command(client, "set", "SET", prefix + key, value)),
    remove: (key) => Effect.asVoid(command(client, "remove", "DEL", prefix + key)),
    has: (key) => Effect.map(command(client, "has", "EXISTS", prefix + key), (n) => n === 1),
    clear: Effect.flatMap(scanKeys(client, prefix), (keys) =>
      keys.length === 0 ? Effect.void : Effect.asVoid(command(client, "clear", "DEL", ...keys))),
    size: Effect.map(scanKeys(client, prefix), (keys) => keys.length)
  })

/**
 * Compare-and-set of one string value: KEYS[1]; ARGV = expectPresent ("1"/"0"), expected,
 * write ("1") or delete ("0"), value, ttl ms ("0" = none). With a fence, KEYS[2] is a token
 * lock that must still hold ARGV[6] (else -1: the lease was lost). Returns 1 when applied, 0
 * when the value changed.
 */
const CAS_SCRIPT = `
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[6] then return -1 end
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
else
  if cur then return 0 end
end
if ARGV[3] == '1' then
  if tonumber(ARGV[5]) > 0 then
    redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
else
  redis.call('DEL', KEYS[1])
end
return 1
`

const atomicOps = (client: RedisClient, prefix: string): KvStore.AtomicOps => ({
  connection: client,
  compareAndSet: (key, expected, next, ttlMillis, fence) => {
    const args = [
      Option.isSome(expected) ? "1" : "0",
      Option.getOrElse(expected, () => ""),
      Option.isSome(next) ? "1" : "0",
      Option.getOrElse(next, () => ""),
      ttlMillis === undefined ? 0 : Math.max(1, Math.ceil(ttlMillis))
    ]
    const keysAndArgs = fence === undefined
      ? [1, prefix + key, ...args]
      : [2, prefix + key, fence.lockKey, ...args, fence.owner]
    return Effect.map(
      command(client, "compareAndSet", "EVAL", CAS_SCRIPT, ...keysAndArgs),
      (result): KvStore.CasResult => result === 1 ? "applied" : result === -1 ? "leaseLost" : "changed"
    )
  }
})

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStorageOptions {
  /** Prefix of every Redis key this storage writes. Default `"mcp-oauth:"`. */
  readonly prefix?: string | undefined
  /**
   * How long a refresh token stays usable after it was obtained, when the authorization server's
   * policy is known (RFC 6749 leaves it to the server). Tokens with a refresh token then expire
   * in Redis at `obtainedAt` + this; without it they are kept until replaced or cleared.
   */
  readonly refreshTokenLifetime?: Duration.DurationInput | undefined
  /** Tokens without a refresh token expire in Redis this long after `expiresAt`. Default 5 minutes. */
  readonly expiryMargin?: Duration.DurationInput | undefined
}

/**
 * How long a token entry should live in Redis at `now`, in milliseconds (`undefined`: no TTL):
 * until its refresh token can no longer be used (`obtainedAt` + `refreshTokenLifetime`, when
 * known), or `expiresAt` + `expiryMargin` when there is no refresh token. Client information
 * never expires.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-1.5
 * @since 0.1.0
 * @category utilities
 */
export const tokenTtl = (
  token: StoredToken,
  now: number,
  options: Pick<RedisStorageOptions, "refreshTokenLifetime" | "expiryMargin"> = {}
): number | undefined => {
  if (token.refreshToken !== undefined) {
    if (options.refreshTokenLifetime === undefined) return undefined
    return Math.max(1_000, token.obtainedAt + Duration.toMillis(options.refreshTokenLifetime) - now)
  }
  if (token.expiresAt === undefined) return undefined
  return Math.max(1_000, token.expiresAt + Duration.toMillis(options.expiryMargin ?? Duration.minutes(5)) - now)
}

/**
 * A {@link TokenStorage} in Redis: the `KeyValueStore` storage format (wrap it with
 * `TokenStorage.encrypted` to encrypt the records) under `prefix`, with token revisions and the
 * server index updated by atomic compare-and-set scripts (safe across processes and hosts),
 * and Redis TTLs that follow {@link tokenTtl}. It brings its cross-process lock (the Redis lock
 * of `TokenLock.layerRedis` on the same connection and prefix), used unless the app provides a
 * `TokenLock` of its own.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisStorageOptions = {}): Effect.Effect<TokenStorage, never, RedisConnection> =>
  Effect.gen(function*() {
    const client = yield* RedisConnection
    const codec = yield* Format.CurrentCodec
    const prefix = options.prefix ?? "mcp-oauth:"
    const storage = yield* KvStore.makeWith({
      codec,
      atomic: atomicOps(client, prefix),
      tokenTtl: (token, now) => tokenTtl(token, now, options)
    }).pipe(Effect.provideService(KeyValueStore.KeyValueStore, makeKeyValueStore(client, prefix)))
    // Shared by design: it brings the Redis lock on the same connection and prefix (used unless
    // the app provides a TokenLock of its own).
    return { ...storage, lock: RedisLock.make(client, { prefix }) }
  })

/**
 * {@link make} as a layer. Compose with {@link layerConnection}:
 *
 * @example
 * ```ts
 * const Storage = RedisStorage.layer({ prefix: "myapp:oauth:" }).pipe(
 *   Layer.provide(RedisStorage.layerConnection("redis://127.0.0.1:6379"))
 * )
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisStorageOptions = {}): Layer.Layer<TokenStorage, never, RedisConnection> =>
  Layer.effect(TokenStorage, make(options))
