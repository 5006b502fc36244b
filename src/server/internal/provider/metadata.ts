/**
 * The metadata endpoint (RFC 8414 §2, §3): the document, served at the RFC 8414 and OpenID
 * Connect Discovery 1.0 well-known URLs.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { ClientAuthMethod } from "../../OAuthProviderStore.js"
import { GRANT_TYPES } from "./config.js"

/** The endpoint URLs the document names. @internal */
export interface MetadataEndpoints {
  readonly issuer: string
  readonly authorization: string
  readonly token: string
  readonly registration: string
  readonly revocation: string
  readonly introspection: string
}

/** RFC 8414 §2: the authorization server metadata document. @internal */
export const metadataDocument = (params: {
  readonly endpoints: MetadataEndpoints
  readonly scopesSupported: ReadonlyArray<string> | undefined
  readonly authMethods: ReadonlyArray<ClientAuthMethod>
  readonly sendIss: boolean
  readonly clientIdMetadataDocumentSupported: boolean
  readonly grantTypes?: ReadonlyArray<string> | undefined
}): Readonly<Record<string, unknown>> => ({
  issuer: params.endpoints.issuer,
  authorization_endpoint: params.endpoints.authorization,
  token_endpoint: params.endpoints.token,
  registration_endpoint: params.endpoints.registration,
  revocation_endpoint: params.endpoints.revocation,
  introspection_endpoint: params.endpoints.introspection,
  ...(params.scopesSupported === undefined ? {} : { scopes_supported: params.scopesSupported }),
  response_types_supported: ["code"],
  response_modes_supported: ["query"],
  grant_types_supported: params.grantTypes ?? GRANT_TYPES,
  token_endpoint_auth_methods_supported: params.authMethods,
  revocation_endpoint_auth_methods_supported: params.authMethods,
  // RFC 7662 §2.1: introspection is for authenticated (confidential) clients only.
  introspection_endpoint_auth_methods_supported: params.authMethods.filter((m) => m !== "none"),
  code_challenge_methods_supported: ["S256"],
  authorization_response_iss_parameter_supported: params.sendIss,
  client_id_metadata_document_supported: params.clientIdMetadataDocumentSupported
})

/** RFC 8414 §3.2: the document as JSON, readable cross-origin (browser-based clients). @internal */
export const metadataEndpoint = (document: Readonly<Record<string, unknown>>) =>
  Effect.succeed(HttpServerResponse.unsafeJson(document, { headers: { "access-control-allow-origin": "*" } }))
