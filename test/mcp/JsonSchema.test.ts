/**
 * Tool schemas are data (SEP-1613, SEP-2106): JSON Schema 2020-12 keywords come out of
 * `listTools` exactly as the server sent them and go back unchanged in a call; a network `$ref`
 * is never fetched.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as McpClient from "../../src/mcp/McpClient.js"
import { paramsOf, posts, statelessServer } from "./fixtures/statelessServer.js"

const richSchema = (canary: string) => ({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "urn:example:rich",
  type: "object",
  $defs: {
    address: { $anchor: "addr", type: "object", properties: { street: { type: "string" } }, unevaluatedProperties: false },
    userId: { type: "string", pattern: "^[a-z0-9-]+$" }
  },
  properties: {
    id: { $ref: "#/$defs/userId" },
    home: { $ref: "#addr" },
    profile: { $ref: canary },
    tags: { type: "array", prefixItems: [{ type: "string" }], items: false, minContains: 1, contains: { const: "x" } },
    kind: { enum: ["a", "b"] }
  },
  allOf: [{ anyOf: [{ required: ["id"] }, { required: ["home"] }] }],
  if: { properties: { kind: { const: "a" } } },
  then: { required: ["tags"] },
  else: { not: { required: ["tags"] } },
  dependentRequired: { home: ["id"] },
  additionalProperties: false
})

describe("tool input schemas", () => {
  it.scopedLive("keeps 2020-12 keywords intact through listTools and callTool, and never follows a network $ref", () =>
    Effect.gen(function*() {
      let canary = ""
      const server = yield* statelessServer(
        () => [{ name: "rich", inputSchema: richSchema(canary) }, { name: "echo", inputSchema: { type: "object" } }],
        () => ({ result: { content: [] } })
      )
      // a loopback URL the server would see fetched (it records every request)
      canary = `${server.origin}/canary/profile.json`
      const expected = JSON.parse(JSON.stringify(richSchema(canary)))
      const client = yield* McpClient.connect(new URL(server.url), { protocolVersion: "2026-07-28" })
      const tools = yield* client.listTools()
      const rich = tools.find((t) => t.name === "rich")!
      expect(rich.inputSchema).toEqual(expected)
      yield* client.callTool("echo", { schema: rich.inputSchema })
      expect((paramsOf(posts(server, "tools/call")[0]!)["arguments"] as Record<string, unknown>)["schema"]).toEqual(
        expected
      )
      expect(server.requests.filter((r) => r.url.startsWith("/canary")).length).toBe(0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
