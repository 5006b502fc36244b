/**
 * Cold-start benchmarks, called by the bench runner (test/bench/run.ts) or run alone
 * (`npx tsx test/bench/startup.ts`). They measure the built package (`npm run build` first):
 * every figure is the median of several fresh `node` processes.
 *
 * - cli_start_ratio: wall time of `effect-mcp-oauth --help` (the shipped bin) ÷ `mcp-remote`
 *   printing its usage (no arguments), plus both peak RSS figures (goal ≤ 1.0).
 * - import_ms / import_rss_mb: time to `import()` the root entry and each subpath, and the RSS
 *   after it, beside the official SDK client + Streamable HTTP transport + auth (goal for the root:
 *   ≤ 2× the SDK's).
 *
 * Nothing here prints; each function returns JSON-line objects.
 */
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
const RUNS = Number(process.env["BENCH_STARTUP_RUNS"] ?? 5)

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** A preload that writes the process's peak RSS (kB) to $BENCH_MAXRSS_FILE when it exits. */
const preload = (dir: string) => {
  const file = NodePath.join(dir, "maxrss.mjs")
  NodeFs.writeFileSync(
    file,
    `import { writeFileSync } from "node:fs"\n` +
      `process.on("exit", () => writeFileSync(process.env.BENCH_MAXRSS_FILE, String(process.resourceUsage().maxRSS)))\n`
  )
  return file
}

/** Starts `node <args>` RUNS times; median wall ms (spawn → exit) and median peak RSS MB. */
const startProcess = (dir: string, args: ReadonlyArray<string>) => {
  const hook = preload(dir)
  const walls: Array<number> = []
  const rss: Array<number> = []
  for (let i = 0; i < RUNS; i++) {
    const out = NodePath.join(dir, `rss-${i}`)
    const t0 = performance.now()
    spawnSync(process.execPath, ["--import", hook, ...args], {
      cwd: ROOT,
      env: { ...process.env, BENCH_MAXRSS_FILE: out, NO_COLOR: "1" },
      stdio: "ignore"
    })
    walls.push(performance.now() - t0)
    rss.push(Number(NodeFs.readFileSync(out, "utf8")) / 1024)
  }
  return { wall_ms: round(median(walls), 1), peak_rss_mb: round(median(rss), 1) }
}

/** @internal the shipped bin of this package, as package.json declares it. */
const ownBin = (): string => {
  const pkg = JSON.parse(NodeFs.readFileSync(NodePath.join(ROOT, "package.json"), "utf8")) as {
    readonly bin: Record<string, string>
  }
  return NodePath.join(ROOT, pkg.bin["effect-mcp-oauth"]!)
}

export const benchCliStart = async (): Promise<Array<object>> => {
  const dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "bench-start-"))
  try {
    const ours = startProcess(dir, [ownBin(), "--help"])
    const theirs = startProcess(dir, [NodePath.join(ROOT, "node_modules", "mcp-remote", "dist", "proxy.js")])
    return [{
      bench: "cli_start_ratio",
      value: round(ours.wall_ms / theirs.wall_ms),
      goal: 1,
      runs: RUNS,
      ours: { command: "effect-mcp-oauth --help", ...ours },
      reference: { command: "mcp-remote (usage)", ...theirs },
      rss_ratio: round(ours.peak_rss_mb / theirs.peak_rss_mb)
    }]
  } finally {
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
}

const SDK_CLIENT = [
  "@modelcontextprotocol/sdk/client/index.js",
  "@modelcontextprotocol/sdk/client/streamableHttp.js",
  "@modelcontextprotocol/sdk/client/auth.js"
]

/** Imports `specifiers` in a fresh process; median ms of the imports and RSS after them. */
const importCost = (specifiers: ReadonlyArray<string>) => {
  const ms: Array<number> = []
  const rss: Array<number> = []
  const script = `const t = performance.now()
for (const s of ${JSON.stringify(specifiers)}) await import(s)
const ms = performance.now() - t
console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss }))`
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" })
    if (r.status !== 0) throw new Error(`import ${specifiers.join(", ")} failed: ${r.stderr}`)
    const line = JSON.parse(r.stdout.trim().split("\n").pop()!) as { ms: number; rss: number }
    ms.push(line.ms)
    rss.push(line.rss / 1048576)
  }
  return { import_ms: round(median(ms), 1), import_rss_mb: round(median(rss), 1) }
}

export const benchImports = async (): Promise<Array<object>> => {
  const pkg = JSON.parse(NodeFs.readFileSync(NodePath.join(ROOT, "package.json"), "utf8")) as {
    readonly name: string
    readonly exports: Record<string, unknown>
  }
  const entries = Object.keys(pkg.exports).filter((k) => !k.includes("*"))
  const reference = importCost(SDK_CLIENT)
  const lines: Array<object> = [{ bench: "import", module: "@modelcontextprotocol/sdk client", runs: RUNS, ...reference }]
  for (const entry of entries) {
    const specifier = entry === "." ? pkg.name : `${pkg.name}/${entry.slice(2)}`
    const cost = importCost([specifier])
    lines.push({
      bench: "import",
      module: specifier,
      runs: RUNS,
      ...cost,
      ms_ratio_to_sdk: round(cost.import_ms / reference.import_ms),
      rss_ratio_to_sdk: round(cost.import_rss_mb / reference.import_rss_mb),
      ...(entry === "." ? { goal_ratio: 2 } : {})
    })
  }
  return lines
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === NodePath.resolve(process.argv[1])) {
  for (const line of [...(await benchCliStart()), ...(await benchImports())]) console.log(JSON.stringify(line))
}
