/**
 * Sign-in: obtaining a new token set — by authorization code with PKCE (a user, RFC 6749 §4.1,
 * RFC 7636), by `client_credentials` (machine to machine, RFC 6749 §4.4) or by a custom grant —
 * with the MCP scope selection strategy (SEP-835) and one retry with a new registration when the
 * server no longer knows the client.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-flow-steps
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ClientIdentity from "./ClientIdentity.js"
import * as DeviceAuthorization from "./DeviceAuthorization.js"
import type * as Discovery from "./Discovery.js"
import { ClientNotFound, DiscoveryError, type OAuthError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import * as PendingAuthorization from "./PendingAuthorization.js"
import type { StoredToken } from "./Schemas.js"
import * as SignInEvents from "./SignInEvents.js"

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
  return FlowContext.union(base, offline)
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

/**
 * The scopes a user sign-in asks for (MCP scope selection strategy): the configured ones, else
 * the challenge's, else the resource's `scopes_supported`; on step-up, together with those the
 * current token holds and the extra ones asked for.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-selection-strategy
 */
const userScopes = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest,
  found: Discovery.DiscoveryResult
): Effect.Effect<ReadonlyArray<string>, OAuthError> =>
  Effect.map(FlowContext.loadCurrent(ctx), (current) => {
    const selected = selectScopes(ctx.configuredScopes, Option.getOrUndefined(request.challenge)?.scope, found)
    if (request.extraScopes.length === 0) return selected
    const held = Option.match(current, { onNone: () => [], onSome: (t) => t.scopes })
    return FlowContext.union(selected, held, request.extraScopes)
  })

/** Stores a user sign-in's token and tells `SignInEvents` it is signed in. */
const storeSignedIn = (ctx: FlowContext.FlowContext, token: StoredToken): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    // Kept in memory when storage refused it (FlowContext.save): the event says so.
    const refused = yield* FlowContext.save(ctx, token)
    yield* SignInEvents.publish(
      SignInEvents.SignInEvent.SignedIn({
        mcpUrl: ctx.mcpUrl,
        issuer: token.issuer,
        scopes: token.scopes,
        ...(Option.isSome(refused) ? { storageError: refused.value.message } : {})
      })
    )
    return token
  })

/**
 * One authorization-code sign-in, start to finish: discovery, scopes (the held ones plus the
 * extra ones on a step-up), client, PKCE, the user's authorization (RFC 9207 `iss` checked),
 * the code exchange; the token is stored. The authorization request is stored while the user
 * is away (`PendingAuthorization`), and one that an earlier process stored and did not finish
 * is taken over instead of starting again.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4
 * @since 0.1.0
 * @category sign-in
 */
export const authorizationCode = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const found = yield* FlowContext.discover(ctx, request.challenge, request.rediscover)
      const scopes = yield* userScopes(ctx, request, found)
      const as = found.authorizationServer
      const issParameterSupported = as.authorization_response_iss_parameter_supported === true
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
      yield* OAuthHttp.checkSecureUrl(endpoint, { allowInsecure: ctx.options.allowInsecure })
      // A sign-in an earlier process started (and died in) is finished here rather than begun again.
      const joined = yield* PendingAuthorization.join(ctx, found, scopes)
      if (Option.isSome(joined)) return yield* redeemJoined(ctx, found, joined.value)
      const { client, preflight, session } = yield* ClientIdentity.forSignIn(ctx, found, scopes)
      const codes = yield* ctx.pkce.generate
      const state = yield* ctx.pkce.generateState
      const url = authorizationUrl({
        endpoint,
        clientId: client.clientId,
        redirectUri: session.redirectUri,
        codeChallenge: codes.challenge,
        state,
        scopes,
        resource: found.resource
      })
      yield* PendingAuthorization.save(
        ctx,
        yield* PendingAuthorization.record({
          url,
          state,
          codeVerifier: codes.verifier,
          redirectUri: session.redirectUri,
          issuer: found.issuer,
          issParameterSupported,
          clientId: client.clientId,
          resource: found.resource,
          scopes
        })
      )
      yield* SignInEvents.publish(
        SignInEvents.SignInEvent.AuthorizationUrl({ mcpUrl: ctx.mcpUrl, url: url.href, redirectUri: session.redirectUri })
      )
      const response = yield* session.authorize({
        url,
        state,
        redirectUri: session.redirectUri,
        issuer: found.issuer,
        issParameterSupported,
        clientId: client.clientId,
        preflight
      }).pipe(
        // A reused client whose registered scope we do not know (a store written before it was
        // kept, or a server that did not say) and that the server refuses the scope for: its
        // registration is too narrow, so it is registered again (once, by the retry in `signIn`).
        Effect.catchIf(
          (error) =>
            error._tag === "AuthorizationError" && error.error === "invalid_scope" && preflight &&
            client.source === "dynamic" && client.scope === undefined,
          (error) =>
            Effect.fail(
              new ClientNotFound({
                clientId: client.clientId,
                description: `its registration does not allow the scope ${scopes.join(" ")} (${error.message})`
              })
            )
        ),
        // the stored request is done with, whatever the outcome, unless this process is stopped
        PendingAuthorization.settle(ctx)
      )
      const token = yield* ctx.exchange.authorizationCode({
        discovery: found,
        client,
        code: response.code,
        codeVerifier: codes.verifier,
        redirectUri: session.redirectUri,
        resource: found.resource,
        scopes
      })
      return yield* storeSignedIn(ctx, token)
    })
  ).pipe(Effect.withSpan("OAuth.authorizationCodeFlow"))

/**
 * The end of a sign-in taken over from an earlier process (`PendingAuthorization.join`): the
 * code is redeemed with the verifier and redirect URI of the stored request; the token is stored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.5
 * @since 0.1.0
 * @category sign-in
 */
export const redeemJoined = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  joined: PendingAuthorization.Joined
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    const token = yield* ctx.exchange.authorizationCode({
      discovery: found,
      client: joined.client,
      code: joined.response.code,
      codeVerifier: joined.pending.codeVerifier,
      redirectUri: joined.pending.redirectUri,
      resource: joined.pending.resource,
      scopes: joined.pending.scopes
    })
    return yield* storeSignedIn(ctx, token)
  }).pipe(Effect.withSpan("OAuth.joinedAuthorizationCodeFlow"))

/**
 * A machine-to-machine sign-in: `client_credentials` (RFC 6749 §4.4), or the custom grant when
 * one is given; the token is stored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 * @since 0.1.0
 * @category sign-in
 */
export const clientCredentials = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest,
  custom: FlowContext.CustomGrant | undefined
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    const found = yield* FlowContext.discover(ctx, request.challenge, request.rediscover)
    const challengeScopes = Option.getOrUndefined(request.challenge)?.scope
    const scopes = FlowContext.union(selectScopes(ctx.configuredScopes, challengeScopes, found), request.extraScopes)
    const client = yield* ClientIdentity.clientFor(ctx, found, "urn:ietf:wg:oauth:2.0:oob", scopes, [
      "client_credentials"
    ])
    const token = custom === undefined
      ? yield* ctx.exchange.clientCredentials({ discovery: found, client, resource: found.resource, scopes })
      : yield* custom({ discovery: found, client, scopes, resource: found.resource, exchange: ctx.exchange })
    yield* FlowContext.save(ctx, token)
    return token
  }).pipe(Effect.withSpan("OAuth.clientCredentialsFlow"))

/**
 * A device sign-in (RFC 8628): the same discovery, scopes, `resource` and storage as the code
 * flow; the client is registered for the device grant (and refresh) under its own pseudo
 * redirect URI, like the machine-to-machine client.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3
 * @since 0.1.0
 * @category sign-in
 */
export const deviceCode = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.gen(function*() {
    const found = yield* FlowContext.discover(ctx, request.challenge, request.rediscover)
    const scopes = yield* userScopes(ctx, request, found)
    const endpoint = found.authorizationServer.device_authorization_endpoint
    if (endpoint !== undefined) yield* OAuthHttp.checkSecureUrl(endpoint, { allowInsecure: ctx.options.allowInsecure })
    const client = yield* ClientIdentity.clientFor(ctx, found, "urn:ietf:wg:oauth:2.0:oob", scopes, [
      "authorization_code",
      DeviceAuthorization.DEVICE_CODE_GRANT_TYPE,
      "refresh_token"
    ])
    const token = yield* DeviceAuthorization.signIn({
      httpClient: ctx.httpClient,
      exchange: ctx.exchange,
      discovery: found,
      client,
      scopes,
      show: (prompt) =>
        Effect.zipRight(
          SignInEvents.publish(SignInEvents.SignInEvent.DeviceCode({
            mcpUrl: ctx.mcpUrl,
            issuer: prompt.issuer,
            userCode: prompt.userCode,
            verificationUri: prompt.verificationUri,
            verificationUriComplete: prompt.verificationUriComplete,
            expiresInSeconds: Duration.toSeconds(prompt.expiresIn)
          })),
          (ctx.options.onDeviceCode ?? DeviceAuthorization.showOnStderr)(prompt)
        ),
      httpOptions: {
        timeout: ctx.options.timeout ?? "30 seconds",
        ...(ctx.options.allowInsecure === undefined ? {} : { allowInsecure: ctx.options.allowInsecure })
      }
    })
    return yield* storeSignedIn(ctx, token)
  }).pipe(Effect.withSpan("OAuth.deviceCodeFlow"))

/**
 * The user sign-in of an authorizer that prefers the device grant (`Authorizer.preferDeviceCode`,
 * set by `Authorizer.layerAuto` when there is no display): the device flow when the authorization
 * server offers it, the authorization-code flow (e.g. paste-back) otherwise.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-4
 * @since 0.1.0
 * @category sign-in
 */
export const deviceCodeIfOffered = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.flatMap(
    FlowContext.discover(ctx, request.challenge, request.rediscover),
    (found) =>
      found.authorizationServer.device_authorization_endpoint !== undefined
        ? deviceCode(ctx, { ...request, rediscover: false })
        : authorizationCode(ctx, { ...request, rediscover: false })
  )

/**
 * A full sign-in with the configured grant, retried once — through a `Schedule` — when the
 * server no longer knows our client (`ClientNotFound`): the stale client and its tokens are
 * cleared first, so the retry registers again. A static (pre-registered) client is never retried.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category sign-in
 */
export const signIn = (
  ctx: FlowContext.FlowContext,
  request: FlowContext.FlowRequest
): Effect.Effect<StoredToken, OAuthError> =>
  Effect.suspend(() => {
    // Never discover twice in one flow: the retry reuses what the first attempt fetched.
    let next = request
    const attempt = Effect.suspend(() => {
      const current = next
      next = { ...request, rediscover: false }
      return ctx.grant === "authorization_code"
        ? ctx.authorizer.preferDeviceCode === true
          ? deviceCodeIfOffered(ctx, current)
          : authorizationCode(ctx, current)
        : ctx.grant === "device_code"
        ? deviceCode(ctx, current)
        : clientCredentials(ctx, current, ctx.grant === "client_credentials" ? undefined : ctx.grant)
    })
    return attempt.pipe(
      Effect.tapError((error) =>
        error._tag === "ClientNotFound"
          ? Effect.logWarning(
            `Client ${error.clientId} cannot be used (${error.description ?? "unknown to the server"}); ` +
              "forgetting it and registering again"
          ).pipe(
            Effect.zipRight(ClientIdentity.forgetStaleClient(ctx))
          )
          : Effect.void
      ),
      Effect.retry({
        schedule: Schedule.recurs(1),
        while: (error) => error._tag === "ClientNotFound" && !ctx.registration.isStatic
      })
    )
  })
