/**
 * Fencing of the cross-process token lock (issue: a holder stalled past its lease keeps going
 * while a waiter enters, so two processes redeem one refresh token). A real OS process holds the
 * lock, is SIGSTOPped past its lease while another process takes the lock and refreshes, then
 * is SIGCONTed and carries on as a refresh would.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisTestsEnabled, startRedis } from "../storage/redisServer.js"
import { runStalledHolder, type StalledHolderResult } from "./multiProcess.js"

const LEASE = 1_500

/** With fencing: the stalled holder learns it lost the lease and neither redeems nor writes. */
const expectFenced = (r: StalledHolderResult) => {
  expect(r.other).toEqual({ ok: 1, failed: 0, errors: [] })
  expect(r.holder.redeemed).toBe(false)
  expect(r.holder.wrote).toBe(false)
  expect(r.holder.detail).toContain("lost")
  expect(r.refreshes).toBe(1)
  expect(r.storedAccessToken).not.toBe("stale-holder")
  expect(r.storedTokenStatus).toBe(200) // the grant survived: the other process's token works
}

/**
 * Without the check before redeeming (control): the refresh token is redeemed a second time —
 * the hazard — but the storage still refuses the stale holder's write.
 */
const expectWriteRefused = (r: StalledHolderResult) => {
  expect(r.other).toEqual({ ok: 1, failed: 0, errors: [] })
  expect(r.holder.redeemed).toBe(true)
  expect(r.refreshes).toBe(2)
  expect(r.holder.redeemStatus).toBe(400) // a replay of a rotated refresh token
  expect(r.holder.wrote).toBe(false)
  expect(r.holder.detail).toContain("lease")
  expect(r.storedAccessToken).not.toBe("stale-holder")
}

describe("a lock holder SIGSTOPped past its lease, then SIGCONTed", () => {
  it.scopedLive("file lock: TokenLock.ensureHeld fails before redeeming; one refresh in all; the new token stays", () =>
    Effect.gen(function*() {
      expectFenced(yield* runStalledHolder({ backend: "file", leaseMillis: LEASE, fencing: true }))
    }), 120_000)

  it.scopedLive("file lock, no check before redeeming (control): the refresh token is redeemed twice, but the file store refuses the stale write", () =>
    Effect.gen(function*() {
      expectWriteRefused(yield* runStalledHolder({ backend: "file", leaseMillis: LEASE, fencing: false }))
    }), 120_000)

  describe.runIf(redisTestsEnabled)("Redis", () => {
    it.scopedLive("Redis lock: TokenLock.ensureHeld fails before redeeming; one refresh in all; the new token stays", () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        expectFenced(yield* runStalledHolder({ backend: "redis", redisUrl: redis.url, leaseMillis: LEASE, fencing: true }))
      }), 120_000)

    it.scopedLive("Redis lock, no check before redeeming (control): redeemed twice, but the Redis storage's compare-and-set refuses the stale write", () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        expectWriteRefused(
          yield* runStalledHolder({ backend: "redis", redisUrl: redis.url, leaseMillis: LEASE, fencing: false })
        )
      }), 120_000)
  })
})
