/**
 * Requests to the token endpoint (RFC 6749 §3.2): the authorization code grant with PKCE, the
 * refresh token grant, the client credentials grant and generic extension grants (RFC 8693 token
 * exchange, RFC 7523 JWT bearer), with client authentication `none`, `client_secret_basic`,
 * `client_secret_post` or `private_key_jwt`.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { DiscoveryResult } from "./Discovery.js"
import * as Dpop from "./Dpop.js"
import { ClientNotFound, OAuthRequestError, OAuthTokenError } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { type ClientInformation, OAuthErrorResponse, StoredToken, TokenResponse } from "./Schemas.js"
import { typed } from "./internal/typed.js"

/**
 * A private key for `private_key_jwt` client authentication (RFC 7523 §2.2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 * @since 0.1.0
 * @category models
 */
export interface PrivateKeyJwtConfig {
  /** PKCS#8 PEM private key. */
  readonly privateKeyPem: Redacted.Redacted<string>
  /** JWS algorithm, e.g. `ES256` or `RS256`. */
  readonly algorithm: string
  readonly keyId?: string | undefined
  /** Assertion lifetime; default 60 s. */
  readonly lifetime?: Duration.DurationInput | undefined
}

/**
 * A form POST to an authorization server endpoint, authenticated with a client secret as at the
 * token endpoint: `client_secret_basic` (RFC 6749 §2.3.1, form-encoded Basic header),
 * `client_secret_post` (`client_id` + `client_secret` in the body), or just `client_id` for
 * public clients (and `private_key_jwt` clients where an endpoint takes no assertion).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @since 0.1.0
 * @category client authentication
 */
export const secretAuthenticatedPost = (
  url: string,
  client: ClientInformation,
  params: Readonly<Record<string, string>>
): HttpClientRequest.HttpClientRequest => {
  const body: Record<string, string> = { ...params }
  let request = HttpClientRequest.post(url)
  if (client.tokenEndpointAuthMethod === "client_secret_basic" && client.clientSecret !== undefined) {
    request = HttpClientRequest.setHeader(request, "authorization", basicAuthorization(client.clientId, client.clientSecret))
  } else {
    body["client_id"] = client.clientId
    if (client.tokenEndpointAuthMethod === "client_secret_post" && client.clientSecret !== undefined) {
      body["client_secret"] = Redacted.value(client.clientSecret)
    }
  }
  return HttpClientRequest.bodyUrlParams(request, body)
}

/**
 * Signs a `private_key_jwt` client assertion (RFC 7523 §2.2, OpenID Connect Core §9): `iss` and
 * `sub` the client id, `aud` the authorization server, a fresh `jti`, valid for the key's
 * `lifetime` (default 60 s) from `now` (epoch milliseconds). Shared by the token endpoint calls
 * and the resource server's introspection requests; `jose` loads on first use.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 * @since 0.1.0
 * @category client authentication
 */
export const signClientAssertion = (params: {
  readonly key: PrivateKeyJwtConfig
  readonly clientId: string
  readonly audience: string
  readonly now: number
}): Effect.Effect<string, Cause.UnknownException> =>
  Effect.tryPromise(async () => {
    const Jose = await import("jose")
    const { key } = params
    const iat = Math.floor(params.now / 1000)
    const lifetime = Math.floor(Duration.toSeconds(key.lifetime ?? Duration.seconds(60)))
    return new Jose.SignJWT({})
      .setProtectedHeader({ alg: key.algorithm, typ: "JWT", ...(key.keyId === undefined ? {} : { kid: key.keyId }) })
      .setIssuer(params.clientId)
      .setSubject(params.clientId)
      .setAudience(params.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + lifetime)
      .setJti(crypto.randomUUID())
      .sign(await Jose.importPKCS8(Redacted.value(key.privateKeyPem), key.algorithm))
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenExchangeConfig {
  readonly timeout?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
  readonly privateKeyJwt?: PrivateKeyJwtConfig | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface GrantContext {
  readonly discovery: DiscoveryResult
  readonly client: ClientInformation
  /** RFC 8707 resource indicator; sent when defined. */
  readonly resource?: string | undefined
  /** Scopes requested; recorded as granted when the response has no `scope` (RFC 6749 §5.1). */
  readonly scopes?: ReadonlyArray<string> | undefined
}

/**
 * The errors a token request can fail with. `invalid_client` (or a 401 from the token endpoint)
 * is reported as {@link ClientNotFound}.
 *
 * @since 0.1.0
 * @category errors
 */
export type TokenFailure = OAuthTokenError | ClientNotFound | OAuthRequestError

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenExchange {
  /** RFC 6749 §4.1.3 + RFC 7636 §4.5: exchanges an authorization code. */
  readonly authorizationCode: (
    context: GrantContext & {
      readonly code: string
      readonly codeVerifier: Redacted.Redacted<string>
      readonly redirectUri: string
    }
  ) => Effect.Effect<StoredToken, TokenFailure>
  /** RFC 6749 §6: refreshes; keeps the old refresh token when the server does not rotate it. */
  readonly refresh: (
    context: GrantContext & {
      readonly refreshToken: Redacted.Redacted<string>
      /** The DPoP key the token set is bound to (`StoredToken.dpopKey`): the proof is signed with it. */
      readonly dpopKey?: Redacted.Redacted<string> | undefined
    }
  ) => Effect.Effect<StoredToken, TokenFailure>
  /** RFC 6749 §4.4: the client credentials grant (MCP SEP-1046). */
  readonly clientCredentials: (context: GrantContext) => Effect.Effect<StoredToken, TokenFailure>
  /** Any other grant (RFC 8693 token exchange, RFC 7523 JWT bearer…), with the usual client auth. */
  readonly grant: (
    context: GrantContext & { readonly tokenEndpoint?: string | undefined },
    parameters: Readonly<Record<string, string>>
  ) => Effect.Effect<StoredToken, TokenFailure>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TokenExchange: Context.Tag<TokenExchange, TokenExchange> = Context.GenericTag<TokenExchange>(
  "effect-mcp-oauth/TokenExchange"
)

/**
 * `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 §2.3.1 requires for the
 * client id and secret before they are joined for HTTP Basic.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @since 0.1.0
 * @category client authentication
 */
export const formUrlEncode = (value: string): string => new URLSearchParams([["v", value]]).toString().slice(2)

/**
 * The `Authorization` header value of `client_secret_basic`: Base64 (of UTF-8) of the
 * form-encoded client id, a colon and the form-encoded secret. Safe for any Unicode input.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @since 0.1.0
 * @category client authentication
 */
export const basicAuthorization = (clientId: string, clientSecret: Redacted.Redacted<string>): string =>
  `Basic ${Encoding.encodeBase64(`${formUrlEncode(clientId)}:${formUrlEncode(Redacted.value(clientSecret))}`)}`

/**
 * Reads a `Retry-After` header (RFC 9110 §10.2.3): delay seconds or an HTTP date; the result is
 * seconds from `now` (epoch ms), or `undefined` when absent or unreadable.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 * @since 0.1.0
 * @category parsing
 */
export const parseRetryAfter = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000))
}

/**
 * Splits an RFC 6749 `scope` string into scope tokens.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.3
 * @since 0.1.0
 * @category scopes
 */
export const parseScope = (scope: string | undefined): ReadonlyArray<string> =>
  scope === undefined ? [] : scope.split(" ").filter((s) => s.length > 0)

/** The values of a token request that are secrets (or grants), which a server must not see echoed back. */
const secretValues = (params: Record<string, string>): ReadonlyArray<string> =>
  Object.entries(params)
    .filter(([name]) => !NOT_SECRET.has(name))
    .map(([, value]) => value)

const NOT_SECRET: ReadonlySet<string> = new Set(["grant_type", "scope", "resource", "redirect_uri", "client_id"])

const MAX_DESCRIPTION = 500

/**
 * An RFC 6749 §5.2 error response (its `error` code kept as is) with every occurrence of what the request sent as a secret
 * (refresh token, code, code verifier, client secret, assertion) replaced by `[redacted]`, and
 * `error_description` cut to a readable length: some servers echo the refresh token they refuse,
 * and the description ends up in error messages and logs.
 */
const scrubErrorResponse = (
  e: typeof OAuthErrorResponse.Type,
  secrets: ReadonlyArray<string>
): typeof OAuthErrorResponse.Type => {
  const scrub = (text: string): string => {
    let out = text
    // Very short values (a test secret "s") would shred the text and are no secret worth hiding.
    for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]")
    return out.length > MAX_DESCRIPTION ? `${out.slice(0, MAX_DESCRIPTION)}…` : out
  }
  return {
    error: e.error,
    ...(e.error_description === undefined ? {} : { error_description: scrub(e.error_description) }),
    ...(e.error_uri === undefined ? {} : { error_uri: scrub(e.error_uri) })
  }
}

/** What every token request needs: the inner client, its limits, the DPoP key (if any), the signing key (if any). */
interface TokenHttp {
  readonly client: HttpClient.HttpClient
  readonly options: OAuthHttp.OAuthHttpOptions
  readonly dpop: Option.Option<Dpop.Dpop>
  readonly privateKeyJwt: PrivateKeyJwtConfig | undefined
}

/** RFC 7523 §2.2: the `private_key_jwt` client assertion for the authorization server `audience`. */
const clientAssertion = (
  keyConfig: PrivateKeyJwtConfig | undefined,
  info: ClientInformation,
  audience: string,
  url: string
): Effect.Effect<string, OAuthRequestError> => {
  if (keyConfig === undefined) {
    return Effect.fail(
      new OAuthRequestError({
        reason: "Status",
        url,
        detail: "private_key_jwt requires the privateKeyJwt option (a PKCS#8 key)"
      })
    )
  }
  return Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.mapError(
      signClientAssertion({ key: keyConfig, clientId: info.clientId, audience, now }),
      (cause) =>
        new OAuthRequestError({
          reason: "Status",
          url,
          detail: `could not sign the client assertion: ${String(cause.error)}`
        })
    ))
}

/** RFC 6749 §2.3 / RFC 7523 §2.2: the client authentication of a token request, in its header or body. */
const authenticate = (
  keyConfig: PrivateKeyJwtConfig | undefined,
  info: ClientInformation,
  params: Record<string, string>,
  request: HttpClientRequest.HttpClientRequest,
  audience: string
): Effect.Effect<
  readonly [HttpClientRequest.HttpClientRequest, Record<string, string>],
  OAuthRequestError
> => {
  switch (info.tokenEndpointAuthMethod) {
    case "client_secret_basic":
      if (info.clientSecret !== undefined) {
        // RFC 6749 §2.3.1: with Basic, the client id is NOT repeated in the body.
        return Effect.succeed([
          HttpClientRequest.setHeader(request, "authorization", basicAuthorization(info.clientId, info.clientSecret)),
          params
        ] as const)
      }
      return Effect.succeed([request, { ...params, client_id: info.clientId }] as const)
    case "client_secret_post":
      return Effect.succeed([request, {
        ...params,
        client_id: info.clientId,
        ...(info.clientSecret === undefined ? {} : { client_secret: Redacted.value(info.clientSecret) })
      }] as const)
    case "private_key_jwt":
      return Effect.map(clientAssertion(keyConfig, info, audience, request.url), (assertion) =>
        [request, {
          ...params,
          client_id: info.clientId,
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: assertion
        }] as const)
    case "none":
      return Effect.succeed([request, { ...params, client_id: info.clientId }] as const)
  }
}

/** RFC 8414 §2: the token endpoint (given, or from the metadata). */
const tokenEndpointOf = (
  context: GrantContext & { readonly tokenEndpoint?: string | undefined }
): Effect.Effect<string, OAuthRequestError> => {
  const as = context.discovery.authorizationServer
  const endpoint = context.tokenEndpoint ?? as.token_endpoint
  return endpoint !== undefined ? Effect.succeed(endpoint) : Effect.fail(
    new OAuthRequestError({
      reason: "Status",
      url: as.issuer,
      detail: "the authorization server metadata has no token_endpoint"
    })
  )
}

/**
 * RFC 6749 §3.2: POSTs the authenticated token request, with a DPoP proof (RFC 9449 §5) when
 * `proofKey` is set; a `use_dpop_nonce` answer (RFC 9449 §8) is tried again once with the nonce.
 */
const postTokenRequest = (
  http: TokenHttp,
  context: GrantContext,
  proofKey: Option.Option<Dpop.Dpop>,
  endpoint: string,
  params: Record<string, string>,
  /** The stored key to sign the proof with (see `signingKeyOf`). */
  key: Redacted.Redacted<string> | undefined
) => {
  const send = Effect.gen(function*() {
    const issuer = context.discovery.authorizationServer.issuer
    const [request, body] = yield* authenticate(
      http.privateKeyJwt,
      context.client,
      params,
      HttpClientRequest.post(endpoint),
      issuer
    )
    const withProof = Option.isNone(proofKey) ? request : HttpClientRequest.setHeader(
      request,
      "dpop",
      yield* proofKey.value.proof({
        method: "POST",
        url: endpoint,
        nonce: Option.getOrUndefined(yield* proofKey.value.nonce(endpoint)),
        key
      })
    )
    const response = yield* OAuthHttp.execute(http.client, HttpClientRequest.bodyUrlParams(withProof, body), http.options)
    const nonce = response.headers["dpop-nonce"]
    if (Option.isSome(proofKey) && nonce !== undefined) yield* proofKey.value.setNonce(endpoint, nonce)
    return response
  })
  return Effect.gen(function*() {
    const first = yield* send
    // RFC 9449 §8: the server wants a nonce in the proof; it sent one; try again once.
    const needsNonce = Option.isSome(proofKey) && first.status === 400 &&
      first.headers["dpop-nonce"] !== undefined &&
      Either.getOrUndefined(OAuthHttp.decodeJson(OAuthErrorResponse, first))?.error === "use_dpop_nonce"
    return needsNonce ? yield* send : first
  })
}

/**
 * RFC 6749 §5.2: the failure a non-200 token response stands for; `invalid_client` (or a 401
 * without an OAuth error body) is `ClientNotFound`. Secrets the request sent are scrubbed from it.
 */
const tokenErrorFrom = (
  response: OAuthHttp.OAuthResponse,
  context: GrantContext,
  grantParams: Record<string, string>,
  now: number
): TokenFailure => {
  const retryAfter = parseRetryAfter(response.headers["retry-after"], now)
  const wait = retryAfter === undefined ? {} : { retryAfter }
  const error = OAuthHttp.decodeJson(OAuthErrorResponse, response)
  if (Either.isRight(error)) {
    const e = scrubErrorResponse(error.right, [
      ...secretValues(grantParams),
      ...(context.client.clientSecret === undefined ? [] : [Redacted.value(context.client.clientSecret)])
    ])
    if (e.error === "invalid_client") {
      return new ClientNotFound({
        clientId: context.client.clientId,
        ...(e.error_description === undefined ? {} : { description: e.error_description })
      })
    }
    return new OAuthTokenError({
      error: e.error,
      status: response.status,
      ...wait,
      ...(e.error_description === undefined ? {} : { errorDescription: e.error_description }),
      ...(e.error_uri === undefined ? {} : { errorUri: e.error_uri })
    })
  }
  if (response.status === 401) {
    return new ClientNotFound({ clientId: context.client.clientId, description: "token endpoint answered 401" })
  }
  return new OAuthTokenError({
    error: response.status >= 500 ? "server_error" : "invalid_response",
    status: response.status,
    ...wait,
    errorDescription: `token endpoint answered HTTP ${response.status} without an OAuth error body`
  })
}

/**
 * RFC 6749 §5.1: the token a 200 response grants, checked (`expires_in`, `token_type`: Bearer, or
 * DPoP when a proof was sent), as it is stored.
 */
const storedTokenFrom = (
  response: OAuthHttp.OAuthResponse,
  context: GrantContext,
  proofSent: boolean,
  /** The refresh token to keep when the server does not rotate it (RFC 6749 §6). */
  currentRefreshToken: Redacted.Redacted<string> | undefined,
  now: number
): Either.Either<StoredToken, OAuthTokenError> => {
  const decoded = OAuthHttp.decodeJson(TokenResponse, response)
  if (Either.isLeft(decoded)) {
    return Either.left(new OAuthTokenError({ error: "invalid_response", status: 200, errorDescription: decoded.left }))
  }
  const token = decoded.right
  if (token.expires_in !== undefined && !(Number.isFinite(token.expires_in) && token.expires_in >= 0)) {
    // RFC 6749 §5.1: a lifetime in seconds. `1e400`, "NaN" or -5 would make the expiry
    // Infinity, NaN or the past, and a stored NaN/Infinity does not survive JSON.
    return Either.left(
      new OAuthTokenError({
        error: "invalid_response",
        status: 200,
        errorDescription: "expires_in is not a finite, non-negative number of seconds"
      })
    )
  }
  const tokenType = token.token_type.toLowerCase()
  const dpopBound = tokenType === "dpop" && proofSent
  if (tokenType !== "bearer" && tokenType !== "n_a" && !dpopBound) {
    return Either.left(
      new OAuthTokenError({
        error: "unsupported_token_type",
        status: 200,
        errorDescription: `token_type "${token.token_type}" is not supported (expected Bearer)`
      })
    )
  }
  const granted = token.scope !== undefined ? parseScope(token.scope) : context.scopes ?? []
  const refreshToken = token.refresh_token !== undefined
    ? Redacted.make(token.refresh_token)
    : currentRefreshToken
  return Either.right(
    new StoredToken({
      accessToken: Redacted.make(token.access_token),
      tokenType: dpopBound ? "DPoP" : "Bearer",
      ...(refreshToken === undefined ? {} : { refreshToken }),
      ...(token.expires_in === undefined ? {} : { expiresAt: now + token.expires_in * 1000 }),
      scopes: granted,
      issuer: context.discovery.issuer,
      ...(context.discovery.authorizationServer.revocation_endpoint === undefined
        ? {}
        : { revocationEndpoint: context.discovery.authorizationServer.revocation_endpoint }),
      ...(context.resource === undefined ? {} : { resource: context.resource }),
      obtainedAt: now
    }, typed)
  )
}

/** RFC 6749 §3.2, §5: one token request with any grant, from request to stored token. */
const tokenRequest = (
  http: TokenHttp,
  context: GrantContext & { readonly tokenEndpoint?: string | undefined },
  grantParams: Record<string, string>,
  /** The refresh token to keep when the server does not rotate it (RFC 6749 §6). */
  currentRefreshToken: Redacted.Redacted<string> | undefined,
  /** The DPoP key the refreshed set is bound to (RFC 9449 §5). */
  boundKey?: Redacted.Redacted<string> | undefined
): Effect.Effect<StoredToken, TokenFailure> =>
  Effect.gen(function*() {
    const endpoint = yield* tokenEndpointOf(context)
    const params: Record<string, string> = {
      ...grantParams,
      ...(context.resource === undefined ? {} : { resource: context.resource })
    }
    // RFC 9449 §5: a DPoP proof on the token request when the server accepts ES256 proofs.
    const proofKey = Option.filter(http.dpop, () => Dpop.supportedBy(context.discovery.authorizationServer))
    // RFC 9449 §5: the proof of a refresh is signed with the set's key; the key that signs is
    // the one stored with the new set (chosen once here: a service shared by several layers may
    // switch its own key meanwhile).
    const signing = yield* signingKeyOf(proofKey, boundKey)
    const response = yield* postTokenRequest(http, context, proofKey, endpoint, params, signing)
    if (response.status !== 200) {
      return yield* Effect.fail(tokenErrorFrom(response, context, grantParams, yield* Clock.currentTimeMillis))
    }
    const now = yield* Clock.currentTimeMillis
    const token = yield* storedTokenFrom(response, context, Option.isSome(proofKey), currentRefreshToken, now)
    return token.tokenType === "DPoP" && signing !== undefined
      ? new StoredToken({ ...token, dpopKey: signing }, typed)
      : token
  })

/**
 * The stored DPoP key a token request is signed with: the set's own (`boundKey`) when the service
 * can use it, else the service's key when it can be exported; `undefined` when the service signs
 * with a key that cannot be stored.
 */
const signingKeyOf = (
  proofKey: Option.Option<Dpop.Dpop>,
  boundKey: Redacted.Redacted<string> | undefined
): Effect.Effect<Redacted.Redacted<string> | undefined> =>
  Effect.gen(function*() {
    if (Option.isNone(proofKey)) return undefined
    const { exportKey, useKey } = proofKey.value
    if (boundKey !== undefined && useKey !== undefined) {
      if (yield* useKey(boundKey)) return boundKey
      yield* Effect.logWarning("The DPoP key stored with the token set is unusable; the refresh is signed with another key")
    }
    return exportKey === undefined ? undefined : yield* exportKey
  })

const scopeParam = (scopes: ReadonlyArray<string> | undefined): Record<string, string> =>
  scopes === undefined || scopes.length === 0 ? {} : { scope: scopes.join(" ") }

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: TokenExchangeConfig = {}): Effect.Effect<TokenExchange, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http: TokenHttp = {
      client: yield* HttpClient.HttpClient,
      dpop: yield* Effect.serviceOption(Dpop.Dpop),
      options: {
        timeout: config.timeout ?? Duration.seconds(30),
        ...(config.allowInsecure === undefined ? {} : { allowInsecure: config.allowInsecure })
      },
      privateKeyJwt: config.privateKeyJwt
    }
    return TokenExchange.of({
      authorizationCode: (context) =>
        tokenRequest(http, context, {
          grant_type: "authorization_code",
          code: context.code,
          redirect_uri: context.redirectUri,
          code_verifier: Redacted.value(context.codeVerifier)
        }, undefined).pipe(Effect.withSpan("TokenExchange.authorizationCode")),
      refresh: (context) =>
        tokenRequest(
          http,
          context,
          { grant_type: "refresh_token", refresh_token: Redacted.value(context.refreshToken), ...scopeParam(context.scopes) },
          context.refreshToken,
          context.dpopKey
        ).pipe(Effect.withSpan("TokenExchange.refresh")),
      clientCredentials: (context) =>
        tokenRequest(http, context, { grant_type: "client_credentials", ...scopeParam(context.scopes) }, undefined).pipe(
          Effect.withSpan("TokenExchange.clientCredentials")
        ),
      grant: (context, parameters) =>
        tokenRequest(http, context, { ...parameters }, undefined).pipe(Effect.withSpan("TokenExchange.grant"))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: TokenExchangeConfig = {}): Layer.Layer<TokenExchange, never, HttpClient.HttpClient> =>
  Layer.effect(TokenExchange, make(config))
