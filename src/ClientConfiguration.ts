/**
 * OAuth 2.0 Dynamic Client Registration Management (RFC 7592): reading, updating and deleting a
 * dynamically registered client at its `registration_client_uri`, authenticated with its
 * `registration_access_token` (a Bearer token, RFC 6750). Used to confirm that a stored client
 * still exists before a sign-in, to widen its `scope` or redirect URIs for a step-up, and to
 * delete it on `logout --forget-client`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ClientNotFound, OAuthRegistrationError, type OAuthRequestError } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { clientInformationFromResponse } from "./Registration.js"
import { type ClientInformation, ClientInformationResponse, OAuthErrorResponse } from "./Schemas.js"

/**
 * Timeout and transport options of the RFC 7592 requests.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2
 * @since 0.1.0
 * @category models
 */
export interface ClientConfigurationOptions {
  /** Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Accept a plain-http non-loopback `registration_client_uri` (tests only). */
  readonly allowInsecure?: boolean | undefined
}

/**
 * A client whose registration can be managed: it carries both RFC 7592 values.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-3
 * @since 0.1.0
 * @category models
 */
export interface ManagedClient extends ClientInformation {
  readonly registrationClientUri: string
  readonly registrationAccessToken: Redacted.Redacted<string>
}

/**
 * Whether the authorization server gave this client an RFC 7592 configuration endpoint and token.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-3
 * @since 0.1.0
 * @category guards
 */
export const isManaged = (client: ClientInformation): client is ManagedClient =>
  client.source === "dynamic" && client.registrationClientUri !== undefined &&
  client.registrationAccessToken !== undefined

/**
 * The client's registration as the server holds it: the stored view (`client`) and every member
 * of the response (`metadata`), which an update must send back in full (RFC 7592 §2.2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-3
 * @since 0.1.0
 * @category models
 */
export interface ClientConfiguration {
  readonly client: ManagedClient
  readonly metadata: Readonly<Record<string, unknown>>
}

/**
 * What to change in an update: the scope tokens and redirect URIs to add (the union with what is
 * registered is sent), and any other metadata members to set.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.2
 * @since 0.1.0
 * @category models
 */
export interface ClientUpdate {
  readonly addScopes?: ReadonlyArray<string> | undefined
  readonly addRedirectUris?: ReadonlyArray<string> | undefined
  readonly set?: Readonly<Record<string, unknown>> | undefined
}

const JsonRecord = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const httpOptionsOf = (options: ClientConfigurationOptions): OAuthHttp.OAuthHttpOptions => ({
  timeout: options.timeout ?? Duration.seconds(30),
  ...(options.allowInsecure === undefined ? {} : { allowInsecure: options.allowInsecure })
})

const notManaged = (client: ClientInformation) =>
  new OAuthRegistrationError({
    reason: "NotSupported",
    errorDescription: `client "${client.clientId}" has no RFC 7592 registration_client_uri / registration_access_token`
  })

const authorized = (client: ManagedClient, request: HttpClientRequest.HttpClientRequest) =>
  HttpClientRequest.bearerToken(request, Redacted.value(client.registrationAccessToken))

/**
 * RFC 7592 §2.1 / §2.2: 401 means the client (or its token) is gone; 403 and 404 say the same
 * in practice. `ClientNotFound` tells the caller to register again.
 */
const rejected = (client: ManagedClient, response: OAuthHttp.OAuthResponse): ClientNotFound | OAuthRegistrationError => {
  const body = OAuthHttp.decodeJson(OAuthErrorResponse, response)
  const description = Either.isRight(body)
    ? body.right.error + (body.right.error_description === undefined ? "" : `: ${body.right.error_description}`)
    : `HTTP ${response.status}`
  if (response.status === 401 || response.status === 403 || response.status === 404) {
    return new ClientNotFound({
      clientId: client.clientId,
      description: `the client configuration endpoint answered HTTP ${response.status} (${description})`
    })
  }
  if (response.status === 405) {
    return new OAuthRegistrationError({
      reason: "NotSupported",
      status: 405,
      errorDescription: "the client configuration endpoint does not support this method"
    })
  }
  return new OAuthRegistrationError({
    reason: "Rejected",
    status: response.status,
    ...(Either.isRight(body)
      ? {
        error: body.right.error,
        ...(body.right.error_description === undefined ? {} : { errorDescription: body.right.error_description })
      }
      : { errorDescription: description })
  })
}

const decodeConfiguration = (
  previous: ManagedClient,
  response: OAuthHttp.OAuthResponse
): Effect.Effect<ClientConfiguration, OAuthRegistrationError> =>
  Effect.gen(function*() {
    const metadata = OAuthHttp.decodeJson(JsonRecord, response)
    const info = OAuthHttp.decodeJson(ClientInformationResponse, response)
    if (Either.isLeft(metadata) || Either.isLeft(info)) {
      return yield* new OAuthRegistrationError({
        reason: "InvalidResponse",
        errorDescription: Either.isLeft(metadata) ? metadata.left : Either.isLeft(info) ? info.left : ""
      })
    }
    if (info.right.client_id !== previous.clientId) {
      return yield* new OAuthRegistrationError({
        reason: "InvalidResponse",
        errorDescription: `the client configuration endpoint answered for client "${info.right.client_id}", ` +
          `not "${previous.clientId}"`
      })
    }
    const client = yield* clientInformationFromResponse(info.right, {
      issuer: previous.issuer,
      requestedMethod: previous.tokenEndpointAuthMethod,
      redirectUris: previous.redirectUris,
      scope: previous.scope,
      previous
    })
    if (!isManaged(client)) return yield* notManaged(client)
    return { client, metadata: metadata.right }
  })

/**
 * Reads the client's current registration (RFC 7592 §2.1): `GET registration_client_uri` with
 * the registration access token. The answer may rotate the access token or the secret; the
 * returned `client` carries the new values (store it). A client the server no longer knows
 * (401, 403, 404) is `ClientNotFound`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.1
 * @since 0.1.0
 * @category operations
 */
export const read = (
  client: ClientInformation,
  options: ClientConfigurationOptions = {}
): Effect.Effect<
  ClientConfiguration,
  ClientNotFound | OAuthRegistrationError | OAuthRequestError,
  HttpClient.HttpClient
> =>
  Effect.gen(function*() {
    if (!isManaged(client)) return yield* notManaged(client)
    const http = yield* HttpClient.HttpClient
    const response = yield* OAuthHttp.execute(
      http,
      authorized(client, HttpClientRequest.get(client.registrationClientUri)),
      httpOptionsOf(options)
    )
    if (response.status !== 200) return yield* rejected(client, response)
    return yield* decodeConfiguration(client, response)
  }).pipe(Effect.withSpan("ClientConfiguration.read", { attributes: { clientId: client.clientId } }))

const splitScope = (scope: unknown): ReadonlyArray<string> =>
  typeof scope === "string" ? scope.split(" ").filter((s) => s !== "") : []

const stringArray = (value: unknown): ReadonlyArray<string> =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []

/** RFC 7592 §2.2: these members MUST NOT be sent in an update. */
const READ_ONLY_MEMBERS: ReadonlyArray<string> = [
  "registration_access_token",
  "registration_client_uri",
  "client_secret_expires_at",
  "client_id_issued_at"
]

/**
 * The body of an update: every member of the current registration except the read-only ones
 * (RFC 7592 §2.2: the request replaces the whole registration), with the additions applied.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.2
 * @since 0.1.0
 * @category operations
 */
export const updateBody = (
  current: Readonly<Record<string, unknown>>,
  update: ClientUpdate
): Record<string, unknown> => {
  const body: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(current)) {
    if (!READ_ONLY_MEMBERS.includes(name) && value !== null) body[name] = value
  }
  Object.assign(body, update.set)
  if (update.addScopes !== undefined && update.addScopes.length > 0) {
    body["scope"] = [...new Set([...splitScope(body["scope"]), ...update.addScopes])].join(" ")
  }
  if (update.addRedirectUris !== undefined && update.addRedirectUris.length > 0) {
    body["redirect_uris"] = [...new Set([...stringArray(body["redirect_uris"]), ...update.addRedirectUris])]
  }
  return body
}

/**
 * Updates the client's registration (RFC 7592 §2.2) from a `configuration` just read: applies
 * `changes` to every member the server returned and `PUT`s the result (an update replaces the
 * whole registration). The server may refuse a value (`invalid_redirect_uri`,
 * `invalid_client_metadata`: an `OAuthRegistrationError` "Rejected"), change what was asked (its
 * answer wins) or rotate the secret or the registration access token; store the returned `client`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.2
 * @since 0.1.0
 * @category operations
 */
export const updateConfiguration = (
  configuration: ClientConfiguration,
  changes: ClientUpdate,
  options: ClientConfigurationOptions = {}
): Effect.Effect<
  ClientConfiguration,
  ClientNotFound | OAuthRegistrationError | OAuthRequestError,
  HttpClient.HttpClient
> =>
  Effect.gen(function*() {
    const managed = configuration.client
    const http = yield* HttpClient.HttpClient
    const request = yield* HttpClientRequest.put(managed.registrationClientUri).pipe(
      HttpClientRequest.bodyJson({ ...updateBody(configuration.metadata, changes), client_id: managed.clientId }),
      Effect.orDie
    )
    const response = yield* OAuthHttp.execute(http, authorized(managed, request), httpOptionsOf(options))
    if (response.status !== 200) return yield* rejected(managed, response)
    return yield* decodeConfiguration(managed, response)
  }).pipe(Effect.withSpan("ClientConfiguration.update", { attributes: { clientId: configuration.client.clientId } }))

/**
 * Reads the client's registration ({@link read}) and updates it ({@link updateConfiguration}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.2
 * @since 0.1.0
 * @category operations
 */
export const update = (
  client: ClientInformation,
  changes: ClientUpdate,
  options: ClientConfigurationOptions = {}
): Effect.Effect<
  ClientConfiguration,
  ClientNotFound | OAuthRegistrationError | OAuthRequestError,
  HttpClient.HttpClient
> => Effect.flatMap(read(client, options), (configuration) => updateConfiguration(configuration, changes, options))

/**
 * Deletes the client at the authorization server (RFC 7592 §2.3): `DELETE
 * registration_client_uri`; 204 (or 200) is success. A client already gone (401, 403, 404) is
 * `ClientNotFound`; a server that does not allow deletion (405) is `OAuthRegistrationError`
 * "NotSupported".
 *
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.3
 * @since 0.1.0
 * @category operations
 */
export const remove = (
  client: ClientInformation,
  options: ClientConfigurationOptions = {}
): Effect.Effect<void, ClientNotFound | OAuthRegistrationError | OAuthRequestError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    if (!isManaged(client)) return yield* notManaged(client)
    const http = yield* HttpClient.HttpClient
    const response = yield* OAuthHttp.execute(
      http,
      authorized(client, HttpClientRequest.del(client.registrationClientUri)),
      httpOptionsOf(options)
    )
    if (response.status === 204 || response.status === 200) return
    return yield* rejected(client, response)
  }).pipe(Effect.withSpan("ClientConfiguration.remove", { attributes: { clientId: client.clientId } }))
