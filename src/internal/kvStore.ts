/**
 * Token storage over any `@effect/platform` `KeyValueStore` (Redis, browser storage, a file
 * store of the user's own…). Entries live under `effect-mcp-oauth/tokens:<key>` and
 * `effect-mcp-oauth/client:<key>`; because a `KeyValueStore` cannot enumerate its keys, an index
 * entry (`effect-mcp-oauth/index`) lists the server keys, so that `keys` and `clearAll` work and
 * `clearAll` never touches anything but this library's entries.
 *
 * @internal
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import type { PlatformError } from "@effect/platform/Error"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { StorageError } from "../Errors.js"
import type { StoredToken } from "../Schemas.js"
import type { TokenStorage, Versioned } from "./storageModel.js"
import * as Lease from "./lease.js"
import * as Format from "./storageFormat.js"

/**
 * What a backend can do atomically beyond the `KeyValueStore` interface (Redis: a Lua script).
 * Keys are the same (unprefixed) keys the `KeyValueStore` is given.
 *
 * @internal
 */
export interface AtomicOps {
  /**
   * Replaces the raw value of `key` (or removes it when `next` is `None`) only when it is
   * currently `expected` (`None`: absent); `false` when it was not. `ttlMillis`: expire the
   * entry after that long (`undefined`: never).
   */
  readonly compareAndSet: (
    key: string,
    expected: Option.Option<string>,
    next: Option.Option<string>,
    ttlMillis: number | undefined,
    fence?: Fence | undefined
  ) => Effect.Effect<CasResult, PlatformError>
  /**
   * The connection this backend writes through: a Redis lock lease on the same connection is
   * checked inside `compareAndSet` (its `fence`), atomically with the write.
   */
  readonly connection?: object | undefined
}

/** A lock key that must still hold `owner` for a compare-and-set to apply. @internal */
export interface Fence {
  readonly lockKey: string
  readonly owner: string
}

/** Applied, not applied (the value changed), or refused because the fence's lease was lost. @internal */
export type CasResult = "applied" | "changed" | "leaseLost"

const leaseLost = (key: string) =>
  new StorageError({
    reason: "Conflict",
    key,
    detail: "the lease of the token lock was lost: the tokens were not written (another process holds the lock now)"
  })

/** @internal */
export interface KvStoreOptions {
  /** How records are transformed at rest (encryption); default plain JSON. */
  readonly codec?: Format.RecordCodec | undefined
  /** Atomic compare-and-set of the backend: makes revisions and the index safe across processes. */
  readonly atomic?: AtomicOps | undefined
  /** How long a token entry should live in the backend (needs `atomic`); `undefined`: forever. */
  readonly tokenTtl?: ((token: StoredToken, now: number) => number | undefined) | undefined
}

const CAS_ATTEMPTS = 50

/** @internal */
export const NAMESPACE = "effect-mcp-oauth/"

/** @internal */
export const INDEX_KEY = `${NAMESPACE}index`

/** @internal */
export const entryKey = (kind: Format.Kind, key: string): string => `${NAMESPACE}${kind}:${key}`

const INDEX_FORMAT = `${Format.FORMAT}-index`

const Index = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(INDEX_FORMAT),
  version: Schema.Literal(Format.VERSION),
  keys: Schema.Array(Schema.String)
}))
const decodeIndex = Schema.decodeUnknownEither(Index)
const encodeIndex = (keys: ReadonlyArray<string>): string =>
  JSON.stringify({ format: INDEX_FORMAT, version: Format.VERSION, keys })

const ioError = (key: string | undefined, what: string) => (e: PlatformError): StorageError =>
  new StorageError(
    key === undefined
      ? { reason: "Io", detail: `${what}: ${e.message}` }
      : { reason: "Io", key, detail: `${what}: ${e.message}` }
  )

/** @internal */
export const make: Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> = Effect.suspend(() =>
  makeWith({})
)

/**
 * {@link make} with a codec, atomic operations and token TTLs.
 *
 * @internal
 */
export const makeWith = (
  options: KvStoreOptions
): Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> => Effect.gen(function*() {
  const kv = yield* KeyValueStore.KeyValueStore
  const codec = options.codec ?? Format.plainCodec
  const atomic = options.atomic
  // serialises this process's updates of the index (entries themselves are single writes)
  const lock = yield* Effect.makeSemaphore(1)

  const readIndex: Effect.Effect<ReadonlyArray<string>, StorageError> = kv.get(INDEX_KEY).pipe(
    Effect.mapError(ioError(undefined, "reading the index")),
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed<ReadonlyArray<string>>([]),
      onSome: (text) =>
        Either.match(decodeIndex(text), {
          onLeft: () =>
            Format.warnRejected("the index is not in the expected format", { location: INDEX_KEY }).pipe(
              Effect.as<ReadonlyArray<string>>([])
            ),
          onRight: (index) => Effect.succeed(index.keys)
        })
    }))
  )

  const writeIndex = (keys: ReadonlyArray<string>) =>
    (keys.length === 0 ? kv.remove(INDEX_KEY) : kv.set(INDEX_KEY, encodeIndex(keys))).pipe(
      Effect.mapError(ioError(undefined, "writing the index"))
    )

  /** Updates the index atomically (compare-and-set loop) when the backend can, else read-then-write. */
  const updateIndex = (f: (keys: ReadonlyArray<string>) => ReadonlyArray<string> | undefined) =>
    atomic === undefined
      ? Effect.flatMap(readIndex, (keys) => {
        const next = f(keys)
        return next === undefined ? Effect.void : writeIndex(next)
      })
      : Effect.gen(function*() {
        for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
          const raw = yield* kv.get(INDEX_KEY).pipe(Effect.mapError(ioError(undefined, "reading the index")))
          const keys = Option.match(raw, {
            onNone: (): ReadonlyArray<string> => [],
            onSome: (text) => Either.match(decodeIndex(text), { onLeft: () => [], onRight: (i) => i.keys })
          })
          const next = f(keys)
          if (next === undefined) return
          const swapped = yield* atomic.compareAndSet(
            INDEX_KEY,
            raw,
            next.length === 0 ? Option.none() : Option.some(encodeIndex(next)),
            undefined
          ).pipe(Effect.mapError(ioError(undefined, "writing the index")))
          if (swapped === "applied") return
        }
        return yield* Effect.fail(
          new StorageError({ reason: "Conflict", detail: "the index kept changing under concurrent writers" })
        )
      })

  const addToIndex = (key: string) => updateIndex((keys) => keys.includes(key) ? undefined : [...keys, key].sort())

  const removeFromIndex = (key: string) =>
    updateIndex((keys) => keys.includes(key) ? keys.filter((k) => k !== key) : undefined)

  const withKey = (key: string) => (e: StorageError) =>
    e.key !== undefined ? e : new StorageError({ reason: e.reason, key, detail: e.detail })

  /** The raw entry and what it decodes to (`None` when absent or unreadable). */
  const readRaw = <A, I>(entry: Format.Entry<A, I>, key: string) =>
    Effect.gen(function*() {
      const location = entryKey(entry.kind, key)
      const raw = yield* kv.get(location).pipe(Effect.mapError(ioError(key, `reading ${entry.kind}`)))
      if (Option.isNone(raw)) return { raw, decoded: Option.none<Versioned<A>>() }
      const opened = yield* codec.decode(raw.value, { location }).pipe(Effect.mapError(withKey(key)))
      const decoded = Either.flatMap(opened, (plain) => Format.decodeVersionedFor(entry, key, plain))
      if (Either.isLeft(decoded)) {
        yield* Format.warnRejected(decoded.left, { key, location })
        return { raw, decoded: Option.none<Versioned<A>>() }
      }
      return { raw, decoded: Option.some(decoded.right) }
    })

  const readVersioned = <A, I>(entry: Format.Entry<A, I>, key: string) =>
    Effect.map(readRaw(entry, key), (r) => r.decoded)

  const read = <A, I>(entry: Format.Entry<A, I>, key: string): Effect.Effect<Option.Option<A>, StorageError> =>
    Effect.map(readVersioned(entry, key), Option.map((v) => v.value))

  const serialize = <A, I>(entry: Format.Entry<A, I>, key: string, value: A, revision?: number) =>
    Effect.flatMap(
      Format.encode(entry, key, value, revision),
      (plain) => codec.encode(plain, { location: entryKey(entry.kind, key) }).pipe(Effect.mapError(withKey(key)))
    )

  const write = <A, I>(entry: Format.Entry<A, I>, key: string, value: A): Effect.Effect<void, StorageError> =>
    Effect.flatMap(serialize(entry, key, value), (text) =>
      lock.withPermits(1)(
        kv.set(entryKey(entry.kind, key), text).pipe(
          Effect.mapError(ioError(key, `writing ${entry.kind}`)),
          Effect.zipRight(addToIndex(key))
        )
      ))

  const conflict = (key: string, expected: number, found: number) =>
    new StorageError({
      reason: "Conflict",
      key,
      detail: `the tokens were written by someone else (expected revision ${expected}, found ${found})`
    })

  const ttlOf = (tokens: StoredToken) =>
    options.tokenTtl === undefined
      ? Effect.succeed(undefined)
      : Effect.map(Clock.currentTimeMillis, (now) => options.tokenTtl?.(tokens, now))

  /**
   * Writes (or removes, `next` = `None`) the tokens of `key` when the stored revision is
   * `expected` (`undefined`: whatever it is), as a compare-and-set on the raw entry when the
   * backend is atomic, else under this process's lock. Returns the new revision.
   */
  const casTokens = (
    key: string,
    next: Option.Option<StoredToken>,
    expected: number | undefined
  ): Effect.Effect<number, StorageError> => {
    const location = entryKey("tokens", key)
    const once = Effect.gen(function*() {
      const current = yield* readRaw(Format.tokensEntry, key)
      const found = Option.match(current.decoded, { onNone: () => 0, onSome: (v) => v.revision })
      if (expected !== undefined && found !== expected) return yield* Effect.fail(conflict(key, expected, found))
      const revision = found + 1
      const text = Option.isSome(next)
        ? Option.some(yield* serialize(Format.tokensEntry, key, next.value, revision))
        : Option.none<string>()
      // Fencing: inside a TokenLock whose lease was lost, the write is refused. A Redis lease on
      // this very connection is checked by the compare-and-set script itself (atomically).
      const lease = yield* Lease.current
      const fence = Option.flatMap(lease, (l) =>
        l.redis !== undefined && atomic?.connection !== undefined && l.redis.connection === atomic.connection
          ? Option.some<Fence>({ lockKey: l.redis.lockKey, owner: l.redis.owner })
          : Option.none())
      if (Option.isSome(lease) && Option.isNone(fence)) yield* lease.value.ensureHeld
      if (atomic === undefined) {
        yield* Option.match(text, { onNone: () => kv.remove(location), onSome: (t) => kv.set(location, t) }).pipe(
          Effect.mapError(ioError(key, "writing tokens"))
        )
        return Option.some(revision)
      }
      const ttl = Option.isSome(next) ? yield* ttlOf(next.value) : undefined
      const swapped = yield* atomic.compareAndSet(location, current.raw, text, ttl, Option.getOrUndefined(fence)).pipe(
        Effect.mapError(ioError(key, "writing tokens"))
      )
      if (swapped === "leaseLost") return yield* Effect.fail(leaseLost(key))
      return swapped === "applied" ? Option.some(revision) : Option.none<number>()
    })
    const guard = <A, E>(self: Effect.Effect<A, E>) => atomic === undefined ? lock.withPermits(1)(self) : self
    return guard(Effect.gen(function*() {
      for (let i = 0; i < CAS_ATTEMPTS; i++) {
        const result = yield* once
        if (Option.isSome(result)) {
          if (Option.isSome(next)) yield* addToIndex(key)
          else yield* removeIfOrphan(key, "tokens")
          return result.value
        }
        // Someone wrote between our read and our swap: a conditional write reports it.
        if (expected !== undefined) {
          const now = yield* readVersioned(Format.tokensEntry, key)
          return yield* Effect.fail(conflict(key, expected, Option.match(now, { onNone: () => 0, onSome: (v) => v.revision })))
        }
      }
      return yield* Effect.fail(new StorageError({ reason: "Conflict", key, detail: "the tokens kept changing" }))
    }))
  }

  const removeIfOrphan = (key: string, kind: Format.Kind) =>
    Effect.gen(function*() {
      const other: Format.Kind = kind === "tokens" ? "client" : "tokens"
      const otherExists = yield* kv.has(entryKey(other, key)).pipe(Effect.mapError(ioError(key, `reading ${other}`)))
      if (!otherExists) yield* removeFromIndex(key)
    })

  const remove = (key: string, kind: Format.Kind): Effect.Effect<void, StorageError> =>
    lock.withPermits(1)(Effect.gen(function*() {
      if (kind === "tokens") yield* Lease.ensureHeld
      yield* kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      const other: Format.Kind = kind === "tokens" ? "client" : "tokens"
      const otherExists = yield* kv.has(entryKey(other, key)).pipe(Effect.mapError(ioError(key, `reading ${other}`)))
      if (!otherExists) yield* removeFromIndex(key)
    }))

  /** What `clear` and `clearAll` remove: the kinds, and the sign-in in progress. */
  const removable: ReadonlyArray<Format.Kind> = [...Format.kinds, "pending"]

  const clear = (key: string): Effect.Effect<void, StorageError> =>
    lock.withPermits(1)(Effect.gen(function*() {
      yield* Lease.ensureHeld
      for (const kind of removable) {
        yield* kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      }
      yield* removeFromIndex(key)
    }))

  const clearAll: Effect.Effect<void, StorageError> = lock.withPermits(1)(Effect.gen(function*() {
    for (const key of yield* readIndex) {
      for (const kind of removable) {
        yield* kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      }
    }
    yield* kv.remove(INDEX_KEY).pipe(Effect.mapError(ioError(undefined, "removing the index")))
  }))

  const keys: Effect.Effect<ReadonlyArray<string>, StorageError> = Effect.gen(function*() {
    const out: Array<string> = []
    for (const key of yield* readIndex) {
      const tokens = yield* read(Format.tokensEntry, key)
      if (Option.isSome(tokens) || Option.isSome(yield* read(Format.clientEntry, key))) out.push(key)
    }
    return out
  })

  return {
    getTokens: (key) => read(Format.tokensEntry, key),
    setTokens: (key, tokens) => Effect.asVoid(casTokens(key, Option.some(tokens), undefined)),
    clearTokens: (key) => remove(key, "tokens"),
    getClient: (key) => read(Format.clientEntry, key),
    setClient: (key, client) => write(Format.clientEntry, key, client),
    clearClient: (key) => remove(key, "client"),
    clear,
    clearAll,
    keys,
    revisions: {
      getTokens: (key) => readVersioned(Format.tokensEntry, key),
      setTokens: (key, tokens, expected) => casTokens(key, Option.some(tokens), expected),
      clearTokens: (key, expected) => Effect.asVoid(casTokens(key, Option.none(), expected))
    },
    pendingAuthorizations: {
      get: (key) => read(Format.pendingEntry, key),
      // indexed, so that clearAll finds it; `keys` lists only keys with tokens or a client
      set: (key, pending) => write(Format.pendingEntry, key, pending),
      clear: (key) =>
        kv.remove(entryKey("pending", key)).pipe(Effect.mapError(ioError(key, "removing the sign-in in progress")))
    }
  }
})
