/**
 * The cross-process, cross-host token lock in Redis (the single-instance algorithm of the Redis
 * docs): `SET <prefix>lock:<key> <random token> NX PX <lease>`, polled with a jittered
 * exponential backoff; released by a compare-and-delete Lua script; renewed by a
 * compare-and-`PEXPIRE` script every third of the lease while held. The effect it guards runs
 * with the lease as its `Lease` (fencing), naming the connection so that a Redis storage on the
 * same connection checks it in its compare-and-set script.
 *
 * @see https://redis.io/docs/latest/develop/use/patterns/distributed-locks/
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Fiber from "effect/Fiber"
import { StorageError } from "../Errors.js"
import type { SharedLock } from "./storageModel.js"
import * as FileLock from "./fileLock.js"
import * as Lease from "./lease.js"

/** @internal */
export interface RedisCaller {
  readonly call: (command: string, ...args: Array<string | number>) => Promise<unknown>
}

/** @internal */
export interface RedisLockOptions {
  readonly prefix?: string | undefined
  readonly lease?: Duration.DurationInput | undefined
  readonly acquireTimeout?: Duration.DurationInput | undefined
}

/** Deletes KEYS[1] only if it still holds ARGV[1] (our token). */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`
/** Extends KEYS[1] to ARGV[2] ms only if it still holds ARGV[1]. */
const RENEW_SCRIPT =
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`

class Busy {
  readonly _tag = "Busy"
}

/** @internal */
export const make = (client: RedisCaller, options: RedisLockOptions = {}): SharedLock => {
  const prefix = options.prefix ?? "mcp-oauth:"
  const leaseMillis = Duration.toMillis(options.lease ?? Duration.seconds(30))
  const timeout = options.acquireTimeout ?? Duration.minutes(10)
  const call = (what: string, command: string, ...args: Array<string | number>) =>
    Effect.tryPromise({
      try: () => client.call(command, ...args),
      catch: (e) => new StorageError({ reason: "Io", detail: `Redis ${what} failed: ${String(e)}` })
    })
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
      // Fencing: atomically "still ours? then a full lease again", else lost.
      const ensureHeld = call("renew", "EVAL", RENEW_SCRIPT, 1, lockKey, token, leaseMillis).pipe(
        Effect.flatMap((n) =>
          n === 1 ? Effect.void : Effect.fail(
            new StorageError({
              reason: "Conflict",
              key,
              detail: "the lease of the Redis token lock was lost (it expired while its holder was stalled, " +
                "and another process may have taken it)"
            })
          )
        )
      )
      const lease: Lease.Lease = { key, ensureHeld, redis: { connection: client, lockKey, owner: token } }
      return Effect.acquireUseRelease(
        Effect.withClock(Effect.zipRight(acquire, Effect.forkDaemon(Effect.interruptible(renew))), Clock.make()),
        () => Lease.provide(lease)(effect),
        (fiber: Fiber.RuntimeFiber<void>) => Effect.zipRight(Fiber.interrupt(fiber), release)
      ).pipe(
        Effect.withSpan("TokenLock.withLock", { attributes: { "tokenLock.backend": "redis", "tokenLock.key": key } })
      )
    }
  }
}
