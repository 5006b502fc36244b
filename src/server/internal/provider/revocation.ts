/**
 * The revocation endpoint (RFC 7009): a client revokes its own access tokens, or a refresh token
 * together with its whole grant (§2.1); unknown and foreign tokens also answer 200 (§2.2).
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { failureResponse, OAuthFailure, readForm } from "../http.js"
import { authenticateClient } from "./clientAuthentication.js"
import type { ProviderConfig } from "./config.js"

/** Revokes `token` when `clientId` owns it (or for any owner when `clientId` is `undefined`). @internal */
export const revokeOwned = (config: ProviderConfig, clientId: string | undefined, token: string) =>
  Effect.gen(function*() {
    const access = yield* config.store.getAccessToken(token)
    if (Option.isSome(access) && (clientId === undefined || access.value.clientId === clientId)) {
      yield* config.store.deleteAccessToken(token)
    }
    const refresh = yield* config.store.getRefreshToken(token)
    if (Option.isSome(refresh) && (clientId === undefined || refresh.value.clientId === clientId)) {
      yield* config.store.revokeFamily(refresh.value.familyId)
    }
  })

/** RFC 7009 §2.1: `POST /revoke`. @internal */
export const revocationEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const form = yield* readForm(config.maxBody)
    const client = yield* authenticateClient(config, request.headers["authorization"], form)
    const token = form.get("token")
    if (token === null || token === "") {
      return yield* new OAuthFailure({ status: 400, error: "invalid_request", description: "token is required" })
    }
    // RFC 7009 §2.2: invalid or foreign tokens also answer 200.
    yield* revokeOwned(config, client.clientId, token)
    return HttpServerResponse.empty({ status: 200, headers: { "cache-control": "no-store" } })
  }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))
