/**
 * The soak: 4 OS processes make steady calls through `OAuthLayer` for SOAK_SECONDS (default 600;
 * 20 when CI=true) against an authorization server issuing 5-second access tokens and rotating
 * refresh tokens with reuse detection (a replayed refresh token revokes the grant), sharing one
 * file token store. JSON lines:
 *
 * - soak_failed_calls (goal 0)
 * - soak_refreshes_per_lifetime: refreshes ÷ (duration ÷ 5 s), across all processes (goal: one
 *   refresh per token, at the refresh margin before its expiry: 5 ÷ (5 − 1.25) ≈ 1.33)
 * - soak_rss_growth_mb, soak_fd_growth: per process, end − start after warm-up (goal: flat)
 * - soak_sign_ins: authorization requests after the first sign-in (goal 0)
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, Redacted } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as Refresh from "../../src/Refresh.js"
import { StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"

const PROCESSES = 4
const TTL_SECONDS = 5

interface WorkerReport {
  readonly calls: number
  readonly failed: number
  readonly errors: Record<string, number>
  readonly start: { readonly rssMb: number; readonly fds: number }
  readonly end: { readonly rssMb: number; readonly fds: number }
  /** When its first call started and its last ended (epoch ms). */
  readonly began: number
  readonly ended: number
}

const runWorker = (env: Record<string, string>) =>
  Effect.async<WorkerReport, Error>((resume) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", path.join(import.meta.dirname, "soakWorker.ts")], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: { ...process.env, ...env, NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString("utf8")))
    child.on("exit", (code) => {
      const line = out.split("\n").reverse().find((l) => l.startsWith("{\"calls\""))
      resume(
        line === undefined
          ? Effect.fail(new Error(`soak worker exited ${code} without a report`))
          : Effect.succeed(JSON.parse(line) as WorkerReport)
      )
    })
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

const round = (x: number) => Math.round(x * 100) / 100

export const soak = (emit: (line: Record<string, unknown>) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const seconds = Number(process.env["SOAK_SECONDS"] ?? (process.env["CI"] === "true" ? "20" : "600"))
    const server = yield* startTestServer({ accessTokenTtlSeconds: TTL_SECONDS })
    const dir = mkdtempSync(path.join(tmpdir(), "soak-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    // the first sign-in, here; the processes start with its tokens
    yield* Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      yield* client.post(server.mcpUrl, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) })
    }).pipe(
      Effect.scoped,
      Effect.provide(
        HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
          Layer.provide(Layer.merge(TokenStorage.layerFileSystemNode(dir), Authorizer.layerHeadless())),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      )
    )
    yield* server.resetCounters
    const reports = yield* Effect.all(
      Array.from({ length: PROCESSES }, () =>
        runWorker({ SOAK_DIR: dir, SOAK_MCP_URL: server.mcpUrl, SOAK_SECONDS: String(seconds) })),
      { concurrency: "unbounded" }
    )
    // the calling window of all processes together (their start-up excluded)
    const elapsed = (Math.max(...reports.map((r) => r.ended)) - Math.min(...reports.map((r) => r.began))) / 1000
    const tokenRequests = yield* server.requestsTo("token")
    const refreshes = tokenRequests.filter((r) => r.form["grant_type"] === "refresh_token").length
    const calls = reports.reduce((n, r) => n + r.calls, 0)
    const failed = reports.reduce((n, r) => n + r.failed, 0)
    const base = { processes: PROCESSES, seconds, access_token_ttl_s: TTL_SECONDS }
    yield* emit({
      metric: "soak_failed_calls",
      value: failed,
      goal: 0,
      calls,
      errors: reports.map((r) => r.errors),
      ...base
    })
    // Once per token: a token is used until the refresh margin before its expiry (1.25 s of a
    // 5-s lifetime), so a process refreshes every lifetime − margin, TTL ÷ (TTL − margin) times
    // per lifetime of wall time (1.33), whatever the number of processes sharing the store.
    const lifetime = new StoredToken({
      accessToken: Redacted.make("-"),
      tokenType: "Bearer",
      scopes: [],
      issuer: "-",
      obtainedAt: 0,
      expiresAt: TTL_SECONDS * 1000
    })
    // 60 s: the default margin (OAuthOptions.refreshMargin); a 5-s token gets its short-lived one
    const margin = Refresh.refreshMargin(lifetime, 60_000) / 1000
    yield* emit({
      metric: "soak_refreshes_per_lifetime",
      value: round(refreshes / (elapsed / TTL_SECONDS)),
      goal: round(TTL_SECONDS / (TTL_SECONDS - margin)),
      refresh_margin_s: margin,
      // over a short window the count is whole refreshes: within one of this is the goal met
      expected_refreshes: round(elapsed / (TTL_SECONDS - margin)),
      refreshes,
      elapsed_s: round(elapsed),
      ...base
    })
    yield* emit({
      metric: "soak_rss_growth_mb",
      value: reports.map((r) => round(r.end.rssMb - r.start.rssMb)),
      goal: "flat",
      start_mb: reports.map((r) => round(r.start.rssMb)),
      ...base
    })
    yield* emit({
      metric: "soak_fd_growth",
      value: reports.map((r) => r.end.fds - r.start.fds),
      goal: 0,
      start: reports.map((r) => r.start.fds),
      ...base
    })
    yield* emit({ metric: "soak_sign_ins", value: yield* server.count("authorize"), goal: 0, ...base })
  }).pipe(Effect.scoped)
