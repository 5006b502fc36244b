/**
 * The authorization step of the authorization code flow (RFC 6749 §4.1.1–4.1.2): turns an
 * authorization URL into the code the authorization server sends back to the redirect URI.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { Effect, Scope } from "effect"
import type { AuthorizationError, ClientNotFound, OAuthRequestError } from "./Errors.js"
import type { AuthorizationResponse } from "./Schemas.js"

/**
 * What the orchestrator asks the authorizer to do: send the user agent to `url` and bring back
 * the authorization response addressed to `redirectUri`, checking `state` (RFC 6749 §10.12) and,
 * when the server advertises it or sends it, `iss` (RFC 9207 §2.4).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationRequest {
  readonly url: URL
  readonly state: string
  readonly redirectUri: string
  readonly issuer: string
  readonly issParameterSupported: boolean
  readonly clientId: string
}

/**
 * One authorization attempt: the redirect URI to register and send (known before the
 * authorization URL is built, e.g. the port of a loopback callback server, RFC 8252 §7.3), and
 * the step that obtains the response. Lives in a `Scope`: a callback server closes with it.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationSession {
  readonly redirectUri: string
  readonly authorize: (
    request: AuthorizationRequest
  ) => Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound | OAuthRequestError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Authorizer {
  readonly session: Effect.Effect<AuthorizationSession, AuthorizationError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Authorizer: Context.Tag<Authorizer, Authorizer> = Context.GenericTag<Authorizer>(
  "effect-mcp-oauth/Authorizer"
)
