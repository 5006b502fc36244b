/**
 * The legacy HTTP+SSE transport of MCP 2024-11-05: GET the SSE endpoint, wait for the `endpoint`
 * event naming the URL to POST messages to, then POST every message there; everything from the
 * server (responses included) arrives as `message` events on the SSE stream. Uses the
 * `HttpClient.HttpClient` from context for every request.
 *
 * @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Scope from "effect/Scope"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import type { JsonRpcMessage } from "./JsonRpc.js"
import * as JsonRpc from "./JsonRpc.js"
import { McpTransportError } from "./McpErrors.js"
import { McpTransport } from "./McpTransport.js"
import * as Http from "./internal/http.js"

/**
 * Options of the legacy SSE transport.
 *
 * - `url`: the SSE endpoint (often `…/sse`).
 * - `headers`: extra headers sent on every request.
 * - `transformClient`: wraps the context `HttpClient` (e.g. to add a bearer token).
 * - `connectTimeout`: how long to wait for the `endpoint` event (default 30 seconds).
 *
 * @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 * @since 0.1.0
 * @category models
 */
export interface LegacySseOptions {
  readonly url: string | URL
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** GET the SSE endpoint; it must answer 2xx with an event stream. */
const openStream = (
  client: HttpClient.HttpClient,
  url: URL,
  headers: Readonly<Record<string, string>> | undefined
) =>
  Effect.gen(function*() {
    const response = yield* client.execute(
      HttpClientRequest.get(url).pipe(
        HttpClientRequest.setHeaders(headers ?? {}),
        HttpClientRequest.setHeader("accept", "text/event-stream")
      )
    ).pipe(Effect.mapError(Http.fromHttpClientError))
    if (response.status < 200 || response.status >= 300) {
      return yield* Http.statusError(response, "The SSE endpoint")
    }
    if (Http.contentType(response) !== "text/event-stream") {
      return yield* Effect.fail(
        new McpTransportError({
          reason: "Protocol",
          status: response.status,
          description: `The SSE endpoint answered "${Http.contentType(response)}", not text/event-stream`
        })
      )
    }
    return response
  })

/** The URL an `endpoint` event names, relative to the SSE URL and on its origin. */
const endpointUrl = (data: string, url: URL): Effect.Effect<URL, McpTransportError> =>
  Effect.try({
    try: () => new URL(data.trim(), url),
    catch: () => new McpTransportError({ reason: "Protocol", description: `Invalid endpoint event: ${data}` })
  }).pipe(
    Effect.filterOrFail(
      (target) => target.origin === url.origin,
      (target) =>
        new McpTransportError({
          reason: "Protocol",
          description: `The endpoint ${target.origin} is not on the SSE server's origin ${url.origin}`
        })
    )
  )

/**
 * Read the SSE stream to its end: the `endpoint` event completes `endpoint`, `message` events go to
 * `incoming`. A bad endpoint, or the end of the stream, fails both.
 */
const readStream = (
  response: HttpClientResponse.HttpClientResponse,
  url: URL,
  incoming: Mailbox.Mailbox<JsonRpcMessage, McpTransportError>,
  endpoint: Deferred.Deferred<URL, McpTransportError>
) => {
  const failBoth = (error: McpTransportError) => Effect.zipRight(Deferred.fail(endpoint, error), incoming.fail(error))
  return Http.consumeSse({
    bytes: response.stream,
    waitingFor: undefined,
    cursor: { lastEventId: undefined, retry: undefined },
    strict: false,
    deliver: (messages) => Effect.asVoid(incoming.offerAll(messages)),
    onEvent: (event) => {
      if (event.event === "endpoint") {
        return endpointUrl(event.data, url).pipe(
          Effect.matchEffect({
            onFailure: failBoth,
            onSuccess: (target) => Deferred.succeed(endpoint, target)
          }),
          Effect.as(false)
        )
      }
      if (event.event !== "message" || event.data.trim() === "") return Effect.succeed(false)
      return JsonRpc.decodeText(event.data).pipe(
        Effect.flatMap((messages) => incoming.offerAll(messages)),
        Effect.catchAll((error) => Effect.logWarning("MCP: ignoring an undecodable SSE message", error.description)),
        Effect.as(false)
      )
    }
  }).pipe(
    Effect.zipRight(
      Effect.suspend(() => failBoth(new McpTransportError({ reason: "Closed", description: "The SSE stream closed" })))
    )
  )
}

/** POST one message to the endpoint; any 2xx accepts it (its answer comes on the stream). */
const send = (
  client: HttpClient.HttpClient,
  postUrl: URL,
  headers: Readonly<Record<string, string>> | undefined,
  message: JsonRpcMessage
): Effect.Effect<void, McpTransportError> =>
  Effect.flatMap(JsonRpc.encodeText(message), (body) =>
    client.execute(
      HttpClientRequest.post(postUrl).pipe(
        HttpClientRequest.setHeaders(headers ?? {}),
        HttpClientRequest.bodyText(body, "application/json")
      )
    ).pipe(Effect.mapError(Http.fromHttpClientError))).pipe(
    Effect.flatMap((response) =>
      response.status >= 200 && response.status < 300
        ? Effect.void
        : Http.statusError(response, `POST ${message._tag === "Request" ? message.method : "message"}`)
    ),
    Effect.scoped
  )

/**
 * Open the SSE stream and wait for the server's `endpoint` event. The endpoint must have the
 * same origin as the SSE URL (a different origin is refused, as the reference SDKs do).
 *
 * @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: LegacySseOptions
): Effect.Effect<McpTransport, McpTransportError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* Http.parseUrl(options.url)
    const base = yield* HttpClient.HttpClient
    const client = options.transformClient === undefined ? base : options.transformClient(base)
    const incoming = yield* Mailbox.make<JsonRpcMessage, McpTransportError>()
    const endpoint = yield* Deferred.make<URL, McpTransportError>()
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => incoming.end)

    const response = yield* openStream(client, url, options.headers)
    yield* Effect.forkIn(readStream(response, url, incoming, endpoint), scope)
    const postUrl = yield* Deferred.await(endpoint).pipe(
      Effect.timeoutFail({
        duration: options.connectTimeout ?? Duration.seconds(30),
        onTimeout: () =>
          new McpTransportError({ reason: "Timeout", description: "The SSE server sent no endpoint event" })
      })
    )

    return McpTransport.of({
      send: (message) => send(client, postUrl, options.headers, message),
      incoming,
      setProtocolVersion: () => Effect.void,
      start: Effect.void
    })
  })

/**
 * The transport as a layer.
 *
 * @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LegacySseOptions
): Layer.Layer<McpTransport, McpTransportError, HttpClient.HttpClient> => Layer.scoped(McpTransport, make(options))
