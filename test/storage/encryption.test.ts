import { FileSystem, KeyValueStore } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Encoding, Exit, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as FileStore from "../../src/internal/fileStore.js"
import * as KvStore from "../../src/internal/kvStore.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import {
  ACCESS,
  CLIENT_SECRET,
  conformance,
  KEY_A,
  KEY_B,
  makeClient,
  makePending,
  makeToken,
  REFRESH,
  VERIFIER
} from "../storageConformance.js"

const KEY_1 = Encoding.encodeHex(new Uint8Array(32).fill(1))
const KEY_2 = Encoding.encodeBase64(new Uint8Array(32).fill(2))

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "emo-enc-" })).pipe(
  Effect.provide(NodeContext.layer),
  Effect.orDie
)

const fileLayer = (dir: string, options?: TokenStorage.EncryptionOptions) => {
  const base = TokenStorage.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))
  return options === undefined ? base : TokenStorage.encrypted(base, options)
}

const open = <E>(layer: Layer.Layer<TokenStorage.TokenStorage, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

const withKeys = (key: string, ...previous: Array<string>): TokenStorage.EncryptionOptions => ({
  key: Redacted.make(key),
  previousKeys: previous.map((k) => Redacted.make(k))
})

const filesIn = (dir: string) =>
  NodeFs.readdirSync(dir).filter((n) => n.endsWith(".json")).map((n) => NodePath.join(dir, n))

const captureLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const a = yield* self.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return [a, lines] as const
  })

conformance({
  name: "encrypted(layerFileSystem)",
  persistent: true,
  medium: Effect.map(tempDir, (dir) => fileLayer(NodePath.join(dir, "store"), withKeys(KEY_1)).pipe(Layer.orDie))
})

conformance({
  name: "encrypted(layerKeyValueStore)",
  persistent: true,
  medium: Effect.map(
    Layer.build(KeyValueStore.layerMemory),
    (ctx) =>
      TokenStorage.encrypted(TokenStorage.layerKeyValueStore, withKeys(KEY_2)).pipe(
        Layer.provide(Layer.succeedContext(ctx)),
        Layer.orDie
      )
  )
})

describe("encryption at rest", () => {
  it.scoped("files hold only a versioned AES-256-GCM envelope; a fresh IV per write", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const s = yield* open(fileLayer(dir, withKeys(KEY_1)))
      yield* s.setTokens(KEY_A, makeToken())
      yield* s.setClient(KEY_A, makeClient())
      yield* s.pendingAuthorizations!.set(KEY_A, makePending())
      expect(filesIn(dir).filter((f) => f.includes(".pending."))).toHaveLength(1)
      for (const file of filesIn(dir)) {
        const text = NodeFs.readFileSync(file, "utf8")
        for (const secret of [ACCESS, REFRESH, CLIENT_SECRET, "rat-SECRET", VERIFIER, "st-1", "127.0.0.1", "client-1"]) {
          expect(text).not.toContain(secret)
        }
        const envelope = JSON.parse(text)
        expect(envelope).toMatchObject({ format: "effect-mcp-oauth/encrypted", version: 1, alg: "A256GCM" })
        expect(envelope.kid).toMatch(/^[A-Za-z0-9_-]{12}$/)
        expect(Encoding.decodeBase64Url(envelope.iv).pipe(Option.getRight, Option.map((b) => b.length)))
          .toEqual(Option.some(12))
      }
      const [tokensFile] = filesIn(dir).filter((f) => f.includes(".tokens."))
      const first = JSON.parse(NodeFs.readFileSync(tokensFile!, "utf8"))
      yield* s.setTokens(KEY_A, makeToken())
      const second = JSON.parse(NodeFs.readFileSync(tokensFile!, "utf8"))
      expect(second.iv).not.toBe(first.iv)
      expect(second.ct).not.toBe(first.ct)
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => Redacted.value(t.accessToken))).toEqual(Option.some(ACCESS))
      expect(yield* s.keys).toEqual([KEY_A])
    }))

  it.scoped("a wrong key is StorageError Decryption naming the key id, for reads and listing; never a token", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      yield* (yield* open(fileLayer(dir, withKeys(KEY_1)))).setTokens(KEY_A, makeToken())
      const kid = JSON.parse(NodeFs.readFileSync(filesIn(dir)[0]!, "utf8")).kid
      const wrong = yield* open(fileLayer(dir, withKeys(KEY_2)))
      const error = yield* Effect.flip(wrong.getTokens(KEY_A))
      expect(error._tag).toBe("StorageError")
      expect(error.reason).toBe("Decryption")
      expect(error.key).toBe(KEY_A)
      expect(error.detail).toContain(kid)
      expect(error.detail).toContain("not among the configured keys")
      expect(error.message).not.toContain(ACCESS)
      expect((yield* Effect.flip(wrong.keys)).reason).toBe("Decryption")
    }))

  it.scoped("tampered ciphertext or a record moved to another server → Decryption", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const s = yield* open(fileLayer(dir, withKeys(KEY_1)))
      yield* s.setTokens(KEY_A, makeToken())
      yield* s.setTokens(KEY_B, makeToken({ scopes: ["b"] }))
      const fileA = NodePath.join(dir, yield* FileStore.fileNameFor(KEY_A, "tokens"))
      const fileB = NodePath.join(dir, yield* FileStore.fileNameFor(KEY_B, "tokens"))
      const original = NodeFs.readFileSync(fileA, "utf8")
      const envelope = JSON.parse(original)
      const ct = Option.getOrThrow(Option.getRight(Encoding.decodeBase64Url(envelope.ct)))
      ct[5] = ct[5]! ^ 0x01
      NodeFs.writeFileSync(fileA, JSON.stringify({ ...envelope, ct: Encoding.encodeBase64Url(ct) }))
      const tampered = yield* Effect.flip(s.getTokens(KEY_A))
      expect(tampered.reason).toBe("Decryption")
      expect(tampered.detail).toContain("authentication failed")

      // B's record copied over A's: the location is authenticated, so it does not open as A
      NodeFs.copyFileSync(fileB, fileA)
      expect((yield* Effect.flip(s.getTokens(KEY_A))).reason).toBe("Decryption")
      expect(Option.map(yield* s.getTokens(KEY_B), (t) => t.scopes)).toEqual(Option.some(["b"]))
    }))

  it.scoped("a truncated or non-JSON encrypted record reads as absent with a warning (corruption, not a key problem)", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const s = yield* open(fileLayer(dir, withKeys(KEY_1)))
      yield* s.setTokens(KEY_A, makeToken())
      const file = NodePath.join(dir, yield* FileStore.fileNameFor(KEY_A, "tokens"))
      const text = NodeFs.readFileSync(file, "utf8")
      NodeFs.writeFileSync(file, text.slice(0, text.length / 2))
      const [got, logs] = yield* captureLogs(s.getTokens(KEY_A))
      expect(got).toEqual(Option.none())
      expect(logs.some((l) => l.startsWith("WARN") && l.includes("truncated or corrupted"))).toBe(true)
      expect(logs.join("\n")).not.toContain(ACCESS)
    }))

  it.scoped("key rotation: old records open with a previous key; writes use the newest; the old key alone then fails", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      yield* (yield* open(fileLayer(dir, withKeys(KEY_1)))).setTokens(KEY_A, makeToken({ scopes: ["v1"] }))
      const kid1 = JSON.parse(NodeFs.readFileSync(filesIn(dir)[0]!, "utf8")).kid
      const rotated = yield* open(fileLayer(dir, withKeys(KEY_2, KEY_1)))
      expect(Option.map(yield* rotated.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["v1"]))
      yield* rotated.setTokens(KEY_A, makeToken({ scopes: ["v2"] }))
      const kid2 = JSON.parse(NodeFs.readFileSync(filesIn(dir)[0]!, "utf8")).kid
      expect(kid2).not.toBe(kid1)
      const onlyOld = yield* open(fileLayer(dir, withKeys(KEY_1)))
      expect((yield* Effect.flip(onlyOld.getTokens(KEY_A))).reason).toBe("Decryption")
      const onlyNew = yield* open(fileLayer(dir, withKeys(KEY_2)))
      expect(Option.map(yield* onlyNew.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["v2"]))
    }))

  it.scoped("turning encryption on: plain records are read (then encrypted on write) with plaintext: read, refused with plaintext: reject", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      yield* (yield* open(fileLayer(dir))).setTokens(KEY_A, makeToken({ scopes: ["plain"] }))
      const strict = yield* open(fileLayer(dir, { ...withKeys(KEY_1), plaintext: "reject" }))
      const refused = yield* Effect.flip(strict.getTokens(KEY_A))
      expect(refused.reason).toBe("Decryption")
      expect(refused.detail).toContain("not encrypted")
      const s = yield* open(fileLayer(dir, { ...withKeys(KEY_1), plaintext: "read" }))
      const [got, logs] = yield* captureLogs(s.getTokens(KEY_A))
      expect(Option.map(got, (t) => t.scopes)).toEqual(Option.some(["plain"]))
      expect(logs.some((l) => l.startsWith("WARN") && l.includes("unencrypted"))).toBe(true)
      yield* s.setTokens(KEY_A, makeToken({ scopes: ["sealed"] }))
      expect(NodeFs.readFileSync(filesIn(dir)[0]!, "utf8")).toContain("effect-mcp-oauth/encrypted")
      expect(Option.map(yield* strict.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["sealed"]))
    }))

  it.scoped("by default an encrypted store refuses a planted plaintext record (file and key-value): integrity, not only secrecy", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      const sealed = yield* open(fileLayer(dir, withKeys(KEY_1)))
      yield* sealed.setTokens(KEY_A, makeToken({ scopes: ["sealed"] }))
      // Someone who can write the directory (but has no key) plants a plain record of their choosing.
      const plain = yield* open(fileLayer(dir))
      yield* plain.setTokens(KEY_A, makeToken({ scopes: ["planted"] }))
      yield* plain.setClient(KEY_A, makeClient())
      for (
        const op of [
          Effect.asVoid(sealed.getTokens(KEY_A)),
          Effect.asVoid(sealed.getClient(KEY_A)),
          Effect.asVoid(sealed.revisions!.getTokens(KEY_A))
        ]
      ) {
        const error = yield* Effect.flip(op)
        expect(error.reason).toBe("Decryption")
        expect(error.detail).toContain("not encrypted")
      }

      const ctx = yield* Layer.build(KeyValueStore.layerMemory)
      const kvLayer = TokenStorage.layerKeyValueStore.pipe(Layer.provide(Layer.succeedContext(ctx)))
      yield* (yield* open(kvLayer)).setTokens(KEY_B, makeToken({ scopes: ["planted"] }))
      const kvSealed = yield* open(TokenStorage.encrypted(kvLayer, withKeys(KEY_1)))
      expect((yield* Effect.flip(kvSealed.getTokens(KEY_B))).reason).toBe("Decryption")

      // From the environment: refused unless MCP_OAUTH_STORAGE_ALLOW_PLAINTEXT=true.
      const fromEnv = (env: Record<string, string>) =>
        open(
          TokenStorage.encryptedFromConfig(TokenStorage.layerFileSystem(dir)).pipe(
            Layer.provide(NodeContext.layer),
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
          )
        )
      const envStrict = yield* fromEnv({ MCP_OAUTH_STORAGE_KEY: KEY_1 })
      expect((yield* Effect.flip(envStrict.getTokens(KEY_A))).reason).toBe("Decryption")
      const envMigrating = yield* fromEnv({ MCP_OAUTH_STORAGE_KEY: KEY_1, MCP_OAUTH_STORAGE_ALLOW_PLAINTEXT: "true" })
      expect(Option.map(yield* envMigrating.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["planted"]))
    }))

  it.scoped("the key-value backend stores only envelopes too", () =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(KeyValueStore.layerMemory)
      const kv = Context.get(ctx, KeyValueStore.KeyValueStore)
      const s = yield* open(
        TokenStorage.encrypted(TokenStorage.layerKeyValueStore, withKeys(KEY_1)).pipe(Layer.provide(Layer.succeedContext(ctx)))
      )
      yield* s.setTokens(KEY_A, makeToken())
      const raw = yield* kv.get(KvStore.entryKey("tokens", KEY_A))
      expect(Option.map(raw, (t) => t.includes(ACCESS))).toEqual(Option.some(false))
      expect(Option.map(raw, (t) => JSON.parse(t).format)).toEqual(Option.some("effect-mcp-oauth/encrypted"))
      const wrong = yield* open(
        TokenStorage.encrypted(TokenStorage.layerKeyValueStore, withKeys(KEY_2)).pipe(Layer.provide(Layer.succeedContext(ctx)))
      )
      expect((yield* Effect.flip(wrong.getTokens(KEY_A))).reason).toBe("Decryption")
    }))

  it.scoped("malformed keys fail the layer with Decryption, never silently store plaintext", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "store")
      for (const bad of ["", "abc", "00".repeat(31), "zz".repeat(32), Encoding.encodeBase64(new Uint8Array(16))]) {
        const exit = yield* Effect.exit(open(fileLayer(dir, withKeys(bad))))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("Decryption")
      }
      const badPrevious = yield* Effect.exit(open(fileLayer(dir, withKeys(KEY_1, "short"))))
      expect(Exit.isFailure(badPrevious)).toBe(true)
      expect(NodeFs.existsSync(dir)).toBe(false)
    }))

  it.scoped("encryptionConfig: MCP_OAUTH_STORAGE_KEY (hex/base64), _KEY_FILE, _PREVIOUS_KEYS; none → None", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const keyFile = NodePath.join(root, "key")
      NodeFs.writeFileSync(keyFile, `${KEY_2}\n`, { mode: 0o600 })
      const read = (env: Record<string, string>) =>
        TokenStorage.encryptionConfig.pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
          Effect.provide(NodeContext.layer)
        )
      expect(yield* read({})).toEqual(Option.none())
      const fromEnv = yield* read({ MCP_OAUTH_STORAGE_KEY: KEY_1, MCP_OAUTH_STORAGE_PREVIOUS_KEYS: `${KEY_2}, ${KEY_1}` })
      expect(Option.map(fromEnv, (o) => Redacted.value<string | Uint8Array>(o.key))).toEqual(Option.some(KEY_1))
      expect(Option.map(fromEnv, (o) => o.previousKeys?.length)).toEqual(Option.some(2))
      const fromFile = yield* read({ MCP_OAUTH_STORAGE_KEY_FILE: keyFile })
      expect(Option.map(fromFile, (o) => Redacted.value<string | Uint8Array>(o.key))).toEqual(Option.some(KEY_2))
      const missing = yield* Effect.flip(read({ MCP_OAUTH_STORAGE_KEY_FILE: NodePath.join(root, "nope") }))
      expect(missing._tag).toBe("StorageError")

      // end to end: the layer picks the key up from the environment
      const dir = NodePath.join(root, "store")
      const env = ConfigProvider.fromMap(new Map([["MCP_OAUTH_STORAGE_KEY", KEY_1]]))
      const s = yield* open(
        TokenStorage.encryptedFromConfig(TokenStorage.layerFileSystem(dir)).pipe(
          Layer.provide(NodeContext.layer),
          Layer.provide(Layer.setConfigProvider(env))
        )
      )
      yield* s.setTokens(KEY_A, makeToken())
      expect(NodeFs.readFileSync(filesIn(dir)[0]!, "utf8")).toContain("effect-mcp-oauth/encrypted")
    }))
})
