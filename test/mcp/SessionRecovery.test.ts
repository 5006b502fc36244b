/**
 * Streamable HTTP session management: a 404 to a request carrying `Mcp-Session-Id` means the
 * server ended the session; the client MUST start a new one with a fresh `initialize`. The request
 * is retried once in the new session, subscribers see `SESSION_RESTARTED`, and a second 404 is a
 * typed `SessionExpired`.
 */
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Queue, Scope } from "effect"
import type * as http from "node:http"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpTransportError } from "../../src/mcp/McpErrors.js"
import { startRawServer } from "./fixtures/rawServer.js"
import { hostStreamableHttp } from "./fixtures/sdkServer.js"
import { hosted } from "./helpers.js"

const run = <A, E>(body: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>) =>
  Effect.scoped(body).pipe(Effect.provide(NodeHttpClient.layerUndici))

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): unknown => result.content[0]

describe("a session the server ended (404) is re-initialized", () => {
  it.live("the official SDK server restarted: the call is retried in a new session, handlers kept, subscribers told", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const asked: Array<string> = []
      const client = yield* McpClient.connect(server.url, {
        clientInfo: { name: "recovering-client", version: "1.0.0" },
        handlers: {
          elicitation: (params) =>
            Effect.sync(() => {
              asked.push(params.message)
              return { action: "accept", content: { name: "Ada" } }
            })
        }
      })
      const events = yield* client.subscribe
      expect(textOf(yield* client.callTool("add", { a: 1, b: 2 }))).toEqual({ type: "text", text: "3" })
      const firstSession = server.requests.at(-1)!.headers["mcp-session-id"]

      yield* Effect.promise(() => server.restart())
      expect(server.sessions()).toBe(0)

      expect(textOf(yield* client.callTool("add", { a: 2, b: 3 }))).toEqual({ type: "text", text: "5" })
      expect(server.sessions()).toBe(1)
      const initializes = server.requests.filter((r) => r.method === "POST" && r.headers["mcp-session-id"] === undefined)
      expect(initializes).toHaveLength(2)
      const secondSession = server.requests.at(-1)!.headers["mcp-session-id"]
      expect(secondSession).toBeDefined()
      expect(secondSession).not.toBe(firstSession)

      // the elicitation handler is still declared (the SDK server elicits only from clients that did)
      expect(textOf(yield* client.callTool("ask"))).toEqual({ type: "text", text: "hello Ada" })
      expect(asked).toEqual(["What is your name?"])

      const all = yield* Queue.takeAll(events)
      const restarted = [...all].filter(McpClient.isSessionRestarted)
      expect(restarted).toHaveLength(1)
      expect(restarted[0]!.method).toBe(McpClient.SESSION_RESTARTED)
      expect(restarted[0]!.params).toMatchObject({ initializeResult: { serverInfo: { name: "fixture-server" } } })
      expect(client.serverInfo.name).toBe("fixture-server")
    })))

  it.live("concurrent requests that all see the 404 share one new session", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostStreamableHttp())
      const client = yield* McpClient.connect(server.url)
      yield* client.ping()
      yield* Effect.promise(() => server.restart())
      const results = yield* Effect.all(
        Array.from({ length: 5 }, (_, i) => client.callTool("add", { a: i, b: 1 })),
        { concurrency: "unbounded" }
      )
      expect(results.map(textOf)).toEqual([1, 2, 3, 4, 5].map((n) => ({ type: "text", text: String(n) })))
      const initializes = server.requests.filter((r) => r.method === "POST" && r.headers["mcp-session-id"] === undefined)
      expect(initializes).toHaveLength(2)
      expect(server.sessions()).toBe(1)
    })))

  it.live("a server that always answers 404: one fresh initialize, one retry, then a typed SessionExpired", () =>
    run(Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res: http.ServerResponse) => {
            if (request.body?.["method"] !== "tools/list") return false
            res.writeHead(404, { "content-type": "application/json" })
            res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }))
            return true
          }, { sessionId: "always-gone" })
        ),
        (s) => Effect.promise(() => s.close())
      )
      const client = yield* McpClient.connect(server.url, { requestTimeout: "10 seconds" })
      const error = yield* Effect.flip(client.listTools())
      expect(error).toBeInstanceOf(McpTransportError)
      expect(error._tag === "McpTransportError" && error.reason).toBe("SessionExpired")
      expect(error._tag === "McpTransportError" && error.status).toBe(404)
      const methods = server.requests.filter((r) => r.method === "POST").map((r) => r.body?.["method"])
      expect(methods).toEqual([
        "initialize",
        "notifications/initialized",
        "tools/list",
        "initialize",
        "notifications/initialized",
        "tools/list"
      ])
      // the fresh initialize goes without the ended session's id
      const inits = server.requests.filter((r) => r.body?.["method"] === "initialize")
      expect(inits.map((r) => r.headers["mcp-session-id"])).toEqual([undefined, undefined])
    })))

  it.live("a session that ends while an answer streams: that request fails Closed and is not sent again; the next request starts a new session", () =>
    run(Effect.gen(function*() {
      let ended = false
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res: http.ServerResponse) => {
            const method = request.body?.["method"]
            if (method === "initialize") {
              ended = false
              return false
            }
            if (request.method === "POST" && ended && request.headers["mcp-session-id"] !== undefined) {
              res.writeHead(404, { "content-type": "application/json" })
              res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }))
              return true
            }
            if (request.method === "GET" && request.headers["last-event-id"] !== undefined) {
              ended = true
              res.writeHead(404).end()
              return true
            }
            if (method === "tools/call") {
              const name = (request.body?.["params"] as { name: string }).name
              if (name === "interrupted") {
                res.writeHead(200, { "content-type": "text/event-stream" })
                res.end(`id: e1\nretry: 10\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "working" } })}\n\n`)
                return true
              }
              res.writeHead(200, { "content-type": "application/json" })
              res.end(JSON.stringify({ jsonrpc: "2.0", id: request.body?.["id"], result: { content: [{ type: "text", text: "ok" }] } }))
              return true
            }
            return false
          }, { sessionId: "s-1" })
        ),
        (s) => Effect.promise(() => s.close())
      )
      const client = yield* McpClient.connect(server.url, { requestTimeout: "10 seconds" })
      const error = yield* Effect.flip(client.callTool("interrupted"))
      expect(error._tag === "McpTransportError" && error.reason).toBe("Closed")
      const calls = (name: string) =>
        server.requests.filter((r) =>
          r.body?.["method"] === "tools/call" && (r.body["params"] as { name: string }).name === name
        ).length
      expect(calls("interrupted")).toBe(1)
      expect(textOf(yield* client.callTool("after"))).toEqual({ type: "text", text: "ok" })
      expect(server.requests.filter((r) => r.body?.["method"] === "initialize")).toHaveLength(2)
      expect(calls("after")).toBe(2)
    })))
})
