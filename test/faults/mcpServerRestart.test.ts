/**
 * Fault: the MCP server process goes away (every connection closed, its GET stream cut, its
 * sessions lost) and comes back on the same port. What must hold: a call while it is down fails
 * with a typed error (no hang); the next call after it is back starts a new session (the old one
 * answers 404) and succeeds, with the same tokens: no refresh, no sign-in.
 * (SSE resumption with `Last-Event-ID` after a cut stream: test/mcp/Faults.test.ts, "SSE resumption".)
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Queue } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as TestStorage from "../../src/TestStorage.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"

const clientDeps = Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): unknown => result.content[0]

describe("fault: the MCP server restarts mid-session", () => {
  it.scopedLive("down: a typed error, no hang; back on the same port: a new session, the call succeeds, no new sign-in", () =>
    Effect.gen(function*() {
      const server = yield* startProtectedMcpServer()
      const client = yield* McpClient.connect(new URL(server.mcpUrl), {
        auth: { oauth: { scopes: ["mcp"] } },
        requestTimeout: "5 seconds"
      })
      const events = yield* client.subscribe
      expect(textOf(yield* client.callTool("add", { a: 1, b: 2 }))).toEqual({ type: "text", text: "3" })
      const signedIn = yield* server.counts

      yield* Effect.promise(() => server.stop())
      const down = yield* Effect.flip(client.callTool("add", { a: 2, b: 2 })).pipe(Effect.timeout(Duration.seconds(10)))
      expect(down._tag).toBe("McpTransportError")

      yield* Effect.promise(() => server.start())
      expect(textOf(yield* client.callTool("add", { a: 2, b: 3 }))).toEqual({ type: "text", text: "5" })
      const restarted = [...(yield* Queue.takeAll(events))].filter(McpClient.isSessionRestarted)
      expect(restarted).toHaveLength(1)
      expect(yield* server.counts).toEqual(signedIn) // no registration, authorization or token request
    }).pipe(Effect.provide(clientDeps)))
})
