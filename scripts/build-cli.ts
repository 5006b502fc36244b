/**
 * Bundles the `effect-mcp-oauth` command into `dist/cli/effect-mcp-oauth.mjs` (the package's
 * `bin`): one tree-shaken ES module with a source map, so a start reads one file instead of
 * resolving and parsing thousands of modules. Parts only some commands need (the undici HTTP
 * client, the browser opener) are split into chunks loaded on first use; `ioredis` (an optional
 * peer) stays external.
 *
 * Usage: `tsx scripts/build-cli.ts [outdir]` (default `dist/cli`); run by `npm run build`. The CLI
 * tests (test/cli) build it with the same function and run the bundle, not the sources.
 */
import { build } from "esbuild"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")

/** Builds the CLI bundle into `outdir`; returns the path of the entry file. */
export const buildCli = async (outdir: string = NodePath.join(ROOT, "dist", "cli")): Promise<string> => {
  NodeFs.rmSync(NodePath.join(outdir, "chunks"), { recursive: true, force: true })
  await build({
    absWorkingDir: ROOT,
    entryPoints: { "effect-mcp-oauth": "src/cli/main.ts" },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    sourcemap: "linked",
    sourcesContent: false,
    minifySyntax: true,
    // No comments or indentation: a kept comment with one character above U+00FF ("…", "’")
    // makes V8 hold that chunk's whole source as a two-byte string for the process's lifetime
    // (test/cli/bundleSize.test.ts). Identifiers stay readable; the source maps map back.
    minifyWhitespace: true,
    treeShaking: true,
    legalComments: "linked",
    external: ["ioredis", "@napi-rs/keyring"],
    // CommonJS dependencies inside an ES module bundle still call require() for node builtins.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: "warning"
  })
  return NodePath.join(outdir, "effect-mcp-oauth.mjs")
}

if (process.argv[1] !== undefined && NodePath.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = await buildCli(process.argv[2] === undefined ? undefined : NodePath.resolve(process.argv[2]))
  console.log(`built ${NodePath.relative(process.cwd(), entry)}`)
}
