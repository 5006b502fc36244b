/**
 * The cross-process single-flight scenario, shared by test/lock/crossProcess.test.ts and the
 * benchmark (test/bench/storage.ts): one loopback authorization server in this process, N OS
 * processes (test/lock/fixtures/worker.ts) sharing one token store and TokenLock, all starting
 * together with an expired access token and a refresh token seeded by this process.
 */
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Readline from "node:readline"
import * as Authorizer from "../../src/Authorizer.js"
import * as RedisStorage from "../../src/RedisStorage.js"
import { ClientInformation, StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startTestServer, type TestServer } from "../fixtures/TestAuthServer.js"
import type { WorkerConfig } from "./fixtures/worker.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const WORKER = NodePath.join(import.meta.dirname, "fixtures", "worker.ts")

export interface ScenarioOptions {
  readonly backend: "file" | "redis"
  readonly processes: number
  readonly requestsPerProcess: number
  readonly redisUrl?: string
  /** Start a process that holds the lock first, and SIGKILL it once the workers wait on it. */
  readonly killHolder?: boolean
  readonly leaseMillis?: number
  /** `false`: the workers opt out with `TokenLock.layerNone` (control case); `"storage"`: only the storage layer. */
  readonly lock?: boolean | "storage"
}

export interface WorkerResult {
  readonly ok: number
  readonly failed: number
  readonly errors: ReadonlyArray<string>
}

export interface ScenarioResult {
  readonly refreshes: number
  readonly tokenRequests: number
  /** Token requests seen while the killed holder still held the lock (must be 0). */
  readonly tokenRequestsWhileHeld: number
  readonly results: ReadonlyArray<WorkerResult>
  readonly exitCodes: ReadonlyArray<number | null>
  readonly durationMillis: number
  readonly server: TestServer
}

interface Worker {
  readonly child: ChildProcess
  readonly lines: AsyncIterator<string>
}

const startWorker = (config: WorkerConfig) =>
  Effect.acquireRelease(
    Effect.sync((): Worker => {
      const child = spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify(config)], {
        cwd: ROOT,
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, NODE_NO_WARNINGS: "1" }
      })
      child.stderr?.pipe(process.stderr) // worker logs: warnings and errors only (WORKER_DEBUG=1 for more)
      const rl = Readline.createInterface({ input: child.stdout! })
      return { child, lines: rl[Symbol.asyncIterator]() }
    }),
    (w) => Effect.sync(() => void (w.child.exitCode === null && w.child.signalCode === null && w.child.kill("SIGKILL")))
  )

/** The next stdout line of a worker (fails when it exits first). */
const nextLine = (w: Worker, what: string) =>
  Effect.tryPromise({
    try: async () => {
      const next = await w.lines.next()
      if (next.done === true) throw new Error(`worker exited before printing ${what} (exit ${w.child.exitCode})`)
      return next.value
    },
    catch: (e) => new Error(`waiting for ${what}: ${String(e)}`)
  }).pipe(Effect.orDie)

const waitForLine = (w: Worker, expected: string) =>
  Effect.gen(function*() {
    for (;;) {
      const line = yield* nextLine(w, expected)
      if (line.trim() === expected) return
    }
  })

const exitOf = (w: Worker) =>
  Effect.async<number | null>((resume) => {
    if (w.child.exitCode !== null || w.child.signalCode !== null) return resume(Effect.succeed(w.child.exitCode))
    w.child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/** Seeds a known client and an expired token with a refresh token, as the library stores them. */
const seed = (server: TestServer, storage: Layer.Layer<TokenStorage.TokenStorage>) =>
  Effect.gen(function*() {
    const registered = yield* server.registerClient({
      tokenEndpointAuthMethod: "none",
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    })
    const issued = yield* server.issueToken({ clientId: registered.clientId, refreshToken: true })
    const now = yield* Clock.currentTimeMillis
    const ctx = yield* Layer.build(storage)
    const s = Context.get(ctx, TokenStorage.TokenStorage)
    const key = TokenStorage.serverKey(server.mcpUrl)
    yield* s.setClient(key, new ClientInformation({
      clientId: registered.clientId,
      tokenEndpointAuthMethod: "none",
      source: "dynamic",
      issuer: server.issuer,
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    }))
    yield* s.setTokens(key, new StoredToken({
      accessToken: issued.accessToken,
      tokenType: "Bearer",
      ...(issued.refreshToken === undefined ? {} : { refreshToken: issued.refreshToken }),
      expiresAt: now - 1000,
      scopes: [],
      issuer: server.issuer,
      resource: server.mcpUrl,
      obtainedAt: now - 3_600_000
    }))
    return registered.clientId
  }).pipe(Effect.scoped)

export const runScenario = (
  options: ScenarioOptions
): Effect.Effect<ScenarioResult, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* startTestServer()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-xproc-"))),
      (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
    )
    const prefix = `xproc-${Date.now()}-${Math.random().toString(16).slice(2)}:`
    const storage = options.backend === "file"
      ? TokenStorage.layerFileSystemNode(dir)
      : RedisStorage.layer({ prefix }).pipe(Layer.provide(RedisStorage.layerConnection(options.redisUrl ?? "").pipe(Layer.orDie)))
    yield* seed(server, storage)
    yield* server.resetCounters

    const base: Omit<WorkerConfig, "mode"> = {
      backend: options.backend,
      dir,
      prefix,
      mcpUrl: server.mcpUrl,
      requests: options.requestsPerProcess,
      ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
      ...(options.leaseMillis === undefined ? {} : { leaseMillis: options.leaseMillis }),
      ...(options.lock === undefined ? {} : { lock: options.lock })
    }
    const holder = options.killHolder === true ? yield* startWorker({ ...base, mode: "hold" }) : undefined
    if (holder !== undefined) yield* waitForLine(holder, "LOCKED")

    const workers = yield* Effect.forEach(
      Array.from({ length: options.processes }, () => base),
      (c) => startWorker({ ...c, mode: "requests" }),
      { concurrency: "unbounded" }
    )
    yield* Effect.forEach(workers, (w) => waitForLine(w, "READY"), { concurrency: "unbounded" })
    const started = Date.now()
    for (const w of workers) w.child.stdin?.write("GO\n")

    let tokenRequestsWhileHeld = 0
    if (holder !== undefined) {
      // everyone is now waiting on the holder's lock: nothing may reach the token endpoint
      yield* Effect.sleep("1500 millis").pipe(Effect.withClock(Clock.make()))
      tokenRequestsWhileHeld = yield* server.count("token")
      holder.child.kill("SIGKILL")
    }

    const results = yield* Effect.forEach(workers, (w) =>
      Effect.map(nextLine(w, "a result"), (line): WorkerResult => JSON.parse(line)), { concurrency: "unbounded" })
    const exitCodes = yield* Effect.forEach(workers, exitOf, { concurrency: "unbounded" })
    const durationMillis = Date.now() - started
    const tokenLog = yield* server.requestsTo("token")
    return {
      refreshes: tokenLog.filter((r) => r.form["grant_type"] === "refresh_token").length,
      tokenRequests: tokenLog.length,
      tokenRequestsWhileHeld,
      results,
      exitCodes,
      durationMillis,
      server
    }
  })

export interface StalledHolderOptions {
  readonly backend: "file" | "redis"
  readonly redisUrl?: string
  readonly leaseMillis: number
  /** `false`: the stalled holder skips `TokenLock.ensureHeld` before redeeming (control case). */
  readonly fencing: boolean
}

export interface StalledHolderResult {
  /** What the stalled holder did once resumed (see worker.ts "stall"). */
  readonly holder: {
    readonly redeemed: boolean
    readonly redeemStatus?: number
    readonly wrote: boolean
    readonly detail: string
  }
  /** The process that took the lock while the holder was stopped. */
  readonly other: WorkerResult
  /** refresh_token grants the authorization server received. */
  readonly refreshes: number
  /** The access token stored at the end. */
  readonly storedAccessToken: string | undefined
  /** HTTP status of an MCP request made with the stored token at the end. */
  readonly storedTokenStatus: number | undefined
  readonly server: TestServer
}

/**
 * A lock holder stalled past its lease: a "stall" worker takes the lock and reads the expired
 * token, is SIGSTOPped until its lease has expired, another process (OAuthLayer + the same lock)
 * takes the lock and refreshes, then the holder is SIGCONTed and carries on as a refresh would.
 */
export const runStalledHolder = (
  options: StalledHolderOptions
): Effect.Effect<StalledHolderResult, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* startTestServer()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-stall-"))),
      (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
    )
    const prefix = `stall-${Date.now()}-${Math.random().toString(16).slice(2)}:`
    const storage = options.backend === "file"
      ? TokenStorage.layerFileSystemNode(dir)
      : RedisStorage.layer({ prefix }).pipe(Layer.provide(RedisStorage.layerConnection(options.redisUrl ?? "").pipe(Layer.orDie)))
    const clientId = yield* seed(server, storage)
    yield* server.resetCounters
    const base: Omit<WorkerConfig, "mode"> = {
      backend: options.backend,
      dir,
      prefix,
      mcpUrl: server.mcpUrl,
      requests: 1,
      leaseMillis: options.leaseMillis,
      fencing: options.fencing,
      tokenEndpoint: server.provider.endpoints.token,
      clientId,
      ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl })
    }
    const wall = Clock.make()
    const holder = yield* startWorker({ ...base, mode: "stall" })
    yield* waitForLine(holder, "READ")
    holder.child.kill("SIGSTOP")
    yield* Effect.sleep(`${options.leaseMillis + 500} millis`).pipe(Effect.withClock(wall))

    const other = yield* startWorker({ ...base, mode: "requests" })
    yield* waitForLine(other, "READY")
    other.child.stdin?.write("GO\n")
    const otherResult: WorkerResult = JSON.parse(yield* nextLine(other, "a result"))
    yield* exitOf(other)

    holder.child.stdin?.write("GO\n")
    holder.child.kill("SIGCONT")
    const holderResult = JSON.parse(yield* nextLine(holder, "the holder's outcome"))
    yield* exitOf(holder)

    const tokenLog = yield* server.requestsTo("token")
    const stored = yield* Effect.gen(function*() {
      const ctx = yield* Layer.build(storage)
      return yield* Context.get(ctx, TokenStorage.TokenStorage).getTokens(TokenStorage.serverKey(server.mcpUrl))
    }).pipe(Effect.scoped)
    const storedAccessToken = stored._tag === "Some" ? Redacted.value(stored.value.accessToken) : undefined
    const storedTokenStatus = storedAccessToken === undefined ? undefined : yield* Effect.promise(async () => {
      const response = await fetch(server.mcpUrl, {
        method: "POST",
        headers: {
          authorization: `Bearer ${storedAccessToken}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream"
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      })
      await response.arrayBuffer()
      return response.status
    })
    return {
      holder: holderResult,
      other: otherResult,
      refreshes: tokenLog.filter((r) => r.form["grant_type"] === "refresh_token").length,
      storedAccessToken,
      storedTokenStatus,
      server
    }
  })
