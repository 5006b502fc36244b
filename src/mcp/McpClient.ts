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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { JsonRpcNotification } from "./JsonRpc.js"
import type { OAuthError } from "../Errors.js"
import { isOAuthError } from "../HttpAuth.js"
import { spanIfTraced } from "../internal/tracing.js"
import * as State from "./internal/clientState.js"
import * as Handshake from "./internal/handshake.js"
import * as Incoming from "./internal/incoming.js"
import * as InputRequired from "./internal/inputRequired.js"
import * as Outgoing from "./internal/outgoing.js"
import * as SessionRecovery from "./internal/sessionRecovery.js"
import * as ToolHeaders from "./internal/toolHeaders.js"
import { McpError, McpTransportError } from "./McpErrors.js"
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
export type McpClientError = State.McpClientError

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
export type RequestOptions = State.RequestOptions

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
export type McpClientHandlers = State.McpClientHandlers

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
export const SESSION_RESTARTED = SessionRecovery.SESSION_RESTARTED

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
    const handlers = options.handlers ?? {}
    const notifications = yield* PubSub.unbounded<JsonRpcNotification>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(notifications))
    const state: State.ClientState = {
      transport: yield* McpTransport,
      scope: yield* Effect.scope,
      defaultTimeout: options.requestTimeout ?? Duration.seconds(60),
      handlers,
      pending: new Map(),
      progress: new Map(),
      running: new Map(),
      notifications,
      closed: undefined,
      nextId: 0,
      session: undefined,
      stateless: undefined,
      sessionGeneration: 0
    }
    yield* Incoming.readIncoming(state)

    const handshake: SessionRecovery.Handshake = {
      capabilities: Handshake.clientCapabilities(handlers, options.capabilities),
      clientInfo: options.clientInfo ?? { name: "effect-mcp-oauth", version: "0.1.0" }
    }
    const operations = yield* makeOperations(state, handshake, options.maxInputRounds ?? 10)

    const offered = options.protocolVersion ?? McpSchema.LATEST_PROTOCOL_VERSION
    if (State.isStateless(offered)) {
      // SEP-2575: no handshake. Every request names the version (header and `_meta`), the
      // client info and capabilities; `server/discover` tells what the server offers.
      state.stateless = {
        "io.modelcontextprotocol/protocolVersion": offered,
        "io.modelcontextprotocol/clientInfo": handshake.clientInfo,
        "io.modelcontextprotocol/clientCapabilities": handshake.capabilities
      }
      yield* state.transport.setProtocolVersion(offered)
    }
    const initializeResult: McpSchema.InitializeResult = state.stateless !== undefined
      ? Handshake.fromDiscoverResult(offered, yield* operations.request("server/discover", {}, McpSchema.DiscoverResult))
      : yield* operations.request(
        "initialize",
        { protocolVersion: offered, capabilities: handshake.capabilities, clientInfo: handshake.clientInfo },
        McpSchema.InitializeResult
      )
    const protocolVersion = yield* Handshake.negotiatedVersion(initializeResult)
    const first: State.Session = { initializeResult, protocolVersion }
    state.session = first
    if (state.stateless === undefined) {
      yield* state.transport.setProtocolVersion(protocolVersion)
      yield* Outgoing.sendNotification(state, "notifications/initialized")
      yield* state.transport.start
    }
    /** The current session (a restart replaces it). */
    const current = () => state.session ?? first

    return McpClient.of({
      get initializeResult() {
        return current().initializeResult
      },
      get protocolVersion() {
        return current().protocolVersion
      },
      get serverInfo() {
        return current().initializeResult.serverInfo
      },
      get serverCapabilities() {
        return current().initializeResult.capabilities
      },
      ...operations,
      notifications: Stream.fromPubSub(notifications),
      subscribe: PubSub.subscribe(notifications)
    })
  }).pipe(Effect.withSpan("McpClient.make"))

// The result decoders of the named operations, built once.
const decodeCallToolResult = State.decodeWith(McpSchema.CallToolResult, "result of tools/call")
const decodeReadResourceResult = State.decodeWith(McpSchema.ReadResourceResult, "result of resources/read")
const decodeGetPromptResult = State.decodeWith(McpSchema.GetPromptResult, "result of prompts/get")
const emptyResultDecoders = new Map<string, (result: unknown) => Effect.Effect<typeof McpSchema.EmptyResult.Type, McpTransportError>>()
const decodeEmptyResult = (method: string) => {
  let decode = emptyResultDecoders.get(method)
  if (decode === undefined) {
    decode = State.decodeWith(McpSchema.EmptyResult, `result of ${method}`)
    emptyResultDecoders.set(method, decode)
  }
  return decode
}

/** The client's operations over its state, each a small composition of the protocol steps. */
const makeOperations = (state: State.ClientState, handshake: SessionRecovery.Handshake, maxInputRounds: number) =>
  Effect.map(SessionRecovery.makeSessionRecovery(state, handshake), (recoverSession) => {
    const tools = ToolHeaders.makeToolHeaders(state)

    const exchange = (method: string, params: unknown, options?: RequestOptions) =>
      method === "initialize"
        ? Outgoing.versionedRequest(state, method, params, options)
        : recoverSession(() => Outgoing.versionedRequest(state, method, params, options))

    const roundTrips = (method: string, params: unknown, options?: RequestOptions) =>
      InputRequired.roundTrips(state, maxInputRounds, exchange, method, params, options)

    const listTools = (options?: RequestOptions) =>
      paginate("tools/list", McpSchema.ListToolsResult, (page) => page.tools, (page) => page.nextCursor, options).pipe(
        Effect.flatMap(tools.keepValidTools)
      )

    const callTool = (params: unknown, options?: RequestOptions) =>
      Effect.flatMap(
        // read the tools last listed when the call runs, not when it is built
        Effect.suspend(() => tools.toolCallHeaders(params, options)),
        (withHeaders) => roundTrips("tools/call", params, withHeaders)
      )

    /**
     * SEP-2243: a call of a tool whose `inputSchema` the client has not seen goes without
     * `Mcp-Param-*` headers; if the server answers `HeaderMismatch`, list the tools and retry once.
     */
    const toolsCall = (params: unknown, options?: RequestOptions) =>
      Effect.catchIf(
        callTool(params, options),
        (error) =>
          state.stateless !== undefined && error._tag === "McpError" && error.code === McpError.HeaderMismatch &&
          !tools.knownTool(params),
        () => Effect.zipRight(listTools(options), callTool(params, options))
      )

    /** Send `method` and decode its result with `decode`. */
    const requestWith = <A>(
      method: string,
      params: unknown,
      decode: (result: unknown) => Effect.Effect<A, McpTransportError>,
      options?: RequestOptions
    ): Effect.Effect<A, McpClientError> =>
      Effect.suspend(() =>
        // a stateful session has no input-required rounds nor SEP-2243 headers: one exchange
        state.stateless === undefined
          ? exchange(method, params, options)
          : method === "tools/call"
          ? toolsCall(params, options)
          : roundTrips(method, params, options)
      ).pipe(
        Effect.flatMap(decode),
        // without a tracer, the request's send fiber runs with tracing off (see rawRequest)
        spanIfTraced("McpClient.request", { attributes: { "mcp.method": method } })
      )

    const request = <A, I>(method: string, params: unknown, schema: Schema.Schema<A, I>, options?: RequestOptions) =>
      requestWith(method, params, State.decodeWith(schema, `result of ${method}`), options)

    const notify = (method: string, params?: unknown): Effect.Effect<void, McpClientError> =>
      recoverSession(() => Outgoing.sendNotification(state, method, params))

    const paginate = <P, I, A>(
      method: string,
      schema: Schema.Schema<P, I>,
      items: (page: P) => ReadonlyArray<A>,
      cursorOf: (page: P) => string | undefined,
      options?: RequestOptions
    ): Effect.Effect<ReadonlyArray<A>, McpClientError> => {
      const decode = State.decodeWith(schema, `result of ${method}`)
      return Effect.gen(function*() {
        const all: Array<A> = []
        const seen = new Set<string>()
        let cursor: string | undefined = undefined
        do {
          const page: P = yield* requestWith(method, cursor === undefined ? {} : { cursor }, decode, options)
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
    }

    const emptyResult = (method: string, params: unknown, options?: RequestOptions) =>
      Effect.asVoid(requestWith(method, params, decodeEmptyResult(method), options))

    const operations: Omit<
      McpClient,
      "initializeResult" | "protocolVersion" | "serverInfo" | "serverCapabilities" | "notifications" | "subscribe"
    > = {
      request,
      notify,
      ping: (options) => emptyResult("ping", undefined, options),
      listTools: (options) => listTools(options),
      callTool: (name, args, options) =>
        // `arguments` always present: servers that require it (@effect/ai's McpServer) get `{}`
        requestWith("tools/call", { name, arguments: args ?? {} }, decodeCallToolResult, options),
      listResources: (options) =>
        paginate(
          "resources/list",
          McpSchema.ListResourcesResult,
          (page) => page.resources,
          (page) => page.nextCursor,
          options
        ),
      readResource: (uri, options) => requestWith("resources/read", { uri }, decodeReadResourceResult, options),
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
        requestWith("prompts/get", args === undefined ? { name } : { name, arguments: args }, decodeGetPromptResult, options),
      setLoggingLevel: (level, options) => emptyResult("logging/setLevel", { level }, options)
    }
    return operations
  })

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
      Effect.mapError(State.surface)
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
