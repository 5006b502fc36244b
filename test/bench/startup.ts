/**
 * Cold-start benchmarks, called by the bench runner (test/bench/run.ts) or run alone
 * (`npx tsx test/bench/startup.ts`). They measure the built package (`npm run build` first):
 * every figure is the median of several fresh `node` processes.
 *
 * - cli_start_ratio: wall time of `effect-mcp-oauth --help` (the shipped bin) ÷ `mcp-remote`
 *   printing its usage (no arguments), plus both peak RSS figures (goal ≤ 1.0).
 * - import_ms / import_rss_mb: time to `import()` the root entry and each subpath, and the RSS
 *   after it, beside the official SDK client + Streamable HTTP transport + auth (goal for the root:
 *   ≤ 2× the SDK's) and beside the floor, `effect/Schema` + `@effect/platform`'s HttpClient, which
 *   the root cannot go below (`ms_ratio_to_floor`). Medians of at least 9 fresh processes per
 *   line, the arms interleaved.
 *
 * Nothing here prints; each function returns JSON-line objects.
 */
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { median } from "./stats.js"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
const RUNS = Number(process.env["BENCH_STARTUP_RUNS"] ?? 5)

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

/**
 * What any Effect HTTP client pays before a line of ours runs: `effect/Schema` (which loads
 * fast-check through `Arbitrary`) and `@effect/platform`'s HttpClient with its fetch client.
 */
const FLOOR = ["effect/Schema", "@effect/platform/HttpClient", "@effect/platform/FetchHttpClient"]

/** Fresh processes per import line: more than the other benchmarks, as an import lasts ~0.1-0.3 s. */
const IMPORT_RUNS = Math.max(9, RUNS)

/** Imports `specifiers` in a fresh process: the ms of the imports and the RSS (MB) after them. */
const importOnce = (specifiers: ReadonlyArray<string>): { readonly ms: number; readonly rss: number } => {
  const script = `const t = performance.now()
for (const s of ${JSON.stringify(specifiers)}) await import(s)
const ms = performance.now() - t
console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss }))`
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`import ${specifiers.join(", ")} failed: ${r.stderr}`)
  const line = JSON.parse(r.stdout.trim().split("\n").pop()!) as { ms: number; rss: number }
  return { ms: line.ms, rss: line.rss / 1048576 }
}

/**
 * Median import cost of each arm over IMPORT_RUNS rounds; each round starts every arm once, in
 * turn, so a slower moment of a shared machine falls on all arms alike.
 */
const importCosts = (arms: ReadonlyArray<ReadonlyArray<string>>) => {
  const samples = arms.map(() => ({ ms: [] as Array<number>, rss: [] as Array<number> }))
  for (let i = 0; i < IMPORT_RUNS; i++) {
    arms.forEach((arm, j) => {
      const { ms, rss } = importOnce(arm)
      samples[j]!.ms.push(ms)
      samples[j]!.rss.push(rss)
    })
  }
  return samples.map((s) => ({ import_ms: round(median(s.ms), 1), import_rss_mb: round(median(s.rss), 1) }))
}

export const benchImports = async (): Promise<Array<object>> => {
  const pkg = JSON.parse(NodeFs.readFileSync(NodePath.join(ROOT, "package.json"), "utf8")) as {
    readonly name: string
    readonly exports: Record<string, unknown>
  }
  const entries = Object.keys(pkg.exports).filter((k) => !k.includes("*"))
  const specifiers = entries.map((entry) => (entry === "." ? pkg.name : `${pkg.name}/${entry.slice(2)}`))
  const [reference, floor, ...costs] = importCosts([SDK_CLIENT, FLOOR, ...specifiers.map((s) => [s])])
  const lines: Array<object> = [
    { bench: "import", module: "@modelcontextprotocol/sdk client", runs: IMPORT_RUNS, ...reference! },
    {
      bench: "import",
      module: "effect/Schema + @effect/platform HttpClient (floor)",
      runs: IMPORT_RUNS,
      ...floor!,
      ms_ratio_to_sdk: round(floor!.import_ms / reference!.import_ms),
      rss_ratio_to_sdk: round(floor!.import_rss_mb / reference!.import_rss_mb)
    }
  ]
  specifiers.forEach((specifier, i) => {
    const cost = costs[i]!
    lines.push({
      bench: "import",
      module: specifier,
      runs: IMPORT_RUNS,
      ...cost,
      ms_ratio_to_sdk: round(cost.import_ms / reference!.import_ms),
      rss_ratio_to_sdk: round(cost.import_rss_mb / reference!.import_rss_mb),
      ...(entries[i] === "." ? { ms_ratio_to_floor: round(cost.import_ms / floor!.import_ms), goal_ratio: 2 } : {})
    })
  })
  return lines
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === NodePath.resolve(process.argv[1])) {
  for (const line of [...(await benchCliStart()), ...(await benchImports())]) console.log(JSON.stringify(line))
}
