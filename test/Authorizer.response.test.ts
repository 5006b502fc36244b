import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { AuthorizationRequest } from "../src/Authorizer.js"
import { AuthorizationError } from "../src/Errors.js"
import { constantTimeEquals, validateAuthorizationResponse } from "../src/internal/authorizationResponse.js"

const request = (overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
  url: new URL("https://as.example.com/authorize?client_id=c1&state=s-123"),
  state: "s-123",
  redirectUri: "http://127.0.0.1:33418/callback",
  issuer: "https://as.example.com",
  issParameterSupported: false,
  clientId: "c1",
  ...overrides
})

const callback = (query: string) => new URL(`http://127.0.0.1:33418/callback?${query}`)

const failure = (query: string, req = request()): AuthorizationError => {
  const result = validateAuthorizationResponse(callback(query), req)
  if (Either.isRight(result)) {
    throw new Error(`expected a failure for ${query}, got ${JSON.stringify(result.right)}`)
  }
  expect(result.left).toBeInstanceOf(AuthorizationError)
  return result.left
}

describe("validateAuthorizationResponse", () => {
  it("accepts a code with the matching state", () => {
    const result = validateAuthorizationResponse(callback("code=abc&state=s-123"), request())
    expect(result).toStrictEqual(Either.right({ code: "abc", state: "s-123", iss: undefined }))
  })

  it("rejects a missing state (RFC 6749 §10.12)", () => {
    expect(failure("code=abc").reason).toBe("StateMismatch")
  })

  it("rejects a different state, including a prefix or a longer value", () => {
    expect(failure("code=abc&state=s-124").reason).toBe("StateMismatch")
    expect(failure("code=abc&state=s-12").reason).toBe("StateMismatch")
    expect(failure("code=abc&state=s-1234").reason).toBe("StateMismatch")
    expect(failure("code=abc&state=").reason).toBe("StateMismatch")
  })

  it("rejects a repeated parameter (RFC 6749 §3.1)", () => {
    expect(failure("code=abc&code=def&state=s-123").reason).toBe("InvalidResponse")
    expect(failure("code=abc&state=s-123&state=s-123").reason).toBe("InvalidResponse")
  })

  it("maps error= to Denied with the server's description", () => {
    const e = failure("error=access_denied&error_description=The+user+said+no&state=s-123")
    expect(e.reason).toBe("Denied")
    expect(e.error).toBe("access_denied")
    expect(e.detail).toContain("The user said no")
  })

  it("an error response with a wrong state is a state mismatch, not a denial", () => {
    expect(failure("error=access_denied&state=other").reason).toBe("StateMismatch")
  })

  it("rejects a response without a code", () => {
    expect(failure("state=s-123").reason).toBe("InvalidResponse")
    expect(failure("code=&state=s-123").reason).toBe("InvalidResponse")
  })

  describe("RFC 9207 iss", () => {
    const advertised = request({ issParameterSupported: true })

    it("requires iss when the server advertises it", () => {
      expect(failure("code=abc&state=s-123", advertised).reason).toBe("IssuerMismatch")
    })

    it("accepts the exact issuer", () => {
      const result = validateAuthorizationResponse(
        callback("code=abc&state=s-123&iss=https%3A%2F%2Fas.example.com"),
        advertised
      )
      expect(result).toStrictEqual(Either.right({ code: "abc", state: "s-123", iss: "https://as.example.com" }))
    })

    it("compares by simple string comparison: a trailing slash or case change is a mismatch", () => {
      expect(failure("code=abc&state=s-123&iss=https%3A%2F%2Fas.example.com%2F", advertised).reason).toBe(
        "IssuerMismatch"
      )
      expect(failure("code=abc&state=s-123&iss=https%3A%2F%2FAS.example.com", advertised).reason).toBe(
        "IssuerMismatch"
      )
    })

    it("still rejects a wrong iss when the server does not advertise the parameter", () => {
      expect(failure("code=abc&state=s-123&iss=https%3A%2F%2Fevil.example.com").reason).toBe("IssuerMismatch")
    })

    it("checks iss before honouring an error (mix-up defence)", () => {
      expect(failure("error=access_denied&state=s-123&iss=https%3A%2F%2Fevil.example.com").reason).toBe(
        "IssuerMismatch"
      )
    })

    it("accepts a missing iss when not advertised", () => {
      expect(Either.isRight(validateAuthorizationResponse(callback("code=abc&state=s-123"), request()))).toBe(true)
    })
  })
})

describe("constantTimeEquals", () => {
  it("is plain equality on strings of any length", () => {
    expect(constantTimeEquals("a", "a")).toBe(true)
    expect(constantTimeEquals("", "")).toBe(true)
    expect(constantTimeEquals("a", "b")).toBe(false)
    expect(constantTimeEquals("abc", "abcd")).toBe(false)
    expect(constantTimeEquals("é", "é")).toBe(true)
  })
})
