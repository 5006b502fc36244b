/**
 * The stdio ↔ remote MCP bridge: everything the host sends is forwarded to the remote server
 * through an `McpClient` (Streamable HTTP or legacy HTTP+SSE, over the `HttpClient` in context —
 * `OAuthLayer`'s, so every request is signed in), and everything the server sends comes back:
 *
 * - host requests are sent upstream and answered under the host's own id; `ping` is answered here;
 * - the host's `initialize` starts the upstream session with the host's client info, protocol
 *   version and capabilities, and is answered with the server's result (or at once from the
 *   result cached by an earlier run, while the upstream session — and a sign-in — proceed; see
 *   {@link ProxyOptions.initializeCache}); with nothing cached and the session not ready within
 *   {@link ProxyOptions.initializeWait} (a sign-in in the browser), with a provisional result
 *   (./ProvisionalInitialize.ts), followed by `list_changed` notifications once the server is there;
 * - server notifications (progress, logging, list changes…) are forwarded as they are;
 * - server → client requests (elicitation, sampling, roots) are asked of the host under ids of
 *   the proxy's own and its answers returned; the server cancelling one cancels it at the host;
 * - `notifications/cancelled` from the host interrupts the forwarded request (the client then
 *   cancels it upstream under the upstream id);
 * - a session the server forgot (404) is re-initialized by `McpClient`; a connection that closed
 *   is dropped and made again at the next request; failures become JSON-RPC errors for the host,
 *   and the proxy stays up;
 * - a malformed line from the host gets a `-32700` error and is logged; the connection is kept;
 * - a failed sign-in (denied, timed out…) is not retried at once: for
 *   {@link ProxyOptions.signInRetryAfter} every host request is answered with the JSON-RPC error
 *   naming that failure, and the first request after it starts a new sign-in.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as Scope from "effect/Scope"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as ScopeModule from "effect/Scope"
import { oauthCause } from "../mcp/McpClient.js"
import * as McpClient from "../mcp/McpClient.js"
import { McpError } from "../mcp/McpErrors.js"
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, RequestId } from "../mcp/JsonRpc.js"
import * as JsonRpc from "../mcp/JsonRpc.js"
import * as McpSchema from "../mcp/McpSchema.js"
import type { HostChannel } from "./HostChannel.js"
import * as ProvisionalInitialize from "./ProvisionalInitialize.js"

/**
 * How the proxy reaches the remote server: Streamable HTTP, the legacy HTTP+SSE transport, or
 * one and then the other when the first is refused (an HTTP 4xx other than 401/403, or a
 * protocol error).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#backwards-compatibility
 * @since 0.1.0
 * @category models
 */
export type TransportStrategy = "http-first" | "sse-first" | "http-only" | "sse-only"

/**
 * A place to remember the server's last `initialize` result, so that the next start can answer
 * the host's `initialize` at once instead of waiting for the upstream session (and a sign-in).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @since 0.1.0
 * @category models
 */
export interface InitializeCache {
  readonly get: Effect.Effect<Option.Option<unknown>>
  readonly set: (result: unknown) => Effect.Effect<void>
}

/**
 * Options of {@link run}.
 *
 * - `url`: the remote MCP server.
 * - `transport`: see {@link TransportStrategy} (default `"http-first"`).
 * - `headers`: extra HTTP headers on every request to the server.
 * - `requestTimeout`: how long a forwarded request may wait for the server's answer (default
 *   1 hour: the host decides, and cancels with `notifications/cancelled`).
 * - `initializeCache`: where the server's `initialize` result is kept between runs; when it holds
 *   one for the protocol version the host asks for, the host's `initialize` is answered from it
 *   at once, and the upstream session starts in the background (requests wait for it).
 * - `signInRetryAfter`: after a failed sign-in, how long host requests get that failure as their
 *   JSON-RPC error instead of opening the browser again (default 60 seconds; 0 retries at once).
 * - `initializeWait`: with no cached result, how long the host's `initialize` waits for the
 *   server's own answer before it gets a provisional one (default 10 seconds, inside hosts'
 *   start-up timeouts; `Duration.infinity` always waits).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export interface ProxyOptions {
  readonly url: string
  readonly transport?: TransportStrategy | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly initializeCache?: InitializeCache | undefined
  readonly signInRetryAfter?: Duration.DurationInput | undefined
  readonly initializeWait?: Duration.DurationInput | undefined
}

const InitializeParams = Schema.Struct({
  protocolVersion: Schema.String,
  capabilities: McpSchema.ClientCapabilities,
  clientInfo: McpSchema.Implementation
})
type InitializeParams = typeof InitializeParams.Type

const decodeInitialize = Schema.decodeUnknown(InitializeParams, { onExcessProperty: "preserve" })
const decodeLoose = <A, I>(schema: Schema.Schema<A, I>) => Schema.decodeUnknown(schema, { onExcessProperty: "preserve" })
const RootsResult = Schema.Struct({ roots: Schema.Array(McpSchema.Root) })

/** A JSON-RPC error object for the host from any failure of a forwarded request. */
const errorObject = (error: McpClient.McpClientError): { code: number; message: string; data?: unknown } => {
  if (error._tag === "McpError") {
    return error.data === undefined
      ? { code: error.code, message: error.message }
      : { code: error.code, message: error.message, data: error.data }
  }
  const oauth = oauthCause(error)
  if (Option.isSome(oauth)) {
    return {
      code: McpError.InternalError,
      message: `Sign-in to the remote MCP server failed: ${oauth.value.message}`,
      data: { reason: oauth.value._tag }
    }
  }
  return {
    code: McpError.InternalError,
    message: `The remote MCP server is unavailable: ${error.message}`,
    data: { reason: error._tag === "McpTransportError" ? error.reason : error._tag }
  }
}

/** Whether a failed attempt with the first transport should be retried with the other one. */
const shouldFallBack = (error: McpClient.McpClientError): boolean =>
  error._tag === "McpTransportError" && Option.isNone(oauthCause(error)) &&
  ((error.reason === "Http" && error.status !== undefined && error.status >= 400 && error.status < 500 &&
    error.status !== 401 && error.status !== 403) ||
    error.reason === "Protocol" || error.reason === "Decode")

/** Whether the client is no use any more (its connection ended): make a new one next time. */
const isClosed = (error: McpClient.McpClientError): boolean =>
  error._tag === "McpTransportError" && error.reason === "Closed"

type Upstream =
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Connecting"; readonly done: Deferred.Deferred<McpClient.McpClient, McpClient.McpClientError> }
  | {
    readonly _tag: "Connected"
    readonly client: McpClient.McpClient
    readonly scope: ScopeModule.CloseableScope
    /** The server's notifications not yet sent to the host, in order. */
    readonly notifications: Queue.Dequeue<JsonRpcNotification>
  }

type Connected = Upstream & { readonly _tag: "Connected" }

type ErrorObject = { code: number; message: string; data?: unknown }

/** The state of one bridge, shared by the steps below (one host, one upstream session at a time). */
interface Bridge {
  readonly options: ProxyOptions
  readonly host: HostChannel
  /** The scope of `run`: forked work and upstream sessions live in it. */
  readonly scope: ScopeModule.Scope
  readonly httpClient: HttpClient.HttpClient
  readonly requestTimeout: Duration.DurationInput
  /** The host's `initialize` params, once it sent them. */
  readonly initialized: Deferred.Deferred<InitializeParams>
  readonly signInRetryAfter: number
  /**
   * Everything written to the host goes through this lock, and the server's notifications are
   * sent (in order) before any answer: a progress notification must reach the host before the
   * result of its request, as it left the server.
   */
  readonly writeLock: Effect.Semaphore
  /** Requests the proxy sent to the host (server → client), by the proxy's id. */
  readonly askedHost: Map<RequestId, Deferred.Deferred<unknown, McpError>>
  /** Host requests being forwarded, by the host's id (for `notifications/cancelled`). */
  readonly forwarding: Map<RequestId, Fiber.RuntimeFiber<void>>
  upstream: Upstream
  /** The last sign-in failure and when a new sign-in may start (epoch ms). */
  signInFailure: { readonly error: McpClient.McpClientError; readonly until: number } | undefined
  /** Whether the host got the provisional `initialize` result (see ./ProvisionalInitialize.ts). */
  provisional: boolean
  nextHostId: number
}

const makeBridge = (
  options: ProxyOptions,
  host: HostChannel
): Effect.Effect<Bridge, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    return {
      options,
      host,
      scope: yield* Effect.scope,
      httpClient: yield* HttpClient.HttpClient,
      requestTimeout: options.requestTimeout ?? Duration.hours(1),
      initialized: yield* Deferred.make<InitializeParams>(),
      signInRetryAfter: Duration.toMillis(options.signInRetryAfter ?? Duration.seconds(60)),
      writeLock: yield* Effect.makeSemaphore(1),
      askedHost: new Map(),
      forwarding: new Map(),
      upstream: { _tag: "Idle" },
      signInFailure: undefined,
      provisional: false,
      nextHostId: 0
    }
  })

// ---- writing to the host ---------------------------------------------------------------------

/** Server notifications go to the host as they are, except the client's own events. */
const forwardNotification = (bridge: Bridge, notification: JsonRpcNotification) =>
  McpClient.isSessionRestarted(notification)
    ? Effect.logInfo("proxy: the remote server ended the session; a new one was initialized")
    : notification.method === "notifications/cancelled"
    ? Effect.void // handled by the client (it interrupts the forwarded server request)
    : bridge.host.send(notification)

/** Sends the server's pending notifications to the host; call it under the write lock. */
const pump = (bridge: Bridge) =>
  Effect.suspend(() => {
    const current = bridge.upstream
    return current._tag === "Connected"
      ? Effect.flatMap(Queue.takeAll(current.notifications), (pending) =>
        Effect.forEach(pending, (n) => forwardNotification(bridge, n), { discard: true }))
      : Effect.void
  })

/** Writes `message` to the host, after the server's notifications that arrived before it. */
const send = (bridge: Bridge, message: JsonRpcMessage) =>
  bridge.writeLock.withPermits(1)(Effect.zipRight(pump(bridge), bridge.host.send(message)))

// ---- server → client requests, asked of the host -----------------------------------------------

const askHost = (bridge: Bridge, method: string, params: unknown): Effect.Effect<unknown, McpError> =>
  Effect.suspend(() => {
    const id = `proxy-${bridge.nextHostId++}`
    return Effect.flatMap(Deferred.make<unknown, McpError>(), (answer) => {
      bridge.askedHost.set(id, answer)
      return send(bridge, JsonRpc.request(id, method, params)).pipe(
        Effect.zipRight(Deferred.await(answer)),
        Effect.onInterrupt(() =>
          send(bridge, JsonRpc.notification("notifications/cancelled", { requestId: id, reason: "cancelled by the server" }))
        ),
        Effect.ensuring(Effect.sync(() => bridge.askedHost.delete(id)))
      )
    })
  })

const answerOf = <A, I>(bridge: Bridge, schema: Schema.Schema<A, I>, method: string, params: unknown) =>
  Effect.flatMap(askHost(bridge, method, params), (result) =>
    Effect.mapError(
      decodeLoose(schema)(result),
      () => new McpError({ code: McpError.InternalError, message: `The host's answer to ${method} is malformed` })
    ))

/** The server → client requests the host declared it answers, asked of it. */
const handlersFor = (bridge: Bridge, capabilities: McpSchema.ClientCapabilities): McpClient.McpClientHandlers => ({
  ...(capabilities.elicitation === undefined ? {} : {
    elicitation: (params) => answerOf(bridge, McpSchema.ElicitResult, "elicitation/create", params)
  }),
  ...(capabilities.sampling === undefined ? {} : {
    sampling: (params) => answerOf(bridge, McpSchema.CreateMessageResult, "sampling/createMessage", params)
  }),
  ...(capabilities.roots === undefined ? {} : {
    roots: {
      list: Effect.map(answerOf(bridge, RootsResult, "roots/list", {}), (r) => r.roots),
      listChanged: capabilities.roots.listChanged
    }
  })
})

// ---- the upstream session ----------------------------------------------------------------------

/** The transports to try, in order. */
const transportOrder = (strategy: TransportStrategy): ReadonlyArray<"http" | "sse"> =>
  strategy === "http-only"
    ? ["http"]
    : strategy === "sse-only"
    ? ["sse"]
    : strategy === "sse-first"
    ? ["sse", "http"]
    : ["http", "sse"]

const connectWith = (bridge: Bridge, init: InitializeParams, kind: "http" | "sse", session: ScopeModule.Scope) =>
  McpClient.connect(
    {
      url: bridge.options.url,
      transport: kind,
      ...(bridge.options.headers === undefined ? {} : { headers: bridge.options.headers })
    },
    {
      clientInfo: init.clientInfo,
      protocolVersion: init.protocolVersion,
      capabilities: init.capabilities,
      handlers: handlersFor(bridge, init.capabilities),
      requestTimeout: bridge.requestTimeout
    }
  ).pipe(ScopeModule.extend(session), Effect.provideService(HttpClient.HttpClient, bridge.httpClient))

/** A new upstream session with the host's `initialize` params (falling back to the other transport). */
const connect = (bridge: Bridge, init: InitializeParams): Effect.Effect<Connected, McpClient.McpClientError> =>
  Effect.gen(function*() {
    const session = yield* ScopeModule.fork(bridge.scope, ExecutionStrategy.sequential)
    const order = transportOrder(bridge.options.transport ?? "http-first")
    const client = yield* connectWith(bridge, init, order[0]!, session).pipe(
      Effect.catchIf(
        (error) => order.length > 1 && shouldFallBack(error),
        (error) =>
          Effect.zipRight(
            Effect.logInfo(`proxy: ${order[0]} transport refused (${error.message}); trying ${order[1]}`),
            connectWith(bridge, init, order[1]!, session)
          )
      ),
      Effect.onError((cause) => ScopeModule.close(session, Exit.failCause(cause)))
    )
    // Two subscriptions: `notifications` holds what is still to be sent (emptied only under the
    // write lock), `wake` only says that something arrived.
    const notifications = yield* ScopeModule.extend(client.subscribe, session)
    const wake = yield* ScopeModule.extend(client.subscribe, session)
    yield* Effect.forkIn(
      Effect.forever(Effect.zipRight(Queue.take(wake), bridge.writeLock.withPermits(1)(pump(bridge)))),
      session
    )
    if (bridge.options.initializeCache !== undefined) yield* bridge.options.initializeCache.set(client.initializeResult)
    yield* Effect.logInfo(
      `proxy: connected to ${bridge.options.url} (${client.serverInfo.name} ${client.serverInfo.version}, protocol ${client.protocolVersion})`
    )
    return { _tag: "Connected" as const, client, scope: session, notifications }
  })

/** A failed sign-in holds off the next one for `signInRetryAfter`. */
const holdOffSignIn = (bridge: Bridge, error: McpClient.McpClientError) =>
  Effect.flatMap(Clock.currentTimeMillis, (failedAt) =>
    Effect.zipRight(
      Effect.sync(() => void (bridge.signInFailure = { error, until: failedAt + bridge.signInRetryAfter })),
      Effect.logWarning(
        `proxy: the sign-in failed; requests get this error until ${
          new Date(failedAt + bridge.signInRetryAfter).toISOString()
        }, then the next one signs in again`
      )
    ))

/** Starts connecting (in the background, once for all callers) and waits for the outcome. */
const startUpstream = (bridge: Bridge): Effect.Effect<McpClient.McpClient, McpClient.McpClientError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const failed = bridge.signInFailure
    if (failed !== undefined && now < failed.until) return yield* Effect.fail(failed.error)
    const done = yield* Deferred.make<McpClient.McpClient, McpClient.McpClientError>()
    bridge.upstream = { _tag: "Connecting", done }
    const init = yield* Deferred.await(bridge.initialized)
    yield* connect(bridge, init).pipe(
      Effect.tap((connected) => {
        bridge.upstream = connected
        bridge.signInFailure = undefined
        return Deferred.succeed(done, connected.client)
      }),
      Effect.tapError((error) => {
        bridge.upstream = { _tag: "Idle" }
        const signIn = Option.isSome(oauthCause(error)) && bridge.signInRetryAfter > 0
        return Effect.zipRight(
          signIn ? holdOffSignIn(bridge, error) : Effect.void,
          Effect.zipRight(
            Effect.logWarning(`proxy: could not connect to ${bridge.options.url}: ${error.message}`),
            Deferred.fail(done, error)
          )
        )
      }),
      Effect.ignore,
      Effect.forkIn(bridge.scope)
    )
    return yield* Deferred.await(done)
  })

/** The upstream client: the current one, the one being made, or a new one (once for all callers). */
const upstreamClient = (bridge: Bridge): Effect.Effect<McpClient.McpClient, McpClient.McpClientError> =>
  Effect.suspend(() => {
    const current = bridge.upstream
    switch (current._tag) {
      case "Connected":
        return Effect.succeed(current.client)
      case "Connecting":
        return Deferred.await(current.done)
      case "Idle":
        return startUpstream(bridge)
    }
  })

/** Forget a client whose connection closed; the next request connects again. */
const dropIfClosed = (bridge: Bridge, client: McpClient.McpClient, error: McpClient.McpClientError) =>
  Effect.suspend(() => {
    const current = bridge.upstream
    if (!isClosed(error) || current._tag !== "Connected" || current.client !== client) return Effect.void
    bridge.upstream = { _tag: "Idle" }
    return Effect.zipRight(
      Effect.logWarning("proxy: the connection to the remote server closed; reconnecting at the next request"),
      Effect.forkIn(ScopeModule.close(current.scope, Exit.void), bridge.scope)
    )
  })

// ---- host → server -----------------------------------------------------------------------------

/** A sign-in failure's error says when the next sign-in may start. */
const withRetry = (bridge: Bridge, error: McpClient.McpClientError, object: ErrorObject): ErrorObject => {
  const failed = bridge.signInFailure
  if (failed === undefined || failed.error !== error) return object
  const data = typeof object.data === "object" && object.data !== null ? object.data : {}
  return {
    ...object,
    message: `${object.message} (a new sign-in starts at the first request after ${new Date(failed.until).toISOString()})`,
    data: { ...data, retryAfter: new Date(failed.until).toISOString() }
  }
}

const reply = (bridge: Bridge, id: RequestId, result: Effect.Effect<unknown, McpClient.McpClientError>) =>
  result.pipe(
    Effect.matchEffect({
      onSuccess: (value) => send(bridge, JsonRpc.success(id, value)),
      onFailure: (error) => send(bridge, JsonRpc.failure(id, withRetry(bridge, error, errorObject(error))))
    })
  )

const forward = (bridge: Bridge, request: JsonRpcRequest) =>
  reply(
    bridge,
    request.id,
    Effect.flatMap(upstreamClient(bridge), (client) => {
      const empty = bridge.provisional
        ? ProvisionalInitialize.emptyListFor(request.method, client.initializeResult.capabilities)
        : undefined
      return empty !== undefined ? Effect.succeed(empty) : client.request(request.method, request.params, Schema.Unknown).pipe(
        Effect.tapError((error) => dropIfClosed(bridge, client, error))
      )
    })
  )

/**
 * No cached result: the server's own answer when the session is ready within `initializeWait`,
 * else the provisional one — and, once the server is connected, its `list_changed` notifications.
 */
const initializeFresh = (bridge: Bridge, id: RequestId, init: InitializeParams) =>
  Effect.gen(function*() {
    const wait = bridge.options.initializeWait ?? Duration.seconds(10)
    const early = yield* Effect.either(Effect.timeoutOption(upstreamClient(bridge), wait))
    if (early._tag === "Left" || Option.isSome(early.right)) {
      return yield* reply(bridge, id, Effect.map(early, (client) => Option.getOrThrow(client).initializeResult))
    }
    bridge.provisional = true
    yield* Effect.logInfo(
      `proxy: the server is not ready after ${Duration.format(wait)} (a sign-in?); answered initialize provisionally`
    )
    yield* send(bridge, JsonRpc.success(id, ProvisionalInitialize.result(init.protocolVersion, bridge.options.url)))
    yield* upstreamClient(bridge).pipe(
      Effect.flatMap((client) =>
        Effect.forEach(
          ProvisionalInitialize.listChanged(client.initializeResult.capabilities),
          (notification) => send(bridge, notification),
          { discard: true }
        )
      ),
      Effect.ignore,
      Effect.forkIn(bridge.scope)
    )
  })

const initialize = (bridge: Bridge, request: JsonRpcRequest) =>
  Effect.gen(function*() {
    const params = yield* Effect.either(decodeInitialize(request.params ?? {}))
    if (params._tag === "Left") {
      return yield* send(
        bridge,
        JsonRpc.failure(request.id, { code: McpError.InvalidParams, message: "Invalid initialize params" })
      )
    }
    yield* Deferred.succeed(bridge.initialized, params.right)
    const cache = bridge.options.initializeCache
    const cached = cache === undefined ? Option.none() : yield* cache.get
    const usable = Option.filter(cached, (result) =>
      typeof result === "object" && result !== null && "protocolVersion" in result &&
      result.protocolVersion === params.right.protocolVersion)
    if (Option.isSome(usable)) {
      // Answer now; the session (and a sign-in, if needed) starts meanwhile, requests wait for it.
      yield* Effect.logInfo("proxy: answered initialize from the cached server capabilities")
      yield* Effect.forkIn(Effect.ignore(upstreamClient(bridge)), bridge.scope)
      return yield* send(bridge, JsonRpc.success(request.id, usable.value))
    }
    yield* initializeFresh(bridge, request.id, params.right)
  })

const onRequest = (bridge: Bridge, request: JsonRpcRequest) => {
  const work = request.method === "initialize"
    ? initialize(bridge, request)
    : request.method === "ping"
    ? send(bridge, JsonRpc.success(request.id, {}))
    : forward(bridge, request)
  return Effect.flatMap(
    Effect.forkIn(Effect.ensuring(work, Effect.sync(() => bridge.forwarding.delete(request.id))), bridge.scope),
    (fiber) => Effect.sync(() => void bridge.forwarding.set(request.id, fiber))
  )
}

const onNotification = (bridge: Bridge, notification: JsonRpcNotification) => {
  if (notification.method === "notifications/initialized") return Effect.void // the client sent its own
  if (notification.method === "notifications/cancelled") {
    const params = notification.params
    const id = typeof params === "object" && params !== null && "requestId" in params ? params.requestId : undefined
    const fiber = typeof id === "string" || typeof id === "number" ? bridge.forwarding.get(id) : undefined
    return fiber === undefined ? Effect.void : Fiber.interruptFork(fiber)
  }
  const current = bridge.upstream
  if (current._tag !== "Connected") {
    return Effect.logDebug(`proxy: ${notification.method} from the host before the session started; dropped`)
  }
  return current.client.notify(notification.method, notification.params).pipe(
    Effect.catchAll((error) => Effect.logWarning(`proxy: could not forward ${notification.method}: ${error.message}`))
  )
}

/** The host's answer to a server → client request the proxy asked it. */
const onResponse = (bridge: Bridge, id: RequestId | null, outcome: Exit.Exit<unknown, McpError>) =>
  Effect.suspend(() => {
    const pending = id === null ? undefined : bridge.askedHost.get(id)
    return pending === undefined
      ? Effect.logWarning(`proxy: the host answered an unknown request ${String(id)}`)
      : Deferred.done(pending, outcome)
  })

const onMessage = (bridge: Bridge, message: JsonRpcMessage): Effect.Effect<void> => {
  switch (message._tag) {
    case "Request":
      return onRequest(bridge, message)
    case "Notification":
      return onNotification(bridge, message)
    case "Success":
      return onResponse(bridge, message.id, Exit.succeed(message.result))
    case "Failure":
      return onResponse(bridge, message.id, Exit.fail(new McpError(message.error)))
  }
}

/**
 * Runs the bridge until the host closes its input (or the effect is interrupted: SIGTERM). The
 * upstream session is closed with the scope (HTTP DELETE of the session).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: ProxyOptions,
  host: HostChannel
): Effect.Effect<void, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const bridge = yield* makeBridge(options, host)
    yield* host.incoming.pipe(
      Stream.runForEach((line) =>
        line._tag === "Right"
          ? Effect.forEach(line.right, (message) => onMessage(bridge, message), { discard: true })
          : Effect.zipRight(
            Effect.logWarning(`proxy: malformed message from the host: ${line.left.description}`),
            send(bridge, JsonRpc.failure(null, { code: McpError.ParseError, message: line.left.description }))
          )
      )
    )
    yield* Effect.logInfo("proxy: the host closed stdin; shutting down")
  }).pipe(Effect.withSpan("Proxy.run"))
