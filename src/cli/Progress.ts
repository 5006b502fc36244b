/**
 * The CLI's sign-in progress lines, printed from the library's `SignInEvents` (the same hook a GUI
 * or TUI uses) on standard error: stdout stays the result (`--json`: JSON alone; `proxy`: the MCP
 * protocol). The authorization URL is printed by the authorizer itself (RFC 8252 §4.1) and the
 * device code by `DeviceAuthorization.showOnStderr`; no line here carries a code or a token.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as SignInEvents from "../SignInEvents.js"

const scopesOf = (scopes: ReadonlyArray<string>) => (scopes.length === 0 ? "" : `, scopes ${scopes.join(" ")}`)

const unstored = (storageError: string | undefined) =>
  storageError === undefined ? "" : ` (not stored: ${storageError}; kept in memory for now)`

/**
 * The line printed for `event`, if any.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @since 0.1.0
 * @category formatting
 */
export const lineOf = (mode: string) => (event: SignInEvents.SignInEvent): string | undefined =>
  SignInEvents.SignInEvent.$match(event, {
    AuthorizationUrl: (e) => `Signing in to ${e.mcpUrl} (${mode})…`,
    WaitingForBrowser: () => "Waiting for the sign-in in the browser…",
    DeviceCode: (e) => `Signing in to ${e.mcpUrl} (device code at ${e.issuer})…`,
    SignedIn: (e) => `Signed in to ${e.mcpUrl} at ${e.issuer}${scopesOf(e.scopes)}${unstored(e.storageError)}`,
    Refreshed: (e) =>
      `Access token refreshed for ${e.mcpUrl} at ${e.issuer}${scopesOf(e.scopes)}${unstored(e.storageError)}`
  })

/**
 * `SignInEvents` that print each event's line on stderr; `mode` names the sign-in for the
 * "Signing in to …" line.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category layers
 */
export const layer = (mode: string): Layer.Layer<SignInEvents.SignInEvents> =>
  SignInEvents.layer((event) => {
    const line = lineOf(mode)(event)
    return line === undefined ? Effect.void : Console.error(line)
  })
