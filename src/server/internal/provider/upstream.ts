/**
 * The OAuth proxy's side of the sign-in with its upstream authorization server: after the user
 * approved a downstream client on the proxy's own consent page, the browser goes upstream with the
 * proxy's pre-registered client and its own PKCE (RFC 7636) and `state`; the upstream's answer
 * comes back to the proxy's callback, which redeems the upstream code at the upstream token
 * endpoint and only then issues its own authorization code to the downstream client.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as OAuthHttp from "../../../internal/oauthHttp.js"
import { basicAuthorization } from "../../../TokenExchange.js"
import { PendingAuthorization } from "../../OAuthProviderStore.js"
import { randomToken, sha256Base64Url } from "../crypto.js"
import { escapeHtml, OAuthFailure, page, queryOf } from "../http.js"
import { issueCode, redirectWith } from "./authorization.js"
import type { ProviderConfig } from "./config.js"
import { typed } from "../../../internal/typed.js"

/** The upstream authorization server and the proxy's client there. @internal */
export interface UpstreamConfig {
  readonly issuer: string | undefined
  /** The upstream's endpoints: configured, or read (once) from its metadata. */
  readonly endpoints: Effect.Effect<UpstreamEndpoints, string, HttpClient.HttpClient>
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly authMethod: "client_secret_basic" | "client_secret_post" | "none"
  readonly scopes: ReadonlyArray<string>
  /** RFC 8707 `resource` sent upstream, if any. */
  readonly resource: string | undefined
  /** The proxy's callback URL, registered at the upstream server. */
  readonly callbackUrl: string
  readonly http: OAuthHttp.OAuthHttpOptions
}

/** The upstream endpoints the proxy uses. @internal */
export interface UpstreamEndpoints {
  readonly authorizationEndpoint: string
  readonly tokenEndpoint: string
}

const UpstreamMetadata = Schema.Struct({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String
})

/**
 * RFC 8414 §3 (then OpenID Connect Discovery 1.0 §4): the upstream's endpoints from its metadata,
 * which must name `issuer` itself (§3.3). A failure is not remembered; a success is.
 *
 * @internal
 */
export const discoverUpstream = (
  issuer: string,
  http: OAuthHttp.OAuthHttpOptions
): Effect.Effect<Effect.Effect<UpstreamEndpoints, string, HttpClient.HttpClient>> =>
  Effect.sync(() => {
    let found: UpstreamEndpoints | undefined
    const url = new URL(issuer)
    const path = url.pathname.replace(/\/+$/, "")
    const candidates = [
      `${url.origin}/.well-known/oauth-authorization-server${path}`,
      `${url.origin}${path}/.well-known/openid-configuration`
    ]
    return Effect.gen(function*() {
      if (found !== undefined) return found
      const client = yield* HttpClient.HttpClient
      for (const candidate of candidates) {
        const response = yield* OAuthHttp.execute(client, HttpClientRequest.get(candidate), http).pipe(
          Effect.mapError((e) => e.message)
        )
        if (response.status === 404) continue
        if (response.status !== 200) return yield* Effect.fail(`${candidate} answered HTTP ${response.status}`)
        const document = OAuthHttp.decodeJson(UpstreamMetadata, response)
        if (Either.isLeft(document)) return yield* Effect.fail(`${candidate}: ${document.left}`)
        if (document.right.issuer !== issuer) return yield* Effect.fail(`${candidate} is for another issuer`)
        found = {
          authorizationEndpoint: document.right.authorization_endpoint,
          tokenEndpoint: document.right.token_endpoint
        }
        return found
      }
      return yield* Effect.fail(`no metadata for ${issuer}`)
    })
  })

/** How long the user may take to sign in upstream. */
const UPSTREAM_TTL_MILLIS = 10 * 60 * 1000

const UpstreamTokenResponse = Schema.Struct({
  access_token: Schema.String,
  token_type: Schema.String,
  id_token: Schema.optional(Schema.String),
  refresh_token: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String)
})

/**
 * After consent: remembers the downstream request under a fresh upstream `state`, with a new PKCE
 * verifier, and sends the browser to the upstream authorization endpoint (RFC 6749 §4.1.1).
 *
 * @internal
 */
export const redirectUpstream = (config: ProviderConfig, upstream: UpstreamConfig) =>
(
  pending: PendingAuthorization
): Effect.Effect<HttpServerResponse.HttpServerResponse, OAuthFailure, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const endpoints = yield* upstream.endpoints.pipe(
      Effect.tapError((detail) =>
        Effect.logWarning("OAuth proxy: upstream metadata unavailable").pipe(Effect.annotateLogs("detail", detail))
      ),
      Effect.mapError(() =>
        new OAuthFailure({
          status: 503,
          error: "temporarily_unavailable",
          description: "the identity provider cannot be reached"
        })
      )
    )
    const now = yield* Clock.currentTimeMillis
    const state = randomToken()
    const verifier = randomToken(48)
    yield* config.store.putPending(
      new PendingAuthorization({
        ...pending,
        id: Redacted.make(state),
        upstreamCodeVerifier: Redacted.make(verifier),
        expiresAt: now + UPSTREAM_TTL_MILLIS
      }, typed)
    )
    const url = new URL(endpoints.authorizationEndpoint)
    url.searchParams.set("response_type", "code")
    url.searchParams.set("client_id", upstream.clientId)
    url.searchParams.set("redirect_uri", upstream.callbackUrl)
    url.searchParams.set("state", state)
    url.searchParams.set("code_challenge", sha256Base64Url(verifier))
    url.searchParams.set("code_challenge_method", "S256")
    if (upstream.scopes.length > 0) url.searchParams.set("scope", upstream.scopes.join(" "))
    if (upstream.resource !== undefined) url.searchParams.set("resource", upstream.resource)
    return HttpServerResponse.redirect(url.toString(), { status: 303, headers: { "cache-control": "no-store" } })
  })

const errorPage = (description: string, status = 400) =>
  page(
    "Sign-in error",
    `<h1>Sign-in error</h1><p id="error_description">${escapeHtml(description)}</p>`,
    status
  )

/** RFC 6749 §4.1.3: redeems the upstream code with the proxy's client and PKCE verifier. */
const redeemUpstreamCode = (upstream: UpstreamConfig, code: string, verifier: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const { tokenEndpoint } = yield* upstream.endpoints
    const params: Record<string, string> = {
      grant_type: "authorization_code",
      code,
      redirect_uri: upstream.callbackUrl,
      code_verifier: verifier
    }
    let request = HttpClientRequest.post(tokenEndpoint)
    if (upstream.authMethod === "client_secret_basic" && upstream.clientSecret !== undefined) {
      request = HttpClientRequest.setHeader(request, "authorization", basicAuthorization(upstream.clientId, upstream.clientSecret))
    } else {
      params["client_id"] = upstream.clientId
      if (upstream.authMethod === "client_secret_post" && upstream.clientSecret !== undefined) {
        params["client_secret"] = Redacted.value(upstream.clientSecret)
      }
    }
    const response = yield* OAuthHttp.execute(client, HttpClientRequest.bodyUrlParams(request, params), upstream.http)
      .pipe(Effect.mapError((e) => e.message))
    if (response.status !== 200) {
      return yield* Effect.fail(`the upstream token endpoint answered HTTP ${response.status}`)
    }
    const decoded = OAuthHttp.decodeJson(UpstreamTokenResponse, response)
    if (Either.isLeft(decoded)) return yield* Effect.fail(`upstream token response: ${decoded.left}`)
    return decoded.right
  })

/**
 * Who signed in upstream: the `sub` of the ID token received directly from the upstream token
 * endpoint (OpenID Connect Core §3.1.3.7: over TLS from the token endpoint, its signature need not
 * be checked), bound to the upstream issuer when known.
 */
const subjectOf = (upstream: UpstreamConfig, idToken: string | undefined): Either.Either<string, string> => {
  if (idToken === undefined) {
    return Either.left("the upstream server returned no ID token (the upstream scopes must include openid)")
  }
  const claims = decodeIdTokenClaims(idToken)
  if (Option.isNone(claims)) return Either.left("the upstream ID token is malformed")
  const { aud, iss, sub } = claims.value
  if (upstream.issuer !== undefined && iss !== upstream.issuer) {
    return Either.left("the upstream ID token is from another issuer")
  }
  if (aud !== upstream.clientId && !(Array.isArray(aud) && aud.includes(upstream.clientId))) {
    return Either.left("the upstream ID token is for another client")
  }
  return typeof sub === "string" && sub !== "" ? Either.right(sub) : Either.left("the upstream ID token has no sub")
}

/** The claims of an ID token this module reads (OpenID Connect Core §2); others are ignored. */
const IdTokenClaims = Schema.Struct({
  iss: Schema.optional(Schema.String),
  sub: Schema.optional(Schema.String),
  aud: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String)))
})

/**
 * The payload of a compact JWS (RFC 7515 §7.1: three base64url parts, the second a JSON object,
 * RFC 7519 §7.2), decoded without checking the signature (see {@link subjectOf}).
 */
const decodeIdTokenClaims = (jwt: string): Option.Option<typeof IdTokenClaims.Type> => {
  const parts = jwt.split(".")
  const payload = parts[1]
  if (parts.length !== 3 || payload === undefined || !/^[A-Za-z0-9_-]+$/.test(payload)) return Option.none()
  return Schema.decodeUnknownOption(Schema.parseJson(IdTokenClaims))(Buffer.from(payload, "base64url").toString("utf8"))
}

/**
 * `GET /callback`: the upstream authorization response (RFC 6749 §4.1.2). The `state` must name a
 * pending sign-in (single use); an upstream error goes back to the downstream client as
 * `access_denied` (or the upstream's error code); a code is redeemed upstream, and the proxy then
 * issues its own code for the downstream client's original request.
 *
 * @internal
 */
export const callbackEndpoint = (config: ProviderConfig, upstream: UpstreamConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = new URLSearchParams(queryOf(request))
    const state = params.get("state")
    const pending = state === null ? Option.none() : yield* config.store.takePending(state)
    const now = yield* Clock.currentTimeMillis
    const verifier = Option.isSome(pending) ? pending.value.upstreamCodeVerifier : undefined
    if (Option.isNone(pending) || verifier === undefined || pending.value.expiresAt <= now) {
      return errorPage("This sign-in has expired or was already completed.")
    }
    const p = pending.value
    const toClient = (error: string, description: string) =>
      redirectWith(config, p.redirectUri, { error, error_description: description, state: p.state }, 303)
    // RFC 9207 §2.4: when the upstream names itself, it must be the expected issuer.
    const iss = params.get("iss")
    if (iss !== null && upstream.issuer !== undefined && iss !== upstream.issuer) {
      return toClient("access_denied", "the upstream authorization response came from another issuer")
    }
    const upstreamError = params.get("error")
    if (upstreamError !== null) {
      const passed = ["access_denied", "temporarily_unavailable", "server_error"].includes(upstreamError)
        ? upstreamError
        : "access_denied"
      return toClient(passed, "the sign-in at the identity provider did not complete")
    }
    const code = params.get("code")
    if (code === null || code === "") return toClient("server_error", "the identity provider returned no code")
    const tokens = yield* Effect.either(redeemUpstreamCode(upstream, code, Redacted.value(verifier)))
    if (Either.isLeft(tokens)) {
      yield* Effect.logWarning("OAuth proxy: upstream code redemption failed").pipe(
        Effect.annotateLogs("detail", tokens.left)
      )
      return toClient("server_error", "the identity provider could not complete the sign-in")
    }
    const subject = subjectOf(upstream, tokens.right.id_token)
    if (Either.isLeft(subject)) {
      yield* Effect.logWarning("OAuth proxy: no subject").pipe(Effect.annotateLogs("detail", subject.left))
      return toClient("server_error", "the identity provider did not say who signed in")
    }
    const issued = yield* issueCode(config, {
      clientId: p.clientId,
      redirectUri: p.redirectUri,
      codeChallenge: p.codeChallenge,
      subject: subject.right,
      scopes: p.scopes,
      resource: p.resource
    })
    return redirectWith(config, p.redirectUri, { code: issued, state: p.state }, 303)
  })
