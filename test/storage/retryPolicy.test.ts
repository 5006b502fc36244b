import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { OAuthRequestError, OAuthTokenError } from "../../src/Errors.js"
import * as RetryPolicy from "../../src/RetryPolicy.js"

const unavailable = new OAuthTokenError({ error: "temporarily_unavailable", status: 503 })
const invalidGrant = new OAuthTokenError({ error: "invalid_grant", status: 400 })
const network = new OAuthRequestError({ reason: "Transport", url: "http://127.0.0.1:1/token", detail: "ECONNREFUSED" })

/** An operation that fails with the given errors in turn, then succeeds; records attempt times. */
const flaky = (errors: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    const attempts = yield* Ref.make<ReadonlyArray<number>>([])
    const op = Effect.gen(function*() {
      const now = yield* TestClock.currentTimeMillis
      const n = (yield* Ref.updateAndGet(attempts, (a) => [...a, now])).length
      if (n <= errors.length) return yield* Effect.fail(errors[n - 1])
      return "token"
    })
    return { attempts, op }
  })

describe("RetryPolicy.transientRetry (TestClock)", () => {
  it.effect("retries transient failures with growing, jittered delays (80–120 % of 250 ms × 2^n), then succeeds", () =>
    Effect.gen(function*() {
      const { attempts, op } = yield* flaky([unavailable, network, new OAuthTokenError({ error: "x", status: 429 })])
      const fiber = yield* Effect.fork(Effect.retry(op, RetryPolicy.transientRetry()))
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(fiber)).toBe("token")
      const times = yield* Ref.get(attempts)
      expect(times).toHaveLength(4)
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(250 * 2 ** i * 0.8)
        expect(gap).toBeLessThanOrEqual(250 * 2 ** i * 1.2)
      })
    }))

  it.effect("does not retry terminal errors (invalid_grant): the caller can invalidate at once", () =>
    Effect.gen(function*() {
      const { attempts, op } = yield* flaky([invalidGrant])
      const error = yield* Effect.flip(Effect.retry(op, RetryPolicy.transientRetry()))
      expect(error).toBe(invalidGrant)
      expect(yield* Ref.get(attempts)).toHaveLength(1)
    }))

  it.effect("is bounded: after maxRetries the last transient error is returned", () =>
    Effect.gen(function*() {
      const { attempts, op } = yield* flaky(Array.from({ length: 10 }, () => unavailable))
      const fiber = yield* Effect.fork(Effect.flip(Effect.retry(op, RetryPolicy.transientRetry({ maxRetries: 2 }))))
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.join(fiber)).toBe(unavailable)
      expect(yield* Ref.get(attempts)).toHaveLength(3)
    }))

  it.effect("honours Retry-After (never sooner), capped by maxDelay", () =>
    Effect.gen(function*() {
      const slowDown = Object.assign(new OAuthTokenError({ error: "slow_down", status: 429 }), { retryAfter: 5 })
      const { attempts, op } = yield* flaky([slowDown])
      const fiber = yield* Effect.fork(Effect.retry(op, RetryPolicy.transientRetry()))
      yield* TestClock.adjust("4900 millis")
      expect(yield* Ref.get(attempts)).toHaveLength(1)
      yield* TestClock.adjust("200 millis")
      expect(yield* Fiber.join(fiber)).toBe("token")

      const forever = Object.assign(new OAuthTokenError({ error: "busy", status: 503 }), { retryAfter: 3600 })
      const capped = yield* flaky([forever])
      const f2 = yield* Effect.fork(Effect.retry(capped.op, RetryPolicy.transientRetry({ maxDelay: "2 seconds" })))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(f2)).toBe("token")
    }))

  it("classifies errors", () => {
    expect(RetryPolicy.isTransient(unavailable)).toBe(true)
    expect(RetryPolicy.isTransient(network)).toBe(true)
    expect(RetryPolicy.isTransient(new OAuthRequestError({ reason: "Timeout", url: "u", detail: "d" }))).toBe(true)
    expect(RetryPolicy.isTransient(new OAuthRequestError({ reason: "Redirect", url: "u", detail: "d" }))).toBe(false)
    expect(RetryPolicy.isTransient(invalidGrant)).toBe(false)
    expect(RetryPolicy.isTransient(new OAuthTokenError({ error: "invalid_client", status: 401 }))).toBe(false)
    expect(RetryPolicy.isTransient("boom")).toBe(false)
    expect(RetryPolicy.retryAfter({ retryAfter: 7 })).toEqual(Option.some(Duration.seconds(7)))
    expect(RetryPolicy.retryAfter({ retryAfter: -1 })).toEqual(Option.none())
  })
})
