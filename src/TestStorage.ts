/**
 * A {@link TokenStorage} for tests: in memory, pre-seedable with tokens and client information,
 * and observable — it records every operation so that a test can assert what the code under test
 * read, wrote and cleared, and it can be told to fail the next call of an operation.
 *
 * ```ts
 * it.layer(TestStorage.layer({ tokens: expired }))("with an expired token", (it) => {
 *   it.effect("refreshes once", () => Effect.gen(function*() {
 *     // … run the code under test …
 *     const ops = yield* TestStorage.operations
 *     expect(ops.filter((o) => o.op === "setTokens")).toHaveLength(1)
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { StorageError } from "./Errors.js"
import { ClientInformation, StoredToken } from "./Schemas.js"
import { TokenStorage } from "./TokenStorage.js"

/**
 * The names of the {@link TokenStorage} operations.
 *
 * @since 0.1.0
 * @category models
 */
export type OperationName =
  | "getTokens"
  | "setTokens"
  | "clearTokens"
  | "getClient"
  | "setClient"
  | "clearClient"
  | "clear"
  | "clearAll"
  | "keys"

/**
 * One recorded call: the operation and, for per-server operations, the server key.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation =
  | {
    readonly op: Exclude<OperationName, "clearAll" | "keys">
    readonly key: string
  }
  | { readonly op: "clearAll" | "keys" }

/**
 * Initial contents. A single `StoredToken` / `ClientInformation` (not keyed) is returned for
 * every server key until that key is written or cleared; a record seeds specific server keys
 * (use `serverKey(url)` for the keys).
 *
 * @since 0.1.0
 * @category models
 */
export interface Seed {
  readonly tokens?: StoredToken | Readonly<Record<string, StoredToken>>
  readonly client?: ClientInformation | Readonly<Record<string, ClientInformation>>
}

/**
 * What a test can observe and steer.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestStorage {
  /** Every call made so far, oldest first (failed calls included). */
  readonly operations: Effect.Effect<ReadonlyArray<Operation>>
  /** Forgets the recorded calls. */
  readonly resetOperations: Effect.Effect<void>
  /** The tokens stored under explicit server keys (an unkeyed seed is not listed). */
  readonly tokens: Effect.Effect<ReadonlyMap<string, StoredToken>>
  /** The client information stored under explicit server keys (an unkeyed seed is not listed). */
  readonly clients: Effect.Effect<ReadonlyMap<string, ClientInformation>>
  /** Makes the next call of `op` fail with `error` (once), e.g. to test a failing disk. */
  readonly failNext: (op: OperationName, error: StorageError) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TestStorage: Context.Tag<TestStorage, TestStorage> = Context.GenericTag<TestStorage>(
  "effect-mcp-oauth/TestStorage"
)

interface State {
  readonly tokens: ReadonlyMap<string, StoredToken>
  readonly clients: ReadonlyMap<string, ClientInformation>
  readonly defaultTokens: StoredToken | undefined
  readonly defaultClient: ClientInformation | undefined
  /** Keys written or cleared since the start: the unkeyed seed no longer applies to them. */
  readonly tokensTouched: ReadonlySet<string>
  readonly clientTouched: ReadonlySet<string>
  readonly log: ReadonlyArray<Operation>
  readonly failures: ReadonlyMap<OperationName, StorageError>
}

const split = <A>(
  seed: A | Readonly<Record<string, A>> | undefined,
  isSingle: (u: unknown) => u is A
): { readonly single: A | undefined; readonly keyed: ReadonlyMap<string, A> } => {
  if (seed === undefined) return { single: undefined, keyed: new Map() }
  if (isSingle(seed)) return { single: seed, keyed: new Map() }
  const keyed = new Map<string, A>()
  for (const [key, value] of Object.entries(seed)) if (isSingle(value)) keyed.set(key, value)
  return { single: undefined, keyed }
}

const isStoredToken = (u: unknown): u is StoredToken => u instanceof StoredToken
const isClientInformation = (u: unknown): u is ClientInformation => u instanceof ClientInformation

const without = <A>(map: ReadonlyMap<string, A>, key: string): ReadonlyMap<string, A> => {
  const next = new Map(map)
  next.delete(key)
  return next
}
const withValue = <A>(map: ReadonlyMap<string, A>, key: string, value: A): ReadonlyMap<string, A> =>
  new Map(map).set(key, value)
const touch = (set: ReadonlySet<string>, key: string): ReadonlySet<string> => new Set(set).add(key)

const initialState = (seed: Seed): State => {
  const tokens = split(seed.tokens, isStoredToken)
  const client = split(seed.client, isClientInformation)
  return {
    tokens: tokens.keyed,
    clients: client.keyed,
    defaultTokens: tokens.single,
    defaultClient: client.single,
    tokensTouched: new Set(),
    clientTouched: new Set(),
    log: [],
    failures: new Map()
  }
}

/** Log `operation`, then fail it once if a failure was armed for it, else apply `f`. */
const record = <A>(
  ref: Ref.Ref<State>,
  operation: Operation,
  f: (s: State) => readonly [A, State]
): Effect.Effect<A, StorageError> =>
  Effect.flatten(Ref.modify(ref, (s): readonly [Effect.Effect<A, StorageError>, State] => {
    const logged: State = { ...s, log: [...s.log, operation] }
    const failure = s.failures.get(operation.op)
    if (failure !== undefined) {
      const failures = new Map(s.failures)
      failures.delete(operation.op)
      return [Effect.fail(failure), { ...logged, failures }]
    }
    const [a, next] = f(logged)
    return [Effect.succeed(a), next]
  }))

/** The storage over `ref`: a key written or cleared no longer falls back to the unkeyed seed. */
const storageOver = (ref: Ref.Ref<State>): TokenStorage => ({
  getTokens: (key) =>
    record(ref, { op: "getTokens", key }, (s) => [
      Option.fromNullable(s.tokens.get(key) ?? (s.tokensTouched.has(key) ? undefined : s.defaultTokens)),
      s
    ]),
  setTokens: (key, value) =>
    record(ref, { op: "setTokens", key }, (s) => [undefined, {
      ...s,
      tokens: withValue(s.tokens, key, value),
      tokensTouched: touch(s.tokensTouched, key)
    }]),
  clearTokens: (key) =>
    record(ref, { op: "clearTokens", key }, (s) => [undefined, {
      ...s,
      tokens: without(s.tokens, key),
      tokensTouched: touch(s.tokensTouched, key)
    }]),
  getClient: (key) =>
    record(ref, { op: "getClient", key }, (s) => [
      Option.fromNullable(s.clients.get(key) ?? (s.clientTouched.has(key) ? undefined : s.defaultClient)),
      s
    ]),
  setClient: (key, value) =>
    record(ref, { op: "setClient", key }, (s) => [undefined, {
      ...s,
      clients: withValue(s.clients, key, value),
      clientTouched: touch(s.clientTouched, key)
    }]),
  clearClient: (key) =>
    record(ref, { op: "clearClient", key }, (s) => [undefined, {
      ...s,
      clients: without(s.clients, key),
      clientTouched: touch(s.clientTouched, key)
    }]),
  clear: (key) =>
    record(ref, { op: "clear", key }, (s) => [undefined, {
      ...s,
      tokens: without(s.tokens, key),
      clients: without(s.clients, key),
      tokensTouched: touch(s.tokensTouched, key),
      clientTouched: touch(s.clientTouched, key)
    }]),
  clearAll: record(ref, { op: "clearAll" }, (s) => [undefined, {
    ...s,
    tokens: new Map(),
    clients: new Map(),
    defaultTokens: undefined,
    defaultClient: undefined
  }]),
  keys: record(ref, { op: "keys" }, (s) => [Array.from(new Set([...s.tokens.keys(), ...s.clients.keys()])).sort(), s])
})

/**
 * Builds the storage and its test handle over one shared state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (seed: Seed = {}): Effect.Effect<readonly [TokenStorage, TestStorage]> =>
  Effect.gen(function*() {
    const ref = yield* Ref.make<State>(initialState(seed))
    const handle: TestStorage = {
      operations: Effect.map(Ref.get(ref), (s) => s.log),
      resetOperations: Ref.update(ref, (s) => ({ ...s, log: [] })),
      tokens: Effect.map(Ref.get(ref), (s) => s.tokens),
      clients: Effect.map(Ref.get(ref), (s) => s.clients),
      failNext: (op, error) => Ref.update(ref, (s) => ({ ...s, failures: new Map(s.failures).set(op, error) }))
    }
    return [storageOver(ref), handle] as const
  })

/**
 * Provides an in-memory {@link TokenStorage} seeded with `seed`, and the {@link TestStorage}
 * handle that observes it. Each build of the layer starts from the seed.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (seed: Seed = {}): Layer.Layer<TokenStorage | TestStorage> =>
  Layer.effectContext(
    Effect.map(make(seed), ([storage, handle]) =>
      Context.make(TokenStorage, storage).pipe(Context.add(TestStorage, handle)))
  )

/**
 * The operations recorded so far.
 *
 * @since 0.1.0
 * @category accessors
 */
export const operations: Effect.Effect<ReadonlyArray<Operation>, never, TestStorage> = Effect.flatMap(
  TestStorage,
  (t) => t.operations
)

/**
 * Forgets the operations recorded so far.
 *
 * @since 0.1.0
 * @category accessors
 */
export const resetOperations: Effect.Effect<void, never, TestStorage> = Effect.flatMap(
  TestStorage,
  (t) => t.resetOperations
)

/**
 * The tokens stored under explicit server keys.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tokens: Effect.Effect<ReadonlyMap<string, StoredToken>, never, TestStorage> = Effect.flatMap(
  TestStorage,
  (t) => t.tokens
)

/**
 * The client information stored under explicit server keys.
 *
 * @since 0.1.0
 * @category accessors
 */
export const clients: Effect.Effect<ReadonlyMap<string, ClientInformation>, never, TestStorage> = Effect.flatMap(
  TestStorage,
  (t) => t.clients
)

/**
 * Makes the next call of `op` fail with `error` (once).
 *
 * @since 0.1.0
 * @category accessors
 */
export const failNext = (op: OperationName, error: StorageError): Effect.Effect<void, never, TestStorage> =>
  Effect.flatMap(TestStorage, (t) => t.failNext(op, error))
