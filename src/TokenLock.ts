/**
 * A lock around "decide to refresh / sign in, do it, store the result", shared by every process
 * that uses the same token storage, so that N processes cause one refresh (a rotating refresh
 * token redeemed twice revokes the whole family, RFC 9700 §4.14.2). In-process concurrency is
 * already single-flight in `OAuth`; this lock only coordinates processes.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Clock, Context, Duration, Effect, Either, Encoding, Fiber, Layer } from "effect"
import { StorageError } from "./Errors.js"
import * as FileLock from "./internal/fileLock.js"
import * as FileStore from "./internal/fileStore.js"
import * as NoFollow from "./internal/noFollow.js"
import { RedisConnection } from "./RedisStorage.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenLock {
  /**
   * Runs `effect` while holding the lock of `key` (a server storage key). Holders that crash
   * must not block others beyond a lease. The orchestrator re-reads storage inside the lock.
   */
  readonly withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TokenLock: Context.Tag<TokenLock, TokenLock> = Context.GenericTag<TokenLock>(
  "effect-mcp-oauth/TokenLock"
)

/**
 * No cross-process coordination (the default, right for a single process or memory storage).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<TokenLock> = Layer.sync(TokenLock, () => none)

/**
 * The service of {@link layerNone}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: TokenLock = { withLock: (_key, effect) => effect }

/**
 * Options of {@link layerFile}.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileLockOptions {
  /** How long a lease lasts; renewed every third of it while held. Default 30 s. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long to wait for the lock before failing with `StorageError` "Conflict". Default 10 minutes. */
  readonly acquireTimeout?: Duration.DurationInput | undefined
}

/**
 * A cross-process lock on the file system, for processes on one machine that share a token
 * directory (`TokenStorage.layerFileSystem`): one lock file per server key
 * (`<readable prefix>.<sha256 of the key>.lock`) created with `O_EXCL`, holding a lease — the
 * owner's random token, pid, host and expiry. Waiters poll with a jittered exponential backoff.
 * A lock whose lease expired, or whose holder's pid is gone (same host), is broken safely (only
 * one waiter breaks it, and only if it is unchanged). The lease is renewed while held, so a long
 * interactive sign-in keeps it; a crashed holder blocks others at most one lease.
 *
 * `directory` defaults to the file storage's default directory (the same cache directory, so
 * that storage and lock go together).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @see https://pubs.opengroup.org/onlinepubs/9799919799/functions/open.html
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = (
  directory?: string,
  options: FileLockOptions = {}
): Effect.Effect<TokenLock, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = directory === undefined
      ? yield* Effect.either(Effect.provideService(FileStore.defaultDirectory, Path.Path, path))
      : Either.right(directory)
    return {
      withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
        Effect.gen(function*() {
          const d = path.resolve(yield* dir)
          yield* NoFollow.ensureDirectory(d)
          const name = (yield* FileStore.fileNameFor(key, "tokens")).replace(/\.tokens\.json$/, ".lock")
          return yield* FileLock.withFileLock(fs, path.join(d, name), {
            lease: options.lease,
            acquireTimeout: options.acquireTimeout
          })(effect)
        }).pipe(Effect.withSpan("TokenLock.withLock", { attributes: { "tokenLock.backend": "file", "tokenLock.key": key } }))
    }
  })

/**
 * {@link makeFile} as a layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (
  directory?: string,
  options: FileLockOptions = {}
): Layer.Layer<TokenLock, never, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(TokenLock, makeFile(directory, options))

/**
 * {@link layerFile} with Node's `FileSystem` and `Path` provided.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layerFileNode = (directory?: string, options: FileLockOptions = {}): Layer.Layer<TokenLock> =>
  layerFile(directory, options).pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)))

/**
 * Options of {@link layerRedis}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisLockOptions {
  /** Prefix of the lock keys (`<prefix>lock:<server key>`). Default `"mcp-oauth:"`. */
  readonly prefix?: string | undefined
  /** Lease (`PX`) of a lock; renewed every third of it while held. Default 30 s. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long to wait before failing with `StorageError` "Conflict". Default 10 minutes. */
  readonly acquireTimeout?: Duration.DurationInput | undefined
}

/** Deletes KEYS[1] only if it still holds ARGV[1] (our token). */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`
/** Extends KEYS[1] to ARGV[2] ms only if it still holds ARGV[1]. */
const RENEW_SCRIPT =
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`

/**
 * A cross-process, cross-host lock in Redis (the single-instance algorithm of the Redis docs):
 * `SET <prefix>lock:<key> <random token> NX PX <lease>`, polled with a jittered exponential
 * backoff; released by a compare-and-delete Lua script (never another holder's lock); renewed
 * by a compare-and-`PEXPIRE` script every third of the lease while held. A holder that dies
 * blocks the others at most one lease.
 *
 * @see https://redis.io/docs/latest/develop/use/patterns/distributed-locks/
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category constructors
 */
export const makeRedis = (options: RedisLockOptions = {}): Effect.Effect<TokenLock, never, RedisConnection> =>
  Effect.gen(function*() {
    const client = yield* RedisConnection
    const prefix = options.prefix ?? "mcp-oauth:"
    const leaseMillis = Duration.toMillis(options.lease ?? Duration.seconds(30))
    const timeout = options.acquireTimeout ?? Duration.minutes(10)
    const call = (what: string, command: string, ...args: Array<string | number>) =>
      Effect.tryPromise({
        try: () => client.call(command, ...args),
        catch: (e) => new StorageError({ reason: "Io", detail: `Redis ${what} failed: ${String(e)}` })
      })
    class Busy {
      readonly _tag = "Busy"
    }
    return {
      withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> => {
        const lockKey = `${prefix}lock:${key}`
        const token = Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(16)))
        const acquire = call("lock", "SET", lockKey, token, "NX", "PX", leaseMillis).pipe(
          Effect.flatMap((reply) => reply === "OK" ? Effect.void : Effect.fail(new Busy())),
          Effect.retry({ schedule: FileLock.pollSchedule, while: (e) => e instanceof Busy }),
          Effect.interruptible, // waiting can be interrupted / timed out; a lock set meanwhile expires by its lease
          Effect.mapError((e) =>
            e instanceof Busy ? new StorageError({ reason: "Conflict", key, detail: "the lock is held" }) : e
          ),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new StorageError({
                reason: "Conflict",
                key,
                detail: `timed out after ${Duration.format(Duration.decode(timeout))} waiting for the Redis lock`
              })
          })
        )
        const renew = call("renew", "EVAL", RENEW_SCRIPT, 1, lockKey, token, leaseMillis).pipe(
          Effect.map((n) => n === 1),
          Effect.catchAll(() => Effect.succeed(true)), // a failed renewal is retried next period
          Effect.delay(Duration.millis(Math.max(1, Math.floor(leaseMillis / 3)))),
          Effect.repeat({ while: (held) => held }),
          Effect.zipRight(Effect.logWarning("Lost a Redis token lock while holding it (its lease expired)")),
          Effect.annotateLogs({ lock: lockKey })
        )
        const release = call("unlock", "EVAL", RELEASE_SCRIPT, 1, lockKey, token).pipe(Effect.ignore)
        return Effect.acquireUseRelease(
          Effect.withClock(Effect.zipRight(acquire, Effect.forkDaemon(Effect.interruptible(renew))), Clock.make()),
          () => effect,
          (fiber: Fiber.RuntimeFiber<void>) => Effect.zipRight(Fiber.interrupt(fiber), release)
        ).pipe(
          Effect.withSpan("TokenLock.withLock", { attributes: { "tokenLock.backend": "redis", "tokenLock.key": key } })
        )
      }
    }
  })

/**
 * {@link makeRedis} as a layer (over `RedisStorage.layerConnection` or `layerClient`).
 *
 * @see https://redis.io/docs/latest/develop/use/patterns/distributed-locks/
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisLockOptions = {}): Layer.Layer<TokenLock, never, RedisConnection> =>
  Layer.effect(TokenLock, makeRedis(options))
