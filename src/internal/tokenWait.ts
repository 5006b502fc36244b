/**
 * The time a request spends obtaining its token — a refresh, a discovery, a registration, a
 * sign-in that waits for the user in a browser or at a paste-back prompt — is not time the
 * server takes to answer. The OAuth middleware runs each such wait through the wrapper found in
 * {@link currentTokenWait}; a caller that times the server's answer (`McpClient`'s request
 * timeout) installs one that stops its clock meanwhile. Those waits have their own bounds: the
 * OAuth HTTP timeout per call and the authorizer's sign-in timeout (5 minutes by default).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"

/** Wraps one wait for a token. @internal */
export interface TokenWait {
  <A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
}

/** The wrapper of the current fiber; by default none. @internal */
export const currentTokenWait: FiberRef.FiberRef<TokenWait> = globalValue(
  Symbol.for("effect-mcp-oauth/internal/tokenWait"),
  () => FiberRef.unsafeMake<TokenWait>((wait) => wait)
)

/** Runs `wait` through the current fiber's wrapper. @internal */
export const tokenWait = <A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(currentTokenWait), (wrap) => wrap(wait))
