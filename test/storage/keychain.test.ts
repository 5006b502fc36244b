/**
 * TokenStorage.layerKeychain against a real Secret Service (gnome-keyring in a private D-Bus
 * session, see keyringSession.ts): the shared conformance suite, split records, the index
 * (`keys` / `clearAll`), locking across storage instances, corrupted entries, a keychain that
 * goes away, and the migration of the file store into the keychain.
 */
import { AsyncEntry, findCredentialsAsync } from "@napi-rs/keyring"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Exit, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { StorageError } from "../../src/Errors.js"
import * as Keychain from "../../src/internal/keychainStore.js"
import * as KvStore from "../../src/internal/kvStore.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { conformance, KEY_A, KEY_B, makeClient, makeToken } from "../storageConformance.js"
import { keyringTestsEnabled, useKeyringSession } from "./keyringSession.js"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "emo-kc-" })).pipe(
  Effect.provide(NodeContext.layer),
  Effect.orDie
)

let services = 0
/** A service name no other medium uses: every medium is an empty keychain of its own. */
const freshService = () => `emo-test-${process.pid}-${++services}`

const open = <E>(layer: Layer.Layer<TokenStorage.TokenStorage, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TokenStorage.TokenStorage))

/** The accounts stored under `service`, straight from the keychain. */
const accountsOf = (service: string) =>
  Effect.promise(() => findCredentialsAsync(service)).pipe(Effect.map((cs) => cs.map((c) => c.account).sort()))

const rawGet = (service: string, account: string) =>
  Effect.promise(() => new AsyncEntry(service, account).getPassword())
const rawSet = (service: string, account: string, value: string) =>
  Effect.promise(() => new AsyncEntry(service, account).setPassword(value))
const rawDelete = (service: string, account: string) =>
  Effect.promise(() => new AsyncEntry(service, account).deleteCredential())

const captureLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const a = yield* self.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return [a, lines] as const
  })

/** A keychain storage over a fresh service with its lock files in a temp directory. */
const keychainMedium = (options: TokenStorage.KeychainOptions = {}) =>
  Effect.map(tempDir, (dir) => {
    const service = options.service ?? freshService()
    return {
      service,
      dir,
      layer: TokenStorage.layerKeychain({ ...options, service, lockDirectory: dir }).pipe(Layer.orDie)
    }
  }).pipe(
    // gnome-keyring rewrites its whole file on each change: keep it small for the next tests
    Effect.tap((m) =>
      Effect.addFinalizer(() =>
        Effect.flatMap(accountsOf(m.service), (accounts) =>
          Effect.forEach(accounts, (a) => rawDelete(m.service, a), { discard: true })).pipe(
            Effect.catchAllCause(() => Effect.void) // the last test ends the keyring session first
          )
      )
    )
  )

describe.skipIf(!keyringTestsEnabled)("TokenStorage.layerKeychain (Secret Service)", () => {
  const session = useKeyringSession()

  // Split records are exercised by the tests below rather than by a second run of the whole
  // suite: that run's ~2,000 keychain calls in a burst made gnome-keyring-daemon 42 abort now and
  // then (GLib assertion `gkd_secret_service_get_pkcs11_session: 'client'`), ending the session.
  conformance({
    name: "layerKeychain",
    persistent: true,
    medium: Effect.map(keychainMedium(), (m) => m.layer)
  })

  it.scoped("records are the versioned, issuer-bound envelopes, one entry each, plus the index", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const s = yield* open(m.layer)
      yield* s.setTokens(KEY_A, makeToken())
      yield* s.setClient(KEY_A, makeClient())
      expect(yield* accountsOf(m.service)).toEqual(
        [KvStore.INDEX_KEY, KvStore.entryKey("client", KEY_A), KvStore.entryKey("tokens", KEY_A)].sort()
      )
      const unwrap = (raw: string | null) => JSON.parse((raw ?? "").replace(/^emo-keychain\/1 1 [0-9a-f]{64}\n/, ""))
      const envelope = unwrap(yield* rawGet(m.service, KvStore.entryKey("tokens", KEY_A)))
      expect(envelope).toMatchObject({ format: "effect-mcp-oauth/token-storage", version: 1, kind: "tokens", key: KEY_A })
      expect(envelope.revision).toBe(1)
      expect(unwrap(yield* rawGet(m.service, KvStore.INDEX_KEY))).toMatchObject({ keys: [KEY_A] })
      // the TokenLock this storage brings
      expect(s.lock).toBeDefined()
      expect(yield* s.lock!.withLock(KEY_A, Effect.succeed(42))).toBe(42)
    }))

  it.scoped("a long record is split into entries of at most maxEntryLength; a rewrite removes the old parts", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium({ maxEntryLength: 300 })
      const s = yield* open(m.layer)
      const location = KvStore.entryKey("tokens", KEY_A)
      /** The parts beside the primary entry: all of one record (one digest), as many as its header says. */
      const partsNow = Effect.gen(function*() {
        const parts = (yield* accountsOf(m.service)).filter((a) => a.startsWith(`${location}#`))
        const header = /^emo-keychain\/1 (\d+) ([0-9a-f]{64})\n/.exec((yield* rawGet(m.service, location)) ?? "")
        expect(header).not.toBeNull()
        expect(parts.length).toBe(Number(header![1]) - 1)
        for (const part of parts) expect(part.startsWith(`${location}#${header![2]!.slice(0, 16)}.`)).toBe(true)
        for (const account of [location, ...parts]) {
          expect(((yield* rawGet(m.service, account)) ?? "").length).toBeLessThanOrEqual(300)
        }
        return parts
      })
      const scopes = Array.from({ length: 60 }, (_, i) => `scope:${i}:${"x".repeat(20)}`)
      yield* s.setTokens(KEY_A, makeToken({ scopes }))
      const parts = yield* partsNow
      expect(parts.length).toBeGreaterThan(5)
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(scopes))

      // rewritten, longer or shorter: the new record's parts only, none of the old ones
      yield* s.setTokens(KEY_A, makeToken({ scopes: scopes.slice(1) }))
      const after = yield* partsNow
      expect(after.filter((a) => parts.includes(a))).toEqual([])
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(scopes.slice(1)))
      yield* s.setTokens(KEY_A, makeToken({ scopes: ["one"] }))
      expect((yield* partsNow).length).toBeLessThan(after.length)
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["one"]))

      // cleared: nothing of it is left in the keychain
      yield* s.setTokens(KEY_A, makeToken({ scopes }))
      yield* s.clearTokens(KEY_A)
      expect(yield* accountsOf(m.service)).toEqual([])
    }))

  it.scoped("a split never falls between the halves of a surrogate pair", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium({ maxEntryLength: 128 })
      const s = yield* open(m.layer)
      for (let shift = 0; shift < 2; shift++) {
        const key = `https://emoji.example/${"a".repeat(shift)}${"😀".repeat(20)}`
        const scopes = [`${"b".repeat(shift)}${"🔑".repeat(100)}`]
        yield* s.setTokens(key, makeToken({ scopes }))
        expect(Option.map(yield* s.getTokens(key), (t) => t.scopes)).toEqual(Option.some(scopes))
      }
    }))

  it.scoped("keys and clearAll go by the index: a second storage instance sees them; clearAll leaves nothing", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium({ maxEntryLength: 200 })
      const first = yield* open(m.layer)
      yield* first.setTokens(KEY_A, makeToken())
      yield* first.setClient(KEY_B, makeClient())
      yield* first.setClient(TokenStorage.clientKey("http://127.0.0.1:9000", "browser"), makeClient())
      const second = yield* open(m.layer)
      expect([...(yield* second.keys)].sort()).toEqual(
        [KEY_A, KEY_B, TokenStorage.clientKey("http://127.0.0.1:9000", "browser")].sort()
      )
      yield* second.clearAll
      expect(yield* first.keys).toEqual([])
      expect(yield* accountsOf(m.service)).toEqual([])
    }))

  it.scoped("writes from two storage instances are serialised by the lock file: no index update is lost", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const one = yield* open(m.layer)
      const two = yield* open(m.layer)
      const keys = Array.from({ length: 12 }, (_, i) => `http://127.0.0.1:${9200 + i}/mcp`)
      yield* Effect.forEach(keys, (k, i) => (i % 2 === 0 ? one : two).setClient(k, makeClient({ issuer: k })), {
        concurrency: "unbounded"
      })
      expect([...(yield* one.keys)].sort()).toEqual([...keys].sort())
      // token revisions: a compare-and-set from a stale instance is refused
      const r1 = yield* one.revisions!.setTokens(KEY_A, makeToken({ scopes: ["1"] }), 0)
      yield* two.revisions!.setTokens(KEY_A, makeToken({ scopes: ["2"] }), r1)
      const stale = yield* Effect.exit(one.revisions!.setTokens(KEY_A, makeToken({ scopes: ["3"] }), r1))
      expect(Exit.isFailure(stale)).toBe(true)
      expect(Option.map(yield* one.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["2"]))
    }))

  it.scoped("concurrent compare-and-sets from the same revision on two instances: exactly one wins", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const a = yield* open(m.layer)
      const b = yield* open(m.layer)
      const r = yield* a.revisions!.setTokens(KEY_A, makeToken(), 0)
      const results = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) =>
          Effect.either(
            (i % 2 === 0 ? a : b).revisions!.setTokens(KEY_A, makeToken({ accessToken: Redacted.make(`at-${i}`) }), r)
          ),
        { concurrency: "unbounded" }
      )
      expect(results.filter((e) => e._tag === "Right")).toHaveLength(1)
      expect(results.filter((e) => e._tag === "Left" && e.left.reason === "Conflict")).toHaveLength(7)
      expect(Option.map(yield* b.revisions!.getTokens(KEY_A), (v) => v.revision)).toEqual(Option.some(r + 1))
    }))

  it.scoped("inside its TokenLock, a write whose lease was lost is refused (fencing) and changes nothing", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const s = yield* open(m.layer)
      yield* s.setTokens(KEY_A, makeToken({ scopes: ["held"] }))
      const refused = yield* s.lock!.withLock(
        KEY_A,
        Effect.gen(function*() {
          // another process broke the lease and took the lock
          const lock = NodeFs.readdirSync(m.dir).find((n) => n.endsWith(".lock") && !n.startsWith(".keychain."))
          expect(lock).toBeDefined()
          NodeFs.rmSync(NodePath.join(m.dir, lock!))
          return yield* Effect.flip(s.setTokens(KEY_A, makeToken({ scopes: ["stale"] })))
        })
      ).pipe(Effect.orDie)
      expect(refused.reason).toBe("Conflict")
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["held"]))
    }))

  /**
   * The real keychain of `m.service` through `Keychain.make`, with `failing(op, account)` saying
   * which calls fail (a keychain that goes away, a locked one).
   */
  const faultyKeychain = (
    m: { readonly service: string; readonly dir: string },
    failing: (op: "set" | "delete", account: string) => boolean
  ) =>
    Keychain.make(
      (service, account) => {
        const entry = new AsyncEntry(service, account)
        return {
          getPassword: () => entry.getPassword(),
          setPassword: (p) => failing("set", account) ? Promise.reject(new Error("keychain locked")) : entry.setPassword(p),
          deleteCredential: () =>
            failing("delete", account) ? Promise.reject(new Error("keychain locked")) : entry.deleteCredential()
        }
      },
      Either.right(m.dir),
      { service: m.service, maxEntryLength: 300 }
    ).pipe(Effect.provide(NodeContext.layer))

  it.scoped("a split write that fails, or dies, before its switch leaves no parts behind once the next write runs", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium({ maxEntryLength: 300 })
      const location = KvStore.entryKey("tokens", KEY_A)
      const healthy = yield* faultyKeychain(m, () => false)
      const long = (tag: string) => makeToken({ scopes: Array.from({ length: 40 }, (_, i) => `${tag}:${i}:${"x".repeat(10)}`) })
      /** Whether the entries beside the primary are exactly the parts its header names. */
      const ownPartsOnly = Effect.gen(function*() {
        const header = /^emo-keychain\/1 (\d+) ([0-9a-f]{16})/.exec((yield* rawGet(m.service, location)) ?? "")
        const beside = (yield* accountsOf(m.service)).filter((a) => a.startsWith(`${location}#`))
        return header !== null && beside.length === Number(header[1]) - 1 &&
          beside.every((a) => a.startsWith(`${location}#${header[2]}.`))
      })
      yield* healthy.setTokens(KEY_A, long("a"))
      const before = yield* accountsOf(m.service)

      // The switch fails: the new parts are removed at once; the old record stands.
      const switchFails = yield* faultyKeychain(m, (op, account) => op === "set" && account === location)
      expect((yield* Effect.flip(switchFails.setTokens(KEY_A, long("b")))).reason).toBe("Io")
      expect(yield* accountsOf(m.service)).toEqual(before)
      expect(Option.map(yield* healthy.getTokens(KEY_A), (t) => t.scopes[0])).toEqual(Option.some(`a:0:${"x".repeat(10)}`))

      // The switch fails and so does every removal (as if the process died after the parts):
      // parts no entry names are left, and the journal that names them.
      const dies = yield* faultyKeychain(m, (op, account) => op === "delete" || (op === "set" && account === location))
      yield* Effect.flip(dies.setTokens(KEY_A, long("c")))
      const orphaned = (yield* accountsOf(m.service)).filter((a) => !before.includes(a))
      expect(orphaned).toContain(Keychain.journalAccount(location))
      expect(orphaned.length).toBeGreaterThan(3)

      // The next write removes them, and leaves exactly its own record.
      const [, logs] = yield* captureLogs(healthy.setTokens(KEY_A, long("d")))
      expect(logs.join("\n")).toMatch(/INFO .*unfinished write left behind/)
      expect((yield* accountsOf(m.service)).filter((a) => orphaned.includes(a))).toEqual([])
      expect(yield* ownPartsOnly).toBe(true)
      expect(Option.map(yield* healthy.getTokens(KEY_A), (t) => t.scopes[0])).toEqual(Option.some(`d:0:${"x".repeat(10)}`))

      // A removal that dies after the primary entry leaves the old parts; the next write removes them.
      const removalDies = yield* faultyKeychain(m, (op, account) => op === "delete" && account !== location)
      yield* Effect.flip(removalDies.clearTokens(KEY_A))
      const left = (yield* accountsOf(m.service)).filter((a) => a.startsWith(`${location}#`))
      expect(left.length).toBeGreaterThan(3)
      yield* healthy.setTokens(KEY_A, long("e"))
      expect((yield* accountsOf(m.service)).filter((a) => left.includes(a))).toEqual([])
      expect(yield* ownPartsOnly).toBe(true)
    }))

  it.scoped("a corrupted entry reads as absent with a warning, and the next write repairs it", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium({ maxEntryLength: 200 })
      const s = yield* open(m.layer)
      const location = KvStore.entryKey("tokens", KEY_A)

      yield* rawSet(m.service, location, "{ not json")
      const [garbage, logs1] = yield* captureLogs(s.getTokens(KEY_A))
      expect(garbage).toEqual(Option.none())
      expect(logs1.join("\n")).toMatch(/WARN .*not valid JSON/)

      // a split record missing a part
      yield* s.setTokens(KEY_A, makeToken({ scopes: Array.from({ length: 30 }, (_, i) => `s${i}`) }))
      const part = (yield* accountsOf(m.service)).find((a) => a.startsWith(`${location}#`))
      expect(part).toBeDefined()
      yield* rawDelete(m.service, part!)
      const [missing, logs2] = yield* captureLogs(s.getTokens(KEY_A))
      expect(missing).toEqual(Option.none())
      expect(logs2.join("\n")).toMatch(/WARN .*missing part/)

      // a part whose content was changed
      yield* s.setTokens(KEY_A, makeToken({ scopes: Array.from({ length: 30 }, (_, i) => `t${i}`) }))
      const part2 = (yield* accountsOf(m.service)).find((a) => a.startsWith(`${location}#`))!
      yield* rawSet(m.service, part2, ((yield* rawGet(m.service, part2)) ?? "").replace("t", "u"))
      const [tampered, logs3] = yield* captureLogs(s.getTokens(KEY_A))
      expect(tampered).toEqual(Option.none())
      expect(logs3.join("\n")).toMatch(/WARN .*does not match its digest/)

      // an entry holding another server's record
      yield* s.setTokens(KEY_B, makeToken())
      yield* rawSet(m.service, location, (yield* rawGet(m.service, KvStore.entryKey("tokens", KEY_B)))!)
      expect(yield* s.getTokens(KEY_A)).toEqual(Option.none())

      yield* s.setTokens(KEY_A, makeToken({ scopes: ["fixed"] }))
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["fixed"]))
    }))

  it.scoped("encrypted(layerKeychain): the keychain holds only ciphertext", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const key = Redacted.make("11".repeat(32))
      const s = yield* open(TokenStorage.encrypted(m.layer, { key }))
      yield* s.setTokens(KEY_A, makeToken())
      const raw = (yield* rawGet(m.service, KvStore.entryKey("tokens", KEY_A))) ?? ""
      expect(raw).not.toContain("at-SECRET")
      expect(Option.map(yield* s.getTokens(KEY_A), (t) => Redacted.value(t.accessToken))).toEqual(
        Option.some("at-SECRET-access-0123456789")
      )
    }))

  describe("migration from the file store", () => {
    const fileStore = (dir: string) => open(TokenStorage.layerFileSystemNode(dir))
    const entryFiles = (dir: string) =>
      NodeFs.existsSync(dir) ? NodeFs.readdirSync(dir).filter((n) => n.endsWith(".json")) : []

    it.scoped("moves every record into the keychain, removes the files, and is idempotent", () =>
      Effect.gen(function*() {
        const dir = NodePath.join(yield* tempDir, "files")
        const files = yield* fileStore(dir)
        const shared = TokenStorage.clientKey("http://127.0.0.1:9000", "browser")
        yield* files.setTokens(KEY_A, makeToken({ scopes: ["a"] }))
        yield* files.setClient(KEY_A, makeClient({ clientId: "client-a" }))
        yield* files.setTokens(KEY_B, makeToken({ scopes: ["b"], refreshToken: undefined }))
        yield* files.setClient(shared, makeClient({ clientId: "shared" }))
        const m = yield* keychainMedium({ maxEntryLength: 200 })
        const keychain = yield* open(m.layer)

        const first = yield* TokenStorage.migrate(files, keychain)
        expect([...first.moved].sort()).toEqual([KEY_A, KEY_B, shared].sort())
        expect(entryFiles(dir)).toEqual([])
        expect(yield* files.keys).toEqual([])
        expect([...(yield* keychain.keys)].sort()).toEqual([KEY_A, KEY_B, shared].sort())
        const a = yield* keychain.getTokens(KEY_A)
        expect(Option.map(a, (t) => [t.scopes, t.refreshToken && Redacted.value(t.refreshToken)])).toEqual(
          Option.some([["a"], "rt-SECRET-refresh-0123456789"])
        )
        expect(Option.map(yield* keychain.getTokens(KEY_B), (t) => [t.scopes, t.refreshToken])).toEqual(
          Option.some([["b"], undefined])
        )
        expect(Option.map(yield* keychain.getClient(KEY_A), (c) => c.clientId)).toEqual(Option.some("client-a"))
        expect(Option.map(yield* keychain.getClient(shared), (c) => c.clientId)).toEqual(Option.some("shared"))

        const again = yield* TokenStorage.migrate(files, keychain)
        expect(again).toEqual({ moved: [], superseded: [] })
        expect([...(yield* keychain.keys)].sort()).toEqual([KEY_A, KEY_B, shared].sort())
      }))

    it.scoped("newer tokens win on either side; a client already in the keychain stays", () =>
      Effect.gen(function*() {
        const dir = NodePath.join(yield* tempDir, "files")
        const files = yield* fileStore(dir)
        const m = yield* keychainMedium()
        const keychain = yield* open(m.layer)
        // KEY_A: the file's tokens are newer (signed in where there was no keychain)
        yield* keychain.setTokens(KEY_A, makeToken({ scopes: ["old"], obtainedAt: 1_000 }))
        yield* files.setTokens(KEY_A, makeToken({ scopes: ["new"], obtainedAt: 2_000 }))
        // KEY_B: the keychain's are newer; its client stays too
        yield* keychain.setTokens(KEY_B, makeToken({ scopes: ["kc"], obtainedAt: 5_000 }))
        yield* files.setTokens(KEY_B, makeToken({ scopes: ["file"], obtainedAt: 4_000 }))
        yield* keychain.setClient(KEY_B, makeClient({ clientId: "kc-client" }))
        yield* files.setClient(KEY_B, makeClient({ clientId: "file-client" }))

        const result = yield* TokenStorage.migrate(files, keychain)
        expect(result).toEqual({ moved: [KEY_A], superseded: [KEY_B] })
        expect(Option.map(yield* keychain.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["new"]))
        expect(Option.map(yield* keychain.getTokens(KEY_B), (t) => t.scopes)).toEqual(Option.some(["kc"]))
        expect(Option.map(yield* keychain.getClient(KEY_B), (c) => c.clientId)).toEqual(Option.some("kc-client"))
        expect(entryFiles(dir)).toEqual([])
      }))

    it.scoped("layerAuto picks the keychain and moves the files into it", () =>
      Effect.gen(function*() {
        const dir = NodePath.join(yield* tempDir, "files")
        const files = yield* fileStore(dir)
        yield* files.setTokens(KEY_A, makeToken({ scopes: ["moved"] }))
        yield* files.setClient(KEY_A, makeClient())
        const service = freshService()
        const [auto, logs] = yield* captureLogs(open(TokenStorage.layerAuto({ directory: dir, service })))
        expect(logs.join("\n")).toMatch(/INFO .*Moved the credentials of 1 key\(s\).*OS keychain/)
        expect(entryFiles(dir)).toEqual([])
        expect(yield* accountsOf(service)).toContain(KvStore.entryKey("tokens", KEY_A))
        expect(Option.map(yield* auto.getTokens(KEY_A), (t) => t.scopes)).toEqual(Option.some(["moved"]))
        // building it again finds nothing more to move
        const [, logs2] = yield* captureLogs(open(TokenStorage.layerAuto({ directory: dir, service })))
        expect(logs2.join("\n")).not.toMatch(/Moved/)
      }))
  })

  // Last: it ends this file's keyring session.
  it.scoped("a keychain that goes away fails operations with StorageError \"Io\", not a crash", () =>
    Effect.gen(function*() {
      const m = yield* keychainMedium()
      const s = yield* open(m.layer)
      yield* s.setTokens(KEY_A, makeToken())
      yield* Effect.promise(() => session().stop())
      const read = yield* Effect.flip(s.getTokens(KEY_A))
      expect(read).toBeInstanceOf(StorageError)
      expect(read.reason).toBe("Io")
      const write = yield* Effect.flip(s.setTokens(KEY_A, makeToken()))
      expect(write.reason).toBe("Io")
      const built = yield* Effect.flip(open(TokenStorage.layerKeychain({ service: m.service, lockDirectory: m.dir })))
      expect(built.reason).toBe("Unavailable")
    }))
})
