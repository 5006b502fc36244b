import { HttpServer, KeyValueStore } from "@effect/platform"
import { NodeHttpServer, NodeKeyValueStore } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, TestClock } from "effect"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import {
  AccessTokenRecord,
  AuthorizationCode,
  layerKeyValueStore,
  makeKeyValueStore,
  makeMemory,
  OAuthProviderStore,
  RefreshTokenRecord
} from "../../src/server/OAuthProviderStore.js"
import { postForm } from "./http.js"

const code = (value: string, expiresAt: number) =>
  new AuthorizationCode({
    code: Redacted.make(value),
    clientId: "client",
    redirectUri: "http://127.0.0.1/cb",
    codeChallenge: "x",
    subject: "s",
    scopes: [],
    expiresAt,
    used: false,
    familyId: ""
  })

const accessRecord = (token: string, familyId: string, expiresAt = 1e12) =>
  new AccessTokenRecord({ token: Redacted.make(token), clientId: "c", subject: "s", scopes: [], expiresAt, familyId })

const refreshRecord = (token: string, familyId: string) =>
  new RefreshTokenRecord({
    token: Redacted.make(token),
    clientId: "c",
    subject: "s",
    scopes: [],
    expiresAt: 1e12,
    familyId,
    used: false
  })

/** An in-memory backend that yields to other fibers on every read, as a networked store would. */
const yieldingMemory = Layer.effect(
  KeyValueStore.KeyValueStore,
  Effect.map(KeyValueStore.KeyValueStore, (mem) =>
    KeyValueStore.make({
      get: (key) => Effect.zipLeft(mem.get(key), Effect.yieldNow()),
      getUint8Array: (key) => Effect.zipLeft(mem.getUint8Array(key), Effect.yieldNow()),
      set: mem.set,
      remove: mem.remove,
      clear: mem.clear,
      size: mem.size
    }))
).pipe(Layer.provide(KeyValueStore.layerMemory))

const memoryStore = makeKeyValueStore().pipe(Effect.provide(yieldingMemory))

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "as-store-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

describe("revokeClientTokens (RFC 7592 §2.3: a deleted client's tokens end with it)", () => {
  const record = (token: string, familyId: string, clientId: string) => ({
    access: new AccessTokenRecord({ token: Redacted.make(token), clientId, subject: "s", scopes: [], expiresAt: 1e12, familyId }),
    refresh: new RefreshTokenRecord({
      token: Redacted.make(`r-${token}`),
      clientId,
      subject: "s",
      scopes: [],
      expiresAt: 1e12,
      familyId,
      used: false
    })
  })
  for (const [name, store] of [
    ["key-value", makeKeyValueStore().pipe(Effect.provide(KeyValueStore.layerMemory))],
    ["memory", makeMemory]
  ] as const) {
    it.effect(`${name} store: every family of the client goes, other clients' tokens stay`, () =>
      Effect.gen(function*() {
        const s = yield* store
        const gone = [record("a1", "f1", "gone"), record("a2", "f2", "gone")]
        const kept = record("b1", "f3", "kept")
        for (const r of [...gone, kept]) {
          yield* s.putAccessToken(r.access)
          yield* s.putRefreshToken(r.refresh)
        }
        yield* s.revokeClientTokens("gone")
        for (const r of gone) {
          expect(Option.isNone(yield* s.getAccessToken(Redacted.value(r.access.token)))).toBe(true)
          expect(Option.isNone(yield* s.getRefreshToken(Redacted.value(r.refresh.token)))).toBe(true)
        }
        expect(Option.isSome(yield* s.getAccessToken("b1"))).toBe(true)
        expect(Option.isSome(yield* s.getRefreshToken("r-b1"))).toBe(true)
      }))
  }
})

describe("OAuthProviderStore.makeKeyValueStore", () => {
  it.effect("a code is consumed once, even by concurrent redemptions; the replay is reported", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* store.putCode(code("c1", 60_000))
      const results = yield* Effect.all(Array.from({ length: 8 }, (_, i) => store.consumeCode("c1", `fam${i}`)), {
        concurrency: "unbounded"
      })
      const fresh = results.filter((r) => Option.isSome(r) && !r.value.used)
      expect(fresh).toHaveLength(1)
      expect(Option.isNone(yield* store.consumeCode("unknown", "f"))).toBe(true)
    }))

  it.effect("a refresh token is used once, even concurrently; revokeFamily removes only that family", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* store.putRefreshToken(refreshRecord("r1", "f1"))
      yield* store.putAccessToken(accessRecord("a1", "f1"))
      yield* store.putAccessToken(accessRecord("a2", "f2"))
      const uses = yield* Effect.all(Array.from({ length: 8 }, () => store.useRefreshToken("r1")), {
        concurrency: "unbounded"
      })
      expect(uses.filter((u) => Option.isSome(u) && !u.value.used)).toHaveLength(1)
      yield* store.revokeFamily("f1")
      expect(Option.isNone(yield* store.getRefreshToken("r1"))).toBe(true)
      expect(Option.isNone(yield* store.getAccessToken("a1"))).toBe(true)
      expect(Option.isSome(yield* store.getAccessToken("a2"))).toBe(true)
    }))

  it.effect("expired records read as absent; clearing clients and refresh tokens", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* store.putAccessToken(accessRecord("short", "f", 1_000))
      yield* TestClock.adjust("2 seconds")
      expect(Option.isNone(yield* store.getAccessToken("short"))).toBe(true)
      const provider = yield* OAuthProvider.make({ issuer: "http://127.0.0.1:1" }).pipe(
        Effect.provideService(OAuthProviderStore, store)
      )
      const client = yield* provider.registerClient({ tokenEndpointAuthMethod: "none" })
      expect(Option.isSome(yield* store.getClient(client.clientId))).toBe(true)
      yield* store.clearClients
      expect(Option.isNone(yield* store.getClient(client.clientId))).toBe(true)
      yield* store.putRefreshToken(refreshRecord("r9", "f9"))
      yield* store.clearRefreshTokens
      expect(Option.isNone(yield* store.getRefreshToken("r9"))).toBe(true)
    }))

  it.scoped("on files: clients and grants survive a restart of the authorization server; keys reveal no token", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const storeLayer = layerKeyValueStore().pipe(Layer.provide(NodeKeyValueStore.layerFileSystem(dir)))

      // First life: register a client and issue tokens.
      const first = yield* Effect.gen(function*() {
        const provider = yield* OAuthProvider.make({ issuer: "http://127.0.0.1:1" })
        const client = yield* provider.registerClient({ tokenEndpointAuthMethod: "none" })
        const issued = yield* provider.issueToken({ clientId: client.clientId, refreshToken: true, subject: "bob" })
        return { clientId: client.clientId, issued }
      }).pipe(Effect.provide(storeLayer))

      // Second life, served over HTTP: the token verifies and the refresh token works, once.
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" }).pipe(Effect.orDie)
      const base = HttpServer.formatAddress(server.address)
      const provider = yield* OAuthProvider.make({ issuer: base }).pipe(Effect.provide(storeLayer))
      yield* server.serve(provider.router)
      const verified = yield* provider.verifyAccessToken(Redacted.value(first.issued.accessToken))
      expect(Option.map(verified, (t) => t.subject)).toEqual(Option.some("bob"))
      const refresh = Redacted.value(first.issued.refreshToken!)
      const refreshed = yield* postForm(`${base}/token`, {
        grant_type: "refresh_token",
        refresh_token: refresh,
        client_id: first.clientId
      })
      expect(refreshed.status).toBe(200)
      const reused = yield* postForm(`${base}/token`, {
        grant_type: "refresh_token",
        refresh_token: refresh,
        client_id: first.clientId
      })
      expect(reused.body["error"]).toBe("invalid_grant")
      // reuse revoked the whole grant, including the token just issued
      const latest = String(refreshed.body["access_token"])
      expect(Option.isNone(yield* provider.verifyAccessToken(latest))).toBe(true)

      const names = yield* Effect.promise(() => readdir(dir))
      expect(names.some((n) => n.includes(refresh) || n.includes(latest))).toBe(false)
      expect(names.some((n) => n.includes(encodeURIComponent(`client:${first.clientId}`)))).toBe(true)
      const contents = yield* Effect.promise(() => Promise.all(names.map((n) => readFile(join(dir, n), "utf8"))))
      expect(contents.every((c) => JSON.parse(c) !== undefined)).toBe(true)
    }))
})
