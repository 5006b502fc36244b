/**
 * Fault: the disk refuses a token write — ENOSPC (the write fails), EACCES and EROFS (the file
 * cannot be created). Injected by a `FileSystem` that wraps Node's and fails the token record's
 * write with the `SystemError` Node's would give (running as root, chmod cannot refuse us and no
 * tiny tmpfs can be mounted here); everything else (the directory, the lock file, reads) is real.
 * What must hold: a direct write fails with a typed `StorageError`; the previous record is still
 * readable; a refresh or a sign-in whose new tokens cannot be stored still answers the call, and
 * this process keeps using the new tokens in memory (the rotated refresh token, the user's consent
 * are not lost) and stores them at the next occasion; `OAuth.login`, whose purpose is the stored
 * record, fails with the StorageError.
 */
import { FileSystem, HttpBody, HttpClient } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { NodeFileSystem, NodeHttpClient, NodePath } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Ref } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import { StorageError } from "../../src/Errors.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as OAuth from "../../src/OAuth.js"
import * as SignInEvents from "../../src/SignInEvents.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"

type Fault = "ENOSPC" | "EACCES" | "EROFS"

const failure = (fault: Fault, method: string, file: string) =>
  new SystemError({
    reason: fault === "EACCES" ? "PermissionDenied" : "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: file,
    syscall: method === "open" ? "open" : "write",
    description: {
      ENOSPC: "ENOSPC: no space left on device",
      EACCES: "EACCES: permission denied",
      EROFS: "EROFS: read-only file system"
    }[fault]
  })

/**
 * Node's file system, whose record writes (`.tmp` then rename) fail while a fault is set; `only`
 * narrows the fault to some records (by the temporary file's name).
 */
const faultyFileSystem = (fault: Ref.Ref<Option.Option<Fault>>, only: RegExp = /\.tmp$/) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => ({
      ...fs,
      open: (file, options) =>
        Effect.flatMap(Ref.get(fault), (current) => {
          if (Option.isNone(current) || !only.test(file)) return fs.open(file, options)
          // EACCES / EROFS: the file cannot be created; ENOSPC: it can, but the write fails
          if (current.value !== "ENOSPC") return Effect.fail(failure(current.value, "open", file))
          return Effect.map(fs.open(file, options), (handle): FileSystem.File =>
            Object.assign(Object.create(handle) as FileSystem.File, {
              writeAll: () => Effect.fail(failure("ENOSPC", "writeAll", file)),
              write: () => Effect.fail(failure("ENOSPC", "write", file))
            }))
        })
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

/**
 * File storage in a new temporary directory over {@link faultyFileSystem}, and an OAuthLayer for
 * `mcpUrl` over it (headless sign-in, undici).
 */
const faultyStorage = (mcpUrl: string, injected: Ref.Ref<Option.Option<Fault>>, only?: RegExp) =>
  Effect.gen(function*() {
    const directory = mkdtempSync(path.join(tmpdir(), "faults-disk-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
    const storage = yield* TokenStorage.TokenStorage.pipe(
      Effect.provide(
        TokenStorage.layerFileSystem(directory).pipe(
          Layer.provide(Layer.merge(faultyFileSystem(injected, only), NodePath.layer))
        )
      )
    )
    const oauth = HttpAuth.OAuthLayer({ mcpUrl }).pipe(
      Layer.provide(Layer.mergeAll(Layer.succeed(TokenStorage.TokenStorage, storage), Authorizer.layerHeadless())),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    return { storage, oauth }
  })

const callMcp = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(url, {
      body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    return { status: response.status, token: response.request.headers["authorization"] ?? "" }
  }).pipe(Effect.scoped)

describe("fault: a token write refused by the disk", () => {
  for (const fault of ["ENOSPC", "EACCES", "EROFS"] as const) {
    it.scopedLive(`${fault}: typed StorageError, the previous record still readable, the refreshed token kept in memory`, () =>
      Effect.gen(function*() {
        const server = yield* startTestServer({ accessTokenTtlSeconds: 1 })
        const injected = yield* Ref.make(Option.none<Fault>())
        const { oauth, storage } = yield* faultyStorage(server.mcpUrl, injected)
        yield* Effect.gen(function*() {
          const first = yield* callMcp(server.mcpUrl)
          expect(first.status).toBe(200)
          const before = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))
          yield* server.setFaults({ accessTokenTtlSeconds: 3600 }) // the refreshed token lives long
          yield* Ref.set(injected, Option.some(fault))

          // a direct write: a typed StorageError naming the cause; the previous record stays readable
          const error = yield* Effect.flip(storage.setTokens(server.mcpUrl, before))
          expect(error).toBeInstanceOf(StorageError)
          expect(error.reason).toBe("Io")
          expect(error.detail).toContain(fault)

          // the access token expires; its refresh cannot be stored: the call still succeeds, with the new token
          yield* Effect.sleep("1100 millis")
          const second = yield* callMcp(server.mcpUrl)
          expect(second.status).toBe(200)
          expect(second.token).not.toBe(`Bearer ${Redacted.value(before.accessToken)}`)
          const still = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))
          expect(Redacted.value(still.accessToken)).toBe(Redacted.value(before.accessToken))
          // the in-memory token goes on being used: no further refresh or sign-in while it is valid
          const tokenRequests = yield* server.count("token")
          const third = yield* callMcp(server.mcpUrl)
          expect(third.status).toBe(200)
          expect(third.token).toBe(second.token)
          expect(yield* server.count("token")).toBe(tokenRequests)
          expect(yield* server.count("authorize")).toBe(1)
        }).pipe(Effect.provide(oauth))
      }))
  }

  it.scopedLive("a refresh whose write failed once: the next refresh uses the unsaved rotated refresh token (strict reuse detection), stores it, and signs in nobody", () =>
    Effect.gen(function*() {
      // The embedded AS rotates refresh tokens and revokes the grant when a used one comes back.
      const server = yield* startTestServer({ accessTokenTtlSeconds: 1 })
      const injected = yield* Ref.make(Option.none<Fault>())
      const { oauth, storage } = yield* faultyStorage(server.mcpUrl, injected)
      const events: Array<SignInEvents.SignInEvent> = []
      yield* Effect.gen(function*() {
        expect((yield* callMcp(server.mcpUrl)).status).toBe(200) // signs in
        const signedIn = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))

        // The token expires; its refresh succeeds at the AS but the write fails (once).
        yield* Ref.set(injected, Option.some("ENOSPC"))
        yield* Effect.sleep("1100 millis")
        const second = yield* callMcp(server.mcpUrl)
        yield* Ref.set(injected, Option.none())
        expect(second.status).toBe(200)
        expect(events.filter((e) => e._tag === "Refreshed")).toMatchObject([{ storageError: expect.stringContaining("ENOSPC") }])
        // storage still holds the signed-in record, whose refresh token the AS has rotated away
        const stale = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))
        expect(Redacted.value(stale.accessToken)).toBe(Redacted.value(signedIn.accessToken))
        // the next call uses the unsaved token from memory
        const third = yield* callMcp(server.mcpUrl)
        expect([third.status, third.token]).toEqual([200, second.token])

        // It expires too: the next refresh stores the unsaved set first and redeems its refresh token.
        yield* Effect.sleep("1100 millis")
        const fourth = yield* callMcp(server.mcpUrl)
        expect(fourth.status).toBe(200)
        expect(fourth.token).not.toBe(second.token)
        expect(yield* server.count("authorize")).toBe(1) // no second sign-in
        const stored = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))
        expect(`Bearer ${Redacted.value(stored.accessToken)}`).toBe(fourth.token)
        expect(events.filter((e) => e._tag === "Refreshed")).toHaveLength(2)
      }).pipe(
        Effect.provide(oauth),
        // The events of the calls' fibers (a context reference, read where the refresh runs).
        Effect.provide(SignInEvents.layer((event) => Effect.sync(() => void events.push(event))))
      )
    }))

  it.scopedLive("a sign-in whose tokens cannot be stored still answers the call and is not asked for again; once the disk recovers the next refresh stores; OAuth.login fails with the StorageError", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 1 })
      // the token record only: the client registered before the user is asked is stored
      const tokensOnly = /\.tokens\.json\.[0-9a-f]+\.tmp$/
      const injected = yield* Ref.make(Option.some<Fault>("ENOSPC"))
      const { oauth, storage } = yield* faultyStorage(server.mcpUrl, injected, tokensOnly)
      const events: Array<SignInEvents.SignInEvent> = []
      yield* Effect.gen(function*() {
        // The user signs in; the disk refuses the record: the call is answered all the same.
        const first = yield* callMcp(server.mcpUrl)
        expect(first.status).toBe(200)
        expect(events.filter((e) => e._tag === "SignedIn")).toMatchObject([{ storageError: expect.stringContaining("ENOSPC") }])
        expect(Option.isNone(yield* storage.getTokens(server.mcpUrl))).toBe(true)
        const second = yield* callMcp(server.mcpUrl)
        expect([second.status, second.token]).toEqual([200, first.token])
        expect(yield* server.count("authorize")).toBe(1)

        // The disk recovers; the token expires: the refresh writes the kept set first, then its own.
        yield* Ref.set(injected, Option.none())
        yield* Effect.sleep("1100 millis")
        const third = yield* callMcp(server.mcpUrl)
        expect(third.status).toBe(200)
        expect(third.token).not.toBe(first.token)
        const stored = Option.getOrThrow(yield* storage.getTokens(server.mcpUrl))
        expect(`Bearer ${Redacted.value(stored.accessToken)}`).toBe(third.token)
        expect(yield* server.count("authorize")).toBe(1) // nobody was sent to sign in again

        // An explicit login is for the stored record: it says when there is none.
        yield* Ref.set(injected, Option.some("EROFS"))
        const error = yield* Effect.flip(Effect.flatMap(OAuth.OAuth, (o) => o.login))
        expect(error).toBeInstanceOf(StorageError)
        expect(error.message).toContain("EROFS")
        // its tokens are used meanwhile all the same
        const fourth = yield* callMcp(server.mcpUrl)
        expect(fourth.status).toBe(200)
        expect(yield* server.count("authorize")).toBe(2)
      }).pipe(
        Effect.provide(oauth),
        Effect.provide(SignInEvents.layer((event) => Effect.sync(() => void events.push(event))))
      )
    }))
})
