/**
 * Damage limitation when credentials reached another URL: an HTTP client *below* this library
 * that follows redirects by itself (`HttpClient.followRedirects` over undici or `node:http`
 * under `OAuthLayer`) sends a request — with its access token, or at the token endpoint its
 * refresh token and client secret — to the `Location` before anything above it sees the 3xx.
 * That cannot be prevented from above (the redirect loop of `@effect/platform` consults nothing
 * the layer above can set, and hides the client it wraps), so the credentials are treated as
 * leaked: the token set is revoked at its own issuer (RFC 7009 §2.1, the endpoint stored with
 * it) and forgotten, and the caller gets a typed error that says so, and that a client secret —
 * which cannot be revoked — must be rotated.
 *
 * With `FetchHttpClient` below, OAuth endpoint calls cannot leak at all (fetch is told
 * `redirect: "error"`, so there is no 3xx to follow) and fetch itself drops `Authorization`
 * when it follows a redirect to another origin.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.3
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ClientIdentity from "./ClientIdentity.js"
import * as Discovery from "./Discovery.js"
import { OAuthRequestError, type StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import * as Revocation from "./Revocation.js"
import * as TokenStorage from "./TokenStorage.js"

/**
 * Revokes the stored token set of `ctx` at its issuer and forgets it, because `error` (reason
 * `"Redirect"`) says that a request carrying it — the access token `used`, or the refresh token
 * — was sent to another URL. When the stored set is no longer the one the request carried
 * (`used` is another access token), nothing is revoked. Returns `error` with its `detail`
 * saying what was done, and that a client secret that was sent must be rotated.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @since 0.1.0
 * @category damage limitation
 */
export const revokeExposed = (
  ctx: FlowContext.FlowContext,
  error: OAuthRequestError,
  used: Option.Option<string>
): Effect.Effect<OAuthRequestError, StorageError> =>
  Effect.gen(function*() {
    const stored = yield* ctx.storage.getTokens(ctx.key)
    const carried = Option.isNone(used) || FlowContext.sameToken(stored, used)
    let outcome: string
    if (Option.isNone(stored) || !carried) {
      outcome = "the token set it carried is no longer stored; nothing else was revoked"
    } else {
      const token = stored.value
      const client = yield* ClientIdentity.configuredClient(ctx, token.issuer)
      const result = yield* Revocation.signOut(ctx.key, {
        timeout: ctx.options.timeout,
        allowInsecure: ctx.options.allowInsecure,
        client: Option.getOrUndefined(client),
        forgetClient: false
      }).pipe(
        Effect.provideService(TokenStorage.TokenStorage, ctx.storage),
        Effect.provideService(Discovery.Discovery, ctx.discovery),
        Effect.provideService(HttpClient.HttpClient, ctx.httpClient)
      )
      const revoked = result.revoked.map((hint) => hint.replace("_", " ")).join(" and ")
      outcome = result.revoked.length > 0
        ? `so it was treated as exposed: the ${revoked} ${
          result.revoked.length > 1 ? "were" : "was"
        } revoked at ${token.issuer} and the tokens forgotten`
        : `so it was treated as exposed and the tokens forgotten, but revocation at ${token.issuer} failed (${
          result.warnings.join("; ")
        })`
    }
    yield* FlowContext.setCurrent(ctx, Option.none())
    yield* Effect.logWarning(`Credentials sent to another URL by a redirect-following HTTP client: ${outcome}`)
    return new OAuthRequestError({
      reason: error.reason,
      url: error.url,
      ...(error.status === undefined ? {} : { status: error.status }),
      detail: `${error.detail}; ${outcome}`,
      ...(error.exposed === undefined ? {} : { exposed: error.exposed })
    })
  }).pipe(Effect.withSpan("CredentialExposure.revokeExposed"))
