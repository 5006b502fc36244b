/**
 * Fuzzing the small decoders of outside input: `WWW-Authenticate` headers, the authorization
 * response at the redirect URI (callback query), stored records (token storage envelopes). Each
 * returns a value or a typed error for any input: never a throw, never a hang.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option, Redacted } from "effect"
import { AuthorizationError } from "../../src/Errors.js"
import { validateAuthorizationResponse } from "../../src/internal/authorizationResponse.js"
import * as StorageFormat from "../../src/internal/storageFormat.js"
import { authChallenge, bearerChallenge, parseWwwAuthenticate } from "../../src/internal/wwwAuthenticate.js"
import { ClientInformation, StoredToken } from "../../src/Schemas.js"
import { assertProperty, jsonValue, mutatedObjectText, nastyString, nestedText } from "./arbitraries.js"

/** Runs `f` and fails the property when it takes longer than `ms` (a hang shows as a slow call). */
const timed = <A>(ms: number, f: () => A): A => {
  const started = performance.now()
  const result = f()
  expect(performance.now() - started).toBeLessThan(ms)
  return result
}

describe("fuzz: WWW-Authenticate", () => {
  const piece = fc.oneof(
    nastyString,
    fc.constantFrom("Bearer", "DPoP", "Basic", " ", ",", "=", "\"", "\\", "realm=", "error=\"", "scope=", "resource_metadata=", "\t")
  )
  const header = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.array(piece, { maxLength: 60 }).map((parts) => parts.join("")),
    // Pathological for a backtracking parser: long runs of the characters quoting cares about.
    fc.record({ c: fc.constantFrom("\"", "\\", ",", " ", "=", "a", "\\\""), n: fc.integer({ min: 1, max: 30_000 }) }).map(
      ({ c, n }) => `Bearer realm="${c.repeat(n)}`
    ),
    fc.integer({ min: 1, max: 20_000 }).map((n) => "Bearer " + "a=b, ".repeat(n)),
    fc.integer({ min: 1, max: 20_000 }).map((n) => "Bearer, ".repeat(n))
  )
  it("parseWwwAuthenticate, bearerChallenge and authChallenge: a value for any header, quickly", () => {
    assertProperty(
      fc.property(header, (h) => {
        const all = timed(2_000, () => parseWwwAuthenticate(h))
        expect(Array.isArray(all)).toBe(true)
        const bearer = timed(2_000, () => bearerChallenge(h))
        expect(Option.isOption(bearer)).toBe(true)
        const either = timed(2_000, () => authChallenge(h))
        if (Option.isSome(either)) expect(["Bearer", "DPoP"]).toContain(either.value.scheme)
      }),
      { numRuns: 120 }
    )
  })
})

describe("fuzz: the authorization response at the redirect URI", () => {
  const request = {
    url: new URL("http://127.0.0.1:9/authorize"),
    state: "the-state-0123456789",
    redirectUri: "http://127.0.0.1:33418/callback",
    issuer: "http://127.0.0.1:9",
    issParameterSupported: true,
    clientId: "c1"
  }
  const name = fc.constantFrom("state", "code", "iss", "error", "error_description", "error_uri", "x", "")
  const value = fc.oneof(nastyString, fc.constantFrom(request.state, request.issuer, "access_denied"))
  const query = fc.oneof(
    fc.array(fc.tuple(name, value), { maxLength: 12 }).map((pairs) => new URLSearchParams(pairs).toString()),
    fc.string({ maxLength: 200 }),
    fc.array(fc.constantFrom("&", "=", "%", "%2", "state", "code", ";", "+", "#"), { maxLength: 200 }).map((p) =>
      p.join("")
    )
  )
  it("validateAuthorizationResponse: a response or an AuthorizationError for any query", () => {
    assertProperty(
      fc.property(query, (q) => {
        const url = new URL(`${request.redirectUri}?${q}`)
        const result = timed(1_000, () => validateAuthorizationResponse(url, request))
        if (Either.isLeft(result)) {
          expect(result.left).toBeInstanceOf(AuthorizationError)
        } else {
          // Only ever accepted with our state and the expected issuer.
          expect(result.right.state).toBe(request.state)
          expect(result.right.iss).toBe(request.issuer)
          expect(result.right.code.length).toBeGreaterThan(0)
        }
      }),
      { numRuns: 300 }
    )
  })
})

describe("fuzz: stored records", () => {
  const KEY = "http://127.0.0.1:9/mcp"
  const token = new StoredToken({
    accessToken: Redacted.make("at"),
    tokenType: "Bearer",
    scopes: ["read"],
    issuer: "http://127.0.0.1:9",
    obtainedAt: 0
  })
  const client = new ClientInformation({
    clientId: "c1",
    tokenEndpointAuthMethod: "none",
    source: "dynamic",
    issuer: "http://127.0.0.1:9",
    redirectUris: ["http://127.0.0.1:33418/callback"]
  })
  const envelope = (kind: "tokens" | "client", value: unknown) => ({
    format: StorageFormat.FORMAT,
    version: StorageFormat.VERSION,
    kind,
    key: KEY,
    revision: 1,
    value
  })
  const goodTokens = JSON.parse(Effect.runSync(StorageFormat.encode(StorageFormat.tokensEntry, KEY, token, 1)))
  const goodClient = JSON.parse(Effect.runSync(StorageFormat.encode(StorageFormat.clientEntry, KEY, client, 1)))
  const text = fc.oneof(
    nastyString,
    jsonValue.map((v) => JSON.stringify(v) ?? ""),
    jsonValue.map((v) => JSON.stringify(envelope("tokens", v))),
    jsonValue.map((v) => JSON.stringify(envelope("client", v))),
    mutatedObjectText(goodTokens),
    mutatedObjectText(goodClient),
    mutatedObjectText(goodTokens.value).map((v) => `{"format":"${StorageFormat.FORMAT}","version":1,"kind":"tokens","key":"${KEY}","value":${v}}`),
    fc.integer({ min: 1_000, max: 20_000 }).map((d) => nestedText(d, "object")),
    fc.integer({ min: 1_000, max: 20_000 }).map((d) =>
      `{"format":"${StorageFormat.FORMAT}","version":1,"kind":"tokens","key":"${KEY}","value":${nestedText(d, "array")}}`
    )
  )
  it("decodeFor / decodeAny: a record or a rejection for any stored text", () => {
    assertProperty(
      fc.property(text, (t) => {
        const check = <A, I>(entry: StorageFormat.Entry<A, I>) => {
          const any = timed(2_000, () => StorageFormat.decodeAny(entry, t))
          if (Either.isLeft(any)) expect(typeof any.left).toBe("string")
          const forKey = timed(2_000, () => StorageFormat.decodeVersionedFor(entry, KEY, t))
          if (Either.isLeft(forKey)) expect(forKey.left.length).toBeLessThan(500)
        }
        check(StorageFormat.tokensEntry)
        check(StorageFormat.clientEntry)
      }),
      { numRuns: 100 }
    )
  })
})
