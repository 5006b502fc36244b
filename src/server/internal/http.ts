/**
 * HTTP helpers of the embedded authorization server: OAuth error responses (RFC 6749 §5.2),
 * `no-store` JSON, bounded form and JSON bodies, and small escaped HTML pages.
 *
 * @internal
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** An OAuth error to answer with (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009 §2.2.1). @internal */
export class OAuthFailure extends Data.TaggedError("OAuthFailure")<{
  readonly status: number
  readonly error: string
  readonly description: string
  readonly headers?: Record<string, string>
}> {}

/** Headers every token, registration and error response carries (RFC 6749 §5.1). @internal */
export const noStore: Record<string, string> = { "cache-control": "no-store", pragma: "no-cache" }

/** A JSON response that must not be cached. @internal */
export const jsonNoStore = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { ...noStore, ...headers } })

/** The RFC 6749 §5.2 error body of a failure. @internal */
export const failureResponse = (failure: OAuthFailure): HttpServerResponse.HttpServerResponse =>
  jsonNoStore({ error: failure.error, error_description: failure.description }, failure.status, failure.headers ?? {})

/** Escapes text for HTML element and attribute content. @internal */
export const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(
    /'/g,
    "&#39;"
  )

/** Headers that stop an authorization page from being framed or cached (clickjacking, RFC 6819 §4.4.1.9). @internal */
export const pageHeaders: Record<string, string> = {
  ...noStore,
  "x-frame-options": "DENY",
  // No `form-action`: Chromium applies it to the redirect after the consent form is posted, which
  // would block the 303 to the client's (cross-origin, loopback) redirect URI.
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer"
}

/** A small HTML page. @internal */
export const page = (title: string, body: string, status = 200): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
      `<meta name="viewport" content="width=device-width, initial-scale=1">` +
      `<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}` +
      `button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}</style></head>` +
      `<body>${body}</body></html>`,
    { status, contentType: "text/html; charset=utf-8", headers: pageHeaders }
  )

/** Parses a query or form body, refusing repeated parameters (RFC 6749 §3.1, §3.2). @internal */
export const parseParams = (raw: string): URLSearchParams | OAuthFailure => {
  const params = new URLSearchParams(raw)
  const seen = new Set<string>()
  for (const name of params.keys()) {
    if (seen.has(name) && name !== "resource") {
      return new OAuthFailure({ status: 400, error: "invalid_request", description: `parameter ${name} repeated` })
    }
    seen.add(name)
  }
  return params
}

/**
 * Reads the request body as text, at most `maxBytes`: a declared `content-length` over the limit
 * is refused before reading (413), an undeclared one is cut off while reading.
 *
 * @internal
 */
export const readBody = (
  maxBytes: number
): Effect.Effect<string, OAuthFailure, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "0")
    // made only when refused: an error captures a stack trace
    const tooLarge = () =>
      new OAuthFailure({
        status: 413,
        error: "invalid_request",
        description: `request body larger than ${maxBytes} bytes`
      })
    if (Number.isFinite(declared) && declared > maxBytes) return yield* tooLarge()
    return yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBytes)),
      Effect.mapError(tooLarge)
    )
  })

/** Whether the request's media type is `type` (parameters such as `charset` ignored). @internal */
export const hasContentType = (request: HttpServerRequest.HttpServerRequest, type: string): boolean =>
  (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() === type

/** Reads an `application/x-www-form-urlencoded` body (RFC 6749 §4.1.3). @internal */
export const readForm = (
  maxBytes: number
): Effect.Effect<URLSearchParams, OAuthFailure, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!hasContentType(request, "application/x-www-form-urlencoded")) {
      return yield* new OAuthFailure({
        status: 400,
        error: "invalid_request",
        description: "the body must be application/x-www-form-urlencoded"
      })
    }
    const parsed = parseParams(yield* readBody(maxBytes))
    return parsed instanceof OAuthFailure ? yield* parsed : parsed
  })

/** The request URL's query parameters. @internal */
export const queryOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const q = request.url.indexOf("?")
  return q < 0 ? "" : request.url.slice(q + 1)
}
