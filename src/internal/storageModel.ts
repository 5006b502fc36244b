/**
 * The storage model (the `TokenStorage` service's shape, revisions, the lock a storage brings),
 * declared below `TokenStorage` so that the stores that implement it (`fileStore`, `kvStore`,
 * `redisLock`) need not import the public module that uses them. Re-exported by `TokenStorage`.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { StorageError } from "../Errors.js"
import type { ClientInformation, PendingAuthorization, StoredToken } from "../Schemas.js"

/**
 * Stores the credentials of each MCP server under a key derived from the server's URL
 * (see `TokenStorage.serverKey`). Tokens and client information are stored separately so that a stale
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
  /** Removes the tokens and the client information of one server (and its sign-in in progress). */
  readonly clear: (key: string) => Effect.Effect<void, StorageError>
  /** Removes everything this storage holds. */
  readonly clearAll: Effect.Effect<void, StorageError>
  /** The keys of every server with stored tokens or client information. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, StorageError>
  /**
   * Versioned, compare-and-set access to the tokens, when the backend offers it (memory, file
   * system, key-value stores; across processes for the file system and Redis). See
   * {@link TokenRevisions}. Use `TokenStorage.clearTokensIfUnchanged` / `setTokensIfUnchanged`,
   * which fall back to read-then-write on storages without it.
   */
  readonly revisions?: TokenRevisions | undefined
  /**
   * The cross-process lock that goes with this storage when other processes can share it (the
   * file system: a lock file per server in the same directory; Redis: a Redis lock on the same
   * connection). `OAuthLayer` uses it when the app provides no `TokenLock` of its own
   * (`TokenLock.resolve`); provide `TokenLock.layerNone` to opt out. Absent for the memory
   * storage, which no other process can see.
   */
  readonly lock?: SharedLock | undefined
  /**
   * Where the browser sign-in in progress is kept (see `PendingAuthorization`), so that another
   * process can take it over; absent on storages that do not keep it (then a process that
   * replaces one mid sign-in starts a new sign-in).
   */
  readonly pendingAuthorizations?: PendingAuthorizations | undefined
}

/**
 * The authorization request in progress of each server key, stored with the same protections as
 * its tokens (a file of mode 0600, encrypted when the storage is).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category models
 */
export interface PendingAuthorizations {
  readonly get: (key: string) => Effect.Effect<Option.Option<PendingAuthorization>, StorageError>
  readonly set: (key: string, pending: PendingAuthorization) => Effect.Effect<void, StorageError>
  readonly clear: (key: string) => Effect.Effect<void, StorageError>
}

/**
 * A cross-process lock: runs `effect` while holding the lock of `key` (the shape of
 * `TokenLock.TokenLock`, declared here so that a storage can bring its own).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export interface SharedLock {
  readonly withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
}

/**
 * A stored value with its revision: a counter per server key that every write increases (0
 * means nothing is stored, or a record written before revisions existed).
 *
 * @since 0.1.0
 * @category models
 */
export interface Versioned<A> {
  readonly value: A
  readonly revision: number
}

/**
 * Compare-and-set on stored tokens, so that a process never overwrites a newer token with an
 * older one, nor clears a token another process has just refreshed (RFC 9700 §4.14.2: a
 * rotated refresh token must not be lost). A write whose `expected` revision is no longer the
 * stored one fails with `StorageError` reason `"Conflict"` and changes nothing.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export interface TokenRevisions {
  readonly getTokens: (key: string) => Effect.Effect<Option.Option<Versioned<StoredToken>>, StorageError>
  /** Writes when the stored revision is `expected` (0: nothing stored); returns the new revision. */
  readonly setTokens: (key: string, tokens: StoredToken, expected: number) => Effect.Effect<number, StorageError>
  /** Removes the tokens when the stored revision is `expected`. */
  readonly clearTokens: (key: string, expected: number) => Effect.Effect<void, StorageError>
}
