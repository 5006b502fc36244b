/**
 * The device authorization grant (RFC 8628): sign-in for a client that cannot open a browser
 * where it runs (an SSH session, a container). The client asks the authorization server for a
 * device code and a user code (§3.1–3.2), shows the user where to go and what to enter (§3.3),
 * and polls the token endpoint (§3.4–3.5) until the user has approved or denied, or the code
 * has expired. `slow_down` adds 5 seconds to the polling interval, for this and every later poll.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { AuthorizationError, ClientNotFound, OAuthRequestError, OAuthTokenError } from "./Errors.js"
import type * as Discovery from "./Discovery.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { type ClientInformation, OAuthErrorResponse, type StoredToken } from "./Schemas.js"
import * as TokenExchange from "./TokenExchange.js"

/**
 * The `grant_type` of the device access token request.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.4
 * @since 0.1.0
 * @category constants
 */
export const DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"

/**
 * The polling interval when the server names none (RFC 8628 §3.2: 5 seconds).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.2
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_INTERVAL_SECONDS = 5

/**
 * What `slow_down` adds to the polling interval (RFC 8628 §3.5: 5 seconds).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.5
 * @since 0.1.0
 * @category constants
 */
export const SLOW_DOWN_SECONDS = 5

/**
 * The device authorization response.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.2
 * @since 0.1.0
 * @category schemas
 */
export const DeviceAuthorizationResponse = Schema.Struct({
  device_code: Schema.String,
  user_code: Schema.String,
  verification_uri: Schema.String,
  verification_uri_complete: Schema.optional(Schema.String),
  expires_in: Schema.Number,
  interval: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type DeviceAuthorizationResponse = typeof DeviceAuthorizationResponse.Type

/**
 * What the user must be shown (RFC 8628 §3.3): the verification URI with the code in it when the
 * server gives one (`verificationUriComplete`, e.g. for a QR code), else the URI and the code to type.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @since 0.1.0
 * @category models
 */
export interface DeviceCodePrompt {
  readonly issuer: string
  readonly userCode: string
  readonly verificationUri: string
  readonly verificationUriComplete: string | undefined
  /** How long the codes stay valid. */
  readonly expiresIn: Duration.Duration
}

/**
 * The text shown by default: the address to open (with the code in it when possible) and the
 * code to check or type.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @since 0.1.0
 * @category display
 */
export const promptText = (prompt: DeviceCodePrompt): string =>
  prompt.verificationUriComplete !== undefined
    ? `To sign in, open ${prompt.verificationUriComplete} on any device and check that it shows the code ` +
      `${prompt.userCode} (valid for ${Duration.format(prompt.expiresIn)}).`
    : `To sign in, open ${prompt.verificationUri} on any device and enter the code ${prompt.userCode} ` +
      `(valid for ${Duration.format(prompt.expiresIn)}).`

/**
 * The default way to show the prompt: one line on standard error.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @since 0.1.0
 * @category display
 */
export const showOnStderr = (prompt: DeviceCodePrompt): Effect.Effect<void> => Console.error(promptText(prompt))

/**
 * The polling interval after a token error response, or `undefined` when polling must stop:
 * `authorization_pending` keeps it, `slow_down` adds {@link SLOW_DOWN_SECONDS} (RFC 8628 §3.5).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.5
 * @since 0.1.0
 * @category polling
 */
export const nextInterval = (error: string, intervalSeconds: number): number | undefined =>
  error === "authorization_pending"
    ? intervalSeconds
    : error === "slow_down"
    ? intervalSeconds + SLOW_DOWN_SECONDS
    : undefined

/**
 * The device authorization request (RFC 8628 §3.1): `client_id`, `scope` and the RFC 8707
 * `resource`, with the client's secret when it has one (RFC 6749 §2.3.1, as at the token endpoint).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.1
 * @since 0.1.0
 * @category requests
 */
export const requestDeviceAuthorization = (
  httpClient: HttpClient.HttpClient,
  params: {
    readonly endpoint: string
    readonly client: ClientInformation
    readonly scopes: ReadonlyArray<string>
    readonly resource: string | undefined
  },
  options: OAuthHttp.OAuthHttpOptions
): Effect.Effect<DeviceAuthorizationResponse, OAuthRequestError | OAuthTokenError | ClientNotFound> =>
  Effect.gen(function*() {
    const { client, endpoint } = params
    const request = TokenExchange.secretAuthenticatedPost(endpoint, client, {
      ...(params.scopes.length > 0 ? { scope: params.scopes.join(" ") } : {}),
      ...(params.resource === undefined ? {} : { resource: params.resource })
    })
    const response = yield* OAuthHttp.execute(httpClient, request, options)
    if (response.status !== 200) {
      const error = OAuthHttp.decodeJson(OAuthErrorResponse, response)
      if (Either.isLeft(error)) {
        return yield* Effect.fail(
          new OAuthRequestError({
            reason: "Status",
            url: endpoint,
            status: response.status,
            detail: `the device authorization endpoint answered ${response.status}: ${error.left}`
          })
        )
      }
      if (error.right.error === "invalid_client") {
        return yield* Effect.fail(
          new ClientNotFound({
            clientId: client.clientId,
            ...(error.right.error_description === undefined ? {} : { description: error.right.error_description })
          })
        )
      }
      return yield* Effect.fail(
        new OAuthTokenError({
          error: error.right.error,
          status: response.status,
          ...(error.right.error_description === undefined ? {} : { errorDescription: error.right.error_description })
        })
      )
    }
    return yield* Either.match(OAuthHttp.decodeJson(DeviceAuthorizationResponse, response), {
      onLeft: (detail) => Effect.fail(new OAuthRequestError({ reason: "Decode", url: endpoint, detail })),
      onRight: Effect.succeed
    })
  }).pipe(Effect.withSpan("DeviceAuthorization.request"))

/**
 * Polls the token endpoint with the device code (RFC 8628 §3.4) until a token is issued:
 * waits `interval` seconds before each request, keeps going on `authorization_pending`, adds 5
 * seconds on `slow_down`; `access_denied` is `AuthorizationError` "Denied", `expired_token` (or
 * the codes' lifetime running out here) is `AuthorizationError` "Timeout". Interruptible while it
 * waits: interrupting the fiber cancels the sign-in.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.4
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.5
 * @since 0.1.0
 * @category polling
 */
export const pollForToken = (
  exchange: TokenExchange.TokenExchange,
  context: TokenExchange.GrantContext,
  authorization: DeviceAuthorizationResponse
): Effect.Effect<StoredToken, TokenExchange.TokenFailure | AuthorizationError> => {
  const poll = (intervalSeconds: number): Effect.Effect<StoredToken, TokenExchange.TokenFailure | AuthorizationError> =>
    Effect.sleep(Duration.seconds(intervalSeconds)).pipe(
      Effect.zipRight(
        exchange.grant(context, { grant_type: DEVICE_CODE_GRANT_TYPE, device_code: authorization.device_code })
      ),
      Effect.catchTag("OAuthTokenError", (error) => {
        const next = nextInterval(error.error, intervalSeconds)
        if (next !== undefined) return Effect.suspend(() => poll(next))
        if (error.error === "access_denied") {
          return Effect.fail(
            new AuthorizationError({
              reason: "Denied",
              error: error.error,
              detail: error.errorDescription ?? "the user denied the device sign-in"
            })
          )
        }
        if (error.error === "expired_token") {
          return Effect.fail(
            new AuthorizationError({
              reason: "Timeout",
              error: error.error,
              detail: error.errorDescription ?? "the device code expired before the user approved"
            })
          )
        }
        return Effect.fail(error)
      })
    )
  const lifetime = Duration.seconds(authorization.expires_in)
  return poll(authorization.interval ?? DEFAULT_INTERVAL_SECONDS).pipe(
    Effect.timeoutFail({
      duration: lifetime,
      onTimeout: () =>
        new AuthorizationError({
          reason: "Timeout",
          error: "expired_token",
          detail: `the device code expired (after ${Duration.format(lifetime)}) before the user approved`
        })
    }),
    Effect.withSpan("DeviceAuthorization.poll")
  )
}

/**
 * One device sign-in against discovered metadata, with a client already chosen: the device
 * authorization request, the prompt shown through `show`, the polling.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3
 * @since 0.1.0
 * @category sign-in
 */
export const signIn = (params: {
  readonly httpClient: HttpClient.HttpClient
  readonly exchange: TokenExchange.TokenExchange
  readonly discovery: Discovery.DiscoveryResult
  readonly client: ClientInformation
  readonly scopes: ReadonlyArray<string>
  readonly show: (prompt: DeviceCodePrompt) => Effect.Effect<void>
  readonly httpOptions: OAuthHttp.OAuthHttpOptions
}): Effect.Effect<StoredToken, TokenExchange.TokenFailure | AuthorizationError> =>
  Effect.gen(function*() {
    const as = params.discovery.authorizationServer
    const endpoint = as.device_authorization_endpoint
    if (endpoint === undefined) {
      return yield* Effect.fail(
        new OAuthRequestError({
          reason: "Status",
          url: as.issuer,
          detail: "the authorization server metadata has no device_authorization_endpoint (RFC 8628 §4)"
        })
      )
    }
    const authorization = yield* requestDeviceAuthorization(params.httpClient, {
      endpoint,
      client: params.client,
      scopes: params.scopes,
      resource: params.discovery.resource
    }, params.httpOptions)
    yield* params.show({
      issuer: params.discovery.issuer,
      userCode: authorization.user_code,
      verificationUri: authorization.verification_uri,
      verificationUriComplete: authorization.verification_uri_complete,
      expiresIn: Duration.seconds(authorization.expires_in)
    })
    return yield* pollForToken(params.exchange, {
      discovery: params.discovery,
      client: params.client,
      resource: params.discovery.resource,
      scopes: params.scopes
    }, authorization)
  }).pipe(Effect.withSpan("DeviceAuthorization.signIn"))
