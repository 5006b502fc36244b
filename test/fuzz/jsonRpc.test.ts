/**
 * Fuzzing the MCP message decoders: JSON-RPC 2.0 messages and batches (`JsonRpc.decodeText`,
 * `decodeValue`) and the MCP result schemas the client decodes results with. Any input gives
 * messages or a typed `McpTransportError`: never a defect, never a hang.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, FastCheck as fc, Schema } from "effect"
import * as JsonRpc from "../../src/mcp/JsonRpc.js"
import * as McpSchema from "../../src/mcp/McpSchema.js"
import { assertProperty, deepText, jsonValue, mutatedObjectText, nastyString, nestedText } from "./arbitraries.js"

const expectValueOrTypedError = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isFailure(exit)) {
    expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause).slice(0, 300)).toBe(false)
    const failure = Cause.failureOption(exit.cause)
    expect(failure._tag).toBe("Some")
  }
}

const templates = [
  { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} },
  { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } },
  { jsonrpc: "2.0", id: "a", result: { tools: [] } },
  { jsonrpc: "2.0", id: 2, error: { code: -32600, message: "no", data: null } }
]
/** Messages with hostile fields, nested at most 500 deep (deeper: the next test). */
const message = fc.oneof(...templates.map((t) => mutatedObjectText(t, { min: 1, max: 500 })))
const deepMessage = fc.oneof(...templates.map((t) => mutatedObjectText(t)))
const text = fc.oneof(
  jsonValue.map((v) => JSON.stringify(v) ?? "null"),
  message,
  fc.array(message, { maxLength: 5 }).map((ms) => `[${ms.join(",")}]`),
  nastyString,
  fc.integer({ min: 1, max: 500 }).map((d) => `{"jsonrpc":"2.0","id":1,"result":${nestedText(d, "array")}}`)
)

/**
 * effect's `Schema.Union` looks up a literal discriminant with `String(input.jsonrpc)`, which
 * throws for `{"jsonrpc":[{"toString":null}]}` and for `{"jsonrpc":[[[…10 000…]]]}`;
 * `JsonRpc.decodeValue` turns that into a `Decode` error (the last test pins it).
 */

describe("fuzz: JSON-RPC messages", () => {
  it("decodeText: messages or a Decode error for any text", () => {
    assertProperty(
      fc.property(text, (t) => {
        const started = performance.now()
        expectValueOrTypedError(Effect.runSyncExit(JsonRpc.decodeText(t)))
        expect(performance.now() - started).toBeLessThan(2_000)
      }),
      { numRuns: 100 }
    )
  })

  it("decodeText: deeply nested JSON (arrays or objects, up to 300 000 levels)", () => {
    assertProperty(
      fc.property(fc.oneof(deepText, deepMessage), (t) => {
        expectValueOrTypedError(Effect.runSyncExit(JsonRpc.decodeText(t)))
      }),
      { numRuns: 20 }
    )
  })
})

describe("fuzz: JSON-RPC messages whose discriminant cannot be converted to a string", () => {
  it("decodeText: a Decode error, not a defect", () => {
    for (
      const value of ["[{\"toString\":null}]", "{\"toString\":1,\"valueOf\":1}", "[[{\"toString\":{}}]]", nestedText(10_000, "array")]
    ) {
      for (const field of ["jsonrpc", "method", "id"]) {
        expectValueOrTypedError(Effect.runSyncExit(JsonRpc.decodeText(`{"jsonrpc":"2.0","id":1,"method":"m","${field}":${value}}`)))
      }
    }
  })
})

describe("fuzz: MCP result schemas", () => {
  const deepValue = fc.record({ d: fc.integer({ min: 1_000, max: 10_000 }), kind: fc.constantFrom("array" as const, "object" as const) })
    .map(({ d, kind }): unknown => JSON.parse(nestedText(d, kind)))
  const results = [
    ["InitializeResult", McpSchema.InitializeResult],
    ["ListToolsResult", McpSchema.ListToolsResult],
    ["CallToolResult", McpSchema.CallToolResult],
    ["ReadResourceResult", McpSchema.ReadResourceResult],
    ["GetPromptResult", McpSchema.GetPromptResult],
    ["ElicitRequestParams", McpSchema.ElicitRequestParams],
    ["CreateMessageRequestParams", McpSchema.CreateMessageRequestParams]
  ] as const
  for (const [name, schema] of results) {
    it(`${name}: a value or a ParseError for any JSON value`, () => {
      const decode = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>, {
        onExcessProperty: "preserve"
      })
      assertProperty(
        fc.property(fc.oneof(jsonValue, deepValue), (value) => {
          const result = decode(value)
          expect(Either.isEither(result)).toBe(true)
        }),
        { numRuns: 25 }
      )
    })
  }
})
