/**
 * What every OAuth flow of one MCP server shares: the options, the services, the storage key, the
 * in-memory view of the stored token, the last challenge seen and the single-flight slot. The
 * flows (`SignIn`, `Refresh`, `StepUp`, `ClientIdentity`) are top-level functions of a
 * {@link FlowContext}; `OAuth.make` builds one context and wires the flows.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as MutableRef from "effect/MutableRef"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as AuthorizationServerSelection from "./AuthorizationServerSelection.js"
import * as Authorizer from "./Authorizer.js"
import type * as DeviceAuthorization from "./DeviceAuthorization.js"
import * as Discovery from "./Discovery.js"
import * as Dpop from "./Dpop.js"
import { IssuerMismatch, type OAuthError, StorageError } from "./Errors.js"
import type { BearerChallenge } from "./internal/wwwAuthenticate.js"
import * as Pkce from "./Pkce.js"
import * as Registration from "./Registration.js"
import * as RetryPolicy from "./RetryPolicy.js"
import { type ClientInformation, StoredDiscovery, StoredToken, type TokenEndpointAuthMethod } from "./Schemas.js"
import * as SingleFlight from "./SingleFlight.js"
import * as TokenExchange from "./TokenExchange.js"
import * as TokenLock from "./TokenLock.js"
import * as TokenStorage from "./TokenStorage.js"
import { typed } from "./internal/typed.js"

/**
 * Everything a custom grant needs (see {@link OAuthOptions.grant}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.5
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
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.5
 * @since 0.1.0
 * @category models
 */
export type CustomGrant = (context: GrantContext) => Effect.Effect<StoredToken, OAuthError>

/**
 * Options of the `OAuth` orchestrator. Only `mcpUrl` is required.
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
  /**
   * The authorization server (its RFC 8414 `issuer`, compared exactly) this client trusts. When
   * set, discovery naming any other issuer fails with `IssuerMismatch` before a credential is
   * sent; a pre-registered client moves to a new issuer only when this names it (SEP-2352).
   */
  readonly issuer?: string | undefined
  /**
   * Which of the authorization servers the resource lists (RFC 9728 §2) to try, in which order;
   * the first whose metadata is reachable and valid is used. Default
   * `AuthorizationServerSelection.preferConfiguredThenRegistered`: the `issuer` option, then the
   * issuer a client is already registered with, then the listed order.
   */
  readonly selectAuthorizationServer?: AuthorizationServerSelection.AuthorizationServerSelector | undefined
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined
  readonly additionalClientMetadata?: Readonly<Record<string, unknown>> | undefined
  /** A fixed loopback callback port for the browser sign-in (RFC 8252 §7.3). */
  readonly callbackPort?: number | undefined
  /** Timeout of each HTTP call to an OAuth endpoint. Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Refresh this long before expiry (at most; a tenth of the lifetime of short-lived tokens). Default 60 s. */
  readonly refreshMargin?: Duration.DurationInput | undefined
  /** Re-authorizations allowed for one request (401 sign-in and 403 step-ups together). Default 3. */
  readonly maxAuthorizationAttempts?: number | undefined
  /** Overrides the RFC 9728 §3.3 resource check. */
  readonly validateResource?: ((serverUrl: string, resource: string) => boolean) | undefined
  /**
   * `"authorization_code"` (default, with a user), `"device_code"` (with a user whose browser is
   * elsewhere, RFC 8628), `"client_credentials"` (machine to machine), or a custom grant.
   */
  readonly grant?: "authorization_code" | "device_code" | "client_credentials" | CustomGrant | undefined
  /**
   * Shows the device sign-in's address and user code (RFC 8628 §3.3). Default: one line on
   * standard error (`DeviceAuthorization.showOnStderr`).
   */
  readonly onDeviceCode?: ((prompt: DeviceAuthorization.DeviceCodePrompt) => Effect.Effect<void>) | undefined
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
 * The services the orchestrator is built from (`OAuthLayer` provides them all, taking
 * `TokenStorage`, `Authorizer` and `Pkce` from below when given; the `HttpClient` is the inner,
 * unauthenticated one, used for revocation). `Dpop` and `TokenLock` are optional and used when
 * present.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
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
 * Why a flow runs: the challenge that started it (its `scope` and `resource_metadata`), scopes
 * to add to those held (step-up), and whether discovery must bypass its cache.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category models
 */
export interface FlowRequest {
  readonly challenge: Option.Option<BearerChallenge>
  readonly extraScopes: ReadonlyArray<string>
  readonly rediscover: boolean
}

/**
 * A flow request with no challenge, no extra scopes and cached discovery.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category constructors
 */
export const noChallenge: FlowRequest = { challenge: Option.none(), extraScopes: [], rediscover: false }

/**
 * The shared state and services of the flows of one MCP server.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category models
 */
export interface FlowContext {
  readonly options: OAuthOptions
  readonly mcpUrl: string
  /** The storage key of this server. */
  readonly key: string
  readonly configuredScopes: ReadonlyArray<string>
  readonly grant: "authorization_code" | "device_code" | "client_credentials" | CustomGrant
  /** Refresh this long before expiry (at most; see `Refresh.refreshMargin`). */
  readonly refreshMarginMillis: number
  readonly maxAuthorizationAttempts: number
  /** Backoff of transient refresh failures; `undefined` = no retry. */
  readonly refreshRetry: Schedule.Schedule<unknown, OAuthError> | undefined
  readonly storage: TokenStorage.TokenStorage
  readonly authorizer: Authorizer.Authorizer
  readonly pkce: Pkce.Pkce
  readonly discovery: Discovery.Discovery
  readonly registration: Registration.Registration
  readonly exchange: TokenExchange.TokenExchange
  /** The inner, unauthenticated client. */
  readonly httpClient: HttpClient.HttpClient
  readonly dpop: Option.Option<Dpop.Dpop>
  /**
   * In-memory view of the stored token; `undefined` until first loaded from storage. A
   * `MutableRef`, so that the per-request path reads it without an effect (see `OAuth.cachedToken`);
   * written through {@link setCurrent}.
   */
  readonly current: MutableRef.MutableRef<Option.Option<StoredToken> | undefined>
  /** The last challenge seen, so a later refresh-less re-sign-in keeps its scope and PRM URL. */
  readonly lastChallenge: Ref.Ref<Option.Option<BearerChallenge>>
  /** Refresh and sign-in, once for all concurrent callers and inside the `TokenLock`. */
  readonly singleFlight: SingleFlight.SingleFlight<StoredToken, OAuthError>
  /** The discovery this process uses (fetched here, or read from the token record). */
  readonly known: Ref.Ref<Option.Option<KnownDiscovery>>
  /** Whether the last `discover` reused a known result instead of fetching. */
  readonly reusedDiscovery: Ref.Ref<boolean>
  /**
   * The access token obtained with reused discovery: when a 401 refuses it, the metadata is
   * suspect (the resource may have moved to another authorization server) and is fetched again.
   */
  readonly suspect: Ref.Ref<Option.Option<string>>
  /**
   * A token set obtained (a refresh) that storage refused to store, with the record it replaces:
   * it is the one in use — its refresh token is the one the server now honours, the stored one may
   * be rotated away — and {@link reload} writes it before reading anything else.
   */
  readonly unsaved: Ref.Ref<Option.Option<UnsavedTokens>>
}

/**
 * A token set kept in memory because storage refused it, and the stored record it replaces.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category models
 */
export interface UnsavedTokens {
  readonly token: StoredToken
  readonly replaces: Option.Option<StoredToken>
  /** Why storage refused it (the first refusal). */
  readonly error?: StorageError | undefined
}

/**
 * A discovery result with when it was fetched and until when it may be stored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-4.2
 * @since 0.1.0
 * @category models
 */
export interface KnownDiscovery {
  readonly found: Discovery.DiscoveryResult
  readonly fetchedAt: number
  readonly freshUntil: number
}

/**
 * Whether the flows obtain tokens with a user (authorization code or device code): such tokens
 * are refreshed with their refresh token, and a sign-in waits for the server's challenge.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.4
 * @since 0.1.0
 * @category models
 */
export const isUserGrant = (ctx: FlowContext): boolean =>
  ctx.grant === "authorization_code" || ctx.grant === "device_code"

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

/**
 * The union of scope lists, first occurrence order kept.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.3
 * @since 0.1.0
 * @category scopes
 */
export const union = (...lists: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => [
  ...new Set(lists.flat())
]

/**
 * Builds the flow context from the options and the services in the environment.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: OAuthOptions): Effect.Effect<FlowContext, never, Dependencies | Scope.Scope> =>
  Effect.gen(function*() {
    const key = TokenStorage.serverKey(options.mcpUrl)
    const lock = yield* TokenLock.resolve
    return {
      options,
      mcpUrl: options.mcpUrl,
      key,
      configuredScopes: normalizeScopes(options.scopes),
      grant: options.grant ?? "authorization_code",
      refreshMarginMillis: Duration.toMillis(options.refreshMargin ?? Duration.seconds(60)),
      maxAuthorizationAttempts: options.maxAuthorizationAttempts ?? 3,
      refreshRetry: options.refreshRetry === false
        ? undefined
        : RetryPolicy.transientRetry<OAuthError>(options.refreshRetry ?? {}),
      storage: yield* TokenStorage.TokenStorage,
      authorizer: yield* Authorizer.Authorizer,
      pkce: yield* Pkce.Pkce,
      discovery: yield* Discovery.Discovery,
      registration: yield* Registration.Registration,
      exchange: yield* TokenExchange.TokenExchange,
      httpClient: yield* HttpClient.HttpClient,
      dpop: yield* Effect.serviceOption(Dpop.Dpop),
      current: MutableRef.make<Option.Option<StoredToken> | undefined>(undefined),
      lastChallenge: yield* Ref.make<Option.Option<BearerChallenge>>(Option.none()),
      singleFlight: yield* SingleFlight.make<StoredToken, OAuthError>({ key, lock }),
      known: yield* Ref.make(Option.none<KnownDiscovery>()),
      reusedDiscovery: yield* Ref.make(false),
      suspect: yield* Ref.make(Option.none<string>()),
      unsaved: yield* Ref.make(Option.none<UnsavedTokens>())
    } satisfies FlowContext
  })

/**
 * The stored token, read from storage the first time and from memory afterwards.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category tokens
 */
export const loadCurrent = (ctx: FlowContext): Effect.Effect<Option.Option<StoredToken>, StorageError> =>
  Effect.suspend(() => {
    const cached = MutableRef.get(ctx.current)
    return cached !== undefined
      ? Effect.succeed(cached)
      : Effect.tap(ctx.storage.getTokens(ctx.key), (stored) => setCurrent(ctx, stored))
  })

/**
 * Sets the in-memory view of the stored token (`undefined`: read storage again on next use).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category tokens
 */
export const setCurrent = (ctx: FlowContext, token: Option.Option<StoredToken> | undefined): Effect.Effect<void> =>
  Effect.sync(() => {
    MutableRef.set(ctx.current, token)
  })

/**
 * Re-reads the stored token (another process may have changed it) and caches it. When a token
 * set is {@link FlowContext.unsaved} (storage refused it), its write is retried first — only over
 * the record it replaces: a newer record another process stored meanwhile wins — and while
 * storage still refuses it, that in-memory set is the answer, never the stale stored record
 * whose refresh token the server has rotated away.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category tokens
 */
export const reload = (ctx: FlowContext): Effect.Effect<Option.Option<StoredToken>, StorageError> =>
  Effect.flatMap(Ref.get(ctx.unsaved), (unsaved) =>
    Effect.flatMap(ctx.storage.getTokens(ctx.key), (stored) => {
      // Only over the record it replaces: a sign-in, a logout or another process's newer record wins.
      if (Option.isNone(unsaved) || !sameRecord(stored, unsaved.value.replaces)) {
        return Ref.set(ctx.unsaved, Option.none()).pipe(Effect.zipRight(setCurrent(ctx, stored)), Effect.as(stored))
      }
      const pending = unsaved.value
      return TokenStorage.setTokensIfUnchanged(ctx.storage, ctx.key, pending.replaces, pending.token).pipe(
        Effect.tap(() =>
          Effect.zipRight(Ref.set(ctx.unsaved, Option.none()), Effect.logInfo("The token set kept in memory is now stored"))
        ),
        Effect.catchIf((e) => e.reason !== "Conflict", (e) =>
          Effect.as(
            Effect.logWarning(`The token set kept in memory still cannot be stored (${e.message}); using it`),
            pending.token
          )),
        Effect.map(Option.some),
        Effect.tap((token) => setCurrent(ctx, token))
      )
    }))

/** Whether two optional records are the same token set (the same access token, or both absent). */
const sameRecord = (a: Option.Option<StoredToken>, b: Option.Option<StoredToken>): boolean =>
  Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) &&
    Redacted.value(a.value.accessToken) === Redacted.value(b.value.accessToken)

/**
 * Stores a refreshed token set over `replaces`, or — when storage refuses it — keeps it in memory
 * as {@link FlowContext.unsaved} (the server may have rotated the refresh token: dropping the new
 * set because the disk is full or read-only would lose the grant) and says so with a warning.
 * Returns what is now current (a newer record another process stored first wins), and why it
 * could not be stored, if so.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category tokens
 */
export const storeOrKeep = (
  ctx: FlowContext,
  replaces: Option.Option<StoredToken>,
  token: StoredToken
): Effect.Effect<{ readonly token: StoredToken; readonly storageError: string | undefined }, StorageError> =>
  Effect.flatMap(Ref.get(ctx.unsaved), (unsaved) => {
    // Refreshed from a set storage still refused: the stored record is still the one that set replaced.
    const over = Option.isSome(unsaved) && sameRecord(replaces, Option.some(unsaved.value.token))
      ? unsaved.value.replaces
      : replaces
    return storeOver(ctx, over, token)
  })

const storeOver = (
  ctx: FlowContext,
  replaces: Option.Option<StoredToken>,
  token: StoredToken
): Effect.Effect<{ readonly token: StoredToken; readonly storageError: string | undefined }, StorageError> =>
  TokenStorage.setTokensIfUnchanged(ctx.storage, ctx.key, replaces, token).pipe(
    Effect.map((stored) => ({ token: stored, storageError: undefined })),
    Effect.tap(() => Ref.set(ctx.unsaved, Option.none())),
    Effect.catchIf((e) => e.reason !== "Conflict", (e) =>
      Effect.as(keepUnsaved(ctx, { token, replaces, error: e }, "refreshed"), { token, storageError: e.message })),
    Effect.tap(({ token }) => setCurrent(ctx, Option.some(token)))
  )

/**
 * A token set storage refused (other than a `Conflict`: the lock was lost), kept in memory as
 * {@link FlowContext.unsaved} and stored at the next occasion, with a warning saying so.
 */
const keepUnsaved = (ctx: FlowContext, unsaved: UnsavedTokens & { readonly error: StorageError }, what: string) =>
  Ref.set(ctx.unsaved, Option.some(unsaved)).pipe(
    Effect.zipRight(
      Effect.logWarning(
        `The ${what} tokens could not be stored (${unsaved.error.message}); keeping them in memory and storing them at the next occasion`
      )
    )
  )

/**
 * The token with the discovery it was obtained with attached (issuer-bound: only when that
 * discovery names the token's issuer, and not when the metadata said `no-store`), so that a new
 * process can refresh without discovering again. Also remembers a token obtained with reused
 * discovery (see {@link FlowContext.suspect}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category discovery
 */
export const withDiscovery = (ctx: FlowContext, token: StoredToken): Effect.Effect<StoredToken> =>
  Effect.gen(function*() {
    const reused = yield* Ref.get(ctx.reusedDiscovery)
    yield* Ref.set(ctx.suspect, reused ? Option.some(Redacted.value(token.accessToken)) : Option.none())
    const known = yield* Ref.get(ctx.known)
    if (Option.isNone(known) || known.value.found.issuer !== token.issuer) {
      return token.discovery === undefined ? token : new StoredToken({ ...token, discovery: undefined }, typed)
    }
    if (known.value.freshUntil <= known.value.fetchedAt) return token
    const { found, fetchedAt, freshUntil } = known.value
    return new StoredToken({
      ...token,
      discovery: new StoredDiscovery({
        protectedResource: Option.getOrUndefined(found.protectedResource),
        resourceMetadataUrl: found.resourceMetadataUrl,
        resource: found.resource,
        authorizationServer: found.authorizationServer,
        legacy: found.legacy,
        fetchedAt,
        freshUntil
      }, typed)
    }, typed)
  })

/**
 * Stores a new token set (with its discovery, see {@link withDiscovery}) and caches it. When
 * storage refuses it (other than a `Conflict`), the set is kept in memory as
 * {@link FlowContext.unsaved} with a warning, as a refreshed one is (see {@link storeOrKeep}):
 * the sign-in that obtained it still succeeds, and the refusal is returned; {@link requireStored}
 * tells callers who need the record.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category tokens
 */
export const save = (ctx: FlowContext, token: StoredToken): Effect.Effect<Option.Option<StorageError>, StorageError> =>
  Effect.flatMap(withDiscovery(ctx, token), (withIt) => {
    // What storage held when this set was obtained: a later write of it goes only over that.
    const replaces = Option.flatten(Option.fromNullable(MutableRef.get(ctx.current)))
    return ctx.storage.setTokens(ctx.key, withIt).pipe(
      Effect.zipRight(Ref.set(ctx.unsaved, Option.none())),
      Effect.as(Option.none<StorageError>()),
      // The user has just signed in: a full or read-only disk must not throw the grant away (and
      // send them to the browser again on the next request). A Conflict (the lock was lost) fails.
      Effect.catchIf((e) => e.reason !== "Conflict", (e) =>
        Effect.as(keepUnsaved(ctx, { token: withIt, replaces, error: e }, "new"), Option.some(e))),
      Effect.tap(() => setCurrent(ctx, Option.some(withIt)))
    )
  })

/**
 * Fails with the storage error when `token` is the set storage refused (kept in memory only):
 * for callers whose purpose is the stored record (`OAuth.login`, the CLI's `login`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category tokens
 */
export const requireStored = (ctx: FlowContext, token: StoredToken): Effect.Effect<StoredToken, StorageError> =>
  Effect.flatMap(Ref.get(ctx.unsaved), (unsaved) =>
    Option.isSome(unsaved) && Redacted.value(unsaved.value.token.accessToken) === Redacted.value(token.accessToken)
      ? Effect.fail(
        unsaved.value.error ??
          new StorageError({ reason: "Io", key: ctx.key, detail: "the new tokens could not be stored" })
      )
      : Effect.succeed(token))

/**
 * Forgets the stored tokens (the client information stays).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category tokens
 */
export const clearTokens = (ctx: FlowContext): Effect.Effect<void, StorageError> =>
  ctx.storage.clearTokens(ctx.key).pipe(
    Effect.zipRight(setCurrent(ctx, Option.none<StoredToken>())),
    Effect.zipRight(Ref.set(ctx.unsaved, Option.none()))
  )

/**
 * Forgets everything stored for this server: tokens and client information.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category tokens
 */
export const forget = (ctx: FlowContext): Effect.Effect<void, StorageError> =>
  ctx.storage.clear(ctx.key).pipe(
    Effect.zipRight(setCurrent(ctx, Option.none<StoredToken>())),
    Effect.zipRight(Ref.set(ctx.unsaved, Option.none()))
  )

/** Stored discovery is reused this long when the metadata said nothing about caching. */
const DEFAULT_FRESHNESS_MILLIS = 24 * 60 * 60 * 1000
/** And never longer than this, whatever `max-age` said. */
const MAX_FRESHNESS_MILLIS = 7 * 24 * 60 * 60 * 1000

/**
 * The discovery read from a token record, when it may be used: it names the token's issuer,
 * is fresh at `now`, and was read from `resourceMetadataUrl` when one is asked for.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category discovery
 */
export const storedDiscovery = (
  ctx: FlowContext,
  token: StoredToken,
  now: number
): Option.Option<KnownDiscovery> => {
  const stored = token.discovery
  if (stored === undefined || stored.freshUntil <= now) return Option.none()
  if (stored.authorizationServer.issuer !== token.issuer) return Option.none()
  return Option.some({
    found: {
      mcpUrl: ctx.mcpUrl,
      protectedResource: Option.fromNullable(stored.protectedResource),
      resource: stored.resource,
      authorizationServer: stored.authorizationServer,
      issuer: stored.authorizationServer.issuer,
      legacy: stored.legacy,
      resourceMetadataUrl: stored.resourceMetadataUrl
    },
    fetchedAt: stored.fetchedAt,
    freshUntil: stored.freshUntil
  })
}

/** Whether `known` answers a challenge naming `resourceMetadataUrl` (none named: any does). */
const answers = (known: KnownDiscovery, resourceMetadataUrl: string | undefined): boolean =>
  resourceMetadataUrl === undefined || known.found.resourceMetadataUrl === resourceMetadataUrl

/**
 * Discovers the server's metadata (RFC 9728, then RFC 8414), following the challenge's
 * `resource_metadata` when there is one. Reuses what this process already knows, else the
 * fresh discovery stored with the token (issuer-bound), else fetches; `refresh`, or a challenge
 * naming another `resource_metadata` than the known one, fetches again. With the `issuer`
 * option, any other issuer is an `IssuerMismatch` (nothing is sent to it).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category discovery
 */
export const discover = (
  ctx: FlowContext,
  challenge: Option.Option<BearerChallenge>,
  refresh: boolean
): Effect.Effect<Discovery.DiscoveryResult, OAuthError> =>
  Effect.gen(function*() {
    const resourceMetadataUrl = Option.getOrUndefined(challenge)?.resourceMetadata
    const now = yield* Clock.currentTimeMillis
    let reuse: Option.Option<KnownDiscovery> = Option.none()
    if (!refresh) {
      reuse = Option.filter(yield* Ref.get(ctx.known), (k) => answers(k, resourceMetadataUrl))
      if (Option.isNone(reuse)) {
        const stored = yield* loadCurrent(ctx)
        reuse = Option.filter(
          Option.flatMap(stored, (token) => storedDiscovery(ctx, token, now)),
          (k) => answers(k, resourceMetadataUrl)
        )
      }
    }
    let found: Discovery.DiscoveryResult
    if (Option.isSome(reuse)) {
      found = reuse.value.found
      yield* Ref.set(ctx.known, reuse)
      yield* Ref.set(ctx.reusedDiscovery, true)
    } else {
      const known = yield* Ref.get(ctx.known)
      const client = yield* ctx.storage.getClient(ctx.key)
      found = yield* ctx.discovery.discover(ctx.mcpUrl, {
        resourceMetadataUrl,
        // The service's own cache may hold what another resource_metadata pointed at.
        refresh: refresh || Option.isSome(known),
        orderAuthorizationServers: (listed) =>
          AuthorizationServerSelection.order(
            ctx.options.selectAuthorizationServer ?? AuthorizationServerSelection.preferConfiguredThenRegistered,
            {
              listed,
              registeredIssuer: Option.getOrUndefined(client)?.issuer,
              configuredIssuer: ctx.options.issuer
            }
          )
      })
      const fetchedAt = yield* Clock.currentTimeMillis
      const lifetime = found.maxAgeSeconds === undefined
        ? DEFAULT_FRESHNESS_MILLIS
        : Math.min(found.maxAgeSeconds * 1000, MAX_FRESHNESS_MILLIS)
      yield* Ref.set(ctx.known, Option.some({ found, fetchedAt, freshUntil: fetchedAt + lifetime }))
      yield* Ref.set(ctx.reusedDiscovery, false)
    }
    if (ctx.options.issuer !== undefined && found.issuer !== ctx.options.issuer) {
      return yield* Effect.fail(
        new IssuerMismatch({ reason: "NotConfigured", expected: ctx.options.issuer, actual: found.issuer })
      )
    }
    return found
  })

/**
 * Forgets the discovery this process knows (sign-out, or the metadata proved wrong).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category discovery
 */
export const forgetDiscovery = (ctx: FlowContext): Effect.Effect<void> =>
  Effect.zipRight(Ref.set(ctx.known, Option.none()), ctx.discovery.invalidate(ctx.mcpUrl))

/**
 * Whether `stored` is the token a request used (`used` is its access token value).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category tokens
 */
export const sameToken = (stored: Option.Option<StoredToken>, used: Option.Option<string>): boolean =>
  Option.isSome(stored) && Option.isSome(used) && Redacted.value(stored.value.accessToken) === used.value
