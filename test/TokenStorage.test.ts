import { FileSystem, KeyValueStore, Path } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { NodeContext, NodePath } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Either, Fiber, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePathModule from "node:path"
import { StorageError } from "../src/Errors.js"
import * as FileStore from "../src/internal/fileStore.js"
import * as KvStore from "../src/internal/kvStore.js"
import * as Format from "../src/internal/storageFormat.js"
import * as TokenStorage from "../src/TokenStorage.js"
import {
  ACCESS,
  CLIENT_SECRET,
  conformance,
  KEY_A,
  KEY_B,
  makeClient,
  makePending,
  makeToken,
  ODD_KEYS,
  REFRESH
} from "./storageConformance.js"

const isRoot = process.getuid?.() === 0

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "emo-ts-" })).pipe(
  Effect.provide(NodeContext.layer),
  Effect.orDie
)

const fileLayer = (dir: string) => TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))

const open = (layer: Layer.Layer<TokenStorage.TokenStorage>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

/** Runs `self` with a logger that collects every line (message + annotations) at every level. */
const captureLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      lines.push(`${logLevel.label} ${text} ${JSON.stringify(Object.fromEntries(annotations))}`)
    })
    const a = yield* self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
    return [a, lines] as const
  })

conformance({ name: "layerMemory", persistent: false, medium: Effect.succeed(TokenStorage.layerMemory) })

conformance({
  name: "layerFileSystem (temp dir)",
  persistent: true,
  medium: Effect.map(tempDir, (dir) => fileLayer(NodePathModule.join(dir, "nested", "store")))
})

conformance({
  name: "layerKeyValueStore(KeyValueStore.layerMemory)",
  persistent: true,
  medium: Effect.map(
    Layer.build(KeyValueStore.layerMemory),
    (ctx) => TokenStorage.layerKeyValueStore.pipe(Layer.provide(Layer.succeedContext(ctx)))
  )
})

describe("layerFileSystem specifics", () => {
  const setup = Effect.gen(function*() {
    const root = yield* tempDir
    const dir = NodePathModule.join(root, "store")
    const storage = yield* open(fileLayer(dir))
    const fileOf = (key: string, kind: "tokens" | "client" | "pending") =>
      Effect.map(FileStore.fileNameFor(key, kind), (name) => NodePathModule.join(dir, name))
    return { root, dir, storage, fileOf }
  })

  it.scoped("directory 0700, files 0600, versioned JSON with the key and the encoded value", () =>
    Effect.gen(function*() {
      const { dir, fileOf, storage } = yield* setup
      expect(NodeFs.existsSync(dir)).toBe(false) // nothing is created before the first write
      yield* storage.setTokens(KEY_A, makeToken())
      yield* storage.setClient(KEY_A, makeClient())
      yield* storage.pendingAuthorizations!.set(KEY_A, makePending())
      expect(NodeFs.statSync(dir).mode & 0o777).toBe(0o700)
      for (const kind of ["tokens", "client", "pending"] as const) {
        const file = yield* fileOf(KEY_A, kind)
        expect(NodeFs.statSync(file).mode & 0o777).toBe(0o600)
        const json = JSON.parse(NodeFs.readFileSync(file, "utf8"))
        expect(json.format).toBe("effect-mcp-oauth/token-storage")
        expect(json.version).toBe(1)
        expect(json.kind).toBe(kind)
        expect(json.key).toBe(KEY_A)
      }
      const tokensJson = JSON.parse(NodeFs.readFileSync(yield* fileOf(KEY_A, "tokens"), "utf8"))
      // Schema.Redacted encodes to the plain string: that is what must be on disk to survive a restart
      expect(tokensJson.value.accessToken).toBe(ACCESS)
      expect(tokensJson.value.refreshToken).toBe(REFRESH)
      expect(tokensJson.value.expiresAt).toBe(3_600_000)
      expect(NodeFs.readFileSync(yield* fileOf(KEY_A, "client"), "utf8")).toContain(CLIENT_SECRET)
    }))

  it.scoped("existing loose permissions are tightened (directory on write, file on read)", () =>
    Effect.gen(function*() {
      const { dir, fileOf, storage } = yield* setup
      NodeFs.mkdirSync(dir, { mode: 0o755 })
      NodeFs.chmodSync(dir, 0o755)
      yield* storage.setTokens(KEY_A, makeToken())
      expect(NodeFs.statSync(dir).mode & 0o777).toBe(0o700)
      const file = yield* fileOf(KEY_A, "tokens")
      NodeFs.chmodSync(file, 0o644)
      expect(Option.isSome(yield* storage.getTokens(KEY_A))).toBe(true)
      expect(NodeFs.statSync(file).mode & 0o777).toBe(0o600)
    }))

  it.scoped("a symlink at an entry's path is refused with StorageError; its target's mode and content are untouched", () =>
    Effect.gen(function*() {
      const { dir, fileOf, root, storage } = yield* setup
      yield* storage.setClient(KEY_B, makeClient()) // creates the directory
      const outside = NodePathModule.join(root, "outside.txt")
      NodeFs.writeFileSync(outside, "not yours\n", { mode: 0o644 })
      NodeFs.chmodSync(outside, 0o644)
      for (const kind of ["tokens", "client"] as const) NodeFs.symlinkSync(outside, yield* fileOf(KEY_A, kind))
      for (
        const op of [
          storage.getTokens(KEY_A),
          storage.getClient(KEY_A),
          storage.setTokens(KEY_A, makeToken()),
          storage.revisions!.getTokens(KEY_A),
          storage.keys
        ]
      ) {
        const error = yield* Effect.flip(op)
        expect(error).toBeInstanceOf(StorageError)
        expect(error.reason).toBe("Io")
        expect(error.detail).toContain("symbolic link")
      }
      expect(NodeFs.statSync(outside).mode & 0o777).toBe(0o644)
      expect(NodeFs.readFileSync(outside, "utf8")).toBe("not yours\n")
      expect(NodeFs.lstatSync(yield* fileOf(KEY_A, "tokens")).isSymbolicLink()).toBe(true)
      expect(NodeFs.readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
    }))

  it.scoped("a symlink in place of the store directory is refused; the directory it points to keeps its mode", () =>
    Effect.gen(function*() {
      const { dir, root, storage } = yield* setup
      const outside = NodePathModule.join(root, "elsewhere")
      NodeFs.mkdirSync(outside, { mode: 0o755 })
      NodeFs.chmodSync(outside, 0o755)
      NodeFs.symlinkSync(outside, dir)
      for (const op of [storage.setTokens(KEY_A, makeToken()), storage.setClient(KEY_A, makeClient())]) {
        const error = yield* Effect.flip(op)
        expect(error.reason).toBe("Io")
        expect(error.detail).toContain("symbolic link")
      }
      expect(NodeFs.statSync(outside).mode & 0o777).toBe(0o755)
      expect(NodeFs.readdirSync(outside)).toEqual([])
    }))

  it.scoped("file names: sha256 of the key + readable prefix; odd keys never leave the directory", () =>
    Effect.gen(function*() {
      const { dir, root, storage } = yield* setup
      for (const key of ODD_KEYS) yield* storage.setTokens(key, makeToken())
      const names = NodeFs.readdirSync(dir)
      expect(names).toHaveLength(ODD_KEYS.length)
      for (const name of names) {
        expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,47}\.[0-9a-f]{64}\.tokens\.json$/)
        expect(name).not.toContain("..")
      }
      expect(NodeFs.readdirSync(root)).toEqual(["store"])
      expect(yield* FileStore.fileNameFor("https://api.example.com/mcp", "tokens")).toMatch(
        /^https_api\.example\.com_mcp\.[0-9a-f]{64}\.tokens\.json$/
      )
    }))

  it.scoped("atomic writes: many concurrent writes to one key leave one valid file and no temp files", () =>
    Effect.gen(function*() {
      const { dir, storage } = yield* setup
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => storage.setTokens(KEY_A, makeToken({ scopes: [`s${i}`] })),
        { concurrency: "unbounded" }
      )
      const names = NodeFs.readdirSync(dir)
      expect(names.filter((n) => n.endsWith(".tmp"))).toEqual([])
      expect(names).toHaveLength(1)
      const got = yield* storage.getTokens(KEY_A)
      expect(Option.map(got, (t) => /^s\d+$/.test(t.scopes[0] ?? ""))).toEqual(Option.some(true))
    }))

  it.scoped("atomic writes: concurrent readers never see a partial file", () =>
    Effect.gen(function*() {
      const { storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken({ scopes: ["initial"] }))
      const big = Array.from({ length: 2000 }, (_, i) => `scope-${i}`)
      const [results, logs] = yield* captureLogs(
        Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) =>
            i % 2 === 0
              ? Effect.as(storage.setTokens(KEY_A, makeToken({ scopes: i % 4 === 0 ? big : ["small"] })), true)
              : Effect.map(storage.getTokens(KEY_A), Option.isSome),
          { concurrency: "unbounded" }
        )
      )
      expect(results.every((ok) => ok)).toBe(true)
      expect(logs.filter((l) => l.startsWith("WARN"))).toEqual([])
    }))

  it.scoped("atomic writes: a write that fails midway (disk full) leaves the previous value intact", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = NodePathModule.join(root, "store")
      const real = yield* Effect.provide(FileSystem.FileSystem, NodeContext.layer)
      let failWrites = false
      const diskFull = new SystemError({
        reason: "Unknown",
        module: "FileSystem",
        method: "write",
        description: "ENOSPC (injected)"
      })
      // the real Node file system, except that writing to an open file fails while `failWrites` is set
      const faulty: FileSystem.FileSystem = {
        ...real,
        open: (p, o) =>
          Effect.map(real.open(p, o), (file): FileSystem.File =>
            Object.create(file, {
              writeAll: { value: (buf: Uint8Array) => failWrites ? Effect.fail(diskFull) : file.writeAll(buf) }
            }))
      }
      const storage = yield* open(
        TokenStorage.layerFileSystem(dir).pipe(
          Layer.provide(Layer.merge(Layer.succeed(FileSystem.FileSystem, faulty), NodePath.layer))
        )
      )
      yield* storage.setTokens(KEY_A, makeToken({ scopes: ["old"] }))
      failWrites = true
      const error = yield* Effect.flip(storage.setTokens(KEY_A, makeToken({ scopes: ["new"] })))
      expect(error.reason).toBe("Io")
      expect(error.detail).toContain("ENOSPC")
      failWrites = false
      expect(Option.map(yield* storage.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["old"]))
      expect(NodeFs.readdirSync(dir)).toHaveLength(1) // the temporary file was removed
    }))

  it.live("atomic writes: interrupted writes leave either value and no temporary file", () =>
    Effect.scoped(Effect.gen(function*() {
      const { dir, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken({ scopes: ["old"] }))
      for (let i = 0; i < 20; i++) {
        const fiber = yield* Effect.fork(storage.setTokens(KEY_A, makeToken({ scopes: [`new${i}`] })))
        yield* Effect.sleep(i % 5)
        yield* Fiber.interrupt(fiber)
        const [got, logs] = yield* captureLogs(storage.getTokens(KEY_A))
        expect(Option.isSome(got)).toBe(true)
        expect(logs.filter((l) => l.startsWith("WARN"))).toEqual([])
        expect(NodeFs.readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
      }
    })))

  const unreadable: ReadonlyArray<readonly [string, (valid: string) => string, RegExp]> = [
    ["garbage", () => "\u0000\u0001 not json at all {", /not valid JSON/],
    ["truncated JSON", (valid) => valid.slice(0, Math.floor(valid.length / 2)), /not valid JSON/],
    ["an empty file", () => "", /empty/],
    ["foreign JSON", () => JSON.stringify({ hello: "world", accessToken: ACCESS }), /not in the .* format/],
    ["another format version", (valid) => valid.replace("\"version\": 1", "\"version\": 2"), /format version 2/],
    [
      "a value that does not match the schema (secret inside)",
      (valid) => valid.replace("\"tokenType\": \"Bearer\"", "\"tokenType\": 42"),
      /does not match its schema/
    ]
  ]
  for (const [what, corrupt, reason] of unreadable) {
    it.scoped(`${what} reads as absent with a warning that quotes no secret`, () =>
      Effect.gen(function*() {
        const { fileOf, storage } = yield* setup
        yield* storage.setTokens(KEY_A, makeToken())
        yield* storage.setTokens(KEY_B, makeToken())
        const file = yield* fileOf(KEY_A, "tokens")
        NodeFs.writeFileSync(file, corrupt(NodeFs.readFileSync(file, "utf8")))
        const [got, logs] = yield* captureLogs(storage.getTokens(KEY_A))
        expect(got).toEqual(Option.none())
        const warnings = logs.filter((l) => l.startsWith("WARN"))
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toMatch(reason)
        expect(warnings[0]).toContain(KEY_A)
        for (const line of logs) {
          expect(line).not.toContain(ACCESS)
          expect(line).not.toContain(REFRESH)
        }
        // keys skips the bad file (with a warning), the good one is still listed
        const [keys, keyLogs] = yield* captureLogs(storage.keys)
        expect(keys).toEqual([KEY_B])
        expect(keyLogs.some((l) => l.startsWith("WARN"))).toBe(true)
        for (const line of keyLogs) expect(line).not.toContain(ACCESS)
        // the bad entry can be overwritten
        yield* storage.setTokens(KEY_A, makeToken())
        expect(Option.isSome(yield* storage.getTokens(KEY_A))).toBe(true)
      }))
  }

  it.scoped("a file of another key under this key's name reads as absent (issuer/server binding)", () =>
    Effect.gen(function*() {
      const { fileOf, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken())
      NodeFs.copyFileSync(yield* fileOf(KEY_A, "tokens"), yield* fileOf(KEY_B, "tokens"))
      const [got, logs] = yield* captureLogs(storage.getTokens(KEY_B))
      expect(got).toEqual(Option.none())
      expect(logs.filter((l) => l.startsWith("WARN")).join("\n")).toMatch(/another server key/)
      expect(Option.isSome(yield* storage.getTokens(KEY_A))).toBe(true)
      const [keys] = yield* captureLogs(storage.keys)
      expect(keys).toEqual([KEY_A])
    }))

  it.scoped("a tokens file placed as a client file reads as absent", () =>
    Effect.gen(function*() {
      const { fileOf, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken())
      NodeFs.copyFileSync(yield* fileOf(KEY_A, "tokens"), yield* fileOf(KEY_A, "client"))
      const [got] = yield* captureLogs(storage.getClient(KEY_A))
      expect(got).toEqual(Option.none())
    }))

  it.scoped("clearAll removes this library's files (and leftover temp files) only", () =>
    Effect.gen(function*() {
      const { dir, fileOf, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken())
      yield* storage.setClient(KEY_B, makeClient())
      const tokensName = NodePathModule.basename(yield* fileOf(KEY_A, "tokens"))
      NodeFs.writeFileSync(NodePathModule.join(dir, `.${tokensName}.0123456789abcdef.tmp`), "partial")
      NodeFs.writeFileSync(NodePathModule.join(dir, "README.txt"), "mine")
      NodeFs.writeFileSync(NodePathModule.join(dir, "other.tokens.json"), "{}")
      NodeFs.mkdirSync(NodePathModule.join(dir, "sub"))
      yield* storage.clearAll
      expect(NodeFs.readdirSync(dir).sort()).toEqual(["README.txt", "other.tokens.json", "sub"])
      expect(yield* storage.keys).toEqual([])
    }))

  it.scoped("no secret in logs or errors during normal operation, and String(token) hides it", () =>
    Effect.gen(function*() {
      const { storage } = yield* setup
      const [, logs] = yield* captureLogs(Effect.gen(function*() {
        yield* storage.setTokens(KEY_A, makeToken())
        yield* storage.setClient(KEY_A, makeClient())
        const t = yield* storage.getTokens(KEY_A)
        const c = yield* storage.getClient(KEY_A)
        yield* Effect.logInfo("loaded", t, c)
        yield* storage.keys
      }))
      expect(logs.length).toBeGreaterThan(0)
      for (const line of logs) {
        for (const secret of [ACCESS, REFRESH, CLIENT_SECRET]) expect(line).not.toContain(secret)
      }
      expect(String(makeToken())).not.toContain(ACCESS)
      expect(String(makeToken().accessToken)).toBe("<redacted>")
    }))

  it.scoped("a directory whose parent is a file: every operation fails with StorageError Io", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const blocker = NodePathModule.join(root, "a-file")
      NodeFs.writeFileSync(blocker, "x")
      const storage = yield* open(fileLayer(NodePathModule.join(blocker, "store")))
      for (
        const op of [
          storage.setTokens(KEY_A, makeToken()),
          storage.setClient(KEY_A, makeClient()),
          storage.getTokens(KEY_A),
          storage.keys
        ]
      ) {
        const error = yield* Effect.flip(op)
        expect(error).toBeInstanceOf(StorageError)
        expect(error.reason).toBe("Io")
        expect(error.message).not.toContain(ACCESS)
      }
    }))

  it.scoped.skipIf(isRoot)("permission denied → StorageError Io (skipped as root)", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const locked = NodePathModule.join(root, "locked")
      NodeFs.mkdirSync(locked, { mode: 0o500 })
      const storage = yield* open(fileLayer(NodePathModule.join(locked, "store")))
      const error = yield* Effect.flip(storage.setTokens(KEY_A, makeToken()))
      expect(error.reason).toBe("Io")
      expect(error.key).toBe(KEY_A)
    }))

  it.scoped("a file where an entry should be read is an Io error, not absence", () =>
    Effect.gen(function*() {
      const { fileOf, storage } = yield* setup
      yield* storage.setClient(KEY_B, makeClient())
      NodeFs.mkdirSync(yield* fileOf(KEY_A, "tokens"))
      const error = yield* Effect.flip(storage.getTokens(KEY_A))
      expect(error.reason).toBe("Io")
      expect(error.key).toBe(KEY_A)
    }))
})

describe("default directory", () => {
  const path = Effect.runSync(Effect.provide(Path.Path, NodeContext.layer))

  it("per platform (XDG on Linux, Library/Caches on macOS, LOCALAPPDATA on Windows)", () => {
    const dirFor = (env: FileStore.CacheEnvironment) => FileStore.cacheDirectoryFor(env, path)
    expect(dirFor({ platform: "linux", XDG_CACHE_HOME: "/xdg", HOME: "/home/u" })).toEqual(
      Option.some("/xdg/effect-mcp-oauth")
    )
    expect(dirFor({ platform: "linux", HOME: "/home/u" })).toEqual(Option.some("/home/u/.cache/effect-mcp-oauth"))
    // a relative XDG_CACHE_HOME is invalid and ignored (XDG Base Directory spec)
    expect(dirFor({ platform: "freebsd", XDG_CACHE_HOME: "rel", HOME: "/home/u" })).toEqual(
      Option.some("/home/u/.cache/effect-mcp-oauth")
    )
    expect(dirFor({ platform: "darwin", HOME: "/Users/u", XDG_CACHE_HOME: "/xdg" })).toEqual(
      Option.some("/Users/u/Library/Caches/effect-mcp-oauth")
    )
    expect(dirFor({ platform: "win32", LOCALAPPDATA: "C:/Users/u/AppData/Local" })).toEqual(
      Option.some(path.join("C:/Users/u/AppData/Local", "effect-mcp-oauth"))
    )
    expect(dirFor({ platform: "win32", USERPROFILE: "C:/Users/u" })).toEqual(
      Option.some(path.join("C:/Users/u", "AppData", "Local", "effect-mcp-oauth"))
    )
    expect(dirFor({ platform: "linux" })).toEqual(Option.none())
    expect(dirFor({ platform: "win32", HOME: "/home/u" })).toEqual(Option.none())
  })

  it.effect.runIf(process.platform === "linux")("defaultDirectory reads the environment via ConfigProvider", () =>
    Effect.gen(function*() {
      const withEnv = (env: Record<string, string>) =>
        TokenStorage.defaultDirectory.pipe(
          Effect.provide(NodeContext.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
        )
      expect(yield* withEnv({ XDG_CACHE_HOME: "/c", HOME: "/h" })).toBe("/c/effect-mcp-oauth")
      expect(yield* withEnv({ HOME: "/h" })).toBe("/h/.cache/effect-mcp-oauth")
      const error = yield* Effect.flip(withEnv({}))
      expect(error).toBeInstanceOf(StorageError)
      expect(error.reason).toBe("Io")
    }))

  it.scoped.runIf(process.platform === "linux")(
    "layerFileSystem() / layerFileSystemNode() use it; with no home every operation fails with StorageError",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir
        const provider = ConfigProvider.fromMap(new Map([["XDG_CACHE_HOME", root]]))
        const viaNode = yield* open(TokenStorage.layerFileSystemNode()).pipe(Effect.withConfigProvider(provider))
        yield* viaNode.setTokens(KEY_A, makeToken())
        expect(NodeFs.readdirSync(NodePathModule.join(root, "effect-mcp-oauth"))).toHaveLength(1)
        const viaLayer = yield* open(fileLayer(NodePathModule.join(root, "effect-mcp-oauth")))
        expect(Option.map(yield* viaLayer.getTokens(KEY_A), (t) => Redacted.value(t.accessToken))).toEqual(
          Option.some(ACCESS)
        )

        const homeless = yield* open(TokenStorage.layerFileSystem().pipe(Layer.provide(NodeContext.layer))).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
        const error = yield* Effect.flip(homeless.getTokens(KEY_A))
        expect(error.reason).toBe("Io")
        expect(error.detail).toMatch(/cache directory/)
      })
  )
})

describe("layerKeyValueStore specifics", () => {
  const setup = Effect.gen(function*() {
    const kvCtx = yield* Layer.build(KeyValueStore.layerMemory)
    const kv = Context.get(kvCtx, KeyValueStore.KeyValueStore)
    const storage = yield* open(TokenStorage.layerKeyValueStore.pipe(Layer.provide(Layer.succeedContext(kvCtx))))
    return { kv, storage }
  })

  it.scoped("entries are namespaced; other entries of the store survive clearAll", () =>
    Effect.gen(function*() {
      const { kv, storage } = yield* setup
      yield* kv.set("unrelated", "keep me")
      yield* storage.setTokens(KEY_A, makeToken())
      yield* storage.setClient(KEY_B, makeClient())
      expect(Option.isSome(yield* kv.get(KvStore.entryKey("tokens", KEY_A)))).toBe(true)
      expect(Option.isSome(yield* kv.get(KvStore.entryKey("client", KEY_B)))).toBe(true)
      expect(yield* kv.size).toBe(4) // two entries, the index, the unrelated one
      yield* storage.clearAll
      expect(yield* kv.get("unrelated")).toEqual(Option.some("keep me"))
      expect(yield* kv.size).toBe(1)
    }))

  it.scoped("corrupt, foreign-key and bad-index entries read as absent with a warning", () =>
    Effect.gen(function*() {
      const { kv, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken())
      yield* storage.setTokens(KEY_B, makeToken())
      const valid = Option.getOrThrow(yield* kv.get(KvStore.entryKey("tokens", KEY_A)))
      yield* kv.set(KvStore.entryKey("tokens", KEY_A), valid.slice(0, 20))
      yield* kv.set(KvStore.entryKey("client", KEY_B), valid) // wrong kind
      const [got, logs] = yield* captureLogs(Effect.all([storage.getTokens(KEY_A), storage.getClient(KEY_B)]))
      expect(got).toEqual([Option.none(), Option.none()])
      expect(logs.filter((l) => l.startsWith("WARN"))).toHaveLength(2)
      for (const line of logs) expect(line).not.toContain(ACCESS)

      // an entry written for KEY_A placed under KEY_B
      yield* storage.setTokens(KEY_A, makeToken())
      yield* kv.set(KvStore.entryKey("tokens", KEY_B), Option.getOrThrow(yield* kv.get(KvStore.entryKey("tokens", KEY_A))))
      const [b, bLogs] = yield* captureLogs(storage.getTokens(KEY_B))
      expect(b).toEqual(Option.none())
      expect(bLogs.join("\n")).toMatch(/another server key/)

      // a corrupt index: keys is empty (with a warning), never a failure
      yield* kv.set(KvStore.INDEX_KEY, "{oops")
      const [keys, kLogs] = yield* captureLogs(storage.keys)
      expect(keys).toEqual([])
      expect(kLogs.some((l) => l.startsWith("WARN"))).toBe(true)
    }))

  it.scoped("a PlatformError from the store becomes StorageError Io", () =>
    Effect.gen(function*() {
      const failing = KeyValueStore.make({
        get: () => Effect.fail(new SystemError({ reason: "Unknown", module: "KeyValueStore", method: "get" })),
        getUint8Array: () => Effect.succeedNone,
        set: () => Effect.fail(new SystemError({ reason: "PermissionDenied", module: "KeyValueStore", method: "set" })),
        remove: () => Effect.void,
        clear: Effect.void,
        size: Effect.succeed(0)
      })
      const storage = yield* open(
        TokenStorage.layerKeyValueStore.pipe(Layer.provide(Layer.succeed(KeyValueStore.KeyValueStore, failing)))
      )
      for (const op of [storage.getTokens(KEY_A), storage.setTokens(KEY_A, makeToken()), storage.keys]) {
        const error = yield* Effect.flip(op)
        expect(error).toBeInstanceOf(StorageError)
        expect(error.reason).toBe("Io")
      }
    }))

  it.scoped("clearTokens keeps the key listed while client information remains", () =>
    Effect.gen(function*() {
      const { kv, storage } = yield* setup
      yield* storage.setTokens(KEY_A, makeToken())
      yield* storage.setClient(KEY_A, makeClient())
      yield* storage.clearTokens(KEY_A)
      expect(yield* storage.keys).toEqual([KEY_A])
      yield* storage.clearClient(KEY_A)
      expect(yield* storage.keys).toEqual([])
      expect(yield* kv.size).toBe(0)
    }))
})

describe("encoding failures", () => {
  it.effect("a value that cannot be encoded is StorageError Encoding, quoting nothing", () =>
    Effect.gen(function*() {
      const notAToken = Object.assign(Object.create(null), { accessToken: ACCESS })
      const result = yield* Effect.either(Format.encode(Format.tokensEntry, KEY_A, notAToken))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.reason).toBe("Encoding")
        expect(result.left.message).not.toContain(ACCESS)
      }
    }))
})
