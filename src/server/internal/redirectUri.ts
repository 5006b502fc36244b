/**
 * Redirect URI rules of the authorization server: exact matching of registered URIs, with the
 * RFC 8252 §7.3 exception that a loopback redirect URI may use any port; and what may be
 * registered at all.
 *
 * @internal
 */

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"])

const parse = (uri: string): URL | undefined => {
  try {
    return new URL(uri)
  } catch {
    return undefined
  }
}

/** An `http:` redirect URI on a loopback interface (RFC 8252 §7.3). @internal */
export const isLoopbackRedirect = (uri: URL): boolean => uri.protocol === "http:" && LOOPBACK_HOSTS.has(uri.hostname)

/**
 * Whether `requested` matches one of `registered`: by simple string comparison (OAuth 2.1
 * §2.3.1), except that for loopback `http:` URIs the port is ignored (RFC 8252 §7.3).
 *
 * @internal
 */
export const matchesRegisteredRedirectUri = (requested: string, registered: ReadonlyArray<string>): boolean => {
  if (registered.includes(requested)) return true
  const req = parse(requested)
  if (req === undefined || !isLoopbackRedirect(req) || req.hash !== "" || req.username !== "" || req.password !== "") {
    return false
  }
  return registered.some((candidate) => {
    const reg = parse(candidate)
    return reg !== undefined && isLoopbackRedirect(reg) && reg.hostname === req.hostname &&
      reg.pathname === req.pathname && reg.search === req.search && reg.username === "" && reg.password === ""
  })
}

/**
 * Schemes that run code, read local content or start a local program with attacker-chosen
 * arguments (the `ms-msdt:` class of Windows protocol handlers): never a redirect URI.
 */
const FORBIDDEN_SCHEMES = new Set([
  "javascript:",
  "data:",
  "vbscript:",
  "file:",
  "blob:",
  "about:",
  "filesystem:",
  "view-source:",
  "jar:",
  "intent:",
  "search:",
  "search-ms:",
  "shell:"
])

/** Whether a URL's scheme (`protocol`, with the colon) is never a redirect target. @internal */
export const isForbiddenScheme = (protocol: string): boolean =>
  FORBIDDEN_SCHEMES.has(protocol) || protocol.startsWith("ms-")

/**
 * RFC 8252 §7.1: a private-use URI scheme is a reverse domain name the client controls
 * (`com.example.app`): at least two dot-separated labels.
 */
const isReverseDnsScheme = (protocol: string): boolean =>
  /^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+:$/.test(protocol)

/** RFC 7591 §2 / OpenID Connect Registration `application_type` (default `web`). @internal */
export type ApplicationType = "web" | "native"

/**
 * Why `uri` cannot be registered as a redirect URI, or `undefined` when it can: absolute, no
 * fragment (RFC 6749 §3.1.2), never a scheme that executes or reads content (RFC 9700 §4.11),
 * and then `https:`, loopback `http:` (RFC 8252 §7.3), or — for `application_type` `native`
 * only — a private-use scheme in reverse-DNS form (RFC 8252 §7.1).
 *
 * @internal
 */
export const redirectUriProblem = (uri: string, applicationType: ApplicationType = "web"): string | undefined => {
  const url = parse(uri)
  if (url === undefined) return `"${uri}" is not an absolute URI`
  if (url.hash !== "" || uri.includes("#")) return `"${uri}" must not contain a fragment`
  if (isForbiddenScheme(url.protocol)) return `the scheme of "${uri}" is not allowed`
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:") {
    return isLoopbackRedirect(url) ? undefined : `"${uri}" must use https (http is allowed only on loopback)`
  }
  if (applicationType !== "native") {
    return `the private-use scheme of "${uri}" requires application_type native (RFC 8252 §7.1)`
  }
  if (!isReverseDnsScheme(url.protocol)) {
    return `the scheme of "${uri}" must be a reverse domain name such as com.example.app (RFC 8252 §7.1)`
  }
  return undefined
}
