/**
 * A {@link TokenVerifier} for JWT access tokens (RFC 9068) issued by an external authorization
 * server, verified with `jose`: the signature against the server's JWKS (fetched and cached from
 * its `jwks_uri`) or against static keys, then `iss`, `aud` (the resource, RFC 8707), `exp` /
 * `nbf` with a leeway, the `typ` header `at+jwt` (RFC 9068 §4), and optionally the scopes every
 * token must carry.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Jose from "jose"
import type { CryptoKey, JSONWebKeySet, JWTPayload, JWTVerifyGetKey, KeyObject } from "jose"
import { AccessToken } from "./AccessToken.js"
import * as TokenVerifier from "./TokenVerifier.js"

/**
 * Where the verification keys come from: a JWKS URL (RFC 8414 `jwks_uri`; `https`, or `http` on
 * loopback only), a static JWK Set, or one key.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7517#section-5
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export type KeySource =
  | { readonly jwksUrl: string | URL }
  | { readonly jwks: JSONWebKeySet }
  | { readonly key: CryptoKey | KeyObject | Uint8Array }

/**
 * What a valid token must say.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The accepted `iss` value(s). */
  readonly issuer: string | ReadonlyArray<string>
  /** The accepted `aud` value(s): the resource identifier(s) of this server (RFC 8707). */
  readonly audience: string | ReadonlyArray<string>
  /** Accepted signing algorithms (default: the asymmetric ones RFC 9068 §4 expects: RS*, PS*, ES*, EdDSA). */
  readonly algorithms?: ReadonlyArray<string> | undefined
  /** Leeway for `exp`, `nbf` and `iat` (default 30 seconds). */
  readonly clockTolerance?: Duration.DurationInput | undefined
  /** Scopes every token must hold; a token without them verifies as `None`. */
  readonly requiredScopes?: ReadonlyArray<string> | undefined
  /** Timeout of a JWKS fetch (default 5 seconds). */
  readonly jwksTimeout?: Duration.DurationInput | undefined
  /** Allow an `http` JWKS URL that is not on loopback. Never in production. */
  readonly allowInsecure?: boolean | undefined
  /**
   * Also accept JWTs whose `typ` header is not `at+jwt` (default `false`). RFC 9068 §4 requires
   * resource servers to check `typ`, so that an ID token or another JWT signed by the same keys
   * is never taken for an access token; turn this on only for an authorization server that does
   * not set `typ`, and when nothing else it signs could carry this audience.
   */
  readonly acceptPlainJwt?: boolean | undefined
}

const DEFAULT_ALGORITHMS: ReadonlyArray<string> = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519"
]

/** jose error codes that mean "this token is not valid" rather than "cannot verify now". */
const INVALID_TOKEN_CODES: ReadonlySet<string> = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
  "ERR_JWK_INVALID"
])

const isLoopback = (url: URL): boolean =>
  url.hostname === "127.0.0.1" || url.hostname === "[::1]" || url.hostname === "localhost"

const scopesOf = (payload: JWTPayload): ReadonlyArray<string> => {
  const scope = payload["scope"]
  if (typeof scope === "string") return scope.split(" ").filter((s) => s !== "")
  const scp = payload["scp"]
  return Array.isArray(scp) ? scp.filter((s): s is string => typeof s === "string") : []
}

const stringClaim = (payload: JWTPayload, name: string): string | undefined => {
  const value = payload[name]
  return typeof value === "string" ? value : undefined
}

/** A key source jose verifies with. */
type Keys = JWTVerifyGetKey | CryptoKey | KeyObject | Uint8Array

/** The keys of `options`: a remote JWKS (https, or loopback / `allowInsecure` http), a local JWKS, or a key. */
const keysOf = (
  jose: typeof Jose,
  options: KeySource & Pick<Options, "allowInsecure" | "jwksTimeout">
): Keys | TokenVerifier.TokenVerifierError => {
  if ("jwksUrl" in options) {
    if (!URL.canParse(options.jwksUrl)) {
      return new TokenVerifier.TokenVerifierError({ detail: `the JWKS URL ${options.jwksUrl} is not a URL` })
    }
    const url = new URL(options.jwksUrl)
    return url.protocol === "https:" || (url.protocol === "http:" && (isLoopback(url) || options.allowInsecure === true))
      ? jose.createRemoteJWKSet(url, {
        timeoutDuration: Duration.toMillis(Duration.decode(options.jwksTimeout ?? Duration.seconds(5)))
      })
      : new TokenVerifier.TokenVerifierError({ detail: `the JWKS URL ${url.href} is not https` })
  }
  if ("jwks" in options) return jose.createLocalJWKSet(options.jwks)
  return options.key
}

/**
 * The verifier. A token that fails any check verifies as `None` (the bearer middleware answers
 * 401 `invalid_token`); a JWKS that cannot be fetched or parsed is a `TokenVerifierError` (503).
 * Claims map to {@link AccessToken}: `sub`, `client_id` (else `azp`), `scope` (or `scp`), the
 * matching `aud` as `resource`, `exp` plus the leeway as `expiresAt`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-7.2
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options & KeySource): TokenVerifier.TokenVerifier => {
  const audiences = typeof options.audience === "string" ? [options.audience] : [...options.audience]
  const issuers = typeof options.issuer === "string" ? [options.issuer] : [...options.issuer]
  const tolerance = Math.round(Duration.toSeconds(Duration.decode(options.clockTolerance ?? Duration.seconds(30))))
  const required = options.requiredScopes ?? []
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)]
  // jose loads with the first token to verify, not with every import of `/server`.
  let loaded: Promise<{ readonly jose: typeof Jose; readonly keys: Keys | TokenVerifier.TokenVerifierError }> | undefined
  const load = Effect.promise(() =>
    loaded ??= import("jose").then((jose) => ({ jose, keys: keysOf(jose, options) }))
  )

  return TokenVerifier.make((token) =>
    Effect.gen(function*() {
      const { jose, keys: verifyWith } = yield* load
      if (verifyWith instanceof TokenVerifier.TokenVerifierError) return yield* verifyWith
      const now = yield* Clock.currentTimeMillis
      const verified = yield* Effect.tryPromise({
        try: () => {
          const claims = {
            issuer: issuers,
            audience: audiences,
            algorithms,
            clockTolerance: tolerance,
            currentDate: new Date(now),
            // RFC 9068 §4: `typ` must be `at+jwt` (jose also accepts `application/at+jwt`).
            ...(options.acceptPlainJwt === true ? {} : { typ: "at+jwt" })
          }
          return typeof verifyWith === "function"
            ? jose.jwtVerify(token, verifyWith, claims)
            : jose.jwtVerify(token, verifyWith, claims)
        },
        catch: (error) => error
      }).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          error instanceof jose.errors.JOSEError && INVALID_TOKEN_CODES.has(error.code)
            ? Effect.succeed(Option.none())
            : Effect.fail(
              new TokenVerifier.TokenVerifierError({
                detail: error instanceof Error ? `cannot verify JWTs: ${error.message}` : "cannot verify JWTs"
              })
            )
        )
      )
      if (Option.isNone(verified)) return Option.none<AccessToken>()
      const payload = verified.value.payload
      const scopes = scopesOf(payload)
      if (!required.every((s) => scopes.includes(s))) return Option.none<AccessToken>()
      const aud = payload.aud === undefined ? [] : typeof payload.aud === "string" ? [payload.aud] : payload.aud
      return Option.some(
        new AccessToken({
          token: Redacted.make(token),
          clientId: stringClaim(payload, "client_id") ?? stringClaim(payload, "azp") ?? "",
          subject: payload.sub ?? "",
          scopes,
          resource: aud.find((a) => audiences.includes(a)),
          // the leeway applies downstream too (the bearer middleware checks expiresAt again)
          expiresAt: payload.exp === undefined ? undefined : (payload.exp + tolerance) * 1000
        })
      )
    })
  )
}

/**
 * {@link make} as a `TokenVerifier` layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options & KeySource): Layer.Layer<TokenVerifier.TokenVerifier> =>
  Layer.succeed(TokenVerifier.TokenVerifier, make(options))
