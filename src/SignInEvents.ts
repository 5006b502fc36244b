/**
 * Sign-in progress for an app's own UI: the authorization URL to show (or to render as a link or
 * QR code), "waiting for the browser", "signed in", "refreshed". A GUI or TUI provides
 * `SignInEvents.layer(handler)` next to `OAuthLayer`; without it, events go nowhere. Events carry
 * no secret: the authorization URL holds only public request parameters (RFC 6749 §4.1.1: client
 * id, redirect URI, PKCE challenge, state), never a code, verifier or token.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * One step of a sign-in or refresh.
 *
 * - `AuthorizationUrl`: the user must open `url` (the browser sign-in opens it too; the manual
 *   one asks for the address the browser ends on).
 * - `WaitingForBrowser`: the browser was asked to open `url`; the loopback callback is awaited.
 * - `DeviceCode`: a device sign-in (RFC 8628 §3.3) waits for the user to open
 *   `verificationUriComplete` (render it as a QR code), or `verificationUri` and type `userCode`,
 *   on any device; the library polls meanwhile.
 * - `SignedIn`: the authorization code was exchanged for tokens.
 * - `Refreshed`: the refresh token was exchanged for new tokens.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @since 0.1.0
 * @category models
 */
export type SignInEvent = Data.TaggedEnum<{
  AuthorizationUrl: { readonly mcpUrl: string; readonly url: string; readonly redirectUri: string }
  WaitingForBrowser: { readonly url: string }
  DeviceCode: {
    readonly mcpUrl: string
    readonly issuer: string
    readonly userCode: string
    readonly verificationUri: string
    readonly verificationUriComplete: string | undefined
    readonly expiresInSeconds: number
  }
  SignedIn: {
    readonly mcpUrl: string
    readonly issuer: string
    readonly scopes: ReadonlyArray<string>
    /**
     * Why the new tokens could not be stored: they are kept in memory (and used), and stored at
     * the next occasion. Absent when they were stored.
     */
    readonly storageError?: string | undefined
  }
  Refreshed: {
    readonly mcpUrl: string
    readonly issuer: string
    readonly scopes: ReadonlyArray<string>
    /**
     * Why the refreshed tokens could not be stored: they are kept in memory (and used), and
     * stored at the next occasion. Absent when they were stored.
     */
    readonly storageError?: string | undefined
  }
}>

/**
 * Constructors and matchers of {@link SignInEvent}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @since 0.1.0
 * @category constructors
 */
export const SignInEvent = Data.taggedEnum<SignInEvent>()

/**
 * Receives the events. The handler runs in the signing-in fiber: keep it quick (hand the event
 * to your UI); a defect in it is logged, never fails the sign-in.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category models
 */
export interface SignInEvents {
  readonly publish: (event: SignInEvent) => Effect.Effect<void>
}

/**
 * The events service; by default it drops every event.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category tags
 */
export const SignInEvents: Context.Reference<SignInEvents, SignInEvents> = Context.Reference<SignInEvents>()(
  "effect-mcp-oauth/SignInEvents",
  { defaultValue: (): SignInEvents => ({ publish: () => Effect.void }) }
)

/**
 * Sends every event to `handler`. Provide it to the program that uses `OAuthLayer` (or `McpClient`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category layers
 */
export const layer = (handler: (event: SignInEvent) => Effect.Effect<void>): Layer.Layer<SignInEvents> =>
  Layer.succeed(SignInEvents, { publish: handler })

/**
 * Publishes `event` to the `SignInEvents` of the current context; a defect of the handler is
 * logged and dropped.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category publishing
 */
export const publish = (event: SignInEvent): Effect.Effect<void> =>
  Effect.flatMap(SignInEvents, (events) => events.publish(event)).pipe(
    Effect.catchAllDefect((defect) => Effect.logWarning("a SignInEvents handler failed", defect))
  )
