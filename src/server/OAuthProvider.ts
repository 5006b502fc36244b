/**
 * An OAuth 2.1 authorization server as `@effect/platform` `HttpRouter` routes: RFC 8414
 * metadata, RFC 7591 dynamic registration with RFC 7592 client configuration (read, update,
 * delete with the registration access token), the authorization endpoint with PKCE `S256` and an
 * injectable consent step, the token endpoint (authorization code, refresh with rotation and
 * reuse detection, client credentials), RFC 7009 revocation and RFC 7662 introspection. Tokens are opaque random
 * strings kept in an {@link OAuthProviderStore}; a resource server in the same process verifies
 * them with {@link OAuthProvider.verifyAccessToken}.
 *
 * It is the authorization server of the embedded demo and of every test in this repository.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { AccessToken } from "./AccessToken.js"
import * as Consent from "./Consent.js"
import * as Cors from "./Cors.js"
import { randomToken } from "./internal/crypto.js"
import { authorizationEndpoint, consentEndpoint } from "./internal/provider/authorization.js"
import { GRANT_TYPES } from "./internal/provider/config.js"
import type { ProviderConfig } from "./internal/provider/config.js"
import {
  deleteClientEndpoint,
  readClientEndpoint,
  updateClientEndpoint
} from "./internal/provider/clientConfiguration.js"
import { type Issued, mintTokens, verifyAccessToken } from "./internal/provider/issuance.js"
import { introspectionEndpoint } from "./internal/provider/introspection.js"
import { metadataDocument, metadataEndpoint } from "./internal/provider/metadata.js"
import { makeRegistrationGuard, registerClient, registrationEndpoint } from "./internal/provider/registration.js"
import { revocationEndpoint, revokeOwned } from "./internal/provider/revocation.js"
import { tokenEndpoint } from "./internal/provider/token.js"
import type { ClientAuthMethod, RegisteredClient } from "./OAuthProviderStore.js"
import { layerMemory as storeLayerMemory, OAuthProviderStore } from "./OAuthProviderStore.js"

/**
 * Options of the authorization server.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The issuer identifier (RFC 8414 §2): an `http(s)` URL without query or fragment, possibly
   * with a path (`http://127.0.0.1:8080/tenant1`). Endpoints live under that path; the metadata
   * is served at `/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1).
   */
  readonly issuer: string
  /** Lifetime of access tokens (default 1 hour). An effect is evaluated at every issuance. */
  readonly accessTokenTtl?: Duration.DurationInput | Effect.Effect<Duration.DurationInput> | undefined
  /** Lifetime of refresh tokens (default 30 days). */
  readonly refreshTokenTtl?: Duration.DurationInput | undefined
  /**
   * How long a rotated refresh token may still be presented (default 0: any reuse revokes the
   * whole grant, OAuth 2.1 §4.3.1). A few seconds tolerates clients that refresh twice at once
   * or lose a response — the "reuse interval" / "grace period" of hosted authorization servers.
   */
  readonly refreshTokenReuseInterval?: Duration.DurationInput | undefined
  /** Lifetime of authorization codes (default 60 seconds). */
  readonly authorizationCodeTtl?: Duration.DurationInput | undefined
  /** `scopes_supported`; when set, other scopes are refused with `invalid_scope`. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** Advertise `client_id_metadata_document_supported` (default `false`). */
  readonly clientIdMetadataDocumentSupported?: boolean | undefined
  /**
   * Resolves a URL-formatted `client_id` to a client when CIMD is supported (see
   * `ClientIdMetadata.resolver`). Without it, URL client ids are unknown like any other.
   */
  readonly resolveClientIdMetadataDocument?:
    | ((clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>)
    | undefined
  /** `token_endpoint_auth_methods_supported` (default `none`, `client_secret_basic`, `client_secret_post`). */
  readonly tokenEndpointAuthMethodsSupported?: ReadonlyArray<ClientAuthMethod> | undefined
  /** The consent step (default {@link Consent.autoApprove} as `"test-user"`). */
  readonly consent?: Consent.ConsentStep | undefined
  /** Send RFC 9207 `iss` on authorization responses and advertise it (default `true`). */
  readonly issuerParameter?: boolean | undefined
  /** When set, the only `resource` values (RFC 8707) tokens may be bound to; others get `invalid_target`. */
  readonly allowedResources?: ReadonlyArray<string> | undefined
  /** Largest accepted request body in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number | undefined
  /**
   * Bounds on dynamic registration (RFC 7591 §3), so that an open registration endpoint cannot
   * fill the store: at most `perAddress` accepted registrations per `window` from one remote
   * address (then 429 `temporarily_unavailable` with `Retry-After`; default 30 per minute), and
   * at most `maxClients` clients registered dynamically by this process (then 400
   * `invalid_client_metadata`; default 10 000). `false` turns both off.
   */
  readonly registrationLimit?:
    | {
      readonly perAddress?: number | undefined
      readonly window?: Duration.DurationInput | undefined
      readonly maxClients?: number | undefined
    }
    | false
    | undefined
  /**
   * Cross-origin access for browser-based clients to the registration (and client
   * configuration), token and revocation endpoints (default {@link Cors.anyOrigin}: any origin,
   * never with credentials — these endpoints read no cookie, a client proves itself with the
   * request's own code, PKCE verifier, refresh token or secret). A list or a predicate restricts
   * the origins; `false` turns CORS off there. The metadata documents always allow any origin;
   * the authorization and consent endpoints are navigations and never CORS-readable.
   */
  readonly cors?: Cors.Options | false | undefined
}

/**
 * The URLs of the server's endpoints, derived from the issuer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export interface Endpoints {
  readonly issuer: string
  /** The RFC 8414 §3.1 metadata URL (`/.well-known/oauth-authorization-server` + issuer path). */
  readonly metadata: string
  readonly authorization: string
  readonly consent: string
  readonly token: string
  readonly registration: string
  readonly revocation: string
  /** The RFC 7662 introspection endpoint. */
  readonly introspection: string
}

/**
 * Tokens minted directly (for tests and tools), bypassing the authorization endpoint.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category models
 */
export type IssuedToken = Issued

/**
 * A client to register directly (pre-registration), bypassing RFC 7591.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category models
 */
export interface ClientRegistration {
  /** Default: a random id. */
  readonly clientId?: string | undefined
  /** Default: a random secret, unless the method is `none`. */
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  /** Default `client_secret_basic` (RFC 7591 §2). */
  readonly tokenEndpointAuthMethod?: ClientAuthMethod | undefined
  readonly redirectUris?: ReadonlyArray<string> | undefined
  /** Default `authorization_code` and `refresh_token`. */
  readonly grantTypes?: ReadonlyArray<string> | undefined
  readonly scope?: string | undefined
  readonly clientName?: string | undefined
}

/**
 * Input of {@link OAuthProvider.issueToken}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category models
 */
export interface IssueTokenInput {
  readonly clientId: string
  readonly subject?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly resource?: string | undefined
  /** Default: the server's access token lifetime. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Also issue a refresh token (default `false`). */
  readonly refreshToken?: boolean | undefined
}

/**
 * The authorization server: its routes, its metadata, and operations for a resource server in the
 * same process (`verifyAccessToken`) and for tests (`registerClient`, `issueToken`).
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category models
 */
export interface OAuthProvider {
  readonly issuer: string
  readonly endpoints: Endpoints
  /** The RFC 8414 §2 metadata document served by the metadata routes. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** Every route of the server; serve it with `HttpServer.serve` or mount it next to other routes. */
  readonly router: HttpRouter.HttpRouter
  readonly store: OAuthProviderStore
  /** The access token's claims, or `None` when it is unknown, revoked or expired (RFC 7662 §2.2 semantics). */
  readonly verifyAccessToken: (token: string) => Effect.Effect<Option.Option<AccessToken>>
  readonly registerClient: (registration: ClientRegistration) => Effect.Effect<RegisteredClient>
  readonly issueToken: (input: IssueTokenInput) => Effect.Effect<IssuedToken>
  /** Revokes an access token, or a refresh token together with its whole grant (RFC 7009 §2.1). */
  readonly revokeToken: (token: string) => Effect.Effect<void>
}

/**
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category tags
 */
export const OAuthProvider: Context.Tag<OAuthProvider, OAuthProvider> = Context.GenericTag<OAuthProvider>(
  "effect-mcp-oauth/server/OAuthProvider"
)

/**
 * The grant types the server implements.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category constants
 */
export const grantTypesSupported: ReadonlyArray<string> = GRANT_TYPES

const DEFAULT_AUTH_METHODS: ReadonlyArray<ClientAuthMethod> = ["none", "client_secret_basic", "client_secret_post"]

/**
 * The endpoint URLs of an issuer. The metadata URL inserts the well-known segment between the
 * host and the issuer's path.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1
 * @since 0.1.0
 * @category constructors
 */
export const endpointsOf = (issuer: string): Endpoints => {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, "")
  const base = `${url.protocol}//${url.host}${path}`
  return {
    issuer: base,
    metadata: `${url.protocol}//${url.host}/.well-known/oauth-authorization-server${path}`,
    authorization: `${base}/authorize`,
    consent: `${base}/authorize/consent`,
    token: `${base}/token`,
    registration: `${base}/register`,
    revocation: `${base}/revoke`,
    introspection: `${base}/introspect`
  }
}

/** The options resolved once, with their defaults: what every endpoint reads. */
const providerConfig = (options: Options, store: OAuthProviderStore, endpoints: Endpoints): ProviderConfig => ({
  issuer: endpoints.issuer,
  consentUrl: endpoints.consent,
  store,
  authMethods: options.tokenEndpointAuthMethodsSupported ?? DEFAULT_AUTH_METHODS,
  sendIss: options.issuerParameter ?? true,
  maxBody: options.maxBodyBytes ?? 64 * 1024,
  consent: options.consent ?? Consent.autoApprove(),
  codeTtlMillis: toMillis(options.authorizationCodeTtl ?? Duration.seconds(60)),
  refreshTtlMillis: toMillis(options.refreshTokenTtl ?? Duration.days(30)),
  refreshReuseMillis: toMillis(options.refreshTokenReuseInterval ?? Duration.zero),
  accessTtlMillis: Effect.map(
    Effect.isEffect(options.accessTokenTtl) ?
      options.accessTokenTtl :
      Effect.succeed(options.accessTokenTtl ?? Duration.hours(1)),
    toMillis
  ),
  scopesSupported: options.scopesSupported,
  allowedResources: options.allowedResources,
  clientIdMetadataDocumentSupported: options.clientIdMetadataDocumentSupported ?? false,
  resolveClientIdMetadataDocument: options.resolveClientIdMetadataDocument,
  registrationGuard: makeRegistrationGuard(
    options.registrationLimit === false ? undefined : {
      perAddress: options.registrationLimit?.perAddress ?? 30,
      windowMillis: toMillis(options.registrationLimit?.window ?? Duration.minutes(1)),
      maxClients: options.registrationLimit?.maxClients ?? 10_000
    }
  )
})

/**
 * The routes: the RFC 8414 metadata (any origin), the endpoints clients call from scripts (CORS
 * as configured), and the two the user agent navigates to (no CORS).
 */
const routes = (
  options: Options,
  config: ProviderConfig,
  metadata: Readonly<Record<string, unknown>>
): HttpRouter.HttpRouter => {
  const issuerPath = new URL(config.issuer).pathname.replace(/\/+$/, "")
  const at = (path: string): HttpRouter.PathInput => `/${path.replace(/^\/+/, "")}`
  // No `/.well-known/openid-configuration`: OpenID Connect Discovery requires `jwks_uri`,
  // `subject_types_supported` and `id_token_signing_alg_values_supported`, and this server
  // issues no ID tokens and publishes no keys — an RFC 8414 document there would be rejected by
  // clients that validate it as OIDC, and a partial OIDC one would be a promise not kept.
  const metadataRoutes = HttpRouter.empty.pipe(
    HttpRouter.get(at(`/.well-known/oauth-authorization-server${issuerPath}`), metadataEndpoint(metadata)),
    Cors.router(Cors.anyOrigin)
  )
  const clientRoutes = HttpRouter.empty.pipe(
    HttpRouter.post(at(`${issuerPath}/register`), registrationEndpoint(config)),
    HttpRouter.get(at(`${issuerPath}/register/:clientId`), readClientEndpoint(config)),
    HttpRouter.put(at(`${issuerPath}/register/:clientId`), updateClientEndpoint(config)),
    HttpRouter.del(at(`${issuerPath}/register/:clientId`), deleteClientEndpoint(config)),
    HttpRouter.post(at(`${issuerPath}/token`), tokenEndpoint(config)),
    HttpRouter.post(at(`${issuerPath}/revoke`), revocationEndpoint(config)),
    HttpRouter.post(at(`${issuerPath}/introspect`), introspectionEndpoint(config)),
    Cors.router(options.cors ?? Cors.anyOrigin)
  )
  const userAgentRoutes = HttpRouter.empty.pipe(
    HttpRouter.get(at(`${issuerPath}/authorize`), authorizationEndpoint(config)),
    HttpRouter.post(at(`${issuerPath}/authorize/consent`), consentEndpoint(config))
  )
  return HttpRouter.concatAll(metadataRoutes, clientRoutes, userAgentRoutes)
}

/**
 * Builds the authorization server on a store. Each endpoint lives in its own module
 * (`internal/provider/`: metadata, registration, client configuration (RFC 7592), authorization
 * + consent, token, revocation, introspection);
 * this function resolves the options once and routes the endpoints.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<OAuthProvider, never, OAuthProviderStore> =>
  Effect.gen(function*() {
    const store = yield* OAuthProviderStore
    const endpoints = endpointsOf(options.issuer)
    const config = providerConfig(options, store, endpoints)
    const metadata = metadataDocument({
      endpoints,
      scopesSupported: options.scopesSupported,
      authMethods: config.authMethods,
      sendIss: config.sendIss,
      clientIdMetadataDocumentSupported: config.clientIdMetadataDocumentSupported
    })

    return OAuthProvider.of({
      issuer: config.issuer,
      endpoints,
      metadata,
      router: routes(options, config, metadata),
      store,
      verifyAccessToken: Effect.fn("OAuthProvider.verifyAccessToken")((token: string) =>
        verifyAccessToken(config, token)
      ),
      registerClient: Effect.fn("OAuthProvider.registerClient")((registration: ClientRegistration) =>
        registerClient(config, registration)
      ),
      issueToken: Effect.fn("OAuthProvider.issueToken")((input: IssueTokenInput) =>
        mintTokens(config, {
          clientId: input.clientId,
          subject: input.subject ?? "test-user",
          scopes: input.scopes ?? [],
          resource: input.resource,
          familyId: randomToken(16),
          refresh: input.refreshToken ?? false,
          ttlMillis: input.ttl === undefined ? undefined : toMillis(input.ttl)
        })
      ),
      revokeToken: Effect.fn("OAuthProvider.revokeToken")((token: string) => revokeOwned(config, undefined, token))
    })
  })

const toMillis = (duration: Duration.DurationInput): number => Duration.toMillis(Duration.decode(duration))

/**
 * The authorization server as a layer, on the {@link OAuthProviderStore} found in context.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<OAuthProvider, never, OAuthProviderStore> =>
  Layer.effect(OAuthProvider, make(options))

/**
 * The authorization server with an in-memory store.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options): Layer.Layer<OAuthProvider> =>
  layer(options).pipe(Layer.provide(storeLayerMemory))
