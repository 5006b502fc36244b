/**
 * A resource server that trusts known authorization servers (FastMCP's `RemoteAuthProvider`):
 * it issues nothing itself, tells clients where to sign in through RFC 9728 protected resource
 * metadata, and verifies the tokens those servers issue with a {@link TokenVerifier} (for example
 * `JwtTokenVerifier` against their JWKS).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AuthProvider from "./AuthProvider.js"
import { TokenVerifier } from "./TokenVerifier.js"

/**
 * Options of the remote provider.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface Options extends AuthProvider.ResourceOptions {
  /** Issuer identifiers of the trusted authorization servers (RFC 9728 `authorization_servers`). */
  readonly authorizationServers: ReadonlyArray<string>
}

/**
 * The provider: RFC 9728 metadata at `/.well-known/oauth-protected-resource{mcpPath}` and at the
 * root well-known URL, and the bearer middleware backed by `verifier`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options, verifier: TokenVerifier): AuthProvider.AuthProvider =>
  AuthProvider.make({ ...options, verifier })

/**
 * The provider as a layer, on the `TokenVerifier` in context.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AuthProvider.AuthProvider, never, TokenVerifier> =>
  Layer.effect(AuthProvider.AuthProvider, Effect.map(TokenVerifier, (verifier) => make(options, verifier)))
