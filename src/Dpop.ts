/**
 * DPoP (RFC 9449): proof-of-possession for access tokens. A key pair is generated for the
 * lifetime of the layer; every token request and every request that presents a DPoP-bound token
 * carries a fresh proof JWT signed with it, so a stolen token is useless without the key.
 *
 * Used automatically when the authorization server advertises
 * `dpop_signing_alg_values_supported` with `ES256` (RFC 9449 §5.1).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as JoseTypes from "jose"

/**
 * What a proof is for: the HTTP method and URL of the request (`htm`, `htu`), the access token it
 * accompanies (`ath`, RFC 9449 §4.2) and the server's nonce (§8, §9), if any.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 * @since 0.1.0
 * @category models
 */
export interface ProofRequest {
  readonly method: string
  readonly url: string
  readonly accessToken?: Redacted.Redacted<string> | undefined
  readonly nonce?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Dpop {
  /** The JWS algorithm of the proofs. */
  readonly algorithm: "ES256"
  /** A fresh proof JWT (`typ: dpop+jwt`, new `jti`, current `iat`). */
  readonly proof: (request: ProofRequest) => Effect.Effect<string>
  /** The last `DPoP-Nonce` a server (by origin) asked for. */
  readonly nonce: (url: string) => Effect.Effect<Option.Option<string>>
  /** Remembers the `DPoP-Nonce` of a server (by origin). */
  readonly setNonce: (url: string, nonce: string) => Effect.Effect<void>
  /** RFC 7638 thumbprint of the public key (`cnf.jkt` of bound tokens); creates the key if need be. */
  readonly thumbprint: Effect.Effect<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Dpop: Context.Tag<Dpop, Dpop> = Context.GenericTag<Dpop>("effect-mcp-oauth/Dpop")

/**
 * Whether an authorization server's metadata says it accepts DPoP proofs signed with ES256.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.1
 * @since 0.1.0
 * @category predicates
 */
export const supportedBy = (metadata: { readonly dpop_signing_alg_values_supported?: ReadonlyArray<string> | undefined }) =>
  (metadata.dpop_signing_alg_values_supported ?? []).includes("ES256")

/** `htu`: the request URI without query and fragment (RFC 9449 §4.2). */
const htuOf = (url: string): string => {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}

const originOf = (url: string): string => (URL.canParse(url) ? new URL(url).origin : url)

/**
 * A DPoP service with a fresh, non-extractable ES256 key pair, created on first need (the first
 * proof or thumbprint): a client whose servers never use DPoP never generates one.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Dpop> = Effect.gen(function*() {
  const key = yield* Effect.cached(Effect.gen(function*() {
    // jose loads with the first DPoP key, not with every import of the library
    const Jose = yield* Effect.promise(() => import("jose"))
    const { privateKey, publicKey } = yield* Effect.promise(() =>
      Jose.generateKeyPair("ES256", { extractable: false })
    )
    const jwk = yield* Effect.promise(() => crypto.subtle.exportKey("jwk", publicKey))
    const publicJwk: JoseTypes.JWK = { kty: "EC", crv: jwk.crv ?? "P-256", x: jwk.x ?? "", y: jwk.y ?? "" }
    const thumbprint = yield* Effect.promise(() => Jose.calculateJwkThumbprint(publicJwk, "sha256"))
    return { Jose, privateKey, publicJwk, thumbprint }
  }))
  const nonces = yield* Ref.make(new Map<string, string>())

  const ath = (token: Redacted.Redacted<string>) =>
    Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(Redacted.value(token)))).pipe(
      Effect.map((digest) => Encoding.encodeBase64Url(new Uint8Array(digest)))
    )

  const proof = (request: ProofRequest) =>
    Effect.gen(function*() {
      const { Jose, privateKey, publicJwk } = yield* key
      const claims: Record<string, unknown> = {
        htm: request.method.toUpperCase(),
        htu: htuOf(request.url),
        ...(request.accessToken === undefined ? {} : { ath: yield* ath(request.accessToken) }),
        ...(request.nonce === undefined ? {} : { nonce: request.nonce })
      }
      return yield* Effect.promise(() =>
        new Jose.SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: publicJwk })
          .setJti(crypto.randomUUID())
          .setIssuedAt()
          .sign(privateKey)
      )
    }).pipe(Effect.withSpan("Dpop.proof"))

  return Dpop.of({
    algorithm: "ES256",
    proof,
    nonce: (url) => Effect.map(Ref.get(nonces), (m) => Option.fromNullable(m.get(originOf(url)))),
    setNonce: (url, nonce) => Ref.update(nonces, (m) => new Map(m).set(originOf(url), nonce)),
    thumbprint: Effect.map(key, (k) => k.thumbprint)
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Dpop> = Layer.effect(Dpop, make)
