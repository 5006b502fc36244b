/**
 * Obtaining a client identity at an authorization server, in the MCP order: a pre-registered
 * client, a Client ID Metadata Document (URL client id), or RFC 7591 dynamic registration.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { DiscoveryResult } from "./Discovery.js"
import { OAuthRegistrationError, OAuthRequestError } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import {
  ClientInformation,
  ClientInformationResponse,
  OAuthErrorResponse,
  type TokenEndpointAuthMethod
} from "./Schemas.js"
import { typed } from "./internal/typed.js"

/**
 * How this application identifies itself. All fields are optional: with none of them the client
 * registers dynamically (RFC 7591) as `clientName`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-registration-approaches
 * @since 0.1.0
 * @category models
 */
export interface RegistrationConfig {
  /** A pre-registered client id (RFC 6749 §2.2). */
  readonly clientId?: string | undefined
  /** The secret of the pre-registered client (RFC 6749 §2.3.1). */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** The token endpoint auth method of the pre-registered client; chosen from the server's list when omitted. */
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined
  /** An HTTPS URL of this client's metadata document, used as `client_id` when the server supports CIMD (SEP-991). */
  readonly clientMetadataUrl?: string | undefined
  /** `client_name` for dynamic registration (RFC 7591 §2). Default `"effect-mcp-oauth"`. */
  readonly clientName?: string | undefined
  /** Extra RFC 7591 client metadata merged into the registration request (e.g. `client_uri`, `logo_uri`). */
  readonly additionalClientMetadata?: Readonly<Record<string, unknown>> | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RegisterRequest {
  readonly discovery: DiscoveryResult
  readonly redirectUri: string
  /** The scope that will be requested, sent as RFC 7591 `scope` metadata. */
  readonly scope?: string | undefined
  /** Grant types to register; default authorization_code + refresh_token. */
  readonly grantTypes?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Registration {
  /** Returns the client identity to use at `discovery.issuer`; performs dynamic registration if needed. */
  readonly register: (
    request: RegisterRequest
  ) => Effect.Effect<ClientInformation, OAuthRegistrationError | OAuthRequestError>
  /** Whether this configuration uses a fixed (pre-registered) client, which is never re-registered. */
  readonly isStatic: boolean
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Registration: Context.Tag<Registration, Registration> = Context.GenericTag<Registration>(
  "effect-mcp-oauth/Registration"
)

const SECRET_METHODS: ReadonlyArray<string> = ["client_secret_basic", "client_secret_post"]

const isAuthMethod = (s: string): s is TokenEndpointAuthMethod =>
  s === "none" || s === "client_secret_basic" || s === "client_secret_post" || s === "private_key_jwt"

/**
 * Picks the token endpoint auth method for a client with (or without) a secret from the server's
 * `token_endpoint_auth_methods_supported` (RFC 8414 §2; absent means `client_secret_basic`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category selection
 */
export const chooseAuthMethod = (
  supported: ReadonlyArray<string> | undefined,
  hasSecret: boolean
): TokenEndpointAuthMethod => {
  if (!hasSecret) return "none"
  const list = supported ?? ["client_secret_basic"]
  if (list.includes("client_secret_basic")) return "client_secret_basic"
  if (list.includes("client_secret_post")) return "client_secret_post"
  return "client_secret_basic"
}

/**
 * The auth method to *request* in dynamic registration: `none` (a public client using PKCE) when
 * the server accepts it or does not say, otherwise the first secret-based method it supports. A
 * client that only uses `client_credentials` is confidential by definition (RFC 6749 §4.4), so it
 * asks for a secret-based method even where `none` is allowed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 * @since 0.1.0
 * @category selection
 */
export const requestedAuthMethod = (
  supported: ReadonlyArray<string> | undefined,
  options: { readonly confidential?: boolean } = {}
): TokenEndpointAuthMethod => {
  if (options.confidential === true) {
    if (supported === undefined || supported.length === 0 || supported.includes("client_secret_basic")) {
      return "client_secret_basic"
    }
    if (supported.includes("client_secret_post")) return "client_secret_post"
    return "none"
  }
  if (supported === undefined || supported.length === 0 || supported.includes("none")) return "none"
  if (supported.includes("client_secret_basic")) return "client_secret_basic"
  if (supported.includes("client_secret_post")) return "client_secret_post"
  return "none"
}

/**
 * RFC 7591 §3.2.1: the server may change the auth method asked for; its answer wins, if this
 * client can use it. A secret returned for a public client means `client_secret_basic`.
 */
const registeredAuthMethod = (
  returned: string | undefined,
  requested: TokenEndpointAuthMethod,
  hasSecret: boolean
): Effect.Effect<Exclude<TokenEndpointAuthMethod, "private_key_jwt">, OAuthRegistrationError> => {
  const authMethod: string = returned ?? (hasSecret && requested === "none" ? "client_secret_basic" : requested)
  if (!isAuthMethod(authMethod) || authMethod === "private_key_jwt") {
    return Effect.fail(
      new OAuthRegistrationError({
        reason: "InvalidResponse",
        // quoted at most 60 characters long: the server chose the value
        errorDescription: `unsupported token_endpoint_auth_method ${
          JSON.stringify(authMethod.length > 60 ? `${authMethod.slice(0, 60)}…` : authMethod)
        }`
      })
    )
  }
  return Effect.succeed(authMethod)
}

/**
 * RFC 7591 §3.2.1: `client_secret_expires_at` is seconds since the epoch, 0 for never; a secret
 * that has already expired is refused.
 */
const checkSecretExpiry = (expiresAt: number | undefined): Effect.Effect<void, OAuthRegistrationError> =>
  Effect.gen(function*() {
    if (expiresAt !== undefined && !(Number.isFinite(expiresAt) && expiresAt >= 0)) {
      // `1e400` parses as Infinity, which would be stored as null and make the stored client
      // unreadable.
      return yield* Effect.fail(
        new OAuthRegistrationError({
          reason: "InvalidResponse",
          errorDescription: "client_secret_expires_at is not a finite, non-negative number of seconds"
        })
      )
    }
    const now = yield* Clock.currentTimeMillis
    if (expiresAt !== undefined && expiresAt !== 0 && expiresAt * 1000 <= now) {
      return yield* Effect.fail(
        new OAuthRegistrationError({
          reason: "InvalidResponse",
          errorDescription: "the returned client_secret has already expired"
        })
      )
    }
  })

/**
 * Turns an RFC 7591 §3.2.1 client information response (also the RFC 7592 §3 read / update
 * response) into the stored `ClientInformation`: the server's answer wins over what was asked
 * (`token_endpoint_auth_method`, `redirect_uris`, `scope`); a secret method without a secret, an
 * unsupported method or an already expired secret is `OAuthRegistrationError` "InvalidResponse".
 * `registration_client_uri` and `registration_access_token` (RFC 7592) are kept, the token
 * `Redacted`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-3
 * @since 0.1.0
 * @category responses
 */
export const clientInformationFromResponse = (
  info: typeof ClientInformationResponse.Type,
  context: {
    /** The issuer the client belongs to (SEP-2352). */
    readonly issuer: string
    /** The auth method that was asked for. */
    readonly requestedMethod: TokenEndpointAuthMethod
    /** Used when the response omits `redirect_uris`. */
    readonly redirectUris: ReadonlyArray<string>
    /** Used when the response omits `scope`. */
    readonly scope?: string | undefined
    /** Kept when an RFC 7592 response omits them (the server did not rotate them). */
    readonly previous?: ClientInformation | undefined
  }
): Effect.Effect<ClientInformation, OAuthRegistrationError> =>
  Effect.gen(function*() {
    const hasSecret = info.client_secret !== undefined && info.client_secret.length > 0
    const authMethod = yield* registeredAuthMethod(info.token_endpoint_auth_method, context.requestedMethod, hasSecret)
    const secret = hasSecret && info.client_secret !== undefined
      ? Redacted.make(info.client_secret)
      : context.previous?.clientSecret
    if (SECRET_METHODS.includes(authMethod) && secret === undefined) {
      return yield* Effect.fail(
        new OAuthRegistrationError({
          reason: "InvalidResponse",
          errorDescription: `${authMethod} was registered but no client_secret was returned`
        })
      )
    }
    yield* checkSecretExpiry(info.client_secret_expires_at)
    const previous = context.previous
    const scope = info.scope ?? context.scope
    const registrationClientUri = info.registration_client_uri ?? previous?.registrationClientUri
    const registrationAccessToken = info.registration_access_token === undefined
      ? previous?.registrationAccessToken
      : Redacted.make(info.registration_access_token)
    const secretExpiresAt = info.client_secret_expires_at !== undefined && info.client_secret_expires_at !== 0
      ? info.client_secret_expires_at * 1000
      : hasSecret
      ? undefined
      : previous?.clientSecretExpiresAt
    return new ClientInformation({
      clientId: info.client_id,
      ...(secret === undefined ? {} : { clientSecret: secret }),
      tokenEndpointAuthMethod: authMethod,
      source: "dynamic",
      issuer: context.issuer,
      redirectUris: info.redirect_uris ?? context.redirectUris,
      ...(secretExpiresAt === undefined ? {} : { clientSecretExpiresAt: secretExpiresAt }),
      ...(scope === undefined ? {} : { scope }),
      ...(registrationClientUri === undefined ? {} : { registrationClientUri }),
      ...(registrationAccessToken === undefined ? {} : { registrationAccessToken })
    }, typed)
  })

/**
 * The RFC 7591 §2 client metadata of a registration request. The redirect URI of this sign-in is
 * registered whatever the extra metadata says.
 */
const registrationMetadata = (
  config: RegistrationConfig,
  request: RegisterRequest,
  grantTypes: ReadonlyArray<string>,
  method: TokenEndpointAuthMethod
): Record<string, unknown> => ({
  client_name: config.clientName ?? "effect-mcp-oauth",
  grant_types: grantTypes,
  // RFC 7591 §2.1: `code` goes with `authorization_code` only; a machine-to-machine or
  // device client uses no response type at all.
  response_types: grantTypes.includes("authorization_code") ? ["code"] : [],
  token_endpoint_auth_method: method,
  application_type: "native",
  ...(request.scope === undefined ? {} : { scope: request.scope }),
  ...config.additionalClientMetadata,
  redirect_uris: [request.redirectUri]
})

/** RFC 7591 §3.2.2: the server refused the registration; its `error` and description when it sent them. */
const registrationRejected = (response: OAuthHttp.OAuthResponse): OAuthRegistrationError => {
  const body = OAuthHttp.decodeJson(OAuthErrorResponse, response)
  return new OAuthRegistrationError({
    reason: "Rejected",
    status: response.status,
    ...(Either.isRight(body)
      ? {
        error: body.right.error,
        ...(body.right.error_description === undefined
          ? {}
          : { errorDescription: body.right.error_description })
      }
      : { errorDescription: `HTTP ${response.status}` })
  })
}

/** RFC 7591 §3: POST this client's metadata to `endpoint`; the answer becomes the stored client. */
const registerDynamically = (
  client: HttpClient.HttpClient,
  httpOptions: OAuthHttp.OAuthHttpOptions,
  config: RegistrationConfig,
  request: RegisterRequest,
  endpoint: string
): Effect.Effect<ClientInformation, OAuthRegistrationError | OAuthRequestError> =>
  Effect.gen(function*() {
    const grantTypes = request.grantTypes ?? ["authorization_code", "refresh_token"]
    const method = requestedAuthMethod(request.discovery.authorizationServer.token_endpoint_auth_methods_supported, {
      confidential: grantTypes.length > 0 && grantTypes.every((g) => g === "client_credentials")
    })
    const httpRequest = yield* HttpClientRequest.post(endpoint).pipe(
      HttpClientRequest.bodyJson(registrationMetadata(config, request, grantTypes, method)),
      Effect.orDie
    )
    const response = yield* OAuthHttp.execute(client, httpRequest, httpOptions)
    if (response.status !== 201 && response.status !== 200) {
      return yield* Effect.fail(registrationRejected(response))
    }
    const decoded = OAuthHttp.decodeJson(ClientInformationResponse, response)
    if (Either.isLeft(decoded)) {
      return yield* Effect.fail(
        new OAuthRegistrationError({ reason: "InvalidResponse", errorDescription: decoded.left })
      )
    }
    return yield* clientInformationFromResponse(decoded.right, {
      issuer: request.discovery.issuer,
      requestedMethod: method,
      redirectUris: [request.redirectUri],
      scope: request.scope
    })
  }).pipe(Effect.withSpan("Registration.dynamic", { attributes: { endpoint } }))

/**
 * The client identity that needs no request to the server: the configured pre-registered client,
 * else the configured metadata document URL when the server supports them (SEP-991).
 */
const configuredClient = (config: RegistrationConfig, request: RegisterRequest): ClientInformation | undefined => {
  const as = request.discovery.authorizationServer
  if (config.clientId !== undefined) {
    const hasSecret = config.clientSecret !== undefined
    return new ClientInformation({
      clientId: config.clientId,
      ...(config.clientSecret === undefined ? {} : { clientSecret: config.clientSecret }),
      tokenEndpointAuthMethod: config.tokenEndpointAuthMethod ??
        chooseAuthMethod(as.token_endpoint_auth_methods_supported, hasSecret),
      source: "preregistered",
      issuer: request.discovery.issuer,
      redirectUris: [request.redirectUri]
    }, typed)
  }
  if (config.clientMetadataUrl !== undefined && as.client_id_metadata_document_supported === true) {
    return new ClientInformation({
      clientId: config.clientMetadataUrl,
      tokenEndpointAuthMethod: "none",
      source: "metadata-document",
      issuer: request.discovery.issuer,
      redirectUris: [request.redirectUri]
    }, typed)
  }
  return undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: RegistrationConfig = {}): Effect.Effect<Registration, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const httpOptions: OAuthHttp.OAuthHttpOptions = {
      timeout: config.timeout ?? Duration.seconds(30),
      ...(config.allowInsecure === undefined ? {} : { allowInsecure: config.allowInsecure })
    }

    const register = (request: RegisterRequest) =>
      Effect.suspend(() => {
        const configured = configuredClient(config, request)
        if (configured !== undefined) return Effect.succeed(configured)
        const endpoint = request.discovery.authorizationServer.registration_endpoint
        if (endpoint !== undefined) return registerDynamically(client, httpOptions, config, request, endpoint)
        return Effect.fail(
          new OAuthRegistrationError({
            reason: "NotSupported",
            errorDescription: `${request.discovery.issuer} offers no registration endpoint` +
              (config.clientMetadataUrl === undefined ? "" : " and does not support client metadata documents") +
              "; configure a pre-registered clientId"
          })
        )
      }).pipe(Effect.withSpan("Registration.register"))

    return Registration.of({ register, isStatic: config.clientId !== undefined })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: RegistrationConfig = {}): Layer.Layer<Registration, never, HttpClient.HttpClient> =>
  Layer.effect(Registration, make(config))
