/**
 * The Streamable HTTP transport (MCP 2025-03-26 and later): every message is a POST whose answer
 * is a JSON body or an SSE stream; `Mcp-Session-Id` and `MCP-Protocol-Version` headers; an
 * optional GET stream for server-initiated messages; resumption with `Last-Event-ID` honouring the
 * SSE `retry` field; DELETE of the session on close. Every request goes through the
 * `HttpClient.HttpClient` found in context, so an authenticating client below it signs them all.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Scope from "effect/Scope"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Ref from "effect/Ref"
import { whileClosing } from "../HttpAuth.js"
import type { JsonRpcMessage, RequestId } from "./JsonRpc.js"
import * as JsonRpc from "./JsonRpc.js"
import { McpTransportError } from "./McpErrors.js"
import * as McpHeaders from "./McpHeaders.js"
import { STATELESS_PROTOCOL_VERSIONS } from "./McpSchema.js"
import type { SendOptions } from "./McpTransport.js"
import { McpTransport } from "./McpTransport.js"
import * as Http from "./internal/http.js"
import { scrub, sentCredentials } from "../internal/sentCredentials.js"

/**
 * Options of the Streamable HTTP transport.
 *
 * - `url`: the MCP endpoint.
 * - `headers`: extra headers sent on every request.
 * - `transformClient`: wraps the context `HttpClient` (e.g. to add a bearer token).
 * - `standaloneStream`: open the GET stream for server-initiated messages after initialization
 *   (default `true`; a 405 answer means the server has none).
 * - `maxReconnects`: consecutive reconnections without any event before giving up (default 3).
 * - `defaultRetry`: wait before reconnecting when the server sent no `retry` (default 1 second).
 * - `closeTimeout`: how long the DELETE on close may take (default 5 seconds).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category models
 */
export interface StreamableHttpOptions {
  readonly url: string | URL
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  readonly standaloneStream?: boolean | undefined
  readonly maxReconnects?: number | undefined
  readonly defaultRetry?: Duration.DurationInput | undefined
  readonly closeTimeout?: Duration.DurationInput | undefined
}

/**
 * What a connection holds between messages: the session id (from the initialize answer), the
 * negotiated version, and the headers every request carries, rebuilt only when they change.
 */
interface Session {
  id: string | undefined
  protocolVersion: string | undefined
  headers: Record<string, string>
  /** A POST carrying every fixed header, for a message without per-message headers. */
  plainPost: HttpClientRequest.HttpClientRequest | undefined
}

/** What every step of one connection reads: where, through which client, and its session. */
interface Connection {
  readonly url: URL
  readonly client: HttpClient.HttpClient
  readonly fixedHeaders: Readonly<Record<string, string>> | undefined
  readonly session: Session
  readonly deliver: (messages: ReadonlyArray<JsonRpcMessage>) => Effect.Effect<void>
  readonly maxReconnects: number
  /** Milliseconds to wait before reconnecting when the server sent no `retry`. */
  readonly defaultRetry: number
}

/** Switch to session `id` at `version`; the headers every request carries follow. */
const setSession = (connection: Connection, id: string | undefined, version: string | undefined): void => {
  const session = connection.session
  session.id = id
  session.protocolVersion = version
  session.headers = {
    ...connection.fixedHeaders,
    ...(id === undefined ? {} : { "mcp-session-id": id }),
    ...(version === undefined ? {} : { "mcp-protocol-version": version })
  }
  session.plainPost = undefined
}

/** The transport's headers, the session id and the version, over those `request` has. */
const withHeaders = (connection: Connection, request: HttpClientRequest.HttpClientRequest) =>
  HttpClientRequest.setHeaders(request, connection.session.headers)

/** `request` as it is (its headers already set). */
const executeAsIs = (connection: Connection, request: HttpClientRequest.HttpClientRequest) =>
  Effect.mapError(connection.client.execute(request), Http.fromHttpClientError)

/** `request` with the session's headers as they are when it runs. */
const execute = (connection: Connection, request: HttpClientRequest.HttpClientRequest) =>
  Effect.suspend(() => executeAsIs(connection, withHeaders(connection, request)))

/**
 * A 404 to a request that carried `Mcp-Session-Id` ends that session: forget its id (unless a
 * new session replaced it meanwhile) so that the client's fresh `initialize` goes without it.
 */
const checkStatus = (connection: Connection, response: HttpClientResponse.HttpClientResponse, what: string) =>
  Effect.suspend(() => {
    if (response.status >= 200 && response.status < 300) return Effect.void
    const sent = response.request.headers["mcp-session-id"]
    if (response.status === 404 && sent !== undefined) {
      return Effect.sync(() => {
        if (connection.session.id === sent) setSession(connection, undefined, connection.session.protocolVersion)
      }).pipe(
        Effect.zipRight(
          Effect.fail(
            new McpTransportError({
              reason: "SessionExpired",
              status: 404,
              description: `The server no longer knows session ${sent}`
            })
          )
        )
      )
    }
    return Http.statusError(response, what)
  })

const openGet = (connection: Connection, lastEventId: string | undefined) =>
  execute(
    connection,
    HttpClientRequest.get(connection.url).pipe(
      HttpClientRequest.setHeader("accept", "text/event-stream"),
      lastEventId === undefined ? (req) => req : HttpClientRequest.setHeader("last-event-id", lastEventId)
    )
  )

/** The answer to a resuming GET must be the stream of the same session. */
const checkResumedStream = (
  connection: Connection,
  id: RequestId,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    if (response.status === 404) {
      // The session ended while the answer was streaming: the request may have run, so it
      // fails here rather than being sent again in a new session; the next request's 404
      // starts that session.
      return yield* Effect.fail(
        new McpTransportError({
          reason: "Closed",
          status: 404,
          description: `The server ended the session while streaming the answer to request ${id} ` +
            "(the request may have run; it is not sent again)"
        })
      )
    }
    yield* checkStatus(connection, response, "Resuming GET")
    if (Http.contentType(response) !== "text/event-stream") {
      return yield* Effect.fail(
        new McpTransportError({
          reason: "Protocol",
          description: `Resuming GET answered ${Http.contentType(response) || "no content type"}, not text/event-stream`
        })
      )
    }
  })

/** Resume a POST stream that ended before the answer: GET with Last-Event-ID after `retry`. */
const resume = (
  connection: Connection,
  id: RequestId,
  cursor: Http.SseCursor
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    let failures = 0
    while (true) {
      if (cursor.lastEventId === undefined) {
        return yield* Effect.fail(
          new McpTransportError({
            reason: "Closed",
            description: `The SSE stream for request ${id} closed before its response (no event id to resume from)`
          })
        )
      }
      if (failures >= connection.maxReconnects) {
        return yield* Effect.fail(
          new McpTransportError({
            reason: "Closed",
            description: `The SSE stream for request ${id} closed before its response; ${failures} reconnections failed`
          })
        )
      }
      yield* Effect.sleep(Duration.millis(cursor.retry ?? connection.defaultRetry))
      const response = yield* openGet(connection, cursor.lastEventId)
      yield* checkResumedStream(connection, id, response)
      const result = yield* Http.consumeSse({
        bytes: response.stream,
        waitingFor: id,
        cursor,
        strict: true,
        deliver: connection.deliver
      })
      if (result.found) return
      failures = result.events > 0 ? 0 : failures + 1
    }
  })

/**
 * SEP-2243 (2026-07-28 and later): `Mcp-Method` / `Mcp-Name` mirrored from the body, plus the
 * caller's per-message headers (`Mcp-Param-*`).
 */
const requestMetadata = (
  connection: Connection,
  message: JsonRpcMessage,
  sendOptions: SendOptions | undefined
): Record<string, string> => {
  const version = connection.session.protocolVersion
  const modern = STATELESS_PROTOCOL_VERSIONS.some((v) => v === version)
  const standard = modern && (message._tag === "Request" || message._tag === "Notification")
    ? McpHeaders.standardHeaders(message.method, message.params)
    : {}
  return { ...sendOptions?.headers, ...standard }
}

/**
 * The POST of `body`: the transport's fixed headers over the per-message ones (`accept`,
 * then the transport's headers, the session id and the version win, as before); with no
 * per-message headers, from a request built once per session.
 */
const post = (connection: Connection, metadata: Record<string, string>, body: string) => {
  if (Object.keys(metadata).length > 0) {
    return withHeaders(
      connection,
      HttpClientRequest.post(connection.url).pipe(
        HttpClientRequest.setHeaders(metadata),
        HttpClientRequest.setHeader("accept", "application/json, text/event-stream"),
        HttpClientRequest.bodyText(body, "application/json")
      )
    )
  }
  connection.session.plainPost ??= withHeaders(
    connection,
    HttpClientRequest.post(connection.url).pipe(
      HttpClientRequest.setHeader("accept", "application/json, text/event-stream")
    )
  )
  return HttpClientRequest.bodyText(connection.session.plainPost, body, "application/json")
}

/** A failure with a null id answers the request that caused it. */
const answering = (id: RequestId) => (message: JsonRpcMessage): JsonRpcMessage =>
  message._tag === "Failure" && message.id === null ? { ...message, id } : message

/**
 * A JSON-RPC error sent with a 4xx status (e.g. SEP-2575's -32022 with HTTP 400) answers the
 * request: deliver it so the caller gets the typed McpError with its data.
 */
const deliverErrorAnswer = (
  connection: Connection,
  request: JsonRpc.JsonRpcRequest,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    const text = yield* response.text.pipe(Effect.mapError(Http.fromHttpClientError))
    const answer = yield* JsonRpc.decodeText(text).pipe(
      Effect.map((messages) =>
        messages.map(answering(request.id)).filter((m) => m._tag === "Failure" && m.id === request.id)
      ),
      Effect.orElseSucceed(() => [])
    )
    if (answer.length > 0) return yield* connection.deliver(answer)
    return yield* Effect.fail(
      new McpTransportError({
        reason: "Http",
        status: response.status,
        // The server may echo the access token it was sent: never into our error text.
        description: `POST ${request.method} answered HTTP ${response.status}: ${
          scrub(text, sentCredentials(response.request)).slice(0, 300)
        }`
      })
    )
  })

/** A JSON body: deliver every message in it; one of them must answer the request. */
const deliverJsonAnswer = (
  connection: Connection,
  request: JsonRpc.JsonRpcRequest,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    const text = yield* response.text.pipe(Effect.mapError(Http.fromHttpClientError))
    const answered = (yield* JsonRpc.decodeText(text)).map(answering(request.id))
    yield* connection.deliver(answered)
    if (!answered.some(Http.isResponseTo(request.id))) {
      return yield* Effect.fail(
        new McpTransportError({
          reason: "Protocol",
          description: `The JSON body answering ${request.method} holds no response for request ${request.id}`
        })
      )
    }
  })

/** An SSE body: deliver its messages up to the answer, resuming the stream if it ends before. */
const deliverStreamedAnswer = (
  connection: Connection,
  request: JsonRpc.JsonRpcRequest,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    const cursor: Http.SseCursor = { lastEventId: undefined, retry: undefined }
    const result = yield* Http.consumeSse({
      bytes: response.stream,
      waitingFor: request.id,
      cursor,
      strict: true,
      deliver: connection.deliver
    })
    if (!result.found) yield* resume(connection, request.id, cursor)
  })

/** POST one message and deliver what answers it. */
const send = (
  connection: Connection,
  message: JsonRpcMessage,
  sendOptions?: SendOptions
): Effect.Effect<void, McpTransportError> =>
  Effect.gen(function*() {
    const body = yield* JsonRpc.encodeText(message)
    const request = post(connection, requestMetadata(connection, message, sendOptions), body)
    const response = yield* executeAsIs(connection, request)
    if (message._tag !== "Request") {
      return yield* checkStatus(connection, response, "POST")
    }
    if (message.method === "initialize") {
      const session = response.headers["mcp-session-id"]
      if (session !== undefined && session !== "") setSession(connection, session, connection.session.protocolVersion)
    }
    if (
      response.status >= 400 && response.status < 500 && response.status !== 404 &&
      Http.contentType(response) === "application/json"
    ) {
      return yield* deliverErrorAnswer(connection, message, response)
    }
    yield* checkStatus(connection, response, `POST ${message.method}`)
    if (response.status === 202) return
    const type = Http.contentType(response)
    if (type === "application/json") return yield* deliverJsonAnswer(connection, message, response)
    if (type === "text/event-stream") return yield* deliverStreamedAnswer(connection, message, response)
    return yield* Effect.fail(
      new McpTransportError({
        reason: "Protocol",
        status: response.status,
        description: `POST ${message.method} answered with content type "${type}" instead of JSON or SSE`
      })
    )
  })

/** The optional GET stream for server-initiated messages; reconnects while it carries events. */
const standalone = (connection: Connection): Effect.Effect<void> =>
  Effect.gen(function*() {
    const cursor: Http.SseCursor = { lastEventId: undefined, retry: undefined }
    let failures = 0
    while (failures <= connection.maxReconnects) {
      const response = yield* openGet(connection, cursor.lastEventId)
      if (response.status === 405) {
        yield* Effect.logDebug("MCP: server offers no GET stream (405)")
        return
      }
      if (response.status < 200 || response.status >= 300 || Http.contentType(response) !== "text/event-stream") {
        yield* Effect.logDebug(`MCP: GET stream refused (HTTP ${response.status})`)
        return
      }
      const result = yield* Http.consumeSse({
        bytes: response.stream,
        waitingFor: undefined,
        cursor,
        strict: false,
        deliver: connection.deliver
      })
      failures = result.events > 0 ? 0 : failures + 1
      yield* Effect.sleep(Duration.millis(cursor.retry ?? connection.defaultRetry))
    }
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) => Effect.logDebug("MCP: GET stream ended", error.description))
  )

/** End the incoming messages, then DELETE the session, if there is one, within `timeout`. */
const close = (
  connection: Connection,
  incoming: Mailbox.Mailbox<JsonRpcMessage, McpTransportError>,
  timeout: Duration.DurationInput
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* incoming.end
    if (connection.session.id === undefined) return
    // closing never authenticates: the DELETE carries the stored token or none, and a 401 is ignored
    yield* whileClosing(execute(connection, HttpClientRequest.del(connection.url))).pipe(
      Effect.flatMap((response) =>
        response.status === 405 || (response.status >= 200 && response.status < 300)
          ? Effect.void
          : Effect.logDebug(`MCP: DELETE of the session answered HTTP ${response.status}`)
      ),
      Effect.scoped,
      // finalizers are uninterruptible: let the timeout interrupt the DELETE
      Effect.interruptible,
      Effect.timeout(timeout),
      Effect.catchAll((error) => Effect.logDebug("MCP: DELETE of the session failed", error)),
      Effect.withSpan("McpClient.StreamableHttp.close")
    )
  })

/**
 * Open the GET stream in `scope`; a new session (after a 404) opens its own GET stream in place of
 * the old one's.
 */
const startStandalone = (
  connection: Connection,
  current: Ref.Ref<Fiber.RuntimeFiber<void> | undefined>,
  scope: Scope.Scope
): Effect.Effect<void> =>
  Effect.flatMap(Ref.get(current), (previous) =>
    (previous === undefined ? Effect.void : Fiber.interruptFork(previous)).pipe(
      Effect.zipRight(Effect.forkIn(standalone(connection), scope)),
      Effect.flatMap((fiber) => Ref.set(current, fiber))
    ))

/**
 * Connect a Streamable HTTP transport. Nothing is sent until the client's first message.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: StreamableHttpOptions
): Effect.Effect<McpTransport, McpTransportError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* Http.parseUrl(options.url)
    const base = yield* HttpClient.HttpClient
    const incoming = yield* Mailbox.make<JsonRpcMessage, McpTransportError>()
    const connection: Connection = {
      url,
      client: options.transformClient === undefined ? base : options.transformClient(base),
      fixedHeaders: options.headers,
      session: { id: undefined, protocolVersion: undefined, headers: {}, plainPost: undefined },
      deliver: (messages) => Effect.asVoid(incoming.offerAll(messages)),
      maxReconnects: options.maxReconnects ?? 3,
      defaultRetry: Duration.toMillis(options.defaultRetry ?? Duration.seconds(1))
    }
    setSession(connection, undefined, undefined)
    const scope = yield* Effect.scope
    const standaloneFiber = yield* Ref.make<Fiber.RuntimeFiber<void> | undefined>(undefined)
    yield* Effect.addFinalizer(() => close(connection, incoming, options.closeTimeout ?? Duration.seconds(5)))

    return McpTransport.of({
      send: (message, sendOptions) => send(connection, message, sendOptions),
      incoming,
      setProtocolVersion: (version) => Effect.sync(() => setSession(connection, connection.session.id, version)),
      start: options.standaloneStream === false ? Effect.void : startStandalone(connection, standaloneFiber, scope)
    })
  })

/**
 * The transport as a layer.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: StreamableHttpOptions
): Layer.Layer<McpTransport, McpTransportError, HttpClient.HttpClient> => Layer.scoped(McpTransport, make(options))
