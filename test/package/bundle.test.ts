/**
 * The library's JavaScript as the package ships it: the esbuild bundle of the four entry points
 * that `npm run build` writes to `dist/` (scripts/build-lib.ts), built here from the current
 * sources with the same function into a package directory of its own (a copy of package.json
 * beside `dist/`), inside the project's node_modules so that the external dependencies resolve
 * as they do when installed, and `import("effect-mcp-oauth")` resolves to it by the package's
 * own name (Node's self-reference through `exports`).
 *
 * Node's ES module loader pays per file, so what bounds a cold import is the number of files:
 * these tests count them (no timing), and check what splitting must keep true: one copy of every
 * module, whichever entries an app imports.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { buildLib } from "../../scripts/build-lib.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const NAME = "effect-mcp-oauth"
const ENTRIES = [NAME, `${NAME}/mcp`, `${NAME}/server`, `${NAME}/fetch`]
/** Files of this package one entry's import may read: the entry and the chunks it shares. */
const MAX_FILES_PER_ENTRY = 8

let pkg = ""

beforeAll(async () => {
  const cache = NodePath.join(ROOT, "node_modules", ".cache")
  NodeFs.mkdirSync(cache, { recursive: true })
  pkg = NodeFs.mkdtempSync(NodePath.join(cache, "lib-bundle-"))
  NodeFs.copyFileSync(NodePath.join(ROOT, "package.json"), NodePath.join(pkg, "package.json"))
  await buildLib(NodePath.join(pkg, "dist"))
}, 120_000)

afterAll(() => {
  if (pkg !== "") NodeFs.rmSync(pkg, { recursive: true, force: true })
})

/** Runs an ES module `script` with node in the package directory; its stdout (fails on exit ≠ 0). */
const runScript = (script: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const file = NodePath.join(pkg, `script-${Math.random().toString(36).slice(2)}.mjs`)
    NodeFs.writeFileSync(file, script)
    const child = spawn(process.execPath, [file], { cwd: pkg, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else reject(new Error(`node ${file} exited ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`))
    })
  })

/** The URL of every module file Node loads while importing `specifier` (a `module.register` load hook). */
const loadedBy = async (specifier: string): Promise<ReadonlyArray<string>> => {
  const hook = NodePath.join(pkg, "count-loads.mjs")
  NodeFs.writeFileSync(
    hook,
    `import { appendFileSync } from "node:fs"
let log
export const initialize = (data) => { log = data.log }
export const load = (url, context, next) => { appendFileSync(log, url + "\\n"); return next(url, context) }
`
  )
  const log = NodePath.join(pkg, `loaded-${Math.random().toString(36).slice(2)}.txt`)
  NodeFs.writeFileSync(log, "")
  await runScript(`import { register } from "node:module"
register(${JSON.stringify(pathToFileURL(hook).href)}, { data: { log: ${JSON.stringify(log)} } })
await import(${JSON.stringify(specifier)})
`)
  return NodeFs.readFileSync(log, "utf8").split("\n").filter((l) => l !== "")
}

/** The JavaScript files of the built `dist/`. */
const jsFiles = (): ReadonlyArray<string> =>
  NodeFs.readdirSync(NodePath.join(pkg, "dist"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".js"))
    .map((f) => NodePath.join(pkg, "dist", f))

describe("the bundled library entry points", () => {
  for (const specifier of ENTRIES) {
    it(`import("${specifier}") reads at most ${MAX_FILES_PER_ENTRY} files of the package, and none of the lazily loaded parts`, async () => {
      const loaded = await loadedBy(specifier)
      const own = loaded.filter((url) => url.startsWith(pathToFileURL(pkg).href))
      // The hook saw the whole import (effect's own modules), not only our files.
      expect(loaded.filter((url) => url.includes("/node_modules/effect/")).length).toBeGreaterThan(100)
      expect(own.length, own.join("\n")).toBeLessThanOrEqual(MAX_FILES_PER_ENTRY)
      expect(own.filter((url) => NodePath.basename(url).startsWith("callbackServer"))).toEqual([])
      // jose: loaded with the first DPoP proof, assertion or JWT to verify, never at import.
      const lazy = /\/node_modules\/(jose|open|ioredis|@napi-rs|undici|ws)\//
      expect(loaded.filter((url) => lazy.test(url))).toEqual([])
    }, 60_000)
  }

  it("the loopback callback server stays a chunk of its own, loaded only by a browser sign-in", () => {
    const chunks = NodeFs.readdirSync(NodePath.join(pkg, "dist", "chunks"))
    expect(chunks.filter((f) => /^callbackServer-.*\.js$/.test(f))).toHaveLength(1)
  })

  it("every source module is in exactly one file: the entries share one copy of each", () => {
    const where = new Map<string, Array<string>>()
    for (const file of jsFiles()) {
      const map: { readonly sources: ReadonlyArray<string> } = JSON.parse(NodeFs.readFileSync(`${file}.map`, "utf8"))
      for (const source of map.sources) {
        const path = NodePath.relative(ROOT, NodePath.resolve(NodePath.dirname(file), source))
        where.set(path, [...(where.get(path) ?? []), NodePath.relative(pkg, file)])
      }
    }
    expect(where.size).toBeGreaterThan(50)
    expect([...where].filter(([, files]) => files.length > 1)).toEqual([])
    // The maps point at the shipped sources (no sourcesContent): every one resolves to src/.
    expect([...where.keys()].filter((path) => !path.startsWith("src/") || !NodeFs.existsSync(NodePath.join(ROOT, path))))
      .toEqual([])
  })

  it("an app importing the root, /fetch and /mcp gets errors that are instances of the root's classes", async () => {
    // A server that refuses every request: dynamic client registration fails, in both entries.
    const out = await runScript(`import { createServer } from "node:http"
import { Cause, Effect, Exit, Option } from "effect"
import { FetchHttpClient } from "@effect/platform"
import * as Root from "effect-mcp-oauth"
import { makeOAuthFetch } from "effect-mcp-oauth/fetch"
import { McpClient } from "effect-mcp-oauth/mcp"

const server = createServer((_, res) => { res.statusCode = 401; res.end() })
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const url = "http://127.0.0.1:" + server.address().port + "/mcp"

const oauth = makeOAuthFetch({ mcpUrl: url, signIn: "headless", allowInsecure: true })
const fromFetch = await oauth.fetch(url, { method: "POST", body: "{}" }).then(() => undefined, (e) => e)
await oauth.close()

const exit = await Effect.runPromiseExit(
  Effect.scoped(McpClient.connect(new URL(url), {
    auth: { oauth: { allowInsecure: true } },
    clientInfo: { name: "bundle-test", version: "1.0.0" },
    standaloneStream: false
  })).pipe(Effect.provide(FetchHttpClient.layer))
)
const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
const fromMcp = Option.getOrUndefined(McpClient.oauthCause(failure))
server.close()
console.log(JSON.stringify({
  fetch: [fromFetch?._tag, fromFetch instanceof Root.OAuthRegistrationError],
  mcp: [fromMcp?._tag, fromMcp instanceof Root.OAuthRegistrationError]
}))
`)
    expect(JSON.parse(out.trim().split("\n").at(-1) ?? "")).toEqual({
      fetch: ["OAuthRegistrationError", true],
      mcp: ["OAuthRegistrationError", true]
    })
  }, 60_000)

  it("holds only Latin-1 text, so V8 keeps each loaded chunk's source as a one-byte string", () => {
    const wide = jsFiles()
      .map((file) => [NodePath.relative(pkg, file), [...NodeFs.readFileSync(file, "utf8")].filter((c) => c.codePointAt(0)! > 0xff).length] as const)
      .filter(([, n]) => n > 0)
    expect(wide).toEqual([])
  })
})
