/**
 * When and how to retry a token-endpoint call that failed for a transient reason (network,
 * timeout, 5xx, 429, `temporarily_unavailable`): a bounded, jittered exponential backoff that
 * honours `Retry-After`. The refresh token is kept across these retries; only terminal errors
 * (`invalid_grant`, `invalid_client`) lead to invalidation.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { OAuthRequestError, OAuthTokenError } from "./Errors.js"

/**
 * Whether a failure is worth retrying later without discarding credentials: an
 * `OAuthRequestError` of reason `Transport` or `Timeout`, or an `OAuthTokenError` that is
 * transient (HTTP 5xx, 429, `temporarily_unavailable`, `server_error`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.6
 * @since 0.1.0
 * @category predicates
 */
export const isTransient = (error: unknown): boolean =>
  error instanceof OAuthRequestError
    ? error.reason === "Transport" || error.reason === "Timeout"
    : error instanceof OAuthTokenError && error.isTransient

/**
 * The server's requested wait before a retry (RFC 9110 §10.2.3 `Retry-After`, in seconds), when
 * the error carries it as a numeric `retryAfter` field (as `OAuthTokenError` does).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 * @since 0.1.0
 * @category utilities
 */
export const retryAfter = (error: unknown): Option.Option<Duration.Duration> =>
  typeof error === "object" && error !== null && "retryAfter" in error && typeof error.retryAfter === "number" &&
    Number.isFinite(error.retryAfter) && error.retryAfter >= 0
    ? Option.some(Duration.seconds(error.retryAfter))
    : Option.none()

/**
 * Options of {@link transientRetry}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransientRetryOptions {
  /** First delay. Default 250 ms. */
  readonly base?: Duration.DurationInput | undefined
  /** Growth factor. Default 2. */
  readonly factor?: number | undefined
  /** Longest delay (also caps `Retry-After`). Default 10 s. */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Retries at most (not counting the first attempt). Default 3. */
  readonly maxRetries?: number | undefined
}

/**
 * A retry schedule for token-endpoint calls: recurs only while the failure {@link isTransient},
 * at most `maxRetries` times, after a jittered exponential delay (`base` × `factor`^n, each
 * randomised to 80–120 %), never shorter than the server's `Retry-After` and never longer than
 * `maxDelay`. Use with `Effect.retry(effect, transientRetry())`.
 *
 * @example
 * ```ts
 * const refreshed = exchange.refresh(request).pipe(Effect.retry(RetryPolicy.transientRetry()))
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category schedules
 */
export const transientRetry = <E>(
  options: TransientRetryOptions = {}
): Schedule.Schedule<readonly [E, Duration.Duration], E> => {
  const maxDelay = Duration.decode(options.maxDelay ?? Duration.seconds(10))
  return Schedule.identity<E>().pipe(
    Schedule.intersect(
      Schedule.exponential(options.base ?? Duration.millis(250), options.factor ?? 2).pipe(Schedule.jittered)
    ),
    Schedule.modifyDelay(([error], delay) => {
      const wanted = Option.match(retryAfter(error), { onNone: () => delay, onSome: (ra) => Duration.max(ra, delay) })
      return Duration.min(wanted, maxDelay)
    }),
    Schedule.intersect(Schedule.recurs(options.maxRetries ?? 3)),
    Schedule.whileInput((error: E) => isTransient(error)),
    Schedule.map(([[error, delay]]) => [error, delay] as const)
  )
}
