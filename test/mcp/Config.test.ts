import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Elicitation from "../../src/mcp/Elicitation.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as Target from "../../src/mcp/Target.js"
import { hostStreamableHttp } from "./fixtures/sdkServer.js"
import { hosted } from "./helpers.js"

const fixture = fileURLToPath(new URL("./fixtures/stdio-server.ts", import.meta.url))
const root = path.resolve(fileURLToPath(new URL("../..", import.meta.url)))
const platform = Layer.merge(NodeHttpClient.layerUndici, NodeContext.layer)

describe("transport inference, layers and mcpServers documents", () => {
  it.effect("infers stdio commands for script paths", () =>
    Effect.gen(function*() {
      const js = yield* Target.infer("./server.mjs")
      expect(js).toEqual({ _tag: "Stdio", options: { command: process.execPath, args: ["./server.mjs"] } })
      const ts = yield* Target.infer("/srv/server.ts")
      expect(ts._tag === "Stdio" && ts.options.args).toEqual(["--import", "tsx", "/srv/server.ts"])
      const py = yield* Target.infer("server.py")
      expect(py._tag === "Stdio" && [py.options.command, ...(py.options.args ?? [])]).toEqual(["python3", "server.py"])
      const cmd = yield* Target.infer({ command: "uvx", args: ["mcp-server-git"], env: { A: "1" }, cwd: "/tmp" })
      expect(cmd).toMatchObject({ _tag: "Stdio", options: { command: "uvx", args: ["mcp-server-git"], cwd: "/tmp" } })
    }))

  it.live("McpClient.layer provides the McpClient tag; the session ends with the layer", () =>
    Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const names = yield* Effect.flatMap(McpClient.McpClient, (client) => client.listTools()).pipe(
        Effect.provide(McpClient.layer(server.url))
      )
      expect(names.map((t) => t.name)).toContain("add")
      expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(1)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  it.live("an mcpServers document: connectAll and per-server layers, HTTP and stdio together", () =>
    Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const config: Target.McpConfig = {
        mcpServers: {
          remote: { url: server.url, headers: { "x-tenant": "t1" } },
          local: { command: process.execPath, args: ["--import", "tsx", fixture], cwd: root }
        }
      }
      const clients = yield* McpClient.connectAll(config)
      expect(Object.keys(clients).sort()).toEqual(["local", "remote"])
      const remote = yield* clients["remote"]!.callTool("echo", { message: "hi" })
      expect(remote.content).toEqual([{ type: "text", text: "echo: hi" }])
      const local = yield* clients["local"]!.listTools()
      expect(local.map((t) => t.name)).toContain("whoami")
      expect(server.requests.every((r) => r.headers["x-tenant"] === "t1")).toBe(true)
      const viaLayer = yield* Effect.flatMap(McpClient.McpClient, (client) => client.ping()).pipe(
        Effect.provide(McpClient.layers(config)["remote"]!)
      )
      expect(viaLayer).toBeUndefined()
    }).pipe(Effect.scoped, Effect.provide(platform)))

  it.live("an elicitation handler can accept with the schema's defaults (SEP-1034)", () =>
    Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* McpClient.connect(server.url, {
        handlers: { elicitation: (params) => Effect.succeed(Elicitation.acceptWithDefaults(params, { age: 31 })) }
      })
      const result = yield* client.callTool("ask_defaults")
      expect(result.content).toEqual([{
        type: "text",
        text: JSON.stringify({ name: "John Doe", age: 31, verified: true, status: "active" })
      }])
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
