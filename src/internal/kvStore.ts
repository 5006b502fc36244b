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

/** What every operation of one store needs: the backend, how records are sealed, this process's lock. */
interface Store {
  readonly kv: KeyValueStore.KeyValueStore
  readonly codec: Format.RecordCodec
  readonly atomic: AtomicOps | undefined
  readonly tokenTtl: KvStoreOptions["tokenTtl"]
  /** Serialises this process's updates of the index (entries themselves are single writes). */
  readonly lock: Effect.Semaphore
}

const readIndex = (store: Store): Effect.Effect<ReadonlyArray<string>, StorageError> =>
  store.kv.get(INDEX_KEY).pipe(
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

const writeIndex = (store: Store, keys: ReadonlyArray<string>) =>
  (keys.length === 0 ? store.kv.remove(INDEX_KEY) : store.kv.set(INDEX_KEY, encodeIndex(keys))).pipe(
    Effect.mapError(ioError(undefined, "writing the index"))
  )

/** Updates the index with a compare-and-set loop (an atomic backend). */
const compareAndSetIndex = (
  store: Store,
  atomic: AtomicOps,
  f: (keys: ReadonlyArray<string>) => ReadonlyArray<string> | undefined
) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const raw = yield* store.kv.get(INDEX_KEY).pipe(Effect.mapError(ioError(undefined, "reading the index")))
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

/** Updates the index atomically (compare-and-set loop) when the backend can, else read-then-write. */
const updateIndex = (store: Store, f: (keys: ReadonlyArray<string>) => ReadonlyArray<string> | undefined) =>
  store.atomic === undefined
    ? Effect.flatMap(readIndex(store), (keys) => {
      const next = f(keys)
      return next === undefined ? Effect.void : writeIndex(store, next)
    })
    : compareAndSetIndex(store, store.atomic, f)

const addToIndex = (store: Store, key: string) =>
  updateIndex(store, (keys) => keys.includes(key) ? undefined : [...keys, key].sort())

const removeFromIndex = (store: Store, key: string) =>
  updateIndex(store, (keys) => keys.includes(key) ? keys.filter((k) => k !== key) : undefined)

const withKey = (key: string) => (e: StorageError) =>
  e.key !== undefined ? e : new StorageError({ reason: e.reason, key, detail: e.detail })

/** The raw entry and what it decodes to (`None` when absent or unreadable). */
const readRaw = <A, I>(store: Store, entry: Format.Entry<A, I>, key: string) =>
  Effect.gen(function*() {
    const location = entryKey(entry.kind, key)
    const raw = yield* store.kv.get(location).pipe(Effect.mapError(ioError(key, `reading ${entry.kind}`)))
    if (Option.isNone(raw)) return { raw, decoded: Option.none<Versioned<A>>() }
    const opened = yield* store.codec.decode(raw.value, { location }).pipe(Effect.mapError(withKey(key)))
    const decoded = Either.flatMap(opened, (plain) => Format.decodeVersionedFor(entry, key, plain))
    if (Either.isLeft(decoded)) {
      yield* Format.warnRejected(decoded.left, { key, location })
      return { raw, decoded: Option.none<Versioned<A>>() }
    }
    return { raw, decoded: Option.some(decoded.right) }
  })

const readVersioned = <A, I>(store: Store, entry: Format.Entry<A, I>, key: string) =>
  Effect.map(readRaw(store, entry, key), (r) => r.decoded)

const read = <A, I>(store: Store, entry: Format.Entry<A, I>, key: string): Effect.Effect<Option.Option<A>, StorageError> =>
  Effect.map(readVersioned(store, entry, key), Option.map((v) => v.value))

const serialize = <A, I>(store: Store, entry: Format.Entry<A, I>, key: string, value: A, revision?: number) =>
  Effect.flatMap(
    Format.encode(entry, key, value, revision),
    (plain) => store.codec.encode(plain, { location: entryKey(entry.kind, key) }).pipe(Effect.mapError(withKey(key)))
  )

/** Writes an entry without a revision (the client information), and lists its key in the index. */
const writeEntry = <A, I>(store: Store, entry: Format.Entry<A, I>, key: string, value: A): Effect.Effect<void, StorageError> =>
  Effect.flatMap(serialize(store, entry, key, value), (text) =>
    store.lock.withPermits(1)(
      store.kv.set(entryKey(entry.kind, key), text).pipe(
        Effect.mapError(ioError(key, `writing ${entry.kind}`)),
        Effect.zipRight(addToIndex(store, key))
      )
    ))

const conflict = (key: string, expected: number, found: number) =>
  new StorageError({
    reason: "Conflict",
    key,
    detail: `the tokens were written by someone else (expected revision ${expected}, found ${found})`
  })

const revisionOf = <A>(current: Option.Option<Versioned<A>>): number =>
  Option.match(current, { onNone: () => 0, onSome: (v) => v.revision })

const ttlOf = (store: Store, tokens: StoredToken) =>
  store.tokenTtl === undefined
    ? Effect.succeed(undefined)
    : Effect.map(Clock.currentTimeMillis, (now) => store.tokenTtl?.(tokens, now))

/**
 * The fence of the current lease when it is a Redis lease on the backend's own connection: the
 * compare-and-set script checks it atomically with the write. `None`: no lease, or another kind.
 */
const fenceOf = (lease: Option.Option<Lease.Lease>, atomic: AtomicOps | undefined): Option.Option<Fence> =>
  Option.flatMap(lease, (l) =>
    l.redis !== undefined && atomic?.connection !== undefined && l.redis.connection === atomic.connection
      ? Option.some<Fence>({ lockKey: l.redis.lockKey, owner: l.redis.owner })
      : Option.none())

/**
 * One try of {@link casTokens}: the new revision, or `None` when someone wrote between the read
 * and the compare-and-set.
 */
const casTokensOnce = (
  store: Store,
  key: string,
  next: Option.Option<StoredToken>,
  expected: number | undefined
): Effect.Effect<Option.Option<number>, StorageError> =>
  Effect.gen(function*() {
    const { atomic, kv } = store
    const location = entryKey("tokens", key)
    const current = yield* readRaw(store, Format.tokensEntry, key)
    const found = revisionOf(current.decoded)
    if (expected !== undefined && found !== expected) return yield* Effect.fail(conflict(key, expected, found))
    const revision = found + 1
    const text = Option.isSome(next)
      ? Option.some(yield* serialize(store, Format.tokensEntry, key, next.value, revision))
      : Option.none<string>()
    // Fencing: inside a TokenLock whose lease was lost, the write is refused. A Redis lease on
    // this very connection is checked by the compare-and-set script itself (atomically).
    const lease = yield* Lease.current
    const fence = fenceOf(lease, atomic)
    if (Option.isSome(lease) && Option.isNone(fence)) yield* lease.value.ensureHeld
    if (atomic === undefined) {
      yield* Option.match(text, { onNone: () => kv.remove(location), onSome: (t) => kv.set(location, t) }).pipe(
        Effect.mapError(ioError(key, "writing tokens"))
      )
      return Option.some(revision)
    }
    const ttl = Option.isSome(next) ? yield* ttlOf(store, next.value) : undefined
    const swapped = yield* atomic.compareAndSet(location, current.raw, text, ttl, Option.getOrUndefined(fence)).pipe(
      Effect.mapError(ioError(key, "writing tokens"))
    )
    if (swapped === "leaseLost") return yield* Effect.fail(leaseLost(key))
    return swapped === "applied" ? Option.some(revision) : Option.none<number>()
  })

/**
 * Writes (or removes, `next` = `None`) the tokens of `key` when the stored revision is
 * `expected` (`undefined`: whatever it is), as a compare-and-set on the raw entry when the
 * backend is atomic, else under this process's lock. Returns the new revision.
 */
const casTokens = (
  store: Store,
  key: string,
  next: Option.Option<StoredToken>,
  expected: number | undefined
): Effect.Effect<number, StorageError> => {
  const guard = <A, E>(self: Effect.Effect<A, E>) => store.atomic === undefined ? store.lock.withPermits(1)(self) : self
  return guard(Effect.gen(function*() {
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const result = yield* casTokensOnce(store, key, next, expected)
      if (Option.isSome(result)) {
        if (Option.isSome(next)) yield* addToIndex(store, key)
        else yield* removeIfOrphan(store, key, "tokens")
        return result.value
      }
      // Someone wrote between our read and our swap: a conditional write reports it.
      if (expected !== undefined) {
        const now = yield* readVersioned(store, Format.tokensEntry, key)
        return yield* Effect.fail(conflict(key, expected, revisionOf(now)))
      }
    }
    return yield* Effect.fail(new StorageError({ reason: "Conflict", key, detail: "the tokens kept changing" }))
  }))
}

/** Drops `key` from the index when its entry of the other kind is gone too. */
/** What `clear` and `clearAll` remove: the kinds, and the sign-in in progress. */
const removable: ReadonlyArray<Format.Kind> = [...Format.kinds, "pending"]

/** Drops `key` from the index once none of its entries (tokens, client, sign-in in progress) is left. */
const removeIfOrphan = (store: Store, key: string, kind: Format.Kind) =>
  Effect.gen(function*() {
    for (const other of removable) {
      if (other === kind) continue
      const exists = yield* store.kv.has(entryKey(other, key)).pipe(Effect.mapError(ioError(key, `reading ${other}`)))
      if (exists) return
    }
    yield* removeFromIndex(store, key)
  })

const removeEntry = (store: Store, key: string, kind: Format.Kind): Effect.Effect<void, StorageError> =>
  store.lock.withPermits(1)(Effect.gen(function*() {
    if (kind === "tokens") yield* Lease.ensureHeld
    yield* store.kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
    yield* removeIfOrphan(store, key, kind)
  }))

const clearKey = (store: Store, key: string): Effect.Effect<void, StorageError> =>
  store.lock.withPermits(1)(Effect.gen(function*() {
    yield* Lease.ensureHeld
    for (const kind of removable) {
      yield* store.kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
    }
    yield* removeFromIndex(store, key)
  }))

/** Removes the entries of every indexed key, then the index; nothing else in the backend. */
const clearAllEntries = (store: Store): Effect.Effect<void, StorageError> =>
  store.lock.withPermits(1)(Effect.gen(function*() {
    for (const key of yield* readIndex(store)) {
      for (const kind of removable) {
        yield* store.kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      }
    }
    yield* store.kv.remove(INDEX_KEY).pipe(Effect.mapError(ioError(undefined, "removing the index")))
  }))

/** The indexed keys that still have a readable entry. */
const indexedKeys = (store: Store): Effect.Effect<ReadonlyArray<string>, StorageError> =>
  Effect.gen(function*() {
    const out: Array<string> = []
    for (const key of yield* readIndex(store)) {
      const tokens = yield* read(store, Format.tokensEntry, key)
      if (Option.isSome(tokens) || Option.isSome(yield* read(store, Format.clientEntry, key))) out.push(key)
    }
    return out
  })

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
): Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> =>
  Effect.gen(function*() {
    const store: Store = {
      kv: yield* KeyValueStore.KeyValueStore,
      codec: options.codec ?? Format.plainCodec,
      atomic: options.atomic,
      tokenTtl: options.tokenTtl,
      lock: yield* Effect.makeSemaphore(1)
    }
    return {
      getTokens: (key) => read(store, Format.tokensEntry, key),
      setTokens: (key, tokens) => Effect.asVoid(casTokens(store, key, Option.some(tokens), undefined)),
      clearTokens: (key) => removeEntry(store, key, "tokens"),
      getClient: (key) => read(store, Format.clientEntry, key),
      setClient: (key, client) => writeEntry(store, Format.clientEntry, key, client),
      clearClient: (key) => removeEntry(store, key, "client"),
      clear: (key) => clearKey(store, key),
      clearAll: clearAllEntries(store),
      keys: indexedKeys(store),
      revisions: {
        getTokens: (key) => readVersioned(store, Format.tokensEntry, key),
        setTokens: (key, tokens, expected) => casTokens(store, key, Option.some(tokens), expected),
        clearTokens: (key, expected) => Effect.asVoid(casTokens(store, key, Option.none(), expected))
      },
      pendingAuthorizations: {
        get: (key) => read(store, Format.pendingEntry, key),
        // indexed, so that clearAll finds it; `keys` lists only keys with tokens or a client
        set: (key, pending) => writeEntry(store, Format.pendingEntry, key, pending),
        clear: (key) => removeEntry(store, key, "pending")
      }
    }
  })
