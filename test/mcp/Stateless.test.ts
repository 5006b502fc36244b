/**
 * The stateless 2026-07-28 wire (MCP SEP-2575): no initialize; every request carries the
 * MCP-Protocol-Version header and `_meta` with protocol version, client info and capabilities; a
 * -32022 answer (HTTP 400) lists the supported versions and the client retries once.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type * as http from "node:http"
import * as McpClient from "../../src/mcp/McpClient.js"
import type { RawRequest } from "./fixtures/rawServer.js"
import { startRawServer } from "./fixtures/rawServer.js"

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
  return true
}

const META = ["io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientInfo", "io.modelcontextprotocol/clientCapabilities"]

/** A stateless server that rejects the first request with -32022, as the conformance suite does. */
const statelessHandler = () => {
  let rejected = false
  return (request: RawRequest, res: http.ServerResponse): boolean => {
    const body = request.body ?? {}
    const id = body["id"] ?? null
    const params = (body["params"] ?? {}) as Record<string, unknown>
    const meta = (params["_meta"] ?? {}) as Record<string, unknown>
    const header = request.headers["mcp-protocol-version"]
    if (header === undefined) {
      return json(res, 400, { jsonrpc: "2.0", id, error: { code: -32020, message: "Missing MCP-Protocol-Version header" } })
    }
    if (META.some((k) => meta[k] === undefined) || meta[META[0]!] !== header) {
      return json(res, 400, { jsonrpc: "2.0", id, error: { code: -32602, message: "missing _meta" } })
    }
    if (!rejected) {
      rejected = true
      return json(res, 400, {
        jsonrpc: "2.0",
        id,
        error: { code: -32022, message: "Unsupported protocol version", data: { supported: ["2026-07-28"] } }
      })
    }
    switch (body["method"]) {
      case "server/discover":
        return json(res, 200, {
          jsonrpc: "2.0",
          id,
          result: {
            resultType: "complete",
            supportedVersions: ["2026-07-28"],
            capabilities: { tools: {} },
            _meta: { "io.modelcontextprotocol/serverInfo": { name: "stateless", version: "9.9.9" } }
          }
        })
      case "tools/list":
        return json(res, 200, {
          jsonrpc: "2.0",
          id,
          result: { resultType: "complete", tools: [{ name: "echo", inputSchema: { type: "object" } }] }
        })
      default:
        return json(res, 404, { jsonrpc: "2.0", id, error: { code: -32601, message: "Method not found" } })
    }
  }
}

describe("stateless protocol (SEP-2575, 2026-07-28)", () => {
  it.scopedLive("sends no initialize, stamps every request, and retries once on -32022", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startRawServer(statelessHandler())),
        (s) => Effect.promise(() => s.close())
      )
      const client = yield* McpClient.connect(new URL(server.url), {
        protocolVersion: "2026-07-28",
        clientInfo: { name: "stateless-test", version: "1.0.0" }
      })
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["echo"])
      expect(client.serverInfo).toEqual({ name: "stateless", version: "9.9.9" })
      expect(client.protocolVersion).toBe("2026-07-28")
      const methods = server.requests.filter((r) => r.method === "POST").map((r) => r.body?.["method"])
      expect(methods).toEqual(["server/discover", "server/discover", "tools/list"])
      for (const request of server.requests.filter((r) => r.method === "POST")) {
        expect(request.headers["mcp-protocol-version"]).toBe("2026-07-28")
        const meta = ((request.body?.["params"] ?? {}) as Record<string, Record<string, unknown>>)["_meta"]!
        expect(meta["io.modelcontextprotocol/clientInfo"]).toEqual({ name: "stateless-test", version: "1.0.0" })
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a -32022 that lists no version this client speaks is a typed McpError", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res) =>
            json(res, 400, {
              jsonrpc: "2.0",
              id: request.body?.["id"] ?? null,
              error: { code: -32022, message: "Unsupported protocol version", data: { supported: ["2099-01-01"] } }
            })
          )
        ),
        (s) => Effect.promise(() => s.close())
      )
      const error = yield* Effect.flip(McpClient.connect(new URL(server.url), { protocolVersion: "2026-07-28" }))
      expect(error._tag).toBe("McpError")
      expect(error._tag === "McpError" && error.code).toBe(-32022)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
