/**
 * Which client identity to present at an authorization server: the configured pre-registered
 * client, the stored one (Client ID Metadata Document or RFC 7591 dynamic registration) when it
 * belongs to that server's issuer and is still usable, or a new registration (stored).
 * SEP-2352: client credentials are bound to the issuer that issued them.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-registration-approaches
 * @since 0.1.0
 */
import { Clock, Effect, Option, Redacted } from "effect"
import type * as Discovery from "./Discovery.js"
import { IssuerMismatch, type OAuthError, type StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import { chooseAuthMethod } from "./Registration.js"
import { ClientInformation } from "./Schemas.js"

/**
 * The stored record of the configured pre-registered client — its id, auth method and the issuer
 * it was last used at, never its secret — when there is one for the configured client id.
 */
const preregisteredRecord = (ctx: FlowContext.FlowContext) =>
  Effect.map(
    ctx.storage.getClient(ctx.key),
    Option.filter((c) => c.source === "preregistered" && c.clientId === ctx.options.clientId)
  )

/** The record of a pre-registered client as stored: without its secret (that stays in the configuration). */
const recordOf = (client: ClientInformation): ClientInformation =>
  new ClientInformation({
    clientId: client.clientId,
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    source: "preregistered",
    issuer: client.issuer,
    redirectUris: []
  })

/**
 * Records, for a configured pre-registered client that has no record yet, that its credentials
 * are bound to `issuer` (the issuer of the tokens it holds). Stores written before issuer binding
 * carry only the tokens; this keeps their binding when those tokens are about to be dropped.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 * @since 0.1.0
 * @category client identity
 */
export const rememberIssuer = (ctx: FlowContext.FlowContext, issuer: string): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const clientId = ctx.options.clientId
    if (!ctx.registration.isStatic || clientId === undefined) return
    if (Option.isSome(yield* preregisteredRecord(ctx))) return
    const secret = ctx.options.clientSecret
    yield* ctx.storage.setClient(
      ctx.key,
      new ClientInformation({
        clientId,
        tokenEndpointAuthMethod: ctx.options.tokenEndpointAuthMethod ?? chooseAuthMethod(undefined, secret !== undefined),
        source: "preregistered",
        issuer,
        redirectUris: []
      })
    )
  })

/**
 * The configured pre-registered client for the authorization server `found` — only if its
 * credentials may go there (SEP-2352): the issuer it was last used at, or the one the `issuer`
 * option names; otherwise `IssuerMismatch` and nothing is sent. Its record (id, auth method,
 * issuer; never the secret) is stored, so that a later run — or one without the client id, like
 * the CLI's `token` — knows the client and its issuer, and sign-out can revoke.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.2
 * @since 0.1.0
 * @category client identity
 */
export const preregistered = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  redirectUri: string,
  grantTypes?: ReadonlyArray<string>
): Effect.Effect<ClientInformation, OAuthError> =>
  Effect.gen(function*() {
    const record = yield* preregisteredRecord(ctx)
    if (Option.isSome(record) && record.value.issuer !== found.issuer && ctx.options.issuer !== found.issuer) {
      return yield* new IssuerMismatch({ reason: "Changed", expected: record.value.issuer, actual: found.issuer })
    }
    const client = yield* ctx.registration.register({ discovery: found, redirectUri, grantTypes })
    if (
      Option.isNone(record) || record.value.issuer !== client.issuer ||
      record.value.tokenEndpointAuthMethod !== client.tokenEndpointAuthMethod
    ) {
      yield* ctx.storage.setClient(ctx.key, recordOf(client))
    }
    return client
  })

/**
 * The configured pre-registered client as it revokes at the issuer of `tokenIssuer` on sign-out:
 * its stored record (or, for stores written before records, the configuration) with the
 * configured secret. `None` without a configured client.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @since 0.1.0
 * @category client identity
 */
export const configuredClient = (
  ctx: FlowContext.FlowContext,
  tokenIssuer: string
): Effect.Effect<Option.Option<ClientInformation>, StorageError> =>
  Effect.gen(function*() {
    const clientId = ctx.options.clientId
    if (!ctx.registration.isStatic || clientId === undefined) return Option.none()
    const record = yield* preregisteredRecord(ctx)
    const configured = ctx.options.clientSecret
    const secret = typeof configured === "string" ? Redacted.make(configured) : configured
    return Option.some(
      new ClientInformation({
        clientId,
        ...(secret === undefined ? {} : { clientSecret: secret }),
        tokenEndpointAuthMethod: Option.match(record, {
          onSome: (r) => r.tokenEndpointAuthMethod,
          onNone: () => ctx.options.tokenEndpointAuthMethod ?? chooseAuthMethod(undefined, secret !== undefined)
        }),
        source: "preregistered",
        issuer: Option.match(record, { onSome: (r) => r.issuer, onNone: () => tokenIssuer }),
        redirectUris: []
      })
    )
  })

/**
 * The stored client of this server if it belongs to `issuer` and its secret has not expired.
 * A configured pre-registered client always wins over a stored one (`None` then). A client of
 * another issuer is discarded with its tokens (SEP-2352: credentials are bound to their issuer).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category client identity
 */
export const storedClient = (
  ctx: FlowContext.FlowContext,
  issuer: string
): Effect.Effect<Option.Option<ClientInformation>, StorageError> =>
  Effect.gen(function*() {
    if (ctx.registration.isStatic) return Option.none<ClientInformation>()
    const stored = yield* ctx.storage.getClient(ctx.key)
    if (Option.isNone(stored)) return stored
    const c = stored.value
    if (c.issuer !== issuer) {
      yield* Effect.logInfo(`Authorization server changed (${c.issuer} → ${issuer}); registering again`)
      yield* FlowContext.forget(ctx)
      return Option.none<ClientInformation>()
    }
    const now = yield* Clock.currentTimeMillis
    return c.clientSecretExpiresAt !== undefined && c.clientSecretExpiresAt <= now
      ? Option.none<ClientInformation>()
      : stored
  })

/**
 * The client to present at `found`: the configured pre-registered one ({@link preregistered}),
 * else the stored client when usable with this redirect URI, else a newly obtained one (stored).
 * A dynamically registered client only knows the redirect URIs it registered.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category client identity
 */
export const clientFor = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  redirectUri: string,
  scopes: ReadonlyArray<string>,
  grantTypes?: ReadonlyArray<string>
): Effect.Effect<ClientInformation, OAuthError> =>
  Effect.gen(function*() {
    if (ctx.registration.isStatic) return yield* preregistered(ctx, found, redirectUri, grantTypes)
    const stored = yield* storedClient(ctx, found.issuer)
    if (Option.isSome(stored) && (stored.value.source !== "dynamic" || stored.value.redirectUris.includes(redirectUri))) {
      return stored.value
    }
    const registered = yield* ctx.registration.register({
      discovery: found,
      redirectUri,
      scope: scopes.length > 0 ? scopes.join(" ") : undefined,
      grantTypes
    })
    yield* ctx.storage.setClient(ctx.key, registered)
    return registered
  })
