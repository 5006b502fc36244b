/**
 * An OAuth proxy for identity providers without dynamic client registration (FastMCP's
 * `OAuthProxy`, the TypeScript SDK's `ProxyOAuthServerProvider`): towards MCP clients it is an
 * authorization server — RFC 8414 metadata, RFC 7591 registration, `/authorize` with PKCE `S256`,
 * `/token` (authorization code, refresh with rotation), RFC 7009 `/revoke`, RFC 7662
 * `/introspect` — and towards the company's identity provider it is one pre-registered client.
 *
 * A sign-in: the MCP client registers and sends the user to `/authorize`; the proxy shows its
 * **own consent page** naming that client (the MCP security best practices require it of a proxy
 * with a static upstream client: otherwise a client registered by anyone would ride on the
 * user's earlier upstream consent — the confused deputy); the consent form only counts when
 * posted from the browser that loaded it. Approved, the browser goes upstream with the proxy's
 * client id, its own PKCE verifier and `state`; the upstream answers at the proxy's `/callback`,
 * the proxy redeems that code (learning who signed in from the ID token) and issues its **own**
 * code, then its own access and refresh tokens, bound to the MCP resource (RFC 8707). Upstream
 * tokens are not passed to the MCP client, nor kept.
 *
 * Everything the proxy remembers (clients, pending sign-ins, codes, tokens) lives in its
 * {@link OAuthProviderStore}, so instances sharing a store serve the same clients.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { AccessToken } from "./AccessToken.js"
import * as AuthProvider from "./AuthProvider.js"
import * as Consent from "./Consent.js"
import * as Cors from "./Cors.js"
import { authorizationEndpoint, consentEndpoint } from "./internal/provider/authorization.js"
import type { ProviderConfig } from "./internal/provider/config.js"
import { verifyAccessToken } from "./internal/provider/issuance.js"
import { introspectionEndpoint } from "./internal/provider/introspection.js"
import { metadataDocument, metadataEndpoint } from "./internal/provider/metadata.js"
import { makeRegistrationGuard, registrationEndpoint } from "./internal/provider/registration.js"
import { revocationEndpoint } from "./internal/provider/revocation.js"
import { tokenEndpoint } from "./internal/provider/token.js"
import { callbackEndpoint, discoverUpstream, redirectUpstream } from "./internal/provider/upstream.js"
import type { UpstreamConfig } from "./internal/provider/upstream.js"
import { isLoopbackRedirect } from "./internal/redirectUri.js"
import { endpointsOf } from "./OAuthProvider.js"
import type { Endpoints } from "./OAuthProvider.js"
import { OAuthProviderStore } from "./OAuthProviderStore.js"
import * as TokenVerifier from "./TokenVerifier.js"

/**
 * The upstream identity provider and the proxy's one client there. Its redirect URI at the
 * upstream must be the proxy's {@link OAuthProxy.callbackUrl} (`{issuer}/callback`). Either both
 * endpoints are given, or the `issuer`'s metadata (RFC 8414, else OpenID Connect Discovery) names
 * them, read at the first sign-in.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @since 0.1.0
 * @category models
 */
export type Upstream = UpstreamClient & (
  | { readonly issuer: string; readonly authorizationEndpoint?: undefined; readonly tokenEndpoint?: undefined }
  | {
    /** The upstream issuer: checked against RFC 9207 `iss` and the ID token's `iss` when set. */
    readonly issuer?: string | undefined
    readonly authorizationEndpoint: string
    readonly tokenEndpoint: string
  }
)

/**
 * The proxy's pre-registered client at the upstream.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2
 * @since 0.1.0
 * @category models
 */
export interface UpstreamClient {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Default `client_secret_basic` with a secret, `none` without. */
  readonly tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post" | "none" | undefined
  /** Scopes asked upstream (default `openid`: the ID token says who signed in). */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** RFC 8707 `resource` to send upstream, if the upstream wants one. */
  readonly resource?: string | undefined
}

/**
 * Options of the proxy.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The proxy's own issuer identifier (usually the MCP server's origin). */
  readonly issuer: string
  /** The MCP server's URL: the only resource (RFC 8707) the proxy issues tokens for. */
  readonly resource: string
  readonly upstream: Upstream
  /**
   * Redirect URIs downstream clients may register besides loopback ones (which are always
   * allowed, on any port, RFC 8252 §7.3): exact strings or patterns.
   */
  readonly allowedRedirectUris?: ReadonlyArray<string | RegExp> | undefined
  /** `scopes_supported` of the proxy; other scopes are refused. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** Lifetime of the proxy's access tokens (default 1 hour). */
  readonly accessTokenTtl?: Duration.DurationInput | undefined
  /** Lifetime of its refresh tokens (default 30 days). */
  readonly refreshTokenTtl?: Duration.DurationInput | undefined
  /** Timeout of a request to the upstream token endpoint (default 10 seconds). */
  readonly upstreamTimeout?: Duration.DurationInput | undefined
  /** Cross-origin access to registration, token, revocation (default any origin, no credentials). */
  readonly cors?: Cors.Options | false | undefined
}

/**
 * The proxy: its routes, metadata and a verifier for the tokens it issues.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category models
 */
export interface OAuthProxy {
  readonly issuer: string
  readonly endpoints: Endpoints
  /** The URL the upstream redirects back to; register it with the upstream client. */
  readonly callbackUrl: string
  readonly metadata: Readonly<Record<string, unknown>>
  readonly router: HttpRouter.HttpRouter
  readonly store: OAuthProviderStore
  /** The claims of an access token the proxy issued, or `None`. */
  readonly verifyAccessToken: (token: string) => Effect.Effect<Option.Option<AccessToken>>
}

/**
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category tags
 */
export const OAuthProxy: Context.Tag<OAuthProxy, OAuthProxy> = Context.GenericTag<OAuthProxy>(
  "effect-mcp-oauth/server/OAuthProxy"
)

/** The cookie binding the consent form to the browser that loaded it. */
const CONSENT_COOKIE = "mcp_proxy_consent"

/** No client credentials grant: every token the proxy issues stands for a user signed in upstream. */
const PROXY_GRANT_TYPES: ReadonlyArray<string> = ["authorization_code", "refresh_token"]

const toMillis = (duration: Duration.DurationInput): number => Duration.toMillis(Duration.decode(duration))

/**
 * Whether a downstream client may register `uri`: loopback on any port (RFC 8252 §7.3), or a
 * configured string or pattern.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category validation
 */
export const redirectUriAllowed = (allowed: ReadonlyArray<string | RegExp>) => (uri: string): boolean => {
  try {
    if (isLoopbackRedirect(new URL(uri))) return true
  } catch {
    return false
  }
  return allowed.some((a) => typeof a === "string" ? a === uri : new RegExp(`^(?:${a.source})$`, a.flags).test(uri))
}

/** The upstream authorization server: its endpoints (configured, or discovered once) and this proxy's client there. */
const upstreamConfig = (options: Options, callbackUrl: string): Effect.Effect<UpstreamConfig> =>
  Effect.gen(function*() {
    const configured = options.upstream
    const secret = configured.clientSecret
    const http = { timeout: options.upstreamTimeout ?? Duration.seconds(10) }
    return {
      issuer: configured.issuer,
      endpoints: configured.authorizationEndpoint !== undefined
        ? Effect.succeed({
          authorizationEndpoint: configured.authorizationEndpoint,
          tokenEndpoint: configured.tokenEndpoint
        })
        : yield* discoverUpstream(configured.issuer, http),
      clientId: configured.clientId,
      clientSecret: secret,
      authMethod: configured.tokenEndpointAuthMethod ?? (secret === undefined ? "none" : "client_secret_basic"),
      scopes: configured.scopes ?? ["openid"],
      resource: configured.resource,
      callbackUrl,
      http
    }
  })

/**
 * The downstream authorization server the MCP clients see: every request is shown to the user
 * (no approval is remembered for a client), user grants only, redirect URIs restricted.
 */
const downstreamConfig = (options: Options, store: OAuthProviderStore, endpoints: Endpoints): ProviderConfig => ({
  issuer: endpoints.issuer,
  consentUrl: endpoints.consent,
  store,
  authMethods: ["none", "client_secret_basic", "client_secret_post"],
  sendIss: true,
  maxBody: 64 * 1024,
  consent: () => Effect.succeed(Consent.ConsentDecision.Prompt({ subject: "" })),
  codeTtlMillis: 60_000,
  refreshTtlMillis: toMillis(options.refreshTokenTtl ?? Duration.days(30)),
  refreshReuseMillis: 0,
  accessTtlMillis: Effect.succeed(toMillis(options.accessTokenTtl ?? Duration.hours(1))),
  scopesSupported: options.scopesSupported,
  allowedResources: [options.resource],
  clientIdMetadataDocumentSupported: false,
  resolveClientIdMetadataDocument: undefined,
  registrationGuard: makeRegistrationGuard({ perAddress: 30, windowMillis: 60_000, maxClients: 10_000 }),
  grantTypes: PROXY_GRANT_TYPES,
  redirectUriAllowed: redirectUriAllowed(options.allowedRedirectUris ?? []),
  consentCookie: CONSENT_COOKIE
})

/**
 * The routes: RFC 8414 metadata (any origin), the endpoints clients call from scripts (CORS as
 * configured), and the ones the user agent navigates to, the upstream's callback among them.
 */
const proxyRoutes = (
  options: Options,
  config: ProviderConfig,
  upstream: UpstreamConfig,
  httpClient: HttpClient.HttpClient,
  metadata: Readonly<Record<string, unknown>>
): HttpRouter.HttpRouter => {
  const issuerPath = new URL(config.issuer).pathname.replace(/\/+$/, "")
  const at = (path: string): HttpRouter.PathInput => `/${path.replace(/^\/+/, "")}`
  return HttpRouter.concatAll(
    HttpRouter.empty.pipe(
      HttpRouter.get(at(`/.well-known/oauth-authorization-server${issuerPath}`), metadataEndpoint(metadata)),
      Cors.router(Cors.anyOrigin)
    ),
    HttpRouter.empty.pipe(
      HttpRouter.post(at(`${issuerPath}/register`), registrationEndpoint(config)),
      HttpRouter.post(at(`${issuerPath}/token`), tokenEndpoint(config)),
      HttpRouter.post(at(`${issuerPath}/revoke`), revocationEndpoint(config)),
      HttpRouter.post(at(`${issuerPath}/introspect`), introspectionEndpoint(config)),
      Cors.router(options.cors ?? Cors.anyOrigin)
    ),
    HttpRouter.empty.pipe(
      HttpRouter.get(at(`${issuerPath}/authorize`), authorizationEndpoint(config)),
      HttpRouter.post(at(`${issuerPath}/authorize/consent`), consentEndpoint(config)),
      HttpRouter.get(
        at(`${issuerPath}/callback`),
        Effect.provideService(callbackEndpoint(config, upstream), HttpClient.HttpClient, httpClient)
      )
    )
  )
}

/**
 * Builds the proxy on the store in context, with the `HttpClient` it redeems upstream codes with.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<OAuthProxy, never, OAuthProviderStore | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const store = yield* OAuthProviderStore
    const httpClient = yield* HttpClient.HttpClient
    const endpoints = endpointsOf(options.issuer)
    const callbackUrl = `${endpoints.issuer}/callback`
    const upstream = yield* upstreamConfig(options, callbackUrl)
    const base = downstreamConfig(options, store, endpoints)
    // After the user's consent, the browser goes on to sign in upstream.
    const config: ProviderConfig = {
      ...base,
      afterConsent: (pending) =>
        Effect.provideService(redirectUpstream(base, upstream)(pending), HttpClient.HttpClient, httpClient)
    }
    const metadata = metadataDocument({
      endpoints,
      scopesSupported: options.scopesSupported,
      authMethods: config.authMethods,
      sendIss: true,
      clientIdMetadataDocumentSupported: false,
      grantTypes: PROXY_GRANT_TYPES
    })
    return OAuthProxy.of({
      issuer: config.issuer,
      endpoints,
      callbackUrl,
      metadata,
      router: proxyRoutes(options, config, upstream, httpClient, metadata),
      store,
      verifyAccessToken: Effect.fn("OAuthProxy.verifyAccessToken")((token: string) => verifyAccessToken(config, token))
    })
  })

/**
 * The proxy as a layer, on the store and `HttpClient` in context.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<OAuthProxy, never, OAuthProviderStore | HttpClient.HttpClient> =>
  Layer.effect(OAuthProxy, make(options))

/**
 * The MCP server's side of the proxy on one origin: RFC 9728 metadata naming the proxy, the
 * proxy's routes and metadata, and the bearer middleware verifying the proxy's own tokens (use it
 * with `AuthProvider.protect`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category constructors
 */
export const authProvider = (
  proxy: OAuthProxy,
  options: Partial<AuthProvider.ResourceOptions> = {}
): AuthProvider.AuthProvider => {
  const scopes = proxy.metadata["scopes_supported"]
  return AuthProvider.make({
    baseUrl: options.baseUrl ?? new URL(proxy.issuer).origin,
    scopesSupported: options.scopesSupported ??
      (Array.isArray(scopes) && scopes.every((s) => typeof s === "string") ? scopes : undefined),
    requiredScopes: options.requiredScopes,
    resourceName: options.resourceName,
    requireAudience: options.requireAudience,
    cors: options.cors,
    authorizationServers: [proxy.issuer],
    verifier: TokenVerifier.make(proxy.verifyAccessToken),
    extraWellKnownRoutes: HttpRouter.empty.pipe(
      HttpRouter.get(
        `/${new URL(proxy.endpoints.metadata).pathname.replace(/^\/+/, "")}`,
        Effect.succeed(HttpServerResponse.unsafeJson(proxy.metadata, { headers: { "access-control-allow-origin": "*" } }))
      ),
      Cors.router(Cors.anyOrigin)
    ),
    extraRoutes: proxy.router
  })
}

/**
 * {@link authProvider} as a layer, on the `OAuthProxy` in context: with {@link layer} below it,
 * the whole proxy is built from layers (`AiMcpServer.layerProtocolHttp` or `AuthProvider.protect`
 * above it).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category layers
 */
export const layerAuthProvider = (
  options: Partial<AuthProvider.ResourceOptions> = {}
): Layer.Layer<AuthProvider.AuthProvider, never, OAuthProxy> =>
  Layer.effect(AuthProvider.AuthProvider, Effect.map(OAuthProxy, (proxy) => authProvider(proxy, options)))
