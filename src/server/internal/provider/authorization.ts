/**
 * The authorization endpoint and its consent step (RFC 6749 §4.1.1–§4.1.2.1, RFC 7636 PKCE,
 * RFC 8707 resources, RFC 9207 `iss`): the request is validated, the consent step decides, and
 * a code goes back to the client's redirect URI, or the HTML consent page asks the user first.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AuthorizationCode, PendingAuthorization } from "../../OAuthProviderStore.js"
import type { RegisteredClient } from "../../OAuthProviderStore.js"
import { constantTimeEqual, randomToken, sha256Base64Url } from "../crypto.js"
import { escapeHtml, jsonNoStore, OAuthFailure, page, parseParams, queryOf, readForm } from "../http.js"
import { isValidS256Challenge } from "../pkce.js"
import { isForbiddenScheme, isLoopbackRedirect, matchesRegisteredRedirectUri } from "../redirectUri.js"
import { checkRegisteredScopes, checkResource, checkScopes, findClient, splitScopes } from "./config.js"
import type { ProviderConfig } from "./config.js"
import { typed } from "../../../internal/typed.js"

/** How long the consent page's pending request lives. */
const PENDING_TTL_MILLIS = 10 * 60 * 1000

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

/**
 * RFC 9700 §4.11.2: the server navigates the browser to a redirect URI without a user's decision
 * only when it trusts that URI — a loopback URI (RFC 8252 §7.3: it stays on the user's device)
 * or a client the operator registered. Errors for anyone else (dynamically registered or CIMD
 * clients with `https:` or private-use redirect URIs) are shown to the user instead, so the
 * server cannot be used to bounce a victim to a page, or a `ms-*`-style handler, of an attacker.
 */
const isTrustedRedirect = (client: RegisteredClient, redirectUri: string): boolean => {
  if (client.origin === "operator") return true
  try {
    return isLoopbackRedirect(new URL(redirectUri))
  } catch {
    return false
  }
}

/** The authorization response (RFC 6749 §4.1.2), with RFC 9207 `iss` when configured. @internal */
export const redirectWith = (
  config: ProviderConfig,
  redirectUri: string,
  params: Record<string, string | undefined>,
  status = 302
) => {
  const url = new URL(redirectUri)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
  if (config.sendIss) url.searchParams.set("iss", config.issuer)
  return HttpServerResponse.redirect(url.toString(), { status, headers: { "cache-control": "no-store" } })
}

/** Stores a new authorization code for an approved request. @internal */
export const issueCode = (config: ProviderConfig, params: {
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
    yield* config.store.putCode(
      new AuthorizationCode({
        ...params,
        code: Redacted.make(code),
        expiresAt: now + config.codeTtlMillis,
        used: false,
        familyId: ""
      }, typed)
    )
    return code
  })

const consentPage = (config: ProviderConfig, p: {
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
      `<form method="post" action="${escapeHtml(config.consentUrl)}">` +
      `<input type="hidden" name="request_id" value="${escapeHtml(p.id)}">` +
      `<button type="submit" id="approve" name="decision" value="approve">Approve</button>` +
      `<button type="submit" id="deny" name="decision" value="deny">Deny</button>` +
      `</form>`
  )

const invalid = (error: string, description: string) => new OAuthFailure({ status: 400, error, description })

/**
 * The redirect URI of the request: the one given, or the client's only one (RFC 6749 §3.1.2.3);
 * registered for the client and not of a forbidden scheme. A failure here is shown to the user
 * agent, never redirected (RFC 6749 §4.1.2.1).
 */
const checkRedirectUri = (
  params: URLSearchParams,
  client: RegisteredClient,
  clientId: string
): string | OAuthFailure => {
  const redirectUri = params.get("redirect_uri") ??
    (client.redirectUris.length === 1 ? client.redirectUris[0]! : undefined)
  if (redirectUri === undefined) return invalid("invalid_request", "redirect_uri is required")
  if (!matchesRegisteredRedirectUri(redirectUri, client.redirectUris)) {
    return invalid("invalid_request", `redirect_uri "${redirectUri}" is not registered for client "${clientId}"`)
  }
  // Records stored before these schemes were refused at registration (or written by hand)
  // still never send the browser there.
  if (isForbiddenScheme(new URL(redirectUri).protocol)) {
    return invalid("invalid_request", `the scheme of redirect_uri "${redirectUri}" is not allowed`)
  }
  return redirectUri
}

/**
 * The rest of the request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2): a code response type the
 * client may use, an S256 PKCE challenge, allowed scopes and resource. A missing parameter is
 * `invalid_request`; an unknown response type `unsupported_response_type` (RFC 6749 §4.1.2.1).
 */
const checkCodeRequest = (
  config: ProviderConfig,
  params: URLSearchParams,
  client: RegisteredClient
): {
  readonly codeChallenge: string
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
} | OAuthFailure => {
  const responseType = params.get("response_type")
  if (responseType === null || responseType === "") return invalid("invalid_request", "response_type is missing")
  if (responseType !== "code") return invalid("unsupported_response_type", "response_type must be code")
  if (!client.grantTypes.includes("authorization_code")) {
    return invalid("unauthorized_client", "the client may not use the authorization_code grant")
  }
  const codeChallenge = params.get("code_challenge")
  if (codeChallenge === null) return invalid("invalid_request", "code_challenge is required (PKCE)")
  if (params.get("code_challenge_method") !== "S256") {
    return invalid("invalid_request", "code_challenge_method must be S256")
  }
  if (!isValidS256Challenge(codeChallenge)) return invalid("invalid_request", "malformed code_challenge")
  const scopes = params.has("scope") ? splitScopes(params.get("scope")) : splitScopes(client.scope)
  const scopeProblem = checkScopes(config, scopes) ?? checkRegisteredScopes(client, scopes)
  if (scopeProblem !== undefined) return scopeProblem
  const resource = checkResource(config, params.getAll("resource"))
  if (resource instanceof OAuthFailure) return resource
  return { codeChallenge, scopes, resource }
}

/** The consent step asks the user: keep the request pending and show the consent page. */
const promptConsent = (config: ProviderConfig, request: {
  readonly clientId: string
  readonly clientName: string | undefined
  readonly redirectUri: string
  readonly codeChallenge: string
  readonly state: string | undefined
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly subject: string
}) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const id = randomToken()
    yield* config.store.putPending(
      new PendingAuthorization({
        id: Redacted.make(id),
        clientId: request.clientId,
        redirectUri: request.redirectUri,
        codeChallenge: request.codeChallenge,
        state: request.state,
        scopes: request.scopes,
        resource: request.resource,
        subject: request.subject,
        expiresAt: now + PENDING_TTL_MILLIS
      }, typed)
    )
    const shown = consentPage(config, {
      id,
      clientName: request.clientName ?? request.clientId,
      redirectUri: request.redirectUri,
      requestedScopes: request.scopes,
      resource: request.resource
    })
    return config.consentCookie === undefined ? shown : HttpServerResponse.setHeader(
      shown,
      "set-cookie",
      `${consentCookieName(config.consentCookie, id)}=${id}; Path=/; HttpOnly; SameSite=Strict; ` +
        `Max-Age=${PENDING_TTL_MILLIS / 1000}`
    )
  })

/** RFC 6749 §4.1.1: `GET /authorize`. @internal */
export const authorizationEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const params = parseParams(queryOf(yield* HttpServerRequest.HttpServerRequest))
    if (params instanceof OAuthFailure) return yield* badAuthorizationRequest(params.error, params.description)
    const clientId = params.get("client_id")
    if (clientId === null || clientId === "") {
      return yield* badAuthorizationRequest("invalid_request", "client_id is missing")
    }
    const found = yield* findClient(config, clientId)
    if (Option.isNone(found)) {
      return yield* badAuthorizationRequest("invalid_client", `Client ID "${clientId}" not found`)
    }
    const client = found.value
    const redirectUri = checkRedirectUri(params, client, clientId)
    if (redirectUri instanceof OAuthFailure) {
      return yield* badAuthorizationRequest(redirectUri.error, redirectUri.description)
    }
    // From here on, errors go to the client by redirect (RFC 6749 §4.1.2.1) — but only to a
    // redirect URI the server trusts; for others the user sees an error page (RFC 9700 §4.11.2).
    const state = params.get("state") ?? undefined
    const trusted = isTrustedRedirect(client, redirectUri)
    const fail = (error: string, description: string) =>
      trusted ?
        Effect.succeed(redirectWith(config, redirectUri, { error, error_description: description, state })) :
        badAuthorizationRequest(error, description)
    const checked = checkCodeRequest(config, params, client)
    if (checked instanceof OAuthFailure) return yield* fail(checked.error, checked.description)
    const { codeChallenge, resource, scopes } = checked

    const decision = yield* config.consent({
      clientId,
      clientName: client.clientName,
      redirectUri,
      scopes,
      resource,
      state
    })
    switch (decision._tag) {
      case "Deny":
        return yield* fail("access_denied", decision.description ?? "the request was denied")
      case "Approve": {
        const code = yield* issueCode(config, {
          clientId,
          redirectUri,
          codeChallenge,
          subject: decision.subject,
          scopes: decision.scopes ?? scopes,
          resource
        })
        return redirectWith(config, redirectUri, { code, state })
      }
      case "Prompt":
        return yield* promptConsent(config, {
          clientId,
          clientName: client.clientName,
          redirectUri,
          codeChallenge,
          state,
          scopes,
          resource,
          subject: decision.subject
        })
    }
  })

/** One cookie per pending request, so that consent pages open in two tabs do not overwrite each other's. */
const consentCookieName = (prefix: string, id: string): string => `${prefix}_${sha256Base64Url(id).slice(0, 16)}`

/** The consent form's answer: `POST /authorize/consent` (approve or deny, single use). @internal */
export const consentEndpoint = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const form = yield* readForm(config.maxBody)
    const id = form.get("request_id")
    // Confused-deputy protection: the form must come from the browser that loaded the page. A
    // request id obtained by someone else and posted from the victim's browser has no cookie.
    if (config.consentCookie !== undefined) {
      const cookie = id === null ? undefined : request.cookies[consentCookieName(config.consentCookie, id)]
      if (id === null || cookie === undefined || !constantTimeEqual(cookie, id)) {
        return page(
          "Authorization error",
          `<h1>Authorization error</h1><p id="error_description">This consent was not given in this browser.</p>`,
          403
        )
      }
    }
    const pending = id === null ? Option.none() : yield* config.store.takePending(id)
    const now = yield* Clock.currentTimeMillis
    // A record of the OAuth proxy's sign-in upstream is not a consent request.
    if (Option.isNone(pending) || pending.value.expiresAt <= now || pending.value.upstreamCodeVerifier !== undefined) {
      return page(
        "Authorization error",
        `<h1>Authorization error</h1><p id="error_description">This authorization request has expired or was already answered.</p>`,
        400
      )
    }
    const p = pending.value
    if (form.get("decision") === "approve") {
      if (config.afterConsent !== undefined) return yield* config.afterConsent(p)
      const code = yield* issueCode(config, {
        clientId: p.clientId,
        redirectUri: p.redirectUri,
        codeChallenge: p.codeChallenge,
        subject: p.subject,
        scopes: p.scopes,
        resource: p.resource
      })
      return redirectWith(config, p.redirectUri, { code, state: p.state }, 303)
    }
    return redirectWith(
      config,
      p.redirectUri,
      { error: "access_denied", error_description: "the user denied the request", state: p.state },
      303
    )
  }).pipe(
    Effect.catchTag("OAuthFailure", (f) =>
      Effect.succeed(page("Authorization error", `<p id="error_description">${escapeHtml(f.description)}</p>`, 400)))
  )
