/**
 * DPoP (RFC 9449): proof-of-possession for access tokens. A key pair is generated on first need;
 * every token request and every request that presents a DPoP-bound token carries a fresh proof
 * JWT signed with it, so a token stolen in transit, from a log or from a server is useless without
 * the key. The key is stored with the token set it binds (`StoredToken.dpopKey`), so that a new
 * process can present and refresh that set (RFC 9449 §5 binds a public client's refresh token to
 * the key too) instead of signing in again.
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
import * as Schema from "effect/Schema"
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
  /**
   * The key to sign with: a private JWK that `exportKey` gave, stored with the token set bound to
   * it. Default, or when it is not usable: the service's own key.
   */
  readonly key?: Redacted.Redacted<string> | undefined
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
  /**
   * The key as a private JWK (RFC 7517, RFC 7518 §6.2.2), created if need be, to store with the
   * token set bound to it. Absent when the key cannot leave the service (a hardware key, say):
   * bound tokens then last as long as the service.
   */
  readonly exportKey?: Effect.Effect<Redacted.Redacted<string>>
  /**
   * Signs the next proofs with `jwk`, a key `exportKey` gave that was stored with a token set;
   * `false`, with the key unchanged, when it is not a P-256 private JWK.
   */
  readonly useKey?: (jwk: Redacted.Redacted<string>) => Effect.Effect<boolean>
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

/** An EC P-256 private JWK (RFC 7518 §6.2.2), as `exportKey` writes it. */
const PrivateJwk = Schema.parseJson(Schema.Struct({
  kty: Schema.Literal("EC"),
  crv: Schema.Literal("P-256"),
  x: Schema.String,
  y: Schema.String,
  d: Schema.String
}))

const loadJose = Effect.promise(() => import("jose"))

type Jose = typeof JoseTypes

interface KeyMaterial {
  readonly Jose: Jose
  readonly privateKey: JoseTypes.CryptoKey | Uint8Array
  readonly publicJwk: JoseTypes.JWK
  readonly thumbprint: string
  /** The private JWK, as stored (JSON). */
  readonly exported: Redacted.Redacted<string>
}

const materialOf = (Jose: Jose, jwk: typeof PrivateJwk.Type) =>
  Effect.gen(function*() {
    const privateKey = yield* Effect.tryPromise(() => Jose.importJWK({ ...jwk, alg: "ES256" }, "ES256"))
    const publicJwk: JoseTypes.JWK = { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y }
    const thumbprint = yield* Effect.promise(() => Jose.calculateJwkThumbprint(publicJwk, "sha256"))
    return { Jose, privateKey, publicJwk, thumbprint, exported: Redacted.make(JSON.stringify(jwk)) } satisfies KeyMaterial
  })

const generateKey = Effect.gen(function*() {
  // jose loads with the first DPoP key, not with every import of the library
  const Jose = yield* loadJose
  const { privateKey } = yield* Effect.promise(() => Jose.generateKeyPair("ES256", { extractable: true }))
  const jwk = yield* Effect.promise(() => crypto.subtle.exportKey("jwk", privateKey))
  return yield* materialOf(Jose, { kty: "EC", crv: "P-256", x: jwk.x ?? "", y: jwk.y ?? "", d: jwk.d ?? "" }).pipe(
    Effect.orDie
  )
})

/**
 * A DPoP service with an ES256 key pair created on first need (the first proof, thumbprint or
 * export): a client whose servers never use DPoP never generates one. `useKey` switches to a
 * stored key.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Dpop> = Effect.gen(function*() {
  const current = yield* Ref.make(Option.none<KeyMaterial>())
  const creating = yield* Effect.makeSemaphore(1)
  const key: Effect.Effect<KeyMaterial> = Effect.flatMap(Ref.get(current), (k) =>
    Option.isSome(k) ? Effect.succeed(k.value) : creating.withPermits(1)(
      Effect.flatMap(Ref.get(current), (again) =>
        Option.isSome(again)
          ? Effect.succeed(again.value)
          : Effect.tap(generateKey, (made) => Ref.set(current, Option.some(made))))
    ))
  // Keys used before, by their JWK: a service shared by the layers of several servers, whose
  // stored sets are bound to different keys, switches between them without importing again.
  const known = new Map<string, KeyMaterial>()
  const cachedMaterial = (jwk: Redacted.Redacted<string>): Effect.Effect<Option.Option<KeyMaterial>> =>
    Effect.gen(function*() {
      const text = Redacted.value(jwk)
      const cached = known.get(text)
      if (cached !== undefined) return Option.some(cached)
      const decoded = Schema.decodeUnknownOption(PrivateJwk)(text)
      if (Option.isNone(decoded)) return Option.none()
      const made = yield* Effect.option(materialOf(yield* loadJose, decoded.value))
      if (Option.isNone(made)) return made
      const oldest = known.keys().next()
      if (known.size >= 8 && oldest.done !== true) known.delete(oldest.value)
      known.set(text, made.value)
      return made
    })
  /** The key `jwk` stands for: the current one when it is that, else a known or imported one. */
  const keyFor = (jwk: Redacted.Redacted<string>): Effect.Effect<Option.Option<KeyMaterial>> =>
    Effect.flatMap(Ref.get(current), (now) =>
      Option.isSome(now) && Redacted.value(now.value.exported) === Redacted.value(jwk)
        ? Effect.succeed(now)
        : cachedMaterial(jwk))
  const useKey = (jwk: Redacted.Redacted<string>): Effect.Effect<boolean> =>
    Effect.flatMap(keyFor(jwk), (material) =>
      Option.isSome(material) ? Effect.as(Ref.set(current, material), true) : Effect.succeed(false))
  /** The key a proof is signed with: the one asked for when it is usable, else the service's own. */
  const signingKey = (asked: Redacted.Redacted<string> | undefined): Effect.Effect<KeyMaterial> =>
    asked === undefined
      ? key
      : Effect.flatMap(keyFor(asked), Option.match({ onNone: () => key, onSome: Effect.succeed }))
  const nonces = yield* Ref.make(new Map<string, string>())

  const ath = (token: Redacted.Redacted<string>) =>
    Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(Redacted.value(token)))).pipe(
      Effect.map((digest) => Encoding.encodeBase64Url(new Uint8Array(digest)))
    )

  const proof = (request: ProofRequest) =>
    Effect.gen(function*() {
      const { Jose, privateKey, publicJwk } = yield* signingKey(request.key)
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
    thumbprint: Effect.map(key, (k) => k.thumbprint),
    exportKey: Effect.map(key, (k) => k.exported),
    useKey
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Dpop> = Layer.effect(Dpop, make)
