/**
 * The "who is the user and do they agree" step of the embedded authorization server's
 * authorization endpoint (RFC 6749 §4.1.1). The step is injectable: tests approve automatically,
 * a demo shows a real consent page with Approve and Deny buttons.
 *
 * @since 0.1.0
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/**
 * A validated authorization request, as shown to the consent step.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationRequest {
  readonly clientId: string
  readonly clientName: string | undefined
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly state: string | undefined
}

/**
 * What the consent step decided:
 * - `Approve`: issue a code for `subject` (optionally narrowing the scopes);
 * - `Deny`: redirect with `error=access_denied` (RFC 6749 §4.1.2.1);
 * - `Prompt`: show the HTML consent page (buttons with ids `approve` and `deny`, a form POST)
 *   and let the user decide; `subject` is who is signed in.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 * @since 0.1.0
 * @category models
 */
export type ConsentDecision = Data.TaggedEnum<{
  Approve: { readonly subject: string; readonly scopes?: ReadonlyArray<string> }
  Deny: { readonly description?: string }
  Prompt: { readonly subject: string }
}>

/**
 * Constructors and matchers of {@link ConsentDecision}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 * @since 0.1.0
 * @category constructors
 */
export const ConsentDecision = Data.taggedEnum<ConsentDecision>()

/**
 * The consent step: decides an authorization request. It runs inside the authorization request,
 * so it may read cookies or headers of the `HttpServerRequest`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category models
 */
export type ConsentStep = (
  request: AuthorizationRequest
) => Effect.Effect<ConsentDecision, never, HttpServerRequest.HttpServerRequest>

/**
 * Approves every request as `subject` (default `"test-user"`) without showing anything.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category constructors
 */
export const autoApprove = (subject = "test-user"): ConsentStep => () =>
  Effect.succeed(ConsentDecision.Approve({ subject }))

/**
 * Denies every request (`access_denied`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 * @since 0.1.0
 * @category constructors
 */
export const autoDeny = (description = "The user denied the request"): ConsentStep => () =>
  Effect.succeed(ConsentDecision.Deny({ description }))

/**
 * Shows the HTML consent page to `subject` (default `"test-user"`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category constructors
 */
export const page = (subject = "test-user"): ConsentStep => () => Effect.succeed(ConsentDecision.Prompt({ subject }))
