/**
 * Cross-origin access (the Fetch standard's CORS protocol) for the server's endpoints, so that MCP
 * clients running in a web page (web MCP hosts, inspectors) can discover, register, exchange
 * tokens and call the MCP endpoint from another origin.
 *
 * One piece, applied by each endpoint: {@link middleware} wraps an HTTP app (it answers the
 * `OPTIONS` preflight itself, before anything the app does — in particular before a bearer
 * check — and adds the CORS headers to every other response, errors and 401s included), and
 * {@link router} applies it to every route of a router, adding the `OPTIONS` routes. Built on
 * `@effect/platform`'s `HttpMiddleware.cors`, with safer options: an empty origin list allows no
 * origin (the platform's reads it as `*`), and credentials are never allowed together with `*`
 * (the type refuses it; at run time it is dropped).
 *
 * @see https://fetch.spec.whatwg.org/#http-cors-protocol
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"

/**
 * Request headers a browser-based MCP client sends: `Authorization` (bearer token, Basic client
 * credentials), `Content-Type` (JSON and form bodies are not CORS-safelisted), the Streamable HTTP
 * headers, and `Last-Event-ID` (resuming an SSE stream).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category constants
 */
export const defaultAllowedHeaders: ReadonlyArray<string> = [
  "Authorization",
  "Content-Type",
  "Accept",
  "MCP-Protocol-Version",
  "Mcp-Session-Id",
  "Last-Event-ID"
]

/**
 * Response headers a page may read: `WWW-Authenticate` (RFC 6750 / RFC 9728 challenges, where a
 * client finds `resource_metadata` and `scope`), the Streamable HTTP headers, and `Retry-After`
 * (429 / 503).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category constants
 */
export const defaultExposedHeaders: ReadonlyArray<string> = [
  "WWW-Authenticate",
  "Mcp-Session-Id",
  "MCP-Protocol-Version",
  "Retry-After"
]

interface CommonOptions {
  /** Request headers allowed in a preflight (default {@link defaultAllowedHeaders}). */
  readonly allowedHeaders?: ReadonlyArray<string> | undefined
  /** Response headers exposed to the page (default {@link defaultExposedHeaders}). */
  readonly exposedHeaders?: ReadonlyArray<string> | undefined
  /** Methods allowed in a preflight (default `GET, HEAD, PUT, PATCH, POST, DELETE`). */
  readonly allowedMethods?: ReadonlyArray<string> | undefined
  /** `Access-Control-Max-Age` of preflight answers, in seconds (default: none, the browser's 5 s). */
  readonly maxAgeSeconds?: number | undefined
}

/**
 * Which origins may read the responses.
 *
 * - `allowedOrigins: "*"` — any origin, never with credentials (cookies, TLS client
 *   certificates): the safe choice for endpoints that read no ambient credential, as all of this
 *   library's do (clients authenticate with bearer tokens, PKCE and client secrets in the request).
 * - a list of origins (`"https://app.example"`, compared exactly) or a predicate on the
 *   `Origin` header — the matching origin is echoed with `Vary: Origin`; others get no
 *   `Access-Control-Allow-Origin`, so the browser refuses them. An empty list allows none.
 *
 * @see https://fetch.spec.whatwg.org/#http-access-control-allow-origin
 * @since 0.1.0
 * @category models
 */
export type Options =
  | CommonOptions & {
    readonly allowedOrigins: "*"
    readonly credentials?: false | undefined
  }
  | CommonOptions & {
    readonly allowedOrigins: ReadonlyArray<string> | ((origin: string) => boolean)
    /** Send `Access-Control-Allow-Credentials: true` (default `false`). */
    readonly credentials?: boolean | undefined
  }

/**
 * Any origin, no credentials, the default headers: what the metadata documents (RFC 8414, RFC
 * 9728) always use, and the default of the OAuth and MCP endpoints.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @since 0.1.0
 * @category constants
 */
export const anyOrigin: Options = { allowedOrigins: "*" }

const platformOptions = (options: Options): Parameters<typeof HttpMiddleware.cors>[0] => {
  const common = {
    allowedHeaders: options.allowedHeaders ?? defaultAllowedHeaders,
    exposedHeaders: options.exposedHeaders ?? defaultExposedHeaders,
    ...(options.allowedMethods === undefined ? {} : { allowedMethods: options.allowedMethods }),
    ...(options.maxAgeSeconds === undefined ? {} : { maxAge: options.maxAgeSeconds })
  }
  const origins = options.allowedOrigins
  // The platform middleware answers `*` for an empty list; `*` is only ever meant literally here.
  if (origins === "*") return { ...common, allowedOrigins: [], credentials: false }
  // Always a predicate: the platform echoes a single listed origin to every caller, and may call
  // the predicate without an `Origin` header (same-origin or non-browser requests).
  const allowed = typeof origins === "function" ? origins : (origin: string) => origins.includes(origin)
  return {
    ...common,
    allowedOrigins: (origin: string | undefined) => typeof origin === "string" && origin !== "" && allowed(origin),
    credentials: options.credentials === true
  }
}

/**
 * Wraps an app with CORS: an `OPTIONS` request is answered `204` with the preflight headers
 * without running the app (so a bearer check never sees it), and every other response of the
 * app — failures and 401 challenges included — carries `Access-Control-Allow-Origin` (when the
 * origin is allowed) and `Access-Control-Expose-Headers`.
 *
 * @see https://fetch.spec.whatwg.org/#cors-preflight-fetch
 * @since 0.1.0
 * @category middleware
 */
export const middleware = (options: Options): <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R> =>
  HttpMiddleware.cors(platformOptions(options))

/**
 * Applies {@link middleware} to every route of `self` and adds an `OPTIONS` route (the preflight)
 * for each path that has none. `false` leaves the router as it is (no cross-origin access).
 *
 * @see https://fetch.spec.whatwg.org/#cors-preflight-fetch
 * @since 0.1.0
 * @category routes
 */
export const router = (options: Options | false) => <E, R>(self: HttpRouter.HttpRouter<E, R>): HttpRouter.HttpRouter<E, R> => {
  if (options === false) return self
  const cors = middleware(options)
  const routes = Chunk.toReadonlyArray(self.routes)
  const answered = new Set(routes.filter((r) => r.method === "OPTIONS" || r.method === "*").map((r) => r.path))
  const preflightPaths = [...new Set(routes.map((r) => r.path))].filter((path) => !answered.has(path))
  const preflight = cors(Effect.succeed(HttpServerResponse.empty({ status: 204 })))
  return preflightPaths.reduce(
    (acc, path) => HttpRouter.options(acc, path, preflight),
    HttpRouter.use(self, cors)
  )
}
