/**
 * How an HTTP transport authenticates. Only the static bearer token is handled here; `"oauth"`
 * means "the `HttpClient.HttpClient` in context already authenticates" (provide `OAuthLayer`
 * below the client), so nothing is added.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Redacted } from "effect"

/**
 * `"oauth"` (authentication comes from the context `HttpClient`), a bearer token (string or
 * `Redacted`), or a function wrapping the `HttpClient`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category models
 */
export type McpAuth =
  | "oauth"
  | string
  | Redacted.Redacted<string>
  | ((client: HttpClient.HttpClient) => HttpClient.HttpClient)

const originOf = (url: string): string | undefined => {
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}

/**
 * Add `Authorization: Bearer <token>` to requests whose origin is `origin`, and only to those
 * (a token for one server never goes to another).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category combinators
 */
export const bearer = (
  token: string | Redacted.Redacted<string>,
  origin: string
) =>
(client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.mapRequest(client, (request) =>
    originOf(request.url) === origin ? HttpClientRequest.bearerToken(request, token) : request)

/**
 * The `HttpClient` transformation for an `auth` option and the server's URL.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category combinators
 */
export const toTransform = (
  auth: McpAuth | undefined,
  url: URL
): ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined => {
  if (auth === undefined || auth === "oauth") return undefined
  if (typeof auth === "function") return auth
  return bearer(Redacted.isRedacted(auth) ? auth : Redacted.make(auth), url.origin)
}
