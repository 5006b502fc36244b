/**
 * Server-chosen texts (`error`, `error_description`) appear in error messages at most a few
 * hundred characters long, whatever the server sent; the error's fields keep the whole text. The
 * fuzz tests (test/fuzz/oauthResponses.test.ts) found 2 000-character messages from a revocation
 * endpoint's description and a registration's auth method.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  AuthorizationError,
  ClientNotFound,
  DiscoveryError,
  InsufficientScope,
  IssuerMismatch,
  OAuthRegistrationError,
  OAuthRequestError,
  OAuthTokenError,
  ResourceMismatch,
  Unauthorized
} from "../../src/Errors.js"

const long = "é🔑\"\\".repeat(1500)

describe("error messages quote server texts bounded", () => {
  it("every error that quotes what a server sent", () => {
    const token = new OAuthTokenError({ error: long, errorDescription: long, status: 400 })
    const errors = [
      token,
      new OAuthRegistrationError({ reason: "Rejected", error: long, errorDescription: long, status: 400 }),
      new OAuthRegistrationError({ reason: "InvalidResponse", errorDescription: long }),
      new OAuthRegistrationError({ reason: "NotSupported", errorDescription: long }),
      new AuthorizationError({ reason: "Denied", error: long, detail: long }),
      new InsufficientScope({ requiredScopes: ["a"], attempts: 2, errorDescription: long }),
      new DiscoveryError({ reason: "Malformed", url: long, detail: long }),
      new OAuthRequestError({ reason: "Status", url: long, detail: long }),
      new IssuerMismatch({ reason: "Changed", expected: long, actual: long }),
      new Unauthorized({ url: long, wwwAuthenticate: long }),
      new ClientNotFound({ clientId: long, description: long }),
      new ResourceMismatch({ expected: long, actual: long })
    ]
    for (const error of errors) {
      expect(error.message.length, error._tag).toBeLessThan(1_600)
      expect(error.message).toContain("…")
    }
    expect(token.errorDescription).toBe(long)
  })
})
