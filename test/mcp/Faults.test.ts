import type { HttpClient } from "@effect/platform"
import { HttpClient as Client } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import type * as http from "node:http"
import * as Auth from "../../src/mcp/Auth.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpError, McpTransportError } from "../../src/mcp/McpErrors.js"
import * as McpSchema from "../../src/mcp/McpSchema.js"
import type { Handler, RawRequest } from "./fixtures/rawServer.js"
import { startRawServer } from "./fixtures/rawServer.js"

const run = <A, E>(body: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>) =>
  Effect.scoped(body).pipe(Effect.provide(NodeHttpClient.layerUndici))

const raw = (handler: Handler, options: { readonly sessionId?: string; readonly protocolVersion?: string } = {}) =>
  Effect.acquireRelease(Effect.promise(() => startRawServer(handler, options)), (server) =>
    Effect.promise(() => server.close()))

const rpcMethod = (request: RawRequest): unknown => request.body?.["method"]

const json = (res: http.ServerResponse, status: number, body: unknown, type = "application/json") => {
  res.writeHead(status, { "content-type": type })
  res.end(typeof body === "string" ? body : JSON.stringify(body))
  return true
}

const sse = (res: http.ServerResponse) => {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  res.flushHeaders()
}

/** Runs `effect`, which must fail with a transport error of `reason`, well before the timeout. */
const expectTransportError = <A, R>(
  effect: Effect.Effect<A, McpClient.McpClientError, R>,
  reason: McpTransportError["reason"]
) =>
  Effect.gen(function*() {
    const started = Date.now()
    const error = yield* Effect.flip(effect)
    expect(error).toBeInstanceOf(McpTransportError)
    expect(error._tag === "McpTransportError" ? error.reason : error._tag).toBe(reason)
    expect(Date.now() - started).toBeLessThan(5_000)
    return error as McpTransportError
  })

const slow = { requestTimeout: "30 seconds" } as const

describe("typed failures, never a hang", () => {
  it.live("malformed JSON-RPC bodies are Decode / Protocol errors", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) !== "tools/call") return false
        const name = (request.body?.["params"] as { name: string }).name
        const id = request.body?.["id"]
        switch (name) {
          case "no-id":
            return json(res, 200, { jsonrpc: "2.0", result: {} })
          case "not-json":
            return json(res, 200, "this is not json {")
          case "other-id":
            return json(res, 200, { jsonrpc: "2.0", id: 987654, result: { content: [] } })
          case "bad-result":
            return json(res, 200, { jsonrpc: "2.0", id, result: { content: "not an array" } })
          case "sse-garbage":
            sse(res)
            res.end("data: {\"jsonrpc\": \"2.0\", \"id\": \n\n")
            return true
          case "text-plain":
            return json(res, 200, "hello", "text/plain")
        }
        return false
      }, { sessionId: "s-1" })
      const client = yield* McpClient.connect(server.url, slow)
      const noId = yield* expectTransportError(client.callTool("no-id"), "Decode")
      expect(noId.description).toContain("Not a JSON-RPC 2.0 message")
      yield* expectTransportError(client.callTool("not-json"), "Decode")
      yield* expectTransportError(client.callTool("other-id"), "Protocol")
      const bad = yield* expectTransportError(client.callTool("bad-result"), "Decode")
      expect(bad.description).toContain("tools/call")
      yield* expectTransportError(client.callTool("sse-garbage"), "Decode")
      yield* expectTransportError(client.callTool("text-plain"), "Protocol")
      // the session is still usable afterwards
      yield* client.ping()
    })))

  it.live("an HTML 500 error page is a typed Http error naming the page", () =>
    run(Effect.gen(function*() {
      const page = "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>" +
        "<body><h1>Oops</h1><p>nginx</p></body></html>"
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) === "tools/list" || request.url.startsWith("/broken")) {
          return json(res, 500, page, "text/html; charset=utf-8")
        }
        return false
      })
      const client = yield* McpClient.connect(server.url, slow)
      const error = yield* expectTransportError(client.listTools(), "Http")
      expect(error.status).toBe(500)
      expect(error.description).toContain("HTML error page \"500 Internal Server Error\"")
      expect(error.description).not.toContain("<body>")
      // a broken initialize fails connect itself
      const failed = yield* expectTransportError(McpClient.connect(`${server.origin}/broken/mcp`, slow), "Http")
      expect(failed.status).toBe(500)
    })))

  it.live("a JSON-RPC error is an McpError with code, message and data", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) =>
        rpcMethod(request) === "tools/call" &&
        json(res, 200, {
          jsonrpc: "2.0",
          id: request.body?.["id"],
          error: { code: -32602, message: "Unknown tool: nope", data: { tool: "nope" } }
        })
      )
      const client = yield* McpClient.connect(server.url, slow)
      const error = yield* Effect.flip(client.callTool("nope"))
      expect(error).toBeInstanceOf(McpError)
      expect(error).toMatchObject({ code: -32602, message: "Unknown tool: nope", data: { tool: "nope" } })
    })))

  it.live("an SSE stream that closes before the response (no event id) is a Closed error", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) !== "tools/call") return false
        sse(res)
        res.write(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "x" } })}\n\n`)
        const name = (request.body?.["params"] as { name: string }).name
        if (name === "reset") setTimeout(() => res.destroy(), 20)
        else setTimeout(() => res.end(), 20)
        return true
      })
      const client = yield* McpClient.connect(server.url, slow)
      const ended = yield* expectTransportError(client.callTool("end"), "Closed")
      expect(ended.description).toContain("closed before its response")
      yield* expectTransportError(client.callTool("reset"), "Closed")
    })))

  it.live("a server that never answers hits the request timeout, and the client sends notifications/cancelled", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) !== "tools/call") return false
        sse(res) // …and never a byte more
        return true
      })
      const client = yield* McpClient.connect(server.url, slow)
      const started = Date.now()
      const error = yield* Effect.flip(client.callTool("forever", {}, { timeout: "300 millis" }))
      expect(error._tag === "McpTransportError" && error.reason).toBe("Timeout")
      expect(Date.now() - started).toBeLessThan(3_000)
      yield* Effect.sleep("200 millis")
      const call = server.requests.find((r) => rpcMethod(r) === "tools/call")
      const cancelled = server.requests.find((r) => rpcMethod(r) === "notifications/cancelled")
      expect(cancelled?.body?.["params"]).toMatchObject({ requestId: call?.body?.["id"], reason: "timeout" })
    })))

  it.live("SSE resumption: waits the server's retry, then GETs with Last-Event-ID (conformance sse-retry)", () =>
    run(Effect.gen(function*() {
      let closedAt = 0
      let pendingId: unknown = undefined
      const server = yield* raw((request, res) => {
        if (request.method === "GET") {
          sse(res)
          res.write(`id: get-${request.headers["last-event-id"] ?? "none"}\nretry: 500\ndata: \n\n`)
          if (request.headers["last-event-id"] !== undefined && pendingId !== undefined) {
            const result = { content: [{ type: "text", text: "Reconnection test completed successfully" }] }
            res.write(`event: message\nid: ev-2\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: pendingId, result })}\n\n`)
            pendingId = undefined
          }
          return true // the GET stream stays open, as the conformance server does
        }
        if (rpcMethod(request) !== "tools/call") return false
        pendingId = request.body?.["id"]
        sse(res)
        res.write("id: ev-1\nretry: 500\ndata: \n\n")
        setTimeout(() => {
          closedAt = performance.now()
          res.end()
        }, 50)
        return true
      }, { sessionId: "session-retry", protocolVersion: "2025-03-26" })
      const client = yield* McpClient.connect(server.origin, slow)
      expect(client.protocolVersion).toBe("2025-03-26")
      const result = yield* client.callTool("test_reconnection")
      expect(result.content).toEqual([{ type: "text", text: "Reconnection test completed successfully" }])
      const resumed = server.requests.filter((r) => r.method === "GET" && r.headers["last-event-id"] !== undefined)
      expect(resumed).toHaveLength(1)
      expect(resumed[0]!.headers["last-event-id"]).toBe("ev-1")
      expect(resumed[0]!.headers["mcp-session-id"]).toBe("session-retry")
      expect(resumed[0]!.headers["mcp-protocol-version"]).toBe("2025-03-26")
      const delay = resumed[0]!.at - closedAt
      expect(delay).toBeGreaterThanOrEqual(450)
      expect(delay).toBeLessThan(700)
    })))

  it.live("a resumption the server refuses is a typed error, not a hang", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) !== "tools/call") return false
        sse(res)
        res.write("id: only-1\nretry: 50\ndata: \n\n")
        setTimeout(() => res.end(), 10)
        return true
      })
      const client = yield* McpClient.connect(server.url, { ...slow, standaloneStream: false })
      const error = yield* expectTransportError(client.callTool("x"), "Http")
      expect(error.status).toBe(405)
    })))

  it.live("protocol version negotiation: older revisions accepted, unknown ones refused", () =>
    run(Effect.gen(function*() {
      for (const version of ["2025-06-18", "2025-03-26", "2024-11-05"]) {
        const server = yield* raw(() => false, { protocolVersion: version })
        const client = yield* McpClient.connect(server.url, slow)
        expect(client.protocolVersion).toBe(version)
        expect(server.requests[0]!.body?.["params"]).toMatchObject({ protocolVersion: McpSchema.LATEST_PROTOCOL_VERSION })
      }
      const server = yield* raw(() => false, { protocolVersion: "1999-01-01", sessionId: "s-old" })
      const error = yield* expectTransportError(McpClient.connect(server.url, slow), "UnsupportedVersion")
      expect(error.description).toContain("1999-01-01")
      expect(server.requests.some((r) => rpcMethod(r) === "notifications/initialized")).toBe(false)
      // the failed session is released at once, not when the caller's scope ends
      expect(server.requests.filter((r) => r.method === "DELETE").map((r) => r.headers["mcp-session-id"])).toEqual([
        "s-old"
      ])
    })))

  it.live("a 404 on a session is SessionExpired", () =>
    run(Effect.gen(function*() {
      const server = yield* raw((request, res) =>
        rpcMethod(request) === "tools/list" && json(res, 404, { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } })
      , { sessionId: "gone" })
      const client = yield* McpClient.connect(server.url, slow)
      yield* expectTransportError(client.listTools(), "SessionExpired")
    })))

  it.live("server→client requests: ping answered, unknown methods and missing handlers get -32601", () =>
    run(Effect.gen(function*() {
      const answers = new Map<unknown, Record<string, unknown>>()
      let callRes: http.ServerResponse | undefined = undefined
      let callId: unknown = undefined
      const server = yield* raw((request, res) => {
        if (rpcMethod(request) === "tools/call") {
          callRes = res
          callId = request.body?.["id"]
          sse(res)
          res.write(`data: ${JSON.stringify({ jsonrpc: "2.0", id: "srv-ping", method: "ping" })}\n\n`)
          res.write(`data: ${JSON.stringify({ jsonrpc: "2.0", id: "srv-x", method: "unknown/thing" })}\n\n`)
          res.write(`data: ${JSON.stringify({ jsonrpc: "2.0", id: "srv-e", method: "elicitation/create", params: { message: "?", requestedSchema: { type: "object", properties: {} } } })}\n\n`)
          return true
        }
        const body = request.body
        if (request.method === "POST" && body !== undefined && "id" in body && !("method" in body)) {
          answers.set(body["id"], body)
          res.writeHead(202).end()
          if (answers.size === 3 && callRes !== undefined) {
            callRes.end(`data: ${JSON.stringify({ jsonrpc: "2.0", id: callId, result: { content: [] } })}\n\n`)
          }
          return true
        }
        return false
      })
      const client = yield* McpClient.connect(server.url, slow)
      const init = server.requests.find((r) => rpcMethod(r) === "initialize")
      expect((init?.body?.["params"] as { capabilities: unknown }).capabilities).toEqual({})
      yield* client.callTool("x")
      expect(answers.get("srv-ping")).toMatchObject({ result: {} })
      expect(answers.get("srv-x")).toMatchObject({ error: { code: -32601 } })
      expect(answers.get("srv-e")).toMatchObject({ error: { code: -32601 } })
    })))

  it.live("a bearer token goes on every request to the server, and to no other origin", () =>
    run(Effect.gen(function*() {
      const server = yield* raw(() => false, { sessionId: "s-auth" })
      const other = yield* raw(() => false)
      const scope = yield* Scope.make()
      const client = yield* McpClient.connect(server.url, { ...slow, auth: "secret-token" }).pipe(Scope.extend(scope))
      yield* client.ping()
      yield* Effect.sleep("100 millis") // let the GET stream attempt happen
      yield* Scope.close(scope, Exit.void)
      const methods = new Set(server.requests.map((r) => r.method))
      expect([...methods].sort()).toEqual(["DELETE", "GET", "POST"])
      expect(server.requests.every((r) => r.headers["authorization"] === "Bearer secret-token")).toBe(true)
      // the same transformation never sends the token elsewhere
      const signed = Auth.bearer("secret-token", server.origin)(yield* Client.HttpClient)
      yield* signed.get(`${other.origin}/anything`).pipe(Effect.scoped)
      expect(other.requests[0]!.headers["authorization"]).toBeUndefined()
    })))

  it.live("targets that name no transport are typed errors", () =>
    (Effect.gen(function*() {
      yield* expectTransportError(McpClient.connect("ftp://example.invalid/x", slow), "Protocol")
      yield* expectTransportError(McpClient.connect("./server.rb", slow), "Protocol")
      yield* expectTransportError(McpClient.connect({ url: "not a url" }, slow), "Protocol")
      // a port nobody listens on: Closed (connection refused), quickly
      const refused = yield* Effect.flip(McpClient.connect("http://127.0.0.1:9/mcp", slow))
      expect(refused._tag).toBe("McpTransportError")
    }).pipe(Effect.scoped, Effect.provide([NodeHttpClient.layerUndici, NodeContext.layer]))))
})
