/**
 * A lenient parser of the `WWW-Authenticate` response header (RFC 9110 §11.6.1, §11.3): one
 * header may carry several challenges, each a scheme followed by either a token68 or a
 * comma-separated list of `name=value` auth-params whose values are tokens or quoted-strings.
 * It never throws: on malformed input it returns the challenges it could make sense of.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
 * @internal
 */
import * as Option from "effect/Option"

/**
 * One challenge. `scheme` keeps the spelling the server sent (compare it case-insensitively,
 * RFC 9110 §11.1); parameter names are lower-cased (RFC 9110 §11.2); values are unquoted and
 * unescaped.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.3
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
  readonly token68?: string
}

// RFC 9110 §5.6.2 tchar
const isTchar = (c: string): boolean => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/.test(c)
// RFC 9110 §11.2 token68 characters (before the trailing "=" padding)
const isToken68Char = (c: string): boolean => /^[A-Za-z0-9\-._~+/]$/.test(c)
// OWS / BWS (RFC 9110 §5.6.3); CR and LF tolerated as folding leftovers
const isWs = (c: string): boolean => c === " " || c === "\t" || c === "\r" || c === "\n"

class Cursor {
  pos = 0
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length
  }
  peek(): string {
    return this.s.charAt(this.pos)
  }
  skipWs(): void {
    while (!this.done && isWs(this.peek())) this.pos++
  }
  skipWsAndCommas(): void {
    while (!this.done && (isWs(this.peek()) || this.peek() === ",")) this.pos++
  }
  token(): string {
    const start = this.pos
    while (!this.done && isTchar(this.peek())) this.pos++
    return this.s.slice(start, this.pos)
  }
  /** Whether a `token BWS "="` starts here, i.e. an auth-param rather than a new challenge. */
  atParam(): boolean {
    const save = this.pos
    const name = this.token()
    this.skipWs()
    const result = name.length > 0 && this.peek() === "="
    this.pos = save
    return result
  }
  /** A token68 followed by OWS and then the end or a comma; restores the position otherwise. */
  token68(): string | undefined {
    const save = this.pos
    while (!this.done && isToken68Char(this.peek())) this.pos++
    if (this.pos === save) return undefined
    while (!this.done && this.peek() === "=") this.pos++
    const value = this.s.slice(save, this.pos)
    this.skipWs()
    if (this.done || this.peek() === ",") return value
    this.pos = save
    return undefined
  }
  /** A quoted-string (RFC 9110 §5.6.4) starting at `"`; an unterminated one runs to the end. */
  quoted(): string {
    this.pos++ // opening quote
    let out = ""
    while (!this.done) {
      const c = this.peek()
      this.pos++
      if (c === "\"") return out
      if (c === "\\" && !this.done) {
        out += this.peek()
        this.pos++
      } else {
        out += c
      }
    }
    return out
  }
  /** An unquoted value: a token, leniently anything up to whitespace or a comma (bare URLs). */
  bare(): string {
    const start = this.pos
    while (!this.done && !isWs(this.peek()) && this.peek() !== ",") this.pos++
    return this.s.slice(start, this.pos)
  }
  /** Recovery: skip to the next comma outside a quoted-string. */
  skipToComma(): void {
    while (!this.done && this.peek() !== ",") {
      if (this.peek() === "\"") this.quoted()
      else this.pos++
    }
  }
}

interface Draft {
  readonly scheme: string
  readonly entries: Array<[string, string]>
  token68: string | undefined
}

/**
 * Parses a `WWW-Authenticate` header value into its challenges. Scheme and parameter names are
 * case-insensitive (names are returned lower-cased), whitespace around `=` is allowed, quoted
 * values may contain commas, `=` and backslash escapes, and a parameter that occurs twice keeps
 * its first value. Malformed parts are skipped; this function never throws.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @since 0.1.0
 * @category parsing
 * @internal
 */
export const parseWwwAuthenticate = (header: string): ReadonlyArray<Challenge> => {
  const cur = new Cursor(typeof header === "string" ? header : "")
  const out: Array<Draft> = []

  const readParams = (entries: Array<[string, string]>): void => {
    // positioned at the start of an auth-param (atParam() holds)
    while (!cur.done) {
      const name = cur.token().toLowerCase()
      cur.skipWs()
      if (cur.peek() === "=") {
        cur.pos++
        cur.skipWs()
        const value = cur.peek() === "\"" ? cur.quoted() : cur.bare()
        if (!entries.some(([n]) => n === name)) entries.push([name, value])
        cur.skipWs()
      }
      if (!cur.done && cur.peek() !== ",") cur.skipToComma() // garbage after a parameter
      cur.skipWsAndCommas()
      if (cur.done || !cur.atParam()) return
    }
  }

  while (!cur.done) {
    cur.skipWsAndCommas()
    if (cur.done) break
    const last = out.length > 0 ? out[out.length - 1] : undefined
    if (cur.atParam()) {
      // a parameter with no challenge of its own (`Bearer, realm="x"`): attach it leniently
      if (last !== undefined && last.token68 === undefined) readParams(last.entries)
      else {
        cur.skipToComma()
      }
      continue
    }
    const scheme = cur.token()
    if (scheme.length === 0) {
      cur.skipToComma() // not a token: garbage up to the next comma
      if (!cur.done) cur.pos++
      continue
    }
    const challenge: Draft = { scheme, entries: [], token68: undefined }
    out.push(challenge)
    if (cur.done || cur.peek() === ",") continue
    if (!isWs(cur.peek())) {
      cur.skipToComma() // a scheme must be followed by whitespace, a comma or the end
      continue
    }
    cur.skipWs()
    if (cur.done || cur.peek() === ",") continue
    const t68 = cur.token68()
    if (t68 !== undefined) {
      challenge.token68 = t68
      continue
    }
    if (cur.atParam()) readParams(challenge.entries)
    else cur.skipToComma()
  }

  return out.map(({ entries, scheme, token68 }) =>
    token68 === undefined
      ? { scheme, params: Object.fromEntries(entries) }
      : { scheme, params: Object.fromEntries(entries), token68 }
  )
}

/**
 * The first challenge of the given scheme (compared case-insensitively, RFC 9110 §11.1).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.1
 * @since 0.1.0
 * @category parsing
 * @internal
 */
export const findChallenge = (
  challenges: ReadonlyArray<Challenge>,
  scheme: string
): Option.Option<Challenge> => {
  const lower = scheme.toLowerCase()
  return Option.fromNullable(challenges.find((c) => c.scheme.toLowerCase() === lower))
}

/**
 * What a `Bearer` challenge tells an OAuth client: the RFC 6750 §3 error code, description and
 * URI, the scopes the resource requires (`scope`, RFC 6750 §3 / MCP step-up), the RFC 9728 §5.1
 * `resource_metadata` URL and the `realm`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface BearerChallenge {
  readonly error?: string
  readonly errorDescription?: string
  readonly errorUri?: string
  readonly scope?: ReadonlyArray<string>
  readonly resourceMetadata?: string
  readonly realm?: string
}

const param = (params: Readonly<Record<string, string>>, name: string): string | undefined =>
  Object.prototype.hasOwnProperty.call(params, name) ? params[name] : undefined

/**
 * Finds the `Bearer` challenge in a `WWW-Authenticate` header (absent header, no Bearer
 * challenge → `None`) and reads its RFC 6750 §3 and RFC 9728 §5.1 parameters. `scope` is split
 * on whitespace (RFC 6749 §3.3 scope syntax).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 * @since 0.1.0
 * @category parsing
 * @internal
 */
export const bearerChallenge = (header: string | undefined): Option.Option<BearerChallenge> =>
  header === undefined ? Option.none() : Option.map(findChallenge(parseWwwAuthenticate(header), "Bearer"), readParams)

/**
 * The OAuth challenge of a `WWW-Authenticate` header: the `Bearer` one (RFC 6750 §3), else the
 * `DPoP` one (RFC 9449 §7.1), which carries the same parameters; `scheme` says which.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 * @since 0.1.0
 * @category parsing
 * @internal
 */
export const authChallenge = (
  header: string | undefined
): Option.Option<BearerChallenge & { readonly scheme: "Bearer" | "DPoP" }> => {
  if (header === undefined) return Option.none()
  const challenges = parseWwwAuthenticate(header)
  return Option.orElse(
    Option.map(findChallenge(challenges, "Bearer"), (c) => ({ ...readParams(c), scheme: "Bearer" as const })),
    () => Option.map(findChallenge(challenges, "DPoP"), (c) => ({ ...readParams(c), scheme: "DPoP" as const }))
  )
}

const readParams = ({ params }: Challenge): BearerChallenge => {
  const out: {
    error?: string
    errorDescription?: string
    errorUri?: string
    scope?: ReadonlyArray<string>
    resourceMetadata?: string
    realm?: string
  } = {}
  const error = param(params, "error")
  const errorDescription = param(params, "error_description")
  const errorUri = param(params, "error_uri")
  const scope = param(params, "scope")
  const resourceMetadata = param(params, "resource_metadata")
  const realm = param(params, "realm")
  if (error !== undefined) out.error = error
  if (errorDescription !== undefined) out.errorDescription = errorDescription
  if (errorUri !== undefined) out.errorUri = errorUri
  if (scope !== undefined) out.scope = scope.split(/[ \t\r\n]+/).filter((s) => s.length > 0)
  if (resourceMetadata !== undefined) out.resourceMetadata = resourceMetadata
  if (realm !== undefined) out.realm = realm
  return out
}
