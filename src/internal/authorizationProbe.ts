/**
 * A GET of the authorization URL without following redirects, as a user agent would send it,
 * and the reading of what came back: a redirect (to the redirect URI, or to a sign-in page), a
 * page, or an error that names the client as unknown (a stale registration, RFC 6749 §4.1.2.1:
 * "If the request fails due to a missing, invalid, or mismatching redirection URI, or if the
 * client identifier is missing or invalid, the authorization server SHOULD inform the resource
 * owner of the error and MUST NOT automatically redirect").
 *
 * Used by the headless authorizer (which completes the flow with it) and as the stale-client
 * pre-flight of the interactive authorizers.
 *
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type { AuthorizationRequest } from "./authorizationRequest.js"
import { AuthorizationError, ClientNotFound, OAuthRequestError } from "../Errors.js"
import type { AuthorizationResponse } from "../Schemas.js"
import { validateAuthorizationResponse } from "./authorizationResponse.js"
import * as OAuthHttp from "./oauthHttp.js"
import { scrub, sentCredentials } from "./sentCredentials.js"

/** @internal */
export interface ProbeResult {
  readonly status: number
  /** The `Location` of a 3xx answer, resolved against the authorization URL. */
  readonly location: URL | undefined
  /** The body of a non-3xx answer (bounded); empty for redirects. */
  readonly text: string
}

/** @internal */
export interface ProbeOptions {
  /** Accept plain http on a non-loopback host (tests only). */
  readonly allowInsecure?: boolean | undefined
}

const MAX_BODY = 256 * 1024

const readBounded = (
  stream: Stream.Stream<Uint8Array, unknown>,
  limit: number
): Effect.Effect<string> =>
  stream.pipe(
    Stream.runFoldWhile(
      { size: 0, chunks: Chunk.empty<Uint8Array>() },
      (acc) => acc.size < limit,
      (acc, bytes) => ({ size: acc.size + bytes.length, chunks: Chunk.append(acc.chunks, bytes) })
    ),
    Effect.map(({ chunks, size }) =>
      new TextDecoder().decode(OAuthHttp.concatChunks(chunks, size).subarray(0, Math.min(size, limit)))
    ),
    // A body that cannot be read is treated as empty: the status still tells the story.
    Effect.orElseSucceed(() => "")
  )

/**
 * GETs `url` once: HTTPS or loopback only (OAuth 2.1 §1.5), never following a redirect, with a
 * timeout and without trace propagation to the authorization server.
 *
 * @internal
 */
export const probe = (
  client: HttpClient.HttpClient,
  url: URL,
  timeout: Duration.DurationInput,
  options: ProbeOptions = {}
): Effect.Effect<ProbeResult, OAuthRequestError> =>
  OAuthHttp.checkSecureUrl(url.href, { allowInsecure: options.allowInsecure }).pipe(
    Effect.zipRight(
      HttpClient.withTracerPropagation(client, false).execute(
        HttpClientRequest.get(url).pipe(
          HttpClientRequest.setHeader("accept", "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8")
        )
      ).pipe(
        Effect.mapError((error) => new OAuthRequestError({ reason: "Transport", url: url.href, detail: error.message })),
        Effect.flatMap((response) => {
          if (response.status >= 300 && response.status < 400) {
            const raw = response.headers["location"]
            let location: URL | undefined
            try {
              location = raw === undefined ? undefined : new URL(raw, url)
            } catch {
              location = undefined
            }
            return Effect.succeed<ProbeResult>({ status: response.status, location, text: "" })
          }
          return readBounded(response.stream, MAX_BODY).pipe(
            // Error texts quote this body: never with a credential the request carried echoed in it.
            Effect.map((text): ProbeResult => ({
              status: response.status,
              location: undefined,
              text: scrub(text, sentCredentials(response.request))
            }))
          )
        }),
        Effect.scoped,
        Effect.provideService(FetchHttpClient.RequestInit, { redirect: "manual" }),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new OAuthRequestError({
              reason: "Timeout",
              url: url.href,
              detail: `no answer within ${Duration.format(Duration.decode(timeout))}`
            })
        })
      )
    ),
    // The answer's Location carries the authorization code (RFC 6749 §4.1.2): keep it out of the
    // http.client span's attributes, as the platform already does for Authorization and cookies.
    Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, "location"]),
    Effect.withSpan("Authorizer.probe")
  )

const UNKNOWN_CLIENT_PATTERNS: ReadonlyArray<RegExp> = [
  /\binvalid_client\b/i,
  /\bunknown[ _-]client\b/i,
  /\binvalid[ _-]client(?:[ _-]?id)?\b/i,
  /\bno such client\b/i,
  /\bunregistered client\b/i,
  /\bclient\b[^.\n<]{0,60}?\b(?:not (?:found|registered|recogni[sz]ed|known)|does not exist|doesn't exist|is unknown|is invalid)\b/i,
  /\bclient[ _-]?id\b[^.\n<]{0,40}?\b(?:invalid|unknown|not valid)\b/i
]

/**
 * Whether a non-redirect answer of the authorization endpoint names the client as unknown or
 * invalid (`invalid_client`, "client ... not found", "unknown client", "invalid client_id", ...).
 *
 * @internal
 */
export const namesUnknownClient = (status: number, text: string): boolean =>
  (status === 200 || status >= 400) && UNKNOWN_CLIENT_PATTERNS.some((pattern) => pattern.test(text))

const REJECTED_REDIRECT_PATTERNS: ReadonlyArray<RegExp> = [
  /\binvalid_redirect_uri\b/i,
  /\bredirect[ _-]?ur[il]\b[^\n<]{0,160}?\b(?:not (?:registered|allowed|valid|permitted)|is invalid|invalid|mismatch|does not match|did not match|doesn't match|unregistered)\b/i,
  /\b(?:invalid|unregistered|mismatching|unknown)\b[^.\n<]{0,20}?\bredirect[ _-]?ur[il]\b/i
]

/**
 * Whether a non-redirect answer of the authorization endpoint says the redirect URI is not
 * registered for the client (RFC 6749 §4.1.2.1: the server must not redirect then). For a stored
 * client whose loopback port changed, this is an authorization server that does not follow
 * RFC 8252 §7.3; the client is then registered again for the new redirect URI.
 *
 * @internal
 */
export const namesRejectedRedirectUri = (status: number, text: string): boolean =>
  status >= 400 && REJECTED_REDIRECT_PATTERNS.some((pattern) => pattern.test(text))

const htmlEntities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: " " }

/**
 * A short, readable summary of an error page or body: the OAuth `error` / `error_description`
 * of a JSON body, or the title and text of an HTML page, at most `max` characters.
 *
 * @internal
 */
export const summarizeBody = (text: string, max = 200): string => {
  const trimmed = text.trim()
  if (trimmed.length === 0) return ""
  try {
    const json: unknown = JSON.parse(trimmed)
    if (typeof json === "object" && json !== null && "error" in json) {
      const error = String(json.error)
      const description = "error_description" in json ? String(json.error_description) : undefined
      return (description === undefined ? error : `${error}: ${description}`).slice(0, max)
    }
  } catch {
    // not JSON: fall through to text
  }
  const plain = trimmed
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&(#\d+|[a-z]+);/gi, (entity, name: string) =>
      name.startsWith("#") ? String.fromCharCode(Number(name.slice(1))) : htmlEntities[name.toLowerCase()] ?? entity)
    .replace(/\s+/g, " ")
    .trim()
  return plain.length > max ? plain.slice(0, max - 1) + "…" : plain
}

const unknownClient = (request: AuthorizationRequest, result: ProbeResult): ClientNotFound => {
  const summary = summarizeBody(result.text)
  return new ClientNotFound({
    clientId: request.clientId,
    description: (namesUnknownClient(result.status, result.text)
      ? `the authorization endpoint answered HTTP ${result.status}`
      : `the authorization server does not accept the redirect URI ${request.redirectUri} (HTTP ${result.status})`) +
      (summary === "" ? "" : `: ${summary}`)
  })
}

/** An answer that makes this client unusable as it is: unknown client, or redirect URI refused. */
const unusableClient = (result: ProbeResult): boolean =>
  namesUnknownClient(result.status, result.text) || namesRejectedRedirectUri(result.status, result.text)

/**
 * Errors an authorization server answers a `prompt=none` request with when it would need the
 * user (OIDC Core §3.1.2.6): expected from the pre-flight, they say nothing is wrong. So is
 * `access_denied`: only the user can deny, and the browser will show what the user decides.
 */
const INTERACTION_ERRORS: ReadonlyArray<string> = [
  "access_denied",
  "login_required",
  "consent_required",
  "interaction_required",
  "account_selection_required"
]

/**
 * The URL the pre-flight GETs: the authorization URL with `prompt=none` (OIDC Core §3.1.2.1), so
 * that an authorization server that knows the parameter validates the request without starting
 * a sign-in interaction of its own (one login interaction per sign-in: the browser's).
 *
 * @internal
 */
export const preflightUrl = (url: URL): URL => {
  const probeUrl = new URL(url)
  probeUrl.searchParams.set("prompt", "none")
  return probeUrl
}

/**
 * The pre-flight of the interactive authorizers: one GET of the authorization URL (with
 * `prompt=none`, see {@link preflightUrl}) without following redirects, before the user is sent
 * anywhere. An answer that names the client as unknown → `ClientNotFound`; an error redirect to
 * the redirect URI (`error=invalid_scope`, `invalid_request`, `unauthorized_client`, … RFC 6749
 * §4.1.2.1) → `AuthorizationError` "Denied" (`invalid_client` → `ClientNotFound`), except the
 * `prompt=none` answers that only say a user is needed (`login_required`, …) and `access_denied`. Anything else (a
 * redirect to a sign-in page, a page, an unrelated error, even a network failure) lets the
 * browser go ahead, since the browser may see more than we do (cookies, proxies). Only a URL
 * that is neither HTTPS nor loopback is refused outright.
 *
 * @internal
 */
export const preflight = (
  client: HttpClient.HttpClient,
  request: AuthorizationRequest,
  timeout: Duration.DurationInput,
  options: ProbeOptions = {}
): Effect.Effect<void, AuthorizationError | ClientNotFound | OAuthRequestError> =>
  probe(client, preflightUrl(request.url), timeout, options).pipe(
    Effect.flatMap((result): Effect.Effect<void, AuthorizationError | ClientNotFound> => {
      if (result.location === undefined) {
        return unusableClient(result) ? Effect.fail(unknownClient(request, result)) : Effect.void
      }
      if (!targetsRedirectUri(result.location, request.redirectUri)) return Effect.void
      const error = result.location.searchParams.get("error")
      if (error === null || INTERACTION_ERRORS.includes(error)) return Effect.void
      const description = result.location.searchParams.get("error_description")
      const detail = `the authorization server refused the request before sign-in` +
        (description === null ? "" : `: ${description}`)
      return Effect.fail(
        error === "invalid_client"
          ? new ClientNotFound({ clientId: request.clientId, description: detail })
          : new AuthorizationError({ reason: "Denied", error, detail })
      )
    }),
    Effect.catchIf(
      (error): error is OAuthRequestError => error._tag === "OAuthRequestError" && error.reason !== "InsecureUrl",
      (error) => Effect.logDebug(`authorization pre-flight inconclusive: ${error.message}`)
    ),
    Effect.withSpan("Authorizer.preflight")
  )

/**
 * A redirect that carries `error=invalid_client` is the server saying it does not know the
 * client (some servers redirect where RFC 6749 §4.1.2.1 says they should not).
 *
 * @internal
 */
export const deniedAsClientNotFound = (
  error: AuthorizationError,
  request: AuthorizationRequest
): AuthorizationError | ClientNotFound =>
  error.reason === "Denied" && error.error === "invalid_client"
    ? new ClientNotFound({ clientId: request.clientId, description: error.detail })
    : error

/** Whether `url` is addressed to `redirectUri` (same origin and path, RFC 6749 §3.1.2). @internal */
export const targetsRedirectUri = (url: URL, redirectUri: string): boolean => {
  let expected: URL
  try {
    expected = new URL(redirectUri)
  } catch {
    return false
  }
  return url.origin === expected.origin && url.pathname === expected.pathname
}

/**
 * The headless completion of the flow: the authorization endpoint must redirect straight to the
 * redirect URI (the user is already signed in and consent is not needed); the response found in
 * the `Location` is validated like a callback.
 *
 * @internal
 */
export const authorizeHeadless = (
  client: HttpClient.HttpClient,
  request: AuthorizationRequest,
  timeout: Duration.DurationInput,
  options: ProbeOptions = {}
): Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound | OAuthRequestError> =>
  probe(client, request.url, timeout, options).pipe(
    Effect.flatMap((result): Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound> => {
      if (result.location !== undefined) {
        const location = result.location
        if (!targetsRedirectUri(location, request.redirectUri)) {
          return Effect.fail(
            new AuthorizationError({
              reason: "InvalidResponse",
              detail: `the authorization endpoint redirected to ${location.origin}${location.pathname} instead of ` +
                `the redirect URI ${request.redirectUri}: it wants an interactive sign-in, which a headless ` +
                `authorizer cannot do (use Authorizer.layerBrowser or Authorizer.layerManual)`
            })
          )
        }
        return Either.match(validateAuthorizationResponse(location, request), {
          onLeft: (error) => Effect.fail(deniedAsClientNotFound(error, request)),
          onRight: Effect.succeed
        })
      }
      if (result.status >= 300 && result.status < 400) {
        return Effect.fail(
          new AuthorizationError({
            reason: "InvalidResponse",
            detail: `the authorization endpoint answered HTTP ${result.status} without a usable Location header`
          })
        )
      }
      if (namesUnknownClient(result.status, result.text)) {
        return Effect.fail(unknownClient(request, result))
      }
      const summary = summarizeBody(result.text)
      return Effect.fail(
        new AuthorizationError({
          reason: "InvalidResponse",
          detail: `the authorization endpoint answered HTTP ${result.status} instead of redirecting to the redirect URI` +
            (result.status === 200 ? " (it shows a page that needs a person, e.g. sign-in or consent)" : "") +
            (summary === "" ? "" : `: ${summary}`)
        })
      )
    })
  )
