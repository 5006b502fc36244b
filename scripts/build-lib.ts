/**
 * Bundles the JavaScript of the library's four entry points (`effect-mcp-oauth`, `/mcp`,
 * `/server`, `/fetch`) into `dist/`: Node's ES module loader pays per file (open, stat, URL
 * resolution), so an import that reads a handful of chunks instead of ~50 modules starts as fast as
 * the dependencies it cannot avoid (`effect/Schema`, `@effect/platform`'s HttpClient).
 *
 * - One build with code splitting: a module that two entries use lives in one shared chunk, so an
 *   app importing `effect-mcp-oauth` and `effect-mcp-oauth/mcp` gets one copy of every Schema
 *   class, tagged error and `Context.Tag` (`instanceof` and service lookup work across entries).
 * - Dynamic `import()`s (the loopback callback server, Node's file system, Redis, the keychain,
 *   `jose`, the browser opener) stay lazy: chunks loaded only when called.
 * - Every package stays external (`effect`, `@effect/*`, `jose`, `open`, `ioredis`, …): an app
 *   keeps its one copy of each peer, and tree-shaking drops our modules an entry does not use.
 * - Readable output (identifiers and layout kept); linked source maps point at `src/`, which the
 *   package ships (no `sourcesContent`). esbuild keeps no ordinary comments and escapes non-ASCII
 *   in strings (`charset: "ascii"`), so each chunk's source stays Latin-1 and V8 holds it as a
 *   one-byte string (the concern of scripts/build-cli.ts; test/package/bundle.test.ts checks it).
 *
 * `tsc -p src` emits only the declarations (`.d.ts` + `.d.ts.map`) beside these files.
 *
 * Usage: `tsx scripts/build-lib.ts [outdir]` (default `dist`); run by `npm run build` before
 * `tsc -p src` and scripts/build-cli.ts, as it empties `outdir` first (no stale modules shipped).
 */
import { build } from "esbuild"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")

/** The entry points, by their file under `outdir` (package.json `exports` names these files). */
export const LIB_ENTRIES: Readonly<Record<string, string>> = {
  "index": "src/index.ts",
  "mcp/index": "src/mcp/index.ts",
  "server/index": "src/server/index.ts",
  "fetch/index": "src/fetch/index.ts"
}

/** Empties `outdir` and bundles the entry points into it; returns the path of the root entry file. */
export const buildLib = async (outdir: string = NodePath.join(ROOT, "dist")): Promise<string> => {
  NodeFs.rmSync(outdir, { recursive: true, force: true })
  await build({
    absWorkingDir: ROOT,
    entryPoints: LIB_ENTRIES,
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    chunkNames: "chunks/[name]-[hash]",
    sourcemap: "linked",
    sourcesContent: false,
    treeShaking: true,
    charset: "ascii",
    legalComments: "none",
    logLevel: "warning"
  })
  return NodePath.join(outdir, "index.js")
}

if (process.argv[1] !== undefined && NodePath.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = await buildLib(process.argv[2] === undefined ? undefined : NodePath.resolve(process.argv[2]))
  console.log(`built ${NodePath.relative(process.cwd(), NodePath.dirname(entry))}`)
}
