/**
 * How an HTTP transport authenticates: `"oauth"` (or `{ oauth: options }`) signs in with
 * `OAuthLayer` for the server's URL, a string is a static bearer token, a function wraps the
 * `HttpClient`. Without `auth`, the `HttpClient` in context is used as it is (which may already
 * be an `OAuthLayer` client).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Redacted from "effect/Redacted"
import type { OAuthOptions } from "../OAuth.js"

/**
 * `"oauth"`: sign in with `OAuthLayer` and its defaults for the server's URL (FastMCP's
 * `auth="oauth"`); `{ oauth }`: the same with options; a bearer token (string or `Redacted`);
 * or a function wrapping the `HttpClient`. The OAuth layer takes `TokenStorage`, `Authorizer`
 * and `Pkce` from the context when they are provided.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category models
 */
export type McpAuth =
  | "oauth"
  | { readonly oauth: Omit<OAuthOptions, "mcpUrl"> }
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
  if (typeof auth === "object" && "oauth" in auth) return undefined
  return bearer(Redacted.isRedacted(auth) ? auth : Redacted.make(auth), url.origin)
}

/**
 * The `OAuthLayer` options an `auth` value asks for, if any.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category combinators
 */
export const oauthOptions = (auth: McpAuth | undefined, url: URL): OAuthOptions | undefined =>
  auth === "oauth"
    ? { mcpUrl: url.href }
    : typeof auth === "object" && "oauth" in auth
    ? { ...auth.oauth, mcpUrl: url.href }
    : undefined
