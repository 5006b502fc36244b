import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as FileLock from "../../src/internal/fileLock.js"
import * as FileStore from "../../src/internal/fileStore.js"
import * as TokenLock from "../../src/TokenLock.js"

const KEY = "http://127.0.0.1:9001/mcp"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-lock-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

const lockIn = (dir: string, options: TokenLock.FileLockOptions = {}) =>
  Effect.map(
    Layer.build(TokenLock.layerFile(dir, options).pipe(Layer.provide(NodeContext.layer))),
    (ctx) => Context.get(ctx, TokenLock.TokenLock)
  )

const lockFileOf = (dir: string) => {
  const names = NodeFs.readdirSync(dir).filter((n) => n.endsWith(".lock") && !n.startsWith("."))
  return names.length === 1 ? NodePath.join(dir, names[0]!) : undefined
}

/**
 * Writes a lock file as another process would have left it: by default one of this host and pid
 * namespace; `namespace: null` as an older version wrote it (no namespace recorded).
 */
const plantLock = (
  dir: string,
  record: { pid: number; expiresAt: number; host?: string; namespace?: string | null }
) =>
  Effect.gen(function*() {
    const name = (yield* FileStore.fileNameFor(KEY, "tokens")).replace(/\.tokens\.json$/, ".lock")
    const file = NodePath.join(dir, name)
    const namespace = record.namespace === undefined ? FileLock.currentNamespace() : record.namespace
    NodeFs.writeFileSync(file, JSON.stringify({
      format: "effect-mcp-oauth/lock", owner: "someone-else", pid: record.pid, host: record.host ?? Os.hostname(),
      ...(namespace === null ? {} : { namespace }),
      acquiredAt: Date.now() - 1000, expiresAt: record.expiresAt
    }), { mode: 0o600 })
    return file
  })

describe("TokenLock.layerFile", () => {
  it.scopedLive("mutual exclusion between two lock instances (two 'processes'), and the lock file is gone after", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const a = yield* lockIn(dir)
      const b = yield* lockIn(dir)
      const inside = yield* Ref.make(0)
      const maxInside = yield* Ref.make(0)
      const critical = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(inside, (x) => x + 1)
        yield* Ref.update(maxInside, (m) => Math.max(m, n))
        yield* Effect.sleep("5 millis")
        yield* Ref.update(inside, (x) => x - 1)
      })
      yield* Effect.forEach(Array.from({ length: 16 }, (_, i) => i), (i) => (i % 2 ? a : b).withLock(KEY, critical), {
        concurrency: "unbounded"
      })
      expect(yield* Ref.get(maxInside)).toBe(1)
      expect(lockFileOf(dir)).toBeUndefined()
      expect((NodeFs.statSync(dir).mode & 0o777).toString(8)).toBe("700")
    }))

  it.scopedLive("a lock whose holder's pid is gone is broken at once, even with an unexpired lease", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* plantLock(dir, { pid: 2 ** 22 + 12345, expiresAt: Date.now() + 60_000 })
      const lock = yield* lockIn(dir, { acquireTimeout: "5 seconds" })
      const started = Date.now()
      expect(NodeFs.existsSync(lockFileOf(dir) ?? "none")).toBe(true)
      expect(yield* lock.withLock(KEY, Effect.succeed("mine"))).toBe("mine")
      expect(Date.now() - started).toBeLessThan(3_000)
    }))

  it.scopedLive("a lock from another pid namespace (a container sharing the directory, same host name) is waited for until its lease expires, not broken because its pid is unknown here", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const deadHere = 2 ** 22 + 12345
      for (const namespace of ["boot:another-machine;pid:[4026532999]", null]) {
        const leaseEnds = Date.now() + 1_500
        const file = yield* plantLock(dir, { pid: deadHere, expiresAt: leaseEnds, namespace })
        const impatient = yield* lockIn(dir, { acquireTimeout: "600 millis" })
        expect((yield* Effect.flip(impatient.withLock(KEY, Effect.void))).reason).toBe("Conflict")
        expect(NodeFs.existsSync(file)).toBe(true)
        const patient = yield* lockIn(dir, { acquireTimeout: "10 seconds" })
        expect(yield* patient.withLock(KEY, Effect.succeed("mine"))).toBe("mine")
        expect(Date.now()).toBeGreaterThanOrEqual(leaseEnds)
      }
    }))

  it.scopedLive("a lock records its host, boot and pid namespace", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = yield* lockIn(dir)
      const record = yield* lock.withLock(KEY, Effect.sync(() => JSON.parse(NodeFs.readFileSync(lockFileOf(dir)!, "utf8"))))
      expect(record.pid).toBe(process.pid)
      expect(record.host).toBe(Os.hostname())
      expect(record.namespace).toBe(FileLock.currentNamespace())
      if (process.platform === "linux") expect(record.namespace).toContain(NodeFs.readlinkSync("/proc/self/ns/pid"))
    }))

  it.scopedLive("a lock whose lease expired is broken even though its holder (this very process) is alive", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* plantLock(dir, { pid: process.pid, expiresAt: Date.now() - 1 })
      const lock = yield* lockIn(dir, { acquireTimeout: "5 seconds" })
      expect(yield* lock.withLock(KEY, Effect.succeed("mine"))).toBe("mine")
    }))

  it.scopedLive("a live, unexpired lock is waited for, then StorageError Conflict after acquireTimeout; it is left intact", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = yield* plantLock(dir, { pid: process.pid, expiresAt: Date.now() + 60_000 })
      const before = NodeFs.readFileSync(file, "utf8")
      const lock = yield* lockIn(dir, { acquireTimeout: "600 millis" })
      const error = yield* Effect.flip(lock.withLock(KEY, Effect.succeed("never")))
      expect(error._tag).toBe("StorageError")
      expect(error.reason).toBe("Conflict")
      expect(error.message).toContain("timed out")
      expect(NodeFs.readFileSync(file, "utf8")).toBe(before)
    }))

  it.scopedLive("the lease is renewed while held (a long holder is never broken); release removes only our own lock", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const a = yield* lockIn(dir, { lease: "400 millis" })
      const b = yield* lockIn(dir, { lease: "400 millis", acquireTimeout: "300 millis" })
      const result = yield* a.withLock(KEY, Effect.gen(function*() {
        const file = lockFileOf(dir)!
        const first = JSON.parse(NodeFs.readFileSync(file, "utf8")).expiresAt
        yield* Effect.sleep("1 second") // more than two leases
        const later = JSON.parse(NodeFs.readFileSync(file, "utf8")).expiresAt
        const other = yield* Effect.either(b.withLock(KEY, Effect.void))
        return { first, later, other }
      }))
      expect(result.later).toBeGreaterThan(result.first)
      expect(result.other._tag).toBe("Left")
      expect(lockFileOf(dir)).toBeUndefined()
    }))

  it.scopedLive("an unreadable (half-written) lock file is not broken while fresh, but is once it is old", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = yield* plantLock(dir, { pid: process.pid, expiresAt: Date.now() + 60_000 })
      NodeFs.writeFileSync(file, "{\"format\":\"effect-mcp-")
      const quick = yield* lockIn(dir, { acquireTimeout: "300 millis" })
      expect((yield* Effect.flip(quick.withLock(KEY, Effect.void))).reason).toBe("Conflict")
      const old = new Date(Date.now() - 60_000)
      NodeFs.utimesSync(file, old, old)
      expect(yield* quick.withLock(KEY, Effect.succeed(1))).toBe(1)
    }))

  it.scopedLive("a symlink in place of the lock file or of the lock directory is refused with StorageError; nothing is done to its target", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = NodePath.join(root, "locks")
      NodeFs.mkdirSync(dir, { mode: 0o700 })
      const outside = NodePath.join(root, "outside.txt")
      NodeFs.writeFileSync(outside, "not yours", { mode: 0o644 })
      NodeFs.chmodSync(outside, 0o644)
      const old = new Date(Date.now() - 60_000)
      NodeFs.utimesSync(outside, old, old) // an "old unreadable lock" if it were followed
      const name = (yield* FileStore.fileNameFor(KEY, "tokens")).replace(/\.tokens\.json$/, ".lock")
      NodeFs.symlinkSync(outside, NodePath.join(dir, name))
      const lock = yield* lockIn(dir, { acquireTimeout: "2 seconds" })
      const error = yield* Effect.flip(lock.withLock(KEY, Effect.succeed("entered")))
      expect(error._tag).toBe("StorageError")
      expect(error.detail).toContain("symbolic link")
      expect(NodeFs.readFileSync(outside, "utf8")).toBe("not yours")
      expect(NodeFs.statSync(outside).mode & 0o777).toBe(0o644)

      const elsewhere = NodePath.join(root, "elsewhere")
      NodeFs.mkdirSync(elsewhere, { mode: 0o755 })
      NodeFs.symlinkSync(elsewhere, NodePath.join(root, "linked"))
      const linked = yield* lockIn(NodePath.join(root, "linked"), { acquireTimeout: "2 seconds" })
      const dirError = yield* Effect.flip(linked.withLock(KEY, Effect.succeed("entered")))
      expect(dirError.detail).toContain("symbolic link")
      expect(NodeFs.readdirSync(elsewhere)).toEqual([])
    }))
})
