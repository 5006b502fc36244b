/**
 * What protecting an MCP endpoint takes, in one interface (FastMCP's `AuthProvider`): verify a
 * bearer token, serve the discovery documents, and guard the endpoint. Two implementations:
 * {@link RemoteAuthProvider} (a resource server that trusts external authorization servers) and
 * {@link fromOAuthProvider} (the embedded authorization server and the resource server in one).
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { AccessToken } from "./AccessToken.js"
import * as BearerAuth from "./BearerAuth.js"
import * as Cors from "./Cors.js"
import { OAuthProvider } from "./OAuthProvider.js"
import * as TokenVerifier from "./TokenVerifier.js"

/**
 * The auth side of an MCP server. `mcpPath` is the path of the MCP endpoint on the server's base
 * URL; the resource identifier (RFC 8707, RFC 9728 `resource`) is `baseUrl + mcpPath`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface AuthProvider {
  /** The server's base URL (`http://127.0.0.1:8080`). */
  readonly baseUrl: string
  /** `Some` claims for a valid token; `None` for an unknown, expired or malformed one (RFC 6750 §3.1). */
  readonly verifyToken: (token: string) => Effect.Effect<Option.Option<AccessToken>, TokenVerifier.TokenVerifierError>
  /** The resource identifier of the endpoint at `mcpPath`. */
  readonly resourceUrl: (mcpPath: string) => string
  /** Only the `/.well-known/…` documents (RFC 9728, and RFC 8414 when this server is also the AS). */
  readonly wellKnownRoutes: (mcpPath: string) => HttpRouter.HttpRouter
  /** Every auth route this server serves: the well-known documents plus any OAuth endpoints. */
  readonly routes: (mcpPath: string) => HttpRouter.HttpRouter
  /** The bearer middleware (RFC 6750) for the endpoint at `mcpPath`; see `BearerAuth.middleware`. */
  readonly middleware: (
    mcpPath: string
  ) => <E, R>(
    app: HttpApp.Default<E, R>
  ) => HttpApp.Default<E, Exclude<R, BearerAuth.AuthenticatedToken> | HttpServerRequest.HttpServerRequest>
}

/**
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category tags
 */
export const AuthProvider: Context.Tag<AuthProvider, AuthProvider> = Context.GenericTag<AuthProvider>(
  "effect-mcp-oauth/server/AuthProvider"
)

/**
 * What the resource server says and demands, shared by every provider.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface ResourceOptions {
  /** The base URL the MCP server is reached at (scheme, host, port, optional path prefix). */
  readonly baseUrl: string
  /** RFC 9728 `scopes_supported`. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** Scopes every request needs (403 `insufficient_scope` otherwise, RFC 6750 §3.1). */
  readonly requiredScopes?: ReadonlyArray<string> | undefined
  /** RFC 9728 `resource_name`. */
  readonly resourceName?: string | undefined
  /** Refuse tokens bound to no resource (default `true`). */
  readonly requireAudience?: boolean | undefined
  /**
   * Cross-origin access to the MCP endpoint for browser-based clients (default
   * {@link Cors.anyOrigin}: any origin, never with credentials — the endpoint reads bearer
   * tokens, never cookies). The preflight is answered before the bearer check; 401 and 403
   * challenges carry `Access-Control-Allow-Origin` and expose `WWW-Authenticate`. A list or a
   * predicate restricts the origins; `false` turns CORS off. The RFC 9728 document always allows
   * any origin.
   */
  readonly cors?: Cors.Options | false | undefined
}

/**
 * Options of {@link make}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions extends ResourceOptions {
  /** Issuer identifiers of the trusted authorization servers (RFC 9728 `authorization_servers`). */
  readonly authorizationServers: ReadonlyArray<string>
  readonly verifier: TokenVerifier.TokenVerifier
  /** Well-known routes of a co-hosted authorization server, added to {@link AuthProvider.wellKnownRoutes}. */
  readonly extraWellKnownRoutes?: HttpRouter.HttpRouter | undefined
  /** Other routes of a co-hosted authorization server, added to {@link AuthProvider.routes}. */
  readonly extraRoutes?: HttpRouter.HttpRouter | undefined
}

const trimSlashes = (s: string): string => s.replace(/\/+$/, "")

/**
 * A provider from a verifier and the authorization servers it trusts. The RFC 9728 document is
 * served at the path-scoped well-known URL of the endpoint and at the root well-known URL.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): AuthProvider => {
  const base = trimSlashes(options.baseUrl)
  const resourceUrl = (mcpPath: string): string => `${base}/${mcpPath.replace(/^\/+/, "")}`
  const protectedResource = (mcpPath: string): BearerAuth.ProtectedResourceOptions => ({
    resource: resourceUrl(mcpPath),
    authorizationServers: options.authorizationServers,
    scopesSupported: options.scopesSupported,
    resourceName: options.resourceName
  })
  const prmRoutes = (mcpPath: string) =>
    Cors.router(Cors.anyOrigin)(BearerAuth.metadataRoutes(protectedResource(mcpPath)))
  const cors = options.cors === undefined ? Cors.anyOrigin : options.cors
  const wellKnownRoutes = (mcpPath: string) => {
    const prm = prmRoutes(mcpPath)
    return options.extraWellKnownRoutes === undefined ? prm : HttpRouter.concat(prm, options.extraWellKnownRoutes)
  }
  const verifier = options.verifier
  return AuthProvider.of({
    baseUrl: base,
    verifyToken: verifier.verify,
    resourceUrl,
    wellKnownRoutes,
    routes: (mcpPath) =>
      options.extraRoutes === undefined ?
        wellKnownRoutes(mcpPath) :
        HttpRouter.concat(prmRoutes(mcpPath), options.extraRoutes),
    middleware: (mcpPath) => (app) => {
      const guarded = BearerAuth.middleware({
        resource: resourceUrl(mcpPath),
        requiredScopes: options.requiredScopes,
        requireAudience: options.requireAudience
      })(app).pipe(Effect.provideService(TokenVerifier.TokenVerifier, verifier))
      // Outside the bearer check: a preflight carries no token and must not meet a 401.
      return cors === false ? guarded : Cors.middleware(cors)(guarded)
    }
  })
}

/**
 * The embedded authorization server as the provider of an MCP server on the same origin: its
 * OAuth endpoints and RFC 8414 metadata are served next to the RFC 9728 document, and its tokens
 * are verified in process. `baseUrl` defaults to the issuer's origin.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category constructors
 */
export const fromOAuthProvider = (
  provider: OAuthProvider,
  options: Partial<ResourceOptions> = {}
): AuthProvider => {
  const metadata = Effect.succeed(
    HttpServerResponse.unsafeJson(provider.metadata, { headers: { "access-control-allow-origin": "*" } })
  )
  const pathOf = (url: string): HttpRouter.PathInput => `/${new URL(url).pathname.replace(/^\/+/, "")}`
  const asWellKnown = HttpRouter.empty.pipe(
    HttpRouter.get(pathOf(provider.endpoints.metadata), metadata),
    Cors.router(Cors.anyOrigin)
  )
  return make({
    baseUrl: options.baseUrl ?? new URL(provider.issuer).origin,
    scopesSupported: options.scopesSupported ?? scopesOf(provider.metadata),
    requiredScopes: options.requiredScopes,
    resourceName: options.resourceName,
    requireAudience: options.requireAudience,
    cors: options.cors,
    authorizationServers: [provider.issuer],
    verifier: TokenVerifier.make(provider.verifyAccessToken),
    extraWellKnownRoutes: asWellKnown,
    extraRoutes: provider.router
  })
}

const scopesOf = (metadata: Readonly<Record<string, unknown>>): ReadonlyArray<string> | undefined => {
  const scopes = metadata["scopes_supported"]
  return Array.isArray(scopes) && scopes.every((s) => typeof s === "string") ? scopes : undefined
}

/**
 * {@link fromOAuthProvider} as a layer, on the `OAuthProvider` in context.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category layers
 */
export const layerOAuthProvider = (
  options: Partial<ResourceOptions> = {}
): Layer.Layer<AuthProvider, never, OAuthProvider> =>
  Layer.effect(AuthProvider, Effect.map(OAuthProvider, (provider) => fromOAuthProvider(provider, options)))

/**
 * A router serving an MCP endpoint at `mcpPath` behind the provider's middleware (every method:
 * `POST`, `GET`, `DELETE` of Streamable HTTP), together with the provider's routes.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-flow-steps
 * @since 0.1.0
 * @category routes
 */
export const protect = <E, R>(
  provider: AuthProvider,
  mcpPath: string,
  app: HttpApp.Default<E, R>
): HttpRouter.HttpRouter<E, Exclude<R, BearerAuth.AuthenticatedToken> | HttpServerRequest.HttpServerRequest> => {
  const path: HttpRouter.PathInput = `/${new URL(provider.resourceUrl(mcpPath)).pathname.replace(/^\/+/, "")}`
  return HttpRouter.all(provider.routes(mcpPath), path, provider.middleware(mcpPath)(app))
}
