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
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Authorizer from "./Authorizer.js"
import * as ClientConfiguration from "./ClientConfiguration.js"
import type * as Discovery from "./Discovery.js"
import { IssuerMismatch, type OAuthError, type StorageError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import { isLoopbackHost } from "./internal/oauthHttp.js"
import { chooseAuthMethod } from "./Registration.js"
import { ClientInformation } from "./Schemas.js"
import * as TokenStorage from "./TokenStorage.js"
import { typed } from "./internal/typed.js"

const sameClient = Schema.equivalence(ClientInformation)

/**
 * Stores the client this server now uses: under the server's key (the client its tokens belong
 * to: refresh and sign-out use it) and under the authorization server's shared key for `kind`,
 * which every other MCP server on that issuer reuses instead of registering again.
 */
const keep = (
  ctx: FlowContext.FlowContext,
  kind: TokenStorage.ClientKind,
  client: ClientInformation
): Effect.Effect<void, StorageError> =>
  Effect.forEach([ctx.key, TokenStorage.clientKey(client.issuer, kind)], (key) =>
    Effect.flatMap(ctx.storage.getClient(key), (stored) =>
      Option.isSome(stored) && sameClient(stored.value, client) ? Effect.void : ctx.storage.setClient(key, client)), {
    discard: true
  })

/**
 * Forgets this server's credentials and client because the authorization server no longer knows
 * the client (`invalid_client`, RFC 7592 `ClientNotFound`): the registration shared by the other
 * servers on that issuer is the same client, so it goes too (they would fail the same way).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category client identity
 */
export const forgetStaleClient = (ctx: FlowContext.FlowContext): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const own = yield* ctx.storage.getClient(ctx.key)
    if (Option.isSome(own) && own.value.source !== "preregistered") {
      for (const kind of ["browser", "device", "client_credentials"] as const) {
        const key = TokenStorage.clientKey(own.value.issuer, kind)
        const shared = yield* ctx.storage.getClient(key)
        if (Option.isSome(shared) && shared.value.clientId === own.value.clientId) yield* ctx.storage.clearClient(key)
      }
    }
    yield* FlowContext.forget(ctx)
  })

/** The kind of registration a flow asking for `grantTypes` needs (no grant types: the browser's). */
const kindOf = (grantTypes: ReadonlyArray<string> | undefined): TokenStorage.ClientKind =>
  grantTypes?.includes("client_credentials") === true
    ? "client_credentials"
    : grantTypes?.some((g) => g.endsWith(":device_code")) === true
    ? "device"
    : "browser"

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
  }, typed)

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
      }, typed)
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
      }, typed)
    )
  })

/**
 * The stored client of this server if it belongs to `issuer` and its secret has not expired.
 * A configured pre-registered client always wins over a stored one (`None` then). A client of
 * another issuer is discarded with its tokens (SEP-2352: credentials are bound to their issuer).
 * With `kind`, the registration of that kind shared by every MCP server on `issuer`
 * ({@link TokenStorage.clientKey}) is used when this server has none (and preferred, as the more
 * recent copy, when it is the same client); a record stored per server by earlier versions is
 * still used and, once used, shared.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category client identity
 */
export const storedClient = (
  ctx: FlowContext.FlowContext,
  issuer: string,
  kind?: TokenStorage.ClientKind
): Effect.Effect<Option.Option<ClientInformation>, StorageError> =>
  Effect.gen(function*() {
    if (ctx.registration.isStatic) return Option.none<ClientInformation>()
    let own = yield* ctx.storage.getClient(ctx.key)
    if (Option.isSome(own) && own.value.issuer !== issuer) {
      yield* Effect.logInfo(`Authorization server changed (${own.value.issuer} → ${issuer}); registering again`)
      yield* FlowContext.forget(ctx)
      own = Option.none()
    }
    const shared = kind === undefined
      ? Option.none<ClientInformation>()
      : Option.filter(yield* ctx.storage.getClient(TokenStorage.clientKey(issuer, kind)), (c) => c.issuer === issuer)
    const stored = Option.isNone(own) || (Option.isSome(shared) && shared.value.clientId === own.value.clientId)
      ? shared
      : own
    if (Option.isNone(stored)) return stored
    const c = stored.value
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
    const kind = kindOf(grantTypes)
    const stored = yield* storedClient(ctx, found.issuer, kind)
    if (Option.isSome(stored) && (stored.value.source !== "dynamic" || stored.value.redirectUris.includes(redirectUri))) {
      yield* keep(ctx, kind, stored.value)
      return stored.value
    }
    const registered = yield* ctx.registration.register({
      discovery: found,
      redirectUri,
      scope: scopes.length > 0 ? scopes.join(" ") : undefined,
      grantTypes
    })
    yield* keep(ctx, kind, registered)
    return registered
  })

const splitScope = (scope: string | undefined): ReadonlyArray<string> =>
  scope === undefined ? [] : scope.split(" ").filter((s) => s !== "")

/** An `http:` redirect URI on a loopback IP literal (RFC 8252 §7.3), whose port may vary. */
const loopbackRedirect = (uri: string): URL | undefined => {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return undefined
  }
  return url.protocol === "http:" && isLoopbackHost(url.hostname) && url.hostname !== "localhost" ? url : undefined
}

/**
 * Whether `requested` is one of `registered`, or differs from a registered loopback redirect URI
 * only by its port — which RFC 8252 §7.3 says the authorization server must allow.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category client identity
 */
export const redirectUriMatch = (
  registered: ReadonlyArray<string>,
  requested: string
): "exact" | "loopbackPort" | "none" => {
  if (registered.includes(requested)) return "exact"
  const want = loopbackRedirect(requested)
  if (want === undefined) return "none"
  return registered.some((uri) => {
      const have = loopbackRedirect(uri)
      return have !== undefined && have.hostname === want.hostname && have.pathname === want.pathname &&
        have.search === want.search
    })
    ? "loopbackPort"
    : "none"
}

/**
 * The scopes to register up front besides the requested ones: the protected resource's
 * `scopes_supported` (RFC 9728 §2), limited to those the authorization server lists when it
 * publishes `scopes_supported` (RFC 8414 §2). Registering them avoids a registration update or a
 * new registration at the first step-up on an authorization server that enforces the registered
 * `scope`; the authorization request still asks only for the selected scopes.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category client identity
 */
export const upfrontScopes = (found: Discovery.DiscoveryResult): ReadonlyArray<string> => {
  const offered = Option.match(found.protectedResource, { onNone: () => [], onSome: (prm) => prm.scopes_supported ?? [] })
  const allowed = found.authorizationServer.scopes_supported
  return allowed === undefined ? offered : offered.filter((s) => allowed.includes(s))
}

/**
 * Registers a new client for `redirectUri` with `scopes` plus {@link upfrontScopes}, and stores
 * it. A registration refused with the wider scope is tried once more with `scopes` alone.
 */
const registerNew = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  redirectUri: string,
  scopes: ReadonlyArray<string>
): Effect.Effect<ClientInformation, OAuthError> =>
  Effect.gen(function*() {
    const wide = FlowContext.union(scopes, upfrontScopes(found))
    const register = (list: ReadonlyArray<string>) =>
      ctx.registration.register({
        discovery: found,
        redirectUri,
        scope: list.length > 0 ? list.join(" ") : undefined
      })
    const registered = yield* register(wide).pipe(
      Effect.catchIf(
        (error) => error._tag === "OAuthRegistrationError" && error.reason === "Rejected" && wide.length > scopes.length,
        (error) =>
          Effect.logInfo(
            `Registration with the resource's scopes_supported was refused (${error.message}); registering with the requested scopes only`
          ).pipe(Effect.zipRight(register(scopes)))
      )
    )
    yield* Effect.logDebug(`Registered client ${registered.clientId} at ${found.issuer}`)
    if (registered.source !== "preregistered") yield* keep(ctx, "browser", registered)
    return registered
  })

/**
 * The client and the authorization session of one interactive sign-in.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export interface SignInClient {
  readonly session: Authorizer.AuthorizationSession
  readonly client: ClientInformation
  /**
   * Whether the authorizer should pre-flight the authorization request: only for a reused client
   * that no RFC 7592 read confirmed, or whose loopback port differs from the registered one.
   */
  readonly preflight: boolean
}

/**
 * One client identity per authorization server: picks the client of an authorization-code
 * sign-in and opens its session.
 *
 * - The session prefers the loopback port the stored client was registered with; on another
 *   port the stored client is still used (RFC 8252 §7.3: the server must accept any port) and
 *   the pre-flight finds out if this server does not (the sign-in then registers again, once).
 * - A stored client with RFC 7592 configuration is read first (or updated, when the sign-in
 *   needs scopes or a redirect URI it was not registered with); a client the server no longer
 *   knows is registered again before the browser opens.
 * - Without RFC 7592, a client registered without a scope now needed is registered again with
 *   the union of its scope and the new one.
 * - Nothing stored: a new registration (with {@link upfrontScopes}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2
 * @since 0.1.0
 * @category client identity
 */
export const forSignIn = (
  ctx: FlowContext.FlowContext,
  found: Discovery.DiscoveryResult,
  scopes: ReadonlyArray<string>
): Effect.Effect<SignInClient, OAuthError, Scope.Scope> =>
  Effect.gen(function*() {
    if (ctx.registration.isStatic) {
      const session = yield* Authorizer.openSession(ctx.authorizer)
      return { session, client: yield* preregistered(ctx, found, session.redirectUri), preflight: true }
    }
    const stored = yield* storedClient(ctx, found.issuer, "browser")
    const dynamic = Option.filter(stored, (c) => c.source === "dynamic")
    const session = yield* Authorizer.openSession(ctx.authorizer, {
      preferredRedirectUri: Option.getOrUndefined(dynamic)?.redirectUris.find((uri) => loopbackRedirect(uri) !== undefined)
    })
    if (Option.isSome(stored) && stored.value.source !== "dynamic") {
      yield* keep(ctx, "browser", stored.value)
      return { session, client: stored.value, preflight: true }
    }
    if (Option.isNone(stored)) {
      return { session, client: yield* registerNew(ctx, found, session.redirectUri, scopes), preflight: false }
    }
    const client = stored.value
    const registeredScopes = splitScope(client.scope)
    // A client registered without `scope` (or stored before it was kept) may use what the server allows.
    const missingScopes = client.scope === undefined ? [] : scopes.filter((s) => !registeredScopes.includes(s))
    const match = redirectUriMatch(client.redirectUris, session.redirectUri)
    const again = (why: string) =>
      Effect.logWarning(`Registering again at ${found.issuer}: ${why}`).pipe(
        Effect.zipRight(registerNew(ctx, found, session.redirectUri, FlowContext.union(registeredScopes, scopes))),
        Effect.map((registered): SignInClient => ({ session, client: registered, preflight: false }))
      )

    if (ClientConfiguration.isManaged(client)) {
      const options = { timeout: ctx.options.timeout, allowInsecure: ctx.options.allowInsecure }
      const provide = Effect.provideService(HttpClient.HttpClient, ctx.httpClient)
      const gone = (description: string | undefined) =>
        Effect.gen(function*() {
          yield* Effect.logWarning(
            `Client ${client.clientId} no longer exists at ${found.issuer} (${description ?? "RFC 7592"}); ` +
              "registering again before signing in"
          )
          yield* forgetStaleClient(ctx)
          const registered = yield* registerNew(ctx, found, session.redirectUri, scopes)
          return { session, client: registered, preflight: false } satisfies SignInClient
        })
      // RFC 7592 §2.1: confirms the client exists (instead of a pre-flight) and says what is registered.
      const read = yield* Effect.either(provide(ClientConfiguration.read(client, options)))
      if (Either.isLeft(read)) {
        if (read.left._tag === "ClientNotFound") return yield* gone(read.left.description)
        yield* Effect.logDebug(`RFC 7592 read of client ${client.clientId} inconclusive: ${read.left.message}`)
        if (missingScopes.length > 0 || match === "none") {
          return yield* again(`client ${client.clientId} could not be read to update it (${read.left.message})`)
        }
        yield* keep(ctx, "browser", client)
        return { session, client, preflight: true }
      }
      const current = read.right.client
      const missing = current.scope === undefined ? [] : scopes.filter((s) => !splitScope(current.scope).includes(s))
      const currentMatch = redirectUriMatch(current.redirectUris, session.redirectUri)
      if (missing.length === 0 && currentMatch !== "none") {
        yield* keep(ctx, "browser", current)
        return { session, client: current, preflight: currentMatch === "loopbackPort" }
      }
      yield* Effect.logInfo(
        `Updating client ${client.clientId} at ${found.issuer} (RFC 7592)` +
          (missing.length > 0 ? `: adding scope ${missing.join(" ")}` : "") +
          (currentMatch === "none" ? `: adding redirect URI ${session.redirectUri}` : "")
      )
      const updated = yield* Effect.either(provide(ClientConfiguration.updateConfiguration(read.right, {
        addScopes: missing,
        addRedirectUris: currentMatch === "none" ? [session.redirectUri] : []
      }, options)))
      if (Either.isRight(updated)) {
        yield* keep(ctx, "browser", updated.right.client)
        return { session, client: updated.right.client, preflight: currentMatch === "loopbackPort" }
      }
      if (updated.left._tag === "ClientNotFound") return yield* gone(updated.left.description)
      return yield* again(`updating client ${client.clientId} failed (${updated.left.message})`)
    }
    if (missingScopes.length > 0) {
      return yield* again(
        `client ${client.clientId} is registered for "${client.scope ?? ""}" without ${missingScopes.join(" ")}, ` +
          "and the server offers no RFC 7592 update"
      )
    }
    if (match === "none") return yield* again(`client ${client.clientId} is not registered for ${session.redirectUri}`)
    yield* keep(ctx, "browser", client)
    return { session, client, preflight: true }
  })
