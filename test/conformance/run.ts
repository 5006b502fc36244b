/**
 * Runs the public MCP conformance suite (@modelcontextprotocol/conformance) against
 * examples/conformance-client.ts, one scenario at a time (the parallel --suite mode times out on
 * small machines; `--concurrency 2` runs two at once), on Node 22 fetched with `npx -y node@22`
 * (the suite needs Node >= 22).
 *
 * Usage: tsx test/conformance/run.ts [--version 0.1.16] [--spec-version 2026-07-28]
 *                                    [--target 0.2.0-alpha.12:2026-07-28 ...]
 *                                    [--scenario auth/metadata-default ...] [--filter auth/]
 *                                    [--allow-failures] [--allow-skipped] [--concurrency 1]
 *
 * The client is bundled once with esbuild and run by this process's Node; the suite runs on
 * Node 22 (found once with `npx -y node@22`).
 *
 * A target is a suite version and, optionally, the spec version (the wire) it is run at; several
 * `--target`s run one after the other. `--version` / `--spec-version` name a single target and win
 * over `--target`; the default is the version pinned in package.json. A version installed as a dev
 * dependency (`@modelcontextprotocol/conformance`, or an alias such as `@modelcontextprotocol/conformance-alpha`
 * = `npm:@modelcontextprotocol/conformance@<version>`) is run from node_modules; any other is
 * fetched with npx. At a given spec version only the scenarios the suite lists as applicable to it
 * (or as extensions) are run.
 *
 * Every check of every scenario is counted from its checks.json. A scenario passes when the suite
 * exits 0; a SKIPPED check, or a scenario that reports no check at all, is a vacuous pass and fails
 * the run unless --allow-skipped (the few checks no conforming client can exercise are listed in
 * INAPPLICABLE with the reason, and counted apart). Prints one row per scenario and a last line
 * "N passed, M failed; checks: a passed, b failed, c skipped, d warnings"; exits 1 on any failure.
 */
import { build } from "esbuild"
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const PACKAGE = "@modelcontextprotocol/conformance"
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>
}
const pinned = pkg.devDependencies[PACKAGE] ?? "0.1.16"

const args = process.argv.slice(2)
const option = (name: string): Array<string> => {
  const out: Array<string> = []
  args.forEach((a, i) => {
    if (a === name && args[i + 1] !== undefined) out.push(args[i + 1]!)
  })
  return out
}

interface Target {
  readonly version: string
  readonly specVersion: string | undefined
}
const parseTarget = (text: string): Target => {
  const [version, specVersion] = text.split(":")
  return { version: version || pinned, specVersion: specVersion || undefined }
}
// --version / --spec-version name one target and win over --target (so that
// `npm run conformance -- --version X` runs X alone).
const targets: ReadonlyArray<Target> =
  option("--version").length > 0 || option("--spec-version").length > 0 || option("--target").length === 0
    ? [{ version: option("--version")[0] ?? pinned, specVersion: option("--spec-version")[0] }]
    : option("--target").map(parseTarget)
const onlyScenarios = option("--scenario")
const filter = option("--filter")[0]
const allowFailures = args.includes("--allow-failures")
const allowSkipped = args.includes("--allow-skipped")
const timeoutMs = Number(option("--timeout")[0] ?? "60000")
const concurrency = Number(option("--concurrency")[0] ?? "1")

/** The installed copy of `version`: the pinned dev dependency or an `npm:` alias of it. */
const installedEntry = (version: string): string | undefined => {
  const name = Object.entries(pkg.devDependencies).find(([name, spec]) =>
    (name === PACKAGE && spec === version) || spec === `npm:${PACKAGE}@${version}`
  )?.[0]
  const entry = name === undefined ? undefined : join(root, "node_modules", name, "dist/index.js")
  return entry !== undefined && existsSync(entry) ? entry : undefined
}

/** Node 22's binary, found once (each `npx -y node@22` costs seconds on a busy machine). */
let node22: string | undefined = undefined

const conformanceCommand = (version: string): { cmd: string; argv: Array<string> } => {
  const installed = installedEntry(version)
  return installed !== undefined
    ? node22 !== undefined ? { cmd: node22, argv: [installed] } : { cmd: "npx", argv: ["-y", "node@22", installed] }
    : { cmd: "npx", argv: ["-y", "-p", "node@22", "-p", `${PACKAGE}@${version}`, "conformance"] }
}

const run = (cmd: string, argv: Array<string>, timeout: number) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise) => {
    const child = spawn(cmd, argv, { cwd: root, env: { ...process.env, npm_config_loglevel: "error" } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? 1, stdout, stderr })
    })
  })

/**
 * The client scenarios, with the spec versions each applies to ("- name [v1,v2]" in alpha
 * releases; plain "- name" in 0.1.x, which has no spec versions).
 */
const listScenarios = async (version: string): Promise<Array<{ name: string; versions: Array<string> }>> => {
  const { cmd, argv } = conformanceCommand(version)
  const { stdout } = await run(cmd, [...argv, "list", "--client"], 300_000)
  return stdout.split("\n").flatMap((line) => {
    const match = /^\s+-\s+(\S+)(?:\s+\[([^\]]*)\])?/.exec(line)
    return match === null ? [] : [{ name: match[1]!, versions: (match[2] ?? "").split(",").filter((v) => v !== "") }]
  })
}

interface Check {
  readonly id: string
  readonly name?: string
  readonly status: string
}

/**
 * SKIPPED checks no conforming client can exercise, each with the reason; they are counted and
 * printed apart from the other skipped checks and do not fail the run. Keep this list short and
 * exact (scenario and check name).
 */
const INAPPLICABLE: ReadonlyArray<{ scenario: string; name: string; reason: string }> = [
  ...["initialize", "notifications_initialized"].map((method) => ({
    // (alpha.12) a 2026-07-28-only scenario, so it always runs on that wire, even with no --spec-version
    scenario: "http-standard-headers",
    name: `ClientMcpMethodHeader_${method}`,
    reason: "the 2026-07-28 wire is stateless (SEP-2575): it has no initialize handshake to carry Mcp-Method"
  }))
]
const isInapplicable = (scenario: string, check: Check) =>
  INAPPLICABLE.some((i) => i.scenario === scenario && i.name === check.name)

/** results/<scenario>-<timestamp>/checks.json of the scenario's latest run. */
const readChecks = async (dir: string, scenario: string): Promise<ReadonlyArray<Check> | undefined> => {
  const base = join(dir, dirname(scenario))
  const prefix = scenario.split("/").pop()!
  const entries = await readdir(base).catch(() => [] as Array<string>)
  const latest = entries.filter((e) => e.startsWith(prefix + "-") && /^-\d{4}-\d{2}-\d{2}T/.test(e.slice(prefix.length))).sort()
    .pop()
  if (latest === undefined) return undefined
  const text = await readFile(join(base, latest, "checks.json"), "utf8").catch(() => undefined)
  return text === undefined ? undefined : JSON.parse(text) as ReadonlyArray<Check>
}

interface Totals {
  passed: number
  failed: number
  checksPassed: number
  checksFailed: number
  checksSkipped: number
  checksInapplicable: number
  checksWarning: number
}

type TargetRun = Totals & Target & { scenarios: number; seconds: number }

const runTarget = async (target: Target): Promise<TargetRun> => {
  const { version, specVersion } = target
  const label = specVersion === undefined ? version : `${version} at spec ${specVersion}`
  const listed = await listScenarios(version)
  // Extension scenarios are "not on the spec timeline": the suite runs them at an explicit spec
  // version only with --force, which is what testing an extension on that wire takes.
  const isExtension = (name: string) => listed.some((s) => s.name === name && s.versions.includes("extension"))
  const applicable = specVersion === undefined
    ? listed
    : listed.filter((s) => s.versions.length === 0 || s.versions.includes(specVersion) || s.versions.includes("extension"))
  const all = onlyScenarios.length > 0 ? onlyScenarios : applicable.map((s) => s.name)
  const scenarios = filter === undefined ? all : all.filter((s) => s.includes(filter))
  if (scenarios.length === 0) {
    console.error(`no scenarios found for ${label} (could the conformance package be fetched?)`)
    process.exit(1)
  }
  const resultsDir = join(root, "conformance-results", specVersion === undefined ? version : `${version}_${specVersion}`)
  await mkdir(resultsDir, { recursive: true })
  const clientCommand = `${process.execPath} ${await bundledClient}`
  console.log(
    `MCP conformance ${label}: ${scenarios.length} client scenarios, ${
      concurrency > 1 ? `${concurrency} at a time` : "one at a time"
    }`
  )
  const totals: Totals = {
    passed: 0,
    failed: 0,
    checksPassed: 0,
    checksFailed: 0,
    checksSkipped: 0,
    checksInapplicable: 0,
    checksWarning: 0
  }
  const startedAll = Date.now()
  const runScenario = async (scenario: string) => {
    const started = Date.now()
    const { cmd, argv } = conformanceCommand(version)
    const result = await run(cmd, [
      ...argv,
      "client",
      "--command",
      clientCommand,
      "--scenario",
      scenario,
      ...(specVersion === undefined ? [] : ["--spec-version", specVersion]),
      ...(specVersion !== undefined && isExtension(scenario) ? ["--force"] : []),
      "-o",
      resultsDir,
      "--timeout",
      String(timeoutMs)
    ], timeoutMs + 120_000)
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const checks = await readChecks(resultsDir, scenario) ?? []
    const of = (status: string) => checks.filter((c) => c.status === status)
    const inapplicable = of("SKIPPED").filter((c) => isInapplicable(scenario, c))
    const skipped = of("SKIPPED").filter((c) => !isInapplicable(scenario, c))
    totals.checksPassed += of("SUCCESS").length
    totals.checksFailed += of("FAILURE").length
    totals.checksSkipped += skipped.length
    totals.checksInapplicable += inapplicable.length
    totals.checksWarning += of("WARNING").length
    // No check at all is as vacuous as a skipped one: count it as one skipped check.
    const empty = checks.filter((c) => c.status !== "INFO").length === 0
    if (empty) totals.checksSkipped++
    const vacuous = skipped.length > 0 || empty
    const ok = result.code === 0 && (allowSkipped || !vacuous)
    if (ok) totals.passed++
    else totals.failed++
    const detail = [
      ...[...of("FAILURE"), ...of("WARNING"), ...skipped].map((c) => `${c.status}:${c.id}(${c.name ?? ""})`),
      ...inapplicable.map((c) => `INAPPLICABLE:${c.name ?? c.id}`),
      ...(empty ? ["NO-CHECKS"] : [])
    ].join(" ")
    const status = result.code !== 0 ? "FAIL" : vacuous ? (ok ? "SKIP" : "FAIL") : "PASS"
    console.log(`${status}  ${scenario.padEnd(48)} ${seconds.padStart(6)}s  ${detail}`)
    if (result.code !== 0 && process.env["CONFORMANCE_VERBOSE"] !== undefined) {
      console.log(result.stdout.slice(-4000), result.stderr.slice(-4000))
    }
  }
  // Scenarios are independent (each its own servers on free ports, its own results directory).
  const queue = [...scenarios]
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) await runScenario(next)
  }))
  const seconds = Math.round((Date.now() - startedAll) / 1000)
  console.log(
    `${label}: ${totals.passed} passed, ${totals.failed} failed; checks: ${totals.checksPassed} passed, ` +
      `${totals.checksFailed} failed, ${totals.checksSkipped} skipped, ${totals.checksWarning} warnings` +
      `${totals.checksInapplicable > 0 ? ` (+${totals.checksInapplicable} inapplicable, listed in run.ts)` : ""} (${seconds}s)`
  )
  return { ...target, ...totals, scenarios: scenarios.length, seconds }
}

/**
 * examples/conformance-client.ts and the library, bundled once by esbuild into one ES module run
 * by this process's Node: the same code, started in a fraction of the time tsx takes to load
 * hundreds of TypeScript files for each of the ~100 scenarios.
 */
const bundleClient = async (): Promise<string> => {
  const outfile = join(root, "conformance-results", ".client", "conformance-client.mjs")
  await build({
    absWorkingDir: root,
    entryPoints: [join(root, "examples/conformance-client.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
    // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
  })
  return outfile
}
let bundledClient: Promise<string>

const main = async () => {
  bundledClient = bundleClient()
  const found = await run("npx", ["-y", "node@22", "-e", "process.stdout.write(process.execPath)"], 300_000)
  node22 = found.code === 0 && found.stdout.trim() !== "" ? found.stdout.trim() : undefined
  const runs: Array<TargetRun> = []
  for (const target of targets) runs.push(await runTarget(target))
  const sum = (key: keyof Totals) => runs.reduce((n, r) => n + r[key], 0)
  const summary = {
    version: runs.map((r) => r.specVersion === undefined ? r.version : `${r.version}@${r.specVersion}`).join(", "),
    passed: sum("passed"),
    failed: sum("failed"),
    checks: {
      passed: sum("checksPassed"),
      failed: sum("checksFailed"),
      skipped: sum("checksSkipped"),
      inapplicable: sum("checksInapplicable"),
      warnings: sum("checksWarning")
    },
    runs
  }
  await writeFile(join(root, "conformance-results", "summary.json"), JSON.stringify(summary, null, 2))
  if (runs.length > 1) {
    console.log(
      `${summary.passed} passed, ${summary.failed} failed; checks: ${summary.checks.passed} passed, ` +
        `${summary.checks.failed} failed, ${summary.checks.skipped} skipped, ${summary.checks.warnings} warnings` +
        `${summary.checks.inapplicable > 0 ? ` (+${summary.checks.inapplicable} inapplicable, listed in run.ts)` : ""}`
    )
  }
  process.exit(summary.failed > 0 && !allowFailures ? 1 : 0)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
