/**
 * The credentials an outgoing request carries — in its `Authorization` header or its
 * `application/x-www-form-urlencoded` body — so that (1) a request that an HTTP client below
 * re-sent to another URL can say what was exposed, and (2) text a server sends back (an error
 * body, an `error_description`) can be scrubbed of anything we sent it before it goes into an
 * error, a span or a log: a hostile server may echo our secrets back.
 *
 * @internal
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { ExposedCredential } from "../Errors.js"

/** One credential a request carried, with the spellings it may be echoed back in. @internal */
export interface SentCredential {
  readonly kind: ExposedCredential
  /** The value as sent, decoded, and form-encoded: any of them may come back in a body. */
  readonly spellings: ReadonlyArray<string>
}

/** The form fields that carry a credential (RFC 6749 §4.1.3, §6, §2.3.1; RFC 7636 §4.5; RFC 7523 §2.2; RFC 7009 §2.1; RFC 8693 §2.1). */
const FORM_FIELDS: Readonly<Record<string, ExposedCredential>> = {
  refresh_token: "refresh_token",
  client_secret: "client_secret",
  client_assertion: "client_assertion",
  code_verifier: "code_verifier",
  code: "authorization_code",
  token: "token",
  subject_token: "token",
  actor_token: "token",
  assertion: "token",
  device_code: "token",
  password: "client_secret"
}

/** Values shorter than this are not scrubbed (they would redact ordinary words). */
const MIN_LENGTH = 4

const formEncode = (value: string): string => encodeURIComponent(value).replace(/%20/g, "+")

const spellingsOf = (value: string): ReadonlyArray<string> =>
  [...new Set([value, formEncode(value), encodeURIComponent(value)])].filter((s) => s.length >= MIN_LENGTH)

const decodeBase64 = (value: string): string | undefined => {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)))
  } catch {
    return undefined
  }
}

const safeDecode = (value: string): string => {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return value
  }
}

/** The form fields of a request body, when it is a URL-encoded form held in memory. */
const formOf = (request: HttpClientRequest.HttpClientRequest): URLSearchParams | undefined => {
  const body = request.body
  if (body._tag === "Uint8Array" || body._tag === "Raw") {
    const type = body.contentType ?? request.headers["content-type"] ?? ""
    if (!type.toLowerCase().includes("application/x-www-form-urlencoded")) return undefined
    const bytes = body._tag === "Uint8Array" ? body.body : body.body
    if (typeof bytes === "string") return new URLSearchParams(bytes)
    if (bytes instanceof Uint8Array) return new URLSearchParams(new TextDecoder().decode(bytes))
  }
  return undefined
}

/**
 * The credentials `request` carries. `bearer` names what a `Bearer` / `DPoP` `Authorization`
 * value is (an access token on a resource request; a registration access token on an OAuth
 * endpoint call).
 *
 * @internal
 */
export const sentCredentials = (
  request: HttpClientRequest.HttpClientRequest,
  bearer: ExposedCredential = "access_token"
): ReadonlyArray<SentCredential> => {
  const found: Array<SentCredential> = []
  const authorization = request.headers["authorization"]
  if (authorization !== undefined) {
    const match = /^(\S+)\s+(.+)$/.exec(authorization.trim())
    const scheme = match?.[1]?.toLowerCase()
    const value = match?.[2]?.trim()
    if (value !== undefined && scheme === "basic") {
      // RFC 6749 §2.3.1: base64(form-encoded id ":" form-encoded secret).
      const decoded = decodeBase64(value)
      const colon = decoded?.indexOf(":") ?? -1
      const secret = decoded === undefined || colon < 0 ? undefined : decoded.slice(colon + 1)
      found.push({
        kind: "client_secret",
        spellings: [value, ...(secret === undefined ? [] : [...spellingsOf(secret), ...spellingsOf(safeDecode(secret))])]
          .filter((s) => s.length >= MIN_LENGTH)
      })
    } else if (value !== undefined && (scheme === "bearer" || scheme === "dpop")) {
      found.push({ kind: bearer, spellings: spellingsOf(value) })
    }
  }
  const form = formOf(request)
  if (form !== undefined) {
    for (const [name, value] of form) {
      const kind = FORM_FIELDS[name]
      if (kind !== undefined && value.length > 0) found.push({ kind, spellings: spellingsOf(value) })
    }
  }
  return found
}

/** The kinds of credential in `sent`, each once, in a stable order. @internal */
export const kindsOf = (sent: ReadonlyArray<SentCredential>): ReadonlyArray<ExposedCredential> =>
  [...new Set(sent.map((c) => c.kind))].sort()

/**
 * `text` with every spelling of every credential in `sent` replaced by `[redacted]` (longest
 * first, so that a value is never half-replaced through a shorter one it contains).
 *
 * @internal
 */
export const scrub = (text: string, sent: ReadonlyArray<SentCredential>): string => {
  const spellings = [...new Set(sent.flatMap((c) => c.spellings))].sort((a, b) => b.length - a.length)
  let result = text
  for (const s of spellings) result = result.split(s).join("[redacted]")
  return result
}

/** How a list of exposed credentials reads in a sentence ("the refresh token and the client secret"). @internal */
export const describeKinds = (kinds: ReadonlyArray<ExposedCredential>): string => {
  const names = kinds.map((k) => `the ${k.replace(/_/g, " ")}`)
  return names.length <= 1 ? (names[0] ?? "no credential") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`
}
