/**
 * What each entry point loads at import: the static import graph (esbuild's metafile, dynamic
 * `import()` left out, as Node loads them only when called) of the root entry and each subpath.
 * An app importing `OAuthLayer` must not pay for the undici client, WebSockets, Redis, the browser
 * opener, the CLI framework, the MCP client or the server side, nor for a package barrel that
 * loads every module of effect or @effect/platform.
 */
import { build } from "esbuild"
import * as NodePath from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")

/** The files an import of `entry` evaluates before it resolves. */
const staticGraph = async (entry: string): Promise<ReadonlyArray<string>> => {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    write: false,
    outdir: "out",
    format: "esm",
    platform: "node",
    metafile: true,
    logLevel: "silent"
  })
  const inputs = result.metafile.inputs
  const seen = new Set<string>()
  const queue = [entry]
  while (queue.length > 0) {
    const file = queue.shift()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const i of inputs[file]?.imports ?? []) {
      if (i.kind !== "dynamic-import" && !i.external) queue.push(i.path)
    }
  }
  return [...seen]
}

const HEAVY = [
  "node_modules/undici/",
  "node_modules/ws/",
  "node_modules/ioredis/",
  "node_modules/open/",
  "node_modules/@effect/cli/",
  "node_modules/effect/dist/esm/index.js",
  "node_modules/@effect/platform/dist/esm/index.js",
  "node_modules/@effect/platform-node/dist/esm/index.js",
  "node_modules/@napi-rs/keyring/"
]

describe("entry points import only what they use", () => {
  for (const entry of ["src/index.ts", "src/mcp/index.ts", "src/server/index.ts", "src/fetch/index.ts"]) {
    it(`${entry} loads no barrel and none of undici, ws, ioredis, open, @effect/cli, @napi-rs/keyring at import`, async () => {
      const graph = await staticGraph(entry)
      expect(graph.length).toBeGreaterThan(10)
      expect(graph.filter((f) => HEAVY.some((h) => f.includes(h)))).toEqual([])
    }, 60_000)
  }

  it("the CLI's entry loads no undici, ws, ioredis or open before a command needs them", async () => {
    const graph = await staticGraph("src/cli/main.ts")
    expect(graph.some((f) => f.includes("node_modules/@effect/cli/"))).toBe(true)
    expect(graph.filter((f) => HEAVY.slice(0, 4).some((h) => f.includes(h)))).toEqual([])
  }, 60_000)

  it("the root entry loads neither the MCP client nor the server side, nor jose before a DPoP key or client assertion", async () => {
    const graph = await staticGraph("src/index.ts")
    expect(graph.filter((f) => f.startsWith("src/mcp/") || f.startsWith("src/server/"))).toEqual([])
    expect(graph.filter((f) => f.includes("node_modules/jose/"))).toEqual([])
  }, 60_000)

  for (const entry of ["src/index.ts", "src/fetch/index.ts"]) {
    it(`${entry} loads neither the HTTP server side of @effect/platform nor Node's file system before a browser sign-in or a file store needs them`, async () => {
      const graph = await staticGraph(entry)
      expect(graph.filter((f) =>
        f.includes("node_modules/@effect/platform-node") ||
        f.includes("node_modules/multipasta/") ||
        /node_modules\/@effect\/platform\/dist\/esm\/(HttpServer|HttpMiddleware|Multipart|Socket|CommandExecutor|Worker)/.test(f) ||
        f === "src/internal/callbackServer.ts"
      )).toEqual([])
    }, 60_000)
  }
})
