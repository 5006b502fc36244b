/**
 * An OAuth 2.1 authorization server as `@effect/platform` `HttpRouter` routes: RFC 8414
 * metadata, RFC 7591 dynamic registration, the authorization endpoint with PKCE `S256` and an
 * injectable consent step, the token endpoint (authorization code, refresh with rotation and
 * reuse detection, client credentials) and RFC 7009 revocation. Tokens are opaque random
 * strings kept in an {@link OAuthProviderStore}; a resource server in the same process verifies
 * them with {@link OAuthProvider.verifyAccessToken}.
 *
 * It is the authorization server of the embedded demo and of every test in this repository.
 *
 * @since 0.1.0
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Context, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { AccessToken } from "./AccessToken.js"
import * as Consent from "./Consent.js"
import { presentedCredentials } from "./internal/clientAuth.js"
import { constantTimeEqual, randomToken } from "./internal/crypto.js"
import {
  escapeHtml,
  failureResponse,
  hasContentType,
  jsonNoStore,
  OAuthFailure,
  page,
  parseParams,
  queryOf,
  readBody,
  readForm
} from "./internal/http.js"
import { isValidS256Challenge, verifyS256 } from "./internal/pkce.js"
import { matchesRegisteredRedirectUri, redirectUriProblem } from "./internal/redirectUri.js"
import type { ClientAuthMethod } from "./OAuthProviderStore.js"
import {
  AccessTokenRecord,
  AuthorizationCode,
  layerMemory as storeLayerMemory,
  OAuthProviderStore,
  PendingAuthorization,
  RefreshTokenRecord,
  RegisteredClient
} from "./OAuthProviderStore.js"

/**
 * Options of the authorization server.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The issuer identifier (RFC 8414 §2): an `http(s)` URL without query or fragment, possibly
   * with a path (`http://127.0.0.1:8080/tenant1`). Endpoints live under that path; the metadata
   * is served at `/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1).
   */
  readonly issuer: string
  /** Lifetime of access tokens (default 1 hour). An effect is evaluated at every issuance. */
  readonly accessTokenTtl?: Duration.DurationInput | Effect.Effect<Duration.DurationInput> | undefined
  /** Lifetime of refresh tokens (default 30 days). */
  readonly refreshTokenTtl?: Duration.DurationInput | undefined
  /**
   * How long a rotated refresh token may still be presented (default 0: any reuse revokes the
   * whole grant, OAuth 2.1 §4.3.1). A few seconds tolerates clients that refresh twice at once
   * or lose a response — the "reuse interval" / "grace period" of hosted authorization servers.
   */
  readonly refreshTokenReuseInterval?: Duration.DurationInput | undefined
  /** Lifetime of authorization codes (default 60 seconds). */
  readonly authorizationCodeTtl?: Duration.DurationInput | undefined
  /** `scopes_supported`; when set, other scopes are refused with `invalid_scope`. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** Advertise `client_id_metadata_document_supported` (default `false`). */
  readonly clientIdMetadataDocumentSupported?: boolean | undefined
  /**
   * Resolves a URL-formatted `client_id` to a client when CIMD is supported (see
   * `ClientIdMetadata.resolver`). Without it, URL client ids are unknown like any other.
   */
  readonly resolveClientIdMetadataDocument?:
    | ((clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>)
    | undefined
  /** `token_endpoint_auth_methods_supported` (default `none`, `client_secret_basic`, `client_secret_post`). */
  readonly tokenEndpointAuthMethodsSupported?: ReadonlyArray<ClientAuthMethod> | undefined
  /** The consent step (default {@link Consent.autoApprove} as `"test-user"`). */
  readonly consent?: Consent.ConsentStep | undefined
  /** Send RFC 9207 `iss` on authorization responses and advertise it (default `true`). */
  readonly issuerParameter?: boolean | undefined
  /** When set, the only `resource` values (RFC 8707) tokens may be bound to; others get `invalid_target`. */
  readonly allowedResources?: ReadonlyArray<string> | undefined
  /** Largest accepted request body in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number | undefined
}

/**
 * The URLs of the server's endpoints, derived from the issuer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category models
 */
export interface Endpoints {
  readonly issuer: string
  /** The RFC 8414 §3.1 metadata URL (`/.well-known/oauth-authorization-server` + issuer path). */
  readonly metadata: string
  /** The OpenID Connect Discovery 1.0 §4 URL (`/.well-known/openid-configuration` + issuer path). */
  readonly openidConfiguration: string
  readonly authorization: string
  readonly consent: string
  readonly token: string
  readonly registration: string
  readonly revocation: string
}

/**
 * Tokens minted directly (for tests and tools), bypassing the authorization endpoint.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category models
 */
export interface IssuedToken {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** Epoch milliseconds. */
  readonly expiresAt: number
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
}

/**
 * A client to register directly (pre-registration), bypassing RFC 7591.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category models
 */
export interface ClientRegistration {
  /** Default: a random id. */
  readonly clientId?: string | undefined
  /** Default: a random secret, unless the method is `none`. */
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  /** Default `client_secret_basic` (RFC 7591 §2). */
  readonly tokenEndpointAuthMethod?: ClientAuthMethod | undefined
  readonly redirectUris?: ReadonlyArray<string> | undefined
  /** Default `authorization_code` and `refresh_token`. */
  readonly grantTypes?: ReadonlyArray<string> | undefined
  readonly scope?: string | undefined
  readonly clientName?: string | undefined
}

/**
 * Input of {@link OAuthProvider.issueToken}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 * @since 0.1.0
 * @category models
 */
export interface IssueTokenInput {
  readonly clientId: string
  readonly subject?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly resource?: string | undefined
  /** Default: the server's access token lifetime. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Also issue a refresh token (default `false`). */
  readonly refreshToken?: boolean | undefined
}

/**
 * The authorization server: its routes, its metadata, and operations for a resource server in the
 * same process (`verifyAccessToken`) and for tests (`registerClient`, `issueToken`).
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category models
 */
export interface OAuthProvider {
  readonly issuer: string
  readonly endpoints: Endpoints
  /** The RFC 8414 §2 metadata document served by the metadata routes. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** Every route of the server; serve it with `HttpServer.serve` or mount it next to other routes. */
  readonly router: HttpRouter.HttpRouter
  readonly store: OAuthProviderStore
  /** The access token's claims, or `None` when it is unknown, revoked or expired (RFC 7662 §2.2 semantics). */
  readonly verifyAccessToken: (token: string) => Effect.Effect<Option.Option<AccessToken>>
  readonly registerClient: (registration: ClientRegistration) => Effect.Effect<RegisteredClient>
  readonly issueToken: (input: IssueTokenInput) => Effect.Effect<IssuedToken>
  /** Revokes an access token, or a refresh token together with its whole grant (RFC 7009 §2.1). */
  readonly revokeToken: (token: string) => Effect.Effect<void>
}

/**
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category tags
 */
export const OAuthProvider: Context.Tag<OAuthProvider, OAuthProvider> = Context.GenericTag<OAuthProvider>(
  "effect-mcp-oauth/server/OAuthProvider"
)

/**
 * The grant types the server implements.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 * @since 0.1.0
 * @category constants
 */
export const grantTypesSupported: ReadonlyArray<string> = ["authorization_code", "refresh_token", "client_credentials"]

const DEFAULT_AUTH_METHODS: ReadonlyArray<ClientAuthMethod> = ["none", "client_secret_basic", "client_secret_post"]

/**
 * The endpoint URLs of an issuer. The metadata URL inserts the well-known segment between the
 * host and the issuer's path.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1
 * @since 0.1.0
 * @category constructors
 */
export const endpointsOf = (issuer: string): Endpoints => {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, "")
  const base = `${url.protocol}//${url.host}${path}`
  return {
    issuer: base,
    metadata: `${url.protocol}//${url.host}/.well-known/oauth-authorization-server${path}`,
    openidConfiguration: `${url.protocol}//${url.host}/.well-known/openid-configuration${path}`,
    authorization: `${base}/authorize`,
    consent: `${base}/authorize/consent`,
    token: `${base}/token`,
    registration: `${base}/register`,
    revocation: `${base}/revoke`
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
  software_version: Schema.optional(Schema.String)
})

const decodeRegistration = Schema.decodeUnknownEither(Schema.parseJson(RegistrationRequest))

const splitScopes = (scope: string | null | undefined): ReadonlyArray<string> =>
  scope === null || scope === undefined ? [] : scope.split(" ").filter((s) => s !== "")

const isAbsoluteUriWithoutFragment = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.hash === "" && !value.includes("#")
  } catch {
    return false
  }
}

/** The public JSON of a registered client (RFC 7591 §3.2.1). */
const clientInformation = (client: RegisteredClient): Record<string, unknown> => ({
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
  ...(client.scope === undefined ? {} : { scope: client.scope })
})

/**
 * Builds the authorization server on a store.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<OAuthProvider, never, OAuthProviderStore> =>
  Effect.gen(function*() {
    const store = yield* OAuthProviderStore
    const endpoints = endpointsOf(options.issuer)
    const issuer = endpoints.issuer
    const issuerPath = new URL(issuer).pathname.replace(/\/+$/, "")
    const authMethods = options.tokenEndpointAuthMethodsSupported ?? DEFAULT_AUTH_METHODS
    const sendIss = options.issuerParameter ?? true
    const maxBody = options.maxBodyBytes ?? 64 * 1024
    const consent = options.consent ?? Consent.autoApprove()
    const codeTtl = Duration.toMillis(Duration.decode(options.authorizationCodeTtl ?? Duration.seconds(60)))
    const refreshTtl = Duration.toMillis(Duration.decode(options.refreshTokenTtl ?? Duration.days(30)))
    const accessTtl: Effect.Effect<number> = Effect.map(
      Effect.isEffect(options.accessTokenTtl) ?
        options.accessTokenTtl :
        Effect.succeed(options.accessTokenTtl ?? Duration.hours(1)),
      (ttl) => Duration.toMillis(Duration.decode(ttl))
    )

    const metadata: Readonly<Record<string, unknown>> = {
      issuer,
      authorization_endpoint: endpoints.authorization,
      token_endpoint: endpoints.token,
      registration_endpoint: endpoints.registration,
      revocation_endpoint: endpoints.revocation,
      ...(options.scopesSupported === undefined ? {} : { scopes_supported: options.scopesSupported }),
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: grantTypesSupported,
      token_endpoint_auth_methods_supported: authMethods,
      revocation_endpoint_auth_methods_supported: authMethods,
      code_challenge_methods_supported: ["S256"],
      authorization_response_iss_parameter_supported: sendIss,
      client_id_metadata_document_supported: options.clientIdMetadataDocumentSupported ?? false
    }

    // ---- helpers -------------------------------------------------------------------------------

    const checkScopes = (scopes: ReadonlyArray<string>): OAuthFailure | undefined => {
      if (options.scopesSupported === undefined) return undefined
      const unknown = scopes.filter((s) => !options.scopesSupported!.includes(s))
      return unknown.length === 0 ?
        undefined :
        new OAuthFailure({ status: 400, error: "invalid_scope", description: `unsupported scope: ${unknown.join(" ")}` })
    }

    /** RFC 8707 §2: one absolute URI without fragment; optionally from the allowed list. */
    const checkResource = (resources: ReadonlyArray<string>): string | undefined | OAuthFailure => {
      if (resources.length === 0) return undefined
      const invalid = (description: string) => new OAuthFailure({ status: 400, error: "invalid_target", description })
      if (resources.length > 1) return invalid("only one resource is supported")
      const resource = resources[0]!
      if (!isAbsoluteUriWithoutFragment(resource)) return invalid("resource must be an absolute URI without fragment")
      if (options.allowedResources !== undefined && !options.allowedResources.includes(resource)) {
        return invalid(`unknown resource ${resource}`)
      }
      return resource
    }

    const findClient = (clientId: string): Effect.Effect<Option.Option<RegisteredClient>> =>
      Effect.flatMap(store.getClient(clientId), (found) => {
        if (Option.isSome(found)) return Effect.succeed(found)
        const resolve = options.resolveClientIdMetadataDocument
        return options.clientIdMetadataDocumentSupported === true && resolve !== undefined &&
            /^https?:\/\//.test(clientId)
          ? resolve(clientId)
          : Effect.succeed(Option.none())
      })

    const mintTokens = (params: {
      readonly clientId: string
      readonly subject: string
      readonly scopes: ReadonlyArray<string>
      readonly resource: string | undefined
      readonly familyId: string
      readonly refresh: boolean
      readonly ttlMillis?: number | undefined
    }): Effect.Effect<IssuedToken> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const ttl = params.ttlMillis ?? (yield* accessTtl)
        const accessToken = Redacted.make(randomToken())
        const expiresAt = now + ttl
        yield* store.putAccessToken(
          new AccessTokenRecord({
            token: accessToken,
            clientId: params.clientId,
            subject: params.subject,
            scopes: params.scopes,
            resource: params.resource,
            expiresAt,
            familyId: params.familyId
          })
        )
        let refreshToken: Redacted.Redacted<string> | undefined
        if (params.refresh) {
          refreshToken = Redacted.make(randomToken())
          yield* store.putRefreshToken(
            new RefreshTokenRecord({
              token: refreshToken,
              clientId: params.clientId,
              subject: params.subject,
              scopes: params.scopes,
              resource: params.resource,
              expiresAt: now + refreshTtl,
              familyId: params.familyId,
              used: false
            })
          )
        }
        return { accessToken, refreshToken, expiresAt, scopes: params.scopes, resource: params.resource }
      })

    const tokenResponse = (issued: IssuedToken, now: number) =>
      jsonNoStore({
        access_token: Redacted.value(issued.accessToken),
        token_type: "Bearer",
        expires_in: Math.max(0, Math.round((issued.expiresAt - now) / 1000)),
        ...(issued.scopes.length === 0 ? {} : { scope: issued.scopes.join(" ") }),
        ...(issued.refreshToken === undefined ? {} : { refresh_token: Redacted.value(issued.refreshToken) })
      })

    /** RFC 6749 §2.3 / §5.2: authenticates the client of a token or revocation request. */
    const authenticateClient = (
      authorization: string | undefined,
      form: URLSearchParams
    ): Effect.Effect<RegisteredClient, OAuthFailure> =>
      Effect.gen(function*() {
        const presented = presentedCredentials(authorization, form)
        const basicTried = authorization !== undefined && /^basic\b/i.test(authorization)
        const invalidClient = (description: string) =>
          new OAuthFailure({
            status: 401,
            error: "invalid_client",
            description,
            ...(basicTried ? { headers: { "www-authenticate": `Basic realm="${issuer}", charset="UTF-8"` } } : {})
          })
        switch (presented._tag) {
          case "Missing":
            return yield* invalidClient("client authentication is required")
          case "Malformed":
            return yield* (presented.description === "more than one client authentication method"
              ? new OAuthFailure({ status: 400, error: "invalid_request", description: presented.description })
              : invalidClient(presented.description))
        }
        const client = yield* findClient(presented.clientId)
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

    // ---- registration (RFC 7591) ---------------------------------------------------------------

    const registerClient = Effect.fn("OAuthProvider.registerClient")(function*(registration: ClientRegistration) {
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
        clientIdIssuedAt: Math.floor(now / 1000)
      })
      yield* store.putClient(client)
      return client
    })

    const register = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const invalidMetadata = (description: string) =>
        new OAuthFailure({ status: 400, error: "invalid_client_metadata", description })
      if (!hasContentType(request, "application/json")) {
        return yield* invalidMetadata("the registration request must be application/json")
      }
      const decoded = decodeRegistration(yield* readBody(maxBody))
      if (decoded._tag === "Left") return yield* invalidMetadata("the body is not valid client metadata JSON")
      const body = decoded.right
      const method = body.token_endpoint_auth_method ?? "client_secret_basic"
      const supportedMethod = authMethods.find((m) => m === method)
      if (supportedMethod === undefined) {
        return yield* invalidMetadata(`token_endpoint_auth_method ${method} is not supported`)
      }
      const grantTypes = body.grant_types ?? ["authorization_code", "refresh_token"]
      const unknownGrant = grantTypes.find((g) => !grantTypesSupported.includes(g))
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
      const redirectUris = body.redirect_uris ?? []
      if (grantTypes.includes("authorization_code")) {
        if (redirectUris.length === 0) {
          return yield* new OAuthFailure({
            status: 400,
            error: "invalid_redirect_uri",
            description: "redirect_uris is required for the authorization_code grant"
          })
        }
      }
      for (const uri of redirectUris) {
        const problem = redirectUriProblem(uri)
        if (problem !== undefined) {
          return yield* new OAuthFailure({ status: 400, error: "invalid_redirect_uri", description: problem })
        }
      }
      const scopeProblem = checkScopes(splitScopes(body.scope))
      if (scopeProblem !== undefined) return yield* invalidMetadata(scopeProblem.description)
      const client = yield* registerClient({
        tokenEndpointAuthMethod: supportedMethod,
        redirectUris,
        grantTypes,
        clientName: body.client_name,
        scope: body.scope
      })
      return jsonNoStore({ ...clientInformation(client), response_types: responseTypes }, 201)
    }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))

    // ---- authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 8707, RFC 9207) -----------------

    /** Errors that must not redirect (RFC 6749 §4.1.2.1): shown to the user agent. */
    const badAuthorizationRequest = (error: string, description: string) =>
      Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
        (request.headers["accept"] ?? "").includes("text/html") ?
          page(
            "Authorization error",
            `<h1>Authorization error</h1><p><code id="error">${escapeHtml(error)}</code></p>` +
              `<p id="error_description">${escapeHtml(description)}</p>`,
            400
          ) :
          jsonNoStore({ error, error_description: description }, 400))

    const redirectWith = (redirectUri: string, params: Record<string, string | undefined>, status = 302) => {
      const url = new URL(redirectUri)
      for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
      if (sendIss) url.searchParams.set("iss", issuer)
      return HttpServerResponse.redirect(url.toString(), { status, headers: { "cache-control": "no-store" } })
    }

    const issueCode = (params: {
      readonly clientId: string
      readonly redirectUri: string
      readonly codeChallenge: string
      readonly subject: string
      readonly scopes: ReadonlyArray<string>
      readonly resource: string | undefined
    }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const code = randomToken()
        yield* store.putCode(
          new AuthorizationCode({
            ...params,
            code: Redacted.make(code),
            expiresAt: now + codeTtl,
            used: false,
            familyId: ""
          })
        )
        return code
      })

    const authorize = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const params = parseParams(queryOf(request))
      if (params instanceof OAuthFailure) return yield* badAuthorizationRequest(params.error, params.description)
      const clientId = params.get("client_id")
      if (clientId === null || clientId === "") {
        return yield* badAuthorizationRequest("invalid_request", "client_id is missing")
      }
      const found = yield* findClient(clientId)
      if (Option.isNone(found)) {
        return yield* badAuthorizationRequest("invalid_client", `Client ID "${clientId}" not found`)
      }
      const client = found.value
      const requestedRedirect = params.get("redirect_uri")
      const redirectUri = requestedRedirect ??
        (client.redirectUris.length === 1 ? client.redirectUris[0]! : undefined)
      if (redirectUri === undefined) {
        return yield* badAuthorizationRequest("invalid_request", "redirect_uri is required")
      }
      if (!matchesRegisteredRedirectUri(redirectUri, client.redirectUris)) {
        return yield* badAuthorizationRequest(
          "invalid_request",
          `redirect_uri "${redirectUri}" is not registered for client "${clientId}"`
        )
      }
      // From here on, errors are reported to the client by redirect (RFC 6749 §4.1.2.1).
      const state = params.get("state") ?? undefined
      const fail = (error: string, description: string) =>
        Effect.succeed(redirectWith(redirectUri, { error, error_description: description, state }))
      if (params.get("response_type") !== "code") {
        return yield* fail("unsupported_response_type", "response_type must be code")
      }
      if (!client.grantTypes.includes("authorization_code")) {
        return yield* fail("unauthorized_client", "the client may not use the authorization_code grant")
      }
      const codeChallenge = params.get("code_challenge")
      if (codeChallenge === null) return yield* fail("invalid_request", "code_challenge is required (PKCE)")
      if (params.get("code_challenge_method") !== "S256") {
        return yield* fail("invalid_request", "code_challenge_method must be S256")
      }
      if (!isValidS256Challenge(codeChallenge)) return yield* fail("invalid_request", "malformed code_challenge")
      const requestedScopes = params.has("scope") ? splitScopes(params.get("scope")) : splitScopes(client.scope)
      const scopeProblem = checkScopes(requestedScopes)
      if (scopeProblem !== undefined) return yield* fail(scopeProblem.error, scopeProblem.description)
      const resource = checkResource(params.getAll("resource"))
      if (resource instanceof OAuthFailure) return yield* fail(resource.error, resource.description)

      const decision = yield* consent({
        clientId,
        clientName: client.clientName,
        redirectUri,
        scopes: requestedScopes,
        resource,
        state
      })
      switch (decision._tag) {
        case "Deny":
          return yield* fail("access_denied", decision.description ?? "the request was denied")
        case "Approve": {
          const code = yield* issueCode({
            clientId,
            redirectUri,
            codeChallenge,
            subject: decision.subject,
            scopes: decision.scopes ?? requestedScopes,
            resource
          })
          return redirectWith(redirectUri, { code, state })
        }
        case "Prompt": {
          const now = yield* Clock.currentTimeMillis
          const id = randomToken()
          yield* store.putPending(
            new PendingAuthorization({
              id: Redacted.make(id),
              clientId,
              redirectUri,
              codeChallenge,
              state,
              scopes: requestedScopes,
              resource,
              subject: decision.subject,
              expiresAt: now + 10 * 60 * 1000
            })
          )
          return consentPage({ id, clientName: client.clientName ?? clientId, redirectUri, requestedScopes, resource })
        }
      }
    })

    const consentPage = (p: {
      readonly id: string
      readonly clientName: string
      readonly redirectUri: string
      readonly requestedScopes: ReadonlyArray<string>
      readonly resource: string | undefined
    }) =>
      page(
        "Authorize access",
        `<h1>Authorize <span id="client">${escapeHtml(p.clientName)}</span>?</h1>` +
          `<p>It will be sent back to <code>${escapeHtml(new URL(p.redirectUri).origin)}</code>.</p>` +
          (p.requestedScopes.length === 0 ?
            "" :
            `<p>Scopes: <span id="scopes">${escapeHtml(p.requestedScopes.join(" "))}</span></p>`) +
          (p.resource === undefined ? "" : `<p>Resource: <code id="resource">${escapeHtml(p.resource)}</code></p>`) +
          `<form method="post" action="${escapeHtml(endpoints.consent)}">` +
          `<input type="hidden" name="request_id" value="${escapeHtml(p.id)}">` +
          `<button type="submit" id="approve" name="decision" value="approve">Approve</button>` +
          `<button type="submit" id="deny" name="decision" value="deny">Deny</button>` +
          `</form>`
      )

    const consentDecision = Effect.gen(function*() {
      const form = yield* readForm(maxBody)
      const id = form.get("request_id")
      const pending = id === null ? Option.none() : yield* store.takePending(id)
      const now = yield* Clock.currentTimeMillis
      if (Option.isNone(pending) || pending.value.expiresAt <= now) {
        return page(
          "Authorization error",
          `<h1>Authorization error</h1><p id="error_description">This authorization request has expired or was already answered.</p>`,
          400
        )
      }
      const p = pending.value
      if (form.get("decision") === "approve") {
        const code = yield* issueCode({
          clientId: p.clientId,
          redirectUri: p.redirectUri,
          codeChallenge: p.codeChallenge,
          subject: p.subject,
          scopes: p.scopes,
          resource: p.resource
        })
        return redirectWith(p.redirectUri, { code, state: p.state }, 303)
      }
      return redirectWith(
        p.redirectUri,
        { error: "access_denied", error_description: "the user denied the request", state: p.state },
        303
      )
    }).pipe(
      Effect.catchTag("OAuthFailure", (f) =>
        Effect.succeed(page("Authorization error", `<p id="error_description">${escapeHtml(f.description)}</p>`, 400)))
    )

    // ---- token endpoint (RFC 6749 §3.2, §4.1.3, §6, §4.4; OAuth 2.1 §4.3.1) ----------------------

    const invalidGrant = (description: string) => new OAuthFailure({ status: 400, error: "invalid_grant", description })
    const invalidRequest = (description: string) =>
      new OAuthFailure({ status: 400, error: "invalid_request", description })
    const unauthorizedClient = (description: string) =>
      new OAuthFailure({ status: 400, error: "unauthorized_client", description })

    const authorizationCodeGrant = (client: RegisteredClient, form: URLSearchParams) =>
      Effect.gen(function*() {
        if (!client.grantTypes.includes("authorization_code")) {
          return yield* unauthorizedClient("the client may not use the authorization_code grant")
        }
        const code = form.get("code")
        const verifier = form.get("code_verifier")
        if (code === null || code === "") return yield* invalidRequest("code is required")
        if (verifier === null) return yield* invalidRequest("code_verifier is required (PKCE)")
        const requestedResource = checkResource(form.getAll("resource"))
        if (requestedResource instanceof OAuthFailure) return yield* requestedResource
        const familyId = randomToken(16)
        const found = yield* store.consumeCode(code, familyId)
        if (Option.isNone(found)) return yield* invalidGrant("unknown authorization code")
        const record = found.value
        if (record.used) {
          // OAuth 2.1 §4.1.3: a replayed code revokes the tokens issued from it.
          yield* store.revokeFamily(record.familyId)
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
        if (requestedResource !== undefined && record.resource !== undefined && requestedResource !== record.resource) {
          return yield* new OAuthFailure({
            status: 400,
            error: "invalid_target",
            description: "resource does not match the authorization request"
          })
        }
        const issued = yield* mintTokens({
          clientId: client.clientId,
          subject: record.subject,
          scopes: record.scopes,
          resource: requestedResource ?? record.resource,
          familyId,
          refresh: client.grantTypes.includes("refresh_token")
        })
        return tokenResponse(issued, now)
      })

    const reuseIntervalMillis = Duration.toMillis(options.refreshTokenReuseInterval ?? Duration.zero)
    /**
     * A rotated refresh token presented again within the reuse interval is honoured once more
     * (a client that refreshed twice at once, or lost the response) instead of revoking the grant.
     */
    const withinReuseInterval = (record: RefreshTokenRecord, now: number): boolean =>
      reuseIntervalMillis > 0 && record.usedAt !== undefined && now - record.usedAt <= reuseIntervalMillis

    const refreshTokenGrant = (client: RegisteredClient, form: URLSearchParams) =>
      Effect.gen(function*() {
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
        if (original.used && !withinReuseInterval(original, started)) {
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
        const requestedResource = checkResource(form.getAll("resource"))
        if (requestedResource instanceof OAuthFailure) return yield* requestedResource
        if (
          requestedResource !== undefined && original.resource !== undefined && requestedResource !== original.resource
        ) {
          return yield* new OAuthFailure({
            status: 400,
            error: "invalid_target",
            description: "resource does not match the original grant"
          })
        }
        const used = yield* store.useRefreshToken(token, started)
        if (Option.isNone(used)) return yield* invalidGrant("unknown or revoked refresh token")
        const record = used.value
        if (record.used && !withinReuseInterval(record, started)) {
          // OAuth 2.1 §4.3.1: reuse of a rotated refresh token revokes the whole grant.
          yield* store.revokeFamily(record.familyId)
          return yield* invalidGrant("refresh token reuse detected; the grant has been revoked")
        }
        const now = yield* Clock.currentTimeMillis
        if (record.expiresAt <= now) return yield* invalidGrant("refresh token expired")
        const issued = yield* mintTokens({
          clientId: client.clientId,
          subject: record.subject,
          scopes,
          resource: requestedResource ?? record.resource,
          familyId: record.familyId,
          refresh: true
        })
        return tokenResponse(issued, now)
      })

    const clientCredentialsGrant = (client: RegisteredClient, form: URLSearchParams) =>
      Effect.gen(function*() {
        if (client.tokenEndpointAuthMethod === "none" || !client.grantTypes.includes("client_credentials")) {
          return yield* unauthorizedClient("the client may not use the client_credentials grant")
        }
        const scopes = form.has("scope") ? splitScopes(form.get("scope")) : splitScopes(client.scope)
        const scopeProblem = checkScopes(scopes)
        if (scopeProblem !== undefined) return yield* scopeProblem
        const resource = checkResource(form.getAll("resource"))
        if (resource instanceof OAuthFailure) return yield* resource
        const now = yield* Clock.currentTimeMillis
        const issued = yield* mintTokens({
          clientId: client.clientId,
          subject: client.clientId,
          scopes,
          resource,
          familyId: randomToken(16),
          refresh: false
        })
        return tokenResponse(issued, now)
      })

    const token = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const form = yield* readForm(maxBody)
      const client = yield* authenticateClient(request.headers["authorization"], form)
      const grantType = form.get("grant_type")
      switch (grantType) {
        case "authorization_code":
          return yield* authorizationCodeGrant(client, form)
        case "refresh_token":
          return yield* refreshTokenGrant(client, form)
        case "client_credentials":
          return yield* clientCredentialsGrant(client, form)
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

    // ---- revocation (RFC 7009) -----------------------------------------------------------------

    const revokeOwned = (clientId: string | undefined, token: string) =>
      Effect.gen(function*() {
        const access = yield* store.getAccessToken(token)
        if (Option.isSome(access) && (clientId === undefined || access.value.clientId === clientId)) {
          yield* store.deleteAccessToken(token)
        }
        const refresh = yield* store.getRefreshToken(token)
        if (Option.isSome(refresh) && (clientId === undefined || refresh.value.clientId === clientId)) {
          yield* store.revokeFamily(refresh.value.familyId)
        }
      })

    const revoke = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const form = yield* readForm(maxBody)
      const client = yield* authenticateClient(request.headers["authorization"], form)
      const token = form.get("token")
      if (token === null || token === "") return yield* invalidRequest("token is required")
      // RFC 7009 §2.2: invalid or foreign tokens also answer 200.
      yield* revokeOwned(client.clientId, token)
      return HttpServerResponse.empty({ status: 200, headers: { "cache-control": "no-store" } })
    }).pipe(Effect.catchTag("OAuthFailure", (f) => Effect.succeed(failureResponse(f))))

    // ---- metadata (RFC 8414 §3) ----------------------------------------------------------------

    const metadataResponse = Effect.succeed(
      HttpServerResponse.unsafeJson(metadata, { headers: { "access-control-allow-origin": "*" } })
    )

    const at = (path: string): HttpRouter.PathInput => `/${path.replace(/^\/+/, "")}`
    const baseRouter = HttpRouter.empty.pipe(
      HttpRouter.get(at(`/.well-known/oauth-authorization-server${issuerPath}`), metadataResponse),
      HttpRouter.get(at(`/.well-known/openid-configuration${issuerPath}`), metadataResponse),
      HttpRouter.post(at(`${issuerPath}/register`), register),
      HttpRouter.get(at(`${issuerPath}/authorize`), authorize),
      HttpRouter.post(at(`${issuerPath}/authorize/consent`), consentDecision),
      HttpRouter.post(at(`${issuerPath}/token`), token),
      HttpRouter.post(at(`${issuerPath}/revoke`), revoke)
    )
    // OpenID Connect Discovery 1.0 §4: the issuer path followed by the well-known segment.
    const router = issuerPath === "" ?
      baseRouter :
      HttpRouter.get(baseRouter, at(`${issuerPath}/.well-known/openid-configuration`), metadataResponse)

    const verifyAccessToken = Effect.fn("OAuthProvider.verifyAccessToken")(function*(token: string) {
      const record = yield* store.getAccessToken(token)
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
        })
      )
    })

    const issueToken = Effect.fn("OAuthProvider.issueToken")(function*(input: IssueTokenInput) {
      return yield* mintTokens({
        clientId: input.clientId,
        subject: input.subject ?? "test-user",
        scopes: input.scopes ?? [],
        resource: input.resource,
        familyId: randomToken(16),
        refresh: input.refreshToken ?? false,
        ttlMillis: input.ttl === undefined ? undefined : Duration.toMillis(Duration.decode(input.ttl))
      })
    })

    const revokeToken = Effect.fn("OAuthProvider.revokeToken")(function*(token: string) {
      yield* revokeOwned(undefined, token)
    })

    return OAuthProvider.of({
      issuer,
      endpoints,
      metadata,
      router,
      store,
      verifyAccessToken,
      registerClient,
      issueToken,
      revokeToken
    })
  })

/**
 * The authorization server as a layer, on the {@link OAuthProviderStore} found in context.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<OAuthProvider, never, OAuthProviderStore> =>
  Layer.effect(OAuthProvider, make(options))

/**
 * The authorization server with an in-memory store.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options): Layer.Layer<OAuthProvider> =>
  layer(options).pipe(Layer.provide(storeLayerMemory))
