/**
 * How a resource server learns what an access token means. The interface is deliberately
 * small — a token in, its verified claims (or nothing) out — so that an introspecting,
 * in-process or JWT/JWKS-backed verifier can all provide it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AccessToken } from "./AccessToken.js"
import { OAuthProvider } from "./OAuthProvider.js"

/**
 * The verifier could not decide (for example, a key set or an introspection endpoint was
 * unreachable). Distinct from "invalid token", which is `Option.none()`; a resource server answers
 * it with 503 rather than 401.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category errors
 */
export class TokenVerifierError extends Schema.TaggedError<TokenVerifierError>(
  "effect-mcp-oauth/server/TokenVerifierError"
)("TokenVerifierError", { detail: Schema.String }) {
  override get message(): string {
    return `Token verification is unavailable: ${this.detail}`
  }
}

/**
 * Verifies bearer tokens (RFC 6750 §2.1): `Some` claims for a valid token, `None` for an unknown,
 * revoked, malformed or expired one.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category models
 */
export interface TokenVerifier {
  readonly verify: (token: string) => Effect.Effect<Option.Option<AccessToken>, TokenVerifierError>
}

/**
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category tags
 */
export const TokenVerifier: Context.Tag<TokenVerifier, TokenVerifier> = Context.GenericTag<TokenVerifier>(
  "effect-mcp-oauth/server/TokenVerifier"
)

/**
 * A verifier from a verification function.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  verify: (token: string) => Effect.Effect<Option.Option<AccessToken>, TokenVerifierError>
): TokenVerifier => TokenVerifier.of({ verify: (token) => Effect.withSpan(verify(token), "TokenVerifier.verify") })

/**
 * A verifier backed by the embedded authorization server in the same process.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category layers
 */
export const layerOAuthProvider: Layer.Layer<TokenVerifier, never, OAuthProvider> = Layer.effect(
  TokenVerifier,
  Effect.map(OAuthProvider, (provider) => make(provider.verifyAccessToken))
)

/**
 * The claims of a token in a static table. `expiresAt` is epoch milliseconds.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 * @since 0.1.0
 * @category models
 */
export interface StaticClaims {
  readonly clientId?: string | undefined
  readonly subject?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly resource?: string | undefined
  readonly expiresAt?: number | undefined
}

/**
 * A verifier with a fixed token → claims table (for tests and development). Expired entries
 * verify as `None`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category constructors
 */
export const makeStatic = (tokens: Readonly<Record<string, StaticClaims>>): TokenVerifier => {
  const table = new Map(Object.entries(tokens))
  return make((token) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const claims = table.get(token)
      if (claims === undefined || (claims.expiresAt !== undefined && claims.expiresAt <= now)) {
        return Option.none()
      }
      return Option.some(
        new AccessToken({
          token: Redacted.make(token),
          clientId: claims.clientId ?? "static-client",
          subject: claims.subject ?? "static-user",
          scopes: claims.scopes ?? [],
          resource: claims.resource,
          expiresAt: claims.expiresAt
        })
      )
    })
  )
}

/**
 * {@link makeStatic} as a layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @since 0.1.0
 * @category layers
 */
export const layerStatic = (tokens: Readonly<Record<string, StaticClaims>>): Layer.Layer<TokenVerifier> =>
  Layer.succeed(TokenVerifier, makeStatic(tokens))
