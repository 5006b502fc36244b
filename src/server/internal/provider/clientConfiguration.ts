/**
 * The client configuration endpoint (RFC 7592): a dynamically registered client reads
 * (`GET`), replaces (`PUT`) or deletes (`DELETE`) its own registration at its
 * `registration_client_uri`, authenticated by the `registration_access_token` it received when
 * it registered. A client can so widen its `scope` (within `scopes_supported`) before a step-up.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { RegisteredClient } from "../../OAuthProviderStore.js"
import { constantTimeEqual, randomToken, sha256Base64Url } from "../crypto.js"
import { failureResponse, jsonNoStore, OAuthFailure } from "../http.js"
import type { ProviderConfig } from "./config.js"
import { clientInformation, registrationClientUri, validateClientMetadata } from "./registration.js"
import { typed } from "../../../internal/typed.js"

/**
 * RFC 7592 §2 / RFC 6750 §3.1: the client of the path, when the bearer token is its registration
 * access token. An unknown client, a client without one, or a wrong token are all 401
 * `invalid_token` (RFC 7592 §2.1: the same answer, so that client ids cannot be probed).
 */
const authorizedClient = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = yield* HttpRouter.params
    const invalidToken = new OAuthFailure({
      status: 401,
      error: "invalid_token",
      description: "the registration access token is missing or invalid",
      headers: { "www-authenticate": `Bearer error="invalid_token"` }
    })
    const match = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(request.headers["authorization"] ?? "")
    const clientId = params["clientId"]
    if (match === null || clientId === undefined) return yield* invalidToken
    const found = yield* config.store.getClient(clientId)
    if (Option.isNone(found)) return yield* invalidToken
    const expected = found.value.registrationAccessTokenHash
    const token = match[1]!
    if (expected === undefined || !constantTimeEqual(expected, sha256Base64Url(token))) {
      return yield* invalidToken
    }
    return { client: found.value, token }
  })

/** RFC 7592 §3: the client information with its configuration URI and (unrotated) access token. */
const configurationResponse = (config: ProviderConfig, client: RegisteredClient, token: string) =>
  jsonNoStore({
    ...clientInformation(client),
    registration_access_token: token,
    registration_client_uri: registrationClientUri(config, client.clientId)
  })

/** RFC 7592 §2.1: `GET /register/{client_id}`. @internal */
export const readClientEndpoint = (config: ProviderConfig) =>
  Effect.map(authorizedClient(config), ({ client, token }) => configurationResponse(config, client, token)).pipe(
    Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f)))
  )

/**
 * RFC 7592 §2.2: `PUT /register/{client_id}` replaces the client's metadata with the body's
 * (validated as at registration); `client_id` must be repeated, a `client_secret`, if sent, must
 * be the current one. The id, secret and issue time stay; a client that becomes confidential
 * gets a secret, one that becomes public loses it.
 *
 * @internal
 */
export const updateClientEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const { client, token } = yield* authorizedClient(config)
    const metadata = yield* validateClientMetadata(config)
    const invalidMetadata = (description: string) =>
      new OAuthFailure({ status: 400, error: "invalid_client_metadata", description })
    if (metadata.clientId !== client.clientId) return yield* invalidMetadata("client_id must be the client's own")
    if (
      metadata.clientSecret !== undefined &&
      (client.clientSecret === undefined ||
        !constantTimeEqual(metadata.clientSecret, Redacted.value(client.clientSecret)))
    ) {
      return yield* invalidMetadata("client_secret does not match")
    }
    const method = metadata.tokenEndpointAuthMethod
    const updated = new RegisteredClient({
      ...client,
      tokenEndpointAuthMethod: method,
      clientSecret: method === "none" ? undefined : client.clientSecret ?? Redacted.make(randomToken()),
      redirectUris: metadata.redirectUris,
      grantTypes: metadata.grantTypes,
      responseTypes: metadata.responseTypes,
      clientName: metadata.clientName,
      scope: metadata.scope,
      applicationType: metadata.applicationType
    }, typed)
    yield* config.store.putClient(updated)
    return configurationResponse(config, updated, token)
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))

/**
 * RFC 7592 §2.3: `DELETE /register/{client_id}` deletes the registration; its client id and
 * registration access token stop working at once, and so do the access and refresh tokens
 * issued to it (the server is to invalidate the client's grants and active tokens with it).
 *
 * @internal
 */
export const deleteClientEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const { client } = yield* authorizedClient(config)
    yield* config.store.deleteClient(client.clientId)
    yield* config.store.revokeClientTokens(client.clientId)
    return HttpServerResponse.empty({ status: 204, headers: { "cache-control": "no-store" } })
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))
