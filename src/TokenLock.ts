/**
 * A lock around "decide to refresh / sign in, do it, store the result", shared by every process
 * that uses the same token storage, so that N processes cause one refresh (a rotating refresh
 * token redeemed twice revokes the whole family, RFC 9700 §4.14.2). In-process concurrency is
 * already single-flight in `OAuth`; this lock only coordinates processes.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { StorageError } from "./Errors.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenLock {
  /**
   * Runs `effect` while holding the lock of `key` (a server storage key). Holders that crash
   * must not block others beyond a lease. The orchestrator re-reads storage inside the lock.
   */
  readonly withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TokenLock: Context.Tag<TokenLock, TokenLock> = Context.GenericTag<TokenLock>(
  "effect-mcp-oauth/TokenLock"
)

/**
 * No cross-process coordination (the default, right for a single process or memory storage).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<TokenLock> = Layer.sync(TokenLock, () => none)

/**
 * The service of {@link layerNone}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: TokenLock = { withLock: (_key, effect) => effect }
