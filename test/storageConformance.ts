/**
 * The behaviour every TokenStorage must have, as a reusable suite (the model is
 * @effect/platform's own KeyValueStore test suite run against each store).
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer, Option, Redacted, TestClock } from "effect"
import type { Scope } from "effect"
import { ClientInformation, PendingAuthorization, StoredToken } from "../src/Schemas.js"
import { serverKey, TokenStorage } from "../src/TokenStorage.js"

export const ACCESS = "at-SECRET-access-0123456789"
export const REFRESH = "rt-SECRET-refresh-0123456789"
export const CLIENT_SECRET = "cs-SECRET-client-0123456789"
export const VERIFIER = "pkce-SECRET-verifier-0123456789-0123456789-0123456789"

export const makePending = (
  overrides: Partial<ConstructorParameters<typeof PendingAuthorization>[0]> = {}
): PendingAuthorization =>
  new PendingAuthorization({
    url: "http://127.0.0.1:9000/authorize?client_id=client-1&state=st-1",
    state: "st-1",
    codeVerifier: Redacted.make(VERIFIER),
    redirectUri: "http://127.0.0.1:33418/callback",
    issuer: "http://127.0.0.1:9000",
    issParameterSupported: true,
    clientId: "client-1",
    resource: "http://127.0.0.1:9001/mcp",
    scopes: ["mcp:basic"],
    createdAt: 1_000,
    expiresAt: 601_000,
    ...overrides
  })

export const makeToken = (
  overrides: Partial<ConstructorParameters<typeof StoredToken>[0]> = {}
): StoredToken =>
  new StoredToken({
    accessToken: Redacted.make(ACCESS),
    tokenType: "Bearer",
    refreshToken: Redacted.make(REFRESH),
    expiresAt: 3_600_000,
    scopes: ["mcp:basic", "mcp:write"],
    issuer: "http://127.0.0.1:9000",
    resource: "http://127.0.0.1:9001/mcp",
    obtainedAt: 0,
    ...overrides
  })

export const makeClient = (
  overrides: Partial<ConstructorParameters<typeof ClientInformation>[0]> = {}
): ClientInformation =>
  new ClientInformation({
    clientId: "client-1",
    clientSecret: Redacted.make(CLIENT_SECRET),
    tokenEndpointAuthMethod: "client_secret_basic",
    source: "dynamic",
    issuer: "http://127.0.0.1:9000",
    redirectUris: ["http://127.0.0.1:33418/callback"],
    clientSecretExpiresAt: 7_200_000,
    registrationAccessToken: Redacted.make("rat-SECRET"),
    ...overrides
  })

export const KEY_A = serverKey("http://127.0.0.1:9001/mcp")
export const KEY_B = serverKey("http://localhost:9002/other/mcp/")
/** Keys that must not confuse a file store: traversal, separators, unicode, very long. */
export const ODD_KEYS: ReadonlyArray<string> = [
  "../../../../etc/passwd",
  "..",
  "http://[::1]:8080/a\\b/..\\c",
  "https://exämple.com/ünïcode?x=1#frag",
  "http://127.0.0.1/" + "x".repeat(600),
  ""
]

/**
 * A backend under test: `medium` creates an isolated medium (temp directory, key-value store) and
 * returns a layer that opens a storage over it; building that layer twice is a "restart".
 */
export interface Backend {
  readonly name: string
  readonly persistent: boolean
  /** Whether it keeps the sign-in in progress (`pendingAuthorizations`); default true. */
  readonly keepsPending?: boolean
  readonly medium: Effect.Effect<Layer.Layer<TokenStorage>, never, Scope.Scope>
}

const open = (layer: Layer.Layer<TokenStorage>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage))

export const conformance = (backend: Backend): void => {
  describe(`TokenStorage conformance: ${backend.name}`, () => {
    const withStorage = <A, E>(f: (s: TokenStorage) => Effect.Effect<A, E, Scope.Scope>) =>
      Effect.flatMap(Effect.flatMap(backend.medium, open), f)

    it.scoped("empty storage: nothing stored, no keys", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          expect(yield* s.getTokens(KEY_A)).toEqual(Option.none())
          expect(yield* s.getClient(KEY_A)).toEqual(Option.none())
          expect(yield* s.keys).toEqual([])
          // clearing what is not there is fine
          yield* s.clearTokens(KEY_A)
          yield* s.clearClient(KEY_A)
          yield* s.clear(KEY_A)
          yield* s.clearAll
        })
      ))

    it.scoped("tokens round trip: Redacted stays Redacted, class instance, all fields", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          const token = makeToken()
          yield* s.setTokens(KEY_A, token)
          const got = yield* s.getTokens(KEY_A)
          expect(Option.isSome(got)).toBe(true)
          if (Option.isNone(got)) return
          expect(got.value).toBeInstanceOf(StoredToken)
          expect(Redacted.isRedacted(got.value.accessToken)).toBe(true)
          expect(Redacted.value(got.value.accessToken)).toBe(ACCESS)
          expect(got.value.refreshToken && Redacted.value(got.value.refreshToken)).toBe(REFRESH)
          expect(String(got.value.accessToken)).not.toContain(ACCESS)
          expect(String(got.value)).not.toContain(ACCESS)
          expect(JSON.stringify(got.value)).not.toContain(REFRESH)
          expect(got.value.expiresAt).toBe(token.expiresAt)
          expect(got.value.scopes).toEqual(token.scopes)
          expect(got.value.issuer).toBe(token.issuer)
          expect(got.value.resource).toBe(token.resource)
          expect(got.value.obtainedAt).toBe(token.obtainedAt)
          expect(got.value.tokenType).toBe("Bearer")
          // optional fields stay absent
          yield* s.setTokens(
            KEY_B,
            new StoredToken({ accessToken: Redacted.make(ACCESS), tokenType: "DPoP", scopes: [], issuer: "i", obtainedAt: 5 })
          )
          const b = yield* s.getTokens(KEY_B)
          expect(Option.map(b, (t) => [t.refreshToken, t.expiresAt, t.resource])).toEqual(
            Option.some([undefined, undefined, undefined])
          )
          expect(Option.map(b, (t) => t.isExpired(1e15))).toEqual(Option.some(false))
        })
      ))

    it.scoped("client information round trip", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          yield* s.setClient(KEY_A, makeClient())
          const got = yield* s.getClient(KEY_A)
          expect(Option.isSome(got)).toBe(true)
          if (Option.isNone(got)) return
          expect(got.value).toBeInstanceOf(ClientInformation)
          expect(got.value.clientId).toBe("client-1")
          expect(got.value.clientSecret && Redacted.value(got.value.clientSecret)).toBe(CLIENT_SECRET)
          expect(got.value.registrationAccessToken && Redacted.value(got.value.registrationAccessToken)).toBe(
            "rat-SECRET"
          )
          expect(got.value.redirectUris).toEqual(["http://127.0.0.1:33418/callback"])
          expect(got.value.clientSecretExpiresAt).toBe(7_200_000)
          expect(String(got.value)).not.toContain(CLIENT_SECRET)
        })
      ))

    it.scoped("overwrite: the last write wins", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          yield* s.setTokens(KEY_A, makeToken({ scopes: ["one"] }))
          yield* s.setTokens(KEY_A, makeToken({ scopes: ["two"] }))
          expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["two"]))
          expect(yield* s.keys).toEqual([KEY_A])
        })
      ))

    it.scoped("tokens and client are independent; clear / clearAll / keys", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          yield* s.setTokens(KEY_A, makeToken())
          yield* s.setClient(KEY_A, makeClient())
          yield* s.setClient(KEY_B, makeClient({ clientId: "client-b" }))
          expect([...(yield* s.keys)].sort()).toEqual([KEY_A, KEY_B].sort())

          yield* s.clearTokens(KEY_A)
          expect(yield* s.getTokens(KEY_A)).toEqual(Option.none())
          expect(Option.isSome(yield* s.getClient(KEY_A))).toBe(true)
          expect([...(yield* s.keys)].sort()).toEqual([KEY_A, KEY_B].sort())

          yield* s.setTokens(KEY_A, makeToken())
          yield* s.clearClient(KEY_A)
          expect(yield* s.getClient(KEY_A)).toEqual(Option.none())
          expect(Option.isSome(yield* s.getTokens(KEY_A))).toBe(true)

          yield* s.clear(KEY_A)
          expect(yield* s.getTokens(KEY_A)).toEqual(Option.none())
          expect(yield* s.keys).toEqual([KEY_B])
          expect(Option.map(yield* s.getClient(KEY_B), (c) => c.clientId)).toEqual(Option.some("client-b"))

          yield* s.setTokens(KEY_A, makeToken())
          yield* s.clearAll
          expect(yield* s.keys).toEqual([])
          expect(yield* s.getTokens(KEY_A)).toEqual(Option.none())
          expect(yield* s.getClient(KEY_B)).toEqual(Option.none())
        })
      ))

    if (backend.keepsPending !== false) {
      it.scoped("the sign-in in progress: round trip (verifier Redacted), per key, not a key of its own; clear (of its key) and clearAll remove it", () =>
        withStorage((s) =>
          Effect.gen(function*() {
            const pending = s.pendingAuthorizations
            expect(pending).toBeDefined()
            if (pending === undefined) return
            expect(yield* pending.get(KEY_A)).toEqual(Option.none())
            yield* pending.set(KEY_A, makePending())
            const got = yield* pending.get(KEY_A)
            expect(Option.isSome(got)).toBe(true)
            if (Option.isNone(got)) return
            expect(got.value).toBeInstanceOf(PendingAuthorization)
            expect(Redacted.isRedacted(got.value.codeVerifier)).toBe(true)
            expect(Redacted.value(got.value.codeVerifier)).toBe(VERIFIER)
            expect(String(got.value)).not.toContain(VERIFIER)
            expect(got.value.redirectUri).toBe("http://127.0.0.1:33418/callback")
            expect([got.value.state, got.value.clientId, got.value.expiresAt]).toEqual(["st-1", "client-1", 601_000])
            expect(yield* pending.get(KEY_B)).toEqual(Option.none())
            expect(yield* s.keys).toEqual([])

            yield* pending.clear(KEY_A)
            expect(yield* pending.get(KEY_A)).toEqual(Option.none())
            yield* pending.clear(KEY_A) // clearing what is not there is fine

            yield* pending.set(KEY_A, makePending())
            yield* pending.set(KEY_B, makePending({ state: "st-b" }))
            yield* s.setTokens(KEY_A, makeToken())
            yield* s.clear(KEY_A)
            expect(yield* pending.get(KEY_A)).toEqual(Option.none())
            expect(Option.map(yield* pending.get(KEY_B), (p) => p.state)).toEqual(Option.some("st-b"))

            yield* pending.set(KEY_A, makePending())
            yield* s.setTokens(KEY_A, makeToken())
            yield* s.clearAll
            expect(yield* pending.get(KEY_A)).toEqual(Option.none())
            expect(yield* pending.get(KEY_B)).toEqual(Option.none())

            // tokens and client removed one by one while a sign-in is in progress: clearAll still
            // finds the sign-in in progress
            yield* s.setTokens(KEY_A, makeToken())
            yield* pending.set(KEY_A, makePending())
            yield* s.clearTokens(KEY_A)
            yield* s.clearClient(KEY_A)
            yield* s.clearAll
            expect(yield* pending.get(KEY_A)).toEqual(Option.none())
          })
        ))
    }

    it.scoped("odd keys (traversal, backslashes, unicode, 600 chars, empty) are kept apart and listed", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          for (const [i, key] of ODD_KEYS.entries()) yield* s.setTokens(key, makeToken({ scopes: [`s${i}`] }))
          for (const [i, key] of ODD_KEYS.entries()) {
            expect(Option.map(yield* s.getTokens(key), (t) => t.scopes)).toEqual(Option.some([`s${i}`]))
          }
          expect([...(yield* s.keys)].sort()).toEqual([...ODD_KEYS].sort())
          yield* s.clearAll
          expect(yield* s.keys).toEqual([])
        })
      ))

    it.scoped("concurrent writes to many keys all land", () =>
      withStorage((s) =>
        Effect.gen(function*() {
          const keys = Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:${9100 + i}/mcp`)
          yield* Effect.forEach(keys, (k) => s.setTokens(k, makeToken({ issuer: k })), { concurrency: "unbounded" })
          yield* Effect.forEach(keys, (k) => s.setClient(k, makeClient({ issuer: k })), { concurrency: "unbounded" })
          expect([...(yield* s.keys)].sort()).toEqual([...keys].sort())
          for (const k of keys) expect(Option.map(yield* s.getTokens(k), (t) => t.issuer)).toEqual(Option.some(k))
        })
      ))

    if (backend.persistent) {
      it.scoped("restart: a new storage over the same medium sees the data; expiry is absolute", () =>
        Effect.gen(function*() {
          const medium = yield* backend.medium
          yield* TestClock.setTime(1_000_000)
          const now = yield* Clock.currentTimeMillis
          const first = yield* open(medium)
          yield* first.setTokens(KEY_A, makeToken({ obtainedAt: now, expiresAt: now + 60_000 }))
          yield* first.setClient(KEY_A, makeClient())

          yield* TestClock.adjust("2 minutes") // the process "sleeps" past the expiry
          const second = yield* open(medium)
          const got = yield* second.getTokens(KEY_A)
          expect(Option.isSome(got)).toBe(true)
          if (Option.isNone(got)) return
          const later = yield* Clock.currentTimeMillis
          expect(got.value.isExpired(later)).toBe(true)
          expect(got.value.isExpired(now + 30_000)).toBe(false)
          expect(got.value.isExpired(now + 30_000, 31_000)).toBe(true)
          expect(got.value.expiresIn(now)).toBe(60)
          expect(Redacted.value(got.value.accessToken)).toBe(ACCESS)
          expect(yield* second.keys).toEqual([KEY_A])
          expect(Option.map(yield* second.getClient(KEY_A), (c) => c.clientId)).toEqual(Option.some("client-1"))
        }))
    }
  })
}
