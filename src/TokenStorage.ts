/**
 * Token storage: tokens and client information per MCP server, with absolute expiry and
 * issuer binding. The default is in memory; `layerFileSystem` keeps them on disk safely.
 *
 * @since 0.1.0
 */
import { FileSystem, KeyValueStore, Path } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Context, Effect, Either, Layer, Option, Ref } from "effect"
import type { StorageError } from "./Errors.js"
import * as FileStore from "./internal/fileStore.js"
import * as KvStore from "./internal/kvStore.js"
import type { ClientInformation, StoredToken } from "./Schemas.js"

/**
 * Stores the credentials of each MCP server under a key derived from the server's URL
 * (see {@link serverKey}). Tokens and client information are stored separately so that a stale
 * client can be cleared without touching anything else.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenStorage {
  readonly getTokens: (key: string) => Effect.Effect<Option.Option<StoredToken>, StorageError>
  readonly setTokens: (key: string, tokens: StoredToken) => Effect.Effect<void, StorageError>
  readonly clearTokens: (key: string) => Effect.Effect<void, StorageError>
  readonly getClient: (key: string) => Effect.Effect<Option.Option<ClientInformation>, StorageError>
  readonly setClient: (key: string, client: ClientInformation) => Effect.Effect<void, StorageError>
  readonly clearClient: (key: string) => Effect.Effect<void, StorageError>
  /** Removes the tokens and the client information of one server. */
  readonly clear: (key: string) => Effect.Effect<void, StorageError>
  /** Removes everything this storage holds. */
  readonly clearAll: Effect.Effect<void, StorageError>
  /** The keys of every server with stored tokens or client information. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, StorageError>
}

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
  const u = new URL(url)
  const path = u.pathname.replace(/\/+$/, "")
  return `${u.protocol}//${u.host}${path}`
}

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
    keys: span("keys")(self.keys)
  }
}

interface MemoryState {
  readonly tokens: ReadonlyMap<string, StoredToken>
  readonly clients: ReadonlyMap<string, ClientInformation>
}

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
  Ref.make<MemoryState>({ tokens: new Map(), clients: new Map() }),
  (ref): TokenStorage => {
    const keys = Effect.map(Ref.get(ref), (s) => Array.from(new Set([...s.tokens.keys(), ...s.clients.keys()])).sort())
    return instrument("memory", {
      getTokens: (key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.tokens.get(key))),
      setTokens: (key, tokens) => Ref.update(ref, (s) => ({ ...s, tokens: withEntry(s.tokens, key, tokens) })),
      clearTokens: (key) => Ref.update(ref, (s) => ({ ...s, tokens: withEntry(s.tokens, key, undefined) })),
      getClient: (key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.clients.get(key))),
      setClient: (key, client) => Ref.update(ref, (s) => ({ ...s, clients: withEntry(s.clients, key, client) })),
      clearClient: (key) => Ref.update(ref, (s) => ({ ...s, clients: withEntry(s.clients, key, undefined) })),
      clear: (key) =>
        Ref.update(ref, (s) => ({
          tokens: withEntry(s.tokens, key, undefined),
          clients: withEntry(s.clients, key, undefined)
        })),
      clearAll: Ref.set(ref, { tokens: new Map(), clients: new Map() }),
      keys
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
    const dir = directory === undefined
      ? yield* Effect.either(Effect.provideService(FileStore.defaultDirectory, Path.Path, path))
      : Either.right(directory)
    return instrument("file", FileStore.make(dir, fs, path))
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
  layerFileSystem(directory).pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)))

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
export const makeKeyValueStore: Effect.Effect<TokenStorage, never, KeyValueStore.KeyValueStore> = Effect.map(
  KvStore.make,
  (storage) => instrument("key-value-store", storage)
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
