/**
 * A real redis-server for tests: started on 127.0.0.1 at a free port with persistence off
 * (`--save "" --appendonly no`), stopped when the scope closes. Missing redis-server: the Redis
 * tests fail under CI=true (CI must have it: .ci/ensure-test-deps.sh installs it) and are skipped
 * with a message elsewhere.
 */
import { Clock, Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"

const CANDIDATES = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]

export const redisServerPath: string | undefined = CANDIDATES.find((p) => NodeFs.existsSync(p))

export const isCI = process.env["CI"] === "true"

/** Whether to run the Redis suites; prints why not when they are skipped. */
export const redisTestsEnabled = (() => {
  if (redisServerPath !== undefined) return true
  if (isCI) return true // run, and fail loudly in startRedis
  console.warn("[redis tests] SKIPPED: redis-server is not installed (run .ci/ensure-test-deps.sh)")
  return false
})()

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface RedisServer {
  readonly url: string
  readonly port: number
  readonly process: ChildProcess
}

/** Starts redis-server and waits until it accepts connections. */
export const startRedis: Effect.Effect<RedisServer, never, Scope.Scope> = Effect.gen(function*() {
  if (redisServerPath === undefined) {
    return yield* Effect.dieMessage(
      "redis-server is not installed but CI=true: the Redis tests must run (install it with .ci/ensure-test-deps.sh)"
    )
  }
  const binary = redisServerPath
  const port = yield* freePort
  const dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-redis-"))
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(binary, [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", dir, "--protected-mode", "yes", "--loglevel", "warning"
      ], { stdio: ["ignore", "pipe", "pipe"] })
    ),
    (c) =>
      Effect.async<void>((resume) => {
        if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
        c.once("exit", () => resume(Effect.void))
        c.kill("SIGTERM")
      }).pipe(Effect.zipRight(Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))))
  )
  // ready when a PING gets PONG
  const ping = Effect.async<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (d) => {
      socket.destroy()
      resume(Effect.succeed(d.toString().startsWith("+PONG")))
    })
    socket.once("error", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
  })
  for (let i = 0; i < 100; i++) {
    if (yield* ping) return { url: `redis://127.0.0.1:${port}`, port, process: child }
    if (child.exitCode !== null) break
    yield* Effect.sleep("50 millis")
  }
  return yield* Effect.dieMessage(`redis-server did not start on 127.0.0.1:${port}`)
}).pipe(Effect.withClock(Clock.make())) // real waiting, also inside TestClock tests
