/**
 * A cross-process lock on the file system: a lock file created with `O_CREAT | O_EXCL` (flag
 * `wx`), holding a lease — the owner's random token, its pid and host, and an absolute expiry.
 *
 * - waiting: polling with a jittered exponential backoff (10 ms growing to 250 ms), bounded by
 *   an acquisition timeout (then `StorageError` reason `"Conflict"`);
 * - stale locks: a lock whose lease expired, or whose holder ran on this host, boot and pid
 *   namespace under a pid that no longer exists, is broken (a lock from another pid namespace —
 *   a container sharing the directory — or from an older version that did not record its
 *   namespace is only broken when its lease expires). Breaking is itself guarded by a `<lock>.break` file (created
 *   with `wx`), and the lock is removed only if it still holds the stale content that was
 *   judged, so two waiters never both break it, nor break a fresh lock;
 * - while held, the lease is renewed every third of its length (atomic temp + rename), but never
 *   once it has expired or is about to (a holder resumed after a stall does not revive it);
 * - fencing: the holder can check that the lease is still its own (`withFileLease`), which
 *   extends it to a full lease, or learns that it was lost;
 * - release removes the lock file only if it still names this owner;
 * - a symbolic link in place of the lock file is never followed: acquisition fails with
 *   `StorageError` (creation uses `O_EXCL`, reads `O_NOFOLLOW`).
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import { StorageError } from "../Errors.js"
import * as NoFollow from "./noFollow.js"

/** @internal */
export interface FileLockOptions {
  /** How long a lease lasts without renewal. Default 30 s. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long to wait for the lock before failing with `StorageError` "Conflict". Default 10 minutes. */
  readonly acquireTimeout?: Duration.DurationInput | undefined
  /** Renew the lease while held (default `true`). */
  readonly renew?: boolean | undefined
}

const LOCK_FORMAT = "effect-mcp-oauth/lock"

const LockRecord = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(LOCK_FORMAT),
  owner: Schema.String,
  pid: Schema.Int,
  host: Schema.String,
  /** Where `pid` means something: boot id and pid namespace (absent in locks of older versions). */
  namespace: Schema.optional(Schema.String),
  acquiredAt: Schema.Number,
  expiresAt: Schema.Number
}))
const decodeLock = Schema.decodeUnknownEither(LockRecord)

/** @internal */
export type LockRecord = typeof LockRecord.Type

/** How long an unreadable (half-written) lock file or a `.break` file may live before it is stale. */
const UNREADABLE_GRACE_MILLIS = 5_000

const encoder = new TextEncoder()

const randomHex = (bytes: number): string => Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(bytes)))

/** Whether a process with this pid exists on this host (EPERM: it exists but belongs to someone else). @internal */
export const isProcessAlive = (pid: number): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return typeof e === "object" && e !== null && "code" in e && e.code === "EPERM"
  }
}

const readProc = (read: () => string): string => {
  try {
    return read().trim()
  } catch {
    return ""
  }
}

let namespaceCache: string | undefined

/**
 * Where this process's pid is meaningful: the kernel's boot id and the pid namespace (Linux;
 * empty elsewhere, where there are no pid namespaces). Two containers sharing a directory — even
 * with the same host name — see different pid namespaces: a pid written by one says nothing about
 * the other, so a lock is only broken by "its pid is gone" when it was written from this very
 * namespace; otherwise it is waited for until its lease expires.
 *
 * @internal
 */
export const currentNamespace = (): string => {
  if (namespaceCache === undefined) {
    const boot = readProc(() => NodeFs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8"))
    const pidns = readProc(() => NodeFs.readlinkSync("/proc/self/ns/pid"))
    namespaceCache = boot.length === 0 && pidns.length === 0 ? "" : `boot:${boot};${pidns}`
  }
  return namespaceCache
}

/** Whether `pid` of this lock can be checked here: same host name, boot and pid namespace. */
const pidIsLocal = (record: LockRecord): boolean =>
  record.host === Os.hostname() && record.namespace !== undefined && record.namespace === currentNamespace()

const isAlreadyExists = (e: PlatformError): boolean => e._tag === "SystemError" && e.reason === "AlreadyExists"
const isNotFound = (e: PlatformError): boolean => e._tag === "SystemError" && e.reason === "NotFound"

const ioError = (file: string, what: string) => (e: PlatformError): StorageError =>
  new StorageError({ reason: "Io", detail: `${what} ${file}: ${e.message}` })

/** Why acquisition must wait (internal signal for the retry schedule). */
class Busy {
  readonly _tag = "Busy"
}

/** The polling schedule: jittered exponential from 10 ms, capped at 250 ms. @internal */
export const pollSchedule = Schedule.exponential(Duration.millis(10), 1.5).pipe(
  Schedule.union(Schedule.spaced(Duration.millis(250))),
  Schedule.jittered
)

/**
 * Leases are wall-clock facts shared with other processes: acquisition, renewal and release
 * always use the real clock, even under a `TestClock` (the guarded effect keeps its own clock).
 */
const wallClock = Clock.make()
const onWallClock = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.withClock(self, wallClock)

/** A lock as held: its file and owner token. @internal */
export interface Held {
  readonly file: string
  readonly owner: string
}

/**
 * Reads and judges the current lock file: `None` when it is gone, else whether it is stale and
 * the exact text that was judged.
 */
const inspect = (fs: FileSystem.FileSystem, file: string) =>
  Effect.gen(function*() {
    const text = yield* NoFollow.readFile(file)
    if (Option.isNone(text)) return Option.none<{ stale: boolean; text: string; reason: string }>()
    const now = yield* Clock.currentTimeMillis
    const record = decodeLock(text.value)
    if (Either.isLeft(record)) {
      // Being written right now, or garbage: stale once it is old enough.
      const info = yield* fs.stat(file).pipe(Effect.option)
      const mtime = Option.flatMap(info, (i) => i.mtime)
      const old = Option.match(mtime, { onNone: () => true, onSome: (d) => now - d.getTime() > UNREADABLE_GRACE_MILLIS })
      return Option.some({ stale: old, text: text.value, reason: "the lock file is unreadable" })
    }
    const r = record.right
    if (r.expiresAt <= now) return Option.some({ stale: true, text: text.value, reason: `the lease of pid ${r.pid} expired` })
    if (pidIsLocal(r) && !isProcessAlive(r.pid)) {
      return Option.some({ stale: true, text: text.value, reason: `its holder (pid ${r.pid}) is gone` })
    }
    return Option.some({ stale: false, text: text.value, reason: "held" })
  })

/** Removes a stale lock, unless someone else is breaking it or it changed since it was judged. */
const breakStale = (fs: FileSystem.FileSystem, file: string, judged: string, reason: string) =>
  Effect.gen(function*() {
    const breaker = `${file}.break`
    const got = yield* fs.open(breaker, { flag: "wx", mode: 0o600 }).pipe(
      Effect.scoped,
      Effect.as(true),
      Effect.catchIf(isAlreadyExists, () => Effect.succeed(false)),
      Effect.mapError(ioError(breaker, "creating"))
    )
    if (!got) {
      // Another waiter is breaking it; a breaker that crashed leaves an old file behind.
      const now = yield* Clock.currentTimeMillis
      const info = yield* fs.stat(breaker).pipe(Effect.option)
      const old = Option.match(Option.flatMap(info, (i) => i.mtime), {
        onNone: () => false,
        onSome: (d) => now - d.getTime() > UNREADABLE_GRACE_MILLIS
      })
      if (old) yield* fs.remove(breaker).pipe(Effect.ignore)
      return
    }
    yield* Effect.gen(function*() {
      const current = yield* NoFollow.readFile(file).pipe(Effect.orElseSucceed(() => Option.none<string>()))
      if (Option.isSome(current) && current.value === judged) {
        yield* Effect.logWarning(`Breaking a stale token lock: ${reason}`).pipe(Effect.annotateLogs({ lock: file }))
        yield* fs.remove(file).pipe(Effect.catchIf(isNotFound, () => Effect.void), Effect.mapError(ioError(file, "removing")))
      }
    }).pipe(Effect.ensuring(fs.remove(breaker).pipe(Effect.ignore)))
  })

const recordFor = (owner: string, leaseMillis: number) =>
  Effect.map(Clock.currentTimeMillis, (now) =>
    JSON.stringify({
      format: LOCK_FORMAT,
      owner,
      pid: process.pid,
      host: Os.hostname(),
      namespace: currentNamespace(),
      acquiredAt: now,
      expiresAt: now + leaseMillis
    }))

/** One attempt: create the lock file exclusively, or judge the existing one. */
const tryAcquire = (fs: FileSystem.FileSystem, file: string, owner: string, leaseMillis: number) =>
  Effect.gen(function*() {
    const data = encoder.encode(yield* recordFor(owner, leaseMillis))
    const created = yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(file, { flag: "wx", mode: 0o600 })
      // created but not written (disk full…): remove our empty file rather than leave a lock behind
      yield* handle.writeAll(data).pipe(
        Effect.zipRight(handle.sync),
        Effect.onError(() => fs.remove(file).pipe(Effect.ignore))
      )
    })).pipe(
      Effect.as(true),
      Effect.catchIf(isAlreadyExists, () => Effect.succeed(false)),
      Effect.mapError(ioError(file, "creating the lock")),
      Effect.uninterruptible
    )
    if (created) return
    const state = yield* inspect(fs, file)
    if (Option.isNone(state)) return yield* Effect.fail(new Busy()) // released meanwhile: try again
    if (state.value.stale) yield* breakStale(fs, file, state.value.text, state.value.reason)
    return yield* Effect.fail(new Busy())
  })

/**
 * The least time a lease must have left for its holder to extend it. A waiter breaks a lease only
 * once it has expired; refusing to extend one that is about to expire keeps a holder that was
 * stalled (SIGSTOP, a suspended machine) from reviving a lease a waiter may be breaking.
 */
const extensionMargin = (leaseMillis: number) => Math.min(Math.floor(leaseMillis / 10), 1_000)

/**
 * Extends the lease to a full one if it is still `owner`'s and not about to expire; `false`
 * when it was lost (gone, someone else's, expired or within the margin of its expiry).
 */
const extendIfHeld = (fs: FileSystem.FileSystem, file: string, owner: string, leaseMillis: number) =>
  Effect.gen(function*() {
    const text = yield* NoFollow.readFile(file)
    if (Option.isNone(text)) return false
    const record = decodeLock(text.value)
    if (Either.isLeft(record) || record.right.owner !== owner) return false
    const now = yield* Clock.currentTimeMillis
    if (record.right.expiresAt - now <= extensionMargin(leaseMillis)) return false
    const temp = `${file}.${randomHex(6)}.tmp`
    yield* fs.writeFileString(temp, yield* recordFor(owner, leaseMillis), { mode: 0o600 }).pipe(
      Effect.zipRight(fs.rename(temp, file)),
      Effect.onError(() => fs.remove(temp).pipe(Effect.ignore)),
      Effect.mapError(ioError(file, "renewing the lease of")),
      Effect.uninterruptible
    )
    return true
  })

/** Renews the lease if it is still ours; `false` when it was lost. */
const renewOnce = (fs: FileSystem.FileSystem, file: string, owner: string, leaseMillis: number) =>
  extendIfHeld(fs, file, owner, leaseMillis).pipe(Effect.catchAll(() => Effect.succeed(true))) // an I/O failure is retried next period

/** Removes the lock file if it still names `owner`. */
const release = (fs: FileSystem.FileSystem, held: Held) =>
  Effect.gen(function*() {
    const text = yield* NoFollow.readFile(held.file).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    if (Option.isNone(text)) return
    const mine = Either.match(decodeLock(text.value), { onLeft: () => false, onRight: (r) => r.owner === held.owner })
    if (mine) yield* fs.remove(held.file).pipe(Effect.ignore)
  })

/**
 * Runs `use` while holding the lock file `file` (its directory must exist). `use` receives the
 * fencing check of this holding: it succeeds (and extends the lease to a full one) while the
 * lease is still ours, and fails with `StorageError` "Conflict" once it was lost.
 *
 * @internal
 */
export const withFileLease = (
  fs: FileSystem.FileSystem,
  file: string,
  options: FileLockOptions = {}
) =>
<A, E, R>(use: (ensureHeld: Effect.Effect<void, StorageError>) => Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> => {
  const leaseMillis = Duration.toMillis(options.lease ?? Duration.seconds(30))
  const timeout = options.acquireTimeout ?? Duration.minutes(10)
  const owner = randomHex(16)
  // Waiting is interruptible (timeouts, interruption of the caller) even though it runs as the
  // acquisition of acquireUseRelease; each creation attempt itself is uninterruptible.
  const acquire = tryAcquire(fs, file, owner, leaseMillis).pipe(
    Effect.retry({ schedule: pollSchedule, while: (e) => e instanceof Busy }),
    Effect.interruptible,
    Effect.mapError((e) =>
      e instanceof Busy ? new StorageError({ reason: "Conflict", detail: `the lock ${file} is held` }) : e
    ),
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new StorageError({
          reason: "Conflict",
          detail: `timed out after ${Duration.format(Duration.decode(timeout))} waiting for the lock ${file}`
        })
    }),
    Effect.as<Held>({ file, owner })
  )
  const renewal = (held: Held) =>
    options.renew === false
      ? Effect.succeed(Option.none<Fiber.RuntimeFiber<void>>())
      : renewOnce(fs, held.file, held.owner, leaseMillis).pipe(
        Effect.delay(Duration.millis(Math.max(1, Math.floor(leaseMillis / 3)))),
        Effect.repeat({ while: (stillMine) => stillMine }),
        Effect.flatMap(() =>
          Effect.logWarning("Lost a token lock while holding it (its lease was broken)").pipe(
            Effect.annotateLogs({ lock: held.file })
          )
        ),
        // forked from the (uninterruptible) acquisition: must itself be interruptible
        Effect.interruptible,
        Effect.forkDaemon,
        Effect.map(Option.some)
      )
  const ensureHeld = onWallClock(
    Effect.flatMap(extendIfHeld(fs, file, owner, leaseMillis), (held) =>
      held ? Effect.void : Effect.fail(
        new StorageError({
          reason: "Conflict",
          detail: `the lease of the lock ${file} was lost (it expired while its holder was stalled, ` +
            "and another process may have taken it)"
        })
      ))
  )
  return Effect.acquireUseRelease(
    onWallClock(Effect.flatMap(acquire, (held) => Effect.map(renewal(held), (fiber) => ({ held, fiber })))),
    () => use(ensureHeld),
    ({ fiber, held }) =>
      onWallClock(Effect.zipRight(
        Option.match(fiber, { onNone: () => Effect.void, onSome: Fiber.interrupt }),
        release(fs, held)
      ))
  )
}

/**
 * Runs `effect` while holding the lock file `file` (its directory must exist).
 *
 * @internal
 */
export const withFileLock = (
  fs: FileSystem.FileSystem,
  file: string,
  options: FileLockOptions = {}
) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
  withFileLease(fs, file, options)(() => effect)
