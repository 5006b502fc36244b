/**
 * `effect-mcp-oauth proxy` as a stdio-only host sees it: the official SDK's `Client` +
 * `StdioClientTransport` spawning the proxy (the shipped bundle, as the CLI tests do), against an OAuth-protected
 * SDK server on loopback (test/fixtures/ProtectedMcpServer.ts) — tools, an elicitation round
 * trip, progress, a remote restart (session 404) and a remote that goes away and comes back; the
 * raw stdio contract (malformed input, SIGTERM and stdin EOF end cleanly and close the session);
 * and four proxies sharing one credential directory: one sign-in and one registration on a cold
 * start, one refresh for 4 × 25 concurrent calls on an expired token.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as NodePath from "node:path"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { hostLegacySse } from "../mcp/fixtures/sdkServer.js"
import { useBundledCli } from "./bundledProxy.js"
import { cliEntry, host, rawProxy, tempDir, textOf } from "./stdioHost.js"

useBundledCli()

/** A free loopback port (bound, read, released). */
const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
)

/** Whether `port` on 127.0.0.1 can be bound right now. */
const canBind = (port: number) =>
  Effect.promise(() =>
    new Promise<boolean>((resolve) => {
      const server = Net.createServer()
      server.once("error", () => resolve(false))
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
    })
  )

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } }
}

describe("effect-mcp-oauth proxy (subprocess) between an SDK stdio host and a protected remote server", () => {
  it.scopedLive("tools, a call and an elicitation round trip go through; a remote restart and outage are survived", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      // The host's elicitation answer can be held back, to cancel the call meanwhile.
      let hold: ((answer: { action: "accept"; content: { name: string } }) => void) | undefined
      let held: () => void = () => {}
      const elicited = new Promise<void>((resolve) => (held = resolve))
      const { client, stderr } = yield* host(server.mcpUrl, dir, {
        args: ["--header", "X-Tenant: ${TENANT}", "--debug"],
        env: { TENANT: "acme" },
        elicit: (message) =>
          hold === undefined
            ? Promise.resolve({ action: "accept", content: { name: `Ada (asked: ${message})` } })
            : new Promise((resolve) => {
              hold = resolve
              held()
            })
      })

      expect(client.getServerVersion()?.name).toBe("fixture-server")
      expect(client.getInstructions()).toBe("Fixture server for effect-mcp-oauth tests")
      const tools = yield* Effect.promise(() => client.listTools())
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["add", "ask", "progress"]))
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 2, b: 40 } })))).toBe("42")
      // server → client request through the proxy, answered by this host
      const asked = yield* Effect.promise(() => client.callTool({ name: "ask", arguments: {} }))
      expect(textOf(asked)).toBe("hello Ada (asked: What is your name?)")
      // --header with ${ENV} expansion reaches the server
      expect(server.received.find((r) => r.method === "tools/call")?.headers["x-tenant"]).toBe("acme")

      // The host cancels a call in flight: the proxy cancels it upstream, under the upstream id.
      hold = () => {}
      const abort = new AbortController()
      const cancelled = Effect.runPromise(Effect.promise(() =>
        client.callTool({ name: "ask", arguments: {} }, undefined, { signal: abort.signal }).then(
          () => "answered",
          () => "rejected"
        )
      ))
      yield* Effect.promise(() => elicited)
      abort.abort("the user gave up")
      expect(yield* Effect.promise(() => cancelled)).toBe("rejected")
      const upstreamCall = server.received.filter((r) => r.method === "tools/call").at(-1)
      yield* Effect.promise(async () => {
        for (let i = 0; i < 100 && !server.received.some((r) => r.method === "notifications/cancelled"); i++) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })
      const cancel = server.received.find((r) => r.method === "notifications/cancelled")
      expect(cancel?.params).toMatchObject({ requestId: expect.any(Number) })
      expect(upstreamCall).toBeDefined()
      hold({ action: "accept", content: { name: "late" } })
      hold = undefined
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })

      // The remote forgets its sessions (a restart): the proxy re-initializes, the host notices nothing.
      yield* Effect.promise(() => server.restart())
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 1, b: 2 } })))).toBe("3")

      // The remote goes away: the host gets a JSON-RPC error, the proxy stays up; it comes back: calls work.
      yield* Effect.promise(() => server.stop())
      const failed = yield* Effect.promise(() =>
        client.callTool({ name: "add", arguments: { a: 1, b: 1 } }).then(() => undefined, (e: unknown) => e)
      )
      expect(String(failed)).toContain("unavailable")
      yield* Effect.promise(() => server.start())
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 5, b: 5 } })))).toBe("10")
      expect((yield* server.counts).authorize).toBe(1)
      // --debug writes a log file; no token ever appears in it or on stderr.
      const stored = yield* Effect.flatMap(TokenStorage.TokenStorage, (st) => st.getTokens(TokenStorage.serverKey(server.mcpUrl))).pipe(
        Effect.provide(TokenStorage.layerFileSystemNode(dir))
      )
      expect(Option.isSome(stored)).toBe(true)
      const secrets = Option.match(stored, {
        onNone: () => [],
        onSome: (t) => [Redacted.value(t.accessToken), ...(t.refreshToken === undefined ? [] : [Redacted.value(t.refreshToken)])]
      })
      const logs = NodeFs.readdirSync(dir).filter((f) => f.endsWith(".debug.log"))
      expect(logs).toHaveLength(1)
      const log = NodeFs.readFileSync(NodePath.join(dir, logs[0]!), "utf8")
      expect(log).toContain("connected to")
      // stderr: each line once (the proxy's loggers replace the CLI's), debug lines only in the file
      expect(stderr.join("").match(/forwarding stdio/g)).toHaveLength(1)
      // the sign-in progress comes from SignInEvents, as for a GUI, on stderr (stdout is the protocol)
      expect(stderr.join("")).toContain(`Signing in to ${server.mcpUrl} (headless)…`)
      expect(stderr.join("").match(/Signed in to \S+ at /g)).toHaveLength(1)
      expect(stderr.join("")).not.toContain("level=DEBUG")
      expect(log).toContain("DEBUG")
      for (const secret of secrets) {
        expect(log).not.toContain(secret)
        expect(stderr.join("")).not.toContain(secret)
      }
    }))

  it.scopedLive("sampling and roots: the server's requests reach the SDK host through the proxy and its answers come back; roots/list_changed goes upstream", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      let roots: ReadonlyArray<{ uri: string; name?: string }> = [{ uri: "file:///work/a", name: "a" }]
      const sampled: Array<string> = []
      const { client } = yield* host(server.mcpUrl, dir, {
        sample: (text) => {
          sampled.push(text)
          return { model: "host-model", role: "assistant", content: { type: "text", text: `echo ${text}` } }
        },
        roots: () => roots
      })
      const sample = yield* Effect.promise(() => client.callTool({ name: "sample", arguments: { prompt: "hi there" } }))
      expect(textOf(sample)).toBe("host-model: echo hi there")
      expect(sampled).toEqual(["hi there"])
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "roots", arguments: {} })))).toBe("file:///work/a")

      // The host's roots change: it says so, the server hears it, and asks again.
      roots = [{ uri: "file:///work/a" }, { uri: "file:///work/b" }]
      yield* Effect.promise(() => client.sendRootsListChanged())
      yield* Effect.promise(async () => {
        for (let i = 0; i < 100 && !server.received.some((r) => r.method === "notifications/roots/list_changed"); i++) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })
      expect(server.received.some((r) => r.method === "notifications/roots/list_changed")).toBe(true)
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "roots", arguments: {} }))))
        .toBe("file:///work/a,file:///work/b")
      // The upstream session declared what the host declared.
      const init = server.received.find((r) => r.method === "initialize")
      expect(init?.params).toMatchObject({ capabilities: { sampling: {}, roots: { listChanged: true } } })
    }))

  it.scopedLive("raw stdio: a malformed line gets -32700 and the connection stays; progress precedes its result; SIGTERM and stdin EOF exit 0 and end the session", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir

      const first = yield* rawProxy(server.mcpUrl, dir)
      first.send("this is not json")
      const parseError = yield* Effect.promise(first.next)
      expect(parseError).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } })
      first.send(initialize)
      const init = yield* Effect.promise(first.next)
      expect(init).toMatchObject({ id: 1, result: { serverInfo: { name: "fixture-server" } } })
      first.send({ jsonrpc: "2.0", method: "notifications/initialized" })
      first.send({ jsonrpc: "2.0", id: "x", method: "tools/list" })
      const listed = yield* Effect.promise(first.next)
      expect(listed).toMatchObject({ id: "x", result: { tools: expect.any(Array) } })
      // Progress under the host's own token, sent before the result it belongs to (as the server sent them).
      first.send({
        jsonrpc: "2.0",
        id: "p",
        method: "tools/call",
        params: { name: "progress", arguments: { steps: 2 }, _meta: { progressToken: "token-of-the-host" } }
      })
      const answers = [
        yield* Effect.promise(first.next),
        yield* Effect.promise(first.next),
        yield* Effect.promise(first.next),
        yield* Effect.promise(first.next)
      ]
      expect(answers).toMatchObject([
        { method: "notifications/message", params: { data: "starting" } },
        { method: "notifications/progress", params: { progressToken: "token-of-the-host", progress: 1 } },
        { method: "notifications/progress", params: { progressToken: "token-of-the-host", progress: 2 } },
        { id: "p", result: { content: [{ text: "done 2" }] } }
      ])
      expect(server.sessions()).toBe(1)
      first.child.kill("SIGTERM")
      expect(yield* Effect.promise(() => first.exited)).toBe(0)
      expect(server.sessions()).toBe(0)

      // The second start answers initialize from the cached capabilities, then works the same.
      const second = yield* rawProxy(server.mcpUrl, dir)
      second.send(initialize)
      expect(yield* Effect.promise(second.next)).toMatchObject({ id: 1, result: { serverInfo: { name: "fixture-server" } } })
      second.send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "add", arguments: { a: 1, b: 1 } } })
      expect(yield* Effect.promise(second.next)).toMatchObject({ id: 2, result: { content: [{ text: "2" }] } })
      expect(second.stderr()).toContain("cached")
      second.child.stdin.end()
      expect(yield* Effect.promise(() => second.exited)).toBe(0)
      expect(server.sessions()).toBe(0)
      expect((yield* server.counts).authorize).toBe(1)
    }))

  it.scopedLive("4 proxies sharing a directory: a cold start signs in and registers once; 4 × 25 calls on an expired token refresh once", () =>
    Effect.gen(function*() {
      // Tokens live 2 s at first (due for refresh after 1 s), an hour once all four are up.
      const server = yield* startProtectedMcpServer({ accessTokenTtl: Duration.seconds(2) })
      const dir = yield* tempDir
      const hosts = yield* Effect.all(Array.from({ length: 4 }, () => host(server.mcpUrl, dir)), {
        concurrency: "unbounded"
      })
      const coldStart = yield* server.counts
      expect({ register: coldStart.register, authorize: coldStart.authorize, tokenCode: coldStart.tokenCode })
        .toEqual({ register: 1, authorize: 1, tokenCode: 1 })

      // Let every proxy settle (its standalone GET stream opens after the handshake) before
      // tokens last long: a refresh after the switch would leave the herd nothing to refresh.
      yield* Effect.promise(() => Promise.all(hosts.map(({ client }) => client.listTools())))
      yield* Effect.sleep("1 second")
      yield* server.setAccessTokenTtl(Duration.hours(1))
      yield* Effect.sleep("2500 millis")
      yield* server.resetCounts
      const results = yield* Effect.promise(() =>
        Promise.all(
          hosts.flatMap(({ client }, h) =>
            Array.from({ length: 25 }, (_, i) => client.callTool({ name: "add", arguments: { a: h * 100, b: i } }))
          )
        )
      )
      expect(results.map(textOf)).toEqual(
        [0, 1, 2, 3].flatMap((h) => Array.from({ length: 25 }, (_, i) => String(h * 100 + i)))
      )
      expect(yield* server.counts).toEqual({ register: 0, authorize: 0, tokenCode: 0, tokenRefresh: 1 })
    }))

  it.scopedLive("--transport http-first falls back to the legacy HTTP+SSE transport when Streamable HTTP is refused", () =>
    Effect.gen(function*() {
      const legacy = yield* Effect.acquireRelease(Effect.promise(() => hostLegacySse()), (h) => Effect.promise(h.close))
      const dir = yield* tempDir
      const { client, stderr } = yield* host(legacy.url, dir, { args: ["--transport", "http-first"] })
      expect(client.getServerVersion()?.name).toBe("fixture-server")
      expect(textOf(yield* Effect.promise(() => client.callTool({ name: "add", arguments: { a: 20, b: 22 } })))).toBe("42")
      expect(legacy.requests.some((r) => r.method === "GET" && r.url.startsWith("/sse"))).toBe(true)
      expect(stderr.join("")).toContain("trying sse")
    }))

  it.scopedLive("SIGTERM while the sign-in waits for the browser: exit 0, the callback server closed, the lock released, the sign-in in progress kept", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const port = yield* freePort
      const proxy = yield* rawProxy(server.mcpUrl, dir, [
        ...cliEntry(),
        "proxy",
        "--manual",
        "--callback-port",
        String(port),
        "--allow-http",
        "--dir",
        dir,
        server.mcpUrl
      ])
      proxy.send(initialize)
      yield* Effect.promise(async () => {
        for (let i = 0; i < 400 && !proxy.stderr().includes("open this address"); i++) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })
      expect(proxy.stderr()).toContain(`redirect_uri=http%3A%2F%2F127.0.0.1%3A${port}%2Fcallback`)
      expect(yield* canBind(port)).toBe(false) // the callback server is listening
      expect(NodeFs.readdirSync(dir).some((f) => f.endsWith(".lock"))).toBe(true) // the sign-in holds the lock
      proxy.child.kill("SIGTERM")
      expect(yield* Effect.promise(() => proxy.exited)).toBe(0)
      expect(yield* canBind(port)).toBe(true)
      expect(NodeFs.readdirSync(dir).filter((f) => f.endsWith(".lock"))).toEqual([])
      // the sign-in in progress stays stored, for the process the host starts next to take over
      expect(NodeFs.readdirSync(dir).filter((f) => f.endsWith(".pending.json"))).toHaveLength(1)
    }))
})
