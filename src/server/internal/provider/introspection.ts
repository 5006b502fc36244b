/**
 * The introspection endpoint (RFC 7662): an authenticated confidential client — typically a
 * resource server — learns whether an access token is active and what it is bound to.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { failureResponse, jsonNoStore, OAuthFailure, readForm } from "../http.js"
import { authenticateClient } from "./clientAuthentication.js"
import type { ProviderConfig } from "./config.js"

/**
 * RFC 7662 §2.2: the introspection response of `token`. Only access tokens are reported active:
 * a refresh token is never a bearer credential for a resource server, so it is `active: false`
 * here like an unknown, revoked or expired token (§2.2 lets the server limit what it discloses).
 *
 * @internal
 */
export const introspect = (config: ProviderConfig, token: string) =>
  Effect.gen(function*() {
    const record = yield* config.store.getAccessToken(token)
    const now = yield* Clock.currentTimeMillis
    if (Option.isNone(record) || record.value.expiresAt <= now) return { active: false } as const
    const r = record.value
    return {
      active: true,
      token_type: "Bearer",
      client_id: r.clientId,
      sub: r.subject,
      ...(r.scopes.length === 0 ? {} : { scope: r.scopes.join(" ") }),
      ...(r.resource === undefined ? {} : { aud: r.resource }),
      iss: config.issuer,
      exp: Math.floor(r.expiresAt / 1000)
    } as const
  })

/**
 * RFC 7662 §2.1: `POST /introspect`. The caller must authenticate as a confidential client
 * (§2.1 "MUST require some form of authorization", and §4 against token scanning): a public
 * client, which proves nothing, is refused with 401 `invalid_client`.
 *
 * @internal
 */
export const introspectionEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const form = yield* readForm(config.maxBody)
    const client = yield* authenticateClient(config, request.headers["authorization"], form)
    if (client.tokenEndpointAuthMethod === "none" || client.clientSecret === undefined) {
      return yield* new OAuthFailure({
        status: 401,
        error: "invalid_client",
        description: "introspection requires an authenticated confidential client",
        headers: { "www-authenticate": `Basic realm="${config.issuer}", charset="UTF-8"` }
      })
    }
    const token = form.get("token")
    if (token === null || token === "") {
      return yield* new OAuthFailure({ status: 400, error: "invalid_request", description: "token is required" })
    }
    return jsonNoStore(yield* introspect(config, token))
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))
