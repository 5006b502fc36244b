/**
 * Proxy start and memory against mcp-remote (JSON lines, see run.ts), both against the same
 * loopback OAuth-protected MCP server (test/fixtures/ProtectedMcpServer), both with a stored valid
 * token, so neither signs in during the measured starts:
 *
 * - proxy_ready_ratio: median time from spawning the process until it answers the host's
 *   `initialize` on stdout, `effect-mcp-oauth proxy` (the shipped bin, `dist/`, built by
 *   `npm run bench`) ÷ `mcp-remote` (devDependency); starts interleaved (goal ≤ 1.0).
 * - proxy_rss_ratio: RSS of the process after 100 sequential tool calls, ours ÷ mcp-remote's
 *   (median of the same starts; goal ≤ 1.0).
 *
 * Seeding: each signs in once, before the timed starts, into the directory every later start
 * reuses — ours headlessly (`--headless`, consent auto-approved) into its file store `--dir`;
 * mcp-remote through its browser step (a `BROWSER` script fetching the authorization URL and its
 * loopback callback, as test/interop/McpRemote.test.ts does) into `MCP_REMOTE_CONFIG_DIR`. The
 * authorization requests seen during the timed starts are reported (`sign_ins_during_starts`, goal 0).
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as readline from "node:readline"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { median } from "./stats.js"

const ROOT = NodePath.resolve(import.meta.dirname, "..", "..")
const MCP_REMOTE = NodePath.join(ROOT, "node_modules", "mcp-remote", "dist", "proxy.js")
const RUNS = Number(process.env["BENCH_PROXY_START_RUNS"] ?? 5)
const CALLS = 100

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** The shipped bin of this package, as package.json declares it. */
const ownBin = (): string => {
  const pkg = JSON.parse(NodeFs.readFileSync(NodePath.join(ROOT, "package.json"), "utf8")) as {
    readonly bin: Record<string, string>
  }
  return NodePath.join(ROOT, pkg.bin["effect-mcp-oauth"]!)
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const rssMb = (pid: number): number => {
  const status = NodeFs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  if (kb === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(kb[1]) / 1024
}

interface Run {
  readonly ready_ms: number
  readonly rss_mb: number
}

/**
 * Spawns `node <args>`, writes `initialize` at once, times the answer, then (with `calls`) makes
 * that many `tools/call add` one after another and reads the process's RSS; kills it.
 */
const run = (args: ReadonlyArray<string>, env: Record<string, string>, calls: number) =>
  new Promise<Run>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const pending = new Map<number, (message: Record<string, unknown>) => void>()
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line)
      } catch {
        return
      }
      if (typeof message["id"] === "number" && ("result" in message || "error" in message)) {
        pending.get(message["id"])?.(message)
      }
    })
    const exited = new Promise<void>((r) => child.on("exit", () => r()))
    child.on("exit", (code) => {
      for (const [, answer] of pending) answer({ error: `exited ${code}: ${stderr}` })
    })
    const request = (id: number, method: string, params: unknown) =>
      new Promise<Record<string, unknown>>((answer) => {
        pending.set(id, (message) => {
          pending.delete(id)
          answer(message)
        })
        child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`)
      })
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000)
    ;(async () => {
      const init = await request(0, "initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "bench-host", version: "1.0.0" }
      })
      const ready = performance.now() - t0
      if (!("result" in init)) throw new Error(`initialize failed: ${JSON.stringify(init)}\n${stderr}`)
      child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`)
      for (let i = 1; i <= calls; i++) {
        const answer = await request(i, "tools/call", { name: "add", arguments: { a: i, b: 1 } })
        const text = JSON.stringify(answer["result"] ?? answer)
        if (!text.includes(`"text":"${i + 1}"`)) throw new Error(`call ${i}: ${text}\n${stderr}`)
      }
      const rss = calls > 0 ? rssMb(child.pid!) : 0
      return { ready_ms: ready, rss_mb: rss }
    })().then(
      (r) => {
        clearTimeout(timer)
        child.stdin.end()
        child.kill("SIGTERM")
        void exited.then(() => resolve(r))
      },
      (e: unknown) => {
        clearTimeout(timer)
        child.kill("SIGKILL")
        reject(e)
      }
    )
  })

const stringEnv = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v
  return { ...out, NO_COLOR: "1", NODE_NO_WARNINGS: "1" }
}

/** A `BROWSER` script that completes mcp-remote's authorization (consent is auto-approved). */
const browserScript = (dir: string) => {
  const file = NodePath.join(dir, "browser.cjs")
  NodeFs.writeFileSync(
    file,
    `#!${process.execPath}
;(async () => {
  const authorization = await fetch(process.argv[2], { redirect: "manual" })
  const callback = authorization.headers.get("location")
  if (callback === null) throw new Error("authorization answered " + authorization.status)
  await (await fetch(callback)).text()
})().then(() => process.exit(0), () => process.exit(1))
`,
    { mode: 0o755 }
  )
  return file
}

/** The proxy_ready_ratio and proxy_rss_ratio lines. */
export const benchProxyStart = (): Promise<Array<object>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* startProtectedMcpServer()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "bench-proxy-start-"))),
      (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
    )
    const store = NodePath.join(dir, "ours")
    const config = NodePath.join(dir, "mcp-remote")
    NodeFs.mkdirSync(store)
    NodeFs.mkdirSync(config)
    const port = yield* Effect.promise(freePort)
    const bin = ownBin()
    const ours = {
      args: [bin, "proxy", "--headless", "--allow-http", "--dir", store, server.mcpUrl],
      env: stringEnv()
    }
    const theirs = {
      args: [MCP_REMOTE, server.mcpUrl, String(port), "--auth-timeout", "30"],
      env: { ...stringEnv(), BROWSER: browserScript(dir), MCP_REMOTE_CONFIG_DIR: config }
    }
    // Sign each in once; the timed starts reuse what they stored.
    yield* Effect.promise(() => run(ours.args, ours.env, 1))
    yield* Effect.promise(() => run(theirs.args, theirs.env, 1))
    const seeded = yield* server.counts
    const oursRuns: Array<Run> = []
    const theirsRuns: Array<Run> = []
    for (let i = 0; i < RUNS; i++) {
      oursRuns.push(yield* Effect.promise(() => run(ours.args, ours.env, CALLS)))
      theirsRuns.push(yield* Effect.promise(() => run(theirs.args, theirs.env, CALLS)))
    }
    const after = yield* server.counts
    const ready = { ours: median(oursRuns.map((r) => r.ready_ms)), theirs: median(theirsRuns.map((r) => r.ready_ms)) }
    const rss = { ours: median(oursRuns.map((r) => r.rss_mb)), theirs: median(theirsRuns.map((r) => r.rss_mb)) }
    const common = {
      runs: RUNS,
      ours: "effect-mcp-oauth proxy (dist bin)",
      reference: "mcp-remote",
      seed_sign_ins: seeded.authorize,
      sign_ins_during_starts: after.authorize - seeded.authorize,
      refreshes_during_starts: after.tokenRefresh - seeded.tokenRefresh,
      sign_ins_goal: 0
    }
    return [
      {
        bench: "proxy_ready_ratio",
        value: round(ready.ours / ready.theirs),
        goal: 1,
        ours_ms: round(ready.ours, 1),
        reference_ms: round(ready.theirs, 1),
        ...common
      },
      {
        bench: "proxy_rss_ratio",
        value: round(rss.ours / rss.theirs),
        goal: 1,
        calls: CALLS,
        ours_mb: round(rss.ours, 1),
        reference_mb: round(rss.theirs, 1),
        ...common
      }
    ]
  })))
