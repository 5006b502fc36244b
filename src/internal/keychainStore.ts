/**
 * The OS keychain token store (macOS Keychain, Windows Credential Manager, Linux Secret Service)
 * on `@napi-rs/keyring`, an optional peer dependency loaded on demand.
 *
 * The records are the key-value store's (`kvStore.ts`): the same versioned, issuer-bound
 * envelopes and the same index entry, one keychain entry per record under one service name.
 * What a keychain adds:
 *
 * - size: Windows Credential Manager holds at most 2560 bytes per credential, so a record longer
 *   than `maxEntryLength` is split: the primary entry carries a header (`emo-keychain/1 <count>
 *   <sha256>`) and the first part, the other parts live in entries named after the primary plus
 *   the first 16 hex digits of the digest, so a write puts the new parts first, then switches the
 *   primary, then removes the old parts — a reader never sees half of two records;
 * - atomicity: a keychain has no compare-and-set, so every write runs under a lock file (a lease,
 *   `fileLock.ts`) in the lock directory, which makes revisions and the index safe across
 *   processes; the `TokenLock` it brings is the file store's lock in the same directory.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import { SystemError } from "@effect/platform/Error"
import type { PlatformError } from "@effect/platform/Error"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import { StorageError } from "../Errors.js"
import type { TokenStorage } from "./storageModel.js"
import * as FileLock from "./fileLock.js"
import * as FileStore from "./fileStore.js"
import * as KvStore from "./kvStore.js"
import * as NoFollow from "./noFollow.js"
import * as Format from "./storageFormat.js"

/** @internal */
export const DEFAULT_SERVICE = "effect-mcp-oauth"

/**
 * The longest value of one entry on Windows: Credential Manager stores at most 2560 bytes per
 * credential and keyring stores passwords there as UTF-16, two bytes per code unit.
 *
 * @internal
 */
export const WINDOWS_MAX_ENTRY_LENGTH = 1200

/** The shortest entry length a store accepts: room for the header and some data. @internal */
export const MIN_ENTRY_LENGTH = 128

/** One keychain entry, as the binding's `AsyncEntry` offers it. @internal */
export interface KeyringEntry {
  readonly getPassword: () => Promise<string | null | undefined>
  readonly setPassword: (password: string) => Promise<void>
  readonly deleteCredential: () => Promise<boolean>
}

/** Opens the entry `account` of `service`. @internal */
export type Keyring = (service: string, account: string) => KeyringEntry

/** @internal */
export interface KeychainStoreOptions {
  readonly service?: string | undefined
  readonly maxEntryLength?: number | undefined
  readonly lockDirectory?: string | undefined
  readonly linuxStore?: "secret-service" | "keyutils" | undefined
}

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/**
 * Loads `@napi-rs/keyring` and returns its entries, pinned on Linux to `linuxStore` (default the
 * Secret Service: the binding's own fallback, the kernel keyring, forgets everything at logout).
 * Fails with `StorageError` "Unavailable" when the package is missing.
 *
 * @internal
 */
export const loadKeyring = (
  linuxStore: "secret-service" | "keyutils" = "secret-service",
  specifier = "@napi-rs/keyring"
): Effect.Effect<Keyring, StorageError> =>
  Effect.tryPromise({
    try: async () => {
      const module: typeof import("@napi-rs/keyring") = await import(specifier)
      const AsyncEntry = module.AsyncEntry
      return (service: string, account: string): KeyringEntry =>
        new AsyncEntry(service, account, { linux: { store: linuxStore } })
    },
    catch: (cause) =>
      new StorageError({
        reason: "Unavailable",
        detail: `the keychain storage needs the @napi-rs/keyring package (npm install @napi-rs/keyring): ${
          describe(cause)
        }`
      })
  })

const PROBE_ACCOUNT = `${KvStore.NAMESPACE}probe`

/**
 * Whether the platform's keychain answers: reads an entry that is never written. Fails with
 * `StorageError` "Unavailable" naming the platform's reason (no D-Bus session, no Secret
 * Service, a locked keyring that cannot prompt…).
 *
 * @internal
 */
export const probe = (keyring: Keyring, service: string): Effect.Effect<void, StorageError> =>
  Effect.tryPromise({
    try: () => keyring(service, PROBE_ACCOUNT).getPassword(),
    catch: (cause) =>
      new StorageError({ reason: "Unavailable", detail: `the OS keychain cannot be used: ${describe(cause)}` })
  }).pipe(Effect.asVoid)

const platformError = (method: string, account: string) => (cause: unknown): PlatformError =>
  new SystemError({
    reason: "Unknown",
    module: "KeyValueStore",
    method,
    pathOrDescriptor: account,
    description: `keychain: ${describe(cause)}`,
    cause
  })

const HEADER = "emo-keychain/1"
const HEADER_PATTERN = /^emo-keychain\/1 ([1-9][0-9]{0,5}) ([0-9a-f]{64})\n/

/** The header of a split record: how many parts and the SHA-256 of the whole text. @internal */
export interface Split {
  readonly count: number
  readonly digest: string
}

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** The name of part `index` (≥ 1) of the record in `account` whose digest is `digest`. @internal */
export const partAccount = (account: string, digest: string, index: number): string =>
  `${account}#${digest.slice(0, 16)}.${index}`

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff

/** Cuts `text` into pieces of at most `size` code units, never between the halves of a surrogate pair. */
const cut = (text: string, size: number): Array<string> => {
  const pieces: Array<string> = []
  let at = 0
  while (at < text.length) {
    let end = Math.min(at + size, text.length)
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--
    pieces.push(text.slice(at, end))
    at = end
  }
  return pieces.length === 0 ? [""] : pieces
}

/**
 * Splits a record into the primary entry's value and the parts stored beside it, each at most
 * `maxLength` code units long.
 *
 * @internal
 */
export const split = (
  text: string,
  maxLength: number
): { readonly primary: string; readonly parts: ReadonlyArray<string>; readonly split: Split } => {
  const digest = sha256(text)
  // the header is at most this long (a count of up to 6 digits)
  const room = maxLength - (HEADER.length + 1 + 6 + 1 + 64 + 1)
  const pieces = cut(text, Math.max(1, room))
  const header = `${HEADER} ${pieces.length} ${digest}\n`
  return { primary: header + pieces[0], parts: pieces.slice(1), split: { count: pieces.length, digest } }
}

/** The header of a primary entry and its first part, or `None` for a value that has none. @internal */
export const parseHeader = (primary: string): Option.Option<Split & { readonly first: string }> => {
  const m = HEADER_PATTERN.exec(primary)
  if (m === null) return Option.none()
  return Option.some({ count: Number(m[1]), digest: m[2] ?? "", first: primary.slice(m[0].length) })
}

/** The short lock that makes a keychain write (and a compare-and-set) atomic across processes. */
const WRITE_LOCK: FileLock.FileLockOptions = {
  lease: Duration.seconds(10),
  acquireTimeout: Duration.seconds(60),
  renew: false
}

const READ_ATTEMPTS = 3

const sameValue = Option.getEquivalence<string>((a, b) => a === b)

/** The keychain entries of one service. */
interface Entries {
  readonly keyring: Keyring
  readonly service: string
}

const getRaw = (entries: Entries, account: string) =>
  Effect.tryPromise({
    try: () => entries.keyring(entries.service, account).getPassword(),
    catch: platformError("get", account)
  }).pipe(Effect.map((v) => Option.fromNullable(v)))

const setRaw = (entries: Entries, account: string, value: string) =>
  Effect.tryPromise({
    try: () => entries.keyring(entries.service, account).setPassword(value),
    catch: platformError("set", account)
  })

const removeRaw = (entries: Entries, account: string) =>
  Effect.tryPromise({
    try: () => entries.keyring(entries.service, account).deleteCredential(),
    catch: platformError("remove", account)
  }).pipe(Effect.asVoid)

/**
 * The record in `account`: the primary entry alone, or joined with its parts. A record whose
 * parts are missing or do not match the digest is returned as its primary entry (which the
 * envelope decoder then rejects: it reads as absent, with a warning), after a re-read in case a
 * writer was switching it.
 */
const readRecord = (
  entries: Entries,
  account: string
): Effect.Effect<{ readonly primary: Option.Option<string>; readonly value: Option.Option<string> }, PlatformError> =>
  Effect.gen(function*() {
    for (let attempt = 1;; attempt++) {
      const primary = yield* getRaw(entries, account)
      if (Option.isNone(primary)) return { primary, value: primary }
      const header = parseHeader(primary.value)
      if (Option.isNone(header)) return { primary, value: primary }
      const { count, digest, first } = header.value
      const pieces = [first]
      for (let i = 1; i < count; i++) {
        const part = yield* getRaw(entries, partAccount(account, digest, i))
        if (Option.isNone(part)) break
        pieces.push(part.value)
      }
      const whole = pieces.join("")
      if (pieces.length === count && sha256(whole) === digest) return { primary, value: Option.some(whole) }
      const again = yield* getRaw(entries, account)
      if (attempt < READ_ATTEMPTS && !sameValue(again, primary)) continue
      yield* Effect.logWarning(
        pieces.length === count
          ? "A keychain record does not match its digest"
          : `A keychain record is missing part ${pieces.length} of ${count}`
      ).pipe(Effect.annotateLogs({ service: entries.service, account }))
      return { primary, value: primary }
    }
  })

/** The parts beside the primary entry of a split record. */
const partsOfSplit = (record: Split): ReadonlyArray<{ digest: string; index: number }> =>
  Array.from({ length: record.count - 1 }, (_, i) => ({ digest: record.digest, index: i + 1 }))

/** The split record a primary entry heads, if any. */
const splitOf = (primary: Option.Option<string>): Option.Option<Split> =>
  Option.filter(Option.flatMap(primary, parseHeader), (header) => header.count > 1)

/**
 * The entry naming the split records whose parts a write or removal under way touches: if the
 * process dies (or the keychain fails) between the parts and the primary entry, the next write
 * of `account` finds in it the parts no primary entry names any more, and removes them.
 *
 * @internal
 */
export const journalAccount = (account: string): string => `${account}#journal`

const JOURNAL_LINE = /^([1-9][0-9]{0,5}) ([0-9a-f]{64})$/

const formatJournal = (records: ReadonlyArray<Split>): string => records.map((r) => `${r.count} ${r.digest}`).join("\n")

const parseJournal = (text: string): ReadonlyArray<Split> =>
  text.split("\n").flatMap((line) => {
    const m = JOURNAL_LINE.exec(line)
    return m === null ? [] : [{ count: Number(m[1]), digest: m[2] ?? "" }]
  })

const removeParts = (entries: Entries, account: string, record: Split, keep: string | undefined) =>
  record.digest === keep
    ? Effect.void
    : Effect.forEach(partsOfSplit(record), ({ digest, index }) => removeRaw(entries, partAccount(account, digest, index)), {
      discard: true
    })

/**
 * Removes the parts that an unfinished write or removal of `account` left behind: those of the
 * records its journal names that `primary` (the entry as it is now) does not head. Runs under
 * the write lock, before every write of a store that splits records.
 */
const sweep = (entries: Entries, account: string, primary: Option.Option<string>) =>
  Effect.flatMap(getRaw(entries, journalAccount(account)), (journal) => {
    if (Option.isNone(journal)) return Effect.void
    const keep = Option.getOrUndefined(Option.map(splitOf(primary), (r) => r.digest))
    return Effect.forEach(parseJournal(journal.value), (record) => removeParts(entries, account, record, keep), {
      discard: true
    }).pipe(
      Effect.zipRight(removeRaw(entries, journalAccount(account))),
      Effect.zipRight(Effect.logInfo("Removed the parts of a keychain record that an unfinished write left behind")),
      Effect.annotateLogs({ service: entries.service, account })
    )
  })

/**
 * Runs `change` of `account`, whose split records (`touched`) are first named in its journal, so
 * that parts an interrupted change leaves behind are found by the next {@link sweep}; the
 * journal goes once the change is complete. A change that touches no split record needs none.
 */
const journaled = <A>(
  entries: Entries,
  account: string,
  touched: ReadonlyArray<Split>,
  change: Effect.Effect<A, PlatformError>
): Effect.Effect<A, PlatformError> =>
  touched.length === 0 ? change : setRaw(entries, journalAccount(account), formatJournal(touched)).pipe(
    Effect.zipRight(change),
    Effect.tap(() => removeRaw(entries, journalAccount(account)))
  )

/**
 * Parts first, then the primary entry (the switch), then the parts of the record it replaced.
 * When writing the parts or the switch fails, the new parts are removed at once (best effort;
 * the journal covers what that misses).
 */
const writeRecord = (
  entries: Entries,
  maxLength: number,
  account: string,
  value: string,
  oldPrimary: Option.Option<string>
) => {
  const old = splitOf(oldPrimary)
  const oldDigest = Option.getOrUndefined(Option.map(old, (r) => r.digest))
  const next = split(value, maxLength)
  const touched = [...Option.toArray(old), ...(next.parts.length > 0 ? [next.split] : [])]
  const switchTo = Effect.forEach(
    next.parts,
    (part, i) => setRaw(entries, partAccount(account, next.split.digest, i + 1), part),
    { discard: true }
  ).pipe(
    Effect.zipRight(setRaw(entries, account, next.primary)),
    // Unless the switch happened after all (a keychain that failed after storing the entry).
    Effect.tapError(() =>
      Effect.ignore(Effect.flatMap(getRaw(entries, account), (now) =>
        Option.exists(splitOf(now), (r) => r.digest === next.split.digest)
          ? Effect.void
          : removeParts(entries, account, next.split, oldDigest).pipe(
            Effect.zipRight(touched.length > 0 ? removeRaw(entries, journalAccount(account)) : Effect.void)
          )))
    )
  )
  return journaled(
    entries,
    account,
    touched,
    Effect.zipRight(
      switchTo,
      Option.match(old, { onNone: () => Effect.void, onSome: (r) => removeParts(entries, account, r, next.split.digest) })
    )
  )
}

/** The primary entry, then the parts of the record it held. */
const removeRecord = (entries: Entries, account: string, oldPrimary: Option.Option<string>) => {
  const old = splitOf(oldPrimary)
  return journaled(
    entries,
    account,
    Option.toArray(old),
    Effect.zipRight(
      removeRaw(entries, account),
      Option.match(old, { onNone: () => Effect.void, onSome: (r) => removeParts(entries, account, r, undefined) })
    )
  )
}

const unsupported = (method: string) =>
  Effect.fail(
    new SystemError({
      reason: "Unknown",
      module: "KeyValueStore",
      method,
      description: "the keychain store cannot enumerate its entries (the token storage keeps an index instead)"
    })
  )

/**
 * A `KeyValueStore` over the keychain entries of `service`, with split records, and the atomic
 * compare-and-set `kvStore` needs, both guarded by `guard` (this process's semaphore and the
 * lock file).
 *
 * @internal
 */
export const makeKeyValueStore = (
  keyring: Keyring,
  service: string,
  maxLength: number,
  guard: <A>(effect: Effect.Effect<A, PlatformError>) => Effect.Effect<A, PlatformError>
): { readonly store: KeyValueStore.KeyValueStore; readonly atomic: KvStore.AtomicOps } => {
  const entries: Entries = { keyring, service }
  // Only a store that splits records (or finds a split one) can have left parts behind.
  const swept = (account: string, primary: Option.Option<string>) =>
    maxLength < Number.MAX_SAFE_INTEGER || Option.isSome(splitOf(primary))
      ? sweep(entries, account, primary)
      : Effect.void
  const store = KeyValueStore.makeStringOnly({
    get: (account) => Effect.map(readRecord(entries, account), (r) => r.value),
    set: (account, value) =>
      guard(Effect.flatMap(getRaw(entries, account), (old) =>
        Effect.zipRight(swept(account, old), writeRecord(entries, maxLength, account, value, old)))),
    remove: (account) =>
      guard(Effect.flatMap(getRaw(entries, account), (old) =>
        Effect.zipRight(swept(account, old), removeRecord(entries, account, old)))),
    clear: unsupported("clear"),
    size: unsupported("size")
  })

  const atomic: KvStore.AtomicOps = {
    compareAndSet: (account, expected, next) =>
      guard(Effect.gen(function*() {
        const current = yield* readRecord(entries, account)
        yield* swept(account, current.primary)
        if (!sameValue(current.value, expected)) return "changed" as const
        yield* Option.match(next, {
          onNone: () => removeRecord(entries, account, current.primary),
          onSome: (value) => writeRecord(entries, maxLength, account, value, current.primary)
        })
        return "applied" as const
      }))
  }
  return { store, atomic }
}

const lockError = (e: StorageError): PlatformError =>
  new SystemError({ reason: "Unknown", module: "KeyValueStore", method: "lock", description: e.message, cause: e })

/**
 * The keychain token store over `keyring` (already probed). Writes are serialised by a lock
 * file in `lockDirectory` (resolved by the caller; a failure to resolve it fails every write).
 *
 * @internal
 */
export const make = (
  keyring: Keyring,
  lockDirectory: Either.Either<string, StorageError>,
  options: KeychainStoreOptions = {}
): Effect.Effect<TokenStorage, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const codec = yield* Format.CurrentCodec
    const service = options.service ?? DEFAULT_SERVICE
    const maxLength = Math.max(
      MIN_ENTRY_LENGTH,
      options.maxEntryLength ?? (process.platform === "win32" ? WINDOWS_MAX_ENTRY_LENGTH : Number.MAX_SAFE_INTEGER)
    )
    const dir = Either.map(lockDirectory, (d) => path.resolve(d))
    const semaphore = yield* Effect.makeSemaphore(1)
    const lockFile = Effect.gen(function*() {
      const d = yield* dir
      yield* NoFollow.ensureDirectory(d, { privateMode: process.platform === "win32" ? undefined : 0o700 })
      return path.join(d, `.keychain.${sha256(service).slice(0, 16)}.lock`)
    })
    const guard = <A>(effect: Effect.Effect<A, PlatformError>): Effect.Effect<A, PlatformError> =>
      semaphore.withPermits(1)(
        Effect.flatMap(Effect.mapError(lockFile, lockError), (file) =>
          FileLock.withFileLock(fs, file, WRITE_LOCK)(effect).pipe(
            Effect.mapError((e) => e instanceof StorageError ? lockError(e) : e)
          ))
      )
    const { atomic, store } = makeKeyValueStore(keyring, service, maxLength, guard)
    const storage = yield* KvStore.makeWith({ codec, atomic }).pipe(
      Effect.provideService(KeyValueStore.KeyValueStore, store)
    )
    return { ...storage, lock: FileStore.makeLock(dir, fs, path) }
  })
