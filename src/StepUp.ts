/**
 * Step-up authorization: a 403 `insufficient_scope` (RFC 6750 §3.1) names the scopes an
 * operation needs; the client re-authorizes for the union of the scopes it holds and those, once
 * for all concurrent callers, and the request is retried.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-challenge-handling
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { OAuthError } from "./Errors.js"
import * as FlowContext from "./FlowContext.js"
import type { BearerChallenge } from "./internal/wwwAuthenticate.js"
import * as Refresh from "./Refresh.js"
import * as SignIn from "./SignIn.js"

/**
 * Reacts to a 403 `insufficient_scope` for a request that carried `used`: unless another caller
 * already obtained a valid token holding the required scopes, signs in again for the union of
 * the held, configured / challenged and required scopes.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-challenge-handling
 * @since 0.1.0
 * @category step-up
 */
export const handleInsufficientScope = (
  ctx: FlowContext.FlowContext,
  used: Option.Option<string>,
  challenge: BearerChallenge
): Effect.Effect<void, OAuthError> =>
  Effect.gen(function*() {
    yield* Ref.set(ctx.lastChallenge, Option.some(challenge))
    const required = challenge.scope ?? []
    yield* ctx.singleFlight(
      Effect.gen(function*() {
        const stored = yield* FlowContext.reload(ctx)
        const now = yield* Clock.currentTimeMillis
        if (
          Option.isSome(stored) && !FlowContext.sameToken(stored, used) &&
          Refresh.isUsable(stored.value, now, ctx.refreshMarginMillis) &&
          required.every((s) => stored.value.scopes.includes(s))
        ) return stored.value
        return yield* SignIn.signIn(ctx, { challenge: Option.some(challenge), extraScopes: required, rediscover: false })
      })
    )
  }).pipe(Effect.asVoid, Effect.withSpan("OAuth.handleInsufficientScope"))
