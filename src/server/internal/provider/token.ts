/**
 * The token endpoint (RFC 6749 §3.2): the authorization code grant with PKCE (§4.1.3,
 * RFC 7636 §4.6), refresh with rotation and reuse detection (§6, OAuth 2.1 §4.3.1) and client
 * credentials (§4.4).
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RefreshTokenRecord, RegisteredClient } from "../../OAuthProviderStore.js"
import { randomToken } from "../crypto.js"
import { failureResponse, OAuthFailure, readForm } from "../http.js"
import { verifyS256 } from "../pkce.js"
import { authenticateClient } from "./clientAuthentication.js"
import { checkRegisteredScopes, checkResource, checkScopes, splitScopes } from "./config.js"
import type { ProviderConfig } from "./config.js"
import { mintTokens, tokenResponse } from "./issuance.js"

const invalidGrant = (description: string) => new OAuthFailure({ status: 400, error: "invalid_grant", description })
const invalidRequest = (description: string) => new OAuthFailure({ status: 400, error: "invalid_request", description })
const unauthorizedClient = (description: string) =>
  new OAuthFailure({ status: 400, error: "unauthorized_client", description })

/** RFC 6749 §4.1.3 with RFC 7636 §4.6 and RFC 8707 §2.2. */
const authorizationCodeGrant = (config: ProviderConfig, client: RegisteredClient, form: URLSearchParams) =>
  Effect.gen(function*() {
    if (!client.grantTypes.includes("authorization_code")) {
      return yield* unauthorizedClient("the client may not use the authorization_code grant")
    }
    const code = form.get("code")
    const verifier = form.get("code_verifier")
    if (code === null || code === "") return yield* invalidRequest("code is required")
    if (verifier === null) return yield* invalidRequest("code_verifier is required (PKCE)")
    const requestedResource = checkResource(config, form.getAll("resource"))
    if (requestedResource instanceof OAuthFailure) return yield* requestedResource
    // RFC 6749 §4.1.3: the code must have been issued to this client. Checked before the code is
    // spent, so that another client presenting it cannot burn it.
    const peek = yield* config.store.getCode(code)
    if (Option.isSome(peek) && peek.value.clientId !== client.clientId) {
      return yield* invalidGrant("code was issued to another client")
    }
    const familyId = randomToken(16)
    const found = yield* config.store.consumeCode(code, familyId)
    if (Option.isNone(found)) return yield* invalidGrant("unknown authorization code")
    const record = found.value
    if (record.used) {
      // OAuth 2.1 §4.1.3: a replayed code revokes the tokens issued from it.
      yield* config.store.revokeFamily(record.familyId)
      return yield* invalidGrant("authorization code already used")
    }
    const now = yield* Clock.currentTimeMillis
    if (record.clientId !== client.clientId) return yield* invalidGrant("code was issued to another client")
    if (record.expiresAt <= now) return yield* invalidGrant("authorization code expired")
    if (!verifyS256(verifier, record.codeChallenge)) return yield* invalidGrant("PKCE verification failed")
    const redirectUri = form.get("redirect_uri")
    if (redirectUri !== null && redirectUri !== record.redirectUri) {
      return yield* invalidGrant("redirect_uri does not match the authorization request")
    }
    // RFC 8707 §2.2: the token's audience is what the user consented to; a grant authorized
    // without a resource is not redeemed for one.
    if (requestedResource !== undefined && requestedResource !== record.resource) {
      return yield* new OAuthFailure({
        status: 400,
        error: "invalid_target",
        description: record.resource === undefined ?
          "the authorization request named no resource" :
          "resource does not match the authorization request"
      })
    }
    const issued = yield* mintTokens(config, {
      clientId: client.clientId,
      subject: record.subject,
      scopes: record.scopes,
      resource: record.resource,
      familyId,
      refresh: client.grantTypes.includes("refresh_token")
    })
    return tokenResponse(issued, now)
  })

/**
 * A rotated refresh token presented again within the reuse interval is honoured once more
 * (a client that refreshed twice at once, or lost the response) instead of revoking the grant.
 */
const withinReuseInterval = (config: ProviderConfig, record: RefreshTokenRecord, now: number): boolean =>
  config.refreshReuseMillis > 0 && record.usedAt !== undefined && now - record.usedAt <= config.refreshReuseMillis

/** RFC 6749 §6 with rotation and reuse detection (OAuth 2.1 §4.3.1). */
const refreshTokenGrant = (config: ProviderConfig, client: RegisteredClient, form: URLSearchParams) =>
  Effect.gen(function*() {
    const store = config.store
    if (!client.grantTypes.includes("refresh_token")) {
      return yield* unauthorizedClient("the client may not use the refresh_token grant")
    }
    const token = form.get("refresh_token")
    if (token === null || token === "") return yield* invalidRequest("refresh_token is required")
    const existing = yield* store.getRefreshToken(token)
    if (Option.isNone(existing)) return yield* invalidGrant("unknown or revoked refresh token")
    if (existing.value.clientId !== client.clientId) {
      return yield* invalidGrant("refresh token was issued to another client")
    }
    const original = existing.value
    const started = yield* Clock.currentTimeMillis
    if (original.used && !withinReuseInterval(config, original, started)) {
      // OAuth 2.1 §4.3.1: reuse of a rotated refresh token revokes the whole grant.
      yield* store.revokeFamily(original.familyId)
      return yield* invalidGrant("refresh token reuse detected; the grant has been revoked")
    }
    // Request errors are checked before the token is spent, so a bad request does not burn it.
    const scopes = form.has("scope") ? splitScopes(form.get("scope")) : original.scopes
    const extra = scopes.filter((s) => !original.scopes.includes(s))
    if (extra.length > 0) {
      return yield* new OAuthFailure({
        status: 400,
        error: "invalid_scope",
        description: `scope exceeds the original grant: ${extra.join(" ")}`
      })
    }
    const requestedResource = checkResource(config, form.getAll("resource"))
    if (requestedResource instanceof OAuthFailure) return yield* requestedResource
    if (requestedResource !== undefined && requestedResource !== original.resource) {
      return yield* new OAuthFailure({
        status: 400,
        error: "invalid_target",
        description: original.resource === undefined ?
          "the original grant named no resource" :
          "resource does not match the original grant"
      })
    }
    const used = yield* store.useRefreshToken(token, started)
    if (Option.isNone(used)) return yield* invalidGrant("unknown or revoked refresh token")
    const record = used.value
    if (record.used && !withinReuseInterval(config, record, started)) {
      // OAuth 2.1 §4.3.1: reuse of a rotated refresh token revokes the whole grant.
      yield* store.revokeFamily(record.familyId)
      return yield* invalidGrant("refresh token reuse detected; the grant has been revoked")
    }
    const now = yield* Clock.currentTimeMillis
    if (record.expiresAt <= now) return yield* invalidGrant("refresh token expired")
    const issued = yield* mintTokens(config, {
      clientId: client.clientId,
      subject: record.subject,
      scopes,
      resource: record.resource,
      familyId: record.familyId,
      refresh: true
    })
    return tokenResponse(issued, now)
  })

/** RFC 6749 §4.4: confidential clients registered for it only. */
const clientCredentialsGrant = (config: ProviderConfig, client: RegisteredClient, form: URLSearchParams) =>
  Effect.gen(function*() {
    if (client.tokenEndpointAuthMethod === "none" || !client.grantTypes.includes("client_credentials")) {
      return yield* unauthorizedClient("the client may not use the client_credentials grant")
    }
    const scopes = form.has("scope") ? splitScopes(form.get("scope")) : splitScopes(client.scope)
    const scopeProblem = checkScopes(config, scopes) ?? checkRegisteredScopes(client, scopes)
    if (scopeProblem !== undefined) return yield* scopeProblem
    const resource = checkResource(config, form.getAll("resource"))
    if (resource instanceof OAuthFailure) return yield* resource
    const now = yield* Clock.currentTimeMillis
    const issued = yield* mintTokens(config, {
      clientId: client.clientId,
      subject: client.clientId,
      scopes,
      resource,
      familyId: randomToken(16),
      refresh: false
    })
    return tokenResponse(issued, now)
  })

/** RFC 6749 §3.2: `POST /token`. @internal */
export const tokenEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const form = yield* readForm(config.maxBody)
    const client = yield* authenticateClient(config, request.headers["authorization"], form)
    const grantType = form.get("grant_type")
    if (grantType !== null && config.grantTypes !== undefined && !config.grantTypes.includes(grantType)) {
      return yield* new OAuthFailure({
        status: 400,
        error: "unsupported_grant_type",
        description: `grant type ${grantType} is not supported`
      })
    }
    switch (grantType) {
      case "authorization_code":
        return yield* authorizationCodeGrant(config, client, form)
      case "refresh_token":
        return yield* refreshTokenGrant(config, client, form)
      case "client_credentials":
        return yield* clientCredentialsGrant(config, client, form)
      case null:
        return yield* invalidRequest("grant_type is required")
      default:
        return yield* new OAuthFailure({
          status: 400,
          error: "unsupported_grant_type",
          description: `grant type ${grantType} is not supported`
        })
    }
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))
