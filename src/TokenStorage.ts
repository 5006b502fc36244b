/**
 * Token storage: tokens and client information per MCP server, with absolute expiry and
 * issuer binding. The default is in memory; `layerFileSystem` keeps them on disk safely,
 * `layerKeychain` in the OS keychain, and `layerAuto` picks the best of those the machine has.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type { ConfigError } from "effect/ConfigError"
import { StorageError } from "./Errors.js"
import * as Encryption from "./internal/encryption.js"
import * as FileStore from "./internal/fileStore.js"
import * as Keychain from "./internal/keychainStore.js"
import * as NodeFiles from "./internal/nodeFileSystem.js"
import * as KvStore from "./internal/kvStore.js"
import type * as Model from "./internal/storageModel.js"
import * as Format from "./internal/storageFormat.js"
import type { ClientInformation, PendingAuthorization, StoredToken } from "./Schemas.js"

/**
 * Stores the credentials of each MCP server under a key derived from the server's URL
 * (see {@link serverKey}). Tokens and client information are stored separately so that a stale
 * client can be cleared without touching anything else; `revisions` offers compare-and-set
 * (use {@link clearTokensIfUnchanged} / {@link setTokensIfUnchanged}); `lock` is the
 * cross-process lock a shared storage brings.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenStorage = Model.TokenStorage

/**
 * A cross-process lock: runs `effect` while holding the lock of `key` (the shape of
 * `TokenLock.TokenLock`, declared here so that a storage can bring its own).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export type SharedLock = Model.SharedLock

/**
 * A stored value with its revision: a counter per server key that every write increases (0
 * means nothing is stored, or a record written before revisions existed).
 *
 * @since 0.1.0
 * @category models
 */
export type Versioned<A> = Model.Versioned<A>

/**
 * Compare-and-set on stored tokens (RFC 9700 §4.14.2: a rotated refresh token must not be
 * lost): a write whose `expected` revision is no longer the stored one fails with
 * `StorageError` reason `"Conflict"` and changes nothing.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export type TokenRevisions = Model.TokenRevisions

/**
 * The browser sign-in in progress of each server key (a `Schemas.PendingAuthorization`), stored
 * with the same protections as its tokens, so that another process can take the sign-in over.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category models
 */
export type PendingAuthorizations = Model.PendingAuthorizations

/**
 * @since 0.1.0
 * @category tags
 */
export const TokenStorage: Context.Tag<TokenStorage, TokenStorage> = Context.GenericTag<TokenStorage>(
  "effect-mcp-oauth/TokenStorage"
)

/**
 * The storage key of an MCP server: its canonical URL (RFC 3986 §6.2.2 syntax-based
 * normalisation: lower-case scheme and host, default port dropped, no query, no fragment, no
 * trailing slash). Two spellings of the same server share credentials; two servers never do.
 *
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
 * @since 0.1.0
 * @category constructors
 */
export const serverKey = (url: string | URL): string => {
  // Not a URL: the text itself is the key (such a server is never reached anyway).
  if (typeof url === "string" && !URL.canParse(url)) return url.trim()
  const u = new URL(url)
  const path = u.pathname.replace(/\/+$/, "")
  return `${u.protocol}//${u.host}${path}`
}

/**
 * The kind of a client registration: what it was registered for. One authorization server may
 * hold one registration of each kind for this application — `"browser"` (authorization code with
 * a loopback redirect URI), `"device"` (device grant and the out-of-band pseudo redirect URI) and
 * `"client_credentials"` (machine to machine).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category models
 */
export type ClientKind = "browser" | "device" | "client_credentials"

const CLIENT_KEY_MARK = "#client="

/**
 * The storage key of the client registration of `kind` at the authorization server `issuer`:
 * one registration per issuer and kind, shared by every MCP server on that authorization server
 * (`getClient` / `setClient` with this key). Tokens stay under each server's {@link serverKey}.
 * It never equals a server key (those have no fragment).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 * @since 0.1.0
 * @category constructors
 */
export const clientKey = (issuer: string, kind: ClientKind): string => `${issuer}${CLIENT_KEY_MARK}${kind}`

/**
 * Whether a storage key is a shared client registration's ({@link clientKey}), not a server's.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category constructors
 */
export const isClientKey = (key: string): boolean => key.includes(CLIENT_KEY_MARK)

const instrument = (backend: string, self: TokenStorage): TokenStorage => {
  const span = (op: string, key?: string) =>
    Effect.withSpan(`TokenStorage.${op}`, {
      attributes: key === undefined ? { "tokenStorage.backend": backend } : {
        "tokenStorage.backend": backend,
        "tokenStorage.key": key
      }
    })
  return {
    getTokens: (key) => span("getTokens", key)(self.getTokens(key)),
    setTokens: (key, tokens) => span("setTokens", key)(self.setTokens(key, tokens)),
    clearTokens: (key) => span("clearTokens", key)(self.clearTokens(key)),
    getClient: (key) => span("getClient", key)(self.getClient(key)),
    setClient: (key, client) => span("setClient", key)(self.setClient(key, client)),
    clearClient: (key) => span("clearClient", key)(self.clearClient(key)),
    clear: (key) => span("clear", key)(self.clear(key)),
    clearAll: span("clearAll")(self.clearAll),
    keys: span("keys")(self.keys),
    ...(self.lock === undefined ? {} : { lock: self.lock }),
    ...(self.pendingAuthorizations === undefined ? {} : {
      pendingAuthorizations: {
        get: (key) => span("pendingAuthorizations.get", key)(self.pendingAuthorizations!.get(key)),
        set: (key, pending) => span("pendingAuthorizations.set", key)(self.pendingAuthorizations!.set(key, pending)),
        clear: (key) => span("pendingAuthorizations.clear", key)(self.pendingAuthorizations!.clear(key))
      } satisfies PendingAuthorizations
    }),
    ...(self.revisions === undefined ? {} : {
      revisions: {
        getTokens: (key) => span("revisions.getTokens", key)(self.revisions!.getTokens(key)),
        setTokens: (key, tokens, expected) =>
          span("revisions.setTokens", key)(self.revisions!.setTokens(key, tokens, expected)),
        clearTokens: (key, expected) => span("revisions.clearTokens", key)(self.revisions!.clearTokens(key, expected))
      } satisfies TokenRevisions
    })
  }
}

interface MemoryState {
  readonly tokens: ReadonlyMap<string, StoredToken>
  readonly clients: ReadonlyMap<string, ClientInformation>
  /** Revision of each key's tokens (kept after a clear, so revisions never repeat). */
  readonly revisions: ReadonlyMap<string, number>
  readonly pending: ReadonlyMap<string, PendingAuthorization>
}

const revisionConflict = (key: string, expected: number, found: number) =>
  new StorageError({
    reason: "Conflict",
    key,
    detail: `the tokens were written by someone else (expected revision ${expected}, found ${found})`
  })

const withEntry = <A>(map: ReadonlyMap<string, A>, key: string, value: A | undefined): ReadonlyMap<string, A> => {
  const next = new Map(map)
  if (value === undefined) next.delete(key)
  else next.set(key, value)
  return next
}

/**
 * An in-memory {@link TokenStorage}: credentials live as long as the layer (one process run).
 * Values are kept as they are given, so `Redacted` secrets stay `Redacted`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.3
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<TokenStorage> = Effect.map(
  Ref.make<MemoryState>({ tokens: new Map(), clients: new Map(), revisions: new Map(), pending: new Map() }),
  (ref): TokenStorage => {
    const keys = Effect.map(Ref.get(ref), (s) => Array.from(new Set([...s.tokens.keys(), ...s.clients.keys()])).sort())
    const revisionOf = (s: MemoryState, key: string) => s.tokens.has(key) ? (s.revisions.get(key) ?? 0) : 0
    const bump = (s: MemoryState, key: string, tokens: StoredToken | undefined): MemoryState => ({
      ...s,
      tokens: withEntry(s.tokens, key, tokens),
      revisions: withEntry(s.revisions, key, (s.revisions.get(key) ?? 0) + 1)
    })
    /** Applies `tokens` (or a removal) when the revision is `expected`; the new revision, or the one found. */
    const compareAndSet = (key: string, tokens: StoredToken | undefined, expected: number) =>
      Effect.flatMap(
        Ref.modify(ref, (s): readonly [Either.Either<number, number>, MemoryState] => {
          const found = revisionOf(s, key)
          if (found !== expected) return [Either.left(found), s]
          const next = bump(s, key, tokens)
          return [Either.right(next.revisions.get(key) ?? 0), next]
        }),
        Either.match({
          onLeft: (found) => Effect.fail(revisionConflict(key, expected, found)),
          onRight: Effect.succeed
        })
      )
    return instrument("memory", {
      getTokens: (key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.tokens.get(key))),
      setTokens: (key, tokens) => Ref.update(ref, (s) => bump(s, key, tokens)),
      clearTokens: (key) =>
        Ref.update(ref, (s) => s.tokens.has(key) ? bump(s, key, undefined) : s),
      getClient: (key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.clients.get(key))),
      setClient: (key, client) => Ref.update(ref, (s) => ({ ...s, clients: withEntry(s.clients, key, client) })),
      clearClient: (key) => Ref.update(ref, (s) => ({ ...s, clients: withEntry(s.clients, key, undefined) })),
      clear: (key) =>
        Ref.update(ref, (s) => ({
          ...s,
          tokens: withEntry(s.tokens, key, undefined),
          clients: withEntry(s.clients, key, undefined),
          pending: withEntry(s.pending, key, undefined)
        })),
      clearAll: Ref.update(ref, (s) => ({ tokens: new Map(), clients: new Map(), revisions: s.revisions, pending: new Map() })),
      keys,
      pendingAuthorizations: {
        get: (key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.pending.get(key))),
        set: (key, pending) => Ref.update(ref, (s) => ({ ...s, pending: withEntry(s.pending, key, pending) })),
        clear: (key) => Ref.update(ref, (s) => ({ ...s, pending: withEntry(s.pending, key, undefined) }))
      },
      revisions: {
        getTokens: (key) =>
          Effect.map(Ref.get(ref), (s) =>
            Option.map(Option.fromNullable(s.tokens.get(key)), (value) => ({ value, revision: revisionOf(s, key) }))),
        setTokens: (key, tokens, expected) => compareAndSet(key, tokens, expected),
        clearTokens: (key, expected) => Effect.asVoid(compareAndSet(key, undefined, expected))
      }
    })
  }
)

/**
 * The default storage: in memory, nothing survives the process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStorage> = Layer.effect(TokenStorage, makeMemory)

/**
 * The default directory of {@link layerFileSystem}, from the environment:
 * `$XDG_CACHE_HOME/effect-mcp-oauth` (absolute `XDG_CACHE_HOME` only) or
 * `~/.cache/effect-mcp-oauth` on Linux and other Unixes, `~/Library/Caches/effect-mcp-oauth` on
 * macOS, `%LOCALAPPDATA%\effect-mcp-oauth` on Windows. Variables are read through the current
 * `ConfigProvider`. Fails with a `StorageError` when no home directory is known.
 *
 * @see https://specifications.freedesktop.org/basedir-spec/latest/
 * @since 0.1.0
 * @category constructors
 */
export const defaultDirectory: Effect.Effect<string, StorageError, Path.Path> = FileStore.defaultDirectory

/**
 * A {@link TokenStorage} on the file system, safe for secrets at rest on a single-user machine:
 *
 * - one file per server key and kind (tokens / client), named from a SHA-256 of the key plus a
 *   readable sanitised prefix, so no key can escape the directory;
 * - the directory has mode 0700 and the files 0600 (looser existing ones are tightened);
 * - writes are atomic: a uniquely named temporary file in the same directory, fsync, rename;
 * - the content is JSON with a format version, the server key and the schema-encoded value;
 * - a corrupted, truncated, empty or foreign file reads as absent with a logged warning;
 *   I/O failures (permission denied, not a directory, …) are `StorageError` with reason `"Io"`.
 *
 * `directory` defaults to {@link defaultDirectory}. Nothing is created until the first write.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category constructors
 */
export const makeFileSystem = (
  directory?: string
): Effect.Effect<TokenStorage, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const codec = yield* Format.CurrentCodec
    const dir = directory === undefined
      ? yield* Effect.either(Effect.provideService(FileStore.defaultDirectory, Path.Path, path))
      : Either.right(directory)
    return instrument("file", FileStore.make(dir, fs, path, { codec }))
  })

/**
 * {@link makeFileSystem} as a layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  directory?: string
): Layer.Layer<TokenStorage, never, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(TokenStorage, makeFileSystem(directory))

/**
 * {@link layerFileSystem} with Node's `FileSystem` and `Path` already provided.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystemNode = (directory?: string): Layer.Layer<TokenStorage> =>
  layerFileSystem(directory).pipe(Layer.provide(NodeFiles.layer))

/**
 * A {@link TokenStorage} over any `@effect/platform` `KeyValueStore` (Redis, browser storage,
 * …). Entries are stored under `effect-mcp-oauth/tokens:<key>` and `effect-mcp-oauth/client:<key>`
 * in the same versioned JSON format as the file store, plus an index entry
 * (`effect-mcp-oauth/index`) so that `keys` and `clearAll` work without touching other entries.
 * Corrupted entries read as absent with a logged warning; `PlatformError`s become
 * `StorageError` with reason `"Io"`. The store decides where and how the secrets are kept.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyValueStore: Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> = Effect.flatMap(
  Format.CurrentCodec,
  (codec) => Effect.map(KvStore.makeWith({ codec }), (storage) => instrument("key-value-store", storage))
)

/**
 * {@link makeKeyValueStore} as a layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category layers
 */
export const layerKeyValueStore: Layer.Layer<TokenStorage, never, KeyValueStore.KeyValueStore> = Layer.effect(
  TokenStorage,
  makeKeyValueStore
)

/**
 * Clears the tokens of `key` only if they are still `seen` (the same access token): the stored
 * tokens are re-read first — as a compare-and-set when the storage has {@link TokenRevisions} —
 * so a token another process has just refreshed is never wiped. `true` when it cleared (or
 * nothing was stored), `false` when a newer token was kept.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category combinators
 */
export const clearTokensIfUnchanged = (
  storage: TokenStorage,
  key: string,
  seen: StoredToken
): Effect.Effect<boolean, StorageError> =>
  Effect.gen(function*() {
    const same = (t: StoredToken) => Redacted.value(t.accessToken) === Redacted.value(seen.accessToken)
    if (storage.revisions === undefined) {
      const current = yield* storage.getTokens(key)
      if (Option.isSome(current) && !same(current.value)) return false
      yield* storage.clearTokens(key)
      return true
    }
    const revisions = storage.revisions
    const current = yield* revisions.getTokens(key)
    if (Option.isNone(current)) return true
    if (!same(current.value.value)) return false
    return yield* revisions.clearTokens(key, current.value.revision).pipe(
      Effect.as(true),
      Effect.catchIf((e) => e.reason === "Conflict", () => Effect.succeed(false))
    )
  }).pipe(Effect.withSpan("TokenStorage.clearTokensIfUnchanged", { attributes: { "tokenStorage.key": key } }))

/**
 * Stores `next` for `key` only if the stored tokens are still `seen` (`None`: nothing stored),
 * so an older token never overwrites a newer one. Returns the tokens now stored: `next`, or the
 * newer tokens another process wrote first.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category combinators
 */
export const setTokensIfUnchanged = (
  storage: TokenStorage,
  key: string,
  seen: Option.Option<StoredToken>,
  next: StoredToken
): Effect.Effect<StoredToken, StorageError> =>
  Effect.gen(function*() {
    const same = (t: Option.Option<StoredToken>) =>
      Option.isNone(t) ? Option.isNone(seen) : Option.isSome(seen) &&
        Redacted.value(t.value.accessToken) === Redacted.value(seen.value.accessToken)
    if (storage.revisions === undefined) {
      const current = yield* storage.getTokens(key)
      if (!same(current) && Option.isSome(current)) return current.value
      yield* storage.setTokens(key, next)
      return next
    }
    const revisions = storage.revisions
    const current = yield* revisions.getTokens(key)
    const currentValue = Option.map(current, (v) => v.value)
    if (!same(currentValue) && Option.isSome(currentValue)) return currentValue.value
    const expected = Option.match(current, { onNone: () => 0, onSome: (v) => v.revision })
    return yield* revisions.setTokens(key, next, expected).pipe(
      Effect.as(next),
      Effect.catchIf(
        (e) => e.reason === "Conflict",
        () => Effect.map(storage.getTokens(key), Option.getOrElse(() => next))
      )
    )
  }).pipe(Effect.withSpan("TokenStorage.setTokensIfUnchanged", { attributes: { "tokenStorage.key": key } }))

/**
 * Encryption at rest for {@link layerFileSystem}, {@link layerKeyValueStore} and the Redis
 * storage: the newest key encrypts every write, the previous ones only decrypt (key rotation).
 * Keys are 32 bytes (AES-256), raw or written as 64 hex digits or base64.
 *
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf
 * @since 0.1.0
 * @category models
 */
export interface EncryptionOptions {
  readonly key: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array>
  readonly previousKeys?: ReadonlyArray<Redacted.Redacted<string> | Redacted.Redacted<Uint8Array>> | undefined
  /**
   * A record found unencrypted. Default `"reject"`: it fails as a `"Decryption"` error, because
   * whoever can write to the store could otherwise plant tokens or a client of their choosing
   * (encryption is also integrity). `"read"` is the migration option for turning encryption on
   * over an existing plain store: such records are read (with a warning) and encrypted on their
   * next write; switch back to the default once every record has been rewritten.
   */
  readonly plaintext?: "read" | "reject" | undefined
}

const rawKey = (key: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array>, which: string) => {
  const value = Redacted.value<string | Uint8Array>(key)
  const parsed = typeof value === "string"
    ? Encryption.parseKey(value)
    : value.length === 32
    ? Either.right(value)
    : Either.left(`a storage key must be 32 bytes, got ${value.length}`)
  return Either.match(parsed, {
    onLeft: (detail) => Effect.fail(new StorageError({ reason: "Decryption", detail: `${which}: ${detail}` })),
    onRight: (bytes) => Effect.succeed(Redacted.make(bytes))
  })
}

/**
 * Wraps a storage layer ({@link layerFileSystem}, {@link layerKeyValueStore}, the Redis
 * storage) so that every record is encrypted at rest with AES-256-GCM (WebCrypto): a fresh
 * 96-bit IV per write, the record's location as additional authenticated data (a record copied
 * to another server's entry does not open), and a versioned envelope naming the key id.
 *
 * Reading a record encrypted with a key that is not configured, or whose ciphertext was altered,
 * fails with `StorageError` reason `"Decryption"` naming the cause — never garbage tokens. So
 * does an unencrypted record, unless `plaintext: "read"` (the migration option) is given.
 * A truncated or unparseable record reads as absent with a warning, like a corrupt plain one.
 * The memory storage keeps objects, not records: wrapping it changes nothing.
 *
 * @example
 * ```ts
 * const Storage = TokenStorage.encrypted(TokenStorage.layerFileSystemNode(), {
 *   key: Redacted.make(process.env.MCP_OAUTH_STORAGE_KEY!)
 * })
 * ```
 *
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf
 * @see https://www.rfc-editor.org/rfc/rfc5116#section-5.1
 * @since 0.1.0
 * @category layers
 */
export const encrypted = <E, R>(
  layer: Layer.Layer<TokenStorage, E, R>,
  options: EncryptionOptions
): Layer.Layer<TokenStorage, E | StorageError, R> => {
  const codec = Effect.gen(function*() {
    const current = yield* rawKey(options.key, "the storage key")
    const previous = yield* Effect.forEach(options.previousKeys ?? [], (k, i) => rawKey(k, `previous key #${i + 1}`))
    return yield* Encryption.makeCodec({ keys: [current, ...previous], plaintext: options.plaintext ?? "reject" })
  })
  return Layer.provide(layer, Layer.effect(Format.CurrentCodec, codec))
}

/**
 * The {@link EncryptionOptions} from configuration (the environment by default):
 * `MCP_OAUTH_STORAGE_KEY` (the key, hex or base64), or `MCP_OAUTH_STORAGE_KEY_FILE` (a file
 * holding it); `MCP_OAUTH_STORAGE_PREVIOUS_KEYS` (comma-separated older keys);
 * `MCP_OAUTH_STORAGE_ALLOW_PLAINTEXT=true` while migrating a plain store (`plaintext: "read"`).
 * `None` when no key is configured.
 *
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf
 * @since 0.1.0
 * @category config
 */
export const encryptionConfig: Effect.Effect<
  Option.Option<EncryptionOptions>,
  ConfigError | StorageError,
  FileSystem.FileSystem
> = Effect.gen(function*() {
  const key = yield* Config.option(Config.redacted("MCP_OAUTH_STORAGE_KEY"))
  const file = yield* Config.option(Config.string("MCP_OAUTH_STORAGE_KEY_FILE"))
  const previous = yield* Config.option(Config.redacted("MCP_OAUTH_STORAGE_PREVIOUS_KEYS"))
  const allowPlaintext = yield* Config.withDefault(Config.boolean("MCP_OAUTH_STORAGE_ALLOW_PLAINTEXT"), false)
  const migration: Pick<EncryptionOptions, "plaintext"> = allowPlaintext ? { plaintext: "read" } : {}
  const previousKeys = Option.match(previous, {
    onNone: () => [],
    onSome: (list) =>
      Redacted.value(list).split(",").map((k) => k.trim()).filter((k) => k.length > 0).map((k) => Redacted.make(k))
  })
  if (Option.isSome(key)) return Option.some({ key: key.value, previousKeys, ...migration })
  if (Option.isSome(file)) {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file.value).pipe(
      Effect.mapError((e) =>
        new StorageError({ reason: "Decryption", detail: `cannot read the key file ${file.value}: ${e.message}` })
      )
    )
    return Option.some({ key: Redacted.make(text.trim()), previousKeys, ...migration })
  }
  return Option.none()
})

/**
 * `layer`, encrypted with {@link encrypted} when {@link encryptionConfig} finds a key, else as is.
 *
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf
 * @since 0.1.0
 * @category layers
 */
export const encryptedFromConfig = <E, R>(
  layer: Layer.Layer<TokenStorage, E, R>
): Layer.Layer<TokenStorage, E | StorageError | ConfigError, R | FileSystem.FileSystem> =>
  Layer.unwrapEffect(
    Effect.map(encryptionConfig, (options) =>
      Option.match(options, {
        onNone: () => layer,
        onSome: (o) => encrypted(layer, o)
      }))
  )

/**
 * Options of {@link makeKeychain} / {@link layerKeychain}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category models
 */
export interface KeychainOptions {
  /** The keychain service (Windows: target prefix) every entry is stored under. Default `"effect-mcp-oauth"`. */
  readonly service?: string | undefined
  /**
   * The longest value one keychain entry may hold, in UTF-16 code units with the header; longer
   * records are split over several entries. Default 1200 on Windows (Credential Manager holds
   * 2560 bytes per credential, as UTF-16), no limit elsewhere. At least 128.
   */
  readonly maxEntryLength?: number | undefined
  /** Where the lock files that coordinate processes live. Default {@link defaultDirectory}. */
  readonly lockDirectory?: string | undefined
  /**
   * Linux: which credential store. Default `"secret-service"` (GNOME Keyring, KWallet, KeePassXC);
   * `"keyutils"` is the kernel keyring, which forgets everything at logout or reboot.
   */
  readonly linuxStore?: "secret-service" | "keyutils" | undefined
}

/**
 * A {@link TokenStorage} in the operating system's keychain — macOS Keychain, Windows
 * Credential Manager, the Secret Service on Linux — through `@napi-rs/keyring`, an optional
 * peer dependency loaded only here (`npm install @napi-rs/keyring`).
 *
 * - one keychain entry per record, under the service `effect-mcp-oauth`, holding the same
 *   versioned, issuer-bound record as the other stores (so {@link encrypted} works on it too);
 * - a record longer than `maxEntryLength` is split over several entries, switched atomically;
 * - an index entry lists the server keys, so `keys` (the CLI's `status`) and `clearAll` work;
 * - writes, token revisions and the index are atomic across processes through a lock file in
 *   `lockDirectory`, which also holds the `TokenLock` this storage brings;
 * - a corrupted record reads as absent with a logged warning, like in the file store; a
 *   keychain that fails an operation (locked, gone) is a `StorageError` "Io".
 *
 * Fails with `StorageError` reason `"Unavailable"` when the package is missing or the platform
 * has no keychain to talk to (Linux without a D-Bus session or a Secret Service): see
 * {@link layerAuto} for a storage that falls back to files.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @see https://specifications.freedesktop.org/secret-service-spec/latest/
 * @since 0.1.0
 * @category constructors
 */
export const makeKeychain = (
  options: KeychainOptions = {}
): Effect.Effect<TokenStorage, StorageError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const keyring = yield* Keychain.loadKeyring(options.linuxStore)
    yield* Keychain.probe(keyring, options.service ?? Keychain.DEFAULT_SERVICE)
    const path = yield* Path.Path
    const dir = options.lockDirectory === undefined
      ? yield* Effect.either(Effect.provideService(FileStore.defaultDirectory, Path.Path, path))
      : Either.right(options.lockDirectory)
    return instrument("keychain", yield* Keychain.make(keyring, dir, options))
  }).pipe(Effect.withSpan("TokenStorage.makeKeychain"))

/**
 * {@link makeKeychain} as a layer (with Node's `FileSystem` and `Path` for its lock files).
 *
 * @example
 * ```ts
 * const Storage = TokenStorage.layerKeychain() // fails with StorageError "Unavailable" where there is no keychain
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category layers
 */
export const layerKeychain = (options?: KeychainOptions): Layer.Layer<TokenStorage, StorageError> =>
  Layer.effect(TokenStorage, makeKeychain(options)).pipe(
    Layer.provide(NodeFiles.layer)
  )

/**
 * What {@link migrate} did: the keys whose records it moved, and those whose record it dropped
 * because the destination already held a newer (tokens) or an existing (client) one.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export interface MigrationResult {
  readonly moved: ReadonlyArray<string>
  readonly superseded: ReadonlyArray<string>
}

/**
 * Moves every record of `from` into `to`, then removes it from `from`. A record is written to
 * `to` when `to` has none for that key — or, for tokens, when `to`'s were obtained earlier —
 * and is removed from `from` only once `to` holds it or something newer; tokens another
 * process rewrote in `from` meanwhile stay there. Idempotent: run again, it moves what is left
 * (nothing, once it has succeeded). Used by {@link layerAuto} to move the file store into the
 * keychain.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category combinators
 */
export const migrate = (from: TokenStorage, to: TokenStorage): Effect.Effect<MigrationResult, StorageError> =>
  Effect.gen(function*() {
    const moved: Array<string> = []
    const superseded: Array<string> = []
    for (const key of yield* from.keys) {
      let wrote = false
      let dropped = false
      const tokens = yield* from.getTokens(key)
      if (Option.isSome(tokens)) {
        const there = yield* to.getTokens(key)
        if (Option.isNone(there) || there.value.obtainedAt < tokens.value.obtainedAt) {
          yield* to.setTokens(key, tokens.value)
          wrote = true
        } else dropped = true
        yield* clearTokensIfUnchanged(from, key, tokens.value)
      }
      const client = yield* from.getClient(key)
      if (Option.isSome(client)) {
        if (Option.isNone(yield* to.getClient(key))) {
          yield* to.setClient(key, client.value)
          wrote = true
        } else dropped = true
        yield* from.clearClient(key)
      }
      if (wrote) moved.push(key)
      else if (dropped) superseded.push(key)
    }
    return { moved, superseded }
  }).pipe(Effect.withSpan("TokenStorage.migrate"))

/**
 * Options of {@link layerAuto}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category models
 */
export interface AutoOptions extends KeychainOptions {
  /**
   * The file store's directory: the fallback, the source of the migration, and the keychain's
   * lock directory unless `lockDirectory` is given. Default {@link defaultDirectory}.
   */
  readonly directory?: string | undefined
  /** Move what the file store holds into the keychain when the keychain is chosen. Default `true`. */
  readonly migrate?: boolean | undefined
}

let warnedPlainFiles = false

/**
 * The best storage this machine offers, chosen when the layer is built:
 *
 * 1. the OS keychain ({@link layerKeychain}) when it answers — and then the records of the file
 *    store in `directory` are moved into it ({@link migrate}; a failure to migrate is logged and
 *    leaves the files as they are);
 * 2. else the file store encrypted with the key of {@link encryptionConfig}
 *    (`MCP_OAUTH_STORAGE_KEY` / `MCP_OAUTH_STORAGE_KEY_FILE`) when one is configured;
 * 3. else the plain file store (0600 files in a 0700 directory), with a warning logged once per
 *    process.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @see https://www.rfc-editor.org/rfc/rfc6819#section-5.3.3
 * @since 0.1.0
 * @category layers
 */
export const layerAuto = (options: AutoOptions = {}): Layer.Layer<TokenStorage, StorageError | ConfigError> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const files = encryptedFromConfig(layerFileSystem(options.directory))
      const keychain = yield* Effect.either(
        makeKeychain({ ...options, lockDirectory: options.lockDirectory ?? options.directory })
      )
      if (Either.isRight(keychain)) {
        if (options.migrate !== false) {
          yield* Layer.build(files).pipe(
            Effect.flatMap((ctx) => migrate(Context.get(ctx, TokenStorage), keychain.right)),
            Effect.tap(({ moved }) =>
              moved.length === 0 ? Effect.void : Effect.logInfo(
                `Moved the credentials of ${moved.length} key(s) from the token files into the OS keychain`
              )
            ),
            Effect.catchAll((e) =>
              Effect.logWarning(`Could not move the token files into the OS keychain (they are kept): ${e.message}`)
            )
          )
        }
        return Layer.succeed(TokenStorage, keychain.right)
      }
      const key = yield* encryptionConfig
      if (Option.isNone(key)) {
        const first = !warnedPlainFiles
        warnedPlainFiles = true
        if (first) {
          yield* Effect.logWarning(
            "Token storage: no OS keychain (" + keychain.left.detail + ") and no MCP_OAUTH_STORAGE_KEY: " +
              "tokens are kept in plain files (mode 0600)"
          )
        }
      }
      return files
    })
  ).pipe(Layer.provide(NodeFiles.layer))
