/**
 * Helpers shared by the HTTP transports (not public API).
 *
 * @internal
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { oauthErrorOf } from "../../HttpAuth.js"
import type { JsonRpcMessage, RequestId } from "../JsonRpc.js"
import * as JsonRpc from "../JsonRpc.js"
import { McpTransportError } from "../McpErrors.js"
import * as Sse from "../Sse.js"
import { rootCauseOf } from "../../internal/rootCause.js"

/** @internal */
export const parseUrl = (url: string | URL): Effect.Effect<URL, McpTransportError> =>
  Effect.try({
    try: () => new URL(url),
    catch: () => new McpTransportError({ reason: "Protocol", description: `Invalid MCP server URL: ${String(url)}` })
  }).pipe(
    Effect.filterOrFail(
      (parsed) => parsed.protocol === "http:" || parsed.protocol === "https:",
      (parsed) =>
        new McpTransportError({ reason: "Protocol", description: `Not an http(s) URL: ${parsed.href}` })
    )
  )

/** The socket's own words ("connect ECONNREFUSED 127.0.0.1:1234") first, then the request. */
const describeClientError = (error: HttpClientError.HttpClientError): string => {
  const root = rootCauseOf(error)
  return root === undefined ? error.message : `${root} (${error.request.method} ${error.request.url})`
}

/**
 * An `HttpClientError` as a transport error. A typed OAuth error that `OAuthLayer`'s client had
 * to carry as the cause of a `RequestError` is an `Authorization` failure with that error as its
 * `cause` (not a closed connection).
 *
 * @internal
 */
export const fromHttpClientError = (error: HttpClientError.HttpClientError): McpTransportError =>
  Option.match(oauthErrorOf(error), {
    onSome: (oauth) => new McpTransportError({ reason: "Authorization", description: oauth.message, cause: oauth }),
    onNone: () =>
      new McpTransportError({
        reason: error._tag === "RequestError" && error.reason === "Transport" ? "Closed" : "Http",
        description: describeClientError(error),
        cause: error
      })
  })

const excerpt = (text: string, max = 300): string => {
  const compact = text.replace(/\s+/g, " ").trim()
  return compact.length > max ? `${compact.slice(0, max)}…` : compact
}

/** @internal */
export const contentType = (response: HttpClientResponse.HttpClientResponse): string =>
  (response.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()

/**
 * Turn a non-2xx response into a typed `Http` error with a short, readable description (an
 * HTML error page is reduced to its title; a JSON-RPC error body to its message).
 *
 * @internal
 */
export const statusError = (
  response: HttpClientResponse.HttpClientResponse,
  what: string
): Effect.Effect<never, McpTransportError> =>
  response.text.pipe(
    Effect.timeout("5 seconds"),
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((body) => {
      const type = contentType(response)
      let detail: string
      if (type === "text/html" || /^\s*<(!doctype|html)/i.test(body)) {
        const title = /<title[^>]*>([^<]*)<\/title>/i.exec(body)
        detail = `HTML error page${title === null ? "" : ` "${excerpt(title[1]!, 120)}"`}`
      } else {
        const rpc = Option.liftThrowable((): unknown => JSON.parse(body))()
        const message = Option.flatMap(rpc, (value) =>
          typeof value === "object" && value !== null && "error" in value && typeof value.error === "object" &&
            value.error !== null && "message" in value.error && typeof value.error.message === "string"
            ? Option.some(value.error.message)
            : Option.none())
        detail = Option.getOrElse(message, () => excerpt(body))
      }
      return Effect.fail(
        new McpTransportError({
          reason: "Http",
          status: response.status,
          description: `${what} answered HTTP ${response.status}${detail === "" ? "" : `: ${detail}`}`
        })
      )
    })
  )

/** @internal */
export const isResponseTo = (id: RequestId) => (message: JsonRpcMessage): boolean =>
  (message._tag === "Success" || message._tag === "Failure") && message.id === id

/** Where an SSE stream left off: the last event id and the server's `retry` advice. @internal */
export interface SseCursor {
  lastEventId: string | undefined
  retry: number | undefined
}

/**
 * Read an SSE body, put every JSON-RPC message on `deliver`, and stop as soon as the response to
 * `waitingFor` went by. Succeeds with `{ found, events }`; a broken connection counts as the end
 * of the stream (the caller decides whether to resume). Undecodable data fails when `strict`,
 * and is logged otherwise.
 *
 * @internal
 */
export const consumeSse = (options: {
  readonly bytes: Stream.Stream<Uint8Array, unknown>
  readonly waitingFor: RequestId | undefined
  readonly cursor: SseCursor
  readonly strict: boolean
  readonly deliver: (messages: ReadonlyArray<JsonRpcMessage>) => Effect.Effect<void>
  readonly onEvent?: (event: Sse.SseEvent) => Effect.Effect<boolean, McpTransportError>
}): Effect.Effect<{ readonly found: boolean; readonly events: number }, McpTransportError> => {
  let events = 0
  const bytes = Stream.catchAll(
    options.bytes,
    (cause) => Stream.drain(Stream.fromEffect(Effect.logDebug("MCP: SSE stream broke", cause)))
  )
  return Sse.decode(bytes).pipe(
    Stream.mapEffect((event) => {
      events++
      if (event.id !== undefined) options.cursor.lastEventId = event.id
      if (event.retry !== undefined) options.cursor.retry = event.retry
      if (options.onEvent !== undefined) return options.onEvent(event)
      if (event.data.trim() === "") return Effect.succeed(false)
      return JsonRpc.decodeText(event.data).pipe(
        Effect.tap(options.deliver),
        Effect.map((messages) =>
          options.waitingFor !== undefined && messages.some(isResponseTo(options.waitingFor))
        ),
        Effect.catchAll((error) =>
          options.strict
            ? Effect.fail(error)
            : Effect.as(Effect.logWarning("MCP: ignoring an undecodable SSE message", error.description), false)
        )
      )
    }),
    Stream.takeUntil((found) => found),
    Stream.runFold(false, (acc, found) => acc || found),
    Effect.map((found) => ({ found, events }))
  )
}

/** @internal */
export const excerptText = excerpt
