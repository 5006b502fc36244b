/**
 * Deeply nested JSON (`[[[[…]]]]`, 10 KB and 1 MB) from a server — in a result, in an error's
 * data, in a notification, as the message itself — is a value or a typed error at the
 * `McpClient` API, never a defect (`RangeError: Maximum call stack size exceeded`); the same
 * nesting sent to `McpEndpoint` as tool arguments gets a JSON-RPC answer, never a 500.
 */
import type { HttpClient } from "@effect/platform"
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Queue, Schema, Scope } from "effect"
import * as http from "node:http"
import * as McpClient from "../../src/mcp/McpClient.js"
import { McpError, McpTransportError } from "../../src/mcp/McpErrors.js"
import { McpEndpoint } from "../../src/server/index.js"
import type { Handler } from "./fixtures/rawServer.js"
import { startRawServer } from "./fixtures/rawServer.js"

const run = <A, E>(body: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>) =>
  Effect.scoped(body).pipe(Effect.provide(NodeHttpClient.layerUndici))

const raw = (handler: Handler) =>
  Effect.acquireRelease(Effect.promise(() => startRawServer(handler, { sessionId: "deep" })), (server) =>
    Effect.promise(() => server.close()))

/** `[[[…]]]` of `bytes` characters, as JSON text. */
const nested = (bytes: number): string => "[".repeat(bytes / 2) + "]".repeat(bytes / 2)

const sizes = [["10 KB", 10_000], ["1 MB", 1_000_000]] as const

/** Answer `tools/call` with the JSON text `body(id)`. */
const answerCall = (body: (id: string) => string): Handler => (request, res: http.ServerResponse) => {
  if (request.body?.["method"] !== "tools/call") return false
  res.writeHead(200, { "content-type": "application/json" })
  res.end(body(JSON.stringify(request.body["id"])))
  return true
}

/** The exit of `effect`, which must not be a defect. */
const noDefect = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(effect)
    if (Exit.isFailure(exit)) expect(Cause.isFailType(exit.cause), Cause.pretty(exit.cause).slice(0, 500)).toBe(true)
    return exit
  })

describe("deeply nested JSON from an MCP server", () => {
  for (const [label, bytes] of sizes) {
    it.live(`${label} where the result's content should be: a typed Decode error`, () =>
      run(Effect.gen(function*() {
        const deep = nested(bytes)
        const server = yield* raw(answerCall((id) => `{"jsonrpc":"2.0","id":${id},"result":{"content":${deep}}}`))
        const client = yield* McpClient.connect(server.url)
        const exit = yield* noDefect(client.callTool("deep"))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
        expect(error?._tag === "Some" && error.value).toBeInstanceOf(McpTransportError)
        expect(error?._tag === "Some" && error.value._tag === "McpTransportError" && error.value.reason).toBe("Decode")
      })))

    it.live(`${label} in a result's structuredContent: the result, as sent`, () =>
      run(Effect.gen(function*() {
        const deep = nested(bytes)
        const server = yield* raw(
          answerCall((id) => `{"jsonrpc":"2.0","id":${id},"result":{"content":[],"structuredContent":{"deep":${deep}}}}`)
        )
        const client = yield* McpClient.connect(server.url)
        const exit = yield* noDefect(client.callTool("deep"))
        expect(Exit.isSuccess(exit)).toBe(true)
      })))

    it.live(`${label} in an error's data: the McpError`, () =>
      run(Effect.gen(function*() {
        const deep = nested(bytes)
        const server = yield* raw(
          answerCall((id) => `{"jsonrpc":"2.0","id":${id},"error":{"code":-32000,"message":"deep","data":${deep}}}`)
        )
        const client = yield* McpClient.connect(server.url)
        const exit = yield* noDefect(client.callTool("deep"))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
        expect(error?._tag === "Some" && error.value).toBeInstanceOf(McpError)
        expect(error?._tag === "Some" && error.value.message).toBe("deep")
      })))

    it.live(`${label} as the whole message: a typed Decode error`, () =>
      run(Effect.gen(function*() {
        const deep = nested(bytes)
        const server = yield* raw(answerCall(() => deep))
        const client = yield* McpClient.connect(server.url)
        const exit = yield* noDefect(client.callTool("deep"))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
        expect(error?._tag === "Some" && error.value._tag === "McpTransportError" && error.value.reason).toBe("Decode")
      })))

    it.live(`${label} in a notification and an unreadable progress notification: delivered, the session goes on`, () =>
      run(Effect.gen(function*() {
        const deep = nested(bytes)
        const server = yield* raw((request, res) => {
          if (request.body?.["method"] !== "tools/call") return false
          const id = JSON.stringify(request.body["id"])
          res.writeHead(200, { "content-type": "text/event-stream" })
          res.write(`data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":${deep}}}\n\n`)
          res.write(`data: {"jsonrpc":"2.0","method":"notifications/progress","params":${deep}}\n\n`)
          res.end(`data: {"jsonrpc":"2.0","id":${id},"result":{"content":[]}}\n\n`)
          return true
        })
        const client = yield* McpClient.connect(server.url)
        const events = yield* client.subscribe
        const exit = yield* noDefect(client.callTool("deep", {}, { onProgress: () => Effect.void }))
        expect(Exit.isSuccess(exit)).toBe(true)
        const seen = yield* Queue.takeAll(events)
        expect([...seen].map((n) => n.method)).toEqual(["notifications/message", "notifications/progress"])
        yield* client.ping()
      })))
  }
})

describe("deeply nested JSON sent by the client", () => {
  it.live("tool arguments too deep to encode: a typed Protocol error before anything is sent", () =>
    run(Effect.gen(function*() {
      const server = yield* raw(answerCall((id) => `{"jsonrpc":"2.0","id":${id},"result":{"content":[]}}`))
      const client = yield* McpClient.connect(server.url)
      const deep: unknown = JSON.parse(nested(10_000))
      const exit = yield* noDefect(client.callTool("deep", { value: deep }))
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error?._tag === "Some" && error.value._tag === "McpTransportError" && error.value.reason).toBe("Protocol")
      expect(server.requests.some((r) => r.body?.["method"] === "tools/call")).toBe(false)
      yield* client.ping()
    })))

  const endpoint = McpEndpoint.make({
    name: "deep",
    tools: [
      McpEndpoint.tool({
        name: "typed",
        parameters: Schema.Struct({ value: Schema.String }),
        handler: ({ value }) => Effect.succeed(value)
      }),
      McpEndpoint.tool({
        name: "echo",
        parameters: Schema.Struct({ value: Schema.Unknown }),
        handler: ({ value }) => Effect.succeed({ value })
      })
    ]
  })

  /** POST `body` to the endpoint on loopback; the status and the JSON answer. */
  const post = (body: string) =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => http.createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(endpoint)
      const response = yield* Effect.promise(() =>
        fetch(`${HttpServer.formatAddress(server.address)}/`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body
        })
      )
      const text = yield* Effect.promise(() => response.text())
      return { status: response.status, answer: JSON.parse(text) as Record<string, unknown> }
    })

  const call = (params: string) => `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":${params}}`

  for (const [label, bytes] of [["10 KB", 10_000], ["1 MB", 1_000_000]] as const) {
    it.scopedLive(`${label} of nesting in McpEndpoint tool arguments: invalid arguments, an isError result`, () =>
      Effect.gen(function*() {
        const { status, answer } = yield* post(call(`{"name":"typed","arguments":{"value":${nested(bytes)}}}`))
        expect(status).toBe(200)
        expect(answer["result"]).toMatchObject({ isError: true })
      }))

    it.scopedLive(`${label} of nesting as a tool name: -32602, not a 500`, () =>
      Effect.gen(function*() {
        const { status, answer } = yield* post(call(`{"name":${nested(bytes)}}`))
        expect(status).toBe(200)
        expect(answer["error"]).toMatchObject({ code: -32602 })
      }))

    it.scopedLive(`${label} of nesting echoed by a tool: a JSON-RPC answer, not a 500`, () =>
      Effect.gen(function*() {
        const { status, answer } = yield* post(call(`{"name":"echo","arguments":{"value":${nested(bytes)}}}`))
        expect(status).toBe(200)
        expect(answer["id"]).toBe(7)
        expect(answer["result"] ?? answer["error"]).toBeDefined()
      }))
  }
})
