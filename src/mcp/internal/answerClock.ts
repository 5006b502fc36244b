/**
 * A request's timeout clock: it measures the time the server takes to answer, not the time the
 * HTTP client below spends obtaining a token.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type { TokenWait } from "../../internal/tokenWait.js"
import { currentTokenWait } from "../../internal/tokenWait.js"
import type { McpTransportError } from "../McpErrors.js"

/**
 * A request's clock for its timeout: it runs while the request waits for the server's answer and
 * stops while the HTTP client below waits for a token (a refresh, or a sign-in that waits for the
 * user, bounded by the authorizer's own timeout); each such wait restarts it from zero, so the
 * timeout measures the answer to the request that carried the new token.
 *
 * @internal
 */
export const unsafeMakeAnswerClock = () => {
  // Plain state rather than a SubscriptionRef and a stream, and one sleep rather than a race:
  // this runs for every request.
  let waits = 0
  /** When the clock last started again after a pause (Clock millis). */
  let resumedAt = Number.NEGATIVE_INFINITY
  /** Completed (and replaced) whenever the clock stops or starts again. */
  let changed = Deferred.unsafeMake<void>(FiberId.none)
  const flip = () => {
    const previous = changed
    changed = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(previous, Effect.void)
  }
  const pause: TokenWait = (wait) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        if (waits++ === 0) flip()
      }),
      () => wait,
      () =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            if (--waits === 0) {
              resumedAt = clock.unsafeCurrentTimeMillis()
              flip()
            }
          })
        )
    )
  /** Completes once `timeout` has run on the clock without a pause. */
  const elapsed = (timeout: Duration.DurationInput): Effect.Effect<void> => {
    const millis = Duration.toMillis(timeout)
    if (!Number.isFinite(millis)) return Effect.never
    // `since`: when the clock last started; a pause that ended since then restarts it from zero
    const run = (since: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (waits > 0) {
          const signal = changed
          return Effect.zipRight(Deferred.await(signal), Effect.suspend(() => run(resumedAt)))
        }
        const start = Math.max(since, resumedAt)
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const left = start + millis - now
          return left <= 0 && waits === 0
            ? Effect.void
            : Effect.zipRight(Effect.sleep(Duration.millis(Math.max(left, 0))), run(start))
        })
      })
    return Effect.flatMap(Clock.currentTimeMillis, run)
  }
  return { pause, elapsed }
}

/**
 * {@link unsafeMakeAnswerClock} as an effect.
 *
 * @internal
 */
export const makeAnswerClock = Effect.sync(unsafeMakeAnswerClock)

/**
 * Run `effect` (whose token waits go through the clock), failing with `onTimeout` once `timeout`
 * of answer time has passed.
 *
 * @internal
 */
export const withAnswerTimeout = <A, E>(
  effect: Effect.Effect<A, E>,
  timeout: Duration.DurationInput,
  onTimeout: () => McpTransportError
): Effect.Effect<A, E | McpTransportError> =>
  Effect.flatMap(makeAnswerClock, (clock) =>
    Effect.raceFirst(
      Effect.locally(effect, currentTokenWait, clock.pause),
      Effect.zipRight(clock.elapsed(timeout), Effect.failSync(onTimeout))
    ))

