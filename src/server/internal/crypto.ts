/**
 * Random values, hashing and constant-time comparison for the embedded authorization server.
 *
 * @internal
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

/** An unguessable opaque token: 256 bits from the CSPRNG, base64url. @internal */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString("base64url")

/** SHA-256 of the UTF-8 bytes of `value`, base64url without padding (RFC 7636 §4.2). @internal */
export const sha256Base64Url = (value: string): string => createHash("sha256").update(value, "utf8").digest("base64url")

/** Compares two strings in time independent of where they differ (hashes first, so lengths leak nothing). @internal */
export const constantTimeEqual = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a, "utf8").digest(), createHash("sha256").update(b, "utf8").digest())
