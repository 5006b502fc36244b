import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, Ref } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as FileLock from "../../src/internal/fileLock.js"
import * as FileStore from "../../src/internal/fileStore.js"
import * as TokenLock from "../../src/TokenLock.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { makeToken } from "../storageConformance.js"

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
      // A lease long enough that a loaded CI machine's event-loop stalls do not lose it (400 ms did).
      const a = yield* lockIn(dir, { lease: "1500 millis" })
      const b = yield* lockIn(dir, { lease: "1500 millis", acquireTimeout: "300 millis" })
      const result = yield* a.withLock(KEY, Effect.gen(function*() {
        const file = lockFileOf(dir)!
        const first = JSON.parse(NodeFs.readFileSync(file, "utf8")).expiresAt
        yield* Effect.sleep("3200 millis") // more than two leases
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

  it.scopedLive("fencing: inside the lock ensureHeld extends the lease; outside any lock it does nothing", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = yield* lockIn(dir, { lease: "3 seconds" })
      yield* TokenLock.ensureHeld
      expect(Option.isNone(yield* TokenLock.currentLease)).toBe(true)
      const [before, after, lease] = yield* lock.withLock(KEY, Effect.gen(function*() {
        const before = JSON.parse(NodeFs.readFileSync(lockFileOf(dir)!, "utf8")).expiresAt
        yield* Effect.sleep("50 millis")
        yield* TokenLock.ensureHeld
        const after = JSON.parse(NodeFs.readFileSync(lockFileOf(dir)!, "utf8")).expiresAt
        return [before, after, yield* TokenLock.currentLease] as const
      }))
      expect(after).toBeGreaterThan(before)
      expect(Option.map(lease, (l) => l.key)).toEqual(Option.some(KEY))
    }))

  it.scopedLive("fencing: a holder whose lease expired and was taken meanwhile fails ensureHeld, and the file store refuses its token writes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const storage = Context.get(
        yield* Layer.build(TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))),
        TokenStorage.TokenStorage
      )
      yield* storage.setTokens(KEY, makeToken({ accessToken: Redacted.make("original") }))
      const a = yield* lockIn(dir)
      const b = yield* lockIn(dir, { acquireTimeout: "5 seconds" })
      const outcome = yield* a.withLock(KEY, Effect.gen(function*() {
        // A stalls: its lease runs out (as if stopped past it) and B takes the lock and writes.
        const file = lockFileOf(dir)!
        const record = JSON.parse(NodeFs.readFileSync(file, "utf8"))
        NodeFs.writeFileSync(file, JSON.stringify({ ...record, expiresAt: Date.now() - 1 }))
        yield* b.withLock(KEY, storage.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-b") })))
        // A resumes.
        const held = yield* Effect.flip(TokenLock.ensureHeld)
        const write = yield* Effect.flip(storage.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-a") })))
        const current = yield* storage.revisions!.getTokens(KEY)
        const conditional = yield* Effect.flip(
          storage.revisions!.setTokens(KEY, makeToken({ accessToken: Redacted.make("from-a") }), current.pipe(Option.map((v) => v.revision), Option.getOrElse(() => 0)))
        )
        const clear = yield* Effect.flip(storage.clearTokens(KEY))
        return { held, write, conditional, clear }
      }))
      for (const e of [outcome.held, outcome.write, outcome.conditional, outcome.clear]) {
        expect(e.reason).toBe("Conflict")
        expect(e.detail).toContain("lost")
      }
      expect(Option.map(yield* storage.getTokens(KEY), (t) => Redacted.value(t.accessToken))).toEqual(Option.some("from-b"))
    }))
})

describe("TokenLock.resolve: a shared storage brings its lock", () => {
  const resolveWith = (layer: Layer.Layer<never, never, never> | Layer.Layer<TokenStorage.TokenStorage> | Layer.Layer<TokenLock.TokenLock> | Layer.Layer<TokenStorage.TokenStorage | TokenLock.TokenLock>) =>
    Effect.provide(TokenLock.resolve, layer)

  it.scopedLive("file storage alone → its file lock; an explicit TokenLock (or layerNone, the opt-out) wins; memory → none", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const files = TokenStorage.layerFileSystemNode(dir)
      const fromStorage = yield* resolveWith(files)
      expect(fromStorage).not.toBe(TokenLock.none)
      // it is the file lock of the storage's directory: it creates the lock file there while held
      expect(yield* fromStorage.withLock(KEY, Effect.sync(() => lockFileOf(dir) !== undefined))).toBe(true)
      expect(yield* resolveWith(Layer.merge(files, TokenLock.layerNone))).toBe(TokenLock.none)
      const custom: TokenLock.TokenLock = { withLock: (_key, effect) => effect }
      expect(yield* resolveWith(Layer.merge(files, Layer.succeed(TokenLock.TokenLock, custom)))).toBe(custom)
      expect(yield* resolveWith(TokenStorage.layerMemory)).toBe(TokenLock.none)
      expect(yield* resolveWith(Layer.empty)).toBe(TokenLock.none)
    }))
})

