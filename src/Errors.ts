/**
 * Typed errors of effect-mcp-oauth. Every public operation declares which of these it can fail
 * with; none of them carries a secret (tokens and client secrets never appear in an error).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A server-chosen text (an RFC 6749 §5.2 `error` code or `error_description`) as it appears in a
 * message: at most `max` characters, so that a hostile or broken server cannot flood messages
 * and logs. The error's fields keep the whole text.
 */
const bounded = (text: string, max: number): string => text.length > max ? `${text.slice(0, max)}…` : text
const described = (description: string | undefined, before: string, after = ""): string =>
  description === undefined ? "" : `${before}${bounded(description, 500)}${after}`

/**
 * The authorization server does not know (or no longer accepts) the client we presented:
 * a token or authorization request failed with `invalid_client` (RFC 6749 §5.2), or a pre-flight
 * of the authorization URL named the client as unknown. The orchestrator reacts by clearing the
 * stored client information and tokens, registering again and retrying once.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category errors
 */
export class ClientNotFound extends Schema.TaggedError<ClientNotFound>("effect-mcp-oauth/ClientNotFound")(
  "ClientNotFound",
  {
    clientId: Schema.String,
    description: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    return `The authorization server does not recognise client "${bounded(this.clientId, 200)}"` +
      described(this.description, ": ")
  }
}

/**
 * An error response from the token endpoint (RFC 6749 §5.2), or a token endpoint that answered
 * with something that is not a token response. `error` is the OAuth error code
 * (`invalid_grant`, `invalid_scope`, `server_error`, …); `status` is the HTTP status.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category errors
 */
export class OAuthTokenError extends Schema.TaggedError<OAuthTokenError>("effect-mcp-oauth/OAuthTokenError")(
  "OAuthTokenError",
  {
    error: Schema.String,
    errorDescription: Schema.optional(Schema.String),
    errorUri: Schema.optional(Schema.String),
    status: Schema.Number,
    /** Seconds the server asked to wait (`Retry-After`, RFC 9110 §10.2.3), on 429 / 503. */
    retryAfter: Schema.optional(Schema.Number)
  }
) {
  /** `true` for failures worth retrying later without discarding credentials (5xx, 429, `temporarily_unavailable`). */
  get isTransient(): boolean {
    return this.status >= 500 || this.status === 429 || this.error === "temporarily_unavailable" ||
      this.error === "server_error"
  }
  /**
   * The error response in a line (bounded): `error (HTTP status): description`. The revocation
   * endpoint (RFC 7009 §2.2.1) answers errors in this same form.
   */
  get answer(): string {
    return `${bounded(this.error, 100)} (HTTP ${this.status})` + described(this.errorDescription, ": ")
  }
  override get message(): string {
    return `Token request failed with ${this.answer}`
  }
}

/**
 * Dynamic client registration failed (RFC 7591 §3.2.2), or the registration response is not
 * usable (RFC 7591 §3.2.1), or the server offers no way to obtain a client identity.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2
 * @since 0.1.0
 * @category errors
 */
export class OAuthRegistrationError
  extends Schema.TaggedError<OAuthRegistrationError>("effect-mcp-oauth/OAuthRegistrationError")(
    "OAuthRegistrationError",
    {
      reason: Schema.Literal("Rejected", "InvalidResponse", "NotSupported"),
      error: Schema.optional(Schema.String),
      errorDescription: Schema.optional(Schema.String),
      status: Schema.optional(Schema.Number)
    }
  )
{
  override get message(): string {
    switch (this.reason) {
      case "Rejected":
        return `Client registration was rejected (${bounded(this.error ?? "HTTP " + String(this.status), 100)})` +
          described(this.errorDescription, ": ")
      case "InvalidResponse":
        return `Client registration returned an unusable response` + described(this.errorDescription, ": ")
      case "NotSupported":
        return this.errorDescription === undefined
          ? "The authorization server has no registration endpoint and no client was configured"
          : bounded(this.errorDescription, 500)
    }
  }
}

/**
 * Metadata discovery failed: RFC 9728 protected-resource metadata or RFC 8414 / OIDC
 * authorization-server metadata could not be found, was malformed, named the wrong issuer, or
 * the server does not support PKCE with `S256` (required by OAuth 2.1 and the MCP spec); or
 * (`Timeout`) discovery as a whole did not finish within its overall deadline.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.3
 * @since 0.1.0
 * @category errors
 */
export class DiscoveryError extends Schema.TaggedError<DiscoveryError>("effect-mcp-oauth/DiscoveryError")(
  "DiscoveryError",
  {
    reason: Schema.Literal("NotFound", "Malformed", "IssuerMismatch", "PkceNotSupported", "InsecureUrl", "Timeout"),
    url: Schema.String,
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Discovery failed (${this.reason}) at ${bounded(this.url, 300)}: ${bounded(this.detail, 1000)}`
  }
}

/**
 * Credentials would be presented to an authorization server other than the one they are bound
 * to (MCP SEP-2352), so nothing was sent. `expected` is the issuer the credentials belong to,
 * `actual` the issuer discovery returned now.
 *
 * - `"NotConfigured"`: the `issuer` option names `expected`, and discovery found another issuer.
 * - `"Changed"`: the pre-registered client was last used at `expected`; its id and secret are not
 *   sent to a new issuer unless the `issuer` option names it.
 *
 * Tokens of the old issuer are forgotten, never sent to the new one.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.4
 * @since 0.1.0
 * @category errors
 */
export class IssuerMismatch extends Schema.TaggedError<IssuerMismatch>("effect-mcp-oauth/IssuerMismatch")(
  "IssuerMismatch",
  {
    reason: Schema.Literal("NotConfigured", "Changed"),
    expected: Schema.String,
    actual: Schema.String
  }
) {
  override get message(): string {
    return this.reason === "NotConfigured"
      ? `The authorization server is ${bounded(this.actual, 300)}, not the configured issuer ${
        bounded(this.expected, 300)
      }; no credentials were sent`
      : `The authorization server changed from ${bounded(this.expected, 300)} to ${bounded(this.actual, 300)}; ` +
        `the pre-registered client's credentials are only sent to it when the issuer option names it`
  }
}

/**
 * A kind of credential a request can carry: `access_token` (a `Bearer` / `DPoP` header),
 * `refresh_token`, `client_secret` (HTTP Basic or the form), `client_assertion` (RFC 7523),
 * `code_verifier` and `authorization_code` (RFC 7636, RFC 6749 §4.1.3), `token` (the token
 * being revoked, RFC 7009 §2.1), `registration_access_token` (RFC 7592 §3).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.3
 * @since 0.1.0
 * @category errors
 */
export const ExposedCredential = Schema.Literal(
  "access_token",
  "refresh_token",
  "client_secret",
  "client_assertion",
  "code_verifier",
  "authorization_code",
  "token",
  "registration_access_token"
)

/**
 * The type of {@link ExposedCredential}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.3
 * @since 0.1.0
 * @category errors
 */
export type ExposedCredential = typeof ExposedCredential.Type

/**
 * A transport-level failure of an OAuth HTTP call (discovery, registration, token, probe):
 * the server could not be reached, did not answer in time, answered with a redirect (never
 * followed on OAuth calls), answered with a body that could not be read, or the URL is not
 * HTTPS and not loopback.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-1.5
 * @since 0.1.0
 * @category errors
 */
export class OAuthRequestError extends Schema.TaggedError<OAuthRequestError>("effect-mcp-oauth/OAuthRequestError")(
  "OAuthRequestError",
  {
    reason: Schema.Literal("Transport", "Timeout", "Redirect", "InsecureUrl", "Decode", "Status"),
    url: Schema.String,
    status: Schema.optional(Schema.Number),
    detail: Schema.String,
    /**
     * The credentials this request carried that reached another URL: an HTTP client below this
     * library followed a redirect and sent the request there again (`reason` `"Redirect"`).
     * Tokens among them have been revoked and forgotten where that was possible (the `detail`
     * says); a `client_secret` or private key can only be rotated.
     */
    exposed: Schema.optional(Schema.Array(ExposedCredential))
  }
) {
  override get message(): string {
    return `OAuth request to ${bounded(this.url, 300)} failed (${this.reason}${
      this.status === undefined ? "" : ", HTTP " + String(this.status)
    }): ${bounded(this.detail, 1000)}`
  }
}

/**
 * The authorization step (RFC 6749 §4.1) did not produce a usable code: the user or server
 * denied it (`error=` on the redirect), `state` did not match, the RFC 9207 `iss` parameter was
 * missing or wrong, no callback arrived in time, or the redirect carried no code.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 * @since 0.1.0
 * @category errors
 */
export class AuthorizationError extends Schema.TaggedError<AuthorizationError>("effect-mcp-oauth/AuthorizationError")(
  "AuthorizationError",
  {
    reason: Schema.Literal(
      "Denied",
      "StateMismatch",
      "IssuerMismatch",
      "Timeout",
      "InvalidResponse",
      "CallbackServer",
      "Cancelled"
    ),
    error: Schema.optional(Schema.String),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Authorization failed (${this.reason}${this.error === undefined ? "" : ": " + bounded(this.error, 100)}): ${
      bounded(this.detail, 1000)
    }`
  }
}

/**
 * The protected-resource metadata names a `resource` that is not the MCP server we are talking
 * to (RFC 9728 §3.3). Tokens are never requested for it; `/authorize` is never called.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.3
 * @since 0.1.0
 * @category errors
 */
export class ResourceMismatch extends Schema.TaggedError<ResourceMismatch>("effect-mcp-oauth/ResourceMismatch")(
  "ResourceMismatch",
  {
    expected: Schema.String,
    actual: Schema.String
  }
) {
  override get message(): string {
    return `Protected resource metadata names "${bounded(this.actual, 300)}", which does not match the server "${
      bounded(this.expected, 300)
    }"`
  }
}

/**
 * The server kept answering 403 `insufficient_scope` (RFC 6750 §3.1) after the bounded number
 * of step-up re-authorizations.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category errors
 */
export class InsufficientScope extends Schema.TaggedError<InsufficientScope>("effect-mcp-oauth/InsufficientScope")(
  "InsufficientScope",
  {
    requiredScopes: Schema.Array(Schema.String),
    attempts: Schema.Number,
    errorDescription: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    return `Still missing scope after ${this.attempts} step-up attempt(s); required: ${
      this.requiredScopes.join(" ") || "(unspecified)"
    }` + described(this.errorDescription, " (", ")")
  }
}

/**
 * The request was still rejected with 401 after signing in again: the new token is not accepted
 * by the resource server either. Raised instead of looping.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("effect-mcp-oauth/Unauthorized")(
  "Unauthorized",
  {
    url: Schema.String,
    wwwAuthenticate: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    return `The server at ${bounded(this.url, 300)} rejected a freshly obtained token` +
      described(this.wwwAuthenticate, " (", ")")
  }
}

/**
 * Token storage could not be read or written (I/O error, permissions, undecryptable data), or
 * (reason `"Unavailable"`) the storage cannot be used here at all: the OS keychain storage
 * without its `@napi-rs/keyring` package or without a keychain service to talk to.
 * A corrupted entry is *not* a `StorageError`: it reads as absent with a logged warning.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Schema.TaggedError<StorageError>("effect-mcp-oauth/StorageError")(
  "StorageError",
  {
    reason: Schema.Literal("Io", "Decryption", "Encoding", "Conflict", "Unavailable"),
    key: Schema.optional(Schema.String),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Token storage failed (${this.reason}${this.key === undefined ? "" : ", " + this.key}): ${this.detail}`
  }
}

/**
 * Every error the OAuth orchestrator can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type OAuthError =
  | ClientNotFound
  | OAuthTokenError
  | OAuthRegistrationError
  | DiscoveryError
  | OAuthRequestError
  | AuthorizationError
  | ResourceMismatch
  | IssuerMismatch
  | InsufficientScope
  | Unauthorized
  | StorageError
