/**
 * Token storage over any `@effect/platform` `KeyValueStore` (Redis, browser storage, a file
 * store of the user's own…). Entries live under `effect-mcp-oauth/tokens:<key>` and
 * `effect-mcp-oauth/client:<key>`; because a `KeyValueStore` cannot enumerate its keys, an index
 * entry (`effect-mcp-oauth/index`) lists the server keys, so that `keys` and `clearAll` work and
 * `clearAll` never touches anything but this library's entries.
 *
 * @internal
 */
import { KeyValueStore } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Either, Option, Schema } from "effect"
import { StorageError } from "../Errors.js"
import type { TokenStorage } from "../TokenStorage.js"
import * as Format from "./storageFormat.js"

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
export const make: Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> = Effect.gen(function*() {
  const kv = yield* KeyValueStore.KeyValueStore
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

  const addToIndex = (key: string) =>
    Effect.flatMap(readIndex, (keys) => keys.includes(key) ? Effect.void : writeIndex([...keys, key].sort()))

  const removeFromIndex = (key: string) =>
    Effect.flatMap(readIndex, (keys) => keys.includes(key) ? writeIndex(keys.filter((k) => k !== key)) : Effect.void)

  const read = <A, I>(entry: Format.Entry<A, I>, key: string): Effect.Effect<Option.Option<A>, StorageError> =>
    kv.get(entryKey(entry.kind, key)).pipe(
      Effect.mapError(ioError(key, `reading ${entry.kind}`)),
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeedNone,
        onSome: (text) =>
          Either.match(Format.decodeFor(entry, key, text), {
            onLeft: (rejection) =>
              Effect.as(Format.warnRejected(rejection, { key, location: entryKey(entry.kind, key) }), Option.none()),
            onRight: (value) => Effect.succeed(Option.some(value))
          })
      }))
    )

  const write = <A, I>(entry: Format.Entry<A, I>, key: string, value: A): Effect.Effect<void, StorageError> =>
    Effect.flatMap(Format.encode(entry, key, value), (text) =>
      lock.withPermits(1)(
        kv.set(entryKey(entry.kind, key), text).pipe(
          Effect.mapError(ioError(key, `writing ${entry.kind}`)),
          Effect.zipRight(addToIndex(key))
        )
      ))

  const remove = (key: string, kind: Format.Kind): Effect.Effect<void, StorageError> =>
    lock.withPermits(1)(Effect.gen(function*() {
      yield* kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      const other: Format.Kind = kind === "tokens" ? "client" : "tokens"
      const otherExists = yield* kv.has(entryKey(other, key)).pipe(Effect.mapError(ioError(key, `reading ${other}`)))
      if (!otherExists) yield* removeFromIndex(key)
    }))

  const clear = (key: string): Effect.Effect<void, StorageError> =>
    lock.withPermits(1)(Effect.gen(function*() {
      for (const kind of Format.kinds) {
        yield* kv.remove(entryKey(kind, key)).pipe(Effect.mapError(ioError(key, `removing ${kind}`)))
      }
      yield* removeFromIndex(key)
    }))

  const clearAll: Effect.Effect<void, StorageError> = lock.withPermits(1)(Effect.gen(function*() {
    for (const key of yield* readIndex) {
      for (const kind of Format.kinds) {
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
    setTokens: (key, tokens) => write(Format.tokensEntry, key, tokens),
    clearTokens: (key) => remove(key, "tokens"),
    getClient: (key) => read(Format.clientEntry, key),
    setClient: (key, client) => write(Format.clientEntry, key, client),
    clearClient: (key) => remove(key, "client"),
    clear,
    clearAll,
    keys
  }
})
