import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { StorageError } from "../src/Errors.js"
import * as TestStorage from "../src/TestStorage.js"
import { TokenStorage } from "../src/TokenStorage.js"
import { ACCESS, conformance, KEY_A, KEY_B, makeClient, makeToken } from "./storageConformance.js"

// the test double behaves like the real storages
conformance({
  name: "TestStorage.layer()",
  persistent: false,
  keepsPending: false,
  medium: Effect.succeed(TestStorage.layer())
})

const expired = makeToken({ expiresAt: 1_000, scopes: ["expired"] })

describe("TestStorage", () => {
  it.layer(TestStorage.layer({ tokens: expired, client: makeClient() }))("an unkeyed seed", (it) => {
    it.effect("applies to every server key and records every operation", () =>
      Effect.gen(function*() {
        const storage = yield* TokenStorage
        yield* TestStorage.resetOperations
        for (const key of [KEY_A, KEY_B, "anything"]) {
          const t = yield* storage.getTokens(key)
          expect(Option.map(t, (x) => x.scopes)).toEqual(Option.some(["expired"]))
          expect(Option.map(t, (x) => x.isExpired(2_000))).toEqual(Option.some(true))
          expect(Option.map(yield* storage.getClient(key), (c) => c.clientId)).toEqual(Option.some("client-1"))
        }
        expect(yield* TestStorage.operations).toEqual([
          { op: "getTokens", key: KEY_A },
          { op: "getClient", key: KEY_A },
          { op: "getTokens", key: KEY_B },
          { op: "getClient", key: KEY_B },
          { op: "getTokens", key: "anything" },
          { op: "getClient", key: "anything" }
        ])
        // the seed is not listed as explicit contents
        expect((yield* TestStorage.tokens).size).toBe(0)
        expect(yield* storage.keys).toEqual([])
      }))

    it.effect("a key written or cleared no longer sees the seed; contents show the writes", () =>
      Effect.gen(function*() {
        const storage = yield* TokenStorage
        yield* TestStorage.resetOperations
        const fresh = makeToken({ scopes: ["fresh"] })
        yield* storage.setTokens(KEY_A, fresh)
        yield* storage.clearTokens(KEY_B)
        expect(Option.map(yield* storage.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["fresh"]))
        expect(yield* storage.getTokens(KEY_B)).toEqual(Option.none())
        expect(Option.isSome(yield* storage.getTokens("untouched"))).toBe(true)
        yield* storage.clearTokens(KEY_A)
        expect(yield* storage.getTokens(KEY_A)).toEqual(Option.none())
        yield* storage.setTokens(KEY_A, fresh)
        expect(yield* TestStorage.tokens).toEqual(new Map([[KEY_A, fresh]]))
        expect(yield* storage.keys).toEqual([KEY_A])
        const ops = yield* TestStorage.operations
        expect(ops.map((o) => o.op)).toEqual([
          "setTokens",
          "clearTokens",
          "getTokens",
          "getTokens",
          "getTokens",
          "clearTokens",
          "getTokens",
          "setTokens",
          "keys"
        ])
        // client seed is still there for KEY_A (only tokens were touched)
        expect(Option.isSome(yield* storage.getClient(KEY_A))).toBe(true)
        yield* storage.clear(KEY_A)
        expect(yield* storage.getClient(KEY_A)).toEqual(Option.none())
      }))

    it.effect("clearAll drops the seed too", () =>
      Effect.gen(function*() {
        const storage = yield* TokenStorage
        yield* storage.clearAll
        expect(yield* storage.getTokens("untouched-2")).toEqual(Option.none())
        expect(yield* storage.getClient("untouched-2")).toEqual(Option.none())
        expect((yield* TestStorage.operations).some((o) => o.op === "clearAll")).toBe(true)
      }))
  })

  it.effect("a keyed seed applies to its keys only", () =>
    Effect.gen(function*() {
      const storage = yield* TokenStorage
      expect(Option.map(yield* storage.getTokens(KEY_A), (t) => Redacted.value(t.accessToken))).toEqual(
        Option.some(ACCESS)
      )
      expect(yield* storage.getTokens(KEY_B)).toEqual(Option.none())
      expect(Option.map(yield* storage.getClient(KEY_B), (c) => c.clientId)).toEqual(Option.some("b"))
      expect(yield* storage.getClient(KEY_A)).toEqual(Option.none())
      expect([...(yield* storage.keys)].sort()).toEqual([KEY_A, KEY_B].sort())
      expect([...(yield* TestStorage.clients).keys()]).toEqual([KEY_B])
    }).pipe(
      Effect.provide(TestStorage.layer({ tokens: { [KEY_A]: makeToken() }, client: { [KEY_B]: makeClient({ clientId: "b" }) } }))
    ))

  it.effect("each build of the layer starts from the seed", () =>
    Effect.gen(function*() {
      const layer = TestStorage.layer({ tokens: { [KEY_A]: makeToken() } })
      yield* Effect.flatMap(TokenStorage, (s) => s.clearAll).pipe(Effect.provide(layer))
      const again = yield* Effect.flatMap(TokenStorage, (s) => s.getTokens(KEY_A)).pipe(Effect.provide(layer))
      expect(Option.isSome(again)).toBe(true)
    }))

  it.effect("failNext makes exactly the next call of that operation fail, and it is still recorded", () =>
    Effect.gen(function*() {
      const storage = yield* TokenStorage
      const boom = new StorageError({ reason: "Io", key: KEY_A, detail: "disk on fire" })
      yield* TestStorage.failNext("setTokens", boom)
      yield* storage.getTokens(KEY_A) // other operations are unaffected
      const error = yield* Effect.flip(storage.setTokens(KEY_A, makeToken()))
      expect(error).toBe(boom)
      expect(yield* storage.getTokens(KEY_A)).toEqual(Option.none()) // the failed write changed nothing
      yield* storage.setTokens(KEY_A, makeToken())
      expect(Option.isSome(yield* storage.getTokens(KEY_A))).toBe(true)
      expect(yield* TestStorage.operations).toEqual([
        { op: "getTokens", key: KEY_A },
        { op: "setTokens", key: KEY_A },
        { op: "getTokens", key: KEY_A },
        { op: "setTokens", key: KEY_A },
        { op: "getTokens", key: KEY_A }
      ])
    }).pipe(Effect.provide(TestStorage.layer())))

  it.effect("secrets stay Redacted in the operation log and contents", () =>
    Effect.gen(function*() {
      const storage = yield* TokenStorage
      yield* storage.setTokens(KEY_A, makeToken())
      const dump = JSON.stringify({
        ops: yield* TestStorage.operations,
        tokens: [...(yield* TestStorage.tokens).values()]
      })
      expect(dump).not.toContain(ACCESS)
    }).pipe(Effect.provide(TestStorage.layer())))
})
