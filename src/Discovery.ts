/**
 * Metadata discovery for an MCP server: RFC 9728 protected-resource metadata, then RFC 8414 /
 * OpenID Connect authorization-server metadata in the order the MCP authorization spec asks for,
 * with the 2025-03-26 fallbacks for servers that publish neither.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { DiscoveryError, OAuthRequestError, ResourceMismatch } from "./Errors.js"
import * as OAuthHttp from "./internal/oauthHttp.js"
import { AuthorizationServerMetadata, ProtectedResourceMetadata } from "./Schemas.js"
import { serverKey } from "./TokenStorage.js"

/**
 * What discovery found for one MCP server.
 *
 * - `protectedResource`: the RFC 9728 document, when the server publishes one.
 * - `resource`: the RFC 8707 resource indicator to send on authorization and token requests —
 *   the PRM's `resource` exactly as published (never re-serialised through `URL`), or `undefined`
 *   for 2025-03-26 servers without PRM.
 * - `authorizationServer`: the RFC 8414 metadata; for servers with no metadata at all, the
 *   2025-03-26 default endpoints on the server's origin.
 * - `legacy`: `true` when no PRM was found (2025-03-26 behaviour).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-server-discovery
 * @since 0.1.0
 * @category models
 */
export interface DiscoveryResult {
  readonly mcpUrl: string
  readonly protectedResource: Option.Option<ProtectedResourceMetadata>
  readonly resource: string | undefined
  readonly authorizationServer: AuthorizationServerMetadata
  readonly issuer: string
  readonly legacy: boolean
  /** The URL the PRM was read from (RFC 9728 §3), so a 401 naming another one can be told apart. */
  readonly resourceMetadataUrl?: string | undefined
  /**
   * How long the documents may be reused, in seconds: the smallest `Cache-Control` `max-age` of
   * the responses (RFC 9111 §5.2.2.1; `no-store` / `no-cache` → 0); `undefined` when they said nothing.
   */
  readonly maxAgeSeconds?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DiscoverOptions {
  /** The `resource_metadata` URL from the 401's `WWW-Authenticate` (RFC 9728 §5.1). */
  readonly resourceMetadataUrl?: string | undefined
  /** Ignore the cache and fetch again (e.g. the server rejected a token: the AS may have changed). */
  readonly refresh?: boolean | undefined
  /**
   * The order in which to try the PRM's `authorization_servers` (RFC 9728 §2), given them as
   * listed; only listed issuers are tried. Default: as listed. See `AuthorizationServerSelection`.
   */
  readonly orderAuthorizationServers?: ((listed: ReadonlyArray<string>) => ReadonlyArray<string>) | undefined
}

/**
 * The errors discovery can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type DiscoveryFailure = DiscoveryError | OAuthRequestError | ResourceMismatch

/**
 * @since 0.1.0
 * @category models
 */
export interface Discovery {
  /** Discovers (or returns the cached) metadata of an MCP server. */
  readonly discover: (mcpUrl: string, options?: DiscoverOptions) => Effect.Effect<DiscoveryResult, DiscoveryFailure>
  /** RFC 9728 protected-resource metadata only, in the SEP-985 fallback order; `None` when absent. */
  readonly protectedResource: (
    mcpUrl: string,
    resourceMetadataUrl?: string
  ) => Effect.Effect<Option.Option<ProtectedResourceMetadata>, DiscoveryError | OAuthRequestError>
  /** RFC 8414 / OIDC metadata of an issuer, with issuer validation (RFC 8414 §3.3) and the S256 check. */
  readonly authorizationServer: (
    issuer: string
  ) => Effect.Effect<AuthorizationServerMetadata, DiscoveryError | OAuthRequestError>
  /** Forgets the cached result for one server. */
  readonly invalidate: (mcpUrl: string) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Discovery: Context.Tag<Discovery, Discovery> = Context.GenericTag<Discovery>(
  "effect-mcp-oauth/Discovery"
)

/**
 * @since 0.1.0
 * @category models
 */
export interface DiscoveryConfig {
  /**
   * Decides whether a PRM `resource` may be used for this server. The default accepts the server
   * URL itself or a parent of it on the same origin (RFC 9728 §3.3, RFC 8707 §2).
   */
  readonly validateResource?: ((serverUrl: string, resource: string) => boolean) | undefined
  /** Per HTTP call. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * One deadline for a whole discovery (every metadata URL and every listed authorization server
   * together), so that N hanging servers cannot cost N × `timeout`. Default: twice `timeout`.
   * Exceeding it fails with a `DiscoveryError` of reason `Timeout`.
   */
  readonly deadline?: Duration.DurationInput | undefined
  readonly allowInsecure?: boolean | undefined
}

/**
 * The freshness lifetime a `Cache-Control` header grants (RFC 9111 §5.2.2): `max-age` in
 * seconds, 0 for `no-store` / `no-cache`, `undefined` when the header says nothing about it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.1
 * @since 0.1.0
 * @category caching
 */
export const cacheMaxAge = (header: string | undefined): number | undefined => {
  if (header === undefined) return undefined
  let maxAge: number | undefined
  for (const part of header.split(",")) {
    const directive = part.trim().toLowerCase()
    if (directive === "no-store" || directive === "no-cache") return 0
    const match = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive)
    if (match !== null) maxAge = Number(match[1])
  }
  return maxAge
}

const normalize = (u: URL): { readonly origin: string; readonly path: string } => ({
  origin: `${u.protocol}//${u.host}`.toLowerCase(),
  path: u.pathname.replace(/\/+$/, "")
})

/**
 * The default RFC 9728 §3.3 check: the PRM `resource` must be the server URL or a path-prefix
 * parent of it on the same origin (compared after RFC 3986 syntax normalisation).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.3
 * @since 0.1.0
 * @category validation
 */
export const defaultValidateResource = (serverUrl: string, resource: string): boolean => {
  const server = URL.canParse(serverUrl) ? new URL(serverUrl) : undefined
  const claimed = URL.canParse(resource) ? new URL(resource) : undefined
  if (server === undefined || claimed === undefined || claimed.hash !== "") return false
  const s = normalize(server)
  const r = normalize(claimed)
  if (s.origin !== r.origin) return false
  return r.path === "" || s.path === r.path || s.path.startsWith(r.path + "/")
}

/**
 * The well-known URLs at which to look for protected-resource metadata when the 401 did not name
 * one: path-aware first, then the root (RFC 9728 §3.1, MCP SEP-985).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 * @since 0.1.0
 * @category url building
 */
export const protectedResourceMetadataUrls = (mcpUrl: string): ReadonlyArray<string> => {
  if (!URL.canParse(mcpUrl)) return []
  const u = new URL(mcpUrl)
  const path = u.pathname.replace(/\/+$/, "")
  const root = `${u.origin}/.well-known/oauth-protected-resource`
  return path === "" ? [root] : [`${root}${path}`, root]
}

/**
 * The authorization-server metadata URLs to try for an issuer, in the MCP order: for an issuer
 * with a path, RFC 8414 path insertion, OIDC path insertion, OIDC path appending; for a root
 * issuer, RFC 8414 then OIDC. The bare root is never tried for an issuer with a path.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
 * @since 0.1.0
 * @category url building
 */
export const authorizationServerMetadataUrls = (issuer: string): ReadonlyArray<string> => {
  if (!URL.canParse(issuer)) return []
  const u = new URL(issuer)
  const path = u.pathname.replace(/\/+$/, "")
  if (path === "") {
    return [`${u.origin}/.well-known/oauth-authorization-server`, `${u.origin}/.well-known/openid-configuration`]
  }
  return [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}/.well-known/openid-configuration${path}`,
    `${u.origin}${path}/.well-known/openid-configuration`
  ]
}

const stripSlash = (s: string): string => s.replace(/\/+$/, "")

/** What every metadata request needs: the inner client and its limits. */
interface MetadataHttp {
  readonly client: HttpClient.HttpClient
  readonly options: OAuthHttp.OAuthHttpOptions
}

/** Told the `Cache-Control` lifetime of each document read (RFC 9111 §5.2.2). */
type MaxAgeSink = (seconds: number | undefined) => void

/** The overall deadline around one public operation (`url`: what it was about). */
const withinDeadline = (deadline: Duration.Duration, url: string) =>
<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | DiscoveryError> =>
  Effect.timeoutFail(effect, {
    duration: deadline,
    onTimeout: () =>
      new DiscoveryError({
        reason: "Timeout",
        url,
        detail: `discovery did not finish within its overall deadline of ${Duration.format(deadline)}`
      })
  })

const requireUrl = (url: string, what: string): Effect.Effect<void, DiscoveryError> =>
  URL.canParse(url)
    ? Effect.void
    : Effect.fail(new DiscoveryError({ reason: "Malformed", url, detail: `${what} is not an absolute URL` }))

/** Fetches one metadata document: `None` for a 4xx (try the next URL), an error otherwise. */
const fetchDocument = <A, I>(
  http: MetadataHttp,
  url: string,
  schema: Schema.Schema<A, I>,
  maxAge?: MaxAgeSink
): Effect.Effect<Option.Option<A>, DiscoveryError | OAuthRequestError> =>
  OAuthHttp.execute(http.client, HttpClientRequest.get(url), http.options).pipe(
    Effect.flatMap((response): Effect.Effect<Option.Option<A>, DiscoveryError | OAuthRequestError> => {
      if (response.status >= 400 && response.status < 500) return Effect.succeedNone
      if (response.status !== 200) {
        return Effect.fail(
          new OAuthRequestError({
            reason: "Status",
            url,
            status: response.status,
            detail: "metadata endpoint answered with an unexpected status"
          })
        )
      }
      return Either.match(OAuthHttp.decodeJson(schema, response), {
        onLeft: (detail) => Effect.fail(new DiscoveryError({ reason: "Malformed", url, detail })),
        onRight: (doc) => {
          maxAge?.(cacheMaxAge(response.headers["cache-control"]))
          return Effect.succeed(Option.some(doc))
        }
      })
    })
  )

/** The first of `urls` that has the document, with that URL. */
const firstFound = <A, I>(
  http: MetadataHttp,
  urls: ReadonlyArray<string>,
  schema: Schema.Schema<A, I>,
  maxAge?: MaxAgeSink
): Effect.Effect<Option.Option<readonly [string, A]>, DiscoveryError | OAuthRequestError> =>
  Effect.gen(function*() {
    for (const url of urls) {
      const found = yield* fetchDocument(http, url, schema, maxAge)
      if (Option.isSome(found)) return Option.some([url, found.value] as const)
    }
    return Option.none()
  })

/** RFC 9728 §3.1, SEP-985: the PRM at the URL the 401 named, then at the well-known URLs. */
const protectedResourceAt = (
  http: MetadataHttp,
  mcpUrl: string,
  resourceMetadataUrl?: string,
  maxAge?: MaxAgeSink
) =>
  Effect.gen(function*() {
    yield* requireUrl(mcpUrl, "the MCP server URL")
    const fallbacks = protectedResourceMetadataUrls(mcpUrl)
    const urls = resourceMetadataUrl === undefined
      ? fallbacks
      : [resourceMetadataUrl, ...fallbacks.filter((u) => u !== resourceMetadataUrl)]
    return yield* firstFound(http, urls, ProtectedResourceMetadata, maxAge)
  }).pipe(Effect.withSpan("Discovery.protectedResource", { attributes: { mcpUrl } }))

/** RFC 8414 §3.3: the document names the expected issuer (when `strictIssuer`); and PKCE S256 is offered. */
const checkAuthorizationServer = (
  url: string,
  expectedIssuer: string,
  doc: AuthorizationServerMetadata,
  strictIssuer: boolean
): Effect.Effect<AuthorizationServerMetadata, DiscoveryError> => {
  if (strictIssuer && stripSlash(doc.issuer) !== stripSlash(expectedIssuer)) {
    return Effect.fail(
      new DiscoveryError({
        reason: "IssuerMismatch",
        url,
        detail: `metadata names issuer "${doc.issuer}", expected "${expectedIssuer}"`
      })
    )
  }
  if (!(doc.code_challenge_methods_supported ?? []).includes("S256")) {
    return Effect.fail(
      new DiscoveryError({
        reason: "PkceNotSupported",
        url,
        detail: "code_challenge_methods_supported does not contain S256; refusing to continue without PKCE"
      })
    )
  }
  return Effect.succeed(doc)
}

/** RFC 8414 / OIDC metadata of an issuer, at the first of its metadata URLs that has it, checked. */
const authorizationServerAt = (http: MetadataHttp, issuer: string, maxAge?: MaxAgeSink) =>
  Effect.gen(function*() {
    yield* requireUrl(issuer, "the issuer")
    const urls = authorizationServerMetadataUrls(issuer)
    const found = yield* firstFound(http, urls, AuthorizationServerMetadata, maxAge)
    if (Option.isNone(found)) {
      return yield* Effect.fail(
        new DiscoveryError({
          reason: "NotFound",
          url: urls[0] ?? issuer,
          detail: `no authorization server metadata for issuer ${issuer} (tried ${urls.join(", ")})`
        })
      )
    }
    const [url, doc] = found.value
    return yield* checkAuthorizationServer(url, issuer, doc, true)
  }).pipe(Effect.withSpan("Discovery.authorizationServer", { attributes: { issuer } }))

/** 2025-03-26: no PRM; metadata on the server origin, else default endpoints there. */
const legacyAuthorizationServer = (http: MetadataHttp, mcpUrl: string, maxAge?: MaxAgeSink) =>
  Effect.gen(function*() {
    const origin = new URL(mcpUrl).origin
    const url = `${origin}/.well-known/oauth-authorization-server`
    const found = yield* fetchDocument(http, url, AuthorizationServerMetadata, maxAge)
    if (Option.isSome(found)) {
      const doc = found.value
      // The legacy document's issuer is only required to live on the server's origin.
      const sameOrigin = URL.canParse(doc.issuer) && new URL(doc.issuer).origin === origin
      if (!sameOrigin) {
        return yield* Effect.fail(
          new DiscoveryError({
            reason: "IssuerMismatch",
            url,
            detail: `metadata names issuer "${doc.issuer}", which is not on ${origin}`
          })
        )
      }
      return yield* checkAuthorizationServer(url, doc.issuer, doc, false)
    }
    return new AuthorizationServerMetadata({
      issuer: origin,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: `${origin}/token`,
      registration_endpoint: `${origin}/register`,
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"]
    })
  })

/** RFC 9728 §2: the PRM's `authorization_servers` to try, in the caller's order; only listed ones. */
const authorizationServersToTry = (
  mcpUrl: string,
  prm: ProtectedResourceMetadata,
  order: DiscoverOptions["orderAuthorizationServers"]
): Effect.Effect<ReadonlyArray<string>, DiscoveryError> => {
  const listed = prm.authorization_servers ?? []
  const servers = order === undefined ? listed : order(listed).filter((issuer) => listed.includes(issuer))
  if (listed.length > 0 && servers.length === 0) {
    return Effect.fail(
      new DiscoveryError({
        reason: "NotFound",
        url: mcpUrl,
        detail: `none of the listed authorization servers (${listed.join(", ")}) was selected`
      })
    )
  }
  if (servers.length === 0) {
    return Effect.fail(
      new DiscoveryError({
        reason: "Malformed",
        url: mcpUrl,
        detail: "protected resource metadata lists no authorization_servers"
      })
    )
  }
  return Effect.succeed(servers)
}

/** Tries each authorization server in order; the first that validates wins, else the last error. */
const firstValidAuthorizationServer = (
  http: MetadataHttp,
  mcpUrl: string,
  servers: ReadonlyArray<string>,
  maxAge: MaxAgeSink
): Effect.Effect<AuthorizationServerMetadata, DiscoveryError | OAuthRequestError> =>
  Effect.gen(function*() {
    let lastError: DiscoveryError | OAuthRequestError | undefined
    for (const issuer of servers) {
      const result = yield* Effect.either(authorizationServerAt(http, issuer, maxAge))
      if (Either.isRight(result)) return result.right
      lastError = result.left
    }
    return yield* Effect.fail(
      lastError ??
        new DiscoveryError({ reason: "NotFound", url: mcpUrl, detail: "no usable authorization server" })
    )
  })

/** One whole discovery, from the network: PRM (or the 2025-03-26 fallback), then its authorization server. */
const discoverFresh = (
  http: MetadataHttp,
  validateResource: (serverUrl: string, resource: string) => boolean,
  mcpUrl: string,
  options: DiscoverOptions
): Effect.Effect<DiscoveryResult, DiscoveryFailure> =>
  Effect.gen(function*() {
    // The smallest max-age any of the documents allowed (RFC 9111 §4.2.1: each has its own).
    let maxAgeSeconds: number | undefined
    const maxAge = (seconds: number | undefined) => {
      if (seconds !== undefined) maxAgeSeconds = Math.min(seconds, maxAgeSeconds ?? seconds)
    }
    const foundPrm = yield* protectedResourceAt(http, mcpUrl, options.resourceMetadataUrl, maxAge)
    if (Option.isNone(foundPrm)) {
      const as = yield* legacyAuthorizationServer(http, mcpUrl, maxAge)
      return {
        mcpUrl,
        protectedResource: Option.none(),
        resource: undefined,
        authorizationServer: as,
        issuer: as.issuer,
        legacy: true,
        maxAgeSeconds
      } satisfies DiscoveryResult
    }
    const [resourceMetadataUrl, doc] = foundPrm.value
    if (!validateResource(mcpUrl, doc.resource)) {
      return yield* Effect.fail(new ResourceMismatch({ expected: mcpUrl, actual: doc.resource }))
    }
    const servers = yield* authorizationServersToTry(mcpUrl, doc, options.orderAuthorizationServers)
    const as = yield* firstValidAuthorizationServer(http, mcpUrl, servers, maxAge)
    return {
      mcpUrl,
      protectedResource: Option.some(doc),
      resource: doc.resource,
      authorizationServer: as,
      issuer: as.issuer,
      legacy: false,
      resourceMetadataUrl,
      maxAgeSeconds
    } satisfies DiscoveryResult
  })

/**
 * Builds the service on the `HttpClient` it is given (the *inner*, unauthenticated client).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: DiscoveryConfig = {}): Effect.Effect<Discovery, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const cache = yield* Ref.make(new Map<string, DiscoveryResult>())
    const httpOptions: OAuthHttp.OAuthHttpOptions = {
      timeout: config.timeout ?? Duration.seconds(30),
      ...(config.allowInsecure === undefined ? {} : { allowInsecure: config.allowInsecure })
    }
    const http: MetadataHttp = { client, options: httpOptions }
    const validateResource = config.validateResource ?? defaultValidateResource
    const deadline = Duration.decode(config.deadline ?? Duration.times(httpOptions.timeout, 2))

    const discover = (mcpUrl: string, options: DiscoverOptions = {}) =>
      Effect.gen(function*() {
        yield* requireUrl(mcpUrl, "the MCP server URL")
        const key = serverKey(mcpUrl)
        if (options.refresh !== true) {
          const cached = (yield* Ref.get(cache)).get(key)
          if (cached !== undefined) return cached
        }
        const result = yield* discoverFresh(http, validateResource, mcpUrl, options).pipe(
          withinDeadline(deadline, mcpUrl)
        )
        yield* Ref.update(cache, (m) => new Map(m).set(key, result))
        return result
      }).pipe(Effect.withSpan("Discovery.discover", { attributes: { mcpUrl } }))

    const invalidate = (mcpUrl: string) =>
      Ref.update(cache, (m) => {
        const next = new Map(m)
        next.delete(serverKey(mcpUrl))
        return next
      })

    return Discovery.of({
      discover,
      protectedResource: (mcpUrl, resourceMetadataUrl) =>
        withinDeadline(deadline, mcpUrl)(
          Effect.map(protectedResourceAt(http, mcpUrl, resourceMetadataUrl), Option.map(([, doc]) => doc))
        ),
      authorizationServer: (issuer) => withinDeadline(deadline, issuer)(authorizationServerAt(http, issuer)),
      invalidate
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: DiscoveryConfig = {}): Layer.Layer<Discovery, never, HttpClient.HttpClient> =>
  Layer.effect(Discovery, make(config))
