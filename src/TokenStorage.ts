/**
 * Token storage: tokens and client information per MCP server, with absolute expiry and
 * issuer binding. The default is in memory; `layerFileSystem` keeps them on disk safely.
 *
 * @since 0.1.0
 */
import { Context, Effect, Option } from "effect"
import type { StorageError } from "./Errors.js"
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
