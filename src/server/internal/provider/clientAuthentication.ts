/**
 * Client authentication at the token and revocation endpoints (RFC 6749 §2.3, §5.2): the method
 * presented must be the one registered, and a secret must match in constant time.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { ClientAuthMethod, RegisteredClient } from "../../OAuthProviderStore.js"
import { presentedCredentials } from "../clientAuth.js"
import { constantTimeEqual } from "../crypto.js"
import { OAuthFailure } from "../http.js"
import { findClient } from "./config.js"
import type { ProviderConfig } from "./config.js"

/** RFC 6749 §2.3 / §5.2: authenticates the client of a token or revocation request. @internal */
export const authenticateClient = (
  config: ProviderConfig,
  authorization: string | undefined,
  form: URLSearchParams
): Effect.Effect<RegisteredClient, OAuthFailure> =>
  Effect.gen(function*() {
    const presented = presentedCredentials(authorization, form)
    // RFC 9110 §15.5.2: every 401 carries a challenge — also when the client authenticated in
    // the body or is public (RFC 6749 §5.2 only spells it out for the Authorization header). The
    // challenge names Basic, the HTTP authentication scheme of RFC 6749 §2.3.1.
    const invalidClient = (description: string) =>
      new OAuthFailure({
        status: 401,
        error: "invalid_client",
        description,
        headers: { "www-authenticate": `Basic realm="${config.issuer}", charset="UTF-8"` }
      })
    switch (presented._tag) {
      case "Missing":
        return yield* invalidClient("client authentication is required")
      case "Malformed":
        return yield* (presented.description === "more than one client authentication method"
          ? new OAuthFailure({ status: 400, error: "invalid_request", description: presented.description })
          : invalidClient(presented.description))
    }
    const client = yield* findClient(config, presented.clientId)
    if (Option.isNone(client)) return yield* invalidClient(`Client ID "${presented.clientId}" not found`)
    const method: ClientAuthMethod = presented._tag === "Basic" ?
      "client_secret_basic" :
      presented._tag === "Post" ?
      "client_secret_post" :
      "none"
    const registered = client.value
    if (method !== registered.tokenEndpointAuthMethod) {
      return yield* invalidClient(
        `client is registered for ${registered.tokenEndpointAuthMethod}, but used ${method}`
      )
    }
    if (presented._tag !== "None") {
      const secret = registered.clientSecret
      if (secret === undefined || !constantTimeEqual(Redacted.value(secret), presented.clientSecret)) {
        return yield* invalidClient("client authentication failed")
      }
    }
    return registered
  })
