/**
 * OAuth 2.0 Token Revocation (RFC 7009): tell the authorization server that a token is no longer
 * needed (on logout), so that it — and, for a refresh token, the whole grant — stops working.
 *
 * @since 0.1.0
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Duration, Effect, Either, Redacted, Schema } from "effect"
import { OAuthRequestError, OAuthTokenError } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import type { ClientInformation } from "./Schemas.js"
import { basicAuthorization } from "./TokenExchange.js"

/**
 * One revocation request.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @since 0.1.0
 * @category models
 */
export interface RevokeRequest {
  /** The authorization server's `revocation_endpoint` (RFC 8414 §2). */
  readonly endpoint: string
  readonly token: Redacted.Redacted<string>
  readonly tokenTypeHint?: "access_token" | "refresh_token" | undefined
  /** The client the token was issued to; it authenticates as at the token endpoint (none, Basic or post). */
  readonly client: ClientInformation
  /** Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
}

const ErrorBody = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String)
})

/**
 * Revokes a token (RFC 7009 §2.1): a form POST of `token` and `token_type_hint`, authenticated
 * like the token endpoint (`client_secret_basic` with RFC 6749 §2.3.1 form-encoding,
 * `client_secret_post`, or just `client_id` for public clients; `private_key_jwt` clients send
 * `client_id` only). HTTP 200 is success — also for a token the server no longer knows
 * (§2.2). An error body (§2.2.1, e.g. `unsupported_token_type`) or another status is an
 * `OAuthTokenError`; a transport failure an `OAuthRequestError`. No redirects are followed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.2
 * @since 0.1.0
 * @category revocation
 */
export const revoke = Effect.fn("Revocation.revoke")(function*(request: RevokeRequest) {
  const client = yield* HttpClient.HttpClient
  const info = request.client
  const params: Record<string, string> = { token: Redacted.value(request.token) }
  if (request.tokenTypeHint !== undefined) params["token_type_hint"] = request.tokenTypeHint
  let http = HttpClientRequest.post(request.endpoint)
  if (info.tokenEndpointAuthMethod === "client_secret_basic" && info.clientSecret !== undefined) {
    http = HttpClientRequest.setHeader(http, "authorization", basicAuthorization(info.clientId, info.clientSecret))
  } else {
    params["client_id"] = info.clientId
    if (info.tokenEndpointAuthMethod === "client_secret_post" && info.clientSecret !== undefined) {
      params["client_secret"] = Redacted.value(info.clientSecret)
    }
  }
  const response = yield* OAuthHttp.execute(client, HttpClientRequest.bodyUrlParams(http, params), {
    timeout: request.timeout ?? Duration.seconds(30),
    ...(request.allowInsecure === undefined ? {} : { allowInsecure: request.allowInsecure })
  })
  if (response.status === 200) return
  const body = OAuthHttp.decodeJson(ErrorBody, response)
  return yield* Either.match(body, {
    onLeft: () =>
      Effect.fail(
        new OAuthTokenError({
          error: response.status >= 500 ? "temporarily_unavailable" : "invalid_request",
          errorDescription: `the revocation endpoint answered HTTP ${response.status}`,
          status: response.status
        })
      ),
    onRight: (e) =>
      Effect.fail(
        new OAuthTokenError({
          error: e.error,
          ...(e.error_description === undefined ? {} : { errorDescription: e.error_description }),
          status: response.status
        })
      )
  })
}) satisfies (request: RevokeRequest) => Effect.Effect<void, OAuthTokenError | OAuthRequestError, HttpClient.HttpClient>
