/**
 * File operations that never follow a symbolic link at the last path component, for the token
 * store and its locks: a symlink planted where a token file, a lock file or the store directory
 * should be would otherwise make a read (or the mode tightening that follows it) act on the
 * link's target — e.g. `chmod 0600` on a file elsewhere. Files are opened with `O_NOFOLLOW` (and
 * `O_NONBLOCK`, so a FIFO cannot block a read), checked with `fstat` on the open descriptor, and
 * tightened with `fchmod` on that descriptor: no window in which the path can be swapped.
 * On platforms without `O_NOFOLLOW` (Windows), an `lstat` check comes first.
 *
 * @see https://pubs.opengroup.org/onlinepubs/9799919799/functions/open.html
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import { StorageError } from "../Errors.js"

const O_NOFOLLOW = NodeFs.constants.O_NOFOLLOW ?? 0
const O_NONBLOCK = NodeFs.constants.O_NONBLOCK ?? 0
const O_DIRECTORY = NodeFs.constants.O_DIRECTORY ?? 0

const codeOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const messageOf = (e: unknown): string => e instanceof Error ? e.message : String(e)

/** The `StorageError` for a symbolic link found where a file or directory of the store belongs. @internal */
export const symlinkRefused = (path: string, key?: string): StorageError =>
  new StorageError({
    reason: "Io",
    ...(key === undefined ? {} : { key }),
    detail: `${path} is a symbolic link; the token store never follows symbolic links`
  })

const refuseIfSymlink = (path: string, key: string | undefined) =>
  O_NOFOLLOW !== 0
    ? Effect.void
    : Effect.tryPromise({ try: () => NodeFs.promises.lstat(path), catch: (e) => e }).pipe(
      Effect.flatMap((info) => info.isSymbolicLink() ? Effect.fail(symlinkRefused(path, key)) : Effect.void),
      Effect.catchAll((e) => e instanceof StorageError ? Effect.fail(e) : Effect.void)
    )

const openError = (path: string, key: string | undefined, what: string) => (e: unknown): StorageError =>
  codeOf(e) === "ELOOP"
    ? symlinkRefused(path, key)
    : new StorageError({ reason: "Io", ...(key === undefined ? {} : { key }), detail: `${what} ${path}: ${messageOf(e)}` })

/**
 * Reads the regular file `path` as UTF-8 without following a symlink; `None` when it does not
 * exist. With `privateMode`, a file readable or writable by group or others is first tightened
 * to that mode on the open descriptor (a failure to do so is only logged). A symlink, or anything
 * that is not a regular file, is a `StorageError` reason `"Io"`.
 *
 * @internal
 */
export const readFile = (
  path: string,
  options: { readonly key?: string | undefined; readonly privateMode?: number | undefined } = {}
): Effect.Effect<Option.Option<string>, StorageError> =>
  Effect.gen(function*() {
    yield* refuseIfSymlink(path, options.key)
    const opened = yield* Effect.tryPromise({
      try: () => NodeFs.promises.open(path, NodeFs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK),
      catch: (e) => e
    }).pipe(
      Effect.map(Option.some),
      Effect.catchAll((e) =>
        codeOf(e) === "ENOENT" ? Effect.succeedNone : Effect.fail(openError(path, options.key, "reading")(e))
      )
    )
    if (Option.isNone(opened)) return Option.none()
    const handle = opened.value
    return yield* Effect.gen(function*() {
      const info = yield* Effect.tryPromise({ try: () => handle.stat(), catch: openError(path, options.key, "reading") })
      if (!info.isFile()) {
        return yield* Effect.fail(
          new StorageError({
            reason: "Io",
            ...(options.key === undefined ? {} : { key: options.key }),
            detail: `${path} is not a regular file`
          })
        )
      }
      const mode = options.privateMode
      if (mode !== undefined && process.platform !== "win32" && (info.mode & 0o077) !== 0) {
        yield* Effect.tryPromise({ try: () => handle.chmod(mode), catch: messageOf }).pipe(
          Effect.catchAll((m) => Effect.logDebug(`could not restrict the permissions of ${path}: ${m}`))
        )
      }
      return Option.some(
        yield* Effect.tryPromise({
          try: () => handle.readFile({ encoding: "utf8" }),
          catch: openError(path, options.key, "reading")
        })
      )
    }).pipe(Effect.ensuring(Effect.promise(() => handle.close().catch(() => undefined))))
  })

/**
 * Creates `path` (and its parents) if needed, refuses it when it is a symbolic link or not a
 * directory, and with `privateMode` sets that mode on it through a descriptor opened with
 * `O_NOFOLLOW | O_DIRECTORY` (never on a link's target). Parents may be symlinks (a symlinked
 * `~/.cache` is common); only the store's own directory may not.
 *
 * @internal
 */
export const ensureDirectory = (
  path: string,
  options: { readonly key?: string | undefined; readonly privateMode?: number | undefined } = {}
): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const key = options.key
    yield* Effect.tryPromise({
      try: () => NodeFs.promises.mkdir(path, { recursive: true, mode: options.privateMode ?? 0o700 }),
      catch: openError(path, key, "creating the directory")
    })
    const info = yield* Effect.tryPromise({
      try: () => NodeFs.promises.lstat(path),
      catch: openError(path, key, "creating the directory")
    })
    if (info.isSymbolicLink()) return yield* Effect.fail(symlinkRefused(path, key))
    if (!info.isDirectory()) {
      return yield* Effect.fail(
        new StorageError({ reason: "Io", ...(key === undefined ? {} : { key }), detail: `${path} is not a directory` })
      )
    }
    const mode = options.privateMode
    if (mode === undefined || process.platform === "win32" || (info.mode & 0o777) === mode) return
    const handle = yield* Effect.tryPromise({
      try: () => NodeFs.promises.open(path, NodeFs.constants.O_RDONLY | O_NOFOLLOW | O_DIRECTORY),
      catch: openError(path, key, "creating the directory")
    })
    yield* Effect.tryPromise({ try: () => handle.chmod(mode), catch: openError(path, key, "restricting the mode of") })
      .pipe(Effect.ensuring(Effect.promise(() => handle.close().catch(() => undefined))))
  })
