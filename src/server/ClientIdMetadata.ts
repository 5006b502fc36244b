/**
 * Client ID Metadata Documents (MCP SEP-991, draft-ietf-oauth-client-id-metadata-document) on
 * the authorization server side: a `client_id` that is an HTTPS URL names a JSON document
 * describing the client; the server resolves it instead of requiring registration.
 *
 * @since 0.1.0
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Duration, Effect, Either, Option, Schema } from "effect"
import { isLoopbackRedirect, redirectUriProblem } from "./internal/redirectUri.js"
import { RegisteredClient } from "./OAuthProviderStore.js"

/**
 * The members of a client ID metadata document the server uses (RFC 7591 §2 client metadata
 * plus `client_id`). Unknown members are ignored.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category schemas
 */
export const ClientIdMetadataDocument = Schema.Struct({
  client_id: Schema.String,
  redirect_uris: Schema.Array(Schema.String),
  client_name: Schema.optional(Schema.String),
  client_uri: Schema.optional(Schema.String),
  logo_uri: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  grant_types: Schema.optional(Schema.Array(Schema.String)),
  response_types: Schema.optional(Schema.Array(Schema.String)),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  application_type: Schema.optional(Schema.Literal("web", "native")),
  client_secret: Schema.optional(Schema.Unknown)
})

/**
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category schemas
 */
export type ClientIdMetadataDocument = typeof ClientIdMetadataDocument.Type

/**
 * Whether `clientId` is a URL client id: `https:` with a path and no fragment (or, when
 * `allowHttpLoopback`, `http:` on a loopback host, for tests).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category predicates
 */
export const isClientIdUrl = (clientId: string, allowHttpLoopback = false): boolean => {
  let url: URL
  try {
    url = new URL(clientId)
  } catch {
    return false
  }
  if (url.hash !== "" || clientId.includes("#") || url.username !== "" || url.password !== "") return false
  if (url.pathname === "/" || url.pathname === "") return false
  return url.protocol === "https:" || (allowHttpLoopback && isLoopbackRedirect(url))
}

/**
 * Validates a document fetched from `url` and turns it into a (public) client: `client_id` must
 * equal the URL exactly, there must be redirect URIs, no `client_secret`, and only
 * `token_endpoint_auth_method` `none`.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category constructors
 */
export const toClient = (
  url: string,
  document: unknown,
  issuedAtSeconds: number
): Either.Either<RegisteredClient, string> => {
  const decoded = Schema.decodeUnknownEither(ClientIdMetadataDocument)(document)
  if (Either.isLeft(decoded)) return Either.left("the document is not client metadata")
  const doc = decoded.right
  if (doc.client_id !== url) return Either.left("client_id in the document differs from its URL")
  if (doc.client_secret !== undefined) return Either.left("a client metadata document must not carry a secret")
  if ((doc.token_endpoint_auth_method ?? "none") !== "none") {
    return Either.left(`token_endpoint_auth_method ${doc.token_endpoint_auth_method} is not supported`)
  }
  if (doc.redirect_uris.length === 0) return Either.left("redirect_uris is empty")
  for (const uri of doc.redirect_uris) {
    const problem = redirectUriProblem(uri, doc.application_type)
    if (problem !== undefined) return Either.left(problem)
  }
  const grantTypes = doc.grant_types ?? ["authorization_code", "refresh_token"]
  if (grantTypes.some((g) => g !== "authorization_code" && g !== "refresh_token")) {
    return Either.left("a public client may only use authorization_code and refresh_token")
  }
  return Either.right(
    new RegisteredClient({
      clientId: url,
      tokenEndpointAuthMethod: "none",
      redirectUris: doc.redirect_uris,
      grantTypes,
      responseTypes: ["code"],
      clientName: doc.client_name,
      scope: doc.scope,
      clientIdIssuedAt: issuedAtSeconds,
      applicationType: doc.application_type,
      origin: "metadataDocument"
    })
  )
}

/**
 * A resolver from a fixed table of documents keyed by URL (no network), for tests and for
 * servers that know their clients' documents in advance. Invalid documents resolve to `None`.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category constructors
 */
export const fromDocuments = (
  documents: (url: string) => unknown
): (clientId: string) => Effect.Effect<Option.Option<RegisteredClient>> =>
(clientId) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const document = documents(clientId)
    return document === undefined ? Option.none() : Either.getRight(toClient(clientId, document, Math.floor(now / 1000)))
  })

/**
 * Options of {@link fetcher}.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category models
 */
export interface FetcherOptions {
  /** Per-fetch timeout (default 5 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Largest document accepted, in bytes (default 5 KiB, as the draft recommends). */
  readonly maxBytes?: number | undefined
  /** Accept `http:` URLs on loopback hosts (tests only; default `false`). */
  readonly allowHttpLoopback?: boolean | undefined
}

/**
 * A resolver that fetches the document with the `HttpClient` in context (give it one that does
 * not follow redirects, such as `NodeHttpClient.layer`: a redirect is then a non-200 answer).
 * The size and time are bounded, and any failure resolves to `None` (an unknown client).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category constructors
 */
export const fetcher = (
  options: FetcherOptions = {}
): Effect.Effect<(clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (client) => {
    const maxBytes = options.maxBytes ?? 5 * 1024
    const timeout = options.timeout ?? Duration.seconds(5)
    return (clientId: string) =>
      Effect.gen(function*() {
        if (!isClientIdUrl(clientId, options.allowHttpLoopback ?? false)) return Option.none()
        const response = yield* client.execute(
          HttpClientRequest.get(clientId).pipe(HttpClientRequest.acceptJson)
        )
        if (response.status !== 200) return Option.none()
        if (Number(response.headers["content-length"] ?? "0") > maxBytes) return Option.none()
        const text = yield* response.text
        if (new TextEncoder().encode(text).length > maxBytes) return Option.none()
        const document = yield* Effect.try((): unknown => JSON.parse(text))
        const now = yield* Clock.currentTimeMillis
        return Either.getRight(toClient(clientId, document, Math.floor(now / 1000)))
      }).pipe(
        Effect.timeout(timeout),
        Effect.orElseSucceed(() => Option.none<RegisteredClient>()),
        Effect.withSpan("ClientIdMetadata.resolve")
      )
  })
