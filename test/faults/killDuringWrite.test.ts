/**
 * Fault: a process SIGKILLed while it writes tokens, 100 times at random moments (a child writing
 * 48 KiB records in a tight loop, killed 0–40 ms after its first write). What must hold after
 * each kill: the file store reads as a complete record — the last one the child announced or a
 * later one — never torn, never absent once one existed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { build } from "esbuild"
import * as TokenStorage from "../../src/TokenStorage.js"
import { KEY, PADDING } from "./fixtures/tokenWriter.js"

const ROUNDS = 100
const LANES = 2

/** Bundles the writer once, so that each child starts in ~0.2 s (plain node, no TS loader). */
const bundle = (outDir: string) =>
  Effect.promise(() =>
    build({
      entryPoints: [path.join(import.meta.dirname, "fixtures/tokenWriter.ts")],
      bundle: true,
      platform: "node",
      format: "cjs",
      outfile: path.join(outDir, "writer.cjs"),
      logLevel: "warning"
    })
  ).pipe(Effect.as(path.join(outDir, "writer.cjs")))

/** A writer process, loaded and waiting for its first sequence number (so that its start-up is off the clock). */
const spawnWriter = (writer: string, directory: string) => {
  const child = spawn(process.execPath, [writer], {
    env: { ...process.env, TOKEN_WRITER_DIR: directory },
    stdio: ["pipe", "pipe", "inherit"]
  })
  const lines: Array<(line: string) => void> = []
  let buffered = ""
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8")
    const complete = buffered.split("\n")
    buffered = complete.pop() ?? ""
    for (const line of complete) for (const listener of lines) listener(line)
  })
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
  const ready = new Promise<void>((resolve) => lines.push((line) => line === "ready" && resolve()))
  return { child, lines, ready, exited }
}

/** Lets a waiting writer start at `first`, SIGKILLs it `delayMs` after its first write; the last sequence it announced. */
const killRound = (writer: ReturnType<typeof spawnWriter>, first: number, delayMs: number) =>
  Effect.promise(async () => {
    await writer.ready
    let announced = first - 1
    let timer: NodeJS.Timeout | undefined
    writer.lines.push((line) => {
      // other lines are logs (e.g. the warning that the killed writer's stale lock is broken)
      if (!line.startsWith("wrote ")) return
      announced = Math.max(announced, Number(line.slice("wrote ".length)))
      if (timer === undefined) timer = setTimeout(() => writer.child.kill("SIGKILL"), delayMs)
    })
    writer.child.stdin.write(`${first}\n`)
    await writer.exited
    return announced
  })

describe("fault: SIGKILL while writing tokens", () => {
  it.scopedLive(`${ROUNDS} kills at random moments: the store always reads a complete record, never torn or absent`, () =>
    Effect.gen(function*() {
      const root = mkdtempSync(path.join(tmpdir(), "faults-kill-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(root, { recursive: true, force: true })))
      const writer = yield* bundle(root)
      const lane = (index: number) =>
        Effect.gen(function*() {
          const directory = path.join(root, `lane-${index}`)
          const storage = yield* TokenStorage.TokenStorage.pipe(
            Effect.provide(TokenStorage.layerFileSystemNode(directory))
          )
          const report: Array<{ announced: number; read: number }> = []
          let next = 1
          // two writers waiting ahead of time; each is killed, the next one takes over
          const waiting = [spawnWriter(writer, directory), spawnWriter(writer, directory)]
          yield* Effect.addFinalizer(() => Effect.sync(() => waiting.forEach((w) => w.child.kill("SIGKILL"))))
          for (let round = 0; round < ROUNDS / LANES; round++) {
            const current = waiting.shift()!
            waiting.push(spawnWriter(writer, directory))
            const announced = yield* killRound(current, next, Math.floor(Math.random() * 40))
            expect(announced).toBeGreaterThanOrEqual(next) // at least one write completed: a record exists
            const stored = yield* storage.getTokens(KEY)
            // never absent, never torn (a torn file would not decode and read as absent)
            expect(Option.isSome(stored)).toBe(true)
            const token = Option.getOrThrow(stored)
            const seq = token.obtainedAt
            // the last announced record or a later one (written but not yet announced)
            expect(seq).toBeGreaterThanOrEqual(announced)
            expect(Redacted.value(token.accessToken)).toBe(`at-${seq}-${"x".repeat(PADDING)}`)
            expect(Redacted.value(token.refreshToken!)).toBe(`rt-${seq}`)
            report.push({ announced, read: seq })
            next = seq + 1
          }
          return { report, leftovers: readdirSync(directory).filter((n) => n.endsWith(".tmp")).length }
        })
      const lanes = yield* Effect.all(Array.from({ length: LANES }, (_, i) => lane(i)), { concurrency: LANES })
      const rounds = lanes.flatMap((l) => l.report)
      expect(rounds.length).toBe(ROUNDS)
      // the kills landed at varied points: some right after an announced write, some later
      expect(new Set(rounds.map((r) => r.read - r.announced)).size).toBeGreaterThan(1)
    }))
})
