import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisTestsEnabled, startRedis } from "../storage/redisServer.js"
import { runScenario, type ScenarioResult } from "./multiProcess.js"

const PROCESSES = 4
const REQUESTS = 50

const expectOneRefreshAndAllOk = (r: ScenarioResult) => {
  expect(r.results).toHaveLength(PROCESSES)
  for (const result of r.results) expect(result).toEqual({ ok: REQUESTS, failed: 0, errors: [] })
  expect(r.exitCodes).toEqual(Array.from({ length: PROCESSES }, () => 0))
  expect(r.refreshes).toBe(1)
  expect(r.tokenRequests).toBe(1)
}

describe("cross-process single-flight: 4 OS processes × 50 concurrent requests, one expired token", () => {
  it.scopedLive("file store + TokenLock.layerFile: the server sees exactly one refresh; every request succeeds", () =>
    Effect.gen(function*() {
      const r = yield* runScenario({ backend: "file", processes: PROCESSES, requestsPerProcess: REQUESTS })
      expectOneRefreshAndAllOk(r)
      expect(yield* r.server.count("resource")).toBe(PROCESSES * REQUESTS)
    }), 120_000)

  it.scopedLive("only TokenStorage.layerFileSystem provided: the lock it brings is used — exactly one refresh; every request succeeds", () =>
    Effect.gen(function*() {
      const r = yield* runScenario({ backend: "file", processes: PROCESSES, requestsPerProcess: REQUESTS, lock: "storage" })
      expectOneRefreshAndAllOk(r)
    }), 120_000)

  it.scopedLive("control: the same processes opting out with TokenLock.layerNone redeem the refresh token more than once", () =>
    Effect.gen(function*() {
      const r = yield* runScenario({ backend: "file", processes: PROCESSES, requestsPerProcess: REQUESTS, lock: false })
      expect(r.tokenRequests).toBeGreaterThan(1)
    }), 120_000)

  it.scopedLive("file lock holder SIGKILLed: the others wait on it, then proceed (dead pid) with one refresh", () =>
    Effect.gen(function*() {
      const r = yield* runScenario({ backend: "file", processes: PROCESSES, requestsPerProcess: REQUESTS, killHolder: true })
      expect(r.tokenRequestsWhileHeld).toBe(0)
      expectOneRefreshAndAllOk(r)
    }), 120_000)

  describe.runIf(redisTestsEnabled)("Redis", () => {
    it.scopedLive("RedisStorage + TokenLock.layerRedis: exactly one refresh; every request succeeds", () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const r = yield* runScenario({ backend: "redis", redisUrl: redis.url, processes: PROCESSES, requestsPerProcess: REQUESTS })
        expectOneRefreshAndAllOk(r)
      }), 120_000)

    it.scopedLive("only RedisStorage.layer provided: the Redis lock it brings is used — exactly one refresh", () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const r = yield* runScenario({
          backend: "redis",
          redisUrl: redis.url,
          processes: PROCESSES,
          requestsPerProcess: REQUESTS,
          lock: "storage"
        })
        expectOneRefreshAndAllOk(r)
      }), 120_000)

    it.scopedLive("Redis lock holder SIGKILLed: the others proceed after its lease (3 s) with one refresh", () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const r = yield* runScenario({
          backend: "redis",
          redisUrl: redis.url,
          processes: PROCESSES,
          requestsPerProcess: REQUESTS,
          killHolder: true,
          leaseMillis: 3_000
        })
        expect(r.tokenRequestsWhileHeld).toBe(0)
        expectOneRefreshAndAllOk(r)
        expect(r.durationMillis).toBeGreaterThanOrEqual(1_500)
      }), 120_000)
  })
})
