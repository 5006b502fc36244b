/**
 * Storage and cross-process benchmarks, called by the bench runner (test/bench/run.ts). Each
 * returns JSON-line objects; nothing here prints.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { runScenario } from "../lock/multiProcess.js"

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const round = (x: number) => Math.round(x * 1000) / 1000

const stats = (samples: Array<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    unit: "ms",
    samples: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length))
  }
}

/**
 * 4 OS processes × 50 concurrent requests with one expired token, sharing a file store and
 * TokenLock.layerFile: how many refreshes the authorization server sees (the goal is 1).
 */
export async function benchCrossProcessRefreshes(): Promise<object> {
  const processes = 4
  const requestsPerProcess = 50
  const result = await Effect.runPromise(
    Effect.scoped(runScenario({ backend: "file", processes, requestsPerProcess }))
  )
  return {
    metric: "cross_process_refreshes",
    processes,
    requests_per_process: requestsPerProcess,
    value: result.refreshes,
    token_requests: result.tokenRequests,
    ok: result.results.reduce((n, r) => n + r.ok, 0),
    failed: result.results.reduce((n, r) => n + r.failed, 0),
    duration_ms: result.durationMillis
  }
}

/**
 * File-store latency with 10 000 stored servers: every server's tokens are written (each write
 * is atomic: lock, temp file, fsync, rename, directory fsync), then 1 000 random servers are
 * read, then 1 000 are rewritten with the directory full. One JSON line per operation.
 */
export async function benchFileStore10k(): Promise<Array<object>> {
  const servers = 10_000
  const sampled = 1_000
  const dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-bench-"))
  try {
    return await Effect.runPromise(Effect.gen(function*() {
      const ctx = yield* Layer.build(TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer)))
      const storage = Context.get(ctx, TokenStorage.TokenStorage)
      const keyOf = (i: number) => `https://mcp-${i}.example.com/mcp`
      const token = (i: number) =>
        new StoredToken({
          accessToken: Redacted.make(`at-${i}-${"x".repeat(40)}`),
          tokenType: "Bearer",
          refreshToken: Redacted.make(`rt-${i}-${"y".repeat(40)}`),
          expiresAt: Date.now() + 3_600_000,
          scopes: ["mcp:read", "mcp:write"],
          issuer: `https://auth-${i % 50}.example.com`,
          resource: keyOf(i),
          obtainedAt: Date.now()
        })
      const timed = <A, E>(self: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          const start = performance.now()
          yield* self
          return performance.now() - start
        })
      const writes: Array<number> = []
      for (let i = 0; i < servers; i++) writes.push(yield* timed(storage.setTokens(keyOf(i), token(i))))
      const pick = () => Math.floor(Math.random() * servers)
      const reads: Array<number> = []
      for (let i = 0; i < sampled; i++) reads.push(yield* timed(storage.getTokens(keyOf(pick()))))
      const rewrites: Array<number> = []
      for (let i = 0; i < sampled; i++) {
        const n = pick()
        rewrites.push(yield* timed(storage.setTokens(keyOf(n), token(n))))
      }
      const base = { backend: "file", servers }
      return [
        { metric: "file_store_write_latency", ...base, phase: "populate", ...stats(writes) },
        { metric: "file_store_read_latency", ...base, ...stats(reads) },
        { metric: "file_store_write_latency", ...base, phase: "overwrite_full_dir", ...stats(rewrites) }
      ]
    }).pipe(Effect.scoped))
  } finally {
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
}
