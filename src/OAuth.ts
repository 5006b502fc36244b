/**
 * The orchestrator: stored token → refresh → discovery → registration → authorization →
 * exchange → storage, behind a single-flight lock, with retry-once on a stale client and scope
 * step-up. The flows live in their own modules (`SignIn`, `Refresh`, `StepUp`, `ClientIdentity`,
 * `SingleFlight`, sharing a `FlowContext`); `make` wires them. `OAuthLayer` (in `HttpAuth.ts`)
 * puts it behind an authenticated `HttpClient`.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MutableRef from "effect/MutableRef"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as ClientIdentity from "./ClientIdentity.js"
import * as CredentialExposure from "./CredentialExposure.js"
import * as Discovery from "./Discovery.js"
import type * as Dpop from "./Dpop.js"
import { type OAuthError, OAuthRequestError, type StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import { tokenWait } from "./internal/tokenWait.js"
import { authChallenge, type BearerChallenge } from "./internal/wwwAuthenticate.js"
import * as Refresh from "./Refresh.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as Revocation from "./Revocation.js"
import type { ClientInformation, StoredToken } from "./Schemas.js"
import * as SignIn from "./SignIn.js"
import * as StepUp from "./StepUp.js"
import * as TokenStorage from "./TokenStorage.js"

/**
 * Everything a custom grant needs (see {@link OAuthOptions.grant}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.5
 * @since 0.1.0
 * @category models
 */
export type GrantContext = FlowContext.GrantContext

/**
 * A custom way to obtain a token (e.g. RFC 8693 token exchange followed by an RFC 7523 JWT
 * bearer grant, as in MCP SEP-990 enterprise-managed authorization).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.5
 * @since 0.1.0
 * @category models
 */
export type CustomGrant = FlowContext.CustomGrant

/**
 * Options of {@link OAuth}. Only `mcpUrl` is required.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category models
 */
export type OAuthOptions = FlowContext.OAuthOptions

/**
 * The services the orchestrator is built from (see {@link FlowContext.Dependencies}).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category models
 */
export type Dependencies = FlowContext.Dependencies

/**
 * The OAuth client of one MCP server.
 *
 * @since 0.1.0
 * @category models
 */
export interface OAuth {
  readonly mcpUrl: string
  /** The storage key of this server. */
  readonly key: string
  /** A valid access token: the stored one, refreshed, or a new sign-in. */
  readonly accessToken: Effect.Effect<Redacted.Redacted<string>, OAuthError>
  /**
   * Signs in now (even with a stored token) and returns the new token set; fails with the
   * `StorageError` when it could not be stored (it is then kept in memory for this process).
   */
  readonly login: Effect.Effect<StoredToken, OAuthError>
  /**
   * Signs out: revokes the stored tokens at the server's `revocation_endpoint` (RFC 7009, best
   * effort) and forgets the tokens and client information of this server.
   */
  readonly logout: Effect.Effect<Revocation.SignOutResult, StorageError>
  /** The stored token set, if any (no network). */
  readonly tokens: Effect.Effect<Option.Option<StoredToken>, StorageError>
  /**
   * The token to put on a request right now without waiting on any lock when it is valid:
   * `None` when there is none (the request then goes out unauthenticated and its 401 starts the
   * sign-in). An expired token with a refresh token is refreshed (single-flight); such a wait runs
   * through the token-wait hook itself (an implementation of this interface must do the same).
   */
  readonly tokenForRequest: Effect.Effect<Option.Option<StoredToken>, OAuthError>
  /**
   * The fast path of {@link OAuth.tokenForRequest}, without an effect: the in-memory token when
   * it is usable at `nowMillis` (not within the refresh margin of its expiry), else `None` — then
   * `tokenForRequest` decides (load, refresh, or go without). Never reads storage or the network.
   */
  readonly cachedToken: (nowMillis: number) => Option.Option<StoredToken>
  /** The DPoP key (RFC 9449) of this client, when one is provided; used for `DPoP`-type tokens. */
  readonly dpop: Option.Option<Dpop.Dpop>
  /**
   * Reacts to a 401 (RFC 6750 §3.1 `invalid_token` or no token) for a request that carried
   * `used` (or nothing): refresh or sign in again, once for all concurrent callers.
   */
  readonly handleUnauthorized: (
    used: Option.Option<string>,
    challenge: Option.Option<BearerChallenge>
  ) => Effect.Effect<void, OAuthError>
  /** Reacts to a 403 `insufficient_scope`: re-authorize with the union of held and required scopes. */
  readonly handleInsufficientScope: (
    used: Option.Option<string>,
    challenge: BearerChallenge
  ) => Effect.Effect<void, OAuthError>
  /**
   * Treats the token set as leaked because `error` says a request carrying the access token
   * `used` was sent to another URL (a redirect followed by an HTTP client below): revokes it at
   * its issuer and forgets it (see `CredentialExposure.revokeExposed`); returns `error` saying so.
   */
  readonly revokeExposed: (
    error: OAuthRequestError,
    used: Option.Option<string>
  ) => Effect.Effect<OAuthRequestError, StorageError>
  /** Re-authorizations allowed per request (see {@link OAuthOptions.maxAuthorizationAttempts}). */
  readonly maxAuthorizationAttempts: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export const OAuth: Context.Tag<OAuth, OAuth> = Context.GenericTag<OAuth>("effect-mcp-oauth/OAuth")

/**
 * Normalises the `scopes` option into scope tokens.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.3
 * @since 0.1.0
 * @category scopes
 */
export const normalizeScopes: (scopes: string | ReadonlyArray<string> | undefined) => ReadonlyArray<string> =
  FlowContext.normalizeScopes

/**
 * The MCP scope selection strategy (SEP-835); see {@link SignIn.selectScopes}.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-selection-strategy
 * @since 0.1.0
 * @category scopes
 */
export const selectScopes: typeof SignIn.selectScopes = SignIn.selectScopes

/**
 * Builds the authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category url building
 */
export const authorizationUrl: typeof SignIn.authorizationUrl = SignIn.authorizationUrl

/** Obtains a valid token under the lock, re-checking first: another fiber may have done it. */
const obtain = (ctx: FlowContext.FlowContext, request: FlowContext.FlowRequest, force: boolean) =>
  ctx.singleFlight(
    Effect.gen(function*() {
      const stored = yield* FlowContext.reload(ctx)
      const now = yield* Clock.currentTimeMillis
      if (force || Option.isNone(stored)) return yield* SignIn.signIn(ctx, request)
      if (Refresh.isUsable(stored.value, now, ctx.refreshMarginMillis)) return stored.value
      return yield* Refresh.refreshOrSignIn(ctx, stored.value, request)
    })
  )

/** The request of a token obtained without a new challenge: the last one seen. */
const lastRequest = (ctx: FlowContext.FlowContext) =>
  Effect.map(Ref.get(ctx.lastChallenge), (challenge): FlowContext.FlowRequest => ({
    ...FlowContext.noChallenge,
    challenge
  }))

/** The slow path of {@link tokenForRequest}: no token yet, or one due for renewal. */
const obtainForRequest = (ctx: FlowContext.FlowContext): Effect.Effect<Option.Option<StoredToken>, OAuthError> =>
  Effect.gen(function*() {
    const token = yield* FlowContext.loadCurrent(ctx)
    if (Option.isNone(token)) {
      // Machine-to-machine grants need no challenge: obtain the token up front.
      if (!FlowContext.isUserGrant(ctx)) return Option.some(yield* obtain(ctx, FlowContext.noChallenge, false))
      return Option.none()
    }
    const now = yield* Clock.currentTimeMillis
    if (Refresh.isUsable(token.value, now, ctx.refreshMarginMillis)) return token
    if (token.value.refreshToken === undefined && FlowContext.isUserGrant(ctx)) {
      // Expired and not refreshable: go without; the 401 starts a sign-in with its challenge.
      return token.value.isExpired(now) ? Option.none() : token
    }
    return yield* obtain(ctx, yield* lastRequest(ctx), false).pipe(
      Effect.map(Option.some),
      // A transient refresh failure while the old token is still valid: keep using it.
      Effect.catchIf(
        (e) => !token.value.isExpired(now) && RetryPolicy.isTransient(e),
        (e) => Effect.as(Effect.logWarning(`Proactive refresh failed (${e.message}); using the current token`), token)
      )
    )
  })

/** The in-memory token when it is usable at `now`: a read, no effect. */
const cachedToken = (ctx: FlowContext.FlowContext) => (now: number): Option.Option<StoredToken> => {
  const token = MutableRef.get(ctx.current)
  return token !== undefined && Option.isSome(token) && Refresh.isUsable(token.value, now, ctx.refreshMarginMillis)
    ? token
    : Option.none()
}

/**
 * The per-request path: the in-memory token when it is usable (one read of the clock, no
 * generator, no fiber, no span), else the slow path — run through the token-wait hook (a
 * request's answer clock stops while it waits for a token).
 */
const tokenForRequest = (ctx: FlowContext.FlowContext): Effect.Effect<Option.Option<StoredToken>, OAuthError> => {
  const slow = tokenWait(obtainForRequest(ctx))
  const cached = cachedToken(ctx)
  return Effect.clockWith((clock) => {
    const token = cached(clock.unsafeCurrentTimeMillis())
    return Option.isSome(token) ? Effect.succeed(token) : slow
  })
}

const accessToken = (ctx: FlowContext.FlowContext): Effect.Effect<Redacted.Redacted<string>, OAuthError> =>
  Effect.gen(function*() {
    const token = yield* tokenForRequest(ctx)
    if (Option.isSome(token)) return token.value.accessToken
    return (yield* obtain(ctx, yield* lastRequest(ctx), false)).accessToken
  }).pipe(Effect.withSpan("OAuth.accessToken"))

/** Sign-out revokes with the configured pre-registered client when there is one (it holds the secret). */
const logout = (ctx: FlowContext.FlowContext): Effect.Effect<Revocation.SignOutResult, StorageError> =>
  Effect.flatMap(ctx.storage.getTokens(ctx.key), (tokens) =>
    Option.match(tokens, {
      onNone: () => Effect.succeed(Option.none<ClientInformation>()),
      onSome: (token) => ClientIdentity.configuredClient(ctx, token.issuer)
    })).pipe(
    Effect.flatMap((client) =>
      Revocation.signOut(ctx.key, {
        timeout: ctx.options.timeout,
        allowInsecure: ctx.options.allowInsecure,
        client: Option.getOrUndefined(client)
      })
    ),
    Effect.provideService(TokenStorage.TokenStorage, ctx.storage),
    Effect.provideService(Discovery.Discovery, ctx.discovery),
    Effect.provideService(HttpClient.HttpClient, ctx.httpClient),
    Effect.zipLeft(FlowContext.setCurrent(ctx, Option.none())),
    Effect.zipLeft(FlowContext.forgetDiscovery(ctx)),
    Effect.withSpan("OAuth.logout")
  )

/**
 * Builds the orchestrator. Uses `TokenStorage`, `Authorizer` and `Pkce` from the context, plus
 * the given Discovery / Registration / TokenExchange services.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: OAuthOptions): Effect.Effect<OAuth, never, Dependencies | Scope.Scope> =>
  Effect.map(FlowContext.make(options), (ctx) =>
    OAuth.of({
      mcpUrl: ctx.mcpUrl,
      key: ctx.key,
      accessToken: accessToken(ctx),
      login: obtain(ctx, FlowContext.noChallenge, true).pipe(
        Effect.flatMap((token) => FlowContext.requireStored(ctx, token)),
        Effect.withSpan("OAuth.login")
      ),
      logout: logout(ctx),
      tokens: ctx.storage.getTokens(ctx.key),
      tokenForRequest: tokenForRequest(ctx),
      cachedToken: cachedToken(ctx),
      dpop: ctx.dpop,
      handleUnauthorized: (used, challenge) => Refresh.handleUnauthorized(ctx, used, challenge),
      handleInsufficientScope: (used, challenge) => StepUp.handleInsufficientScope(ctx, used, challenge),
      revokeExposed: (error, used) => CredentialExposure.revokeExposed(ctx, error, used),
      maxAuthorizationAttempts: ctx.maxAuthorizationAttempts
    }))

/**
 * Probes an MCP endpoint and says whether it requires authorization: `true` on a 401/403 or a
 * `Bearer` / `DPoP` `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1),
 * `false` otherwise. An
 * unreachable server is an `OAuthRequestError`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category utilities
 */
export const checkIfAuthRequired = (
  mcpUrl: string,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<boolean, OAuthRequestError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.get(mcpUrl).pipe(HttpClientRequest.setHeader("accept", "application/json, text/event-stream"))
    ).pipe(
      Effect.mapError((e) => new OAuthRequestError({ reason: "Transport", url: mcpUrl, detail: e.message })),
      Effect.timeoutFail({
        duration: options.timeout ?? Duration.seconds(10),
        onTimeout: () => new OAuthRequestError({ reason: "Timeout", url: mcpUrl, detail: "no answer to the probe" })
      }),
      Effect.scoped
    )
    return response.status === 401 || response.status === 403 ||
      Option.isSome(authChallenge(response.headers["www-authenticate"]))
  }).pipe(Effect.withSpan("OAuth.checkIfAuthRequired", { attributes: { mcpUrl } }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: OAuthOptions): Layer.Layer<OAuth, never, Dependencies> =>
  Layer.scoped(OAuth, make(options))
