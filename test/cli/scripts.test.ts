/**
 * The CLI inside scripts and pipes: input at end of file ends a paste-back sign-in at once with
 * `AuthorizationError` Cancelled; prompts, progress and the URL go to stderr so that stdout
 * carries only the result (only JSON with `--json`); no ANSI escapes unless stdout is a terminal
 * and `NO_COLOR` is unset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import { bundledCli } from "./bundle.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
/** The shipped bundle (built from the sources before the tests), not the sources through tsx. */
const BUNDLE = bundledCli()
const ANSI = /\x1b\[/

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly millis: number
}

/** The environment without a display, a browser or a colour preference: a script on a server. */
const scriptEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NO_WARNINGS: "1" }
  for (const name of ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "WSL_DISTRO_NAME", "NO_COLOR", "FORCE_COLOR"]) {
    delete env[name]
  }
  return env
}

/**
 * Runs `command args` with stdin at end of file (/dev/null) and stdout, stderr piped; killed after
 * 60 s (so a hang shows as a slow, signalled run rather than a stuck suite).
 */
const run = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = scriptEnv()) =>
  Effect.async<Run>((resume) => {
    const started = Date.now()
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr, millis: Date.now() - started }))
    })
  })

const cli = (args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) =>
  run(process.execPath, [BUNDLE.path(), ...args], env)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-cli-scripts-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

describe("effect-mcp-oauth CLI in scripts", () => {
  for (const mode of [["--manual"], []]) {
    const name = mode.length === 0 ? "login (no display: paste-back)" : "login --manual"
    it.scopedLive(`${name} --json with stdin at end of file: Cancelled at once, exit 1, the URL on stderr, stdout empty`, () =>
      Effect.gen(function*() {
        const server = yield* startTestServer()
        const dir = yield* tempDir
        const result = yield* cli(["login", ...mode, "--json", "--dir", dir, server.mcpUrl])
        expect(result.code).toBe(1)
        expect(result.stdout).toBe("")
        expect(result.stderr).toContain("Cancelled")
        expect(result.stderr).toContain(`${server.issuer}/authorize?`)
        expect(result.stderr).toContain("Callback URL:")
        // It ends on the end of input, not on the 5-minute sign-in timeout (tsx start-up included).
        expect(result.millis).toBeLessThan(30_000)
      }), 90_000)
  }

  it.scopedLive("login --headless --json: stdout is the JSON alone, logs go to stderr", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const dir = yield* tempDir
      const result = yield* cli(["--log-level", "debug", "login", "--headless", "--json", "--dir", dir, server.mcpUrl])
      expect(result.code).toBe(0)
      // A fresh directory: the client is registered, which the library logs (at debug level).
      expect(result.stderr).toContain("Registered client")
      expect(JSON.parse(result.stdout)).toMatchObject({ server: server.mcpUrl, signedIn: true })
    }), 90_000)

  it.effect("--help piped: no ANSI escape codes, with or without NO_COLOR", () =>
    Effect.gen(function*() {
      for (const env of [scriptEnv(), { ...scriptEnv(), NO_COLOR: "1" }]) {
        const help = yield* cli(["--help"], env)
        expect(help.code).toBe(0)
        expect(help.stdout).toContain("login")
        expect(help.stdout).not.toMatch(ANSI)
      }
    }), 90_000)

  it.effect("--help on a terminal: coloured, unless NO_COLOR is set", () =>
    Effect.gen(function*() {
      // script(1) gives the CLI a pseudo-terminal as stdout.
      const onTty = (env: NodeJS.ProcessEnv) =>
        run("script", ["-qec", `"${process.execPath}" "${BUNDLE.path()}" --help`, "/dev/null"], env)
      const coloured = yield* onTty(scriptEnv())
      expect(coloured.code).toBe(0)
      expect(coloured.stdout).toContain("login")
      expect(coloured.stdout).toMatch(ANSI)
      const plain = yield* onTty({ ...scriptEnv(), NO_COLOR: "1" })
      expect(plain.code).toBe(0)
      expect(plain.stdout).toContain("login")
      expect(plain.stdout).not.toMatch(ANSI)
    }), 90_000)
})
