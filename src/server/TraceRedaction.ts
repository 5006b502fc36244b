/**
 * Keeps authorization codes out of the platform's `http.server` spans. `@effect/platform`'s
 * server tracer records every response header not named in `Headers.currentRedactedNames` and
 * the full URL of every request: the `Location` of an authorization response carries the code
 * (RFC 6749 §4.1.2), and so does the query of the request an upstream authorization server
 * redirects to `OAuthProxy`'s callback. RFC 9700 §4.2.4 asks that codes do not leak into logs;
 * a tracer exporting spans (OpenTelemetry) is one.
 *
 * The tracer reads both settings from the server's fiber before any route or middleware runs,
 * so they are set on the layer that serves (as `HttpMiddleware.withTracerDisabledWhen` does).
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Layer from "effect/Layer"

/**
 * Whether a request URL carries an authorization code in its query (RFC 6749 §4.1.2: the
 * redirection of an authorization response): such a request gets no `http.server` span, since
 * the span would record its URL.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category predicates
 */
export const carriesCode = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const query = request.url.indexOf("?")
  return query !== -1 && new URLSearchParams(request.url.slice(query + 1)).has("code")
}

/**
 * Serves `self` (an `HttpServer.serve(...)` layer, or a router's `serve()`) with authorization
 * codes kept out of its `http.server` spans: the `Location` response header is recorded as
 * `<redacted>` (added to the names already redacted), and a request whose query carries a `code`
 * is not traced at all (added to any `withTracerDisabledWhen` predicate already set).
 *
 * @example
 * ```ts
 * import * as HttpServer from "@effect/platform/HttpServer"
 * import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
 * import { Effect, Layer } from "effect"
 * import { createServer } from "node:http"
 * import { OAuthProvider, TraceRedaction } from "effect-mcp-oauth/server"
 *
 * const ServerLive = Layer.unwrapEffect(
 *   Effect.map(OAuthProvider.OAuthProvider, (provider) => HttpServer.serve(provider.router))
 * ).pipe(
 *   TraceRedaction.withTraceRedaction,
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
 * )
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.2.4
 * @since 0.1.0
 * @category layers
 */
export const withTraceRedaction = <A, E, R>(self: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  self.pipe(
    Layer.locallyWith(Headers.currentRedactedNames, (names) => [...names, "location"]),
    Layer.locallyWith(HttpMiddleware.currentTracerDisabledWhen, (disabled) => (request) =>
      disabled(request) || carriesCode(request))
  )
