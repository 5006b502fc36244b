/**
 * An MCP client as an Effect service: the initialize handshake with version negotiation, typed
 * requests (tools, resources, prompts, ping, logging), server notifications as a `Stream`, and
 * answers to server→client requests (elicitation, sampling, roots, ping) from handlers the app
 * provides. It runs over any {@link McpTransport}; its lifetime is a `Scope`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Queue from "effect/Queue"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, RequestId } from "./JsonRpc.js"
import * as JsonRpc from "./JsonRpc.js"
import type { OAuthError } from "../Errors.js"
import { isOAuthError } from "../HttpAuth.js"
import type { TokenWait } from "../internal/tokenWait.js"
import { currentTokenWait } from "../internal/tokenWait.js"
import * as Describe from "./internal/describe.js"
import { McpError, McpTransportError } from "./McpErrors.js"
import * as McpHeaders from "./McpHeaders.js"
import * as McpSchema from "./McpSchema.js"
import { McpTransport } from "./McpTransport.js"
import type * as Stdio from "./Stdio.js"
import * as Target from "./Target.js"

/**
 * Every error an MCP operation can fail with: a JSON-RPC error from the server (`McpError`), a
 * transport failure (`McpTransportError`), or, when the HTTP client below signs in with OAuth,
 * the typed OAuth error that stopped it (`AuthorizationError` with reason `Denied` / `Timeout`,
 * `ClientNotFound`, `DiscoveryError`, …; see {@link oauthCause}).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#responses
 * @since 0.1.0
 * @category errors
 */
export type McpClientError = McpError | McpTransportError | OAuthError

/**
 * The typed OAuth error behind any failure of an MCP operation, if there is one: the error itself
 * when `McpClient` failed with it (`AuthorizationError` for a sign-in denied or timed out,
 * `ClientNotFound`, `DiscoveryError`, …), or the `cause` of a transport error of reason
 * `Authorization`, or of the `HttpClientError` that `OAuthLayer`'s client raises. Lets a caller
 * tell "the user did not sign in" from "the server is down" in one place.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category error handling
 */
export const oauthCause = (error: unknown): Option.Option<OAuthError> => {
  let current: unknown = error
  // a bounded walk down the `cause` chain (a transport error wraps an HttpClientError wraps it)
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if (isOAuthError(current)) return Option.some(current)
    current = "cause" in current ? current.cause : undefined
  }
  return Option.none()
}

/**
 * What `McpClient` fails with for a transport error: the OAuth error itself when obtaining a
 * token failed, the transport error otherwise.
 */
const surface = (error: McpClientError): McpClientError =>
  error._tag === "McpTransportError" && error.reason === "Authorization" && isOAuthError(error.cause)
    ? error.cause
    : error

/**
 * Per-request options: a timeout for the server's answer (default: the client's `requestTimeout`,
 * 60 s; time the HTTP client spends obtaining a token — a sign-in waiting for the user — does not
 * count: the sign-in has its own timeout, 5 minutes by default), a progress
 * callback (sets `_meta.progressToken`, receives the matching `notifications/progress`) and extra
 * HTTP headers for this one request (Streamable HTTP; other transports ignore them).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/progress
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly onProgress?: ((progress: McpSchema.ProgressParams) => Effect.Effect<void>) | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * Answers to server→client requests. A capability is declared in `initialize` only when its
 * handler is given; a request for a method with no handler gets JSON-RPC error -32601. A handler
 * fails with `McpError` to answer with that error.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/sampling
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/roots
 * @since 0.1.0
 * @category models
 */
export interface McpClientHandlers {
  readonly elicitation?:
    | ((params: McpSchema.ElicitRequestParams) => Effect.Effect<McpSchema.ElicitResult, McpError>)
    | undefined
  readonly sampling?:
    | ((params: McpSchema.CreateMessageRequestParams) => Effect.Effect<McpSchema.CreateMessageResult, McpError>)
    | undefined
  readonly roots?: {
    readonly list: Effect.Effect<ReadonlyArray<McpSchema.Root>, McpError>
    readonly listChanged?: boolean | undefined
  } | undefined
}

/**
 * Options of the client itself (transport-independent).
 *
 * - `clientInfo`: name and version sent in `initialize` (default `effect-mcp-oauth` 0.1.0).
 * - `protocolVersion`: the revision offered (default `2025-11-25`).
 * - `capabilities`: extra client capabilities (merged with those implied by `handlers`).
 * - `handlers`: answers to server→client requests.
 * - `requestTimeout`: default per-request timeout (60 s) for the server's answer. The time a
 *   request waits for a token (refresh, browser or paste-back sign-in) stops this clock and is
 *   bounded by the OAuth timeouts instead (the authorizer's sign-in timeout, 5 minutes by
 *   default); after it, the clock starts again for the answer to the retried request.
 * - `maxInputRounds`: how many `InputRequiredResult` answers (MRTR, SEP-2322) one request may get
 *   before the client gives up (default 10).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @since 0.1.0
 * @category models
 */
export interface McpClientOptions {
  readonly clientInfo?: McpSchema.Implementation | undefined
  readonly protocolVersion?: string | undefined
  readonly capabilities?: McpSchema.ClientCapabilities | undefined
  readonly handlers?: McpClientHandlers | undefined
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly maxInputRounds?: number | undefined
}

/**
 * The method of the event the client publishes on `notifications` / `subscribe` after the server
 * answered 404 to a request carrying its `Mcp-Session-Id` and the client started a new session
 * (a fresh `initialize` with the same client info, capabilities and protocol version; handlers
 * kept). Its `params` are `{ initializeResult }` of the new session. Outside the `notifications/`
 * namespace: no server sends it. State the server kept for the old session (subscriptions, log
 * level) is gone; re-establish it here.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 * @since 0.1.0
 * @category constants
 */
export const SESSION_RESTARTED = "effect-mcp-oauth/session-restarted"

/**
 * Whether a notification is the client's {@link SESSION_RESTARTED} event.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 * @since 0.1.0
 * @category refinements
 */
export const isSessionRestarted = (notification: JsonRpcNotification): boolean =>
  notification.method === SESSION_RESTARTED

/**
 * A connected, initialized MCP session. When the server ends the session (HTTP 404 to a request
 * carrying `Mcp-Session-Id`), the request is retried once in a new session (see
 * {@link SESSION_RESTARTED}); `initializeResult`, `protocolVersion`, `serverInfo` and
 * `serverCapabilities` then describe the new session.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 * @category models
 */
export interface McpClient {
  /** The server's `initialize` result (unknown fields kept). */
  readonly initializeResult: McpSchema.InitializeResult
  /** The negotiated protocol revision. */
  readonly protocolVersion: McpSchema.ProtocolVersion
  readonly serverInfo: McpSchema.Implementation
  readonly serverCapabilities: McpSchema.ServerCapabilities
  /** Send any request and decode its result with `schema` (unknown fields kept). */
  readonly request: <A, I>(
    method: string,
    params: unknown,
    schema: Schema.Schema<A, I>,
    options?: RequestOptions
  ) => Effect.Effect<A, McpClientError>
  /** Send a notification. */
  readonly notify: (method: string, params?: unknown) => Effect.Effect<void, McpClientError>
  readonly ping: (options?: RequestOptions) => Effect.Effect<void, McpClientError>
  /**
   * All tools, following `nextCursor` through every page. On the 2026-07-28 wire a tool whose
   * `x-mcp-header` annotations break SEP-2243 is left out (with a warning) and cannot be called.
   */
  readonly listTools: (options?: RequestOptions) => Effect.Effect<ReadonlyArray<McpSchema.Tool>, McpClientError>
  /**
   * Call a tool. On the 2026-07-28 wire the arguments its `inputSchema` marks with
   * `x-mcp-header` (as last listed) are mirrored into `Mcp-Param-*` headers, and an
   * `InputRequiredResult` is answered from `handlers` and the call retried (MRTR).
   */
  readonly callTool: (
    name: string,
    args?: Readonly<Record<string, unknown>>,
    options?: RequestOptions
  ) => Effect.Effect<McpSchema.CallToolResult, McpClientError>
  /** All resources, following `nextCursor` through every page. */
  readonly listResources: (
    options?: RequestOptions
  ) => Effect.Effect<ReadonlyArray<McpSchema.Resource>, McpClientError>
  readonly readResource: (
    uri: string,
    options?: RequestOptions
  ) => Effect.Effect<McpSchema.ReadResourceResult, McpClientError>
  /** All resource templates, following `nextCursor` through every page. */
  readonly listResourceTemplates: (
    options?: RequestOptions
  ) => Effect.Effect<ReadonlyArray<McpSchema.ResourceTemplate>, McpClientError>
  /** All prompts, following `nextCursor` through every page. */
  readonly listPrompts: (options?: RequestOptions) => Effect.Effect<ReadonlyArray<McpSchema.Prompt>, McpClientError>
  readonly getPrompt: (
    name: string,
    args?: Readonly<Record<string, string>>,
    options?: RequestOptions
  ) => Effect.Effect<McpSchema.GetPromptResult, McpClientError>
  readonly setLoggingLevel: (
    level: McpSchema.LoggingLevel,
    options?: RequestOptions
  ) => Effect.Effect<void, McpClientError>
  /**
   * Server notifications (logging, progress, list_changed, …) published after the stream starts,
   * plus the client's own {@link SESSION_RESTARTED} event when the server ended the session and a
   * new one was initialized.
   */
  readonly notifications: Stream.Stream<JsonRpcNotification>
  /** A subscription that receives every notification (and {@link SESSION_RESTARTED}) from the moment it is made. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<JsonRpcNotification>, never, Scope.Scope>
}

/**
 * The client tag.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 * @category tags
 */
export const McpClient: Context.Tag<McpClient, McpClient> = Context.GenericTag<McpClient>(
  "effect-mcp-oauth/mcp/McpClient"
)

const decodeOptions = { onExcessProperty: "preserve" } as const

const decodeWith = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknown(schema, decodeOptions)
  return (value: unknown): Effect.Effect<A, McpTransportError> =>
    Effect.mapError(decode(value), (error) => {
      const { text, cause } = Describe.parseError(error)
      return new McpTransportError({
        reason: "Decode",
        description: `Unexpected ${what}: ${text}`,
        ...(cause === undefined ? {} : { cause })
      })
    })
}

const withParams = (params: unknown, extra: Record<string, unknown>): Record<string, unknown> => {
  const base = typeof params === "object" && params !== null ? { ...params } : {}
  const meta = "_meta" in base && typeof base._meta === "object" && base._meta !== null ? base._meta : {}
  return { ...base, _meta: { ...meta, ...extra } }
}

const isStateless = (version: string): boolean => McpSchema.STATELESS_PROTOCOL_VERSIONS.some((v) => v === version)

const invalidParams = (method: string) => (error: ParseResult.ParseError) =>
  new McpError({
    code: McpError.InvalidParams,
    message: `Invalid params for ${method}: ${Describe.parseError(error).text}`
  })

/**
 * A request's clock for its timeout: it runs while the request waits for the server's answer and
 * stops while the HTTP client below waits for a token (a refresh, or a sign-in that waits for the
 * user, bounded by the authorizer's own timeout); each such wait restarts it from zero, so the
 * timeout measures the answer to the request that carried the new token.
 */
const makeAnswerClock = Effect.sync(() => {
  // Plain state rather than a SubscriptionRef and a stream, and one sleep rather than a race:
  // this runs for every request.
  let waits = 0
  /** When the clock last started again after a pause (Clock millis). */
  let resumedAt = Number.NEGATIVE_INFINITY
  /** Completed (and replaced) whenever the clock stops or starts again. */
  let changed = Deferred.unsafeMake<void>(FiberId.none)
  const flip = () => {
    const previous = changed
    changed = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(previous, Effect.void)
  }
  const pause: TokenWait = (wait) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        if (waits++ === 0) flip()
      }),
      () => wait,
      () =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            if (--waits === 0) {
              resumedAt = clock.unsafeCurrentTimeMillis()
              flip()
            }
          })
        )
    )
  /** Completes once `timeout` has run on the clock without a pause. */
  const elapsed = (timeout: Duration.DurationInput): Effect.Effect<void> => {
    const millis = Duration.toMillis(timeout)
    if (!Number.isFinite(millis)) return Effect.never
    // `since`: when the clock last started; a pause that ended since then restarts it from zero
    const run = (since: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (waits > 0) {
          const signal = changed
          return Effect.zipRight(Deferred.await(signal), Effect.suspend(() => run(resumedAt)))
        }
        const start = Math.max(since, resumedAt)
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const left = start + millis - now
          return left <= 0 && waits === 0
            ? Effect.void
            : Effect.zipRight(Effect.sleep(Duration.millis(Math.max(left, 0))), run(start))
        })
      })
    return Effect.flatMap(Clock.currentTimeMillis, run)
  }
  return { pause, elapsed }
})

/**
 * Run `effect` (whose token waits go through the clock), failing with `onTimeout` once `timeout`
 * of answer time has passed.
 */
const withAnswerTimeout = <A, E>(
  effect: Effect.Effect<A, E>,
  timeout: Duration.DurationInput,
  onTimeout: () => McpTransportError
): Effect.Effect<A, E | McpTransportError> =>
  Effect.flatMap(makeAnswerClock, (clock) =>
    Effect.raceFirst(
      Effect.locally(effect, currentTokenWait, clock.pause),
      Effect.zipRight(clock.elapsed(timeout), Effect.failSync(onTimeout))
    ))

/**
 * Initialize a session over the `McpTransport` in context: send `initialize`, check the
 * negotiated version, send `notifications/initialized`, then let the transport start. Closing the
 * scope closes the transport.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: McpClientOptions = {}
): Effect.Effect<McpClient, McpClientError, McpTransport | Scope.Scope> =>
  Effect.gen(function*() {
    const transport = yield* McpTransport
    const scope = yield* Effect.scope
    const defaultTimeout = options.requestTimeout ?? Duration.seconds(60)
    const handlers = options.handlers ?? {}
    const pending = new Map<RequestId, Deferred.Deferred<unknown, McpClientError>>()
    const progress = new Map<RequestId, (progress: McpSchema.ProgressParams) => Effect.Effect<void>>()
    const running = new Map<RequestId, Fiber.RuntimeFiber<void>>()
    let closed: McpTransportError | undefined = undefined
    let nextId = 0
    /** The current session's handshake (replaced when the server ends a session and a new one starts). */
    let session: { initializeResult: McpSchema.InitializeResult; protocolVersion: McpSchema.ProtocolVersion }
    /** The `_meta` every request carries on a stateless (SEP-2575) session; `undefined` when stateful. */
    let stateless: Record<string, unknown> | undefined = undefined
    const notifications = yield* PubSub.unbounded<JsonRpcNotification>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(notifications))

    const closeAll = (error: McpTransportError) =>
      Effect.sync(() => {
        closed = error
        for (const deferred of pending.values()) Deferred.unsafeDone(deferred, Exit.fail(surface(error)))
        pending.clear()
      })

    // ---- server → client requests -------------------------------------------------------------

    const decodeParams = <A, I>(schema: Schema.Schema<A, I>, method: string, params: unknown) =>
      Effect.mapError(Schema.decodeUnknown(schema, decodeOptions)(params ?? {}), invalidParams(method))

    const dispatch = (method: string, params: unknown): Effect.Effect<unknown, McpError> => {
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

    const answer = (request: JsonRpcRequest) =>
      dispatch(request.method, request.params).pipe(
        Effect.map((result) => JsonRpc.success(request.id, result)),
        Effect.catchAll((error) => Effect.succeed(JsonRpc.failure(request.id, error))),
        Effect.catchAllDefect(() =>
          Effect.succeed(JsonRpc.failure(request.id, { code: McpError.InternalError, message: "Internal error" }))
        ),
        Effect.flatMap((response) =>
          withAnswerTimeout(
            transport.send(response),
            defaultTimeout,
            () => new McpTransportError({ reason: "Timeout", description: `Answering ${request.method} timed out` })
          )
        ),
        Effect.catchAll((error) => Effect.logWarning(`MCP: could not answer ${request.method}`, error.description)),
        Effect.ensuring(Effect.sync(() => running.delete(request.id))),
        Effect.withSpan("McpClient.answer", { attributes: { "mcp.method": request.method } })
      )

    // ---- incoming messages --------------------------------------------------------------------

    const onNotification = (message: JsonRpcNotification) =>
      Effect.gen(function*() {
        if (message.method === "notifications/progress") {
          const params = yield* Effect.option(Schema.decodeUnknown(McpSchema.ProgressParams)(message.params))
          if (params._tag === "Some") {
            const callback = progress.get(params.value.progressToken)
            if (callback !== undefined) yield* callback(params.value)
          }
        } else if (message.method === "notifications/cancelled") {
          const params = message.params
          if (typeof params === "object" && params !== null && "requestId" in params) {
            const id = params.requestId
            const fiber = typeof id === "string" || typeof id === "number" ? running.get(id) : undefined
            if (fiber !== undefined) yield* Fiber.interruptFork(fiber)
          }
        }
        yield* PubSub.publish(notifications, message)
      })

    const onMessage = (message: JsonRpcMessage): Effect.Effect<void> => {
      switch (message._tag) {
        case "Success": {
          const deferred = pending.get(message.id)
          if (deferred === undefined) return Effect.logDebug(`MCP: response to unknown request ${message.id}`)
          return Deferred.succeed(deferred, message.result)
        }
        case "Failure": {
          const deferred = message.id === null ? undefined : pending.get(message.id)
          const error = new McpError(message.error)
          if (deferred === undefined) return Effect.logWarning("MCP: error response to no known request", error.message)
          return Deferred.fail(deferred, error)
        }
        case "Notification":
          return onNotification(message)
        case "Request":
          return Effect.flatMap(Effect.forkIn(answer(message), scope), (fiber) =>
            Effect.sync(() => {
              running.set(message.id, fiber)
            }))
      }
    }

    yield* Mailbox.toStream(transport.incoming).pipe(
      Stream.runForEach(onMessage),
      Effect.onExit((exit) =>
        closeAll(
          Exit.isFailure(exit) && Cause.isFailType(exit.cause) ? exit.cause.error : new McpTransportError({
            reason: "Closed",
            description: "The connection to the MCP server closed"
          })
        )
      ),
      Effect.forkIn(scope)
    )

    // ---- client → server ----------------------------------------------------------------------

    const cancel = (id: RequestId, reason: string) =>
      transport.send(JsonRpc.notification("notifications/cancelled", { requestId: id, reason })).pipe(
        Effect.timeout(Duration.seconds(5)),
        Effect.ignore,
        Effect.forkIn(scope),
        Effect.asVoid
      )

    const rawRequest = (method: string, params: unknown, options?: RequestOptions) =>
      Effect.suspend(() => {
        if (closed !== undefined) return Effect.fail(surface(closed))
        const id = nextId++
        const onProgress = options?.onProgress
        const withProgress = onProgress === undefined ? params : withParams(params, { progressToken: id })
        const finalParams = stateless === undefined ? withProgress : withParams(withProgress, stateless)
        const timeout = options?.timeout ?? defaultTimeout
        return Effect.gen(function*() {
          const deferred = yield* Deferred.make<unknown, McpClientError>()
          pending.set(id, deferred)
          if (onProgress !== undefined) progress.set(id, onProgress)
          // The timeout bounds the server's answer; time spent obtaining a token (a sign-in
          // waiting for the user) stops the clock and is bounded by the sign-in timeout instead.
          const clock = yield* makeAnswerClock
          yield* transport.send(JsonRpc.request(id, method, finalParams), { headers: options?.headers }).pipe(
            Effect.locally(currentTokenWait, clock.pause),
            // a defect below reaches the caller at once rather than leaving it to the timeout
            Effect.catchAllCause((cause) => Deferred.failCause(deferred, Cause.map(cause, surface))),
            Effect.forkScoped
          )
          return yield* Effect.raceFirst(
            Deferred.await(deferred),
            Effect.zipRight(
              clock.elapsed(timeout),
              // built only on a timeout: an error captures a stack trace
              Effect.failSync(() =>
                new McpTransportError({
                  reason: "Timeout",
                  description: `No answer to ${method} within ${Duration.format(Duration.decode(timeout))}`
                })
              )
            )
          )
        }).pipe(
          Effect.scoped,
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              pending.delete(id)
              progress.delete(id)
              if (method === "initialize" || Exit.isSuccess(exit)) return Effect.void
              if (Exit.isInterrupted(exit)) return cancel(id, "interrupted")
              const failure = Cause.failureOption(exit.cause)
              return failure._tag === "Some" && failure.value._tag === "McpTransportError" &&
                  failure.value.reason === "Timeout"
                ? cancel(id, "timeout")
                : Effect.void
            })
          )
        )
      })

    /**
     * Stateless sessions (SEP-2575): a `-32022` answer lists the versions the server supports;
     * switch to one this client speaks statelessly and send the request again, once.
     */
    const retryWithSupportedVersion = (method: string, params: unknown, options?: RequestOptions) =>
    (error: McpClientError): Effect.Effect<unknown, McpClientError> => {
      if (stateless === undefined || error._tag !== "McpError" || error.code !== McpError.UnsupportedProtocolVersion) {
        return Effect.fail(error)
      }
      const data = error.data
      const supported = typeof data === "object" && data !== null && "supported" in data && Array.isArray(data.supported)
        ? data.supported.filter((v): v is string => typeof v === "string")
        : []
      const next = supported.find(isStateless)
      if (next === undefined) return Effect.fail(error)
      stateless = { ...stateless, "io.modelcontextprotocol/protocolVersion": next }
      return Effect.zipRight(transport.setProtocolVersion(next), rawRequest(method, params, options))
    }

    const versionedRequest = (method: string, params: unknown, options?: RequestOptions) =>
      Effect.catchAll(rawRequest(method, params, options), retryWithSupportedVersion(method, params, options))

    const exchange = (method: string, params: unknown, options?: RequestOptions) =>
      method === "initialize"
        ? versionedRequest(method, params, options)
        : recoverSession(() => versionedRequest(method, params, options))

    // ---- session recovery (Streamable HTTP: a 404 to a request carrying Mcp-Session-Id) --------

    /** Bumped by every fresh `initialize`; a 404 seen in an older session needs no new one. */
    let sessionGeneration = 0
    const restartLock = yield* Effect.makeSemaphore(1)

    const isSessionExpired = (error: unknown): error is McpTransportError =>
      error instanceof McpTransportError && error.reason === "SessionExpired"

    /**
     * Start a new session in place of the one generation `seen` ran in — once for all the
     * requests that saw its 404: a fresh `initialize` with the same client info, capabilities and
     * negotiated version, `notifications/initialized`, the transport restarted, subscribers told.
     */
    const restartSession = (seen: number): Effect.Effect<void, McpClientError> =>
      restartLock.withPermits(1)(Effect.suspend(() => {
        if (seen !== sessionGeneration) return Effect.void
        return Effect.gen(function*() {
          const result = yield* rawRequest("initialize", {
            protocolVersion: session.protocolVersion,
            capabilities,
            clientInfo
          }).pipe(Effect.flatMap(decodeWith(McpSchema.InitializeResult, "result of initialize")))
          if (result.protocolVersion !== session.protocolVersion) {
            return yield* Effect.fail(
              new McpTransportError({
                reason: "UnsupportedVersion",
                description: `The new session chose protocol version "${result.protocolVersion}" instead of "${session.protocolVersion}"`
              })
            )
          }
          session = { initializeResult: result, protocolVersion: session.protocolVersion }
          sessionGeneration++
          yield* sendNotification("notifications/initialized")
          yield* transport.start
          yield* Effect.logInfo("MCP: the server ended the session (HTTP 404); a new one was initialized")
          yield* PubSub.publish(notifications, JsonRpc.notification(SESSION_RESTARTED, { initializeResult: result }))
        }).pipe(Effect.withSpan("McpClient.restartSession"))
      }))

    /**
     * Run `send`; if the server ended the session (404), start a new one and run it again, once.
     * A second 404 is `SessionExpired`. A request made while a new session is being initialized
     * waits for it (it would otherwise go without a session id).
     */
    const recoverSession = <A>(
      send: () => Effect.Effect<A, McpClientError>
    ): Effect.Effect<A, McpClientError> =>
      Effect.zipRight(
        Effect.suspend(() => stateless === undefined ? restartLock.withPermits(1)(Effect.void) : Effect.void),
        Effect.suspend(() => sendRecovering(send, sessionGeneration))
      )

    const sendRecovering = <A>(
      send: () => Effect.Effect<A, McpClientError>,
      seen: number
    ): Effect.Effect<A, McpClientError> =>
      send().pipe(
        Effect.catchIf(
          (error) => stateless === undefined && isSessionExpired(error),
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

    // ---- SEP-2243: x-mcp-header parameters of the tools last listed ------------------------------

    const toolParams = new Map<string, ReadonlyArray<McpHeaders.ParamHeader>>()
    const rejectedTools = new Map<string, string>()

    const keepValidTools = (tools: ReadonlyArray<McpSchema.Tool>) =>
      Effect.gen(function*() {
        if (stateless === undefined) return tools
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

    /** The `Mcp-Param-*` headers of a `tools/call` on the 2026-07-28 wire. */
    const toolCallHeaders = (params: unknown, options?: RequestOptions): Effect.Effect<RequestOptions | undefined, McpError> => {
      if (stateless === undefined || typeof params !== "object" || params === null || !("name" in params)) {
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

    // ---- SEP-2322: multi round-trip requests ---------------------------------------------------

    const maxInputRounds = options.maxInputRounds ?? 10
    const inputRequiredMethods: ReadonlySet<string> = new Set(McpSchema.INPUT_REQUIRED_METHODS)
    const isInputRequired = (result: unknown): boolean =>
      typeof result === "object" && result !== null && "resultType" in result && result.resultType === "input_required"
    const decodeInputRequired = decodeWith(McpSchema.InputRequiredResult, "InputRequiredResult")

    /** The original params plus this round's answers and the opaque state, exactly as received. */
    const retryParams = (
      params: unknown,
      needed: McpSchema.InputRequiredResult,
      responses: Record<string, unknown>
    ): Record<string, unknown> => {
      const base: Record<string, unknown> = typeof params === "object" && params !== null ? { ...params } : {}
      delete base["inputResponses"]
      delete base["requestState"]
      return {
        ...base,
        ...(needed.inputRequests === undefined ? {} : { inputResponses: responses }),
        ...(needed.requestState === undefined ? {} : { requestState: needed.requestState })
      }
    }

    /**
     * Send a request; on the 2026-07-28 wire, answer each `InputRequiredResult` of a tool call,
     * prompt or resource read from `handlers` and retry with a new id, a bounded number of times.
     * A result with no `resultType` is complete.
     */
    const roundTrips = (method: string, params: unknown, options?: RequestOptions) =>
      Effect.gen(function*() {
        let current = params
        for (let round = 0;; round++) {
          const result = yield* exchange(method, current, options)
          if (stateless === undefined || !inputRequiredMethods.has(method) || !isInputRequired(result)) return result
          if (round >= maxInputRounds) {
            return yield* Effect.fail(
              new McpTransportError({
                reason: "Protocol",
                description: `${method} still required input after ${maxInputRounds} rounds`
              })
            )
          }
          const needed = yield* decodeInputRequired(result)
          const responses: Record<string, unknown> = {}
          for (const [key, input] of Object.entries(needed.inputRequests ?? {})) {
            responses[key] = yield* dispatch(input.method, input.params)
          }
          current = retryParams(params, needed, responses)
        }
      })

    const listTools = (options?: RequestOptions) =>
      paginate("tools/list", McpSchema.ListToolsResult, (page) => page.tools, (page) => page.nextCursor, options).pipe(
        Effect.flatMap(keepValidTools)
      )

    const callTool = (params: unknown, options?: RequestOptions) =>
      Effect.flatMap(
        // read the tools last listed when the call runs, not when it is built
        Effect.suspend(() => toolCallHeaders(params, options)),
        (withHeaders) => roundTrips("tools/call", params, withHeaders)
      )

    const knownTool = (params: unknown): boolean =>
      typeof params === "object" && params !== null && "name" in params && typeof params.name === "string" &&
      toolParams.has(params.name)

    /**
     * SEP-2243: a call of a tool whose `inputSchema` the client has not seen goes without
     * `Mcp-Param-*` headers; if the server answers `HeaderMismatch`, list the tools and retry once.
     */
    const toolsCall = (params: unknown, options?: RequestOptions) =>
      Effect.catchIf(
        callTool(params, options),
        (error) =>
          stateless !== undefined && error._tag === "McpError" && error.code === McpError.HeaderMismatch &&
          !knownTool(params),
        () => Effect.zipRight(listTools(options), callTool(params, options))
      )

    const request = <A, I>(method: string, params: unknown, schema: Schema.Schema<A, I>, options?: RequestOptions) =>
      (method === "tools/call" ? toolsCall(params, options) : roundTrips(method, params, options)).pipe(
        Effect.flatMap(decodeWith(schema, `result of ${method}`)),
        Effect.withSpan("McpClient.request", { attributes: { "mcp.method": method } })
      )

    const sendNotification = (method: string, params?: unknown): Effect.Effect<void, McpClientError> =>
      withAnswerTimeout(
        Effect.suspend(() => closed !== undefined ? Effect.fail(closed) : transport.send(JsonRpc.notification(method, params))),
        defaultTimeout,
        () => new McpTransportError({ reason: "Timeout", description: `Sending ${method} timed out` })
      ).pipe(
        Effect.mapError(surface),
        Effect.withSpan("McpClient.notify", { attributes: { "mcp.method": method } })
      )

    const notify = (method: string, params?: unknown): Effect.Effect<void, McpClientError> =>
      recoverSession(() => sendNotification(method, params))

    const paginate = <P, I, A>(
      method: string,
      schema: Schema.Schema<P, I>,
      items: (page: P) => ReadonlyArray<A>,
      cursorOf: (page: P) => string | undefined,
      options?: RequestOptions
    ): Effect.Effect<ReadonlyArray<A>, McpClientError> =>
      Effect.gen(function*() {
        const all: Array<A> = []
        const seen = new Set<string>()
        let cursor: string | undefined = undefined
        do {
          const page: P = yield* request(method, cursor === undefined ? {} : { cursor }, schema, options)
          all.push(...items(page))
          cursor = cursorOf(page)
          if (cursor !== undefined) {
            if (seen.has(cursor)) {
              return yield* Effect.fail(
                new McpTransportError({ reason: "Protocol", description: `${method} repeated cursor "${cursor}"` })
              )
            }
            seen.add(cursor)
          }
        } while (cursor !== undefined)
        return all
      }).pipe(Effect.withSpan(`McpClient.${method}`))

    // ---- handshake ----------------------------------------------------------------------------

    /** Stateless sessions: what `server/discover` says, shaped like an `initialize` result. */
    const discover = (version: string) =>
      request("server/discover", {}, McpSchema.DiscoverResult).pipe(
        Effect.map((found): McpSchema.InitializeResult => {
          const metaInfo = found._meta?.["io.modelcontextprotocol/serverInfo"]
          const serverInfo = found.serverInfo ??
            (typeof metaInfo === "object" && metaInfo !== null && "name" in metaInfo &&
                typeof metaInfo.name === "string" && "version" in metaInfo && typeof metaInfo.version === "string"
              ? { name: metaInfo.name, version: metaInfo.version }
              : { name: "unknown", version: "unknown" })
          return {
            protocolVersion: version,
            capabilities: found.capabilities ?? {},
            serverInfo,
            ...(found.instructions === undefined ? {} : { instructions: found.instructions })
          }
        })
      )

    const capabilities: McpSchema.ClientCapabilities = {
      ...(handlers.elicitation === undefined ? {} : { elicitation: {} }),
      ...(handlers.sampling === undefined ? {} : { sampling: {} }),
      ...(handlers.roots === undefined ? {} : { roots: { listChanged: handlers.roots.listChanged ?? false } }),
      ...options.capabilities
    }
    const clientInfo = options.clientInfo ?? { name: "effect-mcp-oauth", version: "0.1.0" }
    const offered = options.protocolVersion ?? McpSchema.LATEST_PROTOCOL_VERSION
    if (isStateless(offered)) {
      // SEP-2575: no handshake. Every request names the version (header and `_meta`), the
      // client info and capabilities; `server/discover` tells what the server offers.
      stateless = {
        "io.modelcontextprotocol/protocolVersion": offered,
        "io.modelcontextprotocol/clientInfo": clientInfo,
        "io.modelcontextprotocol/clientCapabilities": capabilities
      }
      yield* transport.setProtocolVersion(offered)
    }
    const initializeResult: McpSchema.InitializeResult = stateless !== undefined
      ? yield* discover(offered)
      : yield* request("initialize", { protocolVersion: offered, capabilities, clientInfo }, McpSchema.InitializeResult)
    const protocolVersion = yield* Schema.decodeUnknown(McpSchema.ProtocolVersion)(initializeResult.protocolVersion).pipe(
      Effect.mapError(() =>
        new McpTransportError({
          reason: "UnsupportedVersion",
          description: `The server chose protocol version "${initializeResult.protocolVersion}"; this client speaks ${
            McpSchema.SUPPORTED_PROTOCOL_VERSIONS.join(", ")
          }`
        })
      )
    )
    session = { initializeResult, protocolVersion }
    if (stateless === undefined) {
      yield* transport.setProtocolVersion(protocolVersion)
      yield* sendNotification("notifications/initialized")
      yield* transport.start
    }

    const emptyResult = (method: string, params: unknown, options?: RequestOptions) =>
      Effect.asVoid(request(method, params, McpSchema.EmptyResult, options))

    return McpClient.of({
      get initializeResult() {
        return session.initializeResult
      },
      get protocolVersion() {
        return session.protocolVersion
      },
      get serverInfo() {
        return session.initializeResult.serverInfo
      },
      get serverCapabilities() {
        return session.initializeResult.capabilities
      },
      request,
      notify,
      ping: (options) => emptyResult("ping", undefined, options),
      listTools: (options) => listTools(options),
      callTool: (name, args, options) =>
        request("tools/call", args === undefined ? { name } : { name, arguments: args }, McpSchema.CallToolResult, options),
      listResources: (options) =>
        paginate(
          "resources/list",
          McpSchema.ListResourcesResult,
          (page) => page.resources,
          (page) => page.nextCursor,
          options
        ),
      readResource: (uri, options) => request("resources/read", { uri }, McpSchema.ReadResourceResult, options),
      listResourceTemplates: (options) =>
        paginate(
          "resources/templates/list",
          McpSchema.ListResourceTemplatesResult,
          (page) => page.resourceTemplates,
          (page) => page.nextCursor,
          options
        ),
      listPrompts: (options) =>
        paginate("prompts/list", McpSchema.ListPromptsResult, (page) => page.prompts, (page) => page.nextCursor, options),
      getPrompt: (name, args, options) =>
        request("prompts/get", args === undefined ? { name } : { name, arguments: args }, McpSchema.GetPromptResult, options),
      setLoggingLevel: (level, options) => emptyResult("logging/setLevel", { level }, options),
      notifications: Stream.fromPubSub(notifications),
      subscribe: PubSub.subscribe(notifications)
    })
  }).pipe(Effect.withSpan("McpClient.make"))

/**
 * The client as a layer over the `McpTransport` in context.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 * @category layers
 */
export const layerTransport = (
  options: McpClientOptions = {}
): Layer.Layer<McpClient, McpClientError, McpTransport> => Layer.scoped(McpClient, make(options))

/**
 * Client options plus transport options (auth, headers, reconnection, stdio knobs).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends McpClientOptions, Target.TransportOptions {}

/**
 * Connect to a server named by a target (URL, script path or server entry; see {@link Target.infer})
 * and initialize the session, in the current scope. An `http(s)` target needs an
 * `HttpClient.HttpClient` (every request goes through it, so an OAuth client below signs them);
 * a stdio target needs a `CommandExecutor` (e.g. `NodeContext.layer`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 * @category constructors
 */
export function connect(
  target: Stdio.StdioOptions & { readonly transport?: "stdio" | undefined },
  options?: ConnectOptions
): Effect.Effect<McpClient, McpClientError, Scope.Scope | CommandExecutor.CommandExecutor>
export function connect(
  target: Target.HttpUrl | URL | Target.HttpServerConfig,
  options?: ConnectOptions
): Effect.Effect<McpClient, McpClientError, Scope.Scope | HttpClient.HttpClient>
export function connect(
  target: Target.Target,
  options?: ConnectOptions
): Effect.Effect<McpClient, McpClientError, Scope.Scope | HttpClient.HttpClient | CommandExecutor.CommandExecutor>
export function connect(
  target: Target.Target,
  options: ConnectOptions = {}
): Effect.Effect<McpClient, McpClientError, Scope.Scope | HttpClient.HttpClient | CommandExecutor.CommandExecutor> {
  return Effect.gen(function*() {
    // A session that fails to start releases its transport at once (no process or session left
    // running until the caller's scope ends).
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    return yield* make(options).pipe(
      Effect.provideServiceEffect(McpTransport, Target.transport(target, options)),
      Scope.extend(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
      // a transport that signs in while connecting (legacy SSE's GET) fails with the OAuth error too
      Effect.mapError(surface)
    )
  }).pipe(Effect.withSpan("McpClient.connect"))
}

/**
 * The client as a layer, with the transport inferred from the target (FastMCP's
 * `infer_transport`). The session lives as long as the layer.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @since 0.1.0
 * @category layers
 */
export function layer(
  target: Stdio.StdioOptions & { readonly transport?: "stdio" | undefined },
  options?: ConnectOptions
): Layer.Layer<McpClient, McpClientError, CommandExecutor.CommandExecutor>
export function layer(
  target: Target.HttpUrl | URL | Target.HttpServerConfig,
  options?: ConnectOptions
): Layer.Layer<McpClient, McpClientError, HttpClient.HttpClient>
export function layer(
  target: Target.Target,
  options?: ConnectOptions
): Layer.Layer<McpClient, McpClientError, HttpClient.HttpClient | CommandExecutor.CommandExecutor>
export function layer(
  target: Target.Target,
  options: ConnectOptions = {}
): Layer.Layer<McpClient, McpClientError, HttpClient.HttpClient | CommandExecutor.CommandExecutor> {
  return Layer.scoped(McpClient, connect(target, options))
}

/**
 * One layer per entry of an `mcpServers` document (each still needs its `HttpClient` or
 * `CommandExecutor`). Use it to pick one server by name: `McpClient.layers(config).github`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category layers
 */
export const layers = (
  config: Target.McpConfig,
  options: ConnectOptions = {}
): Record<string, Layer.Layer<McpClient, McpClientError, HttpClient.HttpClient | CommandExecutor.CommandExecutor>> =>
  Object.fromEntries(Object.entries(config.mcpServers).map(([name, entry]) => [name, layer(entry, options)]))

/**
 * Connect to every server of an `mcpServers` document (concurrently), in the current scope.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category constructors
 */
export const connectAll = (
  config: Target.McpConfig,
  options: ConnectOptions = {}
): Effect.Effect<
  Record<string, McpClient>,
  McpClientError,
  Scope.Scope | HttpClient.HttpClient | CommandExecutor.CommandExecutor
> =>
  Effect.all(
    Object.fromEntries(Object.entries(config.mcpServers).map(([name, entry]) => [name, connect(entry, options)])),
    { concurrency: "unbounded" }
  ).pipe(Effect.withSpan("McpClient.connectAll"))
