/**
 * A host that restarts `effect-mcp-oauth proxy` while the user is in the browser: the first
 * process (killed with SIGKILL — no clean-up at all) stored its authorization request; the second
 * process takes that sign-in over — it listens on the same loopback redirect URI and redeems the
 * code with the stored PKCE verifier — so the user's consent in the window the first one opened
 * completes it: one registration, one authorization request, no second address for the user. A
 * stored request that expired is ignored: the second process signs in anew.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as TokenStorage from "../../src/TokenStorage.js"
import { PendingAuthorization } from "../../src/Schemas.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { useBundledCli } from "./bundledProxy.js"
import { addressesIn, cliEntry, host, initializeRequest, rawProxy, tempDir, textOf, until } from "./stdioHost.js"

useBundledCli()



/** Whether something accepts connections on 127.0.0.1:`port` (without taking the port). */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => (socket.destroy(), resolve(true)))
    socket.once("error", () => resolve(false))
  })

/** The user's browser: follows the address (the authorization server approves and redirects to the callback). */
const browse = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, text: await response.text() }
  })

/**
 * Proxy A: `--manual` (prints the address instead of opening a browser), no `--callback-port`
 * unless given, no stored token. Returns its sign-in address once printed, then A is killed
 * (SIGKILL unless told).
 */
const startAndKill = (
  mcpUrl: string,
  dir: string,
  options: { readonly signal?: NodeJS.Signals; readonly args?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function*() {
    const a = yield* rawProxy(mcpUrl, dir, [
      ...cliEntry(),
      "proxy",
      "--manual",
      "--allow-http",
      "--dir",
      dir,
      ...(options.args ?? []),
      mcpUrl
    ])
    a.send(initializeRequest)
    yield* until("proxy A's sign-in address", () => addressesIn(a.stderr()).length === 1)
    const address = addressesIn(a.stderr())[0]!
    const port = Number(new URL(new URL(address).searchParams.get("redirect_uri")!).port)
    expect(yield* Effect.promise(() => listening(port))).toBe(true)
    a.child.kill(options.signal ?? "SIGKILL")
    yield* Effect.promise(() => a.exited)
    expect(yield* Effect.promise(() => listening(port))).toBe(false)
    return { address, port }
  })

/** Changes the times of the authorization request A stored in `dir` (which must be there). */
const restamp = (mcpUrl: string, dir: string, times: { readonly createdAt?: number; readonly expiresAt: number }) =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    const key = TokenStorage.serverKey(mcpUrl)
    const stored = yield* storage.pendingAuthorizations!.get(key)
    expect(Option.isSome(stored)).toBe(true)
    yield* storage.pendingAuthorizations!.set(key, new PendingAuthorization({ ...Option.getOrThrow(stored), ...times }))
  }).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))

const pendingFiles = (dir: string) => NodeFs.readdirSync(dir).filter((f) => f.endsWith(".pending.json"))

describe("effect-mcp-oauth proxy: a restarted proxy joins the sign-in in progress", () => {
  it.scopedLive("proxy A is killed (SIGKILL) while the user is in the browser; proxy B takes the sign-in over on the same callback port, without a second address, registration or authorization request", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const { address, port } = yield* startAndKill(server.mcpUrl, dir)
      expect(pendingFiles(dir)).toHaveLength(1)

      // Proxy B, started by the host in A's place; any address it printed would go to `opened`.
      const opened: Array<string> = []
      const b = yield* Effect.fork(host(server.mcpUrl, dir, { user: async (url) => void opened.push(url) }))
      yield* until("proxy B listening on A's callback port", () => listening(port))

      // The user finishes the sign-in in the window A opened.
      const page = yield* browse(address)
      expect(page.status).toBe(200)
      const { client, stderr } = yield* Fiber.join(b)
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 20, b: 22 } })))).toBe("42")

      expect(opened).toEqual([])
      expect(addressesIn(stderr.join(""))).toEqual([])
      expect(stderr.join("")).toContain("Taking over the sign-in an earlier process started")
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })
      expect(pendingFiles(dir)).toEqual([])
    }))

  it.scopedLive("with --callback-port, stopped with SIGTERM (the usual host restart): proxy B takes the sign-in over on that port", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const fixed = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const probe = Net.createServer().listen(0, "127.0.0.1", () => {
            const address = probe.address()
            probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
          })
        })
      )
      const args = ["--callback-port", String(fixed)]
      const { address, port } = yield* startAndKill(server.mcpUrl, dir, { signal: "SIGTERM", args })
      expect(port).toBe(fixed)

      const opened: Array<string> = []
      const b = yield* Effect.fork(host(server.mcpUrl, dir, { args, user: async (url) => void opened.push(url) }))
      yield* until("proxy B listening on the callback port", () => listening(fixed))
      expect((yield* browse(address)).status).toBe(200)
      const { client } = yield* Fiber.join(b)
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 2, b: 3 } })))).toBe("5")
      expect(opened).toEqual([])
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })
      expect(pendingFiles(dir)).toEqual([])
    }))

  it.scopedLive("a stored sign-in that expired is ignored: proxy B signs in anew (a new address), and A's is not answered", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const { address } = yield* startAndKill(server.mcpUrl, dir)

      // A's stored request, aged past its expiry.
      yield* restamp(server.mcpUrl, dir, { createdAt: Date.now() - 20 * 60_000, expiresAt: Date.now() - 60_000 })

      const opened: Array<string> = []
      const { client, stderr } = yield* host(server.mcpUrl, dir, {
        user: async (url) => {
          opened.push(url)
          await fetch(url)
        }
      })
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 1, b: 2 } })))).toBe("3")
      expect(opened).toHaveLength(1)
      expect(new URL(opened[0]!).searchParams.get("state")).not.toBe(new URL(address).searchParams.get("state"))
      expect(stderr.join("")).toContain("Not taking over the sign-in an earlier process started: it expired")
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })
      expect(pendingFiles(dir)).toEqual([])
    }))

  it.scopedLive("a taken-over sign-in whose user never comes back ends with the stored request's life: proxy B then signs in anew at once, not after its own 5-minute wait", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const { address } = yield* startAndKill(server.mcpUrl, dir)

      // A's stored request, a few seconds from the end of its life.
      yield* restamp(server.mcpUrl, dir, { expiresAt: Date.now() + 4_000 })

      // The user ignores A's window; B's own address, once printed, is followed.
      const opened: Array<string> = []
      const started = Date.now()
      const { client, stderr } = yield* host(server.mcpUrl, dir, {
        user: async (url) => {
          opened.push(url)
          await fetch(url)
        }
      })
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 4, b: 5 } })))).toBe("9")
      expect(Date.now() - started).toBeLessThan(30_000)
      const log = stderr.join("")
      expect(log).toContain("Taking over the sign-in an earlier process started")
      expect(log).toMatch(/Not taking over the sign-in an earlier process started: it expired at .* before its answer came/)
      expect(opened).toHaveLength(1)
      expect(new URL(opened[0]!).searchParams.get("state")).not.toBe(new URL(address).searchParams.get("state"))
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })
      expect(pendingFiles(dir)).toEqual([])
    }))
})
