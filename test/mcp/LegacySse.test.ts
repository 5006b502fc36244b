import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as Target from "../../src/mcp/Target.js"
import { hostLegacySse } from "./fixtures/sdkServer.js"
import { startRawServer } from "./fixtures/rawServer.js"
import { hosted } from "./helpers.js"

const run = <A, E>(body: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>) =>
  Effect.scoped(body).pipe(Effect.provide(NodeHttpClient.layerUndici))

describe("legacy HTTP+SSE (2024-11-05) against the official SDK's SSEServerTransport", () => {
  it.live("a URL with an /sse segment is inferred as legacy SSE; tools, resources, prompts work", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostLegacySse())
      const resolved = yield* Target.infer(server.url)
      expect(resolved._tag).toBe("LegacySse")
      expect((yield* Target.infer("http://127.0.0.1/mcp"))._tag).toBe("StreamableHttp")
      expect((yield* Target.infer("http://127.0.0.1/sse/v1"))._tag).toBe("LegacySse")
      expect((yield* Target.infer({ url: "http://127.0.0.1/x", transport: "sse" }))._tag).toBe("LegacySse")
      const client = yield* McpClient.connect(server.url)
      expect(client.serverInfo.name).toBe("fixture-server")
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toContain("add")
      const sum = yield* client.callTool("add", { a: 1, b: 2 })
      expect(sum.content).toEqual([{ type: "text", text: "3" }])
      const config = yield* client.readResource("config://app")
      expect(config.contents[0]!.text).toBe("{\"debug\":true}")
      const prompt = yield* client.getPrompt("review", { code: "z" })
      expect(prompt.messages).toHaveLength(1)
      // every POST went to the endpoint the server announced
      const posts = server.requests.filter((r) => r.method === "POST")
      expect(posts.length).toBeGreaterThan(3)
      expect(posts.every((r) => r.url.startsWith("/messages?sessionId="))).toBe(true)
    })))

  it.live("progress, logging and elicitation travel over the SSE stream", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostLegacySse())
      const client = yield* McpClient.connect(server.url, {
        handlers: { elicitation: () => Effect.succeed({ action: "accept", content: { name: "Grace" } }) }
      })
      const queue = yield* client.subscribe
      const progress: Array<number> = []
      yield* client.callTool("progress", { steps: 2 }, { onProgress: (p) => Effect.sync(() => progress.push(p.progress)) })
      expect(progress).toEqual([1, 2])
      const log = yield* queue.take
      expect(log.method).toBe("notifications/message")
      const asked = yield* client.callTool("ask")
      expect(asked.content).toEqual([{ type: "text", text: "hello Grace" }])
    })))

  it.live("closing the scope closes the SSE stream", () =>
    run(Effect.gen(function*() {
      const server = yield* hosted(() => hostLegacySse())
      const scope = yield* Scope.make()
      yield* McpClient.connect(server.url).pipe(Scope.extend(scope))
      expect(server.sessions()).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sleep("200 millis")
      expect(server.sessions()).toBe(0)
    })))

  it.live("an endpoint on another origin is refused; a stream that ends fails pending requests", () =>
    run(Effect.gen(function*() {
      const evil = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startRawServer((request, res) => {
            if (request.method !== "GET") return false
            res.writeHead(200, { "content-type": "text/event-stream" })
            if (request.url === "/evil/sse") {
              res.write("event: endpoint\ndata: http://127.0.0.2:9/messages\n\n")
            } else {
              res.write("event: endpoint\ndata: /messages\n\n")
              setTimeout(() => res.end(), 300) // the stream dies before anything is answered
            }
            return true
          })
        ),
        (server) => Effect.promise(() => server.close())
      )
      const refused = yield* Effect.flip(McpClient.connect(`${evil.origin}/evil/sse`))
      expect(refused._tag === "McpTransportError" && refused.reason).toBe("Protocol")
      // POST /messages gets 202 (no answer on the stream), then the stream ends
      const started = Date.now()
      const closed = yield* Effect.flip(McpClient.connect(`${evil.origin}/dying/sse`, { requestTimeout: "30 seconds" }))
      expect(closed._tag === "McpTransportError" && closed.reason).toBe("Closed")
      expect(Date.now() - started).toBeLessThan(5_000)
    })))
})
