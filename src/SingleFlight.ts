/**
 * Single-flight: one token operation (refresh or sign-in) at a time per server, shared by every
 * concurrent caller in this process, and run inside the cross-process `TokenLock` — so N callers
 * (and N processes) cause one refresh. A rotating refresh token redeemed twice revokes the whole
 * grant (RFC 9700 §4.14.2), so this is a correctness rule, not an optimisation.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import type { StorageError } from "./Errors.js"
import type * as TokenLock from "./TokenLock.js"

/**
 * Runs `work` once for all callers that arrive while it runs; each gets its result.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export type SingleFlight<A, E> = (work: Effect.Effect<A, E>) => Effect.Effect<A, E | StorageError>

/**
 * Builds the single-flight slot of one storage key. The first caller installs a `Deferred` and
 * forks the work into the enclosing scope (the layer's), so interrupting one caller never strands
 * the others; everyone awaits the same `Deferred`. When the scope closes, waiters are interrupted
 * rather than left waiting. The work runs inside `lock.withLock(key, …)`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E>(options: {
  readonly key: string
  readonly lock: TokenLock.TokenLock
}): Effect.Effect<SingleFlight<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const inflight = yield* Ref.make<Option.Option<Deferred.Deferred<A, E | StorageError>>>(Option.none())
    return (work) =>
      Effect.gen(function*() {
        const mine = yield* Deferred.make<A, E | StorageError>()
        type Slot = Option.Option<Deferred.Deferred<A, E | StorageError>>
        const existing = yield* Ref.modify(inflight, (slot): readonly [Slot, Slot] =>
          Option.isSome(slot) ? [slot, slot] : [Option.none(), Option.some(mine)])
        if (Option.isSome(existing)) return yield* Deferred.await(existing.value)
        const release = (exit: Exit.Exit<A, E | StorageError>) =>
          Effect.zipRight(Ref.set(inflight, Option.none()), Deferred.done(mine, exit))
        yield* options.lock.withLock(options.key, work).pipe(
          Effect.exit,
          Effect.flatMap(release),
          Effect.onInterrupt((fibers) => release(Exit.interrupt(FiberId.combineAll(fibers)))),
          Effect.forkIn(scope)
        )
        return yield* Deferred.await(mine)
      })
  })
