/**
 * A small MCP server endpoint for `@effect/platform` HTTP servers: the Streamable HTTP transport
 * with JSON responses (no sessions, no server-initiated stream), answering `initialize`, `ping`,
 * `tools/list` and `tools/call`. Tools take `Schema`-typed arguments and may read the verified
 * access token (`BearerAuth.AuthenticatedToken`) when the endpoint is behind the bearer middleware.
 *
 * It is enough for the demo, the examples and interoperability tests; a full MCP server
 * (resources, prompts, sampling, SSE streams) is out of its scope.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { readBody } from "./internal/http.js"

/**
 * The protocol revisions the endpoint speaks, newest first (the first is answered when the
 * client asks for one it does not know).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 * @since 0.1.0
 * @category constants
 */
export const protocolVersions: ReadonlyArray<string> = ["2025-11-25", "2025-06-18", "2025-03-26"]

/**
 * A tool failed in a way the model should see: answered as a `tools/call` result with
 * `isError: true` (not as a JSON-RPC error).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#error-handling
 * @since 0.1.0
 * @category errors
 */
export class ToolError extends Schema.TaggedError<ToolError>("effect-mcp-oauth/server/ToolError")("ToolError", {
  message: Schema.String
}) {}

/**
 * The result of a tool call (text content; `structuredContent` for object results).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-result
 * @since 0.1.0
 * @category models
 */
export interface CallToolResult {
  readonly content: ReadonlyArray<{ readonly type: "text"; readonly text: string }>
  readonly structuredContent?: Readonly<Record<string, unknown>> | undefined
  readonly isError?: boolean | undefined
}

/**
 * A tool: name, description, JSON Schema of its input, and its handler on decoded arguments.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool
 * @since 0.1.0
 * @category models
 */
export interface Tool<R = never> {
  readonly name: string
  readonly description: string | undefined
  readonly inputSchema: Readonly<Record<string, unknown>>
  readonly call: (args: unknown) => Effect.Effect<CallToolResult, never, R>
}

/**
 * `JSON.stringify`, or none for a value it cannot encode: arguments come from the network, and a
 * value nested deeper than the stack (`[[[[…]]]]`) makes `JSON.stringify` throw.
 */
const encodeJson = (value: unknown): Option.Option<string> => {
  try {
    return Option.some(JSON.stringify(value))
  } catch {
    return Option.none()
  }
}

/** A parse error's description, or a short one when the value it quotes is too deep to format. */
const describeParseError = (error: ParseResult.ParseError): string => {
  try {
    return ParseResult.TreeFormatter.formatErrorSync(error)
  } catch {
    return "the arguments do not match the tool's input schema (nested too deeply to show)"
  }
}

const errorResult = (message: string): CallToolResult => ({ content: [{ type: "text", text: message }], isError: true })

const textResult = (output: string | Readonly<Record<string, unknown>>): CallToolResult =>
  typeof output === "string" ?
    { content: [{ type: "text", text: output }] } :
    Option.match(encodeJson(output), {
      onNone: () => errorResult("the tool's output cannot be encoded as JSON"),
      onSome: (text) => ({ content: [{ type: "text", text }], structuredContent: output })
    })

/**
 * Defines a tool whose arguments are decoded with `parameters` (a `Schema.Struct`; its JSON
 * Schema is advertised as `inputSchema`). Invalid arguments and a `ToolError` become an
 * `isError` result; a string output is text content, an object output is also `structuredContent`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool
 * @since 0.1.0
 * @category constructors
 */
export const tool = <A, I, R>(options: {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Schema.Schema<A, I, never>
  readonly handler: (args: A) => Effect.Effect<string | Readonly<Record<string, unknown>>, ToolError, R>
}): Tool<R> => {
  const decode = Schema.decodeUnknown(options.parameters, { errors: "all", onExcessProperty: "ignore" })
  return {
    name: options.name,
    description: options.description,
    inputSchema: toInputSchema(options.parameters),
    call: (args) =>
      decode(args ?? {}).pipe(
        Effect.mapError((error) => new ToolError({ message: `invalid arguments: ${describeParseError(error)}` })),
        Effect.flatMap(options.handler),
        Effect.match({ onFailure: (error) => errorResult(error.message), onSuccess: textResult }),
        Effect.withSpan("McpEndpoint.tool", { attributes: { name: options.name } })
      )
  }
}

const toInputSchema = <A, I>(schema: Schema.Schema<A, I, never>): Readonly<Record<string, unknown>> => {
  const { $schema: _, ...rest } = JSONSchema.make(schema) as unknown as Record<string, unknown>
  return rest["type"] === "object" ? rest : { type: "object", properties: {} }
}

/**
 * Options of the endpoint.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @since 0.1.0
 * @category models
 */
export interface Options<R> {
  /** `serverInfo.name`. */
  readonly name: string
  /** `serverInfo.version` (default `0.1.0`). */
  readonly version?: string | undefined
  readonly instructions?: string | undefined
  readonly tools: ReadonlyArray<Tool<R>>
  /** Largest accepted request body in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number | undefined
}

type Id = string | number

const JsonRpcMessage = Schema.Struct({
  jsonrpc: Schema.Literal("2.0"),
  id: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  method: Schema.optional(Schema.String),
  params: Schema.optional(Schema.Unknown)
})
const decodeMessage = Schema.decodeUnknownOption(Schema.parseJson(JsonRpcMessage))

const rpcError = (id: Id | null, code: number, message: string) =>
  HttpServerResponse.unsafeJson({ jsonrpc: "2.0", id, error: { code, message } }, {
    status: id === null ? 400 : 200
  })

/** A JSON-RPC result, or an internal error when the result cannot be encoded as JSON. */
const rpcResult = (id: Id, result: unknown) =>
  Option.match(encodeJson({ jsonrpc: "2.0", id, result }), {
    onNone: () => rpcError(id, -32603, "Internal error: the result cannot be encoded as JSON"),
    onSome: (body) => HttpServerResponse.text(body, { contentType: "application/json" })
  })

const paramsRecord = (params: unknown): Readonly<Record<string, unknown>> =>
  typeof params === "object" && params !== null && !Array.isArray(params) ? params as Record<string, unknown> : {}

/**
 * The endpoint as an HTTP app: `POST` carries one JSON-RPC message (requests get a JSON
 * response; notifications and responses get 202); `GET` and `DELETE` answer 405 because the
 * endpoint keeps no sessions and sends no server-initiated messages.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category constructors
 */
export const make = <R>(
  options: Options<R>
): HttpApp.Default<never, R | HttpServerRequest.HttpServerRequest> => {
  const tools = new Map(options.tools.map((t) => [t.name, t]))
  const maxBody = options.maxBodyBytes ?? 1024 * 1024
  const serverInfo = { name: options.name, version: options.version ?? "0.1.0" }

  const handle = (id: Id, method: string, params: Readonly<Record<string, unknown>>) =>
    Effect.gen(function*() {
      const ok = (result: unknown) => rpcResult(id, result)
      switch (method) {
        case "initialize": {
          const requested = typeof params["protocolVersion"] === "string" ? params["protocolVersion"] : ""
          return ok({
            protocolVersion: protocolVersions.includes(requested) ? requested : protocolVersions[0],
            capabilities: { tools: { listChanged: false } },
            serverInfo,
            ...(options.instructions === undefined ? {} : { instructions: options.instructions })
          })
        }
        case "ping":
          return ok({})
        case "tools/list":
          return ok({
            tools: options.tools.map((t) => ({
              name: t.name,
              ...(t.description === undefined ? {} : { description: t.description }),
              inputSchema: t.inputSchema
            }))
          })
        case "tools/call": {
          const name = params["name"]
          const found = typeof name === "string" ? tools.get(name) : undefined
          if (found === undefined) {
            return rpcError(id, -32602, typeof name === "string" ? `Unknown tool: ${name}` : "The tool name is not a string")
          }
          return ok(yield* found.call(params["arguments"]))
        }
        default:
          return rpcError(id, -32601, `Method not found: ${method}`)
      }
    })

  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST") {
      return HttpServerResponse.text("Method Not Allowed", { status: 405, headers: { allow: "POST" } })
    }
    const body = yield* Effect.either(readBody(maxBody))
    if (body._tag === "Left") return rpcError(null, -32600, body.left.description)
    const message = decodeMessage(body.right)
    if (Option.isNone(message)) return rpcError(null, -32700, "Parse error: expected one JSON-RPC 2.0 message")
    const { id, method, params } = message.value
    if (id === undefined || method === undefined) return HttpServerResponse.empty({ status: 202 })
    return yield* handle(id, method, paramsRecord(params))
  }).pipe(Effect.withSpan("McpEndpoint.request"))
}
