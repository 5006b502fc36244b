/**
 * The `HttpClient` middleware that makes every request to an MCP server authenticated, and
 * `OAuthLayer`, which installs it (with the `OAuth` service) in place of the `HttpClient` found
 * below it.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { dual } from "effect/Function"
import * as Authorizer from "./Authorizer.js"
import * as Discovery from "./Discovery.js"
import * as Dpop from "./Dpop.js"
import { InsufficientScope, type OAuthError, OAuthRequestError, type StorageError, Unauthorized } from "./Errors.js"
import { sameOriginAs } from "./internal/sameOrigin.js"
import { isTraced } from "./internal/tracing.js"
import { tokenWait } from "./internal/tokenWait.js"
import { authChallenge } from "./internal/wwwAuthenticate.js"
import * as OAuth from "./OAuth.js"
import * as Pkce from "./Pkce.js"
import * as Registration from "./Registration.js"
import * as TokenExchange from "./TokenExchange.js"
import * as TokenLock from "./TokenLock.js"
import type { StoredToken } from "./Schemas.js"
import * as TokenStorage from "./TokenStorage.js"

const OAUTH_ERROR_TAGS: ReadonlySet<string> = new Set([
  "ClientNotFound",
  "OAuthTokenError",
  "OAuthRegistrationError",
  "DiscoveryError",
  "OAuthRequestError",
  "AuthorizationError",
  "ResourceMismatch",
  "IssuerMismatch",
  "InsufficientScope",
  "Unauthorized",
  "StorageError"
])

/**
 * Whether a value is one of this library's typed errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isOAuthError = (u: unknown): u is OAuthError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && OAUTH_ERROR_TAGS.has(u._tag) &&
  u instanceof Error

/**
 * The typed OAuth error behind an `HttpClientError` raised by the client `OAuthLayer` provides
 * (which must fail with `HttpClientError` to fit the `HttpClient` tag; the OAuth error is its
 * `cause`).
 *
 * @since 0.1.0
 * @category error handling
 */
export const oauthErrorOf = (error: HttpClientError.HttpClientError): Option.Option<OAuthError> =>
  isOAuthError(error.cause) ? Option.some(error.cause) : Option.none()

/** The access token a request presented (`Bearer` or `DPoP` scheme). */
const tokenOf = (request: HttpClientRequest.HttpClientRequest): Option.Option<string> => {
  const header = request.headers["authorization"]
  const match = header === undefined ? null : /^(?:bearer|dpop) +(.+)$/i.exec(header)
  return match === null ? Option.none() : Option.some(match[1]!.trim())
}

/** The same request without `Authorization` and `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1). */
const withoutCredentials = (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest => {
  const stripped = HttpClientRequest.get(request.url).pipe(
    HttpClientRequest.setMethod(request.method),
    HttpClientRequest.setHeaders(Headers.remove(request.headers, ["authorization", "dpop"])),
    HttpClientRequest.setUrlParams(request.urlParams),
    HttpClientRequest.setBody(request.body)
  )
  return Option.match(request.hash, { onNone: () => stripped, onSome: (hash) => HttpClientRequest.setHash(stripped, hash) })
}

/** Reads and discards a response body so its connection can be reused. */
const drain = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> =>
  Effect.ignore(response.arrayBuffer)

/**
 * Whether the requests of the current fiber are made while closing (the Streamable HTTP session
 * `DELETE` on close, for one): {@link authenticate} then puts the stored token on them if there
 * is one and never refreshes, signs in or opens a browser; a 401 or 403 answer is passed on as it
 * is. Set it with {@link whileClosing}.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 * @since 0.1.0
 * @category closing
 */
export const currentlyClosing: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(false)

/**
 * Runs `effect` with {@link currentlyClosing} set: its requests never authenticate anew (no
 * refresh, no sign-in, no browser), they carry the stored token or none.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 * @since 0.1.0
 * @category closing
 */
export const whileClosing = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, currentlyClosing, true)

/** What one installed middleware knows: its OAuth client, the MCP origin, the DPoP key and the tokens it attached. */
interface Middleware {
  readonly oauth: OAuth.OAuth
  readonly origin: string
  /** Whether a URL is on the MCP server's origin (no URL parsing in the common case). */
  readonly applies: (url: string) => boolean
  readonly dpop: Dpop.Dpop | undefined
  readonly attached: AttachedCredentials
  /** Whether the layer that installed the middleware is closing (see {@link OAuthLayer}). */
  readonly layerClosing: () => boolean
  /** The `Authorization` value of a Bearer token: built once per token, not per request. */
  readonly bearer: (token: StoredToken) => string
}

/** `f` remembering its last argument (by identity) and result. */
const lastOf = <A, B>(f: (a: A) => B): (a: A) => B => {
  let memo: { readonly a: A; readonly b: B } | undefined
  return (a) => {
    if (memo === undefined || memo.a !== a) memo = { a, b: f(a) }
    return memo.b
  }
}

const neverClosing = () => false

const makeMiddleware = (oauth: OAuth.OAuth, layerClosing: () => boolean): Middleware => ({
  oauth,
  origin: new URL(oauth.mcpUrl).origin,
  applies: sameOriginAs(oauth.mcpUrl),
  dpop: Option.getOrUndefined(oauth.dpop),
  attached: makeAttachedCredentials(),
  layerClosing,
  bearer: lastOf((token: StoredToken) => `Bearer ${Redacted.value(token.accessToken)}`)
})

/** The `Authorization` values a middleware attached (the latest few), to recognise them when copied. */
interface AttachedCredentials {
  readonly remember: (request: HttpClientRequest.HttpClientRequest) => HttpClientRequest.HttpClientRequest
  readonly carries: (request: HttpClientRequest.HttpClientRequest) => boolean
}

const makeAttachedCredentials = (): AttachedCredentials => {
  const attached: Array<string> = []
  return {
    remember: (request) => {
      const value = request.headers["authorization"]
      if (value !== undefined && attached[attached.length - 1] !== value && !attached.includes(value)) {
        attached.push(value)
        if (attached.length > 16) attached.shift()
      }
      return request
    },
    carries: (request) => {
      const value = request.headers["authorization"]
      return value !== undefined && attached.includes(value)
    }
  }
}

/** RFC 9449 §7.1: `DPoP` with a fresh proof bound to the token (and the server's last nonce). */
const presentDpop = (
  dpop: Dpop.Dpop,
  request: HttpClientRequest.HttpClientRequest,
  token: StoredToken
): Effect.Effect<HttpClientRequest.HttpClientRequest> =>
  Effect.gen(function*() {
    const proof = yield* dpop.proof({
      method: request.method,
      url: request.url,
      // Signed with the key the token is bound to, stored with it (perhaps by another process).
      key: token.dpopKey,
      accessToken: token.accessToken,
      nonce: Option.getOrUndefined(yield* dpop.nonce(request.url))
    })
    return HttpClientRequest.setHeaders(request, {
      authorization: `DPoP ${Redacted.value(token.accessToken)}`,
      dpop: proof
    })
  })

/** Whether a token is presented with a DPoP proof (RFC 9449 §7.1) rather than as a Bearer token. */
const usesDpop = (m: Middleware, token: StoredToken): boolean => token.tokenType === "DPoP" && m.dpop !== undefined

/** RFC 6750 §2.1: the token as a Bearer `Authorization` header, remembered as ours. */
const presentBearer = (
  m: Middleware,
  request: HttpClientRequest.HttpClientRequest,
  token: StoredToken
): HttpClientRequest.HttpClientRequest =>
  m.attached.remember(HttpClientRequest.setHeader(request, "authorization", m.bearer(token)))

/** Whether the requests of `fiber` are made while closing: its own flag, or the layer's. */
const isClosing = (m: Middleware, fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  m.layerClosing() || fiber.getFiberRef(currentlyClosing)

/**
 * The slow path of {@link authorize}: the token from `tokenForRequest` (which may load, refresh
 * or find none), with a DPoP proof when it is DPoP-bound. While closing: the stored token as it
 * is, no network, no lock (an expired one only earns a 401).
 */
const attachToken = (
  m: Middleware,
  request: HttpClientRequest.HttpClientRequest,
  closing: boolean
): Effect.Effect<HttpClientRequest.HttpClientRequest, OAuthError> =>
  Effect.flatMap(
    closing ? Effect.map(Effect.option(m.oauth.tokens), Option.flatten) : m.oauth.tokenForRequest,
    (t) => {
      if (Option.isNone(t)) return Effect.succeed(request)
      const dpop = m.dpop
      return t.value.tokenType === "DPoP" && dpop !== undefined
        ? Effect.map(presentDpop(dpop, request, t.value), m.attached.remember)
        : Effect.succeed(presentBearer(m, request, t.value))
    }
  )

/**
 * Puts the current token on a request for the MCP server's origin (other origins never see it).
 * The common case — a usable Bearer token in memory — is read in place (`OAuth.cachedToken` and
 * the fiber's clock, no effect); anything else goes through {@link attachToken}.
 */
const authorize = <X>(
  m: Middleware,
  lift: Lift<X>
) =>
(request: HttpClientRequest.HttpClientRequest): Effect.Effect<HttpClientRequest.HttpClientRequest, X> =>
  Effect.withFiberRuntime((fiber) => {
    if (!m.applies(request.url)) return Effect.succeed(request)
    const closing = isClosing(m, fiber)
    if (!closing) {
      const token = m.oauth.cachedToken(Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis())
      if (Option.isSome(token) && !usesDpop(m, token.value)) return Effect.succeed(presentBearer(m, request, token.value))
    }
    return lift(attachToken(m, request, closing), request)
  })

/** Remembers a resource server's `DPoP-Nonce` (RFC 9449 §9) for the next proof. */
const rememberNonce = (
  m: Middleware,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<HttpClientResponse.HttpClientResponse> => {
  // DPoP first: reading `response.headers` builds the headers object, work for DPoP clients only.
  if (m.dpop === undefined) return Effect.succeed(response)
  const nonce = response.headers["dpop-nonce"]
  return nonce === undefined ? Effect.succeed(response) : Effect.as(m.dpop.setNonce(response.request.url, nonce), response)
}

/**
 * A client below that follows redirects by itself (e.g. `HttpClient.followRedirects` over undici)
 * re-sends the request before anything above it sees the 3xx; when that took our token to another
 * origin, the answer is refused (never passed on as the MCP server's) and the token set is
 * treated as leaked: revoked at its issuer and forgotten (`OAuth.revokeExposed`), so that the next
 * request signs in again.
 */
const refuseForeignAnswer = (
  m: Middleware,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<HttpClientResponse.HttpClientResponse, OAuthRequestError | StorageError> =>
  !m.applies(response.request.url) && m.attached.carries(response.request)
    ? drain(response).pipe(
      Effect.zipRight(m.oauth.revokeExposed(
        new OAuthRequestError({
          reason: "Redirect",
          url: response.request.url,
          status: response.status,
          detail: `the HTTP client below followed a redirect from ${m.origin} to ${
            URL.canParse(response.request.url) ? new URL(response.request.url).origin : "another URL"
          } and sent the access token there; install HttpClient.followRedirects above OAuthLayer, never below it`,
          exposed: ["access_token"]
        }),
        tokenOf(response.request)
      )),
      Effect.flatMap(Effect.fail)
    )
    : Effect.succeed(response)

/** Where a request stands in the challenge loop of {@link answer}. */
interface ChallengeState {
  readonly attempts: number
  readonly retriedUnauthorized: boolean
  readonly retriedNonce: boolean
}

/** Re-runs the request pipeline from `state` (so the retry carries the new token). */
type Retry<X, R> = (state: ChallengeState) => Effect.Effect<HttpClientResponse.HttpClientResponse, X, R>

/**
 * Turns the OAuth errors of a slow path into the error type of the client being built: kept as
 * they are by {@link authenticate}, carried inside an `HttpClientError` by {@link OAuthLayer}.
 * `request` is the request as the app sent it (never the one carrying the token).
 */
type Lift<X> = <A, R>(
  effect: Effect.Effect<A, X | OAuthError, R>,
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<A, X, R>

/**
 * A 401 (RFC 6750 §3.1): a DPoP nonce request is retried once with the nonce (RFC 9449 §9, not
 * a sign-in); otherwise refresh or sign in — once for all concurrent requests — and retry once.
 */
const onUnauthorized = <X, R>(
  m: Middleware,
  response: HttpClientResponse.HttpClientResponse,
  state: ChallengeState,
  retry: Retry<X, R>
): Effect.Effect<HttpClientResponse.HttpClientResponse, X | OAuthError, R> => {
  const header = response.headers["www-authenticate"]
  const challenge = authChallenge(header)
  if (
    !state.retriedNonce && m.dpop !== undefined && Option.isSome(challenge) &&
    challenge.value.error === "use_dpop_nonce"
  ) {
    return Effect.zipRight(drain(response), retry({ ...state, retriedNonce: true }))
  }
  if (state.retriedUnauthorized || state.attempts >= m.oauth.maxAuthorizationAttempts) {
    return Effect.zipRight(
      drain(response),
      Effect.fail(
        new Unauthorized({ url: response.request.url, ...(header === undefined ? {} : { wwwAuthenticate: header }) })
      )
    )
  }
  return drain(response).pipe(
    Effect.zipRight(tokenWait(m.oauth.handleUnauthorized(tokenOf(response.request), challenge))),
    Effect.zipRight(retry({ attempts: state.attempts + 1, retriedUnauthorized: true, retriedNonce: false }))
  )
}

/**
 * A 403 `insufficient_scope` (MCP scope challenge): re-authorize with the union of scopes and
 * retry, at most `maxAuthorizationAttempts` times in all; any other 403 is passed on.
 */
const onForbidden = <X, R>(
  m: Middleware,
  response: HttpClientResponse.HttpClientResponse,
  state: ChallengeState,
  retry: Retry<X, R>
): Effect.Effect<HttpClientResponse.HttpClientResponse, X | OAuthError, R> => {
  const challenge = authChallenge(response.headers["www-authenticate"])
  if (Option.isNone(challenge) || challenge.value.error !== "insufficient_scope") return Effect.succeed(response)
  const { errorDescription, scope } = challenge.value
  if (state.attempts >= m.oauth.maxAuthorizationAttempts) {
    return Effect.zipRight(
      drain(response),
      Effect.fail(
        new InsufficientScope({
          requiredScopes: scope ?? [],
          attempts: state.attempts,
          ...(errorDescription === undefined ? {} : { errorDescription })
        })
      )
    )
  }
  return drain(response).pipe(
    Effect.zipRight(tokenWait(m.oauth.handleInsufficientScope(tokenOf(response.request), challenge.value))),
    Effect.zipRight(retry({ ...state, attempts: state.attempts + 1, retriedNonce: false }))
  )
}

/**
 * One answer: refused when it came from another origin with our token; its DPoP nonce
 * remembered; the MCP server's 401 and 403 challenges answered (`retry` re-runs the request
 * pipeline, so the retry carries the new token). Other answers, and every answer while closing,
 * pass on. The common case (the MCP server's answer, neither 401 nor 403, no DPoP proof sent)
 * is one step.
 */
const answer = <X, R>(
  m: Middleware,
  response: HttpClientResponse.HttpClientResponse,
  state: ChallengeState,
  lift: Lift<X>,
  entry: HttpClientRequest.HttpClientRequest,
  loop: Loop<X, R>
): Effect.Effect<HttpClientResponse.HttpClientResponse, X, R> => {
  if (!m.applies(response.request.url)) return lift(refuseForeignAnswer(m, response), entry)
  if (response.status !== 401 && response.status !== 403) {
    // A nonce on a success matters only to a client that sends this server DPoP proofs; a 401
    // or 403 is read in full below (its nonce may be what the next proof needs).
    return response.request.headers["dpop"] === undefined ? Effect.succeed(response) : rememberNonce(m, response)
  }
  const retry: Retry<X, R> = (next) => loop(entry, next)
  return Effect.flatMap(rememberNonce(m, response), (answered) =>
    Effect.withFiberRuntime((fiber) =>
      isClosing(m, fiber)
        ? Effect.succeed(answered)
        : lift(
          answered.status === 401 ? onUnauthorized(m, answered, state, retry) : onForbidden(m, answered, state, retry),
          entry
        )
    ))
}

/**
 * Whether a request of `fiber` is to run with tracing off: its tracer is Effect's own, which
 * records nothing, and tracing is on. The HTTP client below then makes no `http.client` span,
 * span attributes nor `traceparent` header for it (about 20 µs per request); with any other
 * tracer every request keeps its span.
 */
const untraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  !isTraced(fiber) && fiber.getFiberRef(FiberRef.currentTracerEnabled)

/** Sends `entry` through the request pipeline from `state` (see {@link authenticateWith}). */
type Loop<X, R> = (
  entry: HttpClientRequest.HttpClientRequest,
  state: ChallengeState
) => Effect.Effect<HttpClientResponse.HttpClientResponse, X, R>

const firstAttempt: ChallengeState = { attempts: 0, retriedUnauthorized: false, retriedNonce: false }

/**
 * The middleware over `client` (see {@link authenticate}), its OAuth errors turned into the
 * client's error type `X` by `lift` where they arise — only on the slow paths, so that a request
 * with a valid token costs no error handler.
 */
const authenticateWith = <E extends X, R, X>(
  client: HttpClient.HttpClient.With<E, R>,
  m: Middleware,
  lift: Lift<X>
): HttpClient.HttpClient.With<X, R> => {
  // The token goes on after the client's own request mapping (which may set the URL), inside
  // the request effect the client runs (a client below that retries re-runs it: a new proof).
  const withToken = HttpClient.mapRequestEffect(client, authorize(m, lift))
  // Closures made per request are kept to the one that must capture the request: the retry
  // closure is made only for a 401 or 403, and the entry function once.
  const loop: Loop<X, R> = (entry, state) =>
    Effect.flatMap(withToken.execute(entry), (response) => answer(m, response, state, lift, entry, loop))
  const enter = (request: HttpClientRequest.HttpClientRequest) => {
    const sent = loop(
      !m.applies(request.url) && m.attached.carries(request) ? withoutCredentials(request) : request,
      firstAttempt
    )
    return Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, X, R>((fiber) =>
      untraced(fiber) ? Effect.withTracerEnabled(sent, false) : sent
    )
  }
  /**
   * The entry of the middleware: a request for another origin that carries a token this
   * middleware attached (copied by a redirect follower above it, which re-enters here, or
   * re-sent by the app to another URL) goes without it — the token is for the MCP server's
   * origin only. Everything else goes through unchanged.
   */
  return HttpClient.makeWith<never, never, X, R>((requestEffect) => Effect.flatMap(requestEffect, enter), Effect.succeed)
}

/**
 * Authenticates every request a client sends to the MCP server of `oauth` (same origin only;
 * other hosts never see the token): puts the current Bearer token on it (RFC 6750 §2.1) without
 * waiting on any lock when the token is valid; on a 401 (RFC 6750 §3.1) refreshes or signs in —
 * once for all concurrent requests — and retries once; on a 403 `insufficient_scope` re-authorizes
 * with the union of scopes and retries, at most `maxAuthorizationAttempts` times in all.
 *
 * Retrying re-runs the request pipeline, so the retry carries the new token. A request made
 * {@link whileClosing} carries the stored token or none and never authenticates anew. Under
 * Effect's built-in tracer (which records nothing) requests run with tracing off: the client
 * below makes no span nor `traceparent` header; with any other tracer they keep both.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-challenge-handling
 * @since 0.1.0
 * @category middleware
 */
export const authenticate: {
  (oauth: OAuth.OAuth): <E, R>(client: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E | OAuthError, R>
  <E, R>(client: HttpClient.HttpClient.With<E, R>, oauth: OAuth.OAuth): HttpClient.HttpClient.With<E | OAuthError, R>
} = dual(
  2,
  <E, R>(client: HttpClient.HttpClient.With<E, R>, oauth: OAuth.OAuth): HttpClient.HttpClient.With<E | OAuthError, R> =>
    authenticateWith<E, R, E | OAuthError>(client, makeMiddleware(oauth, neverClosing), (effect) => effect)
)

/** An OAuth error as the `cause` of an `HttpClientError` for `request` (see {@link oauthErrorOf}). */
const liftToHttpClientError = <A, R>(
  effect: Effect.Effect<A, HttpClientError.HttpClientError | OAuthError, R>,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<A, HttpClientError.HttpClientError, R> =>
  Effect.catchIf(
    effect,
    (e): e is OAuthError => isOAuthError(e),
    (e) => Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: e, description: e.message }))
  )

/**
 * Turns an authenticated client into one that fits the `HttpClient` tag: typed OAuth errors are
 * carried as the `cause` of an `HttpClientError` (see {@link oauthErrorOf}).
 *
 * @since 0.1.0
 * @category middleware
 */
export const toHttpClient = (client: HttpClient.HttpClient.With<HttpClientError.HttpClientError | OAuthError>) =>
  HttpClient.makeWith(
    (requestEffect: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
      Effect.flatMap(requestEffect, (request) => liftToHttpClientError(client.execute(request), request)),
    Effect.succeed
  )

/**
 * Options of {@link OAuthLayer}: those of the orchestrator, plus `discoveryDeadline`, one
 * deadline for a whole metadata discovery (default: twice `timeout`, i.e. 60 seconds), so that
 * hanging authorization servers listed by a PRM cost at most that, not N × `timeout`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category models
 */
export interface OAuthLayerOptions extends OAuth.OAuthOptions {
  readonly discoveryDeadline?: Duration.DurationInput | undefined
}

/**
 * `OAuth` plus an authenticated `HttpClient.HttpClient` for one MCP server.
 *
 * It wraps the `HttpClient` found below it (discovery, registration and token requests use that
 * inner client directly, never the wrapped one); under Effect's built-in tracer its requests run
 * with tracing off (no span nor `traceparent`; see {@link authenticate}). `TokenStorage`, `Authorizer`, `Pkce` and
 * `TokenLock` are taken from below when provided; otherwise memory storage, the browser sign-in
 * (`Authorizer.layerAuto`: the browser when a display is available, paste-back otherwise), real
 * PKCE and the cross-process lock the storage brings (file system, Redis; none for memory — see
 * `TokenLock.resolve`).
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import { OAuthLayer, TokenStorage } from "effect-mcp-oauth"
 *
 * const AppLive = McpAppLive.pipe(
 *   Layer.provide(OAuthLayer({ mcpUrl: "https://api.example.com/mcp", scopes: ["read"] })),
 *   Layer.provide(TokenStorage.layerFileSystem()),
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category layers
 */
export const OAuthLayer = (
  options: OAuthLayerOptions
): Layer.Layer<OAuth.OAuth | HttpClient.HttpClient, never, HttpClient.HttpClient> =>
  // One effect, not a graph of a dozen layers: each memoized layer costs a scope, a deferred and
  // a semaphore to build, and an app (or `McpClient.connect`) builds this once per server.
  Layer.scopedContext(Effect.gen(function*() {
    const inner = yield* HttpClient.HttpClient
    const serviceConfig = { timeout: options.timeout, allowInsecure: options.allowInsecure }
    const storage = yield* optionalService(TokenStorage.TokenStorage, TokenStorage.layerMemory)
    // The default sign-in: the browser when there is a display, paste-back otherwise.
    const authorizer = yield* optionalService(
      Authorizer.Authorizer,
      Authorizer.layerAuto(options.callbackPort === undefined ? {} : { browser: { callbackPort: options.callbackPort } })
    )
    const pkce = Option.getOrElse(yield* Effect.serviceOption(Pkce.Pkce), () => Pkce.make)
    const dpop = yield* optionalService(Dpop.Dpop, Dpop.layer)
    // The app's TokenLock, else the lock a shared storage brings (file system, Redis), else none.
    const lock = yield* Effect.provideService(TokenLock.resolve, TokenStorage.TokenStorage, storage)
    const discovery = yield* Discovery.make({
      ...serviceConfig,
      validateResource: options.validateResource,
      deadline: options.discoveryDeadline
    })
    const registration = yield* Registration.make({
      ...serviceConfig,
      clientId: options.clientId,
      clientSecret: typeof options.clientSecret === "string"
        ? Redacted.make(options.clientSecret)
        : options.clientSecret,
      tokenEndpointAuthMethod: options.tokenEndpointAuthMethod,
      clientMetadataUrl: options.clientMetadataUrl,
      clientName: options.clientName,
      additionalClientMetadata: options.additionalClientMetadata
    })
    const tokenExchange = yield* Effect.provideService(
      TokenExchange.make({ ...serviceConfig, privateKeyJwt: options.privateKeyJwt }),
      Dpop.Dpop,
      dpop
    )
    const oauth = yield* OAuth.make(options).pipe(
      Effect.provide(
        Context.make(TokenStorage.TokenStorage, storage).pipe(
          Context.add(Authorizer.Authorizer, authorizer),
          Context.add(Pkce.Pkce, pkce),
          Context.add(Dpop.Dpop, dpop),
          Context.add(TokenLock.TokenLock, lock),
          Context.add(Discovery.Discovery, discovery),
          Context.add(Registration.Registration, registration),
          Context.add(TokenExchange.TokenExchange, tokenExchange)
        )
      )
    )
    // Once this layer is closing, the requests of fibers still running never sign in. A plain
    // flag read when the request runs (one step, not a Ref read and a flatMap on every request).
    let layerClosing = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        layerClosing = true
      })
    )
    // One middleware whose OAuth errors are carried inside HttpClientErrors where they arise
    // (`toHttpClient` over `authenticate` would add an error handler to every request).
    const http = authenticateWith(inner, makeMiddleware(oauth, () => layerClosing), liftToHttpClientError)
    return Context.make(OAuth.OAuth, oauth).pipe(Context.add(HttpClient.HttpClient, http))
  }))

/**
 * The {@link OAuthLayer} options read from configuration (environment variables by default):
 * `MCP_URL` (required), `MCP_OAUTH_SCOPES` (space-separated), `MCP_OAUTH_CLIENT_ID`,
 * `MCP_OAUTH_CLIENT_SECRET` (read as `Redacted`), `MCP_OAUTH_ISSUER` (the trusted authorization
 * server, see `OAuthOptions.issuer`), `MCP_OAUTH_CLIENT_NAME`, `MCP_OAUTH_CLIENT_METADATA_URL`,
 * `MCP_OAUTH_CALLBACK_PORT`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category config
 */
export const OAuthLayerOptionsConfig: Config.Config<OAuthLayerOptions> = Config.all({
  mcpUrl: Config.url("MCP_URL").pipe(Config.map((u) => u.href)),
  scopes: Config.option(Config.string("MCP_OAUTH_SCOPES")),
  clientId: Config.option(Config.string("MCP_OAUTH_CLIENT_ID")),
  clientSecret: Config.option(Config.redacted("MCP_OAUTH_CLIENT_SECRET")),
  issuer: Config.option(Config.string("MCP_OAUTH_ISSUER")),
  clientName: Config.option(Config.string("MCP_OAUTH_CLIENT_NAME")),
  clientMetadataUrl: Config.option(Config.url("MCP_OAUTH_CLIENT_METADATA_URL").pipe(Config.map((u) => u.href))),
  callbackPort: Config.option(Config.port("MCP_OAUTH_CALLBACK_PORT"))
}).pipe(
  Config.map((c): OAuthLayerOptions => ({
    mcpUrl: c.mcpUrl,
    scopes: Option.getOrUndefined(c.scopes),
    clientId: Option.getOrUndefined(c.clientId),
    clientSecret: Option.getOrUndefined(c.clientSecret),
    issuer: Option.getOrUndefined(c.issuer),
    clientName: Option.getOrUndefined(c.clientName),
    clientMetadataUrl: Option.getOrUndefined(c.clientMetadataUrl),
    callbackPort: Option.getOrUndefined(c.callbackPort)
  }))
)

/**
 * {@link OAuthLayer} with its options read from a `Config` (by default
 * {@link OAuthLayerOptionsConfig}, i.e. environment variables); a missing or invalid setting
 * fails the layer with a `ConfigError` naming it.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category layers
 */
export const OAuthLayerConfig = (
  config: Config.Config<OAuthLayerOptions> = OAuthLayerOptionsConfig
): Layer.Layer<OAuth.OAuth | HttpClient.HttpClient, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(config, OAuthLayer))

/**
 * A service taken from the context when present, else built from `fallback` into the layer's
 * scope, through the memo map of the layer graph being built (as `Layer.provide` would: two
 * `OAuthLayer`s in one graph share a default such as `TokenStorage.layerMemory`).
 */
const optionalService = <I, S, E, R>(
  tag: Context.Tag<I, S>,
  fallback: Layer.Layer<I, E, R>
): Effect.Effect<S, E, R | Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(tag), (found) =>
    Option.isSome(found)
      ? Effect.succeed(found.value)
      : Effect.flatMap(
        Effect.zip(Layer.CurrentMemoMap, Effect.scope),
        ([memoMap, scope]) => Effect.map(Layer.buildWithMemoMap(fallback, memoMap, scope), Context.get(tag))
      ))
