/**
 * The registration endpoint (RFC 7591): client metadata validated against what the server
 * supports, and pre-registration of clients in the same process.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ClientAuthMethod } from "../../OAuthProviderStore.js"
import { RegisteredClient } from "../../OAuthProviderStore.js"
import { randomToken, sha256Base64Url } from "../crypto.js"
import { failureResponse, hasContentType, jsonNoStore, OAuthFailure, readBody } from "../http.js"
import { redirectUriProblem } from "../redirectUri.js"
import type { ApplicationType } from "../redirectUri.js"
import { checkScopes, GRANT_TYPES, splitScopes } from "./config.js"
import type { ProviderConfig, RegistrationGuard } from "./config.js"
import { typed } from "../../../internal/typed.js"

/** A client to store (see `OAuthProvider.ClientRegistration`). @internal */
export interface NewClient {
  readonly clientId?: string | undefined
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  readonly tokenEndpointAuthMethod?: ClientAuthMethod | undefined
  readonly redirectUris?: ReadonlyArray<string> | undefined
  readonly grantTypes?: ReadonlyArray<string> | undefined
  readonly scope?: string | undefined
  readonly clientName?: string | undefined
  readonly applicationType?: ApplicationType | undefined
  /** Default `operator`. */
  readonly origin?: "operator" | "dynamic" | "metadataDocument" | undefined
  readonly registrationAccessTokenHash?: string | undefined
}

/** Bounds on dynamic registration (see `OAuthProvider.Options.registrationLimit`). @internal */
export interface RegistrationLimits {
  /** Registrations accepted per window from one remote address. */
  readonly perAddress: number
  readonly windowMillis: number
  /** Clients this process registers dynamically, in all. */
  readonly maxClients: number
}

/** The most addresses tracked at once; beyond it, finished windows are dropped (or all of them). */
const MAX_TRACKED_ADDRESSES = 10_000

/** A guard that enforces `limits`, or lets everything through when there are none. @internal */
export const makeRegistrationGuard = (limits: RegistrationLimits | undefined): RegistrationGuard => {
  if (limits === undefined) return { check: () => undefined, record: () => {} }
  const windows = new Map<string, { start: number; count: number }>()
  let total = 0
  const current = (address: string, now: number) => {
    const found = windows.get(address)
    return found === undefined || now - found.start >= limits.windowMillis ? { start: now, count: 0 } : found
  }
  return {
    check: (address, now) => {
      if (total >= limits.maxClients) {
        return new OAuthFailure({
          status: 400,
          error: "invalid_client_metadata",
          description: `this server accepts no more dynamic registrations (limit ${limits.maxClients} reached)`
        })
      }
      const window = current(address, now)
      if (window.count < limits.perAddress) return undefined
      const retryAfter = Math.max(1, Math.ceil((window.start + limits.windowMillis - now) / 1000))
      return new OAuthFailure({
        status: 429,
        error: "temporarily_unavailable",
        description: `too many registrations from this address; retry in ${retryAfter} s`,
        headers: { "retry-after": String(retryAfter) }
      })
    },
    record: (address, now) => {
      total++
      const window = current(address, now)
      if (!windows.has(address) && windows.size >= MAX_TRACKED_ADDRESSES) {
        for (const [key, w] of windows) if (now - w.start >= limits.windowMillis) windows.delete(key)
        if (windows.size >= MAX_TRACKED_ADDRESSES) windows.clear()
      }
      windows.set(address, { start: window.start, count: window.count + 1 })
    }
  }
}

const RegistrationRequest = Schema.Struct({
  redirect_uris: Schema.optional(Schema.Array(Schema.String)),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  grant_types: Schema.optional(Schema.Array(Schema.String)),
  response_types: Schema.optional(Schema.Array(Schema.String)),
  client_name: Schema.optional(Schema.String),
  client_uri: Schema.optional(Schema.String),
  logo_uri: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  software_id: Schema.optional(Schema.String),
  software_version: Schema.optional(Schema.String),
  application_type: Schema.optional(Schema.String),
  client_id: Schema.optional(Schema.String),
  client_secret: Schema.optional(Schema.String)
})

const decodeRegistration = Schema.decodeUnknownEither(Schema.parseJson(RegistrationRequest))

/** The public JSON of a registered client (RFC 7591 §3.2.1). @internal */
export const clientInformation = (client: RegisteredClient): Record<string, unknown> => ({
  client_id: client.clientId,
  ...(client.clientSecret === undefined ?
    {} :
    { client_secret: Redacted.value(client.clientSecret), client_secret_expires_at: 0 }),
  client_id_issued_at: client.clientIdIssuedAt,
  token_endpoint_auth_method: client.tokenEndpointAuthMethod,
  grant_types: client.grantTypes,
  response_types: client.responseTypes,
  redirect_uris: client.redirectUris,
  ...(client.clientName === undefined ? {} : { client_name: client.clientName }),
  ...(client.scope === undefined ? {} : { scope: client.scope }),
  ...(client.applicationType === undefined ? {} : { application_type: client.applicationType })
})

/** Stores a client, filling in a random id and secret and the RFC 7591 §2 defaults. @internal */
export const registerClient = (config: ProviderConfig, registration: NewClient): Effect.Effect<RegisteredClient> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const method = registration.tokenEndpointAuthMethod ?? "client_secret_basic"
    const secret = registration.clientSecret
    const client = new RegisteredClient({
      clientId: registration.clientId ?? randomToken(16),
      clientSecret: method === "none" ?
        undefined :
        secret === undefined ?
        Redacted.make(randomToken()) :
        typeof secret === "string" ?
        Redacted.make(secret) :
        secret,
      tokenEndpointAuthMethod: method,
      redirectUris: registration.redirectUris ?? [],
      grantTypes: registration.grantTypes ?? ["authorization_code", "refresh_token"],
      responseTypes: (registration.grantTypes ?? ["authorization_code"]).includes("authorization_code")
        ? ["code"]
        : [],
      clientName: registration.clientName,
      scope: registration.scope,
      clientIdIssuedAt: Math.floor(now / 1000),
      applicationType: registration.applicationType,
      origin: registration.origin ?? "operator",
      registrationAccessTokenHash: registration.registrationAccessTokenHash
    }, typed)
    yield* config.store.putClient(client)
    return client
  })

/** Client metadata that passed {@link validateClientMetadata}. @internal */
export interface ValidClientMetadata {
  readonly tokenEndpointAuthMethod: ClientAuthMethod
  readonly redirectUris: ReadonlyArray<string>
  readonly grantTypes: ReadonlyArray<string>
  readonly responseTypes: ReadonlyArray<string>
  readonly clientName: string | undefined
  readonly scope: string | undefined
  /** As sent (absent means `web`). */
  readonly applicationType: ApplicationType | undefined
  /** RFC 7592 §2.2: the `client_id` and `client_secret` an update request repeats. */
  readonly clientId: string | undefined
  readonly clientSecret: string | undefined
}

/**
 * RFC 7591 §2, §3.2.2: reads a JSON client metadata body and checks it against what the server
 * supports (authentication method, grant and response types, redirect URIs, scopes).
 *
 * @internal
 */
export const validateClientMetadata = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const invalidMetadata = (description: string) =>
      new OAuthFailure({ status: 400, error: "invalid_client_metadata", description })
    if (!hasContentType(request, "application/json")) {
      return yield* invalidMetadata("the registration request must be application/json")
    }
    const decoded = decodeRegistration(yield* readBody(config.maxBody))
    if (decoded._tag === "Left") return yield* invalidMetadata("the body is not valid client metadata JSON")
    const body = decoded.right
    const method = body.token_endpoint_auth_method ?? "client_secret_basic"
    const supportedMethod = config.authMethods.find((m) => m === method)
    if (supportedMethod === undefined) {
      return yield* invalidMetadata(`token_endpoint_auth_method ${method} is not supported`)
    }
    const grantTypes = body.grant_types ?? ["authorization_code", "refresh_token"]
    const unknownGrant = grantTypes.find((g) => !(config.grantTypes ?? GRANT_TYPES).includes(g))
    if (unknownGrant !== undefined) return yield* invalidMetadata(`grant type ${unknownGrant} is not supported`)
    if (grantTypes.length === 0) return yield* invalidMetadata("grant_types is empty")
    const responseTypes = body.response_types ?? (grantTypes.includes("authorization_code") ? ["code"] : [])
    if (responseTypes.some((r) => r !== "code")) return yield* invalidMetadata("only response type code is supported")
    if (grantTypes.includes("authorization_code") !== responseTypes.includes("code")) {
      return yield* invalidMetadata("grant_types and response_types are inconsistent")
    }
    if (grantTypes.includes("client_credentials") && supportedMethod === "none") {
      return yield* invalidMetadata("client_credentials requires a confidential client")
    }
    const applicationType = body.application_type ?? "web"
    if (applicationType !== "web" && applicationType !== "native") {
      return yield* invalidMetadata(`application_type ${applicationType} is not supported`)
    }
    const redirectUris = body.redirect_uris ?? []
    if (grantTypes.includes("authorization_code") && redirectUris.length === 0) {
      return yield* new OAuthFailure({
        status: 400,
        error: "invalid_redirect_uri",
        description: "redirect_uris is required for the authorization_code grant"
      })
    }
    for (const uri of redirectUris) {
      const problem = redirectUriProblem(uri, applicationType)
      if (problem !== undefined) {
        return yield* new OAuthFailure({ status: 400, error: "invalid_redirect_uri", description: problem })
      }
      if (config.redirectUriAllowed !== undefined && !config.redirectUriAllowed(uri)) {
        return yield* new OAuthFailure({
          status: 400,
          error: "invalid_redirect_uri",
          description: `redirect URI ${uri} is not allowed by this server`
        })
      }
    }
    const scopeProblem = checkScopes(config, splitScopes(body.scope))
    if (scopeProblem !== undefined) return yield* invalidMetadata(scopeProblem.description)
    const valid: ValidClientMetadata = {
      tokenEndpointAuthMethod: supportedMethod,
      redirectUris,
      grantTypes,
      responseTypes,
      clientName: body.client_name,
      scope: body.scope,
      applicationType: body.application_type === undefined ? undefined : applicationType,
      clientId: body.client_id,
      clientSecret: body.client_secret
    }
    return valid
  })

/** RFC 7592 §1: where a dynamically registered client reads, updates or deletes itself. @internal */
export const registrationClientUri = (config: ProviderConfig, clientId: string): string =>
  `${config.issuer}/register/${encodeURIComponent(clientId)}`

/** RFC 7591 §3: `POST /register`. @internal */
export const registrationEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const metadata = yield* validateClientMetadata(config)
    // Checked once the request is valid, so only registrations that would be stored count.
    const address = Option.getOrElse(request.remoteAddress, () => "unknown")
    const now = yield* Clock.currentTimeMillis
    const refused = config.registrationGuard.check(address, now)
    if (refused !== undefined) return yield* refused
    config.registrationGuard.record(address, now)
    // RFC 7592 §3: the registration access token; only its hash is stored.
    const registrationAccessToken = randomToken()
    const client = yield* registerClient(config, {
      tokenEndpointAuthMethod: metadata.tokenEndpointAuthMethod,
      redirectUris: metadata.redirectUris,
      grantTypes: metadata.grantTypes,
      clientName: metadata.clientName,
      scope: metadata.scope,
      applicationType: metadata.applicationType,
      origin: "dynamic",
      registrationAccessTokenHash: sha256Base64Url(registrationAccessToken)
    })
    return jsonNoStore(
      {
        ...clientInformation(client),
        response_types: metadata.responseTypes,
        registration_access_token: registrationAccessToken,
        registration_client_uri: registrationClientUri(config, client.clientId)
      },
      201
    )
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))
