/**
 * SEP-2322 multi round-trip requests on the 2026-07-28 wire: an `InputRequiredResult` is
 * answered from the client's handlers and the request retried with a new id, `inputResponses`
 * and the exact `requestState`; no state is invented; a parallel request carries none of it; a
 * result without `resultType` is complete; the rounds are bounded.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as McpClient from "../../src/mcp/McpClient.js"
import type { McpSchema } from "../../src/mcp/index.js"
import { startRawServer } from "./fixtures/rawServer.js"
import type { Answer } from "./fixtures/statelessServer.js"
import { paramsOf, posts, statelessServer } from "./fixtures/statelessServer.js"

const STATE = "{\"nonce\":\"x/+=\",\"n\":1} opaque "

const confirm = {
  method: "elicitation/create",
  params: {
    message: "Please confirm",
    requestedSchema: { type: "object", properties: { confirmed: { type: "boolean" } } }
  }
}

const done = (text: string): Answer => ({ result: { resultType: "complete", content: [{ type: "text", text }] } })

const accept = (params: McpSchema.ElicitRequestParams) =>
  Effect.succeed<McpSchema.ElicitResult>({ action: "accept", content: { confirmed: true, asked: params.message } })

const connect = (url: string, options: McpClient.ConnectOptions = {}) =>
  McpClient.connect(new URL(url), {
    protocolVersion: "2026-07-28",
    requestTimeout: "10 seconds",
    handlers: { elicitation: accept },
    ...options
  })

describe("InputRequiredResult (SEP-2322, 2026-07-28)", () => {
  it.scopedLive("answers the input requests and retries with a new id, the responses and the exact state", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], (request) => {
        const params = paramsOf(request)
        if (params["inputResponses"] === undefined) {
          return { result: { resultType: "input_required", inputRequests: { confirm }, requestState: STATE } }
        }
        return done("confirmed")
      })
      const client = yield* connect(server.url)
      const result = yield* client.callTool("deploy", { target: "prod" })
      expect(result.content).toEqual([{ type: "text", text: "confirmed" }])
      const [first, retry] = posts(server, "tools/call")
      expect(posts(server, "tools/call")).toHaveLength(2)
      expect(retry!.body?.["id"]).not.toEqual(first!.body?.["id"])
      const retried = paramsOf(retry!)
      expect(retried["name"]).toBe("deploy")
      expect(retried["arguments"]).toEqual({ target: "prod" })
      expect(retried["requestState"]).toBe(STATE)
      expect(retried["inputResponses"]).toEqual({
        confirm: { action: "accept", content: { confirmed: true, asked: "Please confirm" } }
      })
      expect(retried["_meta"]).toMatchObject({ "io.modelcontextprotocol/protocolVersion": "2026-07-28" })
      expect(retry!.headers["mcp-name"]).toBe("deploy")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("sends no requestState when the server sent none, and only the latest round's answers", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], (request) => {
        const params = paramsOf(request)
        const responses = params["inputResponses"] as Record<string, unknown> | undefined
        if (responses === undefined) return { result: { resultType: "input_required", inputRequests: { first: confirm } } }
        if (!("second" in responses)) {
          return { result: { resultType: "input_required", inputRequests: { second: confirm }, requestState: "s2" } }
        }
        return done("two rounds")
      })
      const client = yield* connect(server.url)
      const result = yield* client.callTool("wizard")
      expect(result.content).toEqual([{ type: "text", text: "two rounds" }])
      const calls = posts(server, "tools/call").map(paramsOf)
      expect(calls).toHaveLength(3)
      expect("requestState" in calls[1]!).toBe(false)
      expect(Object.keys(calls[1]!["inputResponses"] as object)).toEqual(["first"])
      expect(calls[2]!["requestState"]).toBe("s2")
      expect(Object.keys(calls[2]!["inputResponses"] as object)).toEqual(["second"])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a request sent meanwhile carries neither inputResponses nor requestState", () =>
    Effect.gen(function*() {
      const asked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const server = yield* statelessServer([], (request) => {
        const params = paramsOf(request)
        if (params["name"] === "slow" && params["inputResponses"] === undefined) {
          return { result: { resultType: "input_required", inputRequests: { confirm }, requestState: STATE } }
        }
        return done(String(params["name"]))
      })
      const client = yield* connect(server.url, {
        handlers: {
          elicitation: (params) =>
            Deferred.succeed(asked, undefined).pipe(Effect.zipRight(Deferred.await(release)), Effect.zipRight(accept(params)))
        }
      })
      const slow = yield* Effect.fork(client.callTool("slow"))
      yield* Deferred.await(asked)
      const other = yield* client.callTool("other", { x: "1" })
      expect(other.content).toEqual([{ type: "text", text: "other" }])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(slow)
      const unrelated = posts(server, "tools/call").map(paramsOf).filter((p) => p["name"] === "other")
      expect(unrelated).toHaveLength(1)
      expect("inputResponses" in unrelated[0]!).toBe(false)
      expect("requestState" in unrelated[0]!).toBe(false)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a result without resultType is complete: no retry", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], () => ({ result: { content: [{ type: "text", text: "plain" }] } }))
      const client = yield* connect(server.url)
      const result = yield* client.callTool("plain")
      expect(result.content).toEqual([{ type: "text", text: "plain" }])
      expect(posts(server, "tools/call")).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("prompts/get and resources/read take part too", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], (request) => {
        const params = paramsOf(request)
        if (params["inputResponses"] === undefined) {
          return { result: { resultType: "input_required", inputRequests: { confirm }, requestState: "p" } }
        }
        return request.body?.["method"] === "prompts/get"
          ? { result: { messages: [] } }
          : { result: { contents: [{ uri: "file:///a", text: "a" }] } }
      })
      const client = yield* connect(server.url)
      expect((yield* client.getPrompt("greet")).messages).toEqual([])
      expect((yield* client.readResource("file:///a")).contents).toEqual([{ uri: "file:///a", text: "a" }])
      expect(posts(server, "prompts/get").map((r) => paramsOf(r)["requestState"])).toEqual([undefined, "p"])
      expect(posts(server, "resources/read").map((r) => paramsOf(r)["requestState"])).toEqual([undefined, "p"])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a server that never stops asking fails with a typed error after maxInputRounds", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], () => ({
        result: { resultType: "input_required", inputRequests: { confirm }, requestState: "again" }
      }))
      const client = yield* connect(server.url, { maxInputRounds: 2 })
      const error = yield* Effect.flip(client.callTool("loop"))
      expect(error._tag).toBe("McpTransportError")
      expect(error._tag === "McpTransportError" && error.reason).toBe("Protocol")
      expect(posts(server, "tools/call")).toHaveLength(3)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("an input request the client has no handler for fails with -32601, without a retry", () =>
    Effect.gen(function*() {
      const server = yield* statelessServer([], () => ({
        result: {
          resultType: "input_required",
          inputRequests: { llm: { method: "sampling/createMessage", params: { messages: [], maxTokens: 5 } } }
        }
      }))
      const client = yield* connect(server.url)
      const error = yield* Effect.flip(client.callTool("needs-sampling"))
      expect(error._tag === "McpError" && error.code).toBe(-32601)
      expect(posts(server, "tools/call")).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("on the 2025-11-25 wire an input_required result is not acted upon", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res) => {
            if (request.body?.["method"] !== "tools/call") return false
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify({
              jsonrpc: "2.0",
              id: request.body["id"],
              result: { resultType: "input_required", inputRequests: { confirm }, content: [] }
            }))
            return true
          })
        ),
        (s) => Effect.promise(() => s.close())
      )
      const client = yield* McpClient.connect(new URL(server.url), {
        standaloneStream: false,
        handlers: { elicitation: accept }
      })
      const result = yield* client.callTool("legacy")
      expect(result.content).toEqual([])
      expect(posts(server, "tools/call")).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
