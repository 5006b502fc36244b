/**
 * The one way this library talks to OAuth endpoints (discovery, registration, token, probes):
 * redirects are never followed (a 3xx is an error), every call has a timeout, the body is read
 * with a size limit, trace context is not propagated to third-party servers, and non-loopback
 * endpoints must be HTTPS.
 *
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Headers from "@effect/platform/Headers"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as Stream from "effect/Stream"
import { OAuthRequestError } from "../Errors.js"
import { rootCauseOf } from "./rootCause.js"
import { describeKinds, kindsOf, scrub, sentCredentials } from "./sentCredentials.js"

/**
 * An answer to an OAuth request. For an error status (3xx and above) `text` has every credential
 * the request sent (token, refresh token, client secret, `code_verifier`, assertion) replaced by
 * `[redacted]`: error bodies end up in error messages and logs, and a hostile server may echo
 * our secrets back in them.
 * @internal
 */
export interface OAuthResponse {
  readonly url: string
  readonly status: number
  readonly headers: Headers.Headers
  readonly text: string
}

/** @internal */
export interface OAuthHttpOptions {
  readonly timeout: Duration.DurationInput
  /** Accept `http:` URLs that are not loopback (only for tests against non-loopback fakes). */
  readonly allowInsecure?: boolean
  readonly maxBodyBytes?: number
}

/** @internal */
export const defaultOptions: OAuthHttpOptions = { timeout: Duration.seconds(30) }

const DEFAULT_MAX_BODY = 1024 * 1024

/** RFC 8252 §8.3: loopback addresses; also `localhost` (RFC 6761 §6.3). @internal */
export const isLoopbackHost = (hostname: string): boolean => {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h)
}

/** OAuth 2.1 §1.5: endpoints must use TLS, loopback excepted. @internal */
export const checkSecureUrl = (
  url: string,
  options: { readonly allowInsecure?: boolean | undefined } = {}
): Effect.Effect<URL, OAuthRequestError> =>
  Effect.suspend(() => {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return Effect.fail(new OAuthRequestError({ reason: "InsecureUrl", url, detail: "not an absolute URL" }))
    }
    if (parsed.protocol === "https:") return Effect.succeed(parsed)
    if (parsed.protocol === "http:" && (options.allowInsecure === true || isLoopbackHost(parsed.hostname))) {
      return Effect.succeed(parsed)
    }
    return Effect.fail(
      new OAuthRequestError({
        reason: "InsecureUrl",
        url,
        detail: `only https: (or http: on a loopback address) is allowed, got ${parsed.protocol}`
      })
    )
  })

const readLimited = (
  stream: Stream.Stream<Uint8Array, unknown>,
  limit: number,
  url: string,
  status: number
): Effect.Effect<string, OAuthRequestError> =>
  stream.pipe(
    Stream.mapError((cause) =>
      new OAuthRequestError({ reason: "Transport", url, status, detail: `reading the body failed: ${String(cause)}` })
    ),
    Stream.runFoldEffect({ size: 0, chunks: Chunk.empty<Uint8Array>() }, (acc, bytes) =>
      acc.size + bytes.length > limit
        ? Effect.fail(
          new OAuthRequestError({ reason: "Decode", url, status, detail: `body larger than ${limit} bytes` })
        )
        : Effect.succeed({ size: acc.size + bytes.length, chunks: Chunk.append(acc.chunks, bytes) })),
    Effect.map(({ chunks, size }) => new TextDecoder().decode(concatChunks(chunks, size)))
  )

/**
 * The body as text, at most `limit` bytes. A declared `Content-Length` of an uncompressed body is
 * checked before anything is read and then read in one piece (the HTTP parser stops at that
 * length, so a server sending more cannot grow it). Without one (chunked), or with a
 * `Content-Encoding` (fetch inflates it: the declared length is not the length read), the body is
 * streamed and counted as it arrives.
 */
const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number,
  url: string
): Effect.Effect<string, OAuthRequestError> => {
  const declared = response.headers["content-length"]
  const encoding = response.headers["content-encoding"]
  const compressed = encoding !== undefined && encoding.trim().toLowerCase() !== "identity"
  if (declared === undefined || compressed || !/^\d{1,15}$/.test(declared)) {
    return readLimited(response.stream, limit, url, response.status)
  }
  if (Number(declared) > limit) {
    return Effect.fail(
      new OAuthRequestError({ reason: "Decode", url, status: response.status, detail: `body larger than ${limit} bytes` })
    )
  }
  return Effect.mapBoth(response.arrayBuffer, {
    onFailure: (cause) =>
      new OAuthRequestError({
        reason: "Transport",
        url,
        status: response.status,
        detail: `reading the body failed: ${String(cause)}`
      }),
    onSuccess: (bytes) => new TextDecoder().decode(bytes)
  })
}

/** The bytes of `chunks` (of total length `size`) in one array. @internal */
export const concatChunks = (chunks: Iterable<Uint8Array>, size: number): Uint8Array => {
  const all = new Uint8Array(size)
  let offset = 0
  for (const c of chunks) {
    all.set(c, offset)
    offset += c.length
  }
  return all
}

/** Whether two absolute URLs name the same resource (after URL normalisation, query ignored). */
const sameUrl = (a: string, b: string): boolean => {
  if (a === b) return true
  if (!URL.canParse(a) || !URL.canParse(b)) return false
  const x = new URL(a)
  const y = new URL(b)
  return x.origin === y.origin && x.pathname === y.pathname
}

/**
 * Runs `effect` with `FetchHttpClient` told to refuse redirects (`redirect: "error"`), keeping
 * whatever other `RequestInit` the caller's context provides (e.g. a proxy `dispatcher`). Not
 * `"manual"`: a 3xx handed back would let a redirect follower below us (`HttpClient.followRedirects`
 * over `FetchHttpClient`) send the request — with its refresh token, client secret or
 * `code_verifier` — to the `Location`; with `"error"` fetch fails instead, and there is no 3xx
 * for anything below to follow.
 */
const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  // one context update (not `serviceOption` + `provideService`): this runs on every OAuth request
  Effect.locallyWith(effect, FiberRef.currentContext, (context) =>
    Context.add(context, FetchHttpClient.RequestInit, {
      ...Option.getOrElse(Context.getOption(context, FetchHttpClient.RequestInit), () => ({})),
      redirect: "error"
    }))

/** Fetch's words for a redirect refused by `redirect: "error"` (Node: "unexpected redirect"; Deno, browsers: "…redirect…"). */
const REFUSED_REDIRECT = /redirect/i

/**
 * The error for an answer that a client below fetched from another URL after following a
 * redirect: that client has sent the request there again, with every credential it carried.
 */
const followedBelow = (
  request: HttpClientRequest.HttpClientRequest,
  answeredFrom: string,
  status: number
): OAuthRequestError => {
  const exposed = kindsOf(sentCredentials(request, "registration_access_token"))
  const elsewhere = URL.canParse(answeredFrom) ? new URL(answeredFrom).origin : "another URL"
  return new OAuthRequestError({
    reason: "Redirect",
    url: request.url,
    status,
    detail: `the HTTP client below followed a redirect to ${elsewhere}${
      exposed.length === 0 ? "" : ` and sent ${describeKinds(exposed)} there`
    }; redirects are not followed on OAuth requests and that answer is not used. Install ` +
      "HttpClient.followRedirects above OAuthLayer, never below it" +
      (exposed.includes("client_secret") || exposed.includes("client_assertion")
        ? "; the client secret (or key) cannot be revoked: rotate it at the authorization server"
        : ""),
    ...(exposed.length === 0 ? {} : { exposed })
  })
}

/**
 * Executes an OAuth request with the given client: no redirects, timeout, bounded body.
 * @internal
 */
export const execute = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  options: OAuthHttpOptions = defaultOptions
): Effect.Effect<OAuthResponse, OAuthRequestError> => {
  const url = request.url
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY
  return checkSecureUrl(url, { allowInsecure: options.allowInsecure }).pipe(
    Effect.zipRight(
      HttpClient.withTracerPropagation(client, false).execute(
        HttpClientRequest.acceptJson(request)
      ).pipe(
        Effect.mapError((error) => {
          // The socket's own words ("connect ECONNREFUSED 127.0.0.1:1234"), not "Transport error".
          const cause = rootCauseOf(error) ?? error.message
          return REFUSED_REDIRECT.test(cause)
            ? new OAuthRequestError({
              reason: "Redirect",
              url,
              detail: `the server answered with a redirect, which is not followed on OAuth requests (${cause})`
            })
            : new OAuthRequestError({ reason: "Transport", url, detail: cause })
        }),
        Effect.flatMap((response) => {
          // A client below that follows redirects by itself (e.g. `HttpClient.followRedirects`
          // over undici) has already sent the request again elsewhere before we see anything:
          // its answer is never used, and the error names what was exposed, for the caller to
          // revoke (see `exposed`).
          const answered = response.request.url
          if (!sameUrl(answered, url)) return Effect.fail(followedBelow(request, answered, response.status))
          if (response.status >= 300 && response.status < 400) {
            return Effect.fail(
              new OAuthRequestError({
                reason: "Redirect",
                url,
                status: response.status,
                detail: `redirects are not followed on OAuth requests (Location: ${
                  response.headers["location"] ?? "none"
                })`
              })
            )
          }
          return readBody(response, limit, url).pipe(
            Effect.map((text): OAuthResponse => ({
              url,
              status: response.status,
              headers: response.headers,
              text: response.status >= 300 ? scrub(text, sentCredentials(request, "registration_access_token")) : text
            }))
          )
        }),
        withoutRedirects,
        Effect.timeoutFail({
          duration: options.timeout,
          onTimeout: () =>
            new OAuthRequestError({
              reason: "Timeout",
              url,
              detail: `no answer within ${Duration.format(Duration.decode(options.timeout))}`
            })
        })
      )
    ),
    Effect.withSpan("OAuthHttp.execute", { attributes: { "http.method": request.method } })
  )
}

/**
 * What a body is — its media type and size — without quoting it: a body from a token or
 * registration endpoint may hold tokens or a client secret, and one from anywhere may be huge or
 * deeply nested. Error messages, spans and logs describe bodies with this, never with their text.
 * @internal
 */
export const describeBody = (response: OAuthResponse): string => {
  const type = response.headers["content-type"]
  const bytes = new TextEncoder().encode(response.text).length
  return `${type === undefined ? "no content type" : JSON.stringify(type.slice(0, 100))}, ${bytes} bytes`
}

/** The JSON type of a value, never the value itself. */
const kindOf = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : `a ${typeof u}`

const MAX_PROBLEMS = 5
const MAX_EXPECTED = 120

/**
 * A schema failure as `path: expected X, got <JSON type>`, at most a few of them. Unlike Effect's
 * `TreeFormatter` it never prints the offending value: that value may be a secret (a token in the
 * wrong field) and printing it recurses without bound (10 000 nested arrays overflow the stack).
 * The walk is iterative and its depth is that of the schema, not of the input.
 * @internal
 */
export const formatIssue = (issue: ParseResult.ParseIssue): string => {
  const problems: Array<string> = []
  const stack: Array<{ readonly path: ReadonlyArray<PropertyKey>; readonly issue: ParseResult.ParseIssue }> = [
    { path: [], issue }
  ]
  const expected = (ast: SchemaAST.AST): string => {
    if (ast._tag === "TypeLiteral") return "an object"
    if (ast._tag === "TupleType") return "an array"
    const text = String(ast)
    return text.length > MAX_EXPECTED ? `${text.slice(0, MAX_EXPECTED)}…` : text
  }
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const { issue: current, path } = stack.pop()!
    const at = path.length === 0 ? "the document" : path.map((k) => JSON.stringify(String(k).slice(0, 60))).join(".")
    switch (current._tag) {
      case "Pointer": {
        const segments = Array.isArray(current.path) ? current.path : [current.path]
        stack.push({ path: [...path, ...segments], issue: current.issue })
        break
      }
      case "Refinement":
      case "Transformation":
        stack.push({ path, issue: current.issue })
        break
      case "Composite": {
        const issues = Array.isArray(current.issues) ? current.issues : [current.issues]
        for (let i = issues.length - 1; i >= 0; i--) stack.push({ path, issue: issues[i]! })
        break
      }
      case "Missing":
        problems.push(`${at}: is missing`)
        break
      case "Unexpected":
        problems.push(`${at}: is unexpected`)
        break
      case "Type":
      case "Forbidden":
        problems.push(`${at}: expected ${expected(current.ast)}, got ${kindOf(current.actual)}`)
        break
    }
  }
  return problems.length === 0 ? "the document does not match its schema" : problems.join("; ")
}

/**
 * Parses a response body as JSON and decodes it with `schema`. The result is an `Either` so that
 * callers map a failure to their own typed error. A failure never quotes the body (see
 * {@link describeBody} and {@link formatIssue}).
 * @internal
 */
export const decodeJson = <A, I>(
  schema: Schema.Schema<A, I>,
  response: OAuthResponse
): Either.Either<A, string> => {
  let json: unknown
  try {
    json = JSON.parse(response.text)
  } catch {
    return Either.left(`the body is not JSON (${describeBody(response)})`)
  }
  return Schema.decodeUnknownEither(schema)(json).pipe(
    Either.mapLeft((error) => `the body does not match: ${formatIssue(error.issue)}`)
  )
}

/** Whether the response carries a JSON media type. @internal */
export const isJson = (response: OAuthResponse): boolean =>
  (response.headers["content-type"] ?? "").toLowerCase().includes("json")
