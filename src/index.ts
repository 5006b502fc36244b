/**
 * effect-mcp-oauth: OAuth 2.1 for MCP clients as Effect services composed by Layers.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */

/** Obtaining the authorization code (RFC 6749 §4.1): headless, browser, manual. @since 0.1.0 */
export * as Authorizer from "./Authorizer.js"

/** RFC 7592 client configuration: read, update, delete a registered client. @since 0.1.0 */
export * as ClientConfiguration from "./ClientConfiguration.js"

/** Which client identity to present at an authorization server (SEP-2352, RFC 7591). @since 0.1.0 */
export * as ClientIdentity from "./ClientIdentity.js"

/** Which listed authorization server (RFC 9728 §2) to try first. @since 0.1.0 */
export * as AuthorizationServerSelection from "./AuthorizationServerSelection.js"

/** Credentials a redirect-following client below sent elsewhere: revoked and forgotten (RFC 7009). @since 0.1.0 */
export * as CredentialExposure from "./CredentialExposure.js"

/** RFC 8628 device authorization grant: sign in on another device. @since 0.1.0 */
export * as DeviceAuthorization from "./DeviceAuthorization.js"

/** RFC 9728 / RFC 8414 / OIDC metadata discovery. @since 0.1.0 */
export * as Discovery from "./Discovery.js"

/** RFC 9449 DPoP proofs. @since 0.1.0 */
export * as Dpop from "./Dpop.js"

/** Typed errors. @since 0.1.0 */
export * from "./Errors.js"

/** The shared state, options and services of the OAuth flows of one server. @since 0.1.0 */
export * as FlowContext from "./FlowContext.js"

/** The authenticated HttpClient middleware and `OAuthLayer`. @since 0.1.0 */
export * as HttpAuth from "./HttpAuth.js"

/** The orchestrator service. @since 0.1.0 */
export * as OAuth from "./OAuth.js"

/** The browser sign-in in progress, stored so that another process can take it over. @since 0.1.0 */
export * as PendingAuthorization from "./PendingAuthorization.js"

/** RFC 7636 PKCE and `state`. @since 0.1.0 */
export * as Pkce from "./Pkce.js"

/** Refresh (RFC 6749 §6) and the reaction to a 401. @since 0.1.0 */
export * as Refresh from "./Refresh.js"

/** Redis-backed token storage and connection. @since 0.1.0 */
export * as RedisStorage from "./RedisStorage.js"

/** Pre-registered, CIMD and RFC 7591 client registration. @since 0.1.0 */
export * as Registration from "./Registration.js"

/** Backoff for transient token-endpoint failures. @since 0.1.0 */
export * as RetryPolicy from "./RetryPolicy.js"

/** RFC 7009 token revocation. @since 0.1.0 */
export * as Revocation from "./Revocation.js"

/** Wire schemas and stored models. @since 0.1.0 */
export * as Schemas from "./Schemas.js"

/** Sign-in by authorization code, client credentials or a custom grant. @since 0.1.0 */
export * as SignIn from "./SignIn.js"

/** Sign-in progress for an app's own UI: the authorization URL, waiting, signed in, refreshed. @since 0.1.0 */
export * as SignInEvents from "./SignInEvents.js"

/** One refresh or sign-in at a time for all callers. @since 0.1.0 */
export * as SingleFlight from "./SingleFlight.js"

/** Step-up authorization on 403 insufficient_scope. @since 0.1.0 */
export * as StepUp from "./StepUp.js"

/** Test storage with seeding and an operations log. @since 0.1.0 */
export * as TestStorage from "./TestStorage.js"

/** Cross-process lock around refresh and sign-in. @since 0.1.0 */
export * as TokenLock from "./TokenLock.js"

/** Token endpoint requests and client authentication. @since 0.1.0 */
export * as TokenExchange from "./TokenExchange.js"

/** Token storage: memory, file system, any KeyValueStore. @since 0.1.0 */
export * as TokenStorage from "./TokenStorage.js"

export {
  /** @since 0.1.0 */
  checkIfAuthRequired
} from "./OAuth.js"

export {
  /** @since 0.1.0 */
  OAuthLayer,
  /** @since 0.1.0 */
  OAuthLayerConfig,
  /** @since 0.1.0 */
  OAuthLayerOptionsConfig
} from "./HttpAuth.js"

export type {
  /** @since 0.1.0 */
  OAuthLayerOptions
} from "./HttpAuth.js"

export type {
  /** @since 0.1.0 */
  AuthorizationResponse
} from "./Schemas.js"

export {
  /** @since 0.1.0 */
  ClientInformation,
  /** @since 0.1.0 */
  StoredDiscovery,
  /** @since 0.1.0 */
  StoredToken
} from "./Schemas.js"
