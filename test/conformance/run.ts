/**
 * Runs the public MCP conformance suite (@modelcontextprotocol/conformance) against
 * examples/conformance-client.ts, one scenario at a time (the parallel --suite mode times out on
 * small machines), on Node 22 fetched with `npx -y node@22` (the suite needs Node >= 22).
 *
 * Usage: tsx test/conformance/run.ts [--version 0.1.16] [--scenario auth/metadata-default ...]
 *                                    [--filter auth/] [--allow-failures]
 * Prints one row per scenario and a last line "N passed, M failed"; exits 1 on any failure.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>
}
const pinned = pkg.devDependencies["@modelcontextprotocol/conformance"] ?? "0.1.16"

const args = process.argv.slice(2)
const option = (name: string): Array<string> => {
  const out: Array<string> = []
  args.forEach((a, i) => {
    if (a === name && args[i + 1] !== undefined) out.push(args[i + 1]!)
  })
  return out
}
const version = option("--version")[0] ?? pinned
const onlyScenarios = option("--scenario")
const filter = option("--filter")[0]
const allowFailures = args.includes("--allow-failures")
const timeoutMs = Number(option("--timeout")[0] ?? "60000")

// The installed dev dependency is used when it is the requested version; otherwise npx fetches it.
const installed = join(root, "node_modules/@modelcontextprotocol/conformance/dist/index.js")
const conformanceCommand = (): { cmd: string; argv: Array<string> } =>
  version === pinned
    ? { cmd: "npx", argv: ["-y", "node@22", installed] }
    : { cmd: "npx", argv: ["-y", "-p", "node@22", "-p", `@modelcontextprotocol/conformance@${version}`, "conformance"] }

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

const listScenarios = async (): Promise<Array<string>> => {
  const { cmd, argv } = conformanceCommand()
  const { stdout } = await run(cmd, [...argv, "list", "--client"], 300_000)
  return stdout.split("\n").map((l) => /^\s+-\s+(\S+)/.exec(l)?.[1]).filter((s): s is string => s !== undefined)
}

const summarize = async (dir: string, scenario: string): Promise<string> => {
  // results/<scenario>-<timestamp>/checks.json; report the failing or warning checks.
  const base = join(dir, dirname(scenario))
  const prefix = scenario.split("/").pop()!
  const entries = await readdir(base).catch(() => [] as Array<string>)
  const latest = entries.filter((e) => e.startsWith(prefix + "-")).sort().pop()
  if (latest === undefined) return ""
  const checks = JSON.parse(await readFile(join(base, latest, "checks.json"), "utf8").catch(() => "[]")) as Array<{
    id: string
    status: string
  }>
  return checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING").map((c) => `${c.status}:${c.id}`)
    .join(" ")
}

const main = async () => {
  const all = onlyScenarios.length > 0 ? onlyScenarios : await listScenarios()
  const scenarios = filter === undefined ? all : all.filter((s) => s.includes(filter))
  if (scenarios.length === 0) {
    console.error("no scenarios found (could the conformance package be fetched?)")
    process.exit(1)
  }
  const resultsDir = join(root, "conformance-results", version)
  await mkdir(resultsDir, { recursive: true })
  const tsx = join(root, "node_modules/.bin/tsx")
  const clientCommand = `${tsx} ${join(root, "examples/conformance-client.ts")}`
  console.log(`MCP conformance ${version}: ${scenarios.length} client scenarios, one at a time`)
  let passed = 0
  let failed = 0
  for (const scenario of scenarios) {
    const started = Date.now()
    const { cmd, argv } = conformanceCommand()
    const result = await run(cmd, [
      ...argv,
      "client",
      "--command",
      clientCommand,
      "--scenario",
      scenario,
      "-o",
      resultsDir,
      "--timeout",
      String(timeoutMs)
    ], timeoutMs + 120_000)
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const ok = result.code === 0
    if (ok) passed++
    else failed++
    const detail = ok ? "" : await summarize(resultsDir, scenario)
    console.log(`${ok ? "PASS" : "FAIL"}  ${scenario.padEnd(48)} ${seconds.padStart(6)}s  ${detail}`)
    if (!ok && process.env["CONFORMANCE_VERBOSE"] !== undefined) console.log(result.stdout.slice(-4000), result.stderr.slice(-4000))
  }
  await writeFile(join(root, "conformance-results", "summary.json"), JSON.stringify({ version, passed, failed }))
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed > 0 && !allowFailures ? 1 : 0)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
