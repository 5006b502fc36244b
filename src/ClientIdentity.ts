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
import { Clock, Effect, Option } from "effect"
import type * as Discovery from "./Discovery.js"
import type { OAuthError, StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import type { ClientInformation } from "./Schemas.js"

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
 * The stored client when usable with this redirect URI, or a newly obtained one (stored unless
 * pre-registered). A dynamically registered client only knows the redirect URIs it registered.
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
    if (registered.source !== "preregistered") yield* ctx.storage.setClient(ctx.key, registered)
    return registered
  })
