/**
 * Server→client requests: ping, elicitation, sampling and roots, answered from the handlers the
 * app gave; a method without a handler gets JSON-RPC error -32601.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/sampling
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/roots
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { JsonRpcRequest } from "../JsonRpc.js"
import * as JsonRpc from "../JsonRpc.js"
import { McpError, McpTransportError } from "../McpErrors.js"
import * as McpSchema from "../McpSchema.js"
import { withAnswerTimeout } from "./answerClock.js"
import type { ClientState, McpClientHandlers } from "./clientState.js"
import { decodeOptions, invalidParams } from "./clientState.js"

const decodeParams = <A, I>(schema: Schema.Schema<A, I>, method: string, params: unknown) =>
  Effect.mapError(Schema.decodeUnknown(schema, decodeOptions)(params ?? {}), invalidParams(method))

/**
 * The result of a server→client request from `handlers`, or the `McpError` to answer with.
 *
 * @internal
 */
export const dispatch = (
  handlers: McpClientHandlers,
  method: string,
  params: unknown
): Effect.Effect<unknown, McpError> => {
  switch (method) {
    case "ping":
      return Effect.succeed({})
    case "elicitation/create": {
      const handler = handlers.elicitation
      if (handler !== undefined) {
        return Effect.flatMap(decodeParams(McpSchema.ElicitRequestParams, method, params), handler)
      }
      break
    }
    case "sampling/createMessage": {
      const handler = handlers.sampling
      if (handler !== undefined) {
        return Effect.flatMap(decodeParams(McpSchema.CreateMessageRequestParams, method, params), handler)
      }
      break
    }
    case "roots/list": {
      const roots = handlers.roots
      if (roots !== undefined) return Effect.map(roots.list, (list) => ({ roots: list }))
      break
    }
  }
  return Effect.fail(new McpError({ code: McpError.MethodNotFound, message: `Method not found: ${method}` }))
}

/**
 * Answer one server→client request: the handler's result, its `McpError`, or -32603 for a
 * defect; a failure to send the answer is logged.
 *
 * @internal
 */
export const answer = (state: ClientState, request: JsonRpcRequest): Effect.Effect<void> =>
  dispatch(state.handlers, request.method, request.params).pipe(
    Effect.map((result) => JsonRpc.success(request.id, result)),
    Effect.catchAll((error) => Effect.succeed(JsonRpc.failure(request.id, error))),
    Effect.catchAllDefect(() =>
      Effect.succeed(JsonRpc.failure(request.id, { code: McpError.InternalError, message: "Internal error" }))
    ),
    Effect.flatMap((response) =>
      withAnswerTimeout(
        state.transport.send(response),
        state.defaultTimeout,
        () => new McpTransportError({ reason: "Timeout", description: `Answering ${request.method} timed out` })
      )
    ),
    Effect.catchAll((error) => Effect.logWarning(`MCP: could not answer ${request.method}`, error.description)),
    Effect.ensuring(Effect.sync(() => state.running.delete(request.id))),
    Effect.withSpan("McpClient.answer", { attributes: { "mcp.method": request.method } })
  )
