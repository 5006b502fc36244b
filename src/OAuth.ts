/**
 * The orchestrator: stored token → refresh → discovery → registration → authorization →
 * exchange → storage, behind a single-flight lock, with retry-once on a stale client and scope
 * step-up. `OAuthLayer` (in `HttpAuth.ts`) puts it behind an authenticated `HttpClient`.
 *
 * @since 0.1.0
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { identity } from "effect/Function"
import {
  Clock,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  FiberId,
  Layer,
  Option,
  Redacted,
  Ref,
  Schedule,
  Scope
} from "effect"
import * as Authorizer from "./Authorizer.js"
import * as Discovery from "./Discovery.js"
import * as Dpop from "./Dpop.js"
import {
  type ClientNotFound,
  DiscoveryError,
  type OAuthError,
  OAuthRequestError,
  type OAuthTokenError,
  type StorageError
} from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { authChallenge, type BearerChallenge } from "./internal/wwwAuthenticate.js"
import * as Pkce from "./Pkce.js"
import * as Registration from "./Registration.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as Revocation from "./Revocation.js"
import type { ClientInformation, StoredToken, TokenEndpointAuthMethod } from "./Schemas.js"
import * as TokenExchange from "./TokenExchange.js"
import * as TokenLock from "./TokenLock.js"
import * as TokenStorage from "./TokenStorage.js"

/**
 * Everything a custom grant needs (see {@link OAuthOptions.grant}).
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantContext {
  readonly discovery: Discovery.DiscoveryResult
  readonly client: ClientInformation
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly exchange: TokenExchange.TokenExchange
}

/**
 * A custom way to obtain a token (e.g. RFC 8693 token exchange followed by an RFC 7523 JWT
 * bearer grant, as in MCP SEP-990 enterprise-managed authorization).
 *
 * @since 0.1.0
 * @category models
 */
export type CustomGrant = (context: GrantContext) => Effect.Effect<StoredToken, OAuthError>

/**
 * Options of {@link OAuth}. Only `mcpUrl` is required.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category models
 */
export interface OAuthOptions {
  /** The MCP server (protected resource) URL. */
  readonly mcpUrl: string
  /** Scopes to request (space-separated string or array). When omitted: the 401's `scope`, else the PRM's `scopes_supported` (MCP SEP-835). */
  readonly scopes?: string | ReadonlyArray<string> | undefined
  /** RFC 7591 `client_name`. */
  readonly clientName?: string | undefined
  /** Client ID Metadata Document URL (SEP-991), used when the server supports it. */
  readonly clientMetadataUrl?: string | undefined
  /** A pre-registered client id. */
  readonly clientId?: string | undefined
  /** The pre-registered client's secret. */
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined
  readonly additionalClientMetadata?: Readonly<Record<string, unknown>> | undefined
  /** A fixed loopback callback port for the browser sign-in (RFC 8252 §7.3). */
  readonly callbackPort?: number | undefined
  /** Timeout of each HTTP call to an OAuth endpoint. Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Refresh this long before expiry. Default 60 s. */
  readonly refreshMargin?: Duration.DurationInput | undefined
  /** Re-authorizations allowed for one request (401 sign-in and 403 step-ups together). Default 3. */
  readonly maxAuthorizationAttempts?: number | undefined
  /** Overrides the RFC 9728 §3.3 resource check. */
  readonly validateResource?: ((serverUrl: string, resource: string) => boolean) | undefined
  /** `"authorization_code"` (default, with a user), `"client_credentials"` (machine to machine), or a custom grant. */
  readonly grant?: "authorization_code" | "client_credentials" | CustomGrant | undefined
  /** Key for `private_key_jwt` client authentication (RFC 7523). */
  readonly privateKeyJwt?: TokenExchange.PrivateKeyJwtConfig | undefined
  /**
   * Backoff for transient refresh failures (5xx, 429 with `Retry-After`, refused connections):
   * default 3 retries from 250 ms, jittered, at most 10 s apart; `false` fails at once.
   */
  readonly refreshRetry?: RetryPolicy.TransientRetryOptions | false | undefined
  /** Allow plain-HTTP non-loopback OAuth endpoints. Never in production. */
  readonly allowInsecure?: boolean | undefined
}

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
  /** Signs in now (even with a stored token) and returns the new token set. */
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
   * sign-in). An expired token with a refresh token is refreshed (single-flight).
   */
  readonly tokenForRequest: Effect.Effect<Option.Option<StoredToken>, OAuthError>
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
export const normalizeScopes = (scopes: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  scopes === undefined
    ? []
    : typeof scopes === "string"
    ? TokenExchange.parseScope(scopes)
    : scopes.flatMap((s) => TokenExchange.parseScope(s))

const union = (...lists: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => [...new Set(lists.flat())]

/**
 * The MCP scope selection strategy (SEP-835): the `scope` of the challenge, else the PRM's
 * `scopes_supported`, else nothing (the `scope` parameter is then omitted). `offline_access` is
 * added when the authorization server lists it (SEP-2207), so a refresh token can be issued.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-selection-strategy
 * @since 0.1.0
 * @category scopes
 */
export const selectScopes = (
  configured: ReadonlyArray<string>,
  challenge: ReadonlyArray<string> | undefined,
  discovery: Discovery.DiscoveryResult
): ReadonlyArray<string> => {
  const base = configured.length > 0
    ? configured
    : challenge !== undefined && challenge.length > 0
    ? challenge
    : Option.match(discovery.protectedResource, { onNone: () => [], onSome: (prm) => prm.scopes_supported ?? [] })
  const offline = (discovery.authorizationServer.scopes_supported ?? []).includes("offline_access") &&
      base.length > 0 && !base.includes("offline_access")
    ? ["offline_access"]
    : []
  return union(base, offline)
}

/**
 * Builds the authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category url building
 */
export const authorizationUrl = (params: {
  readonly endpoint: string
  readonly clientId: string
  readonly redirectUri: string
  readonly codeChallenge: string
  readonly state: string
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
}): URL => {
  const url = new URL(params.endpoint)
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", params.clientId)
  url.searchParams.set("redirect_uri", params.redirectUri)
  url.searchParams.set("code_challenge", params.codeChallenge)
  url.searchParams.set("code_challenge_method", "S256")
  url.searchParams.set("state", params.state)
  if (params.scopes.length > 0) url.searchParams.set("scope", params.scopes.join(" "))
  if (params.resource !== undefined) url.searchParams.set("resource", params.resource)
  return url
}

/** How a refresh attempt ended: a new token, a token another process stored first, or a sign-in. */
type RefreshOutcome = Data.TaggedEnum<{
  Refreshed: { readonly token: StoredToken }
  Sibling: { readonly token: StoredToken }
  SignIn: {}
}>
const RefreshOutcome = Data.taggedEnum<RefreshOutcome>()

interface FlowRequest {
  readonly challenge: Option.Option<BearerChallenge>
  readonly extraScopes: ReadonlyArray<string>
  readonly rediscover: boolean
}

/**
 * The services the orchestrator is built from (`OAuthLayer` provides them all, taking
 * `TokenStorage`, `Authorizer` and `Pkce` from below when given; the `HttpClient` is the inner,
 * unauthenticated one, used for revocation). `Dpop` and `TokenLock` are
 * optional and used when present.
 *
 * @since 0.1.0
 * @category models
 */
export type Dependencies =
  | HttpClient.HttpClient
  | TokenStorage.TokenStorage
  | Authorizer.Authorizer
  | Pkce.Pkce
  | Discovery.Discovery
  | Registration.Registration
  | TokenExchange.TokenExchange

/**
 * Builds the orchestrator. Uses `TokenStorage`, `Authorizer` and `Pkce` from the context, plus
 * the given Discovery / Registration / TokenExchange services.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: OAuthOptions
): Effect.Effect<OAuth, never, Dependencies | Scope.Scope> =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    const authorizer = yield* Authorizer.Authorizer
    const pkce = yield* Pkce.Pkce
    const discovery = yield* Discovery.Discovery
    const registration = yield* Registration.Registration
    const exchange = yield* TokenExchange.TokenExchange
    const httpClient = yield* HttpClient.HttpClient
    const layerScope = yield* Effect.scope
    const dpop = yield* Effect.serviceOption(Dpop.Dpop)
    const lock = Option.getOrElse(yield* Effect.serviceOption(TokenLock.TokenLock), () => TokenLock.none)

    const mcpUrl = options.mcpUrl
    const key = TokenStorage.serverKey(mcpUrl)
    const configuredScopes = normalizeScopes(options.scopes)
    const marginMillis = Duration.toMillis(options.refreshMargin ?? Duration.seconds(60))
    const maxAuthorizationAttempts = options.maxAuthorizationAttempts ?? 3
    const grant = options.grant ?? "authorization_code"
    const retrySchedule = options.refreshRetry === false
      ? undefined
      : RetryPolicy.transientRetry<OAuthError>(options.refreshRetry ?? {})

    /** In-memory view of the stored token; `undefined` until first loaded from storage. */
    const current = yield* Ref.make<Option.Option<StoredToken> | undefined>(undefined)
    /** The single-flight slot: the token operation in progress, if any. */
    const inflight = yield* Ref.make<Option.Option<Deferred.Deferred<StoredToken, OAuthError>>>(Option.none())
    /** The last challenge seen, so a later refresh-less re-sign-in keeps its scope and PRM URL. */
    const lastChallenge = yield* Ref.make<Option.Option<BearerChallenge>>(Option.none())

    const loadCurrent: Effect.Effect<Option.Option<StoredToken>, StorageError> = Effect.flatMap(
      Ref.get(current),
      (cached) =>
        cached !== undefined
          ? Effect.succeed(cached)
          : Effect.tap(storage.getTokens(key), (stored) => Ref.set(current, stored))
    )

    const save = (token: StoredToken) =>
      Effect.zipRight(storage.setTokens(key, token), Ref.set(current, Option.some(token)))

    const clearTokens = Effect.zipRight(storage.clearTokens(key), Ref.set(current, Option.none<StoredToken>()))

    /**
     * Runs `work` once for every concurrent caller: the first caller installs a Deferred in the
     * Ref and forks the work into the layer's scope (so interrupting one caller never strands the
     * others); everyone awaits the same Deferred. Callers with a valid token never get here.
     * The work runs inside the cross-process `TokenLock` when one is provided.
     */
    const singleFlight = (work: Effect.Effect<StoredToken, OAuthError>): Effect.Effect<StoredToken, OAuthError> =>
      Effect.gen(function*() {
        const mine = yield* Deferred.make<StoredToken, OAuthError>()
        type Slot = Option.Option<Deferred.Deferred<StoredToken, OAuthError>>
        const existing = yield* Ref.modify(inflight, (slot): readonly [Slot, Slot] =>
          Option.isSome(slot) ? [slot, slot] : [Option.none(), Option.some(mine)])
        if (Option.isSome(existing)) return yield* Deferred.await(existing.value)
        const release = (exit: Exit.Exit<StoredToken, OAuthError>) =>
          Effect.zipRight(Ref.set(inflight, Option.none()), Deferred.done(mine, exit))
        yield* lock.withLock(key, work).pipe(
          Effect.exit,
          Effect.flatMap(release),
          // The layer is closing: waiters are interrupted rather than left waiting.
          Effect.onInterrupt((fibers) => release(Exit.interrupt(FiberId.combineAll(fibers)))),
          Effect.forkIn(layerScope)
        )
        return yield* Deferred.await(mine)
      })

    const discoverWith = (challenge: Option.Option<BearerChallenge>, refresh: boolean) =>
      discovery.discover(mcpUrl, {
        resourceMetadataUrl: Option.getOrUndefined(challenge)?.resourceMetadata,
        refresh
      })

    /**
     * The stored client of this server if it belongs to `issuer` and its secret has not expired.
     * A configured pre-registered client always wins over a stored one. A client of another
     * issuer is discarded with its tokens (SEP-2352: credentials are bound to their issuer).
     */
    const storedClient = (issuer: string) =>
      Effect.gen(function*() {
        if (registration.isStatic) return Option.none<ClientInformation>()
        const stored = yield* storage.getClient(key)
        if (Option.isNone(stored)) return stored
        const c = stored.value
        if (c.issuer !== issuer) {
          yield* Effect.logInfo(`Authorization server changed (${c.issuer} → ${issuer}); registering again`)
          yield* storage.clear(key)
          yield* Ref.set(current, Option.none())
          return Option.none<ClientInformation>()
        }
        const now = yield* Clock.currentTimeMillis
        return c.clientSecretExpiresAt !== undefined && c.clientSecretExpiresAt <= now
          ? Option.none<ClientInformation>()
          : stored
      })

    /** The stored client when usable with this redirect URI, or a newly obtained (and stored) one. */
    const clientFor = (
      found: Discovery.DiscoveryResult,
      redirectUri: string,
      scopes: ReadonlyArray<string>,
      grantTypes?: ReadonlyArray<string>
    ) =>
      Effect.gen(function*() {
        const stored = yield* storedClient(found.issuer)
        // A dynamically registered client only knows the redirect URIs it registered.
        if (Option.isSome(stored) && (stored.value.source !== "dynamic" || stored.value.redirectUris.includes(redirectUri))) {
          return stored.value
        }
        const registered = yield* registration.register({
          discovery: found,
          redirectUri,
          scope: scopes.length > 0 ? scopes.join(" ") : undefined,
          grantTypes
        })
        if (registered.source !== "preregistered") yield* storage.setClient(key, registered)
        return registered
      })

    /** One authorization-code sign-in, start to finish. */
    const authorizationCodeFlow = (request: FlowRequest) =>
      Effect.scoped(
        Effect.gen(function*() {
          const found = yield* discoverWith(request.challenge, request.rediscover)
          const held = Option.match(yield* loadCurrent, { onNone: () => [], onSome: (t) => t.scopes })
          const challengeScopes = Option.getOrUndefined(request.challenge)?.scope
          const scopes = request.extraScopes.length > 0
            ? union(selectScopes(configuredScopes, challengeScopes, found), held, request.extraScopes)
            : selectScopes(configuredScopes, challengeScopes, found)
          const as = found.authorizationServer
          const endpoint = as.authorization_endpoint
          if (endpoint === undefined) {
            return yield* Effect.fail(
              new DiscoveryError({
                reason: "Malformed",
                url: as.issuer,
                detail: "authorization server metadata has no authorization_endpoint"
              })
            )
          }
          yield* OAuthHttp.checkSecureUrl(endpoint, { allowInsecure: options.allowInsecure })
          const session = yield* authorizer.session
          const client = yield* clientFor(found, session.redirectUri, scopes)
          const codes = yield* pkce.generate
          const state = yield* pkce.generateState
          const url = authorizationUrl({
            endpoint,
            clientId: client.clientId,
            redirectUri: session.redirectUri,
            codeChallenge: codes.challenge,
            state,
            scopes,
            resource: found.resource
          })
          const response = yield* session.authorize({
            url,
            state,
            redirectUri: session.redirectUri,
            issuer: found.issuer,
            issParameterSupported: as.authorization_response_iss_parameter_supported === true,
            clientId: client.clientId
          })
          const token = yield* exchange.authorizationCode({
            discovery: found,
            client,
            code: response.code,
            codeVerifier: codes.verifier,
            redirectUri: session.redirectUri,
            resource: found.resource,
            scopes
          })
          yield* save(token)
          return token
        })
      ).pipe(Effect.withSpan("OAuth.authorizationCodeFlow"))

    const clientCredentialsFlow = (request: FlowRequest, custom: CustomGrant | undefined) =>
      Effect.gen(function*() {
        const found = yield* discoverWith(request.challenge, request.rediscover)
        const challengeScopes = Option.getOrUndefined(request.challenge)?.scope
        const scopes = union(selectScopes(configuredScopes, challengeScopes, found), request.extraScopes)
        const client = yield* clientFor(found, "urn:ietf:wg:oauth:2.0:oob", scopes, ["client_credentials"])
        const token = custom === undefined
          ? yield* exchange.clientCredentials({ discovery: found, client, resource: found.resource, scopes })
          : yield* custom({ discovery: found, client, scopes, resource: found.resource, exchange })
        yield* save(token)
        return token
      }).pipe(Effect.withSpan("OAuth.clientCredentialsFlow"))

    /**
     * A full sign-in, retried once — through a `Schedule` — when the server no longer knows our
     * client (`ClientNotFound`): the stale client and its tokens are cleared first, so the retry
     * registers again. A static (pre-registered) client is never retried.
     */
    const fullFlow = (request: FlowRequest): Effect.Effect<StoredToken, OAuthError> =>
      (grant === "authorization_code"
        ? authorizationCodeFlow(request)
        : clientCredentialsFlow(request, grant === "client_credentials" ? undefined : grant)).pipe(
          Effect.tapError((error) =>
            error._tag === "ClientNotFound"
              ? Effect.logWarning(`Client ${error.clientId} is unknown to the server; clearing it`).pipe(
                Effect.zipRight(storage.clear(key)),
                Effect.zipRight(Ref.set(current, Option.none()))
              )
              : Effect.void
          ),
          Effect.retry({
            schedule: Schedule.recurs(1),
            while: (error) => error._tag === "ClientNotFound" && !registration.isStatic
          })
        )

    /** RFC 6749 §6. `invalid_grant` → tokens cleared and full sign-in; transient → the error, refresh token kept. */
    const refreshOrSignIn = (token: StoredToken, request: FlowRequest): Effect.Effect<StoredToken, OAuthError> =>
      Effect.gen(function*() {
        const refreshToken = token.refreshToken
        if (refreshToken === undefined) return yield* fullFlow(request)
        const found = yield* discoverWith(request.challenge, request.rediscover)
        const client = yield* storedClient(found.issuer)
        const info = Option.isSome(client)
          ? client.value
          : registration.isStatic
          ? yield* registration.register({ discovery: found, redirectUri: "urn:ietf:wg:oauth:2.0:oob" })
          : undefined
        if (info === undefined) {
          yield* clearTokens
          return yield* fullFlow(request)
        }
        const outcome = yield* exchange.refresh({
          discovery: found,
          client: info,
          refreshToken,
          resource: token.resource ?? found.resource,
          scopes: token.scopes
        }).pipe(
          // Transient failures (5xx, 429 with Retry-After, refused connections) are retried with
          // a bounded, jittered backoff. Not a timeout: the server may have rotated the refresh
          // token already, and presenting the old one again would revoke the whole grant.
          retrySchedule === undefined ? identity : Effect.retry({
            schedule: retrySchedule,
            while: (e) => !(e._tag === "OAuthRequestError" && e.reason === "Timeout")
          }),
          Effect.map((refreshed) => RefreshOutcome.Refreshed({ token: refreshed })),
          Effect.catchIf(
            (e): e is OAuthTokenError | ClientNotFound =>
              (e._tag === "OAuthTokenError" && !e.isTransient) || e._tag === "ClientNotFound",
            (e) =>
              Effect.gen(function*() {
                // Another process may have refreshed with this refresh token a moment ago: keep
                // its tokens rather than wiping them (compare-and-set on the stored tokens).
                if (!(yield* TokenStorage.clearTokensIfUnchanged(storage, key, token))) {
                  const newer = yield* storage.getTokens(key)
                  yield* Ref.set(current, newer)
                  if (Option.isSome(newer)) return RefreshOutcome.Sibling({ token: newer.value })
                }
                yield* Effect.logWarning(
                  `Refresh failed (${e._tag === "OAuthTokenError" ? e.error : "invalid_client"}); signing in again`
                )
                if (e._tag === "ClientNotFound") yield* storage.clear(key)
                yield* Ref.set(current, Option.none())
                return RefreshOutcome.SignIn()
              })
          )
        )
        switch (outcome._tag) {
          case "Sibling":
            return outcome.token
          case "SignIn":
            return yield* fullFlow(request)
          case "Refreshed": {
            // Never overwrite a newer token another process stored meanwhile.
            const stored = yield* TokenStorage.setTokensIfUnchanged(storage, key, Option.some(token), outcome.token)
            yield* Ref.set(current, Option.some(stored))
            return stored
          }
        }
      }).pipe(Effect.withSpan("OAuth.refreshOrSignIn"))

    /**
     * Valid for this request: not within the refresh margin of its expiry. The margin is at most
     * half the token's lifetime, so a short-lived token is not refreshed on every request.
     */
    const isUsable = (token: StoredToken, now: number) =>
      !token.isExpired(
        now,
        token.expiresAt === undefined
          ? 0
          : Math.min(marginMillis, Math.max(0, (token.expiresAt - token.obtainedAt) / 2))
      )

    const noChallenge: FlowRequest = { challenge: Option.none(), extraScopes: [], rediscover: false }

    /** Obtains a valid token under the lock, re-checking first: another fiber may have done it. */
    const obtain = (request: FlowRequest, force: boolean) =>
      singleFlight(
        Effect.gen(function*() {
          const stored = yield* storage.getTokens(key)
          yield* Ref.set(current, stored)
          const now = yield* Clock.currentTimeMillis
          if (!force && Option.isSome(stored) && isUsable(stored.value, now)) return stored.value
          if (Option.isSome(stored) && !force) return yield* refreshOrSignIn(stored.value, request)
          return yield* fullFlow(request)
        })
      )

    const tokenForRequest: Effect.Effect<Option.Option<StoredToken>, OAuthError> = Effect.gen(
      function*() {
        const token = yield* loadCurrent
        if (Option.isNone(token)) {
          // Machine-to-machine grants need no challenge: obtain the token up front.
          if (grant !== "authorization_code") return Option.some(yield* obtain(noChallenge, false))
          return Option.none()
        }
        const now = yield* Clock.currentTimeMillis
        if (isUsable(token.value, now)) return token
        if (token.value.refreshToken === undefined && grant === "authorization_code") {
          // Expired and not refreshable: go without; the 401 starts a sign-in with its challenge.
          return token.value.isExpired(now) ? Option.none() : token
        }
        return yield* obtain({ ...noChallenge, challenge: yield* Ref.get(lastChallenge) }, false).pipe(
          Effect.map(Option.some),
          // A transient refresh failure while the old token is still valid: keep using it.
          Effect.catchIf(
            (e) => !token.value.isExpired(now) && RetryPolicy.isTransient(e),
            (e) => Effect.as(Effect.logWarning(`Proactive refresh failed (${e.message}); using the current token`), token)
          )
        )
      }
    )

    const sameToken = (a: Option.Option<StoredToken>, used: Option.Option<string>) =>
      Option.isSome(a) && Option.isSome(used) && Redacted.value(a.value.accessToken) === used.value

    const handleUnauthorized = (used: Option.Option<string>, challenge: Option.Option<BearerChallenge>) =>
      Effect.gen(function*() {
        if (Option.isSome(challenge)) yield* Ref.set(lastChallenge, challenge)
        yield* singleFlight(
          Effect.gen(function*() {
            const stored = yield* storage.getTokens(key)
            yield* Ref.set(current, stored)
            const now = yield* Clock.currentTimeMillis
            // Someone else already replaced the token this request used: just retry with theirs.
            if (Option.isSome(stored) && !sameToken(stored, used) && isUsable(stored.value, now)) return stored.value
            const request: FlowRequest = { challenge, extraScopes: [], rediscover: Option.isSome(used) }
            if (Option.isSome(stored) && stored.value.refreshToken !== undefined && grant === "authorization_code") {
              return yield* refreshOrSignIn(stored.value, request)
            }
            if (Option.isSome(stored) && !(yield* TokenStorage.clearTokensIfUnchanged(storage, key, stored.value))) {
              // Replaced by another process meanwhile: use that one.
              const newer = yield* storage.getTokens(key)
              yield* Ref.set(current, newer)
              if (Option.isSome(newer)) return newer.value
            }
            yield* Ref.set(current, Option.none())
            return yield* fullFlow(request)
          })
        )
      }).pipe(Effect.asVoid, Effect.withSpan("OAuth.handleUnauthorized"))

    const handleInsufficientScope = (used: Option.Option<string>, challenge: BearerChallenge) =>
      Effect.gen(function*() {
        yield* Ref.set(lastChallenge, Option.some(challenge))
        const required = challenge.scope ?? []
        yield* singleFlight(
          Effect.gen(function*() {
            const stored = yield* storage.getTokens(key)
            yield* Ref.set(current, stored)
            const now = yield* Clock.currentTimeMillis
            if (
              Option.isSome(stored) && !sameToken(stored, used) && isUsable(stored.value, now) &&
              required.every((s) => stored.value.scopes.includes(s))
            ) return stored.value
            return yield* fullFlow({ challenge: Option.some(challenge), extraScopes: required, rediscover: false })
          })
        )
      }).pipe(Effect.asVoid, Effect.withSpan("OAuth.handleInsufficientScope"))

    const accessToken = Effect.gen(function*() {
      const token = yield* tokenForRequest
      if (Option.isSome(token)) return token.value.accessToken
      return (yield* obtain({ ...noChallenge, challenge: yield* Ref.get(lastChallenge) }, false)).accessToken
    }).pipe(Effect.withSpan("OAuth.accessToken"))

    return OAuth.of({
      mcpUrl,
      key,
      accessToken,
      login: obtain({ ...noChallenge, challenge: yield* Ref.get(lastChallenge) }, true).pipe(Effect.withSpan("OAuth.login")),
      logout: Revocation.signOut(key, { timeout: options.timeout, allowInsecure: options.allowInsecure }).pipe(
        Effect.provideService(TokenStorage.TokenStorage, storage),
        Effect.provideService(Discovery.Discovery, discovery),
        Effect.provideService(HttpClient.HttpClient, httpClient),
        Effect.zipLeft(Ref.set(current, Option.none())),
        Effect.zipLeft(discovery.invalidate(mcpUrl)),
        Effect.withSpan("OAuth.logout")
      ),
      tokens: storage.getTokens(key),
      tokenForRequest,
      dpop,
      handleUnauthorized,
      handleInsufficientScope,
      maxAuthorizationAttempts
    })
  })

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
