/**
 * Messages from the server: responses complete their pending request, notifications go to
 * subscribers (progress to its callback, cancellation to the answer it cancels), requests are
 * answered in the background. When the connection dies every pending request fails.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#messages
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type { JsonRpcMessage, JsonRpcNotification } from "../JsonRpc.js"
import { McpError, McpTransportError } from "../McpErrors.js"
import { typed } from "../../internal/typed.js"
import * as McpSchema from "../McpSchema.js"
import type { ClientState } from "./clientState.js"
import { surface } from "./clientState.js"
import { answer } from "./serverRequests.js"

/** The connection died: remember why and fail every pending request with it. */
const closeAll = (state: ClientState, error: McpTransportError) =>
  Effect.sync(() => {
    state.closed = error
    for (const deferred of state.pending.values()) Deferred.unsafeDone(deferred, Exit.fail(surface(error)))
    state.pending.clear()
  })

/**
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/progress
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/cancellation
 */
const onNotification = (state: ClientState, message: JsonRpcNotification) =>
  Effect.gen(function*() {
    if (message.method === "notifications/progress") {
      const params = yield* Effect.option(Schema.decodeUnknown(McpSchema.ProgressParams)(message.params))
      if (params._tag === "Some") {
        const callback = state.progress.get(params.value.progressToken)
        if (callback !== undefined) yield* callback(params.value)
      }
    } else if (message.method === "notifications/cancelled") {
      const params = message.params
      if (typeof params === "object" && params !== null && "requestId" in params) {
        const id = params.requestId
        const fiber = typeof id === "string" || typeof id === "number" ? state.running.get(id) : undefined
        if (fiber !== undefined) yield* Fiber.interruptFork(fiber)
      }
    }
    yield* PubSub.publish(state.notifications, message)
  })

/** @internal */
export const onMessage = (state: ClientState, message: JsonRpcMessage): Effect.Effect<void> => {
  switch (message._tag) {
    case "Success": {
      const deferred = state.pending.get(message.id)
      if (deferred === undefined) return Effect.logDebug(`MCP: response to unknown request ${message.id}`)
      return Deferred.succeed(deferred, message.result)
    }
    case "Failure": {
      const deferred = message.id === null ? undefined : state.pending.get(message.id)
      const error = new McpError(message.error)
      if (deferred === undefined) return Effect.logWarning("MCP: error response to no known request", error.message)
      return Deferred.fail(deferred, error)
    }
    case "Notification":
      return onNotification(state, message)
    case "Request":
      return Effect.flatMap(Effect.forkIn(answer(state, message), state.scope), (fiber) =>
        Effect.sync(() => {
          state.running.set(message.id, fiber)
        }))
  }
}

/**
 * Read the transport's messages in the client's scope until the connection ends.
 *
 * @internal
 */
export const readIncoming = (state: ClientState) => {
  // A plain loop over the mailbox rather than a stream: it runs for every message.
  const loop: Effect.Effect<void, McpTransportError> = Effect.flatMap(
    state.transport.incoming.takeAll,
    ([messages, done]) => {
      const handled = Effect.forEach(messages, (message) => onMessage(state, message), { discard: true })
      return done ? handled : Effect.zipRight(handled, loop)
    }
  )
  return loop.pipe(
    Effect.onExit((exit) =>
      closeAll(
        state,
        Exit.isFailure(exit) && Cause.isFailType(exit.cause) ? exit.cause.error : new McpTransportError({
          reason: "Closed",
          description: "The connection to the MCP server closed"
        }, typed)
      )
    ),
    Effect.forkIn(state.scope)
  )
}
