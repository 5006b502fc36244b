/**
 * The CLI's and the proxy's `--storage keychain|auto` against a real Secret Service (gnome-keyring
 * in a private D-Bus session, which the subprocesses inherit through DBUS_SESSION_BUS_ADDRESS).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { host, useCli } from "../proxy/stdioHost.js"
import { keyringTestsEnabled, useKeyringSession } from "../storage/keyringSession.js"
import { makeToken } from "../storageConformance.js"
import { bundledCli, runCli } from "./bundle.js"



describe.skipIf(!keyringTestsEnabled)("effect-mcp-oauth CLI --storage keychain|auto (subprocess, Secret Service)", () => {
  useKeyringSession()
  const BUNDLE = bundledCli()
  beforeAll(() => useCli(BUNDLE.path())) // the proxy too runs from the shipped bundle

  const cli = (...args: Array<string>) => runCli(BUNDLE.path(), args)

  const tempDir = Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-cli-kc-"))),
    (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
  )

  const open = <E>(layer: Layer.Layer<TokenStorage.TokenStorage, E>) =>
    Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

  // Nothing listens on port 9 of the loopback: logout's revocation only warns.
  const SERVER_A = "http://127.0.0.1:9/a/mcp"
  const SERVER_B = "http://127.0.0.1:9/b/mcp"

  it.scopedLive("status reads the keychain; auto moves the files into it; logout --all empties it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const keychain = yield* open(TokenStorage.layerKeychain({ lockDirectory: dir }))
      const later = Date.now() + 3_600_000
      yield* keychain.setTokens(TokenStorage.serverKey(SERVER_A), makeToken({ expiresAt: later }))

      const status = yield* cli("status", "--json", "--storage", "keychain", "--dir", dir)
      expect(status.code).toBe(0)
      expect(JSON.parse(status.stdout)).toMatchObject([{ server: SERVER_A, signedIn: true, refreshable: true }])
      const files = yield* cli("status", "--json", "--dir", dir)
      expect(JSON.parse(files.stdout)).toEqual([])

      const fileStore = yield* open(TokenStorage.layerFileSystemNode(dir))
      yield* fileStore.setTokens(TokenStorage.serverKey(SERVER_B), makeToken({ expiresAt: later }))
      const auto = yield* cli("status", "--json", "--storage", "auto", "--dir", dir)
      expect(auto.code).toBe(0)
      expect(JSON.parse(auto.stdout).map((r: { server: string }) => r.server).sort()).toEqual([SERVER_A, SERVER_B])
      expect(yield* fileStore.keys).toEqual([])
      expect(Option.isSome(yield* keychain.getTokens(TokenStorage.serverKey(SERVER_B)))).toBe(true)

      const logout = yield* cli("logout", "--all", "--storage", "keychain", "--dir", dir)
      expect(logout.code).toBe(0)
      expect(logout.stdout).toContain(`Signed out of ${SERVER_A}`)
      expect(yield* keychain.keys).toEqual([])
      const empty = yield* cli("status", "--storage", "keychain", "--dir", dir)
      expect(empty.stdout).toContain("No stored credentials in the OS keychain")
    }))

  it.scopedLive("proxy --storage keychain: the sign-in's tokens land in the keychain, no token file in --dir", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const { client } = yield* host(server.mcpUrl, dir, { args: ["--storage", "keychain"] })
      const tools = yield* Effect.promise(() => client.listTools())
      expect(tools.tools.length).toBeGreaterThan(0)
      const keychain = yield* open(TokenStorage.layerKeychain({ lockDirectory: dir }))
      expect(Option.isSome(yield* keychain.getTokens(TokenStorage.serverKey(server.mcpUrl)))).toBe(true)
      // (the proxy's initialize cache, which holds no secret, stays a file)
      expect(NodeFs.readdirSync(dir).filter((n) => /\.(tokens|client)\.json$/.test(n))).toEqual([])
      expect(NodeFs.readdirSync(dir).filter((n) => n.endsWith(".initialize.json"))).toHaveLength(1)
    }))
})
