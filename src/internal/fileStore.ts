/**
 * The file-system token store: one private file per server key and kind, written atomically.
 *
 * - the directory is created with mode 0700 (and tightened to 0700 if it exists), files are
 *   created with mode 0600 (and tightened when read);
 * - symbolic links are never followed (`O_NOFOLLOW`, see `noFollow.ts`): a symlink in place of
 *   the directory or of an entry is a `StorageError`, so no read or mode change reaches its target;
 * - a write goes to a uniquely named temporary file in the same directory, is fsynced, then
 *   renamed over the destination (atomic on POSIX and on NTFS), then the directory is fsynced;
 * - file names are `<readable prefix>.<sha256 hex of the key>.<kind>.json`: the prefix is the key
 *   with every character outside `[A-Za-z0-9.-]` replaced, so no key can name a path outside the
 *   directory;
 * - a corrupted, truncated, empty or foreign file reads as absent with a logged warning.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import type { PlatformError } from "@effect/platform/Error"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import { StorageError } from "../Errors.js"
import type { StoredToken } from "../Schemas.js"
import type { SharedLock, TokenStorage, Versioned } from "./storageModel.js"
import * as FileLock from "./fileLock.js"
import * as Lease from "./lease.js"
import * as NoFollow from "./noFollow.js"
import * as Format from "./storageFormat.js"

/** @internal */
export const APP_DIRECTORY = "effect-mcp-oauth"

/** @internal */
export interface CacheEnvironment {
  readonly platform: string
  readonly XDG_CACHE_HOME?: string | undefined
  readonly HOME?: string | undefined
  readonly LOCALAPPDATA?: string | undefined
  readonly USERPROFILE?: string | undefined
}

const nonEmpty = (s: string | undefined): s is string => s !== undefined && s.length > 0

/**
 * The per-user cache directory of this library: `%LOCALAPPDATA%\effect-mcp-oauth` on Windows,
 * `~/Library/Caches/effect-mcp-oauth` on macOS, otherwise `$XDG_CACHE_HOME/effect-mcp-oauth`
 * (an absolute `XDG_CACHE_HOME` only, per the XDG Base Directory spec) or
 * `~/.cache/effect-mcp-oauth`.
 *
 * @see https://specifications.freedesktop.org/basedir-spec/latest/
 * @internal
 */
export const cacheDirectoryFor = (env: CacheEnvironment, path: Path.Path): Option.Option<string> => {
  switch (env.platform) {
    case "win32": {
      if (nonEmpty(env.LOCALAPPDATA)) return Option.some(path.join(env.LOCALAPPDATA, APP_DIRECTORY))
      if (nonEmpty(env.USERPROFILE)) return Option.some(path.join(env.USERPROFILE, "AppData", "Local", APP_DIRECTORY))
      return Option.none()
    }
    case "darwin":
      return nonEmpty(env.HOME) ? Option.some(path.join(env.HOME, "Library", "Caches", APP_DIRECTORY)) : Option.none()
    default: {
      if (nonEmpty(env.XDG_CACHE_HOME) && path.isAbsolute(env.XDG_CACHE_HOME)) {
        return Option.some(path.join(env.XDG_CACHE_HOME, APP_DIRECTORY))
      }
      return nonEmpty(env.HOME) ? Option.some(path.join(env.HOME, ".cache", APP_DIRECTORY)) : Option.none()
    }
  }
}

const currentPlatform = (): string => typeof process === "undefined" ? "unknown" : process.platform

const envVar = (name: string): Effect.Effect<string | undefined> =>
  Config.string(name).pipe(Config.option, Effect.map(Option.getOrUndefined), Effect.orElseSucceed(() => undefined))

/**
 * The default directory, from the environment (read through the current `ConfigProvider`).
 *
 * @internal
 */
export const defaultDirectory: Effect.Effect<string, StorageError, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const env: CacheEnvironment = {
    platform: currentPlatform(),
    XDG_CACHE_HOME: yield* envVar("XDG_CACHE_HOME"),
    HOME: yield* envVar("HOME"),
    LOCALAPPDATA: yield* envVar("LOCALAPPDATA"),
    USERPROFILE: yield* envVar("USERPROFILE")
  }
  return yield* Option.match(cacheDirectoryFor(env, path), {
    onNone: () =>
      Effect.fail(
        new StorageError({
          reason: "Io",
          detail: "cannot determine the user cache directory (no HOME / LOCALAPPDATA); pass a directory explicitly"
        })
      ),
    onSome: Effect.succeed
  })
})

const encoder = new TextEncoder()

const sha256Hex = (s: string): Effect.Effect<string> =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", encoder.encode(s))).pipe(
    Effect.map((d) => Encoding.encodeHex(new Uint8Array(d)))
  )

const PREFIX_MAX = 48

/** A readable, safe prefix: `https://api.example.com/mcp` → `https_api.example.com_mcp`. @internal */
export const readablePrefix = (key: string): string => {
  const cleaned = key.replace(/[^A-Za-z0-9.-]+/g, "_").replace(/\.{2,}/g, ".").replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, PREFIX_MAX)
  return cleaned.length > 0 ? cleaned : "server"
}

/** The file name of `key`'s entry of `kind`. @internal */
export const fileNameFor = (key: string, kind: Format.Kind): Effect.Effect<string> =>
  Effect.map(sha256Hex(key), (hex) => `${readablePrefix(key)}.${hex}.${kind}.json`)

const OWN_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}\.[0-9a-f]{64}\.(tokens|client|pending)\.json$/
const OWN_TEMP = /^\.[A-Za-z0-9][A-Za-z0-9._-]{0,47}\.[0-9a-f]{64}\.(tokens|client|pending)\.json\.[0-9a-f]{16}\.tmp$/

/** The kind of an entry file this library wrote, or `None` for any other file. @internal */
export const ownFileKind = (name: string): Option.Option<Format.Kind> => {
  const m = OWN_FILE.exec(name)
  return m === null ? Option.none() : Option.some(m[1] === "tokens" ? "tokens" : m[1] === "client" ? "client" : "pending")
}

/** Whether `name` is a temporary file this library left behind. @internal */
export const isOwnTemp = (name: string): boolean => OWN_TEMP.test(name)

const randomHex = (bytes: number): string => Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(bytes)))

const isNotFound = (e: PlatformError): boolean => e._tag === "SystemError" && e.reason === "NotFound"

const ioError = (key: string | undefined, what: string) => (e: PlatformError): StorageError =>
  new StorageError(
    key === undefined
      ? { reason: "Io", detail: `${what}: ${e.message}` }
      : { reason: "Io", key, detail: `${what}: ${e.message}` }
  )

const FILE_MODE = 0o600
const DIR_MODE = 0o700

/** @internal */
export interface FileStoreOptions {
  /** How records are transformed at rest (encryption); default plain JSON. */
  readonly codec?: Format.RecordCodec | undefined
}

/** The short lock that makes a token write's read-compare-write atomic across processes. */
const WRITE_LOCK: FileLock.FileLockOptions = {
  lease: Duration.seconds(10),
  acquireTimeout: Duration.seconds(60),
  renew: false
}

const conflict = (key: string, expected: number, found: number) =>
  new StorageError({
    reason: "Conflict",
    key,
    detail: `the tokens were written by someone else (expected revision ${expected}, found ${found})`
  })

/**
 * The cross-process lock shared by the processes using one token directory: one lock file per
 * server key (`<readable prefix>.<sha256 of the key>.lock`) holding a lease (see `fileLock.ts`).
 * The effect it guards runs with the lease as its `Lease` (fencing).
 *
 * @internal
 */
export const makeLock = (
  directory: Either.Either<string, StorageError>,
  fs: FileSystem.FileSystem,
  path: Path.Path,
  options: Pick<FileLock.FileLockOptions, "lease" | "acquireTimeout"> = {}
): SharedLock => ({
  withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
    Effect.gen(function*() {
      const d = path.resolve(yield* directory)
      yield* NoFollow.ensureDirectory(d)
      const name = (yield* fileNameFor(key, "tokens")).replace(/\.tokens\.json$/, ".lock")
      return yield* FileLock.withFileLease(fs, path.join(d, name), {
        lease: options.lease,
        acquireTimeout: options.acquireTimeout
      })((ensureHeld) => Lease.provide({ key, ensureHeld })(effect))
    }).pipe(Effect.withSpan("TokenLock.withLock", { attributes: { "tokenLock.backend": "file", "tokenLock.key": key } }))
})

/** What every operation of one store needs: where it lives, how to reach it, how records are sealed. */
interface Store {
  readonly dir: Either.Either<string, StorageError>
  readonly fs: FileSystem.FileSystem
  readonly path: Path.Path
  readonly codec: Format.RecordCodec
  /** POSIX modes (0700 / 0600) are set and checked; not on Windows. */
  readonly enforceModes: boolean
}

const ensureStoreDirectory = (store: Store, key: string | undefined) =>
  Effect.gen(function*() {
    const d = yield* store.dir
    yield* NoFollow.ensureDirectory(d, { key, privateMode: store.enforceModes ? DIR_MODE : undefined })
    return d
  })

/** Reads a file of the store: never through a symlink; a looser mode is tightened first. */
const readOwnFile = (store: Store, file: string, key: string | undefined) =>
  NoFollow.readFile(file, { key, privateMode: store.enforceModes ? FILE_MODE : undefined })

/** Opens a stored record with the codec: the envelope JSON, or why it reads as absent. */
const openRecord = (store: Store, stored: string, name: string, key: string | undefined) =>
  store.codec.decode(stored, { location: name }).pipe(
    Effect.mapError((e) =>
      key === undefined || e.key !== undefined ? e : new StorageError({ reason: e.reason, key, detail: e.detail })
    )
  )

/** The entry of `key` with its revision; `None` when absent, or unreadable (with a logged warning). */
const readVersioned = <A, I>(
  store: Store,
  entry: Format.Entry<A, I>,
  key: string
): Effect.Effect<Option.Option<Versioned<A>>, StorageError> =>
  Effect.gen(function*() {
    const d = yield* store.dir
    const name = yield* fileNameFor(key, entry.kind)
    const file = store.path.join(d, name)
    const text = yield* readOwnFile(store, file, key)
    if (Option.isNone(text)) return Option.none()
    const decoded = Either.flatMap(yield* openRecord(store, text.value, name, key), (plain) =>
      Format.decodeVersionedFor(entry, key, plain))
    if (Either.isLeft(decoded)) {
      yield* Format.warnRejected(decoded.left, { key, location: file })
      return Option.none()
    }
    return Option.some(decoded.right)
  })

/** Writes the entry atomically: a private temporary file, fsynced, renamed over the old one. */
const writeEntry = <A, I>(
  store: Store,
  entry: Format.Entry<A, I>,
  key: string,
  value: A,
  revision?: number
): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const { fs, path } = store
    const name = yield* fileNameFor(key, entry.kind)
    const plain = yield* Format.encode(entry, key, value, revision)
    const data = encoder.encode(yield* store.codec.encode(plain, { location: name }))
    const d = yield* ensureStoreDirectory(store, key)
    const file = path.join(d, name)
    const temp = path.join(d, `.${name}.${randomHex(8)}.tmp`)
    // uninterruptible: an interrupted write must neither leave a temporary file nor half a rename
    yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(temp, { flag: "wx", mode: FILE_MODE })
      yield* handle.writeAll(data)
      yield* handle.sync
    })).pipe(
      Effect.zipRight(fs.rename(temp, file)),
      Effect.onError(() => fs.remove(temp).pipe(Effect.ignore)),
      Effect.mapError(ioError(key, `writing ${file}`)),
      Effect.uninterruptible
    )
    // make the rename itself durable; not every platform can fsync a directory
    yield* Effect.scoped(Effect.flatMap(fs.open(d, { flag: "r" }), (h) => h.sync)).pipe(Effect.ignore)
  })

const removeEntry = (store: Store, key: string, kind: Format.Kind): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const d = yield* store.dir
    const file = store.path.join(d, yield* fileNameFor(key, kind))
    yield* store.fs.remove(file).pipe(
      Effect.catchIf(isNotFound, () => Effect.void),
      Effect.mapError(ioError(key, `removing ${file}`))
    )
  })

/** The directory and the names in it (none when it does not exist yet). */
const listDirectory = (store: Store) =>
  Effect.gen(function*() {
    const d = yield* store.dir
    const names = yield* store.fs.readDirectory(d).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed<ReadonlyArray<string>>([])),
      Effect.mapError(ioError(undefined, `listing ${d}`))
    )
    return { d, names }
  })

/** The server keys of the readable entries whose file name matches the key inside them, sorted. */
const storedKeys = (store: Store) =>
  Effect.gen(function*() {
    const { d, names } = yield* listDirectory(store)
    const found = new Set<string>()
    for (const name of names) {
      const kind = ownFileKind(name)
      // a sign-in in progress alone does not make a server known
      if (Option.isNone(kind) || kind.value === "pending") continue
      const file = store.path.join(d, name)
      const text = yield* readOwnFile(store, file, undefined) // None: removed concurrently
      if (Option.isNone(text)) continue
      const opened = yield* openRecord(store, text.value, name, undefined)
      const decoded = Either.flatMap(opened, (plain) =>
        kind.value === "tokens"
          ? Either.map(Format.decodeAny(Format.tokensEntry, plain), (e) => e.key)
          : Either.map(Format.decodeAny(Format.clientEntry, plain), (e) => e.key))
      if (Either.isLeft(decoded)) {
        yield* Format.warnRejected(decoded.left, { location: file })
        continue
      }
      if ((yield* fileNameFor(decoded.right, kind.value)) !== name) {
        yield* Format.warnRejected("the entry belongs to another server key", { location: file })
        continue
      }
      found.add(decoded.right)
    }
    return Array.from(found).sort()
  })

/** Removes every entry and leftover temporary file of this library; other files stay. */
const removeAllEntries = (store: Store) =>
  Effect.gen(function*() {
    const { d, names } = yield* listDirectory(store)
    for (const name of names) {
      if (Option.isNone(ownFileKind(name)) && !isOwnTemp(name)) continue
      const file = store.path.join(d, name)
      yield* store.fs.remove(file).pipe(
        Effect.catchIf(isNotFound, () => Effect.void),
        Effect.mapError(ioError(undefined, `removing ${file}`))
      )
    }
  })

type TokenWriteLock = (
  key: string
) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>

/** One writer of a key's tokens at a time: this process's fibers, then other processes. */
const makeTokenWriteLock = (store: Store): TokenWriteLock => {
  const semaphores = new Map<string, Effect.Semaphore>()
  return (key) => (effect) =>
    Effect.gen(function*() {
      let semaphore = semaphores.get(key)
      if (semaphore === undefined) {
        semaphore = Effect.unsafeMakeSemaphore(1)
        semaphores.set(key, semaphore)
      }
      const d = yield* ensureStoreDirectory(store, key)
      const lockFile = store.path.join(d, `.${yield* fileNameFor(key, "tokens")}.lock`)
      return yield* semaphore.withPermits(1)(FileLock.withFileLock(store.fs, lockFile, WRITE_LOCK)(effect))
    })
}

const revisionOf = (current: Option.Option<Versioned<StoredToken>>): number =>
  Option.match(current, { onNone: () => 0, onSome: (v) => v.revision })

// Every token write and removal below is fenced (Lease.ensureHeld): inside a TokenLock whose
// lease was lost, it fails with "Conflict" instead of replacing what the new holder stored.

/** Writes the tokens as the next revision; returns it. */
const setTokensNext = (store: Store, lock: TokenWriteLock, key: string, tokens: StoredToken) =>
  lock(key)(Effect.gen(function*() {
    const revision = revisionOf(yield* readVersioned(store, Format.tokensEntry, key)) + 1
    yield* Lease.ensureHeld
    yield* writeEntry(store, Format.tokensEntry, key, tokens, revision)
    return revision
  }))

/** Writes the tokens only when the stored revision is still `expected`; else a "Conflict". */
const setTokensIf = (store: Store, lock: TokenWriteLock, key: string, tokens: StoredToken, expected: number) =>
  lock(key)(Effect.gen(function*() {
    const found = revisionOf(yield* readVersioned(store, Format.tokensEntry, key))
    if (found !== expected) return yield* Effect.fail(conflict(key, expected, found))
    yield* Lease.ensureHeld
    yield* writeEntry(store, Format.tokensEntry, key, tokens, expected + 1)
    return expected + 1
  }))

/** Removes the tokens only when the stored revision is still `expected`; else a "Conflict". */
const clearTokensIf = (store: Store, lock: TokenWriteLock, key: string, expected: number) =>
  lock(key)(Effect.gen(function*() {
    const found = revisionOf(yield* readVersioned(store, Format.tokensEntry, key))
    if (found !== expected) return yield* Effect.fail(conflict(key, expected, found))
    yield* Lease.ensureHeld
    yield* removeEntry(store, key, "tokens")
  }))

/**
 * Builds the store over `directory` (resolved once by the caller; a failure to resolve it makes
 * every operation fail with that `StorageError`).
 *
 * @internal
 */
export const make = (
  directory: Either.Either<string, StorageError>,
  fs: FileSystem.FileSystem,
  path: Path.Path,
  options: FileStoreOptions = {}
): TokenStorage => {
  const store: Store = {
    dir: Either.map(directory, (d) => path.resolve(d)),
    fs,
    path,
    codec: options.codec ?? Format.plainCodec,
    enforceModes: currentPlatform() !== "win32"
  }
  const lock = makeTokenWriteLock(store)
  const read = <A, I>(entry: Format.Entry<A, I>, key: string): Effect.Effect<Option.Option<A>, StorageError> =>
    Effect.map(readVersioned(store, entry, key), Option.map((v) => v.value))
  const remove = (key: string, kind: Format.Kind) => removeEntry(store, key, kind)
  return {
    getTokens: (key) => read(Format.tokensEntry, key),
    setTokens: (key, tokens) => Effect.asVoid(setTokensNext(store, lock, key, tokens)),
    clearTokens: (key) => Effect.zipRight(Lease.ensureHeld, remove(key, "tokens")),
    getClient: (key) => read(Format.clientEntry, key),
    setClient: (key, client) => writeEntry(store, Format.clientEntry, key, client),
    clearClient: (key) => remove(key, "client"),
    clear: (key) =>
      Effect.zipRight(
        Lease.ensureHeld,
        Effect.forEach(["tokens", "client", "pending"] as const, (kind) => remove(key, kind), { discard: true })
      ),
    clearAll: removeAllEntries(store),
    keys: storedKeys(store),
    revisions: {
      getTokens: (key) => readVersioned(store, Format.tokensEntry, key),
      setTokens: (key, tokens, expected) => setTokensIf(store, lock, key, tokens, expected),
      clearTokens: (key, expected) => clearTokensIf(store, lock, key, expected)
    },
    lock: makeLock(directory, fs, path),
    pendingAuthorizations: {
      get: (key) => read(Format.pendingEntry, key),
      set: (key, pending) => writeEntry(store, Format.pendingEntry, key, pending),
      clear: (key) => remove(key, "pending")
    }
  }
}
