/**
 * Every ```ts block of README.md is one of two things, and this test holds it to that:
 *
 * - a complete program: written to a file of its own inside the repository (so that
 *   "effect-mcp-oauth", "effect-mcp-oauth/mcp", "effect-mcp-oauth/server" and "effect-mcp-oauth/fetch" resolve to src/
 *   through tsconfig `paths`), and type-checked with the repository's strict settings;
 * - a fragment of a named example, marked on the line before the block with
 *   `<!-- fragment: examples/NAME.ts -->`: its text (whitespace aside) occurs in that file, which
 *   `npm run typecheck` checks.
 *
 * A failure names the README line of the block.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const README = NodePath.join(ROOT, "README.md")
const TSC = NodePath.join(ROOT, "node_modules", "typescript", "bin", "tsc")
const OUT = NodePath.join(ROOT, "test", "docs", ".readme-blocks")

interface Block {
  /** 1-based line of the block's first line of code in README.md. */
  readonly line: number
  readonly code: string
  /** The example file it is a fragment of, or undefined for a complete program. */
  readonly fragmentOf: string | undefined
}

/** The ```ts blocks of a Markdown text, with the fragment marker on the line before each, if any. */
const tsBlocks = (markdown: string): ReadonlyArray<Block> => {
  const lines = markdown.split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    // A fence may be indented (a block inside a list item); its lines are indented as much.
    const open = /^( *)```(ts|typescript)\s*$/.exec(lines[i] ?? "")
    if (open === null) continue
    const indent = open[1] ?? ""
    const end = lines.findIndex((l, j) => j > i && l.trimEnd() === `${indent}\`\`\``)
    if (end === -1) throw new Error(`README.md:${i + 1}: unterminated code block`)
    let before = i - 1
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--
    const marker = /^<!--\s*fragment:\s*(\S+)\s*-->$/.exec((lines[before] ?? "").trim())
    const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join("\n")
    blocks.push({ line: i + 2, code, fragmentOf: marker?.[1] })
    i = end
  }
  return blocks
}

const normalize = (text: string): string => text.replace(/\s+/g, " ").trim()
const fileOf = (block: Block): string => NodePath.join(OUT, `readme-line-${block.line}.ts`)

const blocks = tsBlocks(NodeFs.readFileSync(README, "utf8"))
const complete = blocks.filter((b) => b.fragmentOf === undefined)
const fragments = blocks.filter((b) => b.fragmentOf !== undefined)

/** The type errors of each complete block's file, by file name; set by beforeAll. */
const errors = new Map<string, Array<string>>()
let tscOutput = ""

describe("README.md code blocks", () => {
  beforeAll(async () => {
    NodeFs.rmSync(OUT, { recursive: true, force: true })
    NodeFs.mkdirSync(OUT, { recursive: true })
    for (const block of complete) NodeFs.writeFileSync(fileOf(block), block.code + "\n")
    const tsconfig = {
      extends: "../../../tsconfig.json",
      compilerOptions: {
        noEmit: true,
        // A block may define a Layer or a program without using it: that is what a reader copies.
        noUnusedLocals: false,
        // Each block is a module of its own, even one without imports.
        moduleDetection: "force",
        paths: {
          "effect-mcp-oauth": ["../../../src/index.ts"],
          "effect-mcp-oauth/mcp": ["../../../src/mcp/index.ts"],
          "effect-mcp-oauth/server": ["../../../src/server/index.ts"],
          "effect-mcp-oauth/fetch": ["../../../src/fetch/index.ts"]
        }
      },
      include: [],
      files: complete.map((b) => NodePath.basename(fileOf(b)))
    }
    NodeFs.writeFileSync(NodePath.join(OUT, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
    tscOutput = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [TSC, "-p", NodePath.join(OUT, "tsconfig.json"), "--pretty", "false"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (d) => (output += d))
      child.stderr.on("data", (d) => (output += d))
      child.on("close", () => resolve(output))
    })
    for (const line of tscOutput.split("\n")) {
      const match = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line)
      if (match === null) continue
      const file = NodePath.resolve(ROOT, match[1] ?? "")
      const list = errors.get(file) ?? []
      list.push(`${match[2]}:${match[3]} ${match[4]}`)
      errors.set(file, list)
    }
  }, 240_000)

  afterAll(() => NodeFs.rmSync(OUT, { recursive: true, force: true }))

  it("has ts blocks to check", () => {
    expect(complete.length).toBeGreaterThan(0)
  })

  it("type errors are only ever reported in the README's blocks", () => {
    // An error in src/ or a tsconfig problem would otherwise go unnoticed by the per-block tests.
    const outside = [...errors.keys()].filter((file) => !complete.some((b) => fileOf(b) === file))
    expect(outside, tscOutput).toEqual([])
    if (errors.size === 0) expect(tscOutput.trim()).toBe("")
  })

  for (const block of complete) {
    it(`README.md:${block.line} type-checks as a complete program`, () => {
      const found = (errors.get(fileOf(block)) ?? []).map((e) => {
        const [line = "0", rest = ""] = e.split(/:(.*)/s)
        return `README.md:${block.line + Number(line) - 1}:${rest}`
      })
      expect(found).toEqual([])
    })
  }

  for (const block of fragments) {
    it(`README.md:${block.line} is a fragment of ${block.fragmentOf}`, () => {
      const path = NodePath.join(ROOT, block.fragmentOf ?? "")
      expect(block.fragmentOf?.startsWith("examples/"), "a fragment names a file under examples/").toBe(true)
      expect(NodeFs.existsSync(path), `${block.fragmentOf} exists`).toBe(true)
      expect(normalize(NodeFs.readFileSync(path, "utf8"))).toContain(normalize(block.code))
    })
  }
})
