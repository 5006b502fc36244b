/**
 * A lock around "decide to refresh / sign in, do it, store the result", shared by every process
 * that uses the same token storage, so that N processes cause one refresh (a rotating refresh
 * token redeemed twice revokes the whole family, RFC 9700 §4.14.2). In-process concurrency is
 * already single-flight in `OAuth`; this lock only coordinates processes.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { StorageError } from "./Errors.js"
import * as FileStore from "./internal/fileStore.js"
import * as NodeFiles from "./internal/nodeFileSystem.js"
import * as RedisLock from "./internal/redisLock.js"
import * as InternalLease from "./internal/lease.js"
import { RedisConnection } from "./RedisStorage.js"
import { TokenStorage } from "./TokenStorage.js"

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
 * The lease of a held lock, as seen by the effect the lock guards (see {@link ensureHeld}). A
 * custom {@link TokenLock} with leases provides one with {@link withLease}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  /** The storage key the lock guards. */
  readonly key: string
  /**
   * Succeeds when the lease is still this holder's, extending it to a full lease; fails with
   * `StorageError` reason `"Conflict"` when it was lost.
   */
  readonly ensureHeld: Effect.Effect<void, StorageError>
}

/**
 * Fencing for a lock holder that may have been stalled past its lease (a stopped process, a
 * suspended machine, a long pause) while another process took the lock: call it **immediately
 * before redeeming a refresh token**. It succeeds — extending the lease to a full one, so the
 * redemption that follows runs under a fresh lease — when the current fiber still holds its
 * {@link layerFile} / {@link layerRedis} lock, and fails with `StorageError` reason `"Conflict"`
 * when the lease was lost: the refresh token may already have been redeemed by the new holder,
 * and redeeming it again would revoke the grant (RFC 9700 §4.14.2). Outside a lock, or under
 * {@link layerNone}, it does nothing.
 *
 * The file and Redis storages run the same check inside their atomic token writes, so a
 * holder that lost its lease never overwrites the tokens the new holder stored (for Redis
 * storage and lock on one connection, in the same Lua script as the write).
 *
 * @example
 * ```ts
 * lock.withLock(key, Effect.gen(function*() {
 *   const stored = yield* storage.getTokens(key)
 *   // … decide to refresh …
 *   yield* TokenLock.ensureHeld // the lease may have expired while this process was stopped
 *   // … redeem the refresh token, then store the result …
 * }))
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @see https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html
 * @since 0.1.0
 * @category fencing
 */
export const ensureHeld: Effect.Effect<void, StorageError> = InternalLease.ensureHeld

/**
 * The lease of the lock the current fiber runs under, if any.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category fencing
 */
export const currentLease: Effect.Effect<Option.Option<Lease>> = InternalLease.current

/**
 * Runs `effect` as the holder of `lease`: for custom {@link TokenLock}s, so that
 * {@link ensureHeld} and the storages' conditional writes check their lease.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category fencing
 */
export const withLease = (lease: Lease) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  InternalLease.provide({ key: lease.key, ensureHeld: lease.ensureHeld })(effect)

/**
 * @since 0.1.0
 * @category tags
 */
export const TokenLock: Context.Tag<TokenLock, TokenLock> = Context.GenericTag<TokenLock>(
  "effect-mcp-oauth/TokenLock"
)

/**
 * The lock the orchestrator uses: the app's `TokenLock` when it provides one (including
 * {@link layerNone}, the explicit opt-out); else the lock the `TokenStorage` brings when other
 * processes can share it (`TokenStorage.layerFileSystem`: the file lock of its directory;
 * `RedisStorage.layer`: the Redis lock on its connection); else {@link none} (memory storage,
 * no storage). So a shared store is never used without its lock by default: two processes
 * redeeming one rotating refresh token lose the grant (RFC 9700 §4.14.2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category constructors
 */
export const resolve: Effect.Effect<TokenLock> = Effect.gen(function*() {
  const explicit = yield* Effect.serviceOption(TokenLock)
  if (Option.isSome(explicit)) return explicit.value
  const storage = yield* Effect.serviceOption(TokenStorage)
  return Option.getOrElse(Option.flatMap(storage, (s) => Option.fromNullable(s.lock)), () => none)
})

/**
 * {@link resolve} as a layer: what `OAuthLayer` provides to the orchestrator.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layerResolved: Layer.Layer<TokenLock> = Layer.effect(TokenLock, resolve)

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
    return FileStore.makeLock(dir, fs, path, options)
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
  layerFile(directory, options).pipe(Layer.provide(NodeFiles.layer))

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
  Effect.map(RedisConnection, (client) => RedisLock.make(client, options))

/**
 * {@link makeRedis} as a layer (over `RedisStorage.layerConnection` or `layerClient`).
 *
 * @see https://redis.io/docs/latest/develop/use/patterns/distributed-locks/
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisLockOptions = {}): Layer.Layer<TokenLock, never, RedisConnection> =>
  Layer.effect(TokenLock, makeRedis(options))
