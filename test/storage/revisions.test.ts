import { FileSystem, KeyValueStore } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import type { Scope } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as FileStore from "../../src/internal/fileStore.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { KEY_A, makeToken } from "../storageConformance.js"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "emo-rev-" })).pipe(
  Effect.provide(NodeContext.layer),
  Effect.orDie
)

const open = (layer: Layer.Layer<TokenStorage.TokenStorage>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

/** Two storages over one medium: two "processes". */
interface Medium {
  readonly name: string
  readonly pair: Effect.Effect<readonly [TokenStorage.TokenStorage, TokenStorage.TokenStorage], never, Scope.Scope>
}

const fileMedium: Medium = {
  name: "file system",
  pair: Effect.gen(function*() {
    const dir = NodePath.join(yield* tempDir, "store")
    const layer = () => TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))
    return [yield* open(layer()), yield* open(layer())] as const
  })
}

const kvMedium: Medium = {
  name: "key-value store",
  pair: Effect.gen(function*() {
    const ctx = yield* Layer.build(KeyValueStore.layerMemory)
    const layer = () => TokenStorage.layerKeyValueStore.pipe(Layer.provide(Layer.succeedContext(ctx)))
    const s = yield* open(layer())
    return [s, s] as const // one process: the generic KeyValueStore is atomic only within a process
  })
}

const memoryMedium: Medium = {
  name: "memory",
  pair: Effect.map(open(TokenStorage.layerMemory), (s) => [s, s] as const)
}

const access = (t: Option.Option<{ readonly accessToken: Redacted.Redacted<string> }>) =>
  Option.map(t, (x) => Redacted.value(x.accessToken))

for (const medium of [memoryMedium, fileMedium, kvMedium]) {
  describe(`revisions: ${medium.name}`, () => {
    it.scoped("every write increases the revision; a stale compare-and-set is a Conflict and changes nothing", () =>
      Effect.gen(function*() {
        const [a, b] = yield* medium.pair
        const ra = a.revisions!
        const rb = b.revisions!
        expect(yield* ra.getTokens(KEY_A)).toEqual(Option.none())
        const r1 = yield* ra.setTokens(KEY_A, makeToken({ accessToken: Redacted.make("at-1") }), 0)
        expect(r1).toBeGreaterThan(0)
        yield* b.setTokens(KEY_A, makeToken({ accessToken: Redacted.make("at-2") })) // a plain write by "b"
        const seen = yield* rb.getTokens(KEY_A)
        expect(Option.map(seen, (v) => v.revision)).toEqual(Option.some(r1 + 1))
        const conflict = yield* Effect.flip(ra.setTokens(KEY_A, makeToken({ accessToken: Redacted.make("at-old") }), r1))
        expect(conflict.reason).toBe("Conflict")
        expect(conflict.key).toBe(KEY_A)
        expect(access(yield* a.getTokens(KEY_A))).toEqual(Option.some("at-2"))
        expect((yield* Effect.flip(ra.clearTokens(KEY_A, r1))).reason).toBe("Conflict")
        expect(access(yield* a.getTokens(KEY_A))).toEqual(Option.some("at-2"))
        yield* ra.clearTokens(KEY_A, r1 + 1)
        expect(yield* a.getTokens(KEY_A)).toEqual(Option.none())
        expect((yield* Effect.flip(ra.setTokens(KEY_A, makeToken(), 5))).reason).toBe("Conflict")
      }))

    it.scoped("clearTokensIfUnchanged keeps a token a sibling refreshed; setTokensIfUnchanged never overwrites a newer one", () =>
      Effect.gen(function*() {
        const [a, b] = yield* medium.pair
        const old = makeToken({ accessToken: Redacted.make("at-old") })
        yield* a.setTokens(KEY_A, old)
        // b refreshed meanwhile
        const fresh = makeToken({ accessToken: Redacted.make("at-fresh") })
        yield* b.setTokens(KEY_A, fresh)
        // a's refresh failed with invalid_grant: it must not wipe b's fresh token
        expect(yield* TokenStorage.clearTokensIfUnchanged(a, KEY_A, old)).toBe(false)
        expect(access(yield* a.getTokens(KEY_A))).toEqual(Option.some("at-fresh"))
        // a also got a token from an older exchange: it does not overwrite b's
        const kept = yield* TokenStorage.setTokensIfUnchanged(a, KEY_A, Option.some(old), makeToken({ accessToken: Redacted.make("at-late") }))
        expect(Redacted.value(kept.accessToken)).toBe("at-fresh")
        expect(access(yield* b.getTokens(KEY_A))).toEqual(Option.some("at-fresh"))
        // with the current token seen, both go through
        const next = yield* TokenStorage.setTokensIfUnchanged(a, KEY_A, Option.some(fresh), makeToken({ accessToken: Redacted.make("at-next") }))
        expect(Redacted.value(next.accessToken)).toBe("at-next")
        expect(yield* TokenStorage.clearTokensIfUnchanged(b, KEY_A, next)).toBe(true)
        expect(yield* a.getTokens(KEY_A)).toEqual(Option.none())
        expect(yield* TokenStorage.clearTokensIfUnchanged(b, KEY_A, next)).toBe(true) // nothing stored
      }))

    it.scoped("concurrent compare-and-sets from the same revision: exactly one wins", () =>
      Effect.gen(function*() {
        const [a, b] = yield* medium.pair
        const r = yield* a.revisions!.setTokens(KEY_A, makeToken(), 0)
        const results = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) =>
            Effect.either((i % 2 === 0 ? a : b).revisions!.setTokens(KEY_A, makeToken({ accessToken: Redacted.make(`at-${i}`) }), r)),
          { concurrency: "unbounded" }
        )
        const wins = results.filter((e) => e._tag === "Right")
        expect(wins).toHaveLength(1)
        expect(results.filter((e) => e._tag === "Left" && e.left.reason === "Conflict")).toHaveLength(11)
        expect(Option.map(yield* a.revisions!.getTokens(KEY_A), (v) => v.revision)).toEqual(Option.some(r + 1))
      }))
  })
}

describe("record format versions (file store)", () => {
  const captureLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => void lines.push(Array.isArray(message) ? message.join(" ") : String(message)))
      const a = yield* self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
      return [a, lines] as const
    })

  it.scoped("a record written before revisions existed is read (revision 0) and upgraded on write", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const s = yield* open(TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer)))
      yield* s.setTokens(KEY_A, makeToken({ scopes: ["legacy"] }))
      const file = NodePath.join(dir, yield* FileStore.fileNameFor(KEY_A, "tokens"))
      const json = JSON.parse(NodeFs.readFileSync(file, "utf8"))
      expect(json.revision).toBe(1)
      delete json.revision
      NodeFs.writeFileSync(file, JSON.stringify(json))
      const v = yield* s.revisions!.getTokens(KEY_A)
      expect(Option.map(v, (x) => [x.revision, x.value.scopes])).toEqual(Option.some([0, ["legacy"]]))
      expect(yield* s.revisions!.setTokens(KEY_A, makeToken(), 0)).toBe(1)
      expect(JSON.parse(NodeFs.readFileSync(file, "utf8")).revision).toBe(1)
    }))

  it.scoped("a record from a newer format version is ignored with a warning (no crash) and replaced by the next sign-in", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const s = yield* open(TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer)))
      yield* s.setTokens(KEY_A, makeToken())
      const file = NodePath.join(dir, yield* FileStore.fileNameFor(KEY_A, "tokens"))
      const json = JSON.parse(NodeFs.readFileSync(file, "utf8"))
      NodeFs.writeFileSync(file, JSON.stringify({ ...json, version: 7 }))
      const [got, logs] = yield* captureLogs(s.getTokens(KEY_A))
      expect(got).toEqual(Option.none())
      expect(logs.some((l) => l.includes("format version 7") && l.includes("newer version"))).toBe(true)
      yield* s.setTokens(KEY_A, makeToken({ scopes: ["again"] }))
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["again"]))
    }))
})
