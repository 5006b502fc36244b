/**
 * Client→server messages: a request with its id, timeout (answer time only), progress token and
 * cancellation; a notification; the stateless (SEP-2575) version retry.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#requests
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/cancellation
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import { currentTokenWait } from "../../internal/tokenWait.js"
import { isTraced, withSpanIfTraced } from "../../internal/tracing.js"
import type { RequestId } from "../JsonRpc.js"
import * as JsonRpc from "../JsonRpc.js"
import { McpError, McpTransportError } from "../McpErrors.js"
import { unsafeMakeAnswerClock, withAnswerTimeout } from "./answerClock.js"
import type { ClientState, McpClientError, RequestOptions } from "./clientState.js"
import { isStateless, surface, withParams } from "./clientState.js"

/** Tell the server to stop working on request `id`, in the background. */
const cancel = (state: ClientState, id: RequestId, reason: string) =>
  state.transport.send(JsonRpc.notification("notifications/cancelled", { requestId: id, reason })).pipe(
    Effect.timeout(Duration.seconds(5)),
    Effect.ignore,
    Effect.forkIn(state.scope),
    Effect.asVoid
  )

/**
 * Send one request and wait for its answer (the raw `result`). The timeout bounds the server's
 * answer; an interrupted or timed-out request is cancelled with `notifications/cancelled`.
 *
 * Two fibers a request: the send (Streamable HTTP: it carries the answer back) and, when the
 * timeout is finite, its timer; the caller waits on the answer. No scope, no race: this runs
 * for every request.
 *
 * @internal
 */
export const rawRequest = (
  state: ClientState,
  method: string,
  params: unknown,
  options?: RequestOptions
): Effect.Effect<unknown, McpClientError> =>
  Effect.suspend(() => {
    if (state.closed !== undefined) return Effect.fail(surface(state.closed))
    const id = state.nextId++
    const onProgress = options?.onProgress
    const withProgress = onProgress === undefined ? params : withParams(params, { progressToken: id })
    const finalParams = state.stateless === undefined ? withProgress : withParams(withProgress, state.stateless)
    const timeout = options?.timeout ?? state.defaultTimeout
    let sender: Fiber.RuntimeFiber<unknown> | undefined
    let timer: Fiber.RuntimeFiber<unknown> | undefined
    return Effect.onExit(
      Effect.withFiberRuntime<unknown, McpClientError>((fiber) => {
        const deferred = Deferred.unsafeMake<unknown, McpClientError>(fiber.id())
        state.pending.set(id, deferred)
        if (onProgress !== undefined) state.progress.set(id, onProgress)
        // The timeout bounds the server's answer; time spent obtaining a token (a sign-in
        // waiting for the user) stops the clock and is bounded by the sign-in timeout instead.
        const clock = unsafeMakeAnswerClock()
        // The send runs in its own fiber (never joined), so setting its fiber refs needs no
        // restoring: its token waits go through the clock, and with Effect's own tracer (which
        // records nothing) it makes no spans nor `traceparent` header.
        const traced = isTraced(fiber)
        const send = FiberRef.set(currentTokenWait, clock.pause).pipe(
          Effect.zipRight(traced ? Effect.void : FiberRef.set(FiberRef.currentTracerEnabled, false)),
          Effect.zipRight(state.transport.send(JsonRpc.request(id, method, finalParams), { headers: options?.headers })),
          // a defect below reaches the caller at once rather than leaving it to the timeout
          Effect.catchAllCause((cause) => Deferred.failCause(deferred, Cause.map(cause, surface)))
        )
        const millis = Duration.toMillis(timeout)
        const expire = Effect.zipRight(
          clock.elapsed(millis),
          // built only on a timeout: an error captures a stack trace
          Effect.suspend(() =>
            Deferred.fail(
              deferred,
              new McpTransportError({
                reason: "Timeout",
                description: `No answer to ${method} within ${Duration.format(Duration.decode(timeout))}`
              })
            )
          )
        )
        return Effect.fork(send).pipe(
          Effect.tap((fiber) => {
            sender = fiber
          }),
          Effect.zipRight(Number.isFinite(millis) ? Effect.fork(expire) : Effect.succeed(undefined)),
          Effect.flatMap((fiber) => {
            timer = fiber
            return Deferred.await(deferred)
          })
        )
      }),
      (exit) =>
        Effect.withFiberRuntime((fiber) => {
          state.pending.delete(id)
          state.progress.delete(id)
          timer?.unsafeInterruptAsFork(fiber.id())
          // on success the send has delivered the answer (or, on stdio, long returned)
          if (Exit.isSuccess(exit)) return Effect.void
          const stopSend = sender === undefined ? Effect.void : Fiber.interrupt(sender)
          if (method === "initialize") return Effect.asVoid(stopSend)
          if (Exit.isInterrupted(exit)) return Effect.zipRight(stopSend, cancel(state, id, "interrupted"))
          const failure = Cause.failureOption(exit.cause)
          return failure._tag === "Some" && failure.value._tag === "McpTransportError" &&
              failure.value.reason === "Timeout"
            ? Effect.zipRight(stopSend, cancel(state, id, "timeout"))
            : Effect.asVoid(stopSend)
        })
    )
  })

/**
 * Stateless sessions (SEP-2575): a `-32022` answer lists the versions the server supports;
 * switch to one this client speaks statelessly and send the request again, once.
 */
const retryWithSupportedVersion = (state: ClientState, method: string, params: unknown, options?: RequestOptions) =>
(error: McpClientError): Effect.Effect<unknown, McpClientError> => {
  if (
    state.stateless === undefined || error._tag !== "McpError" || error.code !== McpError.UnsupportedProtocolVersion
  ) {
    return Effect.fail(error)
  }
  const data = error.data
  const supported = typeof data === "object" && data !== null && "supported" in data && Array.isArray(data.supported)
    ? data.supported.filter((v): v is string => typeof v === "string")
    : []
  const next = supported.find(isStateless)
  if (next === undefined) return Effect.fail(error)
  state.stateless = { ...state.stateless, "io.modelcontextprotocol/protocolVersion": next }
  return Effect.zipRight(state.transport.setProtocolVersion(next), rawRequest(state, method, params, options))
}

/**
 * {@link rawRequest}, retried once with a supported version on a stateless session.
 *
 * @internal
 */
export const versionedRequest = (state: ClientState, method: string, params: unknown, options?: RequestOptions) =>
  Effect.suspend(() =>
    state.stateless === undefined
      ? rawRequest(state, method, params, options)
      : Effect.catchAll(
        rawRequest(state, method, params, options),
        retryWithSupportedVersion(state, method, params, options)
      )
  )

/**
 * Send a notification (bounded by the client's default timeout).
 *
 * @internal
 */
export const sendNotification = (
  state: ClientState,
  method: string,
  params?: unknown
): Effect.Effect<void, McpClientError> =>
  withAnswerTimeout(
    Effect.suspend(() =>
      state.closed !== undefined ? Effect.fail(state.closed) : state.transport.send(JsonRpc.notification(method, params))
    ),
    state.defaultTimeout,
    () => new McpTransportError({ reason: "Timeout", description: `Sending ${method} timed out` })
  ).pipe(
    Effect.mapError(surface),
    withSpanIfTraced("McpClient.notify", { attributes: { "mcp.method": method } })
  )
