/**
 * The browser sign-in in progress, kept in the token storage so that another process can take it
 * over. A host (an IDE, a desktop chat app) that restarts its stdio MCP server while the user is
 * on the authorization server's pages kills the process that listens on the loopback redirect
 * URI and holds the PKCE verifier; without this, the user's consent lands on a port nobody
 * listens on, and the new process sends the user to a second sign-in.
 *
 * - When an authorization-code sign-in sends the user agent to the authorization endpoint, the
 *   request is stored ({@link record}, {@link save}): `state`, the PKCE `code_verifier`
 *   (`Redacted`, stored with the tokens' protections), the redirect URI with its loopback port,
 *   issuer, client id, resource, scopes, and when it was made and expires ({@link LIFETIME}).
 * - A process that signs in later — under the cross-process token lock, which the dead holder's
 *   lease no longer blocks — first looks for such a request ({@link join}): when it is fresh and
 *   made for the same authorization server, resource, client and (at least) scopes, it listens on
 *   the same redirect URI and waits for the callback of that request, without sending the user
 *   anywhere again; the code is then redeemed with the stored verifier (`SignIn`).
 * - The record is removed when the sign-in succeeds or fails, and ignored (and removed) when it
 *   expired or does not fit. An interrupted sign-in (SIGTERM) keeps it, for the next process.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Authorizer from "./Authorizer.js"
import * as ClientIdentity from "./ClientIdentity.js"
import type * as Discovery from "./Discovery.js"
import type { OAuthError, StorageError } from "./Errors.js"
import type * as FlowContext from "./FlowContext.js"
import { type AuthorizationResponse, type ClientInformation, PendingAuthorization } from "./Schemas.js"
import { typed } from "./internal/typed.js"

/**
 * How long a stored authorization request may be taken over: long enough for a user who reads
 * the consent page, short enough that a forgotten one is not answered hours later (the
 * interactive authorizers wait 5 minutes by default; RFC 6749 §4.1.2 recommends codes of at most
 * 10 minutes).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category constants
 */
export const LIFETIME: Duration.Duration = Duration.minutes(10)

/**
 * The record of an authorization request made now, valid for {@link LIFETIME}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category constructors
 */
export const record = (request: {
  readonly url: URL
  readonly state: string
  readonly codeVerifier: Redacted.Redacted<string>
  readonly redirectUri: string
  readonly issuer: string
  readonly issParameterSupported: boolean
  readonly clientId: string
  readonly resource: string | undefined
  readonly scopes: ReadonlyArray<string>
}): Effect.Effect<PendingAuthorization> =>
  Effect.map(Clock.currentTimeMillis, (now) =>
    new PendingAuthorization({
      url: request.url.href,
      state: request.state,
      codeVerifier: request.codeVerifier,
      redirectUri: request.redirectUri,
      issuer: request.issuer,
      issParameterSupported: request.issParameterSupported,
      clientId: request.clientId,
      resource: request.resource,
      scopes: request.scopes,
      createdAt: now,
      expiresAt: now + Duration.toMillis(LIFETIME)
    }, typed))

/** A failure to keep or remove the record costs only the take-over: logged, never fatal. */
const bestEffort = (what: string) => (effect: Effect.Effect<void, StorageError>): Effect.Effect<void> =>
  Effect.catchAll(effect, (error) => Effect.logWarning(`Could not ${what} the sign-in in progress: ${error.message}`))

/**
 * Stores `pending` as the sign-in in progress of the context's server (a no-op on storages
 * without `pendingAuthorizations`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category storage
 */
export const save = (ctx: FlowContext.FlowContext, pending: PendingAuthorization): Effect.Effect<void> =>
  ctx.storage.pendingAuthorizations === undefined
    ? Effect.void
    : bestEffort("store")(ctx.storage.pendingAuthorizations.set(ctx.key, pending))

/**
 * Removes the sign-in in progress of the context's server.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category storage
 */
export const clear = (ctx: FlowContext.FlowContext): Effect.Effect<void> =>
  ctx.storage.pendingAuthorizations === undefined
    ? Effect.void
    : bestEffort("remove")(ctx.storage.pendingAuthorizations.clear(ctx.key))

/**
 * Runs `signIn` (which stored a request with {@link save}) and removes the record when it
 * succeeds or fails; an interrupted sign-in — the process is being stopped — leaves it for the
 * process that replaces this one.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @since 0.1.0
 * @category storage
 */
export const settle = (ctx: FlowContext.FlowContext) => <A, E, R>(signIn: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.onExit(signIn, (exit) => Exit.isInterrupted(exit) ? Effect.void : clear(ctx))

/**
 * Why a stored request cannot be taken over for this sign-in, or `undefined` when it can.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12
 * @since 0.1.0
 * @category joining
 */
export const unfit = (
  pending: PendingAuthorization,
  wanted: {
    readonly now: number
    readonly issuer: string
    readonly resource: string | undefined
    readonly scopes: ReadonlyArray<string>
  }
): string | undefined => {
  if (pending.expiresAt <= wanted.now) return `it expired at ${new Date(pending.expiresAt).toISOString()}`
  if (pending.createdAt > wanted.now + 60_000) return "it was made in the future (clock change)"
  if (pending.issuer !== wanted.issuer) return `it was made at ${pending.issuer}, not ${wanted.issuer}`
  if (pending.resource !== wanted.resource) return `it was made for the resource ${pending.resource ?? "(none)"}`
  const missing = wanted.scopes.filter((s) => !pending.scopes.includes(s))
  if (missing.length > 0) return `it does not ask for ${missing.join(" ")}`
  return undefined
}

/** The client `pending` was made for, as this process knows it: stored (dynamic) or configured. */
const clientOf = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  pending: PendingAuthorization
): Effect.Effect<Option.Option<ClientInformation>, OAuthError> =>
  ctx.registration.isStatic
    ? Effect.map(
      ClientIdentity.preregistered(ctx, found, pending.redirectUri),
      (client) => Option.liftPredicate(client, (c) => c.clientId === pending.clientId)
    )
    : Effect.map(
      ClientIdentity.storedClient(ctx, found.issuer, "browser"),
      Option.filter((c) => c.clientId === pending.clientId)
    )

/**
 * A sign-in taken over: the stored request, its client and the authorization response that
 * arrived for it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category models
 */
export interface Joined {
  readonly pending: PendingAuthorization
  readonly client: ClientInformation
  readonly response: AuthorizationResponse
}

/**
 * Takes over the sign-in in progress that an earlier process stored, when there is one that fits
 * (see {@link unfit}) and its client is known here: listens on its redirect URI (a session of the
 * context's authorizer that prefers it; when the authorizer cannot listen there, the request is
 * given up) and waits for its authorization response, without sending the user agent anywhere.
 * `None` when there is nothing to take over, or when the request's life ({@link LIFETIME} from
 * when it was made) ends before its answer comes: the caller starts a new sign-in. The record is
 * removed when it does not fit, when it expires, and when the wait fails.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category joining
 */
export const join = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  scopes: ReadonlyArray<string>
): Effect.Effect<Option.Option<Joined>, OAuthError, Scope.Scope> =>
  Effect.gen(function*() {
    const store = ctx.storage.pendingAuthorizations
    if (store === undefined) return Option.none()
    const stored = yield* Effect.catchAll(store.get(ctx.key), (error) =>
      Effect.as(
        Effect.logWarning(`Could not read the sign-in in progress: ${error.message}`),
        Option.none<PendingAuthorization>()
      ))
    if (Option.isNone(stored)) return Option.none()
    const pending = stored.value
    const giveUp = (why: string) =>
      Effect.as(
        Effect.zipRight(Effect.logInfo(`Not taking over the sign-in an earlier process started: ${why}`), clear(ctx)),
        Option.none<Joined>()
      )
    const now = yield* Clock.currentTimeMillis
    const why = unfit(pending, { now, issuer: found.issuer, resource: found.resource, scopes })
    if (why !== undefined) return yield* giveUp(why)
    const client = yield* clientOf(ctx, found, pending)
    if (Option.isNone(client)) return yield* giveUp(`its client ${pending.clientId} is not the one stored here`)
    // The session (a callback server) lives in a scope of its own, closed at once when it cannot
    // listen on the stored redirect URI: the new sign-in then opens one of its own.
    const sessionScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const session = yield* Effect.either(
      Authorizer.openSession(ctx.authorizer, { preferredRedirectUri: pending.redirectUri }).pipe(
        Scope.extend(sessionScope)
      )
    )
    if (session._tag === "Left" || session.right.redirectUri !== pending.redirectUri) {
      yield* Scope.close(sessionScope, Exit.void)
      return yield* giveUp(
        session._tag === "Left"
          ? `cannot listen on ${pending.redirectUri} (${session.left.message})`
          : `cannot listen on ${pending.redirectUri} (this sign-in uses ${session.right.redirectUri})`
      )
    }
    yield* Effect.logInfo(`Taking over the sign-in an earlier process started at ${pending.issuer}`)
    // The wait ends with the request's life at the latest (or the authorizer's own timeout, when
    // sooner): a user who never came back to the earlier window then gets a new sign-in at once.
    const response = yield* session.right.authorize({
      url: new URL(pending.url),
      state: pending.state,
      redirectUri: pending.redirectUri,
      issuer: pending.issuer,
      issParameterSupported: pending.issParameterSupported,
      clientId: pending.clientId,
      preflight: false,
      resumed: true
    }).pipe(settle(ctx), Effect.timeoutOption(Duration.millis(pending.expiresAt - now)))
    if (Option.isNone(response)) {
      yield* Scope.close(sessionScope, Exit.void)
      return yield* giveUp(`it expired at ${new Date(pending.expiresAt).toISOString()} before its answer came`)
    }
    return Option.some<Joined>({ pending, client: client.value, response: response.value })
  }).pipe(Effect.withSpan("PendingAuthorization.join"))
