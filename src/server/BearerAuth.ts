/**
 * The resource-server side of MCP authorization: RFC 9728 protected resource metadata routes,
 * and a bearer-token middleware (RFC 6750) for an MCP endpoint that answers 401 / 403 with the
 * `WWW-Authenticate` challenges MCP clients discover the authorization server from.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { AccessToken } from "./AccessToken.js"
import { TokenVerifier } from "./TokenVerifier.js"

/**
 * The verified access token of the current request, provided by {@link middleware} to the
 * handler it protects.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category tags
 */
export class AuthenticatedToken extends Context.Tag("effect-mcp-oauth/server/AuthenticatedToken")<
  AuthenticatedToken,
  AccessToken
>() {}

/**
 * What the protected resource says about itself (RFC 9728 §2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface ProtectedResourceOptions {
  /** The resource identifier: the MCP endpoint's URL. */
  readonly resource: string
  /** Issuer identifiers of the authorization servers that issue tokens for it. */
  readonly authorizationServers: ReadonlyArray<string>
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  readonly resourceName?: string | undefined
}

/**
 * The RFC 9728 §3.1 metadata URL of a resource: the well-known segment inserted between the
 * host and the resource's path (`https://h/.well-known/oauth-protected-resource/mcp`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @since 0.1.0
 * @category constructors
 */
export const resourceMetadataUrl = (resource: string): string => {
  const url = new URL(resource)
  const path = url.pathname.replace(/\/+$/, "")
  return `${url.protocol}//${url.host}/.well-known/oauth-protected-resource${path}`
}

/**
 * The root RFC 9728 metadata URL of a resource's origin (`/.well-known/oauth-protected-resource`),
 * which MCP clients try when the path-based one is absent.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @since 0.1.0
 * @category constructors
 */
export const rootResourceMetadataUrl = (resource: string): string =>
  `${new URL(resource).origin}/.well-known/oauth-protected-resource`

/**
 * The RFC 9728 §2 metadata document.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category constructors
 */
export const metadataDocument = (options: ProtectedResourceOptions): Readonly<Record<string, unknown>> => ({
  resource: options.resource,
  authorization_servers: options.authorizationServers,
  ...(options.scopesSupported === undefined ? {} : { scopes_supported: options.scopesSupported }),
  bearer_methods_supported: ["header"],
  ...(options.resourceName === undefined ? {} : { resource_name: options.resourceName })
})

/**
 * Routes serving the metadata at the path-based URL (`/.well-known/oauth-protected-resource{path}`)
 * and, unless `paths` says otherwise, also at the root URL.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @since 0.1.0
 * @category routes
 */
export const metadataRoutes = (
  options: ProtectedResourceOptions,
  paths: "both" | "path" | "root" = "both"
): HttpRouter.HttpRouter => {
  const response = Effect.succeed(
    HttpServerResponse.unsafeJson(metadataDocument(options), { headers: { "access-control-allow-origin": "*" } })
  )
  const pathUrl = new URL(resourceMetadataUrl(options.resource)).pathname
  const rootPath = "/.well-known/oauth-protected-resource"
  let router = HttpRouter.empty
  if (paths !== "root") router = HttpRouter.get(router, `/${pathUrl.replace(/^\/+/, "")}`, response)
  if (paths !== "path" && pathUrl !== rootPath) router = HttpRouter.get(router, rootPath, response)
  return router
}

/**
 * Options of the bearer middleware.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category models
 */
export interface BearerOptions {
  /** The resource identifier tokens must be audience-bound to (RFC 8707). */
  readonly resource: string
  /**
   * The RFC 9728 metadata URL put in `WWW-Authenticate` as `resource_metadata` (§5.1). Default:
   * the path-based URL of `resource`; `false` leaves it out (clients then probe well-known URLs).
   */
  readonly resourceMetadataUrl?: string | false | undefined
  /** Scopes every request needs; a token without them gets 403 `insufficient_scope` (RFC 6750 §3.1). */
  readonly requiredScopes?: ReadonlyArray<string> | undefined
  /** The `scope` hint of 401 challenges (default: `requiredScopes`, if any). */
  readonly challengeScopes?: ReadonlyArray<string> | undefined
  /**
   * Refuse tokens that are not bound to any resource (default `true`). Tokens bound to a
   * *different* resource are always refused.
   */
  readonly requireAudience?: boolean | undefined
}

const quote = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`

/**
 * A `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, RFC 9728 §5.1).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category constructors
 */
export const challenge = (params: {
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
  readonly scope?: ReadonlyArray<string> | undefined
  readonly resourceMetadata?: string | undefined
}): string => {
  const parts: Array<string> = []
  if (params.error !== undefined) parts.push(`error=${quote(params.error)}`)
  if (params.errorDescription !== undefined) parts.push(`error_description=${quote(params.errorDescription)}`)
  if (params.scope !== undefined && params.scope.length > 0) parts.push(`scope=${quote(params.scope.join(" "))}`)
  if (params.resourceMetadata !== undefined) parts.push(`resource_metadata=${quote(params.resourceMetadata)}`)
  return parts.length === 0 ? "Bearer" : `Bearer ${parts.join(", ")}`
}

const sameResource = (a: string, b: string): boolean => {
  const canonical = (s: string) => {
    try {
      const u = new URL(s)
      return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}${u.search}`
    } catch {
      return s
    }
  }
  return canonical(a) === canonical(b)
}

/**
 * Protects an HTTP app with bearer tokens (RFC 6750 §2.1):
 * - no token → 401 `Bearer resource_metadata="…"` (plus `scope` when configured);
 * - an unknown, expired or foreign-audience token → 401 with `error="invalid_token"`;
 * - a malformed `Authorization: Bearer` header → 400 `invalid_request`;
 * - a token without the required scopes → 403 `error="insufficient_scope"`;
 * - otherwise the app runs with the token as {@link AuthenticatedToken}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category middleware
 */
export const middleware = (options: BearerOptions) =>
<E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, Exclude<R, AuthenticatedToken> | TokenVerifier | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const verifier = yield* TokenVerifier
    const metadataUrl = options.resourceMetadataUrl === false ?
      undefined :
      options.resourceMetadataUrl ?? resourceMetadataUrl(options.resource)
    const required = options.requiredScopes ?? []
    const hint = options.challengeScopes ?? required
    const deny = (status: number, error: string | undefined, description: string | undefined, scope = hint) =>
      Effect.succeed(
        HttpServerResponse.unsafeJson(
          error === undefined ? { error: "unauthorized", error_description: "a bearer token is required" } : {
            error,
            error_description: description
          },
          {
            status,
            headers: {
              "www-authenticate": challenge({
                error,
                errorDescription: description,
                scope,
                resourceMetadata: metadataUrl
              }),
              "cache-control": "no-store"
            }
          }
        )
      )

    const authorization = request.headers["authorization"]
    if (authorization === undefined || !/^bearer(\s|$)/i.test(authorization)) return yield* deny(401, undefined, undefined)
    const match = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization)
    if (match === null) return yield* deny(400, "invalid_request", "malformed bearer token")
    const verified = yield* verifier.verify(match[1]!).pipe(Effect.either)
    if (verified._tag === "Left") {
      // The verifier's detail (JWKS URLs, upstream statuses and bodies) is for the server's log,
      // never for the caller.
      yield* Effect.logWarning("bearer token verification unavailable").pipe(
        Effect.annotateLogs("detail", verified.left.detail)
      )
      return HttpServerResponse.unsafeJson(
        { error: "temporarily_unavailable", error_description: "token verification is temporarily unavailable" },
        { status: 503, headers: { "retry-after": "5", "cache-control": "no-store" } }
      )
    }
    if (Option.isNone(verified.right)) return yield* deny(401, "invalid_token", "the access token is invalid")
    const token = verified.right.value
    if (token.isExpired(yield* Clock.currentTimeMillis)) {
      return yield* deny(401, "invalid_token", "the access token expired")
    }
    const audienceOk = token.resource === undefined ?
      options.requireAudience === false :
      sameResource(token.resource, options.resource)
    if (!audienceOk) return yield* deny(401, "invalid_token", "the access token is not meant for this resource")
    if (!token.hasScopes(required)) {
      return yield* deny(403, "insufficient_scope", "the access token lacks a required scope", required)
    }
    return yield* Effect.provideService(app, AuthenticatedToken, token)
  })
