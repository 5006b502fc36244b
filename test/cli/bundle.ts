/**
 * The CLI as the package ships it: the esbuild bundle that `npm run build` writes to
 * `dist/cli/effect-mcp-oauth.mjs` (scripts/build-cli.ts), built here from the current sources
 * with the same function into a directory of its own per test file (test files run in
 * parallel), inside the project so that the external `ioredis` resolves as it does when installed.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { afterAll, beforeAll } from "vitest"
import { buildCli } from "../../scripts/build-cli.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")

/** Builds the bundle before the file's tests and removes it after; `path()` is its entry file. */
export const bundledCli = (): { readonly path: () => string } => {
  let entry: string | undefined
  let dir: string | undefined
  beforeAll(async () => {
    const cache = NodePath.join(ROOT, "node_modules", ".cache")
    NodeFs.mkdirSync(cache, { recursive: true })
    dir = NodeFs.mkdtempSync(NodePath.join(cache, "cli-bundle-"))
    entry = await buildCli(dir)
  }, 120_000)
  afterAll(() => {
    if (dir !== undefined) NodeFs.rmSync(dir, { recursive: true, force: true })
  })
  return {
    path: () => {
      if (entry === undefined) throw new Error("the CLI bundle is built in beforeAll")
      return entry
    }
  }
}

/** What a CLI run printed, and its exit code. */
export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs the CLI at `entry` as a subprocess with `args`, as a user would (killed after 60 s);
 * `onStderr` sees what it printed on stderr so far, each time it prints more.
 */
export const runCli = (
  entry: string,
  args: ReadonlyArray<string>,
  onStderr?: (stderr: string) => void
): Effect.Effect<Run> =>
  Effect.async<Run>((resume) => {
    const child = spawn(process.execPath, [entry, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => {
      stderr += d
      onStderr?.(stderr)
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })
