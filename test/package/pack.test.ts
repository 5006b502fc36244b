/**
 * The package as a user gets it: `npm run build`, `npm pack`, a fresh consumer project in the
 * system's temporary directory (outside this repository, so nothing resolves to its files), the
 * README's install line with the tarball in place of the package name, then what a user does:
 * type-check a strict program with `skipLibCheck: false` under NodeNext and Bundler resolution,
 * run it (it signs in against the package's own authorization server on 127.0.0.1 and calls a
 * tool), run the installed `effect-mcp-oauth --help`. publint and arethetypeswrong check the
 * tarball's manifest and its types.
 *
 * The npm cache makes the install fast after the first run (`--prefer-offline`); the registry is
 * reached only for packages missing from it.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Consumer from "./consumer.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const BIN = NodePath.join(ROOT, "node_modules", ".bin")
const TSC = NodePath.join(ROOT, "node_modules", "typescript", "bin", "tsc")
const manifest: {
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
} = JSON.parse(NodeFs.readFileSync(NodePath.join(ROOT, "package.json"), "utf8"))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a child process, without the `npm_*` variables of the `npm test` around us. */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")))

/** Runs a command to its end (killed after `timeoutMs`), collecting its output. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 240_000): Promise<Run> =>
  new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...cleanEnv(), NO_COLOR: "1", NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", (error) => {
      clearTimeout(timer)
      resolve({ code: -1, stdout, stderr: stderr + String(error) })
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** Fails with the command's output when it did not exit 0. */
const succeed = async (what: string, result: Promise<Run>): Promise<Run> => {
  const done = await result
  if (done.code !== 0) {
    throw new Error(`${what} exited ${done.code}\n--- stdout\n${done.stdout}\n--- stderr\n${done.stderr}`)
  }
  return done
}

/** The arguments of the `npm i …` line in the README's Install section. */
const readmeInstallArgs = (readme: string): ReadonlyArray<string> => {
  const section = readme.split(/^## Install$/m)[1]?.split(/^## /m)[0] ?? ""
  const line = section.split("\n").find((l) => /^npm (i|install) /.test(l))
  if (line === undefined) throw new Error("README.md: no `npm i …` line in the ## Install section")
  return line.trim().split(/\s+/).slice(2)
}

/** The versions of `name` installed anywhere in the consumer's node_modules. */
const installedCopies = (dir: string, name: string): ReadonlyArray<string> => {
  const found: Array<string> = []
  const visit = (modules: string): void => {
    const own = NodePath.join(modules, name, "package.json")
    if (NodeFs.existsSync(own)) found.push(JSON.parse(NodeFs.readFileSync(own, "utf8")).version)
    if (!NodeFs.existsSync(modules)) return
    for (const entry of NodeFs.readdirSync(modules)) {
      const packages = entry.startsWith("@") ?
        NodeFs.readdirSync(NodePath.join(modules, entry)).map((p) => NodePath.join(entry, p)) :
        [entry]
      for (const p of packages) visit(NodePath.join(modules, p, "node_modules"))
    }
  }
  visit(NodePath.join(dir, "node_modules"))
  return found
}

const PEERS = ["effect", "@effect/platform", "@effect/platform-node"]

describe("the packed tarball in a fresh consumer project", () => {
  let dir = ""
  let tarball = ""
  let checkNodeNext: Promise<Run> = Promise.resolve({ code: -1, stdout: "", stderr: "not started" })
  let checkBundler: Promise<Run> = Promise.resolve({ code: -1, stdout: "", stderr: "not started" })

  beforeAll(async () => {
    dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "effect-mcp-oauth-consumer-"))
    await succeed("npm run build", run("npm", ["run", "build"], ROOT))
    const packed = await succeed(
      "npm pack",
      run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], ROOT)
    )
    const [info]: ReadonlyArray<{ readonly filename: string; readonly size: number }> = JSON.parse(packed.stdout)
    if (info === undefined) throw new Error(`npm pack printed no file: ${packed.stdout}`)
    tarball = NodePath.join(dir, info.filename)
    console.log(`packed ${info.filename}: ${(info.size / 1024).toFixed(0)} kB`)

    NodeFs.writeFileSync(NodePath.join(dir, "package.json"), JSON.stringify(Consumer.packageJson, null, 2))
    NodeFs.writeFileSync(NodePath.join(dir, "main.ts"), Consumer.program)
    NodeFs.writeFileSync(NodePath.join(dir, "tsconfig.nodenext.json"), JSON.stringify(Consumer.tsconfigNodeNext))
    NodeFs.writeFileSync(NodePath.join(dir, "tsconfig.bundler.json"), JSON.stringify(Consumer.tsconfigBundler))

    // The README's line, the tarball for the (unpublished) name, plus the types a strict app has.
    const args = readmeInstallArgs(NodeFs.readFileSync(NodePath.join(ROOT, "README.md"), "utf8"))
      .map((arg) => (arg === "effect-mcp-oauth" ? tarball : arg))
    await succeed(
      "npm i (the README's install line)",
      run("npm", [
        "i",
        ...args,
        "@types/node@^20.19",
        "@types/ws@^8",
        "--prefer-offline",
        "--no-audit",
        "--no-fund"
      ], dir)
    )
    // Both checks at once: each is single-threaded.
    checkNodeNext = run(process.execPath, [TSC, "-p", "tsconfig.nodenext.json"], dir)
    checkBundler = run(process.execPath, [TSC, "-p", "tsconfig.bundler.json"], dir)
  }, 300_000)

  afterAll(async () => {
    await Promise.all([checkNodeNext, checkBundler])
    if (dir !== "") await NodeFs.promises.rm(dir, { recursive: true, force: true })
  }, 120_000)

  it("declares effect and the platform packages as peers, so an app's copy is the one used", () => {
    for (const peer of PEERS) {
      expect(manifest.peerDependencies?.[peer], peer).toMatch(/^\^/)
      expect(manifest.dependencies?.[peer], peer).toBeUndefined()
    }
    for (const peer of PEERS) expect(installedCopies(dir, peer), peer).toHaveLength(1)
  })

  it("publint finds nothing to report in the tarball", async () => {
    const result = await succeed("publint", run(NodePath.join(BIN, "publint"), ["run", tarball, "--strict"], ROOT))
    expect(result.stdout).toContain("All good!")
  }, 60_000)

  it("arethetypeswrong: every entry point has types under node16 (ESM) and bundler resolution", async () => {
    await succeed(
      "attw",
      run(NodePath.join(BIN, "attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped"], ROOT)
    )
  }, 120_000)

  it("a strict program type-checks with skipLibCheck: false under NodeNext resolution", async () => {
    const result = await checkNodeNext
    expect(result.stdout + result.stderr).toBe("")
    expect(result.code).toBe(0)
  }, 240_000)

  it("a strict program type-checks with skipLibCheck: false under Bundler resolution", async () => {
    const result = await checkBundler
    expect(result.stdout + result.stderr).toBe("")
    expect(result.code).toBe(0)
  }, 240_000)

  it("the program signs in against the package's own authorization server and calls a tool", async () => {
    await succeed("tsc (NodeNext)", checkNodeNext)
    const result = await succeed("node out/main.js", run(process.execPath, ["out/main.js"], dir, 60_000))
    // The program's own line is the last: the library may log before it (e.g. a registration).
    const last = result.stdout.trim().split("\n").at(-1) ?? ""
    expect(JSON.parse(last)).toEqual({ server: "consumer-test", tools: ["whoami"], whoami: "consumer-user" })
  }, 240_000)

  it("the installed bin answers --help", async () => {
    const result = await succeed(
      "effect-mcp-oauth --help",
      run(NodePath.join(dir, "node_modules", ".bin", "effect-mcp-oauth"), ["--help"], dir, 60_000)
    )
    expect(result.stdout).toContain("effect-mcp-oauth")
    expect(result.stdout).toContain("login")
  }, 60_000)

  it("an app on an older effect 3.x shares its one copy with the package", async () => {
    await Promise.all([checkNodeNext, checkBundler])
    await succeed(
      "npm i effect@3.22.2",
      run("npm", ["i", "effect@3.22.2", "--prefer-offline", "--no-audit", "--no-fund"], dir)
    )
    expect(installedCopies(dir, "effect")).toEqual(["3.22.2"])
  }, 120_000)
})
