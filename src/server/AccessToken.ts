/**
 * The claims a resource server learns from a verified access token, whatever verified it (the
 * embedded authorization server, a static table, or later a JWT/JWKS verifier).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A verified access token: who it was issued to (`clientId`), on whose behalf (`subject`), what
 * it allows (`scopes`), which resource it is audience-bound to (RFC 8707 `resource`) and when it
 * expires (absolute, epoch milliseconds; absent when the token does not say).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-1.2
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 * @since 0.1.0
 * @category models
 */
export class AccessToken extends Schema.Class<AccessToken>("AccessToken")({
  token: Schema.Redacted(Schema.String),
  clientId: Schema.String,
  subject: Schema.String,
  scopes: Schema.Array(Schema.String),
  resource: Schema.optional(Schema.String),
  expiresAt: Schema.optional(Schema.Number)
}) {
  /** Whether the token is past its expiry at `now` (epoch milliseconds). */
  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && this.expiresAt <= now
  }
  /** Whether the token grants every one of `required`. */
  hasScopes(required: ReadonlyArray<string>): boolean {
    return required.every((scope) => this.scopes.includes(scope))
  }
}
