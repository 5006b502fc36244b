/**
 * A host's start-up timeout is shorter than a first sign-in in the browser. With nothing cached,
 * the proxy answers `initialize` provisionally after `--initialize-wait`, the host's requests wait
 * for the sign-in, and once the server is connected the host is told to list again
 * (`notifications/tools/list_changed`); a list for a capability the server lacks is empty, not an
 * error. With the sign-in done within the wait, the host gets the server's own answer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ProvisionalInitialize from "../../src/proxy/ProvisionalInitialize.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { useBundledCli } from "./bundledProxy.js"
import { addressesIn, cliEntry, initializeRequest, rawProxy, tempDir, until } from "./stdioHost.js"

useBundledCli()



const manualProxy = (mcpUrl: string, dir: string, wait: string) =>
  Effect.acquireRelease(
    rawProxy(mcpUrl, dir, [...cliEntry(), "proxy", "--manual", "--initialize-wait", wait, "--allow-http", "--dir", dir, mcpUrl]),
    (p) => Effect.promise(async () => void (p.child.kill("SIGTERM"), await p.exited))
  )

describe("effect-mcp-oauth proxy: initialize within the host's patience", () => {
  it.scopedLive("the sign-in outlasts --initialize-wait: a provisional answer, requests wait, then list_changed and the real tools", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const proxy = yield* manualProxy(server.mcpUrl, dir, "1")
      proxy.send(initializeRequest)
      const started = Date.now()
      const answer = yield* Effect.promise(proxy.next)
      // answered while the user has not even opened the address yet
      expect(addressesIn(proxy.stderr())).toHaveLength(1)
      expect(yield* server.counts).toMatchObject({ tokenCode: 0 })
      expect(Date.now() - started).toBeLessThan(15_000)
      expect(answer).toMatchObject({
        id: 1,
        result: {
          protocolVersion: "2025-06-18",
          capabilities: { tools: { listChanged: true }, resources: { listChanged: true }, prompts: { listChanged: true } },
          serverInfo: { name: "effect-mcp-oauth proxy" }
        }
      })
      expect(String((answer.result as { instructions?: string }).instructions)).toContain("Signing in to")
      proxy.send({ jsonrpc: "2.0", method: "notifications/initialized" })
      proxy.send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
      proxy.send({ jsonrpc: "2.0", id: 3, method: "prompts/list" })
      // the user signs in now
      yield* Effect.promise(() => fetch(addressesIn(proxy.stderr())[0]!).then((r) => r.text()))
      const after: Array<Record<string, unknown>> = []
      while (!(after.some((m) => m.id === 2) && after.some((m) => m.id === 3))) {
        after.push(yield* Effect.promise(proxy.next))
      }
      const tools = after.find((m) => m.id === 2) as { result: { tools: Array<{ name: string }> } }
      expect(tools.result.tools.map((t) => t.name)).toContain("add")
      expect(after.find((m) => m.id === 3)).toMatchObject({ result: { prompts: expect.any(Array) } })
      // the fixture server (the SDK's McpServer) declares tools, resources and prompts: all three
      // list_changed
      const notified = after.filter((m) => typeof m.method === "string").map((m) => m.method)
      expect(notified).toEqual([
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed"
      ])
      expect(yield* server.counts).toMatchObject({ register: 1, authorize: 1, tokenCode: 1 })
    }), 90_000)

  it.scopedLive("the sign-in done within --initialize-wait: the server's own initialize result, no list_changed", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const dir = yield* tempDir
      const proxy = yield* manualProxy(server.mcpUrl, dir, "60")
      proxy.send(initializeRequest)
      yield* until("the sign-in address", () => addressesIn(proxy.stderr()).length === 1)
      yield* Effect.promise(() => fetch(addressesIn(proxy.stderr())[0]!).then((r) => r.text()))
      const answer = yield* Effect.promise(proxy.next)
      expect(answer).toMatchObject({ id: 1, result: { protocolVersion: "2025-06-18" } })
      const serverInfo = (answer.result as { serverInfo: { name: string } }).serverInfo
      expect(serverInfo.name).not.toBe("effect-mcp-oauth proxy")
      proxy.send({ jsonrpc: "2.0", method: "notifications/initialized" })
      proxy.send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
      const next = yield* Effect.promise(proxy.next)
      expect(next).toMatchObject({ id: 2 })
    }), 90_000)

  it("a server that lacks what the provisional answer claimed: empty lists for it, list_changed only for what it has", () => {
    const toolsOnly = { tools: {} }
    expect(ProvisionalInitialize.emptyListFor("prompts/list", toolsOnly)).toEqual({ prompts: [] })
    expect(ProvisionalInitialize.emptyListFor("resources/list", toolsOnly)).toEqual({ resources: [] })
    expect(ProvisionalInitialize.emptyListFor("resources/templates/list", toolsOnly)).toEqual({ resourceTemplates: [] })
    expect(ProvisionalInitialize.emptyListFor("tools/list", toolsOnly)).toBeUndefined()
    expect(ProvisionalInitialize.emptyListFor("prompts/list", { prompts: {} })).toBeUndefined()
    expect(ProvisionalInitialize.listChanged(toolsOnly).map((n) => n.method)).toEqual(["notifications/tools/list_changed"])
    // a protocol version the library does not speak: its latest instead
    expect(ProvisionalInitialize.result("1999-01-01", "https://x.example/mcp").protocolVersion).toBe("2025-11-25")
  })
})
