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
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as ClientIdentity from "./ClientIdentity.js"
import * as Discovery from "./Discovery.js"
import { type ExposedCredential, OAuthRequestError, type StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import * as Revocation from "./Revocation.js"
import type { StoredToken } from "./Schemas.js"
import * as TokenStorage from "./TokenStorage.js"

/**
 * What the caller must know of exposed tokens the issuer did not revoke (RFC 7009 §2.2 lets a
 * server refuse, e.g. a self-contained JWT access token, RFC 9068, that it does not store): they
 * stay usable by whoever received them.
 */
const stillUsable = (token: StoredToken, unrevoked: ReadonlyArray<ExposedCredential>): string =>
  unrevoked.map((kind) =>
    kind === "access_token"
      ? `; the exposed access token was not revoked and stays valid until it expires${
        token.expiresAt === undefined ? "" : ` (${new Date(token.expiresAt).toISOString()})`
      }`
      : kind === "refresh_token"
      ? "; the exposed refresh token was not revoked and stays usable until the authorization server expires it"
      : ""
  ).join("")

/**
 * Revokes the token set of `ctx` that a request carried at its issuer and forgets it, because
 * `error` (reason `"Redirect"`) says that the request — the access token `used`, or the refresh
 * token — was sent to another URL. The set is the stored one, or the one kept in memory because
 * storage refused it. When neither is the set the request carried (`used` is another access
 * token), nothing is revoked. Exactly that set is revoked, and it is forgotten only if it is
 * still the one stored: a set a concurrent refresh stored meanwhile was never sent, and is kept.
 * Returns `error` with its `detail` saying what was done, and that a client secret that was sent
 * must be rotated.
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
    // The set the request carried: the stored one, or the one kept in memory because storage
    // refused it (FlowContext.unsaved).
    const stored = yield* ctx.storage.getTokens(ctx.key)
    const unsaved = Option.map(yield* Ref.get(ctx.unsaved), (u) => u.token)
    const carries = (t: Option.Option<StoredToken>) =>
      Option.isSome(t) && (Option.isNone(used) || FlowContext.sameToken(t, used))
    const exposed = carries(stored) ? stored : carries(unsaved) ? unsaved : Option.none<StoredToken>()
    let outcome: string
    if (Option.isNone(exposed)) {
      outcome = "the token set it carried is no longer stored; nothing else was revoked"
    } else {
      // Exactly the set read above is revoked, and forgotten only if it is still the one stored:
      // a refresh that completed meanwhile (it runs under the token lock, this does not) stored
      // a set that was never sent anywhere, which is kept.
      const token = exposed.value
      const configured = yield* ClientIdentity.configuredClient(ctx, token.issuer)
      const client = Option.isSome(configured) ? configured : yield* ctx.storage.getClient(ctx.key)
      const result = yield* Revocation.revokeTokenSet(ctx.key, token, {
        timeout: ctx.options.timeout,
        allowInsecure: ctx.options.allowInsecure,
        client: Option.getOrUndefined(client)
      }).pipe(
        Effect.provideService(Discovery.Discovery, ctx.discovery),
        Effect.provideService(HttpClient.HttpClient, ctx.httpClient)
      )
      const same = (t: StoredToken) => Redacted.value(t.accessToken) === Redacted.value(token.accessToken)
      yield* Ref.update(ctx.unsaved, (u) => Option.isSome(u) && same(u.value.token) ? Option.none() : u)
      const forgotten = carries(stored) ? yield* TokenStorage.clearTokensIfUnchanged(ctx.storage, ctx.key, token) : true
      const revoked = result.revoked.map((hint) => hint.replace("_", " ")).join(" and ")
      const done = forgotten ? "the tokens forgotten" : "the newer token set stored meanwhile kept"
      outcome = result.revoked.length > 0
        ? `so it was treated as exposed: the ${revoked} ${
          result.revoked.length > 1 ? "were" : "was"
        } revoked at ${token.issuer} and ${done}${result.warnings.map((w) => `; ${w}`).join("")}`
        : `so it was treated as exposed and ${done}, but revocation at ${token.issuer} failed (${
          result.warnings.join("; ")
        })`
      outcome += stillUsable(token, (error.exposed ?? []).filter((t) => !result.revoked.some((r) => r === t)))
    }
    // Read again from storage by the next request: nothing, or the set a refresh stored meanwhile.
    yield* FlowContext.setCurrent(ctx, undefined)
    yield* Effect.logWarning(`Credentials sent to another URL by a redirect-following HTTP client: ${outcome}`)
    return new OAuthRequestError({
      reason: error.reason,
      url: error.url,
      ...(error.status === undefined ? {} : { status: error.status }),
      detail: `${error.detail}; ${outcome}`,
      ...(error.exposed === undefined ? {} : { exposed: error.exposed })
    })
  }).pipe(Effect.withSpan("CredentialExposure.revokeExposed"))
