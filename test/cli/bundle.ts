/**
 * The CLI as the package ships it: the esbuild bundle that `npm run build` writes to
 * `dist/cli/effect-mcp-oauth.mjs` (scripts/build-cli.ts), built here from the current sources
 * with the same function into a directory of its own per test file (test files run in
 * parallel), inside the project so that the external `ioredis` resolves as it does when installed.
 */
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
