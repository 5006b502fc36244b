/**
 * SEP-2243 on the 2026-07-28 wire: `Mcp-Method` / `Mcp-Name` on every POST, tool parameters
 * annotated with `x-mcp-header` mirrored into `Mcp-Param-*` with the value encoding, invalid
 * annotations rejected; and none of it on the 2025-11-25 wire.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as McpHeaders from "../../src/mcp/McpHeaders.js"
import { startRawServer } from "./fixtures/rawServer.js"
import { paramsOf, posts, statelessServer } from "./fixtures/statelessServer.js"

const connect = (url: string) =>
  McpClient.connect(new URL(url), { protocolVersion: "2026-07-28", requestTimeout: "10 seconds" })

const ok = { result: { resultType: "complete", content: [{ type: "text", text: "ok" }] } }

const headerTool = {
  name: "query",
  inputSchema: {
    type: "object",
    properties: {
      region: { type: "string", "x-mcp-header": "Region" },
      priority: { type: "integer", "x-mcp-header": "Priority" },
      verbose: { type: ["boolean", "null"], "x-mcp-header": "Verbose" },
      debug: { type: "boolean", "x-mcp-header": "Debug" },
      method: { type: "string", "x-mcp-header": "Method" },
      greeting: { type: "string", "x-mcp-header": "Greeting" },
      padded: { type: "string", "x-mcp-header": "Padded" },
      tab: { type: "string", "x-mcp-header": "Tab" },
      lookalike: { type: "string", "x-mcp-header": "Lookalike" },
      empty: { type: "string", "x-mcp-header": "Empty" },
      scope: {
        type: "object",
        properties: { tenant: { type: "string", "x-mcp-header": "Tenant" } }
      },
      sql: { type: "string" },
      ratio: { type: "number" }
    }
  }
}

describe("McpHeaders value encoding (SEP-2243)", () => {
  it("keeps plain ASCII and encodes what a header cannot carry, as in the spec's table", () => {
    expect(McpHeaders.encodeValue("us-west1")).toBe("us-west1")
    expect(McpHeaders.encodeValue("us west 1")).toBe("us west 1")
    expect(McpHeaders.encodeValue("Hello, 世界")).toBe("=?base64?SGVsbG8sIOS4lueVjA==?=")
    expect(McpHeaders.encodeValue(" padded ")).toBe("=?base64?IHBhZGRlZCA=?=")
    expect(McpHeaders.encodeValue("line1\nline2")).toBe("=?base64?bGluZTEKbGluZTI=?=")
    expect(McpHeaders.encodeValue("=?base64?literal?=")).toBe("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=")
    expect(McpHeaders.encodeValue("a\tb")).toBe(`=?base64?${Buffer.from("a\tb").toString("base64")}?=`)
    for (const value of ["Hello, 世界", " padded ", "line1\r\nline2", "=?base64?literal?=", "plain"]) {
      expect(McpHeaders.decodeValue(McpHeaders.encodeValue(value))).toBe(value)
    }
  })

  it("rejects each kind of invalid x-mcp-header annotation with a reason", () => {
    const schema = (property: Record<string, unknown>, other?: Record<string, unknown>) => ({
      type: "object",
      properties: { a: property, ...(other === undefined ? {} : { b: other }) }
    })
    const invalid = [
      schema({ type: "string", "x-mcp-header": "" }),
      schema({ type: "string", "x-mcp-header": 7 }),
      schema({ type: "object", "x-mcp-header": "Data" }),
      schema({ type: "array", items: { type: "string" }, "x-mcp-header": "Items" }),
      schema({ type: "null", "x-mcp-header": "Nil" }),
      schema({ type: "number", "x-mcp-header": "Score" }),
      schema({ type: "string", "x-mcp-header": "Region" }, { type: "string", "x-mcp-header": "Region" }),
      schema({ type: "string", "x-mcp-header": "MyField" }, { type: "string", "x-mcp-header": "myfield" }),
      schema({ type: "string", "x-mcp-header": "My Region" }),
      schema({ type: "string", "x-mcp-header": "Region:Primary" }),
      schema({ type: "string", "x-mcp-header": "Région" }),
      schema({ type: "string", "x-mcp-header": "Region\t1" }),
      { type: "object", properties: { deep: { type: "object", properties: { x: { type: "number", "x-mcp-header": "X" } } } } }
    ]
    for (const inputSchema of invalid) {
      expect(Either.isLeft(McpHeaders.paramHeaders(inputSchema)), JSON.stringify(inputSchema)).toBe(true)
    }
    expect(McpHeaders.paramHeaders(headerTool.inputSchema)).toEqual(Either.right([
      { name: "Region", path: ["region"], type: "string" },
      { name: "Priority", path: ["priority"], type: "integer" },
      { name: "Verbose", path: ["verbose"], type: "boolean" },
      { name: "Debug", path: ["debug"], type: "boolean" },
      { name: "Method", path: ["method"], type: "string" },
      { name: "Greeting", path: ["greeting"], type: "string" },
      { name: "Padded", path: ["padded"], type: "string" },
      { name: "Tab", path: ["tab"], type: "string" },
      { name: "Lookalike", path: ["lookalike"], type: "string" },
      { name: "Empty", path: ["empty"], type: "string" },
      { name: "Tenant", path: ["scope", "tenant"], type: "string" }
    ]))
  })
})

describe("SEP-2243 headers on the 2026-07-28 wire", () => {
  it.scopedLive("Mcp-Method on every POST; Mcp-Name on tools/call, resources/read and prompts/get", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([{ name: "my-hyphenated-tool", inputSchema: { type: "object" } }], (r) =>
        r.body?.["method"] === "tools/call"
          ? ok
          : r.body?.["method"] === "resources/read"
          ? { result: { contents: [] } }
          : { result: { messages: [] } })
      const client = yield* connect(server.url)
      yield* client.listTools()
      yield* client.callTool("my-hyphenated-tool", {})
      yield* client.readResource("file:///path/to/file%20name.txt")
      yield* client.getPrompt("greet")
      const all = server.requests.filter((r) => r.method === "POST")
      expect(all.map((r) => r.headers["mcp-method"])).toEqual(all.map((r) => r.body?.["method"]))
      expect(all.map((r) => r.headers["mcp-method"])).toEqual([
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/read",
        "prompts/get"
      ])
      expect(all.map((r) => r.headers["mcp-name"])).toEqual([
        undefined,
        undefined,
        "my-hyphenated-tool",
        "file:///path/to/file%20name.txt",
        "greet"
      ])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("mirrors x-mcp-header arguments, encoded; null, absent and unannotated ones get no header", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([headerTool], () => ok)
      const client = yield* connect(server.url)
      yield* client.listTools()
      yield* client.callTool("query", {
        region: "us-west1",
        priority: 42,
        verbose: null,
        debug: false,
        method: "test-method",
        greeting: "Hello, 世界",
        padded: " padded ",
        tab: "\tindented",
        lookalike: "=?base64?literal?=",
        empty: "",
        scope: { tenant: "acme" },
        sql: "SELECT * FROM users",
        ratio: 3.14159
      })
      const [call] = posts(server, "tools/call")
      const headers = call!.headers
      expect(headers["mcp-param-region"]).toBe("us-west1")
      expect(headers["mcp-param-priority"]).toBe("42")
      expect(headers["mcp-param-debug"]).toBe("false")
      expect(headers["mcp-param-method"]).toBe("test-method")
      expect(headers["mcp-method"]).toBe("tools/call")
      expect(headers["mcp-param-greeting"]).toBe("=?base64?SGVsbG8sIOS4lueVjA==?=")
      expect(headers["mcp-param-padded"]).toBe("=?base64?IHBhZGRlZCA=?=")
      expect(McpHeaders.decodeValue(headers["mcp-param-tab"] as string)).toBe("\tindented")
      expect(headers["mcp-param-tab"]).toMatch(/^=\?base64\?/)
      expect(headers["mcp-param-lookalike"]).toBe("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=")
      expect(headers["mcp-param-empty"]).toBe("")
      expect(headers["mcp-param-tenant"]).toBe("acme")
      expect("mcp-param-verbose" in headers).toBe(false)
      expect(Object.keys(headers).filter((h) => h.startsWith("mcp-param-")).sort()).toEqual([
        "mcp-param-debug",
        "mcp-param-empty",
        "mcp-param-greeting",
        "mcp-param-lookalike",
        "mcp-param-method",
        "mcp-param-padded",
        "mcp-param-priority",
        "mcp-param-region",
        "mcp-param-tab",
        "mcp-param-tenant"
      ])
      // the body is sent unchanged
      expect((paramsOf(call!)["arguments"] as Record<string, unknown>)["greeting"]).toBe("Hello, 世界")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("tools with invalid annotations are left out of listTools and are never called", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([
        { name: "valid_tool", inputSchema: { type: "object", properties: { r: { type: "string", "x-mcp-header": "Region" } } } },
        { name: "number_header", inputSchema: { type: "object", properties: { s: { type: "number", "x-mcp-header": "Score" } } } },
        { name: "colon_header", inputSchema: { type: "object", properties: { s: { type: "string", "x-mcp-header": "A:B" } } } }
      ], () => ok)
      const client = yield* connect(server.url)
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["valid_tool"])
      const error = yield* Effect.flip(client.callTool("number_header", { s: 1.5 }))
      expect(error._tag).toBe("McpError")
      expect(error._tag === "McpError" && error.code).toBe(-32602)
      expect(error.message).toContain("number_header")
      yield* client.callTool("valid_tool", { r: "eu" })
      expect(posts(server, "tools/call").map((r) => paramsOf(r)["name"])).toEqual(["valid_tool"])
      expect(posts(server, "tools/call")[0]!.headers["mcp-param-region"]).toBe("eu")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a HeaderMismatch on a tool the client had not listed: list the tools, retry once with the headers", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer(
        [{ name: "regional", inputSchema: { type: "object", properties: { r: { type: "string", "x-mcp-header": "Region" } } } }],
        (request) =>
          request.headers["mcp-param-region"] === "eu"
            ? ok
            : { status: 400, error: { code: -32001, message: "Header mismatch: Mcp-Param-Region missing" } }
      )
      const client = yield* connect(server.url)
      const result = yield* client.callTool("regional", { r: "eu" })
      expect(result.content).toEqual([{ type: "text", text: "ok" }])
      expect(posts(server, "tools/list")).toHaveLength(1)
      expect(posts(server, "tools/call").map((r) => r.headers["mcp-param-region"])).toEqual([undefined, "eu"])
      // a known tool is not retried: the mismatch is the caller's to see
      const again = yield* Effect.flip(client.callTool("regional", { r: "us" }))
      expect(again._tag === "McpError" && again.code).toBe(-32001)
      expect(posts(server, "tools/list")).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("an argument that cannot be mirrored is a typed error and nothing is sent", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([headerTool], () => ok)
      const client = yield* connect(server.url)
      yield* client.listTools()
      const notPrimitive = yield* Effect.flip(client.callTool("query", { region: { nested: true } }))
      expect(notPrimitive._tag === "McpError" && notPrimitive.code).toBe(-32602)
      const unsafeInteger = yield* Effect.flip(client.callTool("query", { priority: 2 ** 60 }))
      expect(unsafeInteger._tag === "McpError" && unsafeInteger.code).toBe(-32602)
      expect(posts(server, "tools/call")).toHaveLength(0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("on the 2025-11-25 wire: no standard headers, no mirroring, no tool left out", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res) => {
            const method = request.body?.["method"]
            if (method !== "tools/list" && method !== "tools/call") return false
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify({
              jsonrpc: "2.0",
              id: request.body?.["id"],
              result: method === "tools/list"
                ? { tools: [headerTool, { name: "odd", inputSchema: { type: "object", properties: { s: { type: "number", "x-mcp-header": "S" } } } }] }
                : { content: [] }
            }))
            return true
          })
        ),
        (s) => Effect.promise(() => s.close())
      )
      const client = yield* McpClient.connect(new URL(server.url), { standaloneStream: false })
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["query", "odd"])
      yield* client.callTool("query", { region: "us-west1" })
      for (const request of server.requests.filter((r) => r.method === "POST")) {
        expect(Object.keys(request.headers).filter((h) => h.startsWith("mcp-method") || h.startsWith("mcp-param") || h === "mcp-name")).toEqual([])
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
