/**
 * The request an authorizer carries out, declared below `Authorizer` so that the internal
 * helpers it uses (callback server, pre-flight probe, response validation) need not import the
 * public module that uses them. Re-exported as `Authorizer.AuthorizationRequest`.
 *
 * @internal
 */
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
  /**
   * Whether an interactive authorizer should pre-flight this request (one GET of the URL before
   * the user is sent there, to catch a client the server no longer knows or an error redirect).
   * Default `true`; the orchestrator sends `false` when the client was just registered or was
   * confirmed by an RFC 7592 read, where a pre-flight adds nothing.
   */
  readonly preflight?: boolean | undefined
  /**
   * The user agent was already sent to `url` — by an earlier process whose sign-in this one takes
   * over (`PendingAuthorization`) — so an interactive authorizer only waits for the response on
   * `redirectUri`: no pre-flight, no second browser window.
   */
  readonly resumed?: boolean | undefined
}
