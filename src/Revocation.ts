/**
 * OAuth 2.0 Token Revocation (RFC 7009): tell the authorization server that a token is no longer
 * needed (on logout), so that it — and, for a refresh token, the whole grant — stops working.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as ClientConfiguration from "./ClientConfiguration.js"
import * as Discovery from "./Discovery.js"
import { OAuthRequestError, OAuthTokenError } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import type { ClientInformation, StoredToken } from "./Schemas.js"
import { secretAuthenticatedPost } from "./TokenExchange.js"
import * as TokenStorage from "./TokenStorage.js"

/**
 * One revocation request.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @since 0.1.0
 * @category models
 */
export interface RevokeRequest {
  /** The authorization server's `revocation_endpoint` (RFC 8414 §2). */
  readonly endpoint: string
  readonly token: Redacted.Redacted<string>
  readonly tokenTypeHint?: "access_token" | "refresh_token" | undefined
  /** The client the token was issued to; it authenticates as at the token endpoint (none, Basic or post). */
  readonly client: ClientInformation
  /** Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
}

const ErrorBody = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String)
})

/**
 * Revokes a token (RFC 7009 §2.1): a form POST of `token` and `token_type_hint`, authenticated
 * like the token endpoint (`client_secret_basic` with RFC 6749 §2.3.1 form-encoding,
 * `client_secret_post`, or just `client_id` for public clients; `private_key_jwt` clients send
 * `client_id` only). HTTP 200 is success — also for a token the server no longer knows
 * (§2.2). An error body (§2.2.1, e.g. `unsupported_token_type`) or another status is an
 * `OAuthTokenError`; a transport failure an `OAuthRequestError`. No redirects are followed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.2
 * @since 0.1.0
 * @category revocation
 */
export const revoke = Effect.fn("Revocation.revoke")(function*(request: RevokeRequest) {
  const client = yield* HttpClient.HttpClient
  const info = request.client
  const params: Record<string, string> = { token: Redacted.value(request.token) }
  if (request.tokenTypeHint !== undefined) params["token_type_hint"] = request.tokenTypeHint
  const response = yield* OAuthHttp.execute(client, secretAuthenticatedPost(request.endpoint, info, params), {
    timeout: request.timeout ?? Duration.seconds(30),
    ...(request.allowInsecure === undefined ? {} : { allowInsecure: request.allowInsecure })
  })
  if (response.status === 200) return
  const body = OAuthHttp.decodeJson(ErrorBody, response)
  return yield* Either.match(body, {
    onLeft: () =>
      Effect.fail(
        new OAuthTokenError({
          error: response.status >= 500 ? "temporarily_unavailable" : "invalid_request",
          errorDescription: `the revocation endpoint answered HTTP ${response.status}`,
          status: response.status
        })
      ),
    onRight: (e) =>
      Effect.fail(
        new OAuthTokenError({
          error: e.error,
          ...(e.error_description === undefined ? {} : { errorDescription: e.error_description }),
          status: response.status
        })
      )
  })
}) satisfies (request: RevokeRequest) => Effect.Effect<void, OAuthTokenError | OAuthRequestError, HttpClient.HttpClient>

/**
 * What {@link signOut} did: the tokens the server confirmed revoked, and why others were not
 * (server unreachable, no `revocation_endpoint`, a revocation refused).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.2
 * @since 0.1.0
 * @category models
 */
export interface SignOutResult {
  readonly revoked: ReadonlyArray<"refresh_token" | "access_token">
  readonly warnings: ReadonlyArray<string>
  /** Whether the client registration was deleted at the authorization server (RFC 7592 §2.3). */
  readonly clientDeleted?: boolean | undefined
}

/**
 * Options of {@link signOut}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.3
 * @since 0.1.0
 * @category models
 */
export interface SignOutOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
  /**
   * Also delete the dynamically registered client at the authorization server (RFC 7592 §2.3,
   * when the server gave it a `registration_client_uri`); it is forgotten locally either way.
   * Default `false`.
   */
  readonly deleteClient?: boolean | undefined
  /**
   * Forget the stored client information (default `true`). With `false` only the tokens are
   * removed, and the next sign-in reuses the same client (one client identity per server).
   */
  readonly forgetClient?: boolean | undefined
  /**
   * The configured pre-registered client (with its secret) to revoke with, instead of the stored
   * client record. It is presented only at the tokens' own issuer.
   */
  readonly client?: ClientInformation | undefined
}

/**
 * What {@link revokeTokenSet} did: the token types the issuer accepted to revoke, and why any
 * revocation was not possible.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.2
 * @since 0.1.0
 * @category models
 */
export interface RevokedTokenSet {
  readonly revoked: ReadonlyArray<"refresh_token" | "access_token">
  readonly warnings: ReadonlyArray<string>
}

/**
 * Revokes one token set — its refresh token, then its access token — at the revocation endpoint
 * of the issuer that issued it (RFC 7009 §2.1): the one stored with the tokens, else the one
 * discovery for `key` finds when it still names that issuer; never another authorization
 * server's (SEP-2352). `options.client` is the client to revoke with (the configured
 * pre-registered one, or the stored record); a client of another issuer is never presented.
 * Best effort: what could not be revoked is a warning. Storage is not touched, so a caller can
 * revoke exactly the set it holds and then forget it only if it is still the one stored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @since 0.1.0
 * @category revocation
 */
export const revokeTokenSet = Effect.fn("Revocation.revokeTokenSet")(function*(
  key: string,
  token: StoredToken,
  options: Omit<SignOutOptions, "deleteClient" | "forgetClient">
) {
  const discovery = yield* Discovery.Discovery
  const revoked: Array<"refresh_token" | "access_token"> = []
  const warnings: Array<string> = []
  const onlyLocally = "the tokens were only removed locally"
  const revocationEndpoint = (issuer: string) =>
    Effect.gen(function*() {
      const found = yield* Effect.either(discovery.discover(key))
      if (Either.isLeft(found)) {
        warnings.push(`could not reach the authorization server to revoke the tokens: ${found.left.message}`)
        return undefined
      }
      if (found.right.issuer !== issuer) {
        warnings.push(`the server now names the authorization server ${found.right.issuer}, not the tokens' issuer ${issuer}; ${onlyLocally}`)
        return undefined
      }
      const endpoint = found.right.authorizationServer.revocation_endpoint
      if (endpoint === undefined) {
        warnings.push(`the authorization server does not advertise a revocation_endpoint; ${onlyLocally}`)
      }
      return endpoint
    })
  const { client, ...http } = options
  if (client === undefined) {
    warnings.push(`no client information is stored to revoke with; ${onlyLocally}`)
  } else if (client.source !== "preregistered" && client.issuer !== token.issuer) {
    warnings.push(`the stored client belongs to ${client.issuer}, not to the tokens' issuer ${token.issuer}; ${onlyLocally}`)
  } else {
    const endpoint = token.revocationEndpoint ?? (yield* revocationEndpoint(token.issuer))
    if (endpoint !== undefined) {
      const attempts: ReadonlyArray<readonly ["refresh_token" | "access_token", Redacted.Redacted<string> | undefined]> = [
        ["refresh_token", token.refreshToken],
        ["access_token", token.accessToken]
      ]
      for (const [hint, value] of attempts) {
        if (value === undefined) continue
        const result = yield* Effect.either(revoke({ endpoint, token: value, tokenTypeHint: hint, client, ...http }))
        if (Either.isRight(result)) revoked.push(hint)
        else {
          // An RFC 7009 §2.2.1 error response has the RFC 6749 §5.2 form, and its error type.
          const failure = result.left
          warnings.push(`revoking the ${hint} failed: ${
            failure._tag === "OAuthTokenError" ? `the revocation endpoint answered ${failure.answer}` : failure.message
          }`)
        }
      }
    }
  }
  return { revoked, warnings } satisfies RevokedTokenSet
})

/**
 * Signs out of one server: revokes its stored refresh token, then its access token, at the
 * revocation endpoint of the issuer that issued them (RFC 7009 §2.1) — the one stored with the
 * tokens, else the one discovery finds when it still names that issuer; never another
 * authorization server's (SEP-2352). Best effort: when revocation is not possible (server
 * unreachable, no `revocation_endpoint`, no client to revoke with, the server now names another
 * issuer, a revocation refused) a warning says so. Then the stored tokens and client
 * information are cleared (`forgetClient: false` keeps the client; `deleteClient: true` first
 * deletes it at the server, RFC 7592 §2.3). The registration shared by every MCP server on the
 * same authorization server ({@link TokenStorage.clientKey}) is kept — other servers use it —
 * unless `deleteClient: true`. Only a storage failure fails the operation.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc7592#section-2.3
 * @since 0.1.0
 * @category sign-out
 */
export const signOut = Effect.fn("Revocation.signOut")(function*(
  key: string,
  signOutOptions: SignOutOptions = {}
) {
  const { deleteClient, forgetClient, ...options } = signOutOptions
  const storage = yield* TokenStorage.TokenStorage
  const tokens = yield* storage.getTokens(key)
  const stored = yield* storage.getClient(key)
  const result: RevokedTokenSet = Option.isSome(tokens)
    ? yield* revokeTokenSet(key, tokens.value, { ...options, client: options.client ?? Option.getOrUndefined(stored) })
    : { revoked: [], warnings: [] }
  const { revoked } = result
  const warnings = [...result.warnings]
  let clientDeleted = false
  if (deleteClient === true && Option.isSome(stored) && stored.value.source === "dynamic") {
    if (ClientConfiguration.isManaged(stored.value)) {
      const { client: _, ...http } = options
      const deleted = yield* Effect.either(ClientConfiguration.remove(stored.value, http))
      if (Either.isRight(deleted) || deleted.left._tag === "ClientNotFound") clientDeleted = true
      else warnings.push(`deleting the client at the authorization server failed: ${deleted.left.message}`)
    } else {
      warnings.push(
        "the authorization server offers no client configuration endpoint (RFC 7592); the client was only forgotten locally"
      )
    }
  }
  if (deleteClient === true && Option.isSome(stored)) {
    // The registration shared by the other MCP servers on this issuer goes too (it no longer exists).
    const client = stored.value
    for (const kind of ["browser", "device", "client_credentials"] as const) {
      const sharedKey = TokenStorage.clientKey(client.issuer, kind)
      const shared = yield* storage.getClient(sharedKey)
      if (Option.isSome(shared) && shared.value.clientId === client.clientId) yield* storage.clearClient(sharedKey)
    }
  }
  if (forgetClient === false && deleteClient !== true) yield* storage.clearTokens(key)
  else yield* storage.clear(key)
  return { revoked, warnings, ...(deleteClient === true ? { clientDeleted } : {}) } satisfies SignOutResult
})
