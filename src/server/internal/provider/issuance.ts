/**
 * Minting access and refresh tokens, the RFC 6749 §5.1 token response, and reading an access
 * token back for a resource server in the same process.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AccessToken } from "../../AccessToken.js"
import { AccessTokenRecord, RefreshTokenRecord } from "../../OAuthProviderStore.js"
import { randomToken } from "../crypto.js"
import { jsonNoStore } from "../http.js"
import type { ProviderConfig } from "./config.js"
import { typed } from "../../../internal/typed.js"

/** Tokens just issued. @internal */
export interface Issued {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** Epoch milliseconds. */
  readonly expiresAt: number
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
}

/** What a new access (and refresh) token is bound to. @internal */
export interface Grant {
  readonly clientId: string
  readonly subject: string
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly familyId: string
  readonly refresh: boolean
  readonly ttlMillis?: number | undefined
}

/** Stores a new access token (and refresh token, when asked) of `grant`'s family. @internal */
export const mintTokens = (config: ProviderConfig, grant: Grant): Effect.Effect<Issued> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const ttl = grant.ttlMillis ?? (yield* config.accessTtlMillis)
    const accessToken = Redacted.make(randomToken())
    const expiresAt = now + ttl
    yield* config.store.putAccessToken(
      new AccessTokenRecord({
        token: accessToken,
        clientId: grant.clientId,
        subject: grant.subject,
        scopes: grant.scopes,
        resource: grant.resource,
        expiresAt,
        familyId: grant.familyId
      }, typed)
    )
    let refreshToken: Redacted.Redacted<string> | undefined
    if (grant.refresh) {
      refreshToken = Redacted.make(randomToken())
      yield* config.store.putRefreshToken(
        new RefreshTokenRecord({
          token: refreshToken,
          clientId: grant.clientId,
          subject: grant.subject,
          scopes: grant.scopes,
          resource: grant.resource,
          expiresAt: now + config.refreshTtlMillis,
          familyId: grant.familyId,
          used: false
        }, typed)
      )
    }
    return { accessToken, refreshToken, expiresAt, scopes: grant.scopes, resource: grant.resource }
  })

/** RFC 6749 §5.1: the successful token response, `no-store`. @internal */
export const tokenResponse = (issued: Issued, now: number) =>
  jsonNoStore({
    access_token: Redacted.value(issued.accessToken),
    token_type: "Bearer",
    expires_in: Math.max(0, Math.round((issued.expiresAt - now) / 1000)),
    ...(issued.scopes.length === 0 ? {} : { scope: issued.scopes.join(" ") }),
    ...(issued.refreshToken === undefined ? {} : { refresh_token: Redacted.value(issued.refreshToken) })
  })

/** The access token's claims, or `None` when it is unknown, revoked or expired (RFC 7662 §2.2). @internal */
export const verifyAccessToken = (config: ProviderConfig, token: string): Effect.Effect<Option.Option<AccessToken>> =>
  Effect.gen(function*() {
    const record = yield* config.store.getAccessToken(token)
    if (Option.isNone(record)) return Option.none<AccessToken>()
    const now = yield* Clock.currentTimeMillis
    const r = record.value
    if (r.expiresAt <= now) return Option.none<AccessToken>()
    return Option.some(
      new AccessToken({
        token: r.token,
        clientId: r.clientId,
        subject: r.subject,
        scopes: r.scopes,
        resource: r.resource,
        expiresAt: r.expiresAt
      }, typed)
    )
  })
