import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Queue, Scope, Stream } from "effect"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpTransport } from "../../src/mcp/McpTransport.js"
import * as StreamableHttp from "../../src/mcp/StreamableHttp.js"
import { buildPaginatedServer, hostStreamableHttp } from "./fixtures/sdkServer.js"
import { hosted } from "./helpers.js"

const run = <A, E>(body: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>) =>
  Effect.scoped(body).pipe(Effect.provide(NodeHttpClient.layerUndici))

const connect = (url: string, options: McpClient.McpClientOptions = {}) =>
  McpClient.make(options).pipe(Effect.provideServiceEffect(McpTransport, StreamableHttp.make({ url })))

describe("Streamable HTTP against the official SDK server", () => {
  it.live("initializes, negotiates 2025-11-25 and sends the session and version headers", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url, { clientInfo: { name: "test-client", version: "9.9.9" } })
      expect(client.protocolVersion).toBe("2025-11-25")
      expect(client.serverInfo).toMatchObject({ name: "fixture-server", version: "1.2.3" })
      expect(client.initializeResult.instructions).toBe("Fixture server for effect-mcp-oauth tests")
      expect(client.serverCapabilities.tools).toBeDefined()
      yield* client.ping()
      const [initialize, ...rest] = server.requests
      expect(initialize!.headers["mcp-session-id"]).toBeUndefined()
      expect(initialize!.headers["accept"]).toBe("application/json, text/event-stream")
      expect(initialize!.headers["content-type"]).toBe("application/json")
      const sessionIds = new Set(rest.map((r) => r.headers["mcp-session-id"]))
      expect(sessionIds.size).toBe(1)
      expect([...sessionIds][0]).toMatch(/^[0-9a-f-]{36}$/)
      expect(rest.every((r) => r.headers["mcp-protocol-version"] === "2025-11-25")).toBe(true)
    })))

  it.live("lists and calls tools", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url)
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["add", "echo", "fail", "progress", "broadcast", "ask", "ask_defaults", "roots", "sample"])
      expect(tools[0]!.inputSchema).toMatchObject({ type: "object", properties: { a: { type: "number" } } })
      const sum = yield* client.callTool("add", { a: 2, b: 40 })
      expect(sum.content).toEqual([{ type: "text", text: "42" }])
      const failed = yield* client.callTool("fail")
      expect(failed.isError).toBe(true)
      // the SDK reports an unknown tool as a tool error carrying the JSON-RPC code
      const unknown = yield* client.callTool("nope", {})
      expect(unknown.isError).toBe(true)
      expect(unknown.content).toEqual([{ type: "text", text: "MCP error -32602: Tool nope not found" }])
    })))

  it.live("follows nextCursor through every page and keeps unknown fields", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp(buildPaginatedServer))
      const client = yield* connect(server.url)
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(Array.from({ length: 7 }, (_, i) => `tool-${i}`))
      expect((tools[4] as unknown as Record<string, unknown>)["xCustom"]).toBe("kept-4")
      const listCalls = server.requests.filter((r) => r.method === "POST").length
      expect(listCalls).toBe(2 + 3) // initialize, initialized, three pages
      const resources = yield* client.listResources()
      expect(resources.map((r) => r.uri)).toEqual(["a://1", "a://2"])
    })))

  it.live("reads resources and templates, gets prompts", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url)
      const resources = yield* client.listResources()
      expect(resources.map((r) => r.uri)).toEqual(["config://app"])
      const config = yield* client.readResource("config://app")
      expect(config.contents[0]).toMatchObject({ uri: "config://app", text: "{\"debug\":true}" })
      const templates = yield* client.listResourceTemplates()
      expect(templates.map((t) => t.uriTemplate)).toEqual(["greeting://{name}"])
      const greeting = yield* client.readResource("greeting://ada")
      expect(greeting.contents[0]!.text).toBe("Hello, ada!")
      const prompts = yield* client.listPrompts()
      expect(prompts[0]).toMatchObject({ name: "review", arguments: [{ name: "code", required: true }] })
      const prompt = yield* client.getPrompt("review", { code: "x = 1" })
      expect(prompt.messages[0]).toEqual({ role: "user", content: { type: "text", text: "Please review:\nx = 1" } })
      const missing = yield* Effect.flip(client.readResource("nothing://here"))
      expect(missing._tag).toBe("McpError")
    })))

  it.live("streams logging and progress notifications", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url)
      const queue = yield* client.subscribe
      yield* client.setLoggingLevel("debug")
      const progress: Array<number> = []
      const result = yield* client.callTool("progress", { steps: 3 }, {
        onProgress: (p) => Effect.sync(() => progress.push(p.progress))
      })
      expect(result.content).toEqual([{ type: "text", text: "done 3" }])
      expect(progress).toEqual([1, 2, 3])
      const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(queue))
      const log = seen.find((n) => n.method === "notifications/message")
      expect(log?.params).toMatchObject({ level: "info", logger: "fixture", data: "starting" })
      expect(seen.filter((n) => n.method === "notifications/progress")).toHaveLength(3)
    })))

  it.live("the notifications stream carries messages from the GET stream", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url)
      const first = yield* client.notifications.pipe(
        Stream.filter((n) => n.method === "notifications/message"),
        Stream.runHead,
        Effect.fork
      )
      yield* Effect.sleep("50 millis")
      yield* client.callTool("broadcast")
      const log = yield* Fiber.join(first).pipe(Effect.timeout("5 seconds"))
      expect(Option.getOrThrow(log).params).toMatchObject({ level: "notice", data: "broadcast" })
    })))

  it.live("answers elicitation with the app's handler and declares the capability", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const asked: Array<string> = []
      const client = yield* connect(server.url, {
        handlers: {
          elicitation: (params) =>
            Effect.sync(() => {
              asked.push(params.message)
              return { action: "accept", content: { name: "Ada" } }
            })
        }
      })
      // the SDK server elicits only from clients that declared the capability: this proves we did
      const result = yield* client.callTool("ask")
      expect(result.content).toEqual([{ type: "text", text: "hello Ada" }])
      expect(asked).toEqual(["What is your name?"])
    })))

  it.live("without a handler, a server request gets -32601 and no capability is declared", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url)
      // the SDK server checks the declared capabilities before eliciting…
      const ask = yield* client.callTool("ask")
      expect(ask).toMatchObject({ isError: true, content: [{ text: "Client does not support form elicitation." }] })
      // …but sends roots/list anyway: our client answers -32601, which the tool reports
      const roots = yield* client.callTool("roots")
      expect(roots).toMatchObject({ isError: true, content: [{ text: "MCP error -32601: Method not found: roots/list" }] })
    })))

  it.live("answers roots/list from the handler", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* connect(server.url, {
        handlers: { roots: { list: Effect.succeed([{ uri: "file:///work", name: "work" }]) } }
      })
      const result = yield* client.callTool("roots")
      expect(result.content).toEqual([{ type: "text", text: "file:///work" }])
    })))

  it.live("closing the scope DELETEs the session", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const scope = yield* Scope.make()
      yield* connect(server.url).pipe(Scope.extend(scope))
      expect(server.sessions()).toBe(1)
      yield* Scope.close(scope, Exit.void)
      const deletes = server.requests.filter((r) => r.method === "DELETE")
      expect(deletes).toHaveLength(1)
      expect(deletes[0]!.headers["mcp-session-id"]).toBeDefined()
      expect(server.sessions()).toBe(0)
    })))

  it.live("works with servers that answer plain JSON bodies", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp(undefined, { enableJsonResponse: true }))
      const client = yield* connect(server.url)
      const sum = yield* client.callTool("add", { a: 1, b: 1 })
      expect(sum.content).toEqual([{ type: "text", text: "2" }])
    })))
})
