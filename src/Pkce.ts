/**
 * Proof Key for Code Exchange (RFC 7636) with the `S256` method, the only one OAuth 2.1 and the
 * MCP authorization spec allow: a fresh high-entropy code verifier per authorization request,
 * its SHA-256 challenge, and the `state` value that binds the redirect to the request.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * The unreserved characters of RFC 3986 §2.3, the alphabet of a code verifier
 * (RFC 7636 §4.1 `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category constants
 */
export const VERIFIER_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

/**
 * Length of the verifiers this module generates: 64 characters of a 66-letter alphabet, about
 * 386 bits of entropy (RFC 7636 §7.1 asks for at least 256).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-7.1
 * @since 0.1.0
 * @category constants
 */
export const VERIFIER_LENGTH = 64

/**
 * A syntactically valid code verifier: 43 to 128 characters of the unreserved set
 * (RFC 7636 §4.1). Authorization servers use it to validate the `code_verifier` of a token
 * request (RFC 7636 §4.6).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category schemas
 */
export const CodeVerifier = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9\-._~]{43,128}$/, {
    message: () => "a PKCE code verifier is 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)"
  }),
  Schema.annotations({ identifier: "CodeVerifier" })
)

/**
 * One PKCE pair. The verifier is secret until the token request, so it is `Redacted`; the
 * challenge is sent on the authorization request (RFC 7636 §4.3).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.2
 * @since 0.1.0
 * @category models
 */
export interface PkceCodes {
  readonly verifier: Redacted.Redacted<string>
  readonly challenge: string
  readonly method: "S256"
}

/**
 * Generates PKCE pairs and `state` values.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4
 * @since 0.1.0
 * @category models
 */
export interface Pkce {
  /** A fresh verifier (CSPRNG, RFC 7636 §4.1) and its `S256` challenge (RFC 7636 §4.2). */
  readonly generate: Effect.Effect<PkceCodes>
  /** A fresh `state` (RFC 6749 §10.12): 256 bits from a CSPRNG, base64url without padding. */
  readonly generateState: Effect.Effect<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Pkce: Context.Tag<Pkce, Pkce> = Context.GenericTag<Pkce>("effect-mcp-oauth/Pkce")

const encoder = new TextEncoder()

/**
 * The `S256` code challenge of a verifier: `BASE64URL(SHA256(ASCII(code_verifier)))` without
 * padding (RFC 7636 §4.2). Accepts any string; validate with {@link CodeVerifier} first when the
 * verifier comes from outside.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.2
 * @since 0.1.0
 * @category constructors
 */
export const challengeFor = (verifier: string | Redacted.Redacted<string>): Effect.Effect<string> =>
  Effect.suspend(() => {
    const bytes = encoder.encode(Redacted.isRedacted(verifier) ? Redacted.value(verifier) : verifier)
    const hash = nodeSha256()
    return hash === undefined
      ? Effect.map(
        Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", bytes)),
        (digest) => Encoding.encodeBase64Url(new Uint8Array(digest))
      )
      : Effect.succeed(Encoding.encodeBase64Url(hash(bytes)))
  })

/**
 * Node's synchronous SHA-256 when the runtime has it (`process.getBuiltinModule`, Node ≥ 20.16):
 * Web Crypto's `digest` is asynchronous, a thread-pool round trip for 64 bytes on every sign-in.
 * Elsewhere (browsers, Deno, Bun without it) `crypto.subtle` is used.
 */
const nodeSha256 = (): ((bytes: Uint8Array) => Uint8Array) | undefined => {
  const getBuiltin = typeof process === "object" ? process.getBuiltinModule : undefined
  const crypto: typeof import("node:crypto") | undefined = typeof getBuiltin === "function"
    ? getBuiltin("node:crypto")
    : undefined
  return crypto === undefined ? undefined : (bytes) => crypto.createHash("sha256").update(bytes).digest()
}

const randomBytes = (n: number): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(n))

/**
 * `length` characters drawn uniformly from the 66-letter unreserved alphabet: bytes at or above
 * 264 (= 4 × 66) are rejected so that `byte % 66` has no modulo bias.
 */
const randomVerifier = (length: number): string => {
  const limit = VERIFIER_ALPHABET.length * Math.floor(256 / VERIFIER_ALPHABET.length)
  let out = ""
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit) {
        out += VERIFIER_ALPHABET[byte % VERIFIER_ALPHABET.length]
        if (out.length === length) break
      }
    }
  }
  return out
}

const fromVerifier = (verifier: string): Effect.Effect<PkceCodes> =>
  Effect.map(challengeFor(verifier), (challenge) => ({
    verifier: Redacted.make(verifier),
    challenge,
    method: "S256" as const
  }))

/**
 * A CSPRNG-backed {@link Pkce} (Web Crypto `getRandomValues`, available in Node ≥ 20, Deno, Bun
 * and browsers).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-7.1
 * @since 0.1.0
 * @category constructors
 */
export const make: Pkce = {
  generate: Effect.suspend(() => fromVerifier(randomVerifier(VERIFIER_LENGTH))).pipe(
    Effect.withSpan("Pkce.generate")
  ),
  generateState: Effect.sync(() => Encoding.encodeBase64Url(randomBytes(32))).pipe(
    Effect.withSpan("Pkce.generateState")
  )
}

/**
 * The real {@link Pkce}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Pkce> = Layer.succeed(Pkce, make)

/**
 * A deterministic {@link Pkce} for tests: every `generate` returns `fixed.verifier` (with its real
 * `S256` challenge) and every `generateState` returns `fixed.state` (default `"test-state"`).
 * The verifier is deliberately not validated, so tests can check that a server rejects a
 * malformed one (RFC 7636 §4.6).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#appendix-B
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (fixed: { readonly verifier: string; readonly state?: string }): Layer.Layer<Pkce> =>
  Layer.succeed(Pkce, {
    generate: fromVerifier(fixed.verifier),
    generateState: Effect.succeed(fixed.state ?? "test-state")
  })
