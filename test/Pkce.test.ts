import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Encoding, Redacted, Schema } from "effect"
import { createHash } from "node:crypto"
import * as Pkce from "../src/Pkce.js"

// RFC 7636 Appendix B
const RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
const RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

const unreserved = /^[A-Za-z0-9\-._~]+$/

describe("Pkce", () => {
  it.effect("challengeFor matches the RFC 7636 Appendix B test vector", () =>
    Effect.gen(function*() {
      expect(yield* Pkce.challengeFor(RFC_VERIFIER)).toBe(RFC_CHALLENGE)
      expect(yield* Pkce.challengeFor(Redacted.make(RFC_VERIFIER))).toBe(RFC_CHALLENGE)
    }))

  it.effect("challengeFor agrees with node:crypto on arbitrary verifiers (no padding)", () =>
    Effect.gen(function*() {
      for (const v of ["a".repeat(43), "~._-".repeat(32), "Zz09".repeat(20)]) {
        const expected = createHash("sha256").update(v, "ascii").digest("base64url")
        const actual = yield* Pkce.challengeFor(v)
        expect(actual).toBe(expected)
        expect(actual).toHaveLength(43)
        expect(actual).not.toContain("=")
      }
    }))

  it.effect("generate: length and alphabet within RFC 7636 §4.1 bounds, challenge derived, method S256", () =>
    Effect.gen(function*() {
      const pkce = yield* Pkce.Pkce
      const seen = new Set<string>()
      const letters = new Set<string>()
      for (let i = 0; i < 500; i++) {
        const codes = yield* pkce.generate
        const v = Redacted.value(codes.verifier)
        expect(v.length).toBeGreaterThanOrEqual(43)
        expect(v.length).toBeLessThanOrEqual(128)
        expect(v).toMatch(unreserved)
        expect(Either.isRight(Schema.decodeUnknownEither(Pkce.CodeVerifier)(v))).toBe(true)
        expect(codes.method).toBe("S256")
        expect(codes.challenge).toBe(createHash("sha256").update(v, "ascii").digest("base64url"))
        seen.add(v)
        for (const c of v) letters.add(c)
      }
      // uniqueness, and the whole 66-letter alphabet is used (including "-", ".", "_", "~")
      expect(seen.size).toBe(500)
      expect(letters.size).toBe(Pkce.VERIFIER_ALPHABET.length)
    }).pipe(Effect.provide(Pkce.layer)))

  it.effect("the verifier is Redacted: printing the codes never shows it", () =>
    Effect.gen(function*() {
      const codes = yield* Effect.flatMap(Pkce.Pkce, (p) => p.generate)
      const v = Redacted.value(codes.verifier)
      expect(String(codes.verifier)).not.toContain(v)
      expect(JSON.stringify(codes)).not.toContain(v)
    }).pipe(Effect.provide(Pkce.layer)))

  it.effect("generateState: at least 128 bits of base64url, unique", () =>
    Effect.gen(function*() {
      const pkce = yield* Pkce.Pkce
      const seen = new Set<string>()
      for (let i = 0; i < 500; i++) {
        const s = yield* pkce.generateState
        expect(s).toMatch(/^[A-Za-z0-9_-]+$/)
        const bytes = Encoding.decodeBase64Url(s)
        expect(Either.isRight(bytes)).toBe(true)
        if (Either.isRight(bytes)) expect(bytes.right.length * 8).toBeGreaterThanOrEqual(128)
        seen.add(s)
      }
      expect(seen.size).toBe(500)
    }).pipe(Effect.provide(Pkce.layer)))

  it.effect("layerTest is deterministic and still computes the real challenge", () =>
    Effect.gen(function*() {
      const pkce = yield* Pkce.Pkce
      const a = yield* pkce.generate
      const b = yield* pkce.generate
      expect(Redacted.value(a.verifier)).toBe(RFC_VERIFIER)
      expect(Redacted.value(b.verifier)).toBe(RFC_VERIFIER)
      expect(a.challenge).toBe(RFC_CHALLENGE)
      expect(yield* pkce.generateState).toBe("fixed-state")
    }).pipe(Effect.provide(Pkce.layerTest({ verifier: RFC_VERIFIER, state: "fixed-state" }))))

  it.effect("layerTest has a default state", () =>
    Effect.gen(function*() {
      expect(yield* Effect.flatMap(Pkce.Pkce, (p) => p.generateState)).toBe("test-state")
    }).pipe(Effect.provide(Pkce.layerTest({ verifier: RFC_VERIFIER }))))

  it("CodeVerifier rejects verifiers outside RFC 7636 §4.1 with a ParseError", () => {
    const decode = Schema.decodeUnknownEither(Pkce.CodeVerifier)
    expect(Either.isRight(decode(RFC_VERIFIER))).toBe(true)
    expect(Either.isRight(decode("a".repeat(128)))).toBe(true)
    for (const bad of ["a".repeat(42), "a".repeat(129), "a".repeat(42) + "+", "a".repeat(42) + " ", "é".repeat(43), 43]) {
      const r = decode(bad)
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) expect(r.left._tag).toBe("ParseError")
    }
  })

  it.effect("the challenge is the same without Node's synchronous hash (Web Crypto, as in a browser or Deno)", () =>
    Effect.gen(function*() {
      const original = process.getBuiltinModule
      const withNode = yield* Pkce.challengeFor(RFC_VERIFIER)
      const withoutNode = yield* Effect.acquireUseRelease(
        Effect.sync(() => {
          Object.defineProperty(process, "getBuiltinModule", { value: undefined, configurable: true, writable: true })
        }),
        () => Pkce.challengeFor(Redacted.make(RFC_VERIFIER)),
        () => Effect.sync(() => {
          Object.defineProperty(process, "getBuiltinModule", { value: original, configurable: true, writable: true })
        })
      )
      expect(withNode).toBe(RFC_CHALLENGE)
      expect(withoutNode).toBe(RFC_CHALLENGE)
    }))
})
