/**
 * The innermost cause of a transport failure, as a line a user can act on: HTTP clients wrap
 * Node's socket error ("connect ECONNREFUSED 127.0.0.1:1234", "getaddrinfo ENOTFOUND host", a TLS
 * error) in one or more `cause`s under a generic "Transport error", and a connection tried on
 * several addresses fails with an AggregateError of them.
 *
 * @internal
 */

const MAX_DEPTH = 8

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null

/** The message of one error, with its `code` (ECONNRESET, CERT_HAS_EXPIRED, …) when the message lacks it. */
const describe = (error: Readonly<Record<string, unknown>>): string | undefined => {
  const message = typeof error["message"] === "string" ? error["message"].trim() : ""
  const code = typeof error["code"] === "string" ? error["code"] : ""
  if (message === "") return code === "" ? undefined : code
  return code === "" || message.includes(code) ? message : `${message} (${code})`
}

/**
 * The message of the innermost error under `error` (not `error` itself), or `undefined` when it
 * wraps none. @internal
 */
export const rootCauseOf = (error: unknown): string | undefined => {
  let current: unknown = isRecord(error) ? error["cause"] : undefined
  let found: string | undefined
  for (let depth = 0; depth < MAX_DEPTH && isRecord(current); depth++) {
    const errors = current["errors"]
    if (Array.isArray(errors) && errors.length > 0) {
      const all = errors.map((e) => (isRecord(e) ? rootCauseOf({ cause: e }) : undefined)).filter((d) => d !== undefined)
      const unique = [...new Set(all)]
      if (unique.length > 0) return unique.join("; ")
    }
    found = describe(current) ?? found
    current = current["cause"]
  }
  return found
}
