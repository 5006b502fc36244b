/**
 * Client ID Metadata Documents (MCP SEP-991, draft-ietf-oauth-client-id-metadata-document) on
 * the authorization server side: a `client_id` that is an HTTPS URL names a JSON document
 * describing the client; the server resolves it instead of requiring registration.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { lookup as dnsLookup } from "node:dns/promises"
import { isIP, type LookupFunction } from "node:net"
import { classifyAddress, isIpLiteral } from "./internal/address.js"
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
 * Why a client ID metadata document could not be used:
 * - `InvalidUrl`: not a URL client id;
 * - `ForbiddenAddress`: the host is, or resolves to, a loopback, private, link-local,
 *   unique-local, multicast or reserved address (SSRF guard); nothing was sent;
 * - `Unresolvable`: the host name did not resolve;
 * - `Status`: the answer was not `200` (redirects are not followed);
 * - `TooLarge`: the body exceeded the size limit (counted while streaming, chunked or not);
 * - `InvalidDocument`: not JSON, or not valid client metadata for this URL;
 * - `Timeout`, `Transport`: the fetch did not complete.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category errors
 */
export class ClientIdMetadataError extends Schema.TaggedError<ClientIdMetadataError>(
  "effect-mcp-oauth/server/ClientIdMetadataError"
)("ClientIdMetadataError", {
  reason: Schema.Literal(
    "InvalidUrl",
    "ForbiddenAddress",
    "Unresolvable",
    "Status",
    "TooLarge",
    "InvalidDocument",
    "Timeout",
    "Transport"
  ),
  detail: Schema.String
}) {
  override get message(): string {
    return `Client ID metadata document unusable (${this.reason}): ${this.detail}`
  }
}

/**
 * Options of {@link fetcher} and {@link fetchDocument}.
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
  /**
   * Accept `http:` URLs on loopback hosts, and loopback addresses (tests only; default `false`).
   */
  readonly allowHttpLoopback?: boolean | undefined
  /**
   * Fetch from loopback, private, link-local and other non-public addresses (default `false`:
   * such hosts are refused before anything is sent).
   */
  readonly allowPrivateAddresses?: boolean | undefined
  /**
   * Resolves a host name to its IP addresses for the address check (default: the system
   * resolver, every address). Every address must be public. The `HttpClient` in context resolves
   * again when it connects, so a resolver that answers differently the second time (DNS
   * rebinding) is only stopped with {@link FetcherOptions.pinAddresses}.
   */
  readonly resolve?: ((hostname: string) => Effect.Effect<ReadonlyArray<string>, unknown>) | undefined
  /**
   * Connect only to the addresses the check approved (DNS pinning), with a Node HTTP client of
   * the fetcher's own instead of the `HttpClient` in context: a host whose name answers a public
   * address to the check and a private one to the connection (DNS rebinding) cannot reach the
   * private one. TLS still verifies the certificate against the host name. Default `false`.
   */
  readonly pinAddresses?: boolean | undefined
  /** Most documents kept in the cache (default 1000; the oldest entry is dropped first). */
  readonly cacheMaxEntries?: number | undefined
  /** Longest a document is cached, whatever its headers say (default 1 hour). */
  readonly cacheMaxTtl?: Duration.DurationInput | undefined
}

const systemResolve = (hostname: string): Effect.Effect<ReadonlyArray<string>, unknown> =>
  Effect.tryPromise({
    try: () => dnsLookup(hostname, { all: true, verbatim: true }),
    catch: (error) => error
  }).pipe(Effect.map((entries) => entries.map((entry) => entry.address)))

/**
 * RFC 9111 §5.2.2, §4.2.1: how long a response may be reused, in milliseconds (0: not at all).
 * `no-store`, `no-cache` and `private` forbid reuse (the server's cache is shared by every
 * authorization request); `s-maxage` wins over `max-age`, which wins over `Expires`; `Age`
 * is subtracted. Without any of them nothing is cached (no heuristic freshness).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-4.2.1
 * @since 0.1.0
 * @category utils
 */
export const freshnessLifetime = (headers: Readonly<Record<string, string | undefined>>): number => {
  const directives = new Map<string, string | undefined>()
  for (const part of (headers["cache-control"] ?? "").split(",")) {
    const [name, value] = part.trim().split("=", 2)
    if (name !== undefined && name !== "") directives.set(name.toLowerCase(), value?.replace(/^"|"$/g, ""))
  }
  if (directives.has("no-store") || directives.has("no-cache") || directives.has("private")) return 0
  const seconds = (value: string | undefined) =>
    value !== undefined && /^\d+$/.test(value) ? Number(value) * 1000 : undefined
  const age = seconds(headers["age"]) ?? 0
  const explicit = seconds(directives.get("s-maxage")) ?? seconds(directives.get("max-age"))
  if (explicit !== undefined) return Math.max(0, explicit - age)
  const expires = headers["expires"]
  if (expires !== undefined) {
    const at = Date.parse(expires)
    const date = headers["date"] === undefined ? Number.NaN : Date.parse(headers["date"])
    // RFC 9111 §5.3: an invalid Expires (such as "0") means already expired
    if (Number.isNaN(at) || Number.isNaN(date)) return 0
    return Math.max(0, at - date - age)
  }
  return 0
}

interface Cached {
  readonly client: RegisteredClient
  readonly expiresAt: number
}

/** One fetcher's settings, its defaults applied, and its cache. */
interface Fetcher {
  /** The client documents are fetched with (the pinned one when `pinAddresses`). */
  readonly client: Effect.Effect<HttpClient.HttpClient>
  /** The addresses `checkHost` approved, by host name, for the fetches in progress, when pinning. */
  readonly pinned: Map<string, ReadonlyArray<string>> | undefined
  readonly maxBytes: number
  readonly timeout: Duration.DurationInput
  readonly allowHttpLoopback: boolean
  readonly allowPrivate: boolean
  readonly resolve: (hostname: string) => Effect.Effect<ReadonlyArray<string>, unknown>
  readonly maxEntries: number
  /** Milliseconds. */
  readonly maxTtl: number
  /** In insertion order: the first entry is the oldest. */
  readonly cache: Map<string, Cached>
}

const fail = (reason: ClientIdMetadataError["reason"], detail: string) => new ClientIdMetadataError({ reason, detail })

/** The SSRF guard: every address of the host is public (or explicitly allowed). */
const checkHost = (fetcher: Fetcher, url: URL): Effect.Effect<ReadonlyArray<string>, ClientIdMetadataError> =>
  Effect.gen(function*() {
    const host = url.hostname
    const addresses = isIpLiteral(host) ?
      [host] :
      yield* fetcher.resolve(host).pipe(
        Effect.mapError(() => fail("Unresolvable", `${host} does not resolve`))
      )
    if (addresses.length === 0) return yield* fail("Unresolvable", `${host} does not resolve`)
    const refused = addresses.find((address) => {
      const kind = classifyAddress(address)
      return !(kind === "public" || fetcher.allowPrivate || (kind === "loopback" && fetcher.allowHttpLoopback))
    })
    if (refused !== undefined) {
      return yield* fail("ForbiddenAddress", `${host} resolves to a non-public address (${refused})`)
    }
    return addresses
  })

/**
 * Runs `fetch` with the connections to `host` pinned to `addresses` (when pinning; an IP literal
 * needs none: Node connects to it without a lookup). The entry is removed afterwards unless a
 * concurrent fetch of the same host replaced it, so the table holds only fetches in progress.
 */
const pinnedDuring = <A, E>(
  fetcher: Fetcher,
  host: string,
  addresses: ReadonlyArray<string>,
  fetch: Effect.Effect<A, E>
): Effect.Effect<A, E> => {
  const pinned = fetcher.pinned
  if (pinned === undefined || isIpLiteral(host)) return fetch
  return Effect.acquireUseRelease(
    Effect.sync(() => pinned.set(host, addresses)),
    () => fetch,
    () => Effect.sync(() => pinned.get(host) === addresses && pinned.delete(host))
  )
}

/** The body, at most `maxBytes`, counted chunk by chunk (a chunked body has no length). */
const readBounded = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number
): Effect.Effect<string, ClientIdMetadataError> =>
  Effect.gen(function*() {
    const declared = Number(response.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > maxBytes) {
      return yield* fail("TooLarge", `content-length ${declared} exceeds ${maxBytes} bytes`)
    }
    const chunks = yield* response.stream.pipe(
      Stream.mapError(() => fail("Transport", "the body could not be read")),
      Stream.runFoldEffect({ size: 0, chunks: [] as Array<Uint8Array> }, (acc, chunk) => {
        const size = acc.size + chunk.length
        if (size > maxBytes) return Effect.fail(fail("TooLarge", `the body exceeds ${maxBytes} bytes`))
        acc.chunks.push(chunk)
        return Effect.succeed({ size, chunks: acc.chunks })
      })
    )
    return Buffer.concat(chunks.chunks).toString("utf8")
  })

/** Keep `client` for `ttl` milliseconds, dropping the oldest entries beyond `maxEntries`. */
const remember = (fetcher: Fetcher, clientId: string, client: RegisteredClient, now: number, ttl: number): void => {
  if (!(ttl > 0 && fetcher.maxEntries > 0)) return
  const cache = fetcher.cache
  cache.delete(clientId)
  while (cache.size >= fetcher.maxEntries) cache.delete(cache.keys().next().value!)
  cache.set(clientId, { client, expiresAt: now + ttl })
}

/** Fetch, validate and cache the document, all within the fetcher's `timeout`. */
const fetchFresh = (
  fetcher: Fetcher,
  clientId: string,
  url: URL
): Effect.Effect<RegisteredClient, ClientIdMetadataError> =>
  Effect.gen(function*() {
    const addresses = yield* checkHost(fetcher, url)
    const client = yield* fetcher.client
    const response = yield* pinnedDuring(
      fetcher,
      url.hostname,
      addresses,
      client.execute(HttpClientRequest.get(clientId).pipe(HttpClientRequest.acceptJson))
    ).pipe(Effect.mapError(() => fail("Transport", `cannot fetch ${clientId}`)))
    if (response.status !== 200) return yield* fail("Status", `${clientId} answered ${response.status}`)
    const text = yield* readBounded(response, fetcher.maxBytes)
    const document = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: () => fail("InvalidDocument", "the document is not JSON")
    })
    const now = yield* Clock.currentTimeMillis
    const registered = toClient(clientId, document, Math.floor(now / 1000))
    if (Either.isLeft(registered)) return yield* fail("InvalidDocument", registered.left)
    remember(fetcher, clientId, registered.right, now, Math.min(freshnessLifetime(response.headers), fetcher.maxTtl))
    return registered.right
  }).pipe(
    Effect.timeoutFail({
      duration: fetcher.timeout,
      onTimeout: () => fail("Timeout", `no answer from ${clientId} within ${Duration.format(fetcher.timeout)}`)
    })
  )

/**
 * A Node HTTP client whose connections go only to the addresses in `pinned` for their host: the
 * `lookup` of its agents answers from there, never from DNS (a host not there fails to connect).
 * Built on first use (node:http and the platform's Node client load then, not at import; the
 * fetcher caches it).
 */
const pinnedClient = (pinned: Map<string, ReadonlyArray<string>>): Effect.Effect<HttpClient.HttpClient> => {
  const lookup: LookupFunction = (hostname, options, callback) => {
    const entries = (pinned.get(hostname) ?? []).map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }))
    const first = entries[0]
    if (first === undefined) {
      callback(Object.assign(new Error(`${hostname} was not checked`), { code: "ENOTFOUND" }), "", 4)
    } else if (options.all === true) {
      callback(null, entries)
    } else {
      callback(null, first.address, first.family)
    }
  }
  return Effect.flatMap(
    Effect.promise(() =>
      Promise.all([import("@effect/platform-node/NodeHttpClient"), import("node:http"), import("node:https")])
    ),
    ([NodeHttpClient, Http, Https]) =>
      Effect.provideService(
        NodeHttpClient.make,
        NodeHttpClient.HttpAgent,
        NodeHttpClient.HttpAgent.of({
          [NodeHttpClient.HttpAgentTypeId]: NodeHttpClient.HttpAgentTypeId,
          http: new Http.Agent({ lookup }),
          https: new Https.Agent({ lookup })
        })
      )
  )
}

/**
 * Fetches and validates client ID metadata documents with the `HttpClient` in context (give it
 * one that does not follow redirects, such as `NodeHttpClient.layer`: a redirect is then a
 * `Status` error). Before anything is sent, the host must resolve only to public addresses;
 * the body is counted while it streams and cut off at `maxBytes`; the whole fetch is bounded
 * by `timeout`. Documents are cached as their `Cache-Control` / `Expires` headers allow (RFC
 * 9111), at most `cacheMaxTtl`, in a cache of at most `cacheMaxEntries`; failures are not.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-4.2
 * @since 0.1.0
 * @category constructors
 */
export const fetchDocument = (
  options: FetcherOptions = {}
): Effect.Effect<
  (clientId: string) => Effect.Effect<RegisteredClient, ClientIdMetadataError>,
  never,
  HttpClient.HttpClient
> =>
  Effect.gen(function*() {
    const inContext = yield* HttpClient.HttpClient
    const pinned = options.pinAddresses === true ? new Map<string, ReadonlyArray<string>>() : undefined
    const client = pinned === undefined ? Effect.succeed(inContext) : yield* Effect.cached(pinnedClient(pinned))
    const fetcher: Fetcher = {
      client,
      pinned,
      maxBytes: options.maxBytes ?? 5 * 1024,
      timeout: options.timeout ?? Duration.seconds(5),
      allowHttpLoopback: options.allowHttpLoopback ?? false,
      allowPrivate: options.allowPrivateAddresses ?? false,
      resolve: options.resolve ?? systemResolve,
      maxEntries: Math.max(0, options.cacheMaxEntries ?? 1000),
      maxTtl: Duration.toMillis(Duration.decode(options.cacheMaxTtl ?? Duration.hours(1))),
      cache: new Map()
    }
    return (clientId: string) =>
      Effect.gen(function*() {
        if (!isClientIdUrl(clientId, fetcher.allowHttpLoopback)) {
          return yield* fail("InvalidUrl", "not a URL client id")
        }
        const now = yield* Clock.currentTimeMillis
        const cached = fetcher.cache.get(clientId)
        if (cached !== undefined) {
          if (cached.expiresAt > now) return cached.client
          fetcher.cache.delete(clientId)
        }
        return yield* fetchFresh(fetcher, clientId, new URL(clientId))
      }).pipe(Effect.withSpan("ClientIdMetadata.fetchDocument"))
  })

/**
 * A resolver for `OAuthProvider`'s `resolveClientIdMetadataDocument`: {@link fetchDocument}
 * (with its SSRF guard, size bound, timeout and cache), where any failure resolves to `None`
 * (an unknown client).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @since 0.1.0
 * @category constructors
 */
export const fetcher = (
  options: FetcherOptions = {}
): Effect.Effect<(clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>, never, HttpClient.HttpClient> =>
  Effect.map(fetchDocument(options), (fetch) => (clientId: string) =>
    fetch(clientId).pipe(
      Effect.map(Option.some),
      Effect.orElseSucceed(() => Option.none<RegisteredClient>()),
      Effect.withSpan("ClientIdMetadata.resolve")
    ))
