/**
 * Server-side OAuth for `@effect/platform` HTTP servers: an embedded OAuth 2.1 authorization
 * server, token verification, and RFC 9728 / RFC 6750 protection of an MCP endpoint.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as AccessToken from "./AccessToken.js"

/**
 * @since 0.1.0
 */
export * as BearerAuth from "./BearerAuth.js"

/**
 * @since 0.1.0
 */
export * as ClientIdMetadata from "./ClientIdMetadata.js"

/**
 * @since 0.1.0
 */
export * as Consent from "./Consent.js"

/**
 * @since 0.1.0
 */
export * as Cors from "./Cors.js"

/**
 * @since 0.1.0
 */
export * as OAuthProvider from "./OAuthProvider.js"

/**
 * @since 0.1.0
 */
export * as OAuthProviderStore from "./OAuthProviderStore.js"

/**
 * @since 0.1.0
 */
export * as TokenVerifier from "./TokenVerifier.js"

/**
 * @since 0.1.0
 */
export * as TraceRedaction from "./TraceRedaction.js"

/**
 * @since 0.1.0
 */
export * as AuthProvider from "./AuthProvider.js"

/**
 * @since 0.1.0
 */
export * as McpEndpoint from "./McpEndpoint.js"

/**
 * @since 0.1.0
 */
export * as RemoteAuthProvider from "./RemoteAuthProvider.js"

/**
 * @since 0.1.0
 */
export * as JwtTokenVerifier from "./JwtTokenVerifier.js"

/**
 * RFC 7662 token introspection: a `TokenVerifier` that asks the authorization server.
 *
 * @since 0.1.0
 */
export * as IntrospectionTokenVerifier from "./IntrospectionTokenVerifier.js"

/**
 * An OAuth proxy for identity providers without dynamic client registration.
 *
 * @since 0.1.0
 */
export * as OAuthProxy from "./OAuthProxy.js"

/**
 * `@effect/ai`'s `McpServer` behind an `AuthProvider`: its RPC protocol over HTTP, protected, and
 * the verified token of each request for tool handlers.
 *
 * @since 0.1.0
 */
export * as AiMcpServer from "./AiMcpServer.js"
