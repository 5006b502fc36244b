/**
 * PKCE verification on the authorization server side (RFC 7636 §4.6), `S256` only.
 *
 * @internal
 */
import { constantTimeEqual, sha256Base64Url } from "./crypto.js"

/** RFC 7636 §4.1: 43–128 characters of the unreserved set. @internal */
export const isValidVerifier = (verifier: string): boolean => /^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)

/** RFC 7636 §4.2: an S256 challenge is the 43-character base64url SHA-256 digest. @internal */
export const isValidS256Challenge = (challenge: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(challenge)

/** RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge. @internal */
export const verifyS256 = (verifier: string, challenge: string): boolean =>
  isValidVerifier(verifier) && constantTimeEqual(sha256Base64Url(verifier), challenge)
