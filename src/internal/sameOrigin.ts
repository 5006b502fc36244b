/**
 * A same-origin test for the per-request hot path: a string comparison in the common case (the
 * URL starts with the origin followed by `/`, `?`, `#` or nothing), a full WHATWG URL parse only
 * otherwise (another host, a port that merely starts the same, userinfo, other letter case,
 * an explicit default port…), so the answer is always the one `new URL(url).origin` gives.
 *
 * @internal
 */
export const sameOriginAs = (base: string): (url: string) => boolean => {
  const origin = new URL(base).origin
  const length = origin.length
  return (url) => {
    if (url.startsWith(origin)) {
      const next = url.charCodeAt(length)
      // NaN (end of string), "/", "?", "#"
      if (next !== next || next === 47 || next === 63 || next === 35) return true
    }
    return URL.canParse(url) && new URL(url).origin === origin
  }
}
