/**
 * Where there is no keychain: `layerKeychain` fails with a typed "Unavailable" error and
 * `layerAuto` falls back to the encrypted file store (a key configured) or the plain one (with a
 * warning, once). This process has no D-Bus session — its address names a socket that does not
 * exist — so the binding cannot reach a Secret Service, as in an SSH session or a container.
 */
process.env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/emo-no-bus"

import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Keychain from "../../src/internal/keychainStore.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { ACCESS, KEY_A, makeToken } from "../storageConformance.js"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "emo-kcf-" })).pipe(
  Effect.provide(NodeContext.layer),
  Effect.orDie
)

const open = <E>(layer: Layer.Layer<TokenStorage.TokenStorage, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

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

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromJson(env))

describe.skipIf(process.platform !== "linux")("no OS keychain", () => {
  it.scoped("layerKeychain fails with StorageError \"Unavailable\" naming the platform's reason", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(open(TokenStorage.layerKeychain({ lockDirectory: yield* tempDir })))
      expect(error._tag).toBe("StorageError")
      expect(error.reason).toBe("Unavailable")
      expect(error.message).toMatch(/OS keychain cannot be used: .*(emo-no-bus|DBus|dbus|connect)/i)
    }))

  it.effect("a missing @napi-rs/keyring package is StorageError \"Unavailable\" that says what to install", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Keychain.loadKeyring("secret-service", "@napi-rs/keyring-not-installed"))
      expect(error.reason).toBe("Unavailable")
      expect(error.detail).toMatch(/npm install @napi-rs\/keyring/)
    }))

  it.scoped("layerAuto falls back to plain files with one warning per process", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "files")
      const [s, logs] = yield* captureLogs(open(TokenStorage.layerAuto({ directory: dir })).pipe(withEnv({})))
      yield* s.setTokens(KEY_A, makeToken())
      const files = NodeFs.readdirSync(dir).filter((n) => n.endsWith(".tokens.json"))
      expect(files.length).toBe(1)
      expect(NodeFs.readFileSync(NodePath.join(dir, files[0]!), "utf8")).toContain(ACCESS)
      const warnings = logs.filter((l) => l.startsWith("WARN"))
      expect(warnings.length).toBe(1)
      expect(warnings[0]).toMatch(/no OS keychain .* plain files/)

      const [again, logs2] = yield* captureLogs(open(TokenStorage.layerAuto({ directory: dir })).pipe(withEnv({})))
      expect(logs2.filter((l) => l.startsWith("WARN"))).toEqual([])
      expect(Option.isSome(yield* again.getTokens(KEY_A))).toBe(true)
    }))

  it.scoped("layerAuto uses the encrypted file store when a storage key is configured", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "files")
      const env = { MCP_OAUTH_STORAGE_KEY: "22".repeat(32) }
      const s = yield* open(TokenStorage.layerAuto({ directory: dir })).pipe(withEnv(env))
      yield* s.setTokens(KEY_A, makeToken())
      const files = NodeFs.readdirSync(dir).filter((n) => n.endsWith(".tokens.json"))
      expect(files.length).toBe(1)
      expect(NodeFs.readFileSync(NodePath.join(dir, files[0]!), "utf8")).not.toContain(ACCESS)
      // the plain file store cannot read it; the same configuration can
      const plain = yield* open(TokenStorage.layerFileSystemNode(dir))
      const [unreadable] = yield* captureLogs(plain.getTokens(KEY_A))
      expect(unreadable).toEqual(Option.none())
      const reopened = yield* open(TokenStorage.layerAuto({ directory: dir })).pipe(withEnv(env))
      expect(Option.isSome(yield* reopened.getTokens(KEY_A))).toBe(true)
    }))
})
