/**
 * Refresh: when a stored token is due for renewal, redeem its refresh token (RFC 6749 §6) with
 * bounded retries of transient failures, keeping a sibling process's newer token, and fall back
 * to a full sign-in when the grant is gone. Also the reaction to a 401 (RFC 6750 §3.1).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { identity } from "effect/Function"
import * as ClientIdentity from "./ClientIdentity.js"
import * as CredentialExposure from "./CredentialExposure.js"
import type { DiscoveryResult } from "./Discovery.js"
import type { ClientNotFound, OAuthError, OAuthRequestError, OAuthTokenError, StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import type { BearerChallenge } from "./internal/wwwAuthenticate.js"
import type { ClientInformation, StoredToken } from "./Schemas.js"
import * as SignIn from "./SignIn.js"
import * as SignInEvents from "./SignInEvents.js"
import * as TokenLock from "./TokenLock.js"
import * as TokenStorage from "./TokenStorage.js"

/** How a refresh attempt ended: a new token, a token another process stored first, or a sign-in. */
type RefreshOutcome = Data.TaggedEnum<{
  Refreshed: { readonly token: StoredToken }
  Sibling: { readonly token: StoredToken }
  SignIn: { readonly rediscover: boolean }
}>
const RefreshOutcome = Data.taggedEnum<RefreshOutcome>()

/**
 * How long before its expiry a token is refreshed: the configured margin (default 60 s) for
 * long-lived tokens, a tenth of the lifetime for short ones (but at least 2 s, or a quarter of
 * a lifetime shorter than 8 s) — a few round trips — so that a token is used for most of its
 * lifetime and refreshed once per lifetime, still before any request could carry it expired.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category refresh
 */
export const refreshMargin = (token: StoredToken, marginMillis: number): number => {
  if (token.expiresAt === undefined) return 0
  const lifetime = Math.max(0, token.expiresAt - token.obtainedAt)
  return Math.min(marginMillis, Math.max(lifetime / 10, Math.min(2000, lifetime / 4)))
}

/**
 * Valid for a request at `now`: not within the refresh margin of its expiry (see
 * {@link refreshMargin}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category refresh
 */
export const isUsable = (token: StoredToken, now: number, marginMillis: number): boolean =>
  !token.isExpired(now, refreshMargin(token, marginMillis))

/**
 * SEP-2352: the refresh token belongs to its issuer; another one never sees it. Forget it
 * (unless another process already replaced it with a token of the new issuer, which is used) and
 * sign in where the resource points now.
 */
const signInAtNewIssuer = (
  ctx: FlowContext.FlowContext,
  token: StoredToken,
  found: DiscoveryResult,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    yield* Effect.logWarning(
      `Authorization server changed (${token.issuer} → ${found.issuer}); its tokens are dropped, not sent`
    )
    if (!(yield* TokenStorage.clearTokensIfUnchanged(ctx.storage, ctx.key, token))) {
      const newer = yield* FlowContext.reload(ctx)
      if (Option.isSome(newer) && newer.value.issuer === found.issuer) return newer.value
    }
    yield* FlowContext.setCurrent(ctx, Option.none())
    return yield* SignIn.signIn(ctx, request)
  })

/** The client that redeems the refresh token: the one stored for the issuer, or the configured one. */
const refreshingClient = (
  ctx: FlowContext.FlowContext,
  found: DiscoveryResult
): Effect.Effect<ClientInformation | undefined, OAuthError> =>
  Effect.gen(function*() {
    const client = yield* ClientIdentity.storedClient(ctx, found.issuer)
    if (Option.isSome(client)) return client.value
    return ctx.registration.isStatic
      ? yield* ClientIdentity.preregistered(ctx, found, "urn:ietf:wg:oauth:2.0:oob")
      : undefined
  })

/**
 * The server refused the grant (`invalid_grant`, …) or does not know the client. Another process
 * may have refreshed with this refresh token a moment ago: keep its tokens rather than wiping
 * them (compare-and-set on the stored tokens); else clear them and sign in.
 */
const grantRefused = (
  ctx: FlowContext.FlowContext,
  token: StoredToken,
  reusedDiscovery: boolean,
  e: OAuthTokenError | ClientNotFound
): Effect.Effect<RefreshOutcome, OAuthError> =>
  Effect.gen(function*() {
    if (!(yield* TokenStorage.clearTokensIfUnchanged(ctx.storage, ctx.key, token))) {
      const newer = yield* FlowContext.reload(ctx)
      if (Option.isSome(newer)) return RefreshOutcome.Sibling({ token: newer.value })
    }
    yield* Effect.logWarning(
      `Refresh failed (${e._tag === "OAuthTokenError" ? e.error : "invalid_client"}); signing in again`
    )
    if (e._tag === "ClientNotFound") yield* ClientIdentity.forgetStaleClient(ctx)
    yield* FlowContext.setCurrent(ctx, Option.none())
    // A refused grant may mean the resource moved to another authorization server:
    // fetch the metadata again (once) when it was reused. An unknown client is the
    // registration's fault, not the metadata's: the sign-in registers where it is.
    return RefreshOutcome.SignIn({ rediscover: reusedDiscovery && e._tag === "OAuthTokenError" })
  })

/** RFC 6749 §6: redeem the refresh token, retrying transient failures, and say how it ended. */
const redeem = (
  ctx: FlowContext.FlowContext,
  token: StoredToken,
  refreshToken: Redacted.Redacted<string>,
  found: DiscoveryResult,
  client: ClientInformation,
  reusedDiscovery: boolean
): Effect.Effect<RefreshOutcome, OAuthError> => {
  const retry = ctx.refreshRetry
  // Fencing (RFC 9700 §4.14.2): a holder that stalled past its cross-process lease must not
  // redeem the refresh token another process may be redeeming now; checked right before each
  // attempt, and the storage's write is conditional on the lease too.
  return TokenLock.ensureHeld.pipe(
    Effect.zipRight(ctx.exchange.refresh({
      discovery: found,
      client,
      refreshToken,
      resource: token.resource ?? found.resource,
      scopes: token.scopes,
      ...(token.dpopKey === undefined ? {} : { dpopKey: token.dpopKey })
    }))
  ).pipe(
    // Transient failures (5xx, 429 with Retry-After, refused connections) are retried with
    // a bounded, jittered backoff. Not a timeout nor a connection lost once connected: the
    // server may have rotated the refresh token already, and presenting the old one again
    // would revoke the whole grant (RFC 9700 §4.14.2).
    retry === undefined ? identity : Effect.retry({
      schedule: retry,
      while: (e) => e._tag !== "StorageError" && !mayHaveReachedServer(e)
    }),
    // A client below followed the token endpoint's redirect and sent the refresh token
    // elsewhere: it is leaked, so the grant is revoked at its issuer and forgotten.
    Effect.catchIf(
      (e): e is OAuthRequestError => e._tag === "OAuthRequestError" && (e.exposed ?? []).includes("refresh_token"),
      (e) => Effect.flatMap(CredentialExposure.revokeExposed(ctx, e, Option.none()), Effect.fail)
    ),
    Effect.map((refreshed) => RefreshOutcome.Refreshed({ token: refreshed })),
    // The lease was lost: whoever holds the lock now refreshes; use what they stored.
    Effect.catchIf(
      (e): e is StorageError => e._tag === "StorageError" && e.reason === "Conflict",
      (e) =>
        Effect.flatMap(FlowContext.reload(ctx), (newer) =>
          Option.isSome(newer) && !FlowContext.sameToken(newer, Option.some(Redacted.value(token.accessToken)))
            ? Effect.succeed(RefreshOutcome.Sibling({ token: newer.value }))
            : Effect.fail(e))
    ),
    Effect.catchIf(
      (e): e is OAuthTokenError | ClientNotFound =>
        (e._tag === "OAuthTokenError" && !e.isTransient) || e._tag === "ClientNotFound",
      (e) => grantRefused(ctx, token, reusedDiscovery, e)
    )
  )
}

/**
 * Keep the refreshed token. Never overwrite a newer token another process stored meanwhile; a set
 * storage refuses is kept in memory, used, and stored at the next occasion (FlowContext.reload).
 */
const storeRefreshed = (
  ctx: FlowContext.FlowContext,
  previous: StoredToken,
  token: StoredToken
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    const refreshed = yield* FlowContext.withDiscovery(ctx, token)
    const { storageError, token: stored } = yield* FlowContext.storeOrKeep(ctx, Option.some(previous), refreshed)
    yield* SignInEvents.publish(
      SignInEvents.SignInEvent.Refreshed({
        mcpUrl: ctx.mcpUrl,
        issuer: stored.issuer,
        scopes: stored.scopes,
        ...(storageError === undefined ? {} : { storageError })
      })
    )
    return stored
  })

/**
 * Refreshes `token` (RFC 6749 §6) at its own issuer, or signs in when it has no refresh token,
 * discovery now names another issuer (the tokens are dropped, never sent there — SEP-2352), no
 * client can redeem it, or the server refuses it (`invalid_grant`, unknown client: tokens cleared — unless
 * another process replaced them meanwhile, whose token is then used). Transient failures are
 * retried with backoff and then returned, the refresh token kept. Runs inside the single flight.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @since 0.1.0
 * @category refresh
 */
export const refreshOrSignIn = (
  ctx: FlowContext.FlowContext,
  token: StoredToken,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    yield* ClientIdentity.rememberIssuer(ctx, token.issuer)
    const refreshToken = token.refreshToken
    if (refreshToken === undefined) return yield* SignIn.signIn(ctx, request)
    const found = yield* FlowContext.discover(ctx, request.challenge, request.rediscover)
    // Refreshing with metadata known from before (this process, or stored with the token) costs
    // no round trip; it is fetched again only when the refresh fails in a way it could explain.
    const reused = yield* Ref.get(ctx.reusedDiscovery)
    const afterDiscovery: FlowContext.FlowRequest = { ...request, rediscover: false }
    if (found.issuer !== token.issuer) return yield* signInAtNewIssuer(ctx, token, found, afterDiscovery)
    const client = yield* refreshingClient(ctx, found)
    if (client === undefined) {
      yield* FlowContext.clearTokens(ctx)
      return yield* SignIn.signIn(ctx, afterDiscovery)
    }
    const outcome = yield* redeem(ctx, token, refreshToken, found, client, reused)
    switch (outcome._tag) {
      case "Sibling":
        return outcome.token
      case "SignIn":
        return yield* SignIn.signIn(ctx, { ...request, rediscover: outcome.rediscover })
      case "Refreshed":
        return yield* storeRefreshed(ctx, token, outcome.token)
    }
  }).pipe(Effect.withSpan("OAuth.refreshOrSignIn"))

/** Connection failures that happen before a request is sent (the server never saw it). */
const NOT_SENT = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)\b/

/** A failure after which the server may have processed the request: a timeout, a connection lost once connected. */
const mayHaveReachedServer = (e: OAuthError): boolean =>
  e._tag === "OAuthRequestError" && (e.reason === "Timeout" || (e.reason === "Transport" && !NOT_SENT.test(e.detail)))

/**
 * Reacts to a 401 (RFC 6750 §3.1 `invalid_token` or no token) for a request that carried `used`
 * (or nothing): once for all concurrent callers, use a token someone else stored meanwhile, else
 * refresh, else sign in again (re-discovering when a token was refused).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category refresh
 */
export const handleUnauthorized = (
  ctx: FlowContext.FlowContext,
  used: Option.Option<string>,
  challenge: Option.Option<BearerChallenge>
): Effect.Effect<void, OAuthError> =>
  Effect.gen(function*() {
    if (Option.isSome(challenge)) yield* Ref.set(ctx.lastChallenge, challenge)
    yield* ctx.singleFlight(
      Effect.gen(function*() {
        const stored = yield* FlowContext.reload(ctx)
        const now = yield* Clock.currentTimeMillis
        // Someone else already replaced the token this request used: just retry with theirs.
        if (
          Option.isSome(stored) && !FlowContext.sameToken(stored, used) &&
          isUsable(stored.value, now, ctx.refreshMarginMillis)
        ) return stored.value
        // The metadata is fetched again only when the refused token was itself obtained with
        // reused metadata (it may be the metadata that is wrong), or when the challenge names
        // another resource_metadata (`FlowContext.discover` notices that itself).
        const suspect = yield* Ref.get(ctx.suspect)
        const rediscover = Option.isSome(used) && Option.isSome(suspect) && suspect.value === used.value
        const request: FlowContext.FlowRequest = { challenge, extraScopes: [], rediscover }
        if (Option.isSome(stored) && stored.value.refreshToken !== undefined && FlowContext.isUserGrant(ctx)) {
          return yield* refreshOrSignIn(ctx, stored.value, request)
        }
        if (Option.isSome(stored)) yield* ClientIdentity.rememberIssuer(ctx, stored.value.issuer)
        if (Option.isSome(stored) && !(yield* TokenStorage.clearTokensIfUnchanged(ctx.storage, ctx.key, stored.value))) {
          // Replaced by another process meanwhile: use that one.
          const newer = yield* FlowContext.reload(ctx)
          if (Option.isSome(newer)) return newer.value
        }
        yield* FlowContext.setCurrent(ctx, Option.none())
        // No refresh possible: a sign-in follows. A token the server refused may mean the resource
        // moved to another authorization server (SEP-2352), so its metadata is fetched again
        // first — two GETs before a sign-in, never on the refresh path.
        return yield* SignIn.signIn(ctx, { ...request, rediscover: request.rediscover || Option.isSome(used) })
      })
    )
  }).pipe(Effect.asVoid, Effect.withSpan("OAuth.handleUnauthorized"))
