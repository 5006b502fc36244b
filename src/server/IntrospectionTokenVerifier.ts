/**
 * A {@link TokenVerifier} that asks the authorization server (RFC 7662 token introspection): for
 * opaque access tokens, or JWTs a resource server should not trust offline. Each unknown token is
 * POSTed to the server's `introspection_endpoint` (configured, or read once from its RFC 8414 /
 * OpenID Connect Discovery metadata) with this resource server's client authentication
 * (`client_secret_basic`, `client_secret_post` or `private_key_jwt`); the answer is decoded with
 * a schema and checked — `active`, `token_type`, `iss`, `aud` (the resource, RFC 8707), `exp` /
 * `nbf`, `client_id`, `scope`, `sub` — and cached for a bounded time, keyed by a SHA-256 of the
 * token (never the token itself).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import type { OAuthRequestError } from "../Errors.js"
import * as OAuthHttp from "../internal/oauthHttp.js"
import { basicAuthorization, signClientAssertion } from "../TokenExchange.js"
import { AccessToken } from "./AccessToken.js"
import * as TokenVerifier from "./TokenVerifier.js"
import { typed } from "../internal/typed.js"

/**
 * How the resource server authenticates to the introspection endpoint (RFC 7662 §2.1): a client
 * secret in the `Authorization: Basic` header (RFC 6749 §2.3.1) or in the form, or a JWT signed
 * with its private key (RFC 7523 §2.2, `private_key_jwt`), whose `aud` is the issuer identifier.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 * @since 0.1.0
 * @category models
 */
export type ClientAuthentication =
  | { readonly method: "client_secret_basic"; readonly clientSecret: Redacted.Redacted<string> }
  | { readonly method: "client_secret_post"; readonly clientSecret: Redacted.Redacted<string> }
  | {
    readonly method: "private_key_jwt"
    /** A PKCS#8 PEM private key. */
    readonly privateKeyPem: Redacted.Redacted<string>
    /** Its JWS algorithm, e.g. `ES256` or `RS256`. */
    readonly algorithm: string
    readonly keyId?: string | undefined
  }

/**
 * Where to introspect and what a valid token must say.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The authorization server's issuer identifier. An `iss` in the introspection response must
   * equal it; without `introspectionEndpoint`, its metadata names the endpoint.
   */
  readonly issuer: string
  /** The introspection endpoint; default: `introspection_endpoint` of the issuer's metadata (RFC 8414 §2). */
  readonly introspectionEndpoint?: string | undefined
  /**
   * The accepted `aud` value(s): the resource identifier(s) of this server (RFC 8707). A token
   * whose introspection has no `aud`, or none of these, is not accepted — a token issued for
   * another resource must not work here (MCP authorization, "token audience binding").
   */
  readonly audience: string | ReadonlyArray<string>
  /** This resource server's client id at the authorization server. */
  readonly clientId: string
  readonly clientAuthentication: ClientAuthentication
  /** Scopes every token must hold; a token without them verifies as `None`. */
  readonly requiredScopes?: ReadonlyArray<string> | undefined
  /** When set, only tokens issued to these clients (`client_id`) are accepted. */
  readonly allowedClientIds?: ReadonlyArray<string> | undefined
  /** How long an active token's introspection is reused (default 60 seconds; never beyond its `exp`). */
  readonly cacheTtl?: Duration.DurationInput | undefined
  /** How long an inactive answer is reused (default 10 seconds; zero turns it off). */
  readonly negativeCacheTtl?: Duration.DurationInput | undefined
  /** Most tokens cached at once (default 10 000; the oldest entry goes first). */
  readonly maxCacheEntries?: number | undefined
  /** Timeout of one introspection or metadata request (default 5 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Largest accepted response body in bytes (default 64 KiB). */
  readonly maxResponseBytes?: number | undefined
  /** Leeway for `exp` and `nbf` (default 30 seconds). */
  readonly clockTolerance?: Duration.DurationInput | undefined
  /** Allow `http` endpoints that are not on loopback. Never in production. */
  readonly allowInsecure?: boolean | undefined
}

/**
 * The introspection response (RFC 7662 §2.2). Members this verifier does not read are ignored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.2
 * @since 0.1.0
 * @category schemas
 */
export const IntrospectionResponse = Schema.Struct({
  active: Schema.Boolean,
  scope: Schema.optional(Schema.String),
  client_id: Schema.optional(Schema.String),
  username: Schema.optional(Schema.String),
  token_type: Schema.optional(Schema.String),
  exp: Schema.optional(Schema.Number),
  iat: Schema.optional(Schema.Number),
  nbf: Schema.optional(Schema.Number),
  sub: Schema.optional(Schema.String),
  aud: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  iss: Schema.optional(Schema.String)
})

/**
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.2
 * @since 0.1.0
 * @category schemas
 */
export type IntrospectionResponse = typeof IntrospectionResponse.Type

const MetadataDocument = Schema.Struct({
  issuer: Schema.String,
  introspection_endpoint: Schema.optional(Schema.String)
})

/** What a cached verdict remembers: the claims without the token, or that the token is not valid. */
interface Claims {
  readonly clientId: string
  readonly subject: string
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly expiresAt: number | undefined
}

interface CacheEntry {
  readonly claims: Option.Option<Claims>
  /** Epoch milliseconds. */
  readonly until: number
}

/** SHA-256 of the token: the cache key, so that a heap dump of the cache holds no usable token. */
const cacheKey = (token: string): string => createHash("sha256").update(token, "utf8").digest("base64url")

const toMillis = (duration: Duration.DurationInput): number => Duration.toMillis(Duration.decode(duration))

const unavailable = (detail: string) => new TokenVerifier.TokenVerifierError({ detail })

const fromRequestError = (error: OAuthRequestError) => unavailable(error.message)

/** RFC 8414 §3.1 / OpenID Connect Discovery 1.0 §4: the metadata URLs of an issuer, in the order tried. */
const metadataUrls = (issuer: string): ReadonlyArray<string> => {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, "")
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`
  ]
}

/** RFC 7662 §2.2, RFC 8707 §2: the claims of an active token this resource accepts, or `None`. */
const checkResponse = (
  options: Pick<Options, "issuer" | "audience" | "requiredScopes" | "allowedClientIds" | "clockTolerance">,
  response: IntrospectionResponse,
  now: number
): Option.Option<Claims> => {
  if (response.active !== true) return Option.none()
  // A token of another kind (a refresh token, a DPoP-bound token) is not a bearer credential here.
  if (response.token_type !== undefined && response.token_type.toLowerCase() !== "bearer") return Option.none()
  if (response.iss !== undefined && response.iss !== options.issuer) return Option.none()
  const tolerance = toMillis(options.clockTolerance ?? Duration.seconds(30))
  if (response.exp !== undefined && response.exp * 1000 + tolerance <= now) return Option.none()
  if (response.nbf !== undefined && response.nbf * 1000 - tolerance > now) return Option.none()
  const audiences = typeof options.audience === "string" ? [options.audience] : options.audience
  const aud = response.aud === undefined ? [] : typeof response.aud === "string" ? [response.aud] : response.aud
  const resource = aud.find((a) => audiences.includes(a))
  if (resource === undefined) return Option.none()
  const clientId = response.client_id ?? ""
  if (options.allowedClientIds !== undefined && !options.allowedClientIds.includes(clientId)) return Option.none()
  const scopes = response.scope === undefined ? [] : response.scope.split(" ").filter((s) => s !== "")
  if (!(options.requiredScopes ?? []).every((s) => scopes.includes(s))) return Option.none()
  return Option.some({
    clientId,
    subject: response.sub ?? "",
    scopes,
    resource,
    // the leeway applies downstream too (the bearer middleware checks expiresAt again)
    expiresAt: response.exp === undefined ? undefined : response.exp * 1000 + tolerance
  })
}

type Verdict = Option.Option<Claims>

/**
 * The verdicts of recent tokens, by `cacheKey`, at most `maxEntries` (the oldest entry goes first).
 * An expired entry is dropped when it is read.
 */
const makeVerdictCache = (maxEntries: number) => {
  const cache = new Map<string, CacheEntry>()
  return {
    get: (key: string, now: number): Verdict | undefined => {
      const cached = cache.get(key)
      if (cached === undefined) return undefined
      if (cached.until > now) return cached.claims
      cache.delete(key)
      return undefined
    },
    remember: (key: string, entry: CacheEntry, now: number): void => {
      if (entry.until <= now || maxEntries === 0) return
      cache.delete(key)
      cache.set(key, entry)
      // A Map iterates in insertion order: the first key is the oldest entry.
      while (cache.size > maxEntries) cache.delete(cache.keys().next().value!)
    }
  }
}

/**
 * `effect`, whose first success is kept and returned from then on; a failure is not kept, so the
 * next call tries again.
 */
const keepFirstSuccess = <A, E>(initial: A | undefined, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
  let value = initial
  return Effect.suspend(() =>
    value !== undefined ? Effect.succeed(value) : Effect.tap(effect, (a) => Effect.sync(() => (value = a)))
  )
}

/** RFC 8414 §3 / OpenID Connect Discovery §4: the `introspection_endpoint` of the issuer's metadata. */
const discoverEndpoint = (
  client: HttpClient.HttpClient,
  http: OAuthHttp.OAuthHttpOptions,
  issuer: string
): Effect.Effect<string, TokenVerifier.TokenVerifierError> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    for (const url of metadataUrls(issuer)) {
      const response = yield* OAuthHttp.execute(client, HttpClientRequest.get(url), http).pipe(
        Effect.mapError(fromRequestError)
      )
      if (response.status === 404) {
        problems.push(`${url}: 404`)
        continue
      }
      if (response.status !== 200) return yield* unavailable(`metadata ${url} answered HTTP ${response.status}`)
      const document = OAuthHttp.decodeJson(MetadataDocument, response)
      if (Either.isLeft(document)) return yield* unavailable(`metadata ${url}: ${document.left}`)
      // RFC 8414 §3.3: the document must be the issuer's own.
      if (document.right.issuer !== issuer) {
        return yield* unavailable(`metadata ${url} is for issuer ${document.right.issuer}`)
      }
      if (document.right.introspection_endpoint === undefined) {
        return yield* unavailable(`the metadata of ${issuer} has no introspection_endpoint`)
      }
      return document.right.introspection_endpoint
    }
    return yield* unavailable(`no metadata for ${issuer} (${problems.join(", ")})`)
  })

/** RFC 7523 §2.2: the `private_key_jwt` client assertion, when that is the client authentication. */
const clientAssertion = (
  options: Pick<Options, "clientAuthentication" | "clientId" | "issuer">,
  now: number
): Effect.Effect<string | undefined, TokenVerifier.TokenVerifierError> => {
  const auth = options.clientAuthentication
  if (auth.method !== "private_key_jwt") return Effect.succeed(undefined)
  // RFC 7523 §3: the audience identifies the authorization server — its issuer identifier.
  return Effect.mapError(
    signClientAssertion({ key: auth, clientId: options.clientId, audience: options.issuer, now }),
    (cause) => unavailable(`could not sign the client assertion: ${String(cause.error)}`)
  )
}

/** RFC 7662 §2.1: the introspection request, authenticated as this resource server. */
const introspectionRequest = (
  options: Pick<Options, "clientAuthentication" | "clientId" | "issuer">,
  url: string,
  token: string,
  now: number
): Effect.Effect<HttpClientRequest.HttpClientRequest, TokenVerifier.TokenVerifierError> =>
  Effect.map(clientAssertion(options, now), (assertion) => {
    const auth = options.clientAuthentication
    const params: Record<string, string> = { token, token_type_hint: "access_token" }
    let request = HttpClientRequest.post(url)
    switch (auth.method) {
      case "client_secret_basic":
        request = HttpClientRequest.setHeader(request, "authorization", basicAuthorization(options.clientId, auth.clientSecret))
        break
      case "client_secret_post":
        params["client_id"] = options.clientId
        params["client_secret"] = Redacted.value(auth.clientSecret)
        break
      case "private_key_jwt":
        params["client_id"] = options.clientId
        params["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        params["client_assertion"] = assertion ?? ""
        break
    }
    return HttpClientRequest.bodyUrlParams(request, params)
  })

/** RFC 7662 §2.2: POSTs the token to the endpoint and decodes the introspection response. */
const introspect = (
  client: HttpClient.HttpClient,
  http: OAuthHttp.OAuthHttpOptions,
  options: Pick<Options, "clientAuthentication" | "clientId" | "issuer">,
  url: string,
  token: string,
  now: number
): Effect.Effect<IntrospectionResponse, TokenVerifier.TokenVerifierError> =>
  Effect.gen(function*() {
    const request = yield* introspectionRequest(options, url, token, now)
    const response = yield* OAuthHttp.execute(client, request, http).pipe(Effect.mapError(fromRequestError))
    // 401/403: this resource server's own credentials are refused — not the token's fault.
    if (response.status !== 200) return yield* unavailable(`introspection answered HTTP ${response.status}`)
    const decoded = OAuthHttp.decodeJson(IntrospectionResponse, response)
    if (Either.isLeft(decoded)) return yield* unavailable(`introspection: ${decoded.left}`)
    return decoded.right
  })

/** Until when a verdict is reused: inactive ones for `negativeTtl`, active ones for `positiveTtl` but never past `exp`. */
const verdictUntil = (
  claims: Verdict,
  response: IntrospectionResponse,
  now: number,
  ttl: { readonly positive: number; readonly negative: number }
): number =>
  Option.isNone(claims)
    ? now + ttl.negative
    // never past the token's own `exp` (without the leeway)
    : Math.min(now + ttl.positive, response.exp === undefined ? Number.POSITIVE_INFINITY : response.exp * 1000)

/**
 * Concurrent calls with the same key share one run of their effect. It runs detached from the
 * call that started it (each effect bounds itself with a timeout), so that call going away does
 * not fail the others waiting for the answer.
 */
const makeSingleFlight = <A, E>() => {
  const inflight = new Map<string, Deferred.Deferred<A, E>>()
  return (key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const running = inflight.get(key)
      if (running !== undefined) return Deferred.await(running)
      return Effect.gen(function*() {
        const deferred = yield* Deferred.make<A, E>()
        inflight.set(key, deferred)
        yield* effect.pipe(
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(deferred, exit)),
          Effect.ensuring(Effect.sync(() => inflight.delete(key))),
          Effect.forkDaemon
        )
        return yield* Deferred.await(deferred)
      })
    })
}

/** The verified access token, or `None` for a `None` verdict or claims that expired since. */
const toAccessToken = (token: string, claims: Verdict, now: number): Option.Option<AccessToken> => {
  if (Option.isNone(claims) || (claims.value.expiresAt !== undefined && claims.value.expiresAt <= now)) {
    return Option.none()
  }
  const c = claims.value
  return Option.some(
    new AccessToken({
      token: Redacted.make(token),
      clientId: c.clientId,
      subject: c.subject,
      scopes: c.scopes,
      resource: c.resource,
      expiresAt: c.expiresAt
    }, typed)
  )
}

/**
 * The verifier. An inactive token, or one that fails a check, verifies as `None` (the bearer
 * middleware answers 401 `invalid_token`); an authorization server that cannot be reached, is
 * too slow, refuses this resource server's credentials or answers something that is not an
 * introspection response is a `TokenVerifierError` (503) and is not cached. Active verdicts are
 * cached for `cacheTtl` but never past the token's `exp`; inactive ones for `negativeCacheTtl`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-4
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<TokenVerifier.TokenVerifier, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const http: OAuthHttp.OAuthHttpOptions = {
      timeout: options.timeout ?? Duration.seconds(5),
      maxBodyBytes: options.maxResponseBytes ?? 64 * 1024,
      ...(options.allowInsecure === undefined ? {} : { allowInsecure: options.allowInsecure })
    }
    const ttl = {
      positive: toMillis(options.cacheTtl ?? Duration.seconds(60)),
      negative: toMillis(options.negativeCacheTtl ?? Duration.seconds(10))
    }
    const cache = makeVerdictCache(Math.max(0, options.maxCacheEntries ?? 10_000))
    const endpoint = keepFirstSuccess(options.introspectionEndpoint, discoverEndpoint(client, http, options.issuer))
    const singleFlight = makeSingleFlight<Verdict, TokenVerifier.TokenVerifierError>()

    /** Introspects and caches the verdict of `token`. */
    const lookUp = (key: string, token: string, now: number) =>
      Effect.gen(function*() {
        const response = yield* introspect(client, http, options, yield* endpoint, token, now)
        const claims = checkResponse(options, response, now)
        cache.remember(key, { claims, until: verdictUntil(claims, response, now, ttl) }, now)
        return claims
      })

    return TokenVerifier.make((token) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const key = cacheKey(token)
        const claims = cache.get(key, now) ?? (yield* singleFlight(key, lookUp(key, token, now)))
        return toAccessToken(token, claims, now)
      }).pipe(Effect.withSpan("IntrospectionTokenVerifier.verify"))
    )
  })

/**
 * {@link make} as a `TokenVerifier` layer, on the `HttpClient` in context.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenVerifier.TokenVerifier, never, HttpClient.HttpClient> =>
  Layer.effect(TokenVerifier.TokenVerifier, make(options))
