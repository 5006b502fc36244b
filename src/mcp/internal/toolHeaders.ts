/**
 * SEP-2243 on the 2026-07-28 wire: the `x-mcp-header` parameters of the tools last listed, and
 * the `Mcp-Param-*` headers of a `tools/call` built from them.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#custom-headers-from-tool-parameters
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { McpError } from "../McpErrors.js"
import * as McpHeaders from "../McpHeaders.js"
import type * as McpSchema from "../McpSchema.js"
import type { ClientState, RequestOptions } from "./clientState.js"

/** The tools last listed, by name: their parameter headers, or why they were left out. @internal */
export interface ToolHeaders {
  /** Keep the tools whose annotations are valid (all of them on a stateful session), remembering their headers. */
  readonly keepValidTools: (
    tools: ReadonlyArray<McpSchema.Tool>
  ) => Effect.Effect<ReadonlyArray<McpSchema.Tool>>
  /** The options of a `tools/call` with its `Mcp-Param-*` headers. */
  readonly toolCallHeaders: (
    params: unknown,
    options?: RequestOptions
  ) => Effect.Effect<RequestOptions | undefined, McpError>
  /** Whether the tool a `tools/call` names was listed. */
  readonly knownTool: (params: unknown) => boolean
}

/** @internal */
export const makeToolHeaders = (state: ClientState): ToolHeaders => {
  const toolParams = new Map<string, ReadonlyArray<McpHeaders.ParamHeader>>()
  const rejectedTools = new Map<string, string>()

  const keepValidTools = (tools: ReadonlyArray<McpSchema.Tool>) =>
    Effect.gen(function*() {
      if (state.stateless === undefined) return tools
      toolParams.clear()
      rejectedTools.clear()
      const kept: Array<McpSchema.Tool> = []
      for (const tool of tools) {
        const params = McpHeaders.paramHeaders(tool.inputSchema)
        if (Either.isLeft(params)) {
          rejectedTools.set(tool.name, params.left)
          yield* Effect.logWarning(`MCP: tool "${tool.name}" left out: ${params.left}`)
        } else {
          toolParams.set(tool.name, params.right)
          kept.push(tool)
        }
      }
      return kept
    })

  const toolCallHeaders = (
    params: unknown,
    options?: RequestOptions
  ): Effect.Effect<RequestOptions | undefined, McpError> => {
    if (state.stateless === undefined || typeof params !== "object" || params === null || !("name" in params)) {
      return Effect.succeed(options)
    }
    const name = params.name
    if (typeof name !== "string") return Effect.succeed(options)
    const rejected = rejectedTools.get(name)
    if (rejected !== undefined) {
      return Effect.fail(
        new McpError({ code: McpError.InvalidParams, message: `Tool "${name}" was rejected: ${rejected}` })
      )
    }
    const declared = toolParams.get(name)
    if (declared === undefined || declared.length === 0) return Effect.succeed(options)
    const args = "arguments" in params && typeof params.arguments === "object" && params.arguments !== null
      ? params.arguments
      : {}
    return Either.match(McpHeaders.paramHeaderValues(declared, { ...args }), {
      onLeft: (problem) =>
        Effect.fail(new McpError({ code: McpError.InvalidParams, message: `Tool "${name}": ${problem}` })),
      onRight: (headers) => Effect.succeed({ ...options, headers: { ...options?.headers, ...headers } })
    })
  }

  const knownTool = (params: unknown): boolean =>
    typeof params === "object" && params !== null && "name" in params && typeof params.name === "string" &&
    toolParams.has(params.name)

  return { keepValidTools, toolCallHeaders, knownTool }
}
