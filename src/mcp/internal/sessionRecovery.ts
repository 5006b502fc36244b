/**
 * Session recovery (Streamable HTTP): when the server answers 404 to a request carrying
 * `Mcp-Session-Id`, start a new session once for every request that saw it and send the request
 * again.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 * @internal
 */
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as JsonRpc from "../JsonRpc.js"
import { McpTransportError } from "../McpErrors.js"
import * as McpSchema from "../McpSchema.js"
import type { ClientState, McpClientError } from "./clientState.js"
import { decodeWith } from "./clientState.js"
import { rawRequest, sendNotification } from "./outgoing.js"

/** See `McpClient.SESSION_RESTARTED`. @internal */
export const SESSION_RESTARTED = "effect-mcp-oauth/session-restarted"

const isSessionExpired = (error: unknown): error is McpTransportError =>
  error instanceof McpTransportError && error.reason === "SessionExpired"

const decodeInitializeResult = decodeWith(McpSchema.InitializeResult, "result of initialize")

/** What a fresh `initialize` sends again: the client's own part of the handshake. @internal */
export interface Handshake {
  readonly capabilities: McpSchema.ClientCapabilities
  readonly clientInfo: McpSchema.Implementation
}

/**
 * `recoverSession(send)` runs `send`; if the server ended the session (404), it starts a new one
 * and runs it again, once. A second 404 is `SessionExpired`. A request made while a new session
 * is being initialized waits for it (it would otherwise go without a session id).
 *
 * @internal
 */
export const makeSessionRecovery = (state: ClientState, handshake: Handshake) =>
  Effect.map(Effect.makeSemaphore(1), (restartLock) => {
    /** Restarts running or waiting for the lock: only then need a request wait for the lock. */
    let restarts = 0

    /**
     * Start a new session in place of the one generation `seen` ran in — once for all the
     * requests that saw its 404: a fresh `initialize` with the same client info, capabilities and
     * negotiated version, `notifications/initialized`, the transport restarted, subscribers told.
     */
    const restartSession = (seen: number): Effect.Effect<void, McpClientError> =>
      Effect.acquireUseRelease(
        Effect.sync(() => restarts++),
        () => restartLock.withPermits(1)(restartOnce(seen)),
        () => Effect.sync(() => restarts--)
      )

    const restartOnce = (seen: number): Effect.Effect<void, McpClientError> =>
      Effect.suspend(() => {
        const current = state.session
        if (seen !== state.sessionGeneration || current === undefined) return Effect.void
        return Effect.gen(function*() {
          const result = yield* rawRequest(state, "initialize", {
            protocolVersion: current.protocolVersion,
            capabilities: handshake.capabilities,
            clientInfo: handshake.clientInfo
          }).pipe(Effect.flatMap(decodeInitializeResult))
          if (result.protocolVersion !== current.protocolVersion) {
            return yield* Effect.fail(
              new McpTransportError({
                reason: "UnsupportedVersion",
                description:
                  `The new session chose protocol version "${result.protocolVersion}" instead of "${current.protocolVersion}"`
              })
            )
          }
          state.session = { initializeResult: result, protocolVersion: current.protocolVersion }
          state.sessionGeneration++
          yield* sendNotification(state, "notifications/initialized")
          yield* state.transport.start
          yield* Effect.logInfo("MCP: the server ended the session (HTTP 404); a new one was initialized")
          yield* PubSub.publish(
            state.notifications,
            JsonRpc.notification(SESSION_RESTARTED, { initializeResult: result })
          )
        }).pipe(Effect.withSpan("McpClient.restartSession"))
      })

    const sendRecovering = <A>(
      send: () => Effect.Effect<A, McpClientError>,
      seen: number
    ): Effect.Effect<A, McpClientError> =>
      send().pipe(
        Effect.catchIf(
          (error) => state.stateless === undefined && isSessionExpired(error),
          () =>
            restartSession(seen).pipe(
              Effect.zipRight(send()),
              Effect.mapError((error) =>
                isSessionExpired(error)
                  ? new McpTransportError({
                    reason: "SessionExpired",
                    status: 404,
                    description: `${error.description}, again after a fresh initialize`,
                    cause: error
                  })
                  : error
              )
            )
        )
      )

    return <A>(send: () => Effect.Effect<A, McpClientError>): Effect.Effect<A, McpClientError> =>
      Effect.suspend(() =>
        state.stateless === undefined && restarts > 0
          ? Effect.zipRight(
            restartLock.withPermits(1)(Effect.void),
            Effect.suspend(() => sendRecovering(send, state.sessionGeneration))
          )
          : sendRecovering(send, state.sessionGeneration)
      )
  })
