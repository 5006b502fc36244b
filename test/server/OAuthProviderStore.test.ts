import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, TestClock } from "effect"
import {
  AccessTokenRecord,
  AuthorizationCode,
  makeMemory,
  RefreshTokenRecord
} from "../../src/server/OAuthProviderStore.js"

const code = (expiresAt: number) =>
  new AuthorizationCode({
    code: Redacted.make("c1"),
    clientId: "client",
    redirectUri: "http://127.0.0.1/cb",
    codeChallenge: "x",
    subject: "s",
    scopes: [],
    expiresAt,
    used: false,
    familyId: ""
  })

describe("OAuthProviderStore.makeMemory", () => {
  it.effect("consumeCode marks the code used once and reports the replay", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      yield* store.putCode(code(60_000))
      const first = yield* store.consumeCode("c1", "fam")
      expect(Option.map(first, (c) => c.used)).toEqual(Option.some(false))
      const second = yield* store.consumeCode("c1", "other")
      expect(Option.map(second, (c) => [c.used, c.familyId])).toEqual(Option.some([true, "fam"]))
      expect(Option.isNone(yield* store.consumeCode("nope", "f"))).toBe(true)
    }))

  it.effect("revokeFamily removes the family's access and refresh tokens only", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      const access = (token: string, familyId: string) =>
        new AccessTokenRecord({
          token: Redacted.make(token),
          clientId: "c",
          subject: "s",
          scopes: [],
          expiresAt: 1e9,
          familyId
        })
      yield* store.putAccessToken(access("a1", "f1"))
      yield* store.putAccessToken(access("a2", "f2"))
      yield* store.putRefreshToken(
        new RefreshTokenRecord({
          token: Redacted.make("r1"),
          clientId: "c",
          subject: "s",
          scopes: [],
          expiresAt: 1e9,
          familyId: "f1",
          used: false
        })
      )
      yield* store.revokeFamily("f1")
      expect(Option.isNone(yield* store.getAccessToken("a1"))).toBe(true)
      expect(Option.isNone(yield* store.getRefreshToken("r1"))).toBe(true)
      expect(Option.isSome(yield* store.getAccessToken("a2"))).toBe(true)
    }))

  it.effect("expired records are swept when something new is stored", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      yield* store.putCode(code(1_000))
      yield* TestClock.adjust("2 minutes")
      yield* store.putCode(new AuthorizationCode({ ...code(1e9), code: Redacted.make("c2") }))
      expect(Option.isNone(yield* store.consumeCode("c1", "f"))).toBe(true)
      expect(Option.isSome(yield* store.consumeCode("c2", "f"))).toBe(true)
    }))
})
