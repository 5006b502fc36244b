/**
 * The file-system token store: one private file per server key and kind, written atomically.
 *
 * - the directory is created with mode 0700 (and tightened to 0700 if it exists), files are
 *   created with mode 0600 (and tightened when read);
 * - a write goes to a uniquely named temporary file in the same directory, is fsynced, then
 *   renamed over the destination (atomic on POSIX and on NTFS), then the directory is fsynced;
 * - file names are `<readable prefix>.<sha256 hex of the key>.<kind>.json`: the prefix is the key
 *   with every character outside `[A-Za-z0-9.-]` replaced, so no key can name a path outside the
 *   directory;
 * - a corrupted, truncated, empty or foreign file reads as absent with a logged warning.
 *
 * @internal
 */
import type { FileSystem } from "@effect/platform"
import { Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Config, Effect, Either, Encoding, Option } from "effect"
import { StorageError } from "../Errors.js"
import type { TokenStorage } from "../TokenStorage.js"
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

const OWN_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}\.[0-9a-f]{64}\.(tokens|client)\.json$/
const OWN_TEMP = /^\.[A-Za-z0-9][A-Za-z0-9._-]{0,47}\.[0-9a-f]{64}\.(tokens|client)\.json\.[0-9a-f]{16}\.tmp$/

/** The kind of an entry file this library wrote, or `None` for any other file. @internal */
export const ownFileKind = (name: string): Option.Option<Format.Kind> => {
  const m = OWN_FILE.exec(name)
  return m === null ? Option.none() : Option.some(m[1] === "tokens" ? "tokens" : "client")
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

/**
 * Builds the store over `directory` (resolved once by the caller; a failure to resolve it makes
 * every operation fail with that `StorageError`).
 *
 * @internal
 */
export const make = (
  directory: Either.Either<string, StorageError>,
  fs: FileSystem.FileSystem,
  path: Path.Path
): TokenStorage => {
  const enforceModes = currentPlatform() !== "win32"
  const dir = Either.map(directory, (d) => path.resolve(d))

  const ensureDirectory = (key: string | undefined) =>
    Effect.gen(function*() {
      const d = yield* dir
      yield* fs.makeDirectory(d, { recursive: true, mode: DIR_MODE })
      if (enforceModes) {
        const info = yield* fs.stat(d)
        if ((info.mode & 0o777) !== DIR_MODE) yield* fs.chmod(d, DIR_MODE)
      }
      return d
    }).pipe(Effect.mapError((e) => e._tag === "StorageError" ? e : ioError(key, "creating the directory")(e)))

  const tightenFile = (file: string) =>
    enforceModes
      ? fs.stat(file).pipe(
        Effect.flatMap((info) => (info.mode & 0o077) === 0 ? Effect.void : fs.chmod(file, FILE_MODE)),
        Effect.catchAll((e) => Effect.logDebug(`could not restrict the permissions of ${file}: ${e.message}`))
      )
      : Effect.void

  const read = <A, I>(entry: Format.Entry<A, I>, key: string): Effect.Effect<Option.Option<A>, StorageError> =>
    Effect.gen(function*() {
      const d = yield* dir
      const file = path.join(d, yield* fileNameFor(key, entry.kind))
      const text = yield* fs.readFileString(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeedNone),
        Effect.mapError(ioError(key, `reading ${file}`))
      )
      if (Option.isNone(text)) return Option.none()
      yield* tightenFile(file)
      const decoded = Format.decodeFor(entry, key, text.value)
      if (Either.isLeft(decoded)) {
        yield* Format.warnRejected(decoded.left, { key, location: file })
        return Option.none()
      }
      return Option.some(decoded.right)
    })

  const write = <A, I>(entry: Format.Entry<A, I>, key: string, value: A): Effect.Effect<void, StorageError> =>
    Effect.gen(function*() {
      const data = encoder.encode(yield* Format.encode(entry, key, value))
      const d = yield* ensureDirectory(key)
      const name = yield* fileNameFor(key, entry.kind)
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

  const remove = (key: string, kind: Format.Kind): Effect.Effect<void, StorageError> =>
    Effect.gen(function*() {
      const d = yield* dir
      const file = path.join(d, yield* fileNameFor(key, kind))
      yield* fs.remove(file).pipe(
        Effect.catchIf(isNotFound, () => Effect.void),
        Effect.mapError(ioError(key, `removing ${file}`))
      )
    })

  const listOwn = Effect.gen(function*() {
    const d = yield* dir
    const names = yield* fs.readDirectory(d).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed<ReadonlyArray<string>>([])),
      Effect.mapError(ioError(undefined, `listing ${d}`))
    )
    return { d, names }
  })

  const keys = Effect.gen(function*() {
    const { d, names } = yield* listOwn
    const found = new Set<string>()
    for (const name of names) {
      const kind = ownFileKind(name)
      if (Option.isNone(kind)) continue
      const file = path.join(d, name)
      const text = yield* fs.readFileString(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeedNone), // removed concurrently
        Effect.mapError(ioError(undefined, `reading ${file}`))
      )
      if (Option.isNone(text)) continue
      const decoded = kind.value === "tokens"
        ? Either.map(Format.decodeAny(Format.tokensEntry, text.value), (e) => e.key)
        : Either.map(Format.decodeAny(Format.clientEntry, text.value), (e) => e.key)
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

  const clearAll = Effect.gen(function*() {
    const { d, names } = yield* listOwn
    for (const name of names) {
      if (Option.isNone(ownFileKind(name)) && !isOwnTemp(name)) continue
      const file = path.join(d, name)
      yield* fs.remove(file).pipe(
        Effect.catchIf(isNotFound, () => Effect.void),
        Effect.mapError(ioError(undefined, `removing ${file}`))
      )
    }
  })

  return {
    getTokens: (key) => read(Format.tokensEntry, key),
    setTokens: (key, tokens) => write(Format.tokensEntry, key, tokens),
    clearTokens: (key) => remove(key, "tokens"),
    getClient: (key) => read(Format.clientEntry, key),
    setClient: (key, client) => write(Format.clientEntry, key, client),
    clearClient: (key) => remove(key, "client"),
    clear: (key) => Effect.zipRight(remove(key, "tokens"), remove(key, "client")),
    clearAll,
    keys
  }
}
