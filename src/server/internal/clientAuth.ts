/**
 * Reading the client credentials presented at the token and revocation endpoints: HTTP Basic
 * (RFC 6749 §2.3.1, with the form-urlencoding of the id and secret), `client_secret_post`, or a
 * bare `client_id` for public clients.
 *
 * @internal
 */

/** @internal */
export type PresentedCredentials =
  | { readonly _tag: "Basic"; readonly clientId: string; readonly clientSecret: string }
  | { readonly _tag: "Post"; readonly clientId: string; readonly clientSecret: string }
  | { readonly _tag: "None"; readonly clientId: string }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Malformed"; readonly basic: boolean; readonly description: string }

/** `application/x-www-form-urlencoded` decoding of one component. @internal */
export const formUrlDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

/** RFC 6749 §2.3.1: the credentials of an `Authorization: Basic` header, or why they are malformed. @internal */
export const parseBasic = (
  header: string
): { readonly clientId: string; readonly clientSecret: string } | { readonly problem: string } => {
  const match = /^basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header)
  if (match === null) return { problem: "malformed Basic credentials" }
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return { problem: "Basic credentials without a colon" }
  const clientId = formUrlDecode(decoded.slice(0, colon))
  const clientSecret = formUrlDecode(decoded.slice(colon + 1))
  if (clientId === undefined || clientSecret === undefined || clientId === "") {
    return { problem: "Basic credentials are not form-urlencoded" }
  }
  return { clientId, clientSecret }
}

/**
 * The credentials of a token or revocation request. Presenting more than one method is an error
 * (RFC 6749 §2.3).
 *
 * @internal
 */
export const presentedCredentials = (
  authorization: string | undefined,
  form: URLSearchParams
): PresentedCredentials => {
  const bodyId = form.get("client_id") ?? undefined
  const bodySecret = form.get("client_secret") ?? undefined
  if (authorization !== undefined && /^basic\b/i.test(authorization)) {
    const basic = parseBasic(authorization)
    if ("problem" in basic) return { _tag: "Malformed", basic: true, description: basic.problem }
    if (bodySecret !== undefined) {
      return { _tag: "Malformed", basic: true, description: "more than one client authentication method" }
    }
    if (bodyId !== undefined && bodyId !== basic.clientId) {
      return { _tag: "Malformed", basic: true, description: "client_id differs from the Basic credentials" }
    }
    return { _tag: "Basic", ...basic }
  }
  if (bodyId === undefined || bodyId === "") {
    return bodySecret === undefined
      ? { _tag: "Missing" }
      : { _tag: "Malformed", basic: false, description: "client_secret without client_id" }
  }
  return bodySecret === undefined
    ? { _tag: "None", clientId: bodyId }
    : { _tag: "Post", clientId: bodyId, clientSecret: bodySecret }
}
