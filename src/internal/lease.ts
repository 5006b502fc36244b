/**
 * The lease of the cross-process token lock held by the current fiber, so that the two places
 * where a holder that lost its lease would do harm can check it (fencing):
 *
 * - immediately before a refresh token is redeemed (`TokenLock.ensureHeld`): a holder stalled
 *   past its lease (SIGSTOP, a long GC pause, a suspended laptop) while another process took the
 *   lock must not redeem the same refresh token a second time (RFC 9700 §4.14.2: a replay revokes
 *   the grant);
 * - inside the storage's own atomic write of the tokens: a write from a holder that lost its
 *   lease is refused, so it never replaces the tokens the new holder stored.
 *
 * `TokenLock.layerFile` / `layerRedis` provide it to the effect they guard; outside a lock (or
 * with `TokenLock.layerNone`) there is none and both checks are no-ops.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StorageError } from "../Errors.js"

/** @internal */
export interface Lease {
  /** The storage key the lock guards. */
  readonly key: string
  /**
   * Succeeds when the lease is still this holder's, extending it to a full lease; fails with
   * `StorageError` reason `"Conflict"` when it was lost (expired, broken or taken).
   */
  readonly ensureHeld: Effect.Effect<void, StorageError>
  /**
   * For a Redis lock: where it lives, so that a Redis storage on the same connection checks
   * ownership in the same atomic script as its write.
   */
  readonly redis?: {
    readonly connection: object
    readonly lockKey: string
    readonly owner: string
  } | undefined
}

/** @internal */
export class CurrentLease extends Context.Reference<CurrentLease>()("effect-mcp-oauth/internal/CurrentLease", {
  defaultValue: (): Option.Option<Lease> => Option.none()
}) {}

/** Runs `effect` as the holder of `lease`. @internal */
export const provide = (lease: Lease) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, CurrentLease, Option.some(lease))

/** The current lease, if the fiber runs inside a token lock that has one. @internal */
export const current: Effect.Effect<Option.Option<Lease>> = CurrentLease

/**
 * Fails with `StorageError` "Conflict" when the fiber runs inside a token lock whose lease was
 * lost; otherwise extends the lease. A no-op outside a lock.
 *
 * @internal
 */
export const ensureHeld: Effect.Effect<void, StorageError> = Effect.flatMap(
  CurrentLease,
  Option.match({ onNone: () => Effect.void, onSome: (lease) => lease.ensureHeld })
)
