import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted, TestClock } from "effect"
import * as PendingAuthorization from "../src/PendingAuthorization.js"
import { makePending, VERIFIER } from "./storageConformance.js"

const wanted = {
  now: 300_000,
  issuer: "http://127.0.0.1:9000",
  resource: "http://127.0.0.1:9001/mcp",
  scopes: ["mcp:basic"]
}

describe("PendingAuthorization", () => {
  it.effect("record: the request as made now, valid for LIFETIME (10 minutes)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(5_000)
      const pending = yield* PendingAuthorization.record({
        url: new URL("http://127.0.0.1:9000/authorize?state=st"),
        state: "st",
        codeVerifier: Redacted.make(VERIFIER),
        redirectUri: "http://127.0.0.1:41234/callback",
        issuer: wanted.issuer,
        issParameterSupported: false,
        clientId: "client-1",
        resource: undefined,
        scopes: []
      })
      expect([pending.createdAt, pending.expiresAt]).toEqual([5_000, 5_000 + 600_000])
      expect(Duration.toMinutes(PendingAuthorization.LIFETIME)).toBe(10)
      expect(pending.url).toBe("http://127.0.0.1:9000/authorize?state=st")
      expect(pending.resource).toBeUndefined()
    }))

  it("unfit: a fresh request for the same server, resource and scopes (or fewer) can be taken over", () => {
    expect(PendingAuthorization.unfit(makePending(), wanted)).toBeUndefined()
    expect(PendingAuthorization.unfit(makePending({ scopes: ["mcp:basic", "offline_access"] }), wanted)).toBeUndefined()
    expect(PendingAuthorization.unfit(makePending(), { ...wanted, scopes: [] })).toBeUndefined()
  })

  it("unfit: expired, from the future, another issuer or resource, missing scopes", () => {
    expect(PendingAuthorization.unfit(makePending({ expiresAt: 300_000 }), wanted)).toMatch(/^it expired at /)
    expect(PendingAuthorization.unfit(makePending({ createdAt: 400_000 }), wanted)).toMatch(/future/)
    expect(PendingAuthorization.unfit(makePending({ issuer: "http://127.0.0.1:9999" }), wanted))
      .toBe(`it was made at http://127.0.0.1:9999, not ${wanted.issuer}`)
    expect(PendingAuthorization.unfit(makePending({ resource: undefined }), wanted)).toMatch(/resource \(none\)/)
    expect(PendingAuthorization.unfit(makePending(), { ...wanted, scopes: ["mcp:basic", "admin"] }))
      .toBe("it does not ask for admin")
  })
})
