/**
 * The shape of the shipped CLI bundle that bears on a proxy's memory: V8 keeps a module's source
 * text in the heap for the process's lifetime, as a one-byte string when every character is
 * Latin-1 and as a two-byte string (twice the size) otherwise. A single "…" or "’" in a comment
 * that the bundler keeps doubles the resident source of a whole chunk (the entry, ~0.8 MB, and the
 * undici chunk, ~1 MB), so the bundle is emitted without comments or indentation; the linked
 * source maps keep it debuggable.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { bundledCli } from "./bundle.js"

const BUNDLE = bundledCli()

/** The bundle's JavaScript files: the entry and its chunks. */
const files = (): ReadonlyArray<string> => {
  const dir = NodePath.dirname(BUNDLE.path())
  const chunks = NodeFs.readdirSync(NodePath.join(dir, "chunks")).filter((f) => f.endsWith(".mjs"))
  return [BUNDLE.path(), ...chunks.map((f) => NodePath.join(dir, "chunks", f))]
}

/** Characters above U+00FF, which make V8 store the whole source as a two-byte string. */
const wideCharacters = (file: string): number => {
  let n = 0
  for (const c of NodeFs.readFileSync(file, "utf8")) if (c.codePointAt(0)! > 0xff) n++
  return n
}

describe("the shipped CLI bundle", () => {
  it("holds only Latin-1 text, so each loaded module's source stays a one-byte string in V8's heap", () => {
    const wide = files()
      // `open` (loaded only to open a browser) has a regular expression of typographic quotes.
      .filter((f) => !NodePath.basename(f).startsWith("open-"))
      .map((f) => [NodePath.basename(f), wideCharacters(f)] as const)
      .filter(([, n]) => n > 0)
    expect(wide).toEqual([])
  })

  it("still links a source map from every file", () => {
    for (const file of files()) {
      const text = NodeFs.readFileSync(file, "utf8")
      const map = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1]
      expect(map, file).toBeDefined()
      expect(NodeFs.existsSync(NodePath.join(NodePath.dirname(file), map!)), file).toBe(true)
    }
  })
})
