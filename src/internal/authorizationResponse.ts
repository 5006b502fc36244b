/**
 * Validation of the authorization response that arrives at the redirect URI
 * (RFC 6749 §4.1.2 / §4.1.2.1), with the `state` check of RFC 6749 §10.12 done in constant time
 * and the mix-up defence of RFC 9207 §2.4 (`iss`).
 *
 * Order of the checks: `state` first (a response that does not carry our `state` is not ours, so
 * nothing else in it is trusted), then `iss`, then `error`, then `code`.
 *
 * @internal
 */
import { createHash, timingSafeEqual } from "node:crypto"
import * as Either from "effect/Either"
import type { AuthorizationRequest } from "./authorizationRequest.js"
import { AuthorizationError } from "../Errors.js"
import type { AuthorizationResponse } from "../Schemas.js"

/**
 * Compares two strings in constant time: both are hashed to 32 bytes first, so
 * `timingSafeEqual` always sees equal-length buffers and the comparison leaks neither the
 * content nor the length of the expected value.
 *
 * @internal
 */
export const constantTimeEquals = (a: string, b: string): boolean => {
  const ha = createHash("sha256").update(a, "utf8").digest()
  const hb = createHash("sha256").update(b, "utf8").digest()
  return timingSafeEqual(ha, hb) && a.length === b.length
}

/**
 * Reads a parameter that must appear at most once (RFC 6749 §3.1: "Request and response
 * parameters MUST NOT be included more than once"). `Left` when repeated.
 */
const single = (params: URLSearchParams, name: string): Either.Either<string | undefined, AuthorizationError> => {
  const all = params.getAll(name)
  if (all.length > 1) {
    return Either.left(
      new AuthorizationError({
        reason: "InvalidResponse",
        detail: `the "${name}" parameter appears ${all.length} times in the authorization response`
      })
    )
  }
  return Either.right(all[0])
}

/**
 * Whether `params` carries exactly one `state`, equal to `expected` (constant time). A response
 * without it, with another value or with several `state` parameters (ambiguous, RFC 6749 §3.1)
 * cannot be attributed to the authorization request, so the loopback callback server ignores it
 * instead of ending the sign-in with it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12
 * @internal
 */
export const carriesState = (params: URLSearchParams, expected: string): boolean => {
  const all = params.getAll("state")
  return all.length === 1 && constantTimeEquals(all[0]!, expected)
}

/**
 * Validates the authorization response found in the query of `callbackUrl` against the request
 * that started it:
 *
 * - `state` must be present and equal to `request.state` (constant time) → else `StateMismatch`;
 * - RFC 9207: when `request.issParameterSupported`, `iss` must be present; when present it must
 *   equal `request.issuer` by simple string comparison (no normalisation) → else `IssuerMismatch`;
 * - `error=` → `Denied` carrying `error` and `error_description`;
 * - a missing or empty `code` → `InvalidResponse`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 * @internal
 */
export const validateAuthorizationResponse = (
  callbackUrl: URL,
  request: AuthorizationRequest
): Either.Either<AuthorizationResponse, AuthorizationError> =>
  Either.gen(function*() {
    const params = callbackUrl.searchParams
    const state = yield* single(params, "state")
    if (state === undefined) {
      return yield* Either.left(
        new AuthorizationError({
          reason: "StateMismatch",
          detail: "the authorization response carries no state parameter"
        })
      )
    }
    if (!constantTimeEquals(state, request.state)) {
      return yield* Either.left(
        new AuthorizationError({
          reason: "StateMismatch",
          detail: "the state parameter does not match the one sent with the authorization request"
        })
      )
    }

    const iss = yield* single(params, "iss")
    if (iss === undefined && request.issParameterSupported) {
      return yield* Either.left(
        new AuthorizationError({
          reason: "IssuerMismatch",
          detail:
            `the authorization server advertises authorization_response_iss_parameter_supported but the response has no iss (expected "${request.issuer}")`
        })
      )
    }
    if (iss !== undefined && iss !== request.issuer) {
      return yield* Either.left(
        new AuthorizationError({
          reason: "IssuerMismatch",
          detail: `the response comes from issuer "${iss}", expected "${request.issuer}"`
        })
      )
    }

    const error = yield* single(params, "error")
    if (error !== undefined) {
      const description = yield* single(params, "error_description")
      const errorUri = yield* single(params, "error_uri")
      return yield* Either.left(
        new AuthorizationError({
          reason: "Denied",
          error,
          detail: (description !== undefined && description.length > 0 ? description : error) +
            (errorUri === undefined ? "" : ` (see ${errorUri})`)
        })
      )
    }

    const code = yield* single(params, "code")
    if (code === undefined || code.length === 0) {
      return yield* Either.left(
        new AuthorizationError({
          reason: "InvalidResponse",
          detail: "the authorization response carries neither a code nor an error"
        })
      )
    }
    return { code, state, iss }
  })
