/**
 * An `@effect/ai` `McpServer` behind the library's server side: the RPC protocol its
 * `McpServer.layer` runs on, served over HTTP (the JSON-RPC wire of `McpServer.layerHttp`) with
 * the MCP endpoint behind an {@link AuthProvider}'s bearer middleware and the provider's routes
 * (RFC 9728 metadata; the authorization server's own endpoints when it is embedded or a proxy)
 * next to it.
 *
 * ```ts
 * McpServer.layer({ name: "my-server", version: "1.0.0" }).pipe(
 *   Layer.provide(AiMcpServer.layerProtocolHttp({ path: "/mcp" })),
 *   Layer.provide(AuthProvider.layerOAuthProvider())
 * )
 * ```
 *
 * Tool handlers read the verified token of the request that called them with
 * {@link accessToken}. Each HTTP request carries its own: the bearer middleware provides it to
 * the request's fiber, and `@effect/rpc` runs the handler with that fiber's context, so
 * concurrent requests of different users never see each other's token (nothing is shared
 * between requests).
 *
 * This module imports nothing of `@effect/ai` at run time: it builds the `RpcServer.Protocol`
 * that `McpServer.layer` asks for.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { AccessToken } from "./AccessToken.js"
import { AuthProvider } from "./AuthProvider.js"
import { AuthenticatedToken } from "./BearerAuth.js"

/**
 * Options of {@link layerProtocolHttp}.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category models
 */
export interface ProtocolOptions {
  /**
   * The path of the MCP endpoint on the provider's base URL; the resource identifier (RFC 8707,
   * RFC 9728 `resource`) is `baseUrl + path`.
   */
  readonly path: `/${string}`
}

/**
 * The router the endpoint and the auth routes are added to: `HttpRouter.Default` (serve it with
 * `HttpRouter.Default.serve()`), or a router tag of your own.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category models
 */
export type RouterTag<I, E = unknown, R = never> = HttpRouter.HttpRouter.TagClass<I, string, E, R>

const methodNotAllowed = HttpServerResponse.text("Method Not Allowed", { status: 405, headers: { allow: "POST" } })

/**
 * The protocol and its routes: `POST {path}` is the RPC HTTP app behind the bearer middleware,
 * other methods there answer 405 (the server keeps no sessions and opens no server-initiated
 * stream, Streamable HTTP §"Listening for messages"), after the same bearer check.
 */
const makeProtocol = <I, E, R>(routerTag: RouterTag<I, E, R>, options: ProtocolOptions) =>
  Effect.gen(function*() {
    const auth = yield* AuthProvider
    const router = yield* routerTag
    const { httpApp, protocol } = yield* RpcServer.makeProtocolWithHttpApp
    const endpoint = Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => request.method === "POST" ? httpApp : Effect.succeed(methodNotAllowed)
    )
    yield* router.concat(auth.routes(options.path))
    yield* router.all(options.path, auth.middleware(options.path)(endpoint))
    return protocol
  })

/**
 * The `RpcServer.Protocol` for `@effect/ai`'s `McpServer.layer`, over HTTP with JSON-RPC (as
 * `McpServer.layerHttp`), protected by the {@link AuthProvider} in context:
 * - a request to the endpoint without a token answers 401 with
 *   `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1), an invalid or expired one
 *   401 `invalid_token`, one without the provider's required scopes 403 `insufficient_scope`;
 * - the provider's routes (the RFC 9728 document, and the authorization server's endpoints
 *   when the provider is the embedded `OAuthProvider` or an `OAuthProxy`) are added to the same
 *   router;
 * - tool and resource handlers read the request's verified token with {@link accessToken}.
 *
 * The routes go on `HttpRouter.Default` unless `routerTag` names another router; serve it with
 * `HttpRouter.Default.serve()` (or your tag's `serve()`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-flow-steps
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category layers
 */
export function layerProtocolHttp(
  options: ProtocolOptions
): Layer.Layer<RpcServer.Protocol, never, AuthProvider>
export function layerProtocolHttp<I, E, R>(
  options: ProtocolOptions & { readonly routerTag: RouterTag<I, E, R> }
): Layer.Layer<RpcServer.Protocol, never, AuthProvider>
export function layerProtocolHttp<I, E, R>(
  options: ProtocolOptions & { readonly routerTag?: RouterTag<I, E, R> | undefined }
): Layer.Layer<RpcServer.Protocol, never, AuthProvider> {
  return (options.routerTag === undefined ?
    protocolOn(HttpRouter.Default, options) :
    protocolOn(options.routerTag, options)).pipe(Layer.provide(RpcSerialization.layerJsonRpc()))
}

const protocolOn = <I, E, R>(tag: RouterTag<I, E, R>, options: ProtocolOptions) =>
  Layer.effect(RpcServer.Protocol, makeProtocol(tag, options)).pipe(Layer.provide(tag.Live))

/**
 * The verified access token of the MCP request being handled (its `subject`, `scopes`,
 * `clientId`, `resource`), for tool and resource handlers of an `McpServer` served by
 * {@link layerProtocolHttp}. It dies when no token is there: the handler runs outside a
 * protected endpoint (use `Effect.serviceOption(BearerAuth.AuthenticatedToken)` for a handler
 * that is also served unprotected).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#access-token-usage
 * @since 0.1.0
 * @category accessors
 */
export const accessToken: Effect.Effect<AccessToken> = Effect.flatMap(
  Effect.serviceOption(AuthenticatedToken),
  Option.match({
    onNone: () =>
      Effect.dieMessage(
        "AiMcpServer.accessToken: no verified access token; the handler is not running behind AiMcpServer.layerProtocolHttp"
      ),
    onSome: Effect.succeed
  })
)
