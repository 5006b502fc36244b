/**
 * What every endpoint of the embedded authorization server shares: its resolved settings, its
 * store, and the small rules more than one endpoint applies (scope lists, RFC 8707 resources,
 * looking a client up, including by Client ID Metadata Document).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Consent from "../../Consent.js"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type {
  ClientAuthMethod,
  OAuthProviderStore,
  PendingAuthorization,
  RegisteredClient
} from "../../OAuthProviderStore.js"
import { OAuthFailure } from "../http.js"

/** Counts accepted dynamic registrations per remote address and in all. @internal */
export interface RegistrationGuard {
  /** Why a registration from `address` is refused now, or `undefined`. */
  readonly check: (address: string, now: number) => OAuthFailure | undefined
  readonly record: (address: string, now: number) => void
}

/** The resolved settings of one authorization server, as the endpoints use them. @internal */
export interface ProviderConfig {
  readonly issuer: string
  /** The URL the consent form posts to. */
  readonly consentUrl: string
  readonly store: OAuthProviderStore
  readonly authMethods: ReadonlyArray<ClientAuthMethod>
  /** Send RFC 9207 `iss` on authorization responses. */
  readonly sendIss: boolean
  readonly maxBody: number
  readonly consent: Consent.ConsentStep
  readonly codeTtlMillis: number
  readonly refreshTtlMillis: number
  readonly refreshReuseMillis: number
  /** Evaluated at every issuance. */
  readonly accessTtlMillis: Effect.Effect<number>
  readonly scopesSupported: ReadonlyArray<string> | undefined
  readonly allowedResources: ReadonlyArray<string> | undefined
  readonly clientIdMetadataDocumentSupported: boolean
  readonly resolveClientIdMetadataDocument:
    | ((clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>)
    | undefined
  readonly registrationGuard: RegistrationGuard
  /** The grant types clients may register and use (default {@link GRANT_TYPES}). */
  readonly grantTypes?: ReadonlyArray<string> | undefined
  /** Further limits on the redirect URIs a client may register (the OAuth proxy's allow-list). */
  readonly redirectUriAllowed?: ((uri: string) => boolean) | undefined
  /**
   * The name of a cookie that binds the consent form to the browser that loaded it
   * (`SameSite=Strict`): a form posted from another browser, or cross-site, is refused.
   */
  readonly consentCookie?: string | undefined
  /** What happens once the user approved, instead of issuing the code (the OAuth proxy goes upstream). */
  readonly afterConsent?:
    | ((pending: PendingAuthorization) => Effect.Effect<HttpServerResponse.HttpServerResponse, OAuthFailure>)
    | undefined
}

/** A space-separated scope parameter as a list (RFC 6749 §3.3). @internal */
export const splitScopes = (scope: string | null | undefined): ReadonlyArray<string> =>
  scope === null || scope === undefined ? [] : scope.split(" ").filter((s) => s !== "")

/** `invalid_scope` when a scope is not in `scopes_supported` (when that is configured). @internal */
export const checkScopes = (config: ProviderConfig, scopes: ReadonlyArray<string>): OAuthFailure | undefined => {
  const supported = config.scopesSupported
  if (supported === undefined) return undefined
  const unknown = scopes.filter((s) => !supported.includes(s))
  return unknown.length === 0 ?
    undefined :
    new OAuthFailure({ status: 400, error: "invalid_scope", description: `unsupported scope: ${unknown.join(" ")}` })
}

/**
 * `invalid_scope` when a scope is outside the client's registered `scope` (RFC 7591 §2), when it
 * registered one: a client registered for `read` never obtains `admin`.
 *
 * @internal
 */
export const checkRegisteredScopes = (
  client: RegisteredClient,
  scopes: ReadonlyArray<string>
): OAuthFailure | undefined => {
  if (client.scope === undefined) return undefined
  const registered = splitScopes(client.scope)
  const extra = scopes.filter((s) => !registered.includes(s))
  return extra.length === 0 ?
    undefined :
    new OAuthFailure({
      status: 400,
      error: "invalid_scope",
      description: `scope not registered for this client: ${extra.join(" ")}`
    })
}

const isAbsoluteUriWithoutFragment = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.hash === "" && !value.includes("#")
  } catch {
    return false
  }
}

/** RFC 8707 §2: one absolute URI without fragment; optionally from the allowed list. @internal */
export const checkResource = (
  config: ProviderConfig,
  resources: ReadonlyArray<string>
): string | undefined | OAuthFailure => {
  if (resources.length === 0) return undefined
  const invalid = (description: string) => new OAuthFailure({ status: 400, error: "invalid_target", description })
  if (resources.length > 1) return invalid("only one resource is supported")
  const resource = resources[0]!
  if (!isAbsoluteUriWithoutFragment(resource)) return invalid("resource must be an absolute URI without fragment")
  if (config.allowedResources !== undefined && !config.allowedResources.includes(resource)) {
    return invalid(`unknown resource ${resource}`)
  }
  return resource
}

/** A registered client, or (when CIMD is supported) one resolved from its URL client id. @internal */
export const findClient = (
  config: ProviderConfig,
  clientId: string
): Effect.Effect<Option.Option<RegisteredClient>> =>
  Effect.flatMap(config.store.getClient(clientId), (found) => {
    if (Option.isSome(found)) return Effect.succeed(found)
    const resolve = config.resolveClientIdMetadataDocument
    return config.clientIdMetadataDocumentSupported && resolve !== undefined && /^https?:\/\//.test(clientId)
      ? resolve(clientId)
      : Effect.succeed(Option.none())
  })

/** The grant types the server implements (RFC 8414 §2 `grant_types_supported`). @internal */
export const GRANT_TYPES: ReadonlyArray<string> = ["authorization_code", "refresh_token", "client_credentials"]
