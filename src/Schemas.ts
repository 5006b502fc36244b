/**
 * Wire formats of the OAuth documents and messages this library reads and writes, as `Schema`s
 * from `effect`. Secrets (tokens, client secrets) decode to `Redacted` values so that logging a
 * decoded value never prints them.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

const StringArray = Schema.Array(Schema.String)

/**
 * RFC 9728 §2 OAuth 2.0 Protected Resource Metadata. Unknown members are ignored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category schemas
 */
export class ProtectedResourceMetadata extends Schema.Class<ProtectedResourceMetadata>("ProtectedResourceMetadata")({
  resource: Schema.String,
  authorization_servers: Schema.optional(StringArray),
  scopes_supported: Schema.optional(StringArray),
  bearer_methods_supported: Schema.optional(StringArray),
  resource_name: Schema.optional(Schema.String),
  dpop_bound_access_tokens_required: Schema.optional(Schema.Boolean),
  resource_documentation: Schema.optional(Schema.String)
}) {}

/**
 * RFC 8414 §2 Authorization Server Metadata (also used for OpenID Connect Discovery 1.0
 * documents, which are a superset). Unknown members are ignored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
 * @since 0.1.0
 * @category schemas
 */
export class AuthorizationServerMetadata
  extends Schema.Class<AuthorizationServerMetadata>("AuthorizationServerMetadata")({
    issuer: Schema.String,
    authorization_endpoint: Schema.optional(Schema.String),
    token_endpoint: Schema.optional(Schema.String),
    registration_endpoint: Schema.optional(Schema.String),
    revocation_endpoint: Schema.optional(Schema.String),
    jwks_uri: Schema.optional(Schema.String),
    scopes_supported: Schema.optional(StringArray),
    response_types_supported: Schema.optional(StringArray),
    grant_types_supported: Schema.optional(StringArray),
    token_endpoint_auth_methods_supported: Schema.optional(StringArray),
    token_endpoint_auth_signing_alg_values_supported: Schema.optional(StringArray),
    code_challenge_methods_supported: Schema.optional(StringArray),
    client_id_metadata_document_supported: Schema.optional(Schema.Boolean),
    authorization_response_iss_parameter_supported: Schema.optional(Schema.Boolean),
    dpop_signing_alg_values_supported: Schema.optional(StringArray),
    /** RFC 8628 §4: where a device (no browser at hand) starts a sign-in. */
    device_authorization_endpoint: Schema.optional(Schema.String)
  })
{}

/**
 * Discovery results kept with a token record (RFC 9728 + RFC 8414 documents), so that a new
 * process can refresh without fetching them again. Bound to the token's `issuer`: used only
 * while `authorizationServer.issuer` is the issuer stored with the token, and only until
 * `freshUntil` (from the responses' `Cache-Control`, bounded).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-4.2
 * @since 0.1.0
 * @category schemas
 */
export class StoredDiscovery extends Schema.Class<StoredDiscovery>("StoredDiscovery")({
  protectedResource: Schema.optional(ProtectedResourceMetadata),
  /** Where the PRM was read from. */
  resourceMetadataUrl: Schema.optional(Schema.String),
  /** The RFC 8707 resource indicator discovery settled on. */
  resource: Schema.optional(Schema.String),
  authorizationServer: AuthorizationServerMetadata,
  legacy: Schema.Boolean,
  /** When the documents were fetched, epoch milliseconds. */
  fetchedAt: Schema.Number,
  /** Until when they may be reused, epoch milliseconds. */
  freshUntil: Schema.Number
}) {}

/**
 * The client authentication methods at the token endpoint this library implements
 * (RFC 6749 §2.3.1, RFC 7591 §2, RFC 7523 §2.2).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category schemas
 */
export const TokenEndpointAuthMethod = Schema.Literal(
  "none",
  "client_secret_basic",
  "client_secret_post",
  "private_key_jwt"
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type TokenEndpointAuthMethod = typeof TokenEndpointAuthMethod.Type

/**
 * RFC 7591 §2 client metadata, as sent in a registration request.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category schemas
 */
export const ClientMetadata = Schema.Struct(
  {
    redirect_uris: StringArray,
    client_name: Schema.optional(Schema.String),
    client_uri: Schema.optional(Schema.String),
    logo_uri: Schema.optional(Schema.String),
    scope: Schema.optional(Schema.String),
    grant_types: Schema.optional(StringArray),
    response_types: Schema.optional(StringArray),
    token_endpoint_auth_method: Schema.optional(Schema.String),
    software_id: Schema.optional(Schema.String),
    software_version: Schema.optional(Schema.String),
    application_type: Schema.optional(Schema.String)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type ClientMetadata = typeof ClientMetadata.Type

/**
 * RFC 7591 §3.2.1 client information response.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category schemas
 */
export const ClientInformationResponse = Schema.Struct({
  client_id: Schema.String,
  client_secret: Schema.optional(Schema.String),
  client_id_issued_at: Schema.optional(Schema.Number),
  client_secret_expires_at: Schema.optional(Schema.Number),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  redirect_uris: Schema.optional(StringArray),
  grant_types: Schema.optional(StringArray),
  scope: Schema.optional(Schema.String),
  registration_client_uri: Schema.optional(Schema.String),
  registration_access_token: Schema.optional(Schema.String)
})

/**
 * The client identity this library uses at one authorization server, as stored: how it was
 * obtained, the secret (`Redacted`), the auth method to use at the token endpoint, the redirect
 * URIs it was registered with, and the issuer it belongs to (SEP-2352: credentials are bound to
 * their authorization server and discarded when the server changes).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category models
 */
export class ClientInformation extends Schema.Class<ClientInformation>("ClientInformation")({
  clientId: Schema.String,
  clientSecret: Schema.optional(Schema.Redacted(Schema.String)),
  tokenEndpointAuthMethod: TokenEndpointAuthMethod,
  source: Schema.Literal("preregistered", "metadata-document", "dynamic"),
  issuer: Schema.String,
  redirectUris: Schema.Array(Schema.String),
  /** Absolute expiry of the client secret, epoch milliseconds (RFC 7591 `client_secret_expires_at`; absent = never). */
  clientSecretExpiresAt: Schema.optional(Schema.Number),
  /** The `scope` the client is registered with (RFC 7591 §2), when the server said or we asked. */
  scope: Schema.optional(Schema.String),
  /** RFC 7592 §3: where the client's configuration can be read, updated and deleted. */
  registrationClientUri: Schema.optional(Schema.String),
  /** RFC 7592 §3: the Bearer token for `registrationClientUri`; only ever sent there. */
  registrationAccessToken: Schema.optional(Schema.Redacted(Schema.String))
}) {}

/**
 * RFC 6749 §5.1 successful access token response.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category schemas
 */
export const TokenResponse = Schema.Struct({
  access_token: Schema.NonEmptyString,
  token_type: Schema.String,
  expires_in: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString)),
  refresh_token: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  id_token: Schema.optional(Schema.String),
  issued_token_type: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type TokenResponse = typeof TokenResponse.Type

/**
 * RFC 6749 §5.2 error response (also used by RFC 7591 §3.2.2 and RFC 7009).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @since 0.1.0
 * @category schemas
 */
export const OAuthErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
  error_uri: Schema.optional(Schema.String)
})

/**
 * A token set as stored: the access token and refresh token are `Redacted`, expiry is an
 * **absolute** instant (epoch milliseconds) so that a token loaded after a restart is known to be
 * expired, and the token is bound to the issuer and resource it was obtained for.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 * @since 0.1.0
 * @category models
 */
export class StoredToken extends Schema.Class<StoredToken>("StoredToken")({
  accessToken: Schema.Redacted(Schema.String),
  tokenType: Schema.String,
  refreshToken: Schema.optional(Schema.Redacted(Schema.String)),
  /** Absolute expiry, epoch milliseconds; absent when the server did not say. */
  expiresAt: Schema.optional(Schema.Number),
  /** Scopes granted (the response's `scope`, or the requested ones when the server omitted it). */
  scopes: Schema.Array(Schema.String),
  /** The authorization server that issued the token: it is only ever presented there (SEP-2352). */
  issuer: Schema.String,
  /**
   * The issuer's RFC 7009 `revocation_endpoint` when the token was obtained, so that sign-out
   * revokes at the token's own issuer whatever the resource names later (absent in older records).
   */
  revocationEndpoint: Schema.optional(Schema.String),
  resource: Schema.optional(Schema.String),
  /** When the token was obtained, epoch milliseconds. */
  obtainedAt: Schema.Number,
  /**
   * The discovery the token was obtained with, so a new process refreshes without discovering
   * again (absent in older records, and when the metadata forbade storing it).
   */
  discovery: Schema.optional(StoredDiscovery),
  /**
   * The DPoP key (RFC 9449) a `DPoP` token set is bound to, as a private JWK (`Dpop.exportKey`):
   * a new process presents and refreshes the set with it instead of signing in again. As secret
   * as the refresh token beside it.
   */
  dpopKey: Schema.optional(Schema.Redacted(Schema.String))
}) {
  /** Seconds until expiry at `now` (epoch ms), recomputed from the absolute expiry; `undefined` when unknown. */
  expiresIn(now: number): number | undefined {
    return this.expiresAt === undefined ? undefined : Math.floor((this.expiresAt - now) / 1000)
  }
  /** Whether the token expires within `marginMillis` of `now`. A token without expiry never expires here. */
  isExpired(now: number, marginMillis = 0): boolean {
    return this.expiresAt !== undefined && this.expiresAt - marginMillis <= now
  }
}

/**
 * The parameters of an authorization response (RFC 6749 §4.1.2, RFC 9207 §2), read from the
 * redirect URI's query.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationResponse {
  readonly code: string
  readonly state: string | undefined
  readonly iss: string | undefined
}

/**
 * An authorization request in progress, as stored when a browser sign-in starts (the user is on
 * the authorization server's pages), so that another process — a proxy the host restarted —
 * can take over the sign-in: listen on the same redirect URI and redeem the code with the same
 * PKCE verifier, instead of sending the user to a second sign-in. The verifier is a secret
 * until the token request (RFC 7636 §4.1), so it is `Redacted` and stored with the same
 * protections as the tokens.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export class PendingAuthorization extends Schema.Class<PendingAuthorization>("PendingAuthorization")({
  /** The authorization URL the user agent was sent to. */
  url: Schema.String,
  /** The request's `state` (RFC 6749 §10.12). */
  state: Schema.String,
  /** The PKCE `code_verifier` of the request's `code_challenge` (RFC 7636 §4.1). */
  codeVerifier: Schema.Redacted(Schema.String),
  /** The redirect URI sent, with the loopback port the callback server listened on (RFC 8252 §7.3). */
  redirectUri: Schema.String,
  /** The authorization server (its RFC 8414 `issuer`). */
  issuer: Schema.String,
  /** Whether that server sends `iss` in its authorization responses (RFC 9207 §2). */
  issParameterSupported: Schema.Boolean,
  clientId: Schema.String,
  /** The RFC 8707 `resource` requested. */
  resource: Schema.optional(Schema.String),
  scopes: Schema.Array(Schema.String),
  /** When the request was made, epoch milliseconds. */
  createdAt: Schema.Number,
  /** When it is no longer worth waiting for, epoch milliseconds. */
  expiresAt: Schema.Number
}) {}
