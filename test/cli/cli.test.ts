import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import { StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import { bundledCli, runCli } from "./bundle.js"

/** The shipped bundle (built from the sources before the tests), not the sources through tsx. */
const BUNDLE = bundledCli()

/** Runs the bundled CLI as a subprocess, as a user would. */
const cli = (...args: Array<string>) => runCli(BUNDLE.path(), args)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-cli-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

const storedTokens = (dir: string, url: string) =>
  Effect.flatMap(TokenStorage.TokenStorage, (s) => s.getTokens(TokenStorage.serverKey(url))).pipe(
    Effect.provide(TokenStorage.layerFileSystemNode(dir))
  )

describe("effect-mcp-oauth CLI (subprocess) against the loopback authorization server", () => {
  it.scopedLive("login (headless) → status (json, no secrets) → token (refreshing when expired) → logout (revoked) → status empty", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["mcp:read", "offline_access"] })
      const dir = yield* tempDir

      const login = yield* cli("login", "--headless", "--json", "--dir", dir, "--scopes", "mcp:read", server.mcpUrl)
      expect(login.stderr).toContain("Signing in to")
      expect(login.code).toBe(0)
      const signedIn = JSON.parse(login.stdout)
      expect(signedIn).toMatchObject({ server: server.mcpUrl, signedIn: true, issuer: server.issuer, refreshable: true })
      expect(signedIn.scopes).toContain("mcp:read")
      expect(typeof signedIn.clientId).toBe("string")
      const stored = yield* storedTokens(dir, server.mcpUrl)
      expect(Option.isSome(stored)).toBe(true)
      if (Option.isNone(stored)) return
      const access = Redacted.value(stored.value.accessToken)
      const refresh = Redacted.value(stored.value.refreshToken!)
      for (const out of [login.stdout, login.stderr]) {
        expect(out).not.toContain(access)
        expect(out).not.toContain(refresh)
      }

      const status = yield* cli("status", "--json", "--dir", dir)
      expect(status.code).toBe(0)
      const rows = JSON.parse(status.stdout)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ server: server.mcpUrl, signedIn: true, expired: false, clientId: signedIn.clientId })
      const human = yield* cli("status", "--dir", dir, server.mcpUrl)
      expect(human.code).toBe(0)
      expect(human.stdout).toContain("signed in (refreshable)")
      for (const out of [status.stdout, human.stdout, status.stderr, human.stderr]) {
        expect(out).not.toContain(access)
        expect(out).not.toContain(refresh)
      }

      const token = yield* cli("token", "--dir", dir, server.mcpUrl)
      expect(token.code).toBe(0)
      expect(token.stdout.trim()).toBe(access)
      yield* server.resetCounters

      // expire it: `token` refreshes (one token request) and prints the new one
      yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.setTokens(TokenStorage.serverKey(server.mcpUrl), new StoredToken({ ...stored.value, expiresAt: Date.now() - 1000 }))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      const refreshed = yield* cli("token", "--json", "--dir", dir, server.mcpUrl)
      expect(refreshed.code).toBe(0)
      const json = JSON.parse(refreshed.stdout)
      expect(json.access_token).not.toBe(access)
      expect(json.token_type).toBe("Bearer")
      expect(json.expires_at).toBeGreaterThan(Date.now())
      expect((yield* server.requestsTo("token")).map((r) => r.form["grant_type"])).toEqual(["refresh_token"])
      const newRefresh = Option.flatMap(yield* storedTokens(dir, server.mcpUrl), (t) => Option.fromNullable(t.refreshToken))

      const logout = yield* cli("logout", "--dir", dir, server.mcpUrl)
      expect(logout.code).toBe(0)
      expect(logout.stdout).toContain("revoked: refresh_token, access_token")
      const revokes = yield* server.requestsTo("revoke")
      expect(revokes.map((r) => r.form["token_type_hint"])).toEqual(["refresh_token", "access_token"])
      expect(revokes[0]!.form["token"]).toBe(Option.getOrThrow(Option.map(newRefresh, Redacted.value)))
      expect(revokes[1]!.form["token"]).toBe(json.access_token)
      // the server no longer accepts the revoked access token
      expect(Option.isNone(yield* server.provider.verifyAccessToken(json.access_token))).toBe(true)

      const after = yield* cli("status", "--json", "--dir", dir)
      expect(after.code).toBe(0)
      expect(JSON.parse(after.stdout)).toEqual([])
      // The registration shared by the servers of this authorization server stays, and status shows it.
      const shared = yield* cli("status", "--dir", dir)
      expect(shared.stdout).toContain(`client ${signedIn.clientId} at ${server.issuer} (dynamic, shared by its servers)`)
      const noToken = yield* cli("token", "--dir", dir, server.mcpUrl)
      expect(noToken.code).toBe(3)
      expect(noToken.stderr).toContain("Not signed in")
      expect(noToken.stdout).toBe("")
    }), 180_000)

  it.scopedLive("progress lines come from SignInEvents on stderr: login says signing in and signed in, token says refreshed when it refreshes; stdout stays the result, no secret", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const dir = yield* tempDir
      const login = yield* cli("login", "--headless", "--json", "--dir", dir, server.mcpUrl)
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain(`Signing in to ${server.mcpUrl} (headless)…`)
      expect(login.stderr).toContain(`Signed in to ${server.mcpUrl} at ${server.issuer}`)
      expect(JSON.parse(login.stdout)).toMatchObject({ server: server.mcpUrl, signedIn: true })
      const stored = Option.getOrThrow(yield* storedTokens(dir, server.mcpUrl))

      // a valid token: no refresh, no line
      const fresh = yield* cli("token", "--dir", dir, server.mcpUrl)
      expect(fresh.code).toBe(0)
      expect(fresh.stderr).not.toContain("refreshed")

      yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.setTokens(TokenStorage.serverKey(server.mcpUrl), new StoredToken({ ...stored, expiresAt: Date.now() - 1000 }))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      const refreshed = yield* cli("token", "--json", "--dir", dir, server.mcpUrl)
      expect(refreshed.code, refreshed.stderr).toBe(0)
      expect(refreshed.stderr).toContain(`Access token refreshed for ${server.mcpUrl} at ${server.issuer}`)
      const json = JSON.parse(refreshed.stdout)
      expect(json.access_token).not.toBe(Redacted.value(stored.accessToken))
      const after = Option.getOrThrow(yield* storedTokens(dir, server.mcpUrl))
      for (const secret of [stored.accessToken, stored.refreshToken, after.accessToken, after.refreshToken]) {
        if (secret === undefined) continue
        expect(login.stderr).not.toContain(Redacted.value(secret))
        expect(refreshed.stderr).not.toContain(Redacted.value(secret))
      }
    }), 180_000)

  it.scopedLive("login --client-id (pre-registered) → token after expiry refreshes with that client and keeps the tokens → logout revokes", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      yield* server.registerClient({
        clientId: "cli-public-client",
        tokenEndpointAuthMethod: "none",
        redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
      })
      const dir = yield* tempDir
      const login = yield* cli("login", "--headless", "--json", "--dir", dir, "--client-id", "cli-public-client", server.mcpUrl)
      expect(login.code).toBe(0)
      const signedIn = JSON.parse(login.stdout)
      expect(signedIn.signedIn).toBe(true)
      const stored = Option.getOrThrow(yield* storedTokens(dir, server.mcpUrl))
      expect(stored.refreshToken).toBeDefined()
      yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.setTokens(TokenStorage.serverKey(server.mcpUrl), new StoredToken({ ...stored, expiresAt: Date.now() - 1000 }))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      yield* server.resetCounters

      // `token` has no --client-id: it must still refresh as the pre-registered client.
      const token = yield* cli("token", "--dir", dir, server.mcpUrl)
      expect(token.stderr).not.toContain("Not signed in")
      expect(token.code).toBe(0)
      const refreshes = yield* server.requestsTo("token")
      expect(refreshes.map((r) => [r.form["grant_type"], r.form["client_id"]])).toEqual([["refresh_token", "cli-public-client"]])
      const after = Option.getOrThrow(yield* storedTokens(dir, server.mcpUrl))
      expect(token.stdout.trim()).toBe(Redacted.value(after.accessToken))
      expect(yield* server.count("register")).toBe(0)
      // The client is remembered (never its secret), so `status` shows it too.
      expect(signedIn.clientId).toBe("cli-public-client")

      const logout = yield* cli("logout", "--json", "--dir", dir, server.mcpUrl)
      expect(logout.code).toBe(0)
      expect(JSON.parse(logout.stdout)).toMatchObject([{ revoked: ["refresh_token", "access_token"], warnings: [] }])
      expect((yield* server.requestsTo("revoke")).map((r) => r.form["client_id"])).toEqual([
        "cli-public-client",
        "cli-public-client"
      ])
    }), 180_000)

  it.scopedLive("logout --forget-client deletes the registered client at the authorization server (RFC 7592)", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const dir = yield* tempDir
      expect((yield* cli("login", "--headless", "--dir", dir, server.mcpUrl)).code).toBe(0)
      const client = yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.getClient(TokenStorage.serverKey(server.mcpUrl))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      const clientId = Option.getOrThrow(client).clientId
      expect(Option.isSome(yield* server.provider.store.getClient(clientId))).toBe(true)

      const logout = yield* cli("logout", "--forget-client", "--json", "--dir", dir, server.mcpUrl)
      expect(logout.code).toBe(0)
      expect(JSON.parse(logout.stdout)).toMatchObject([{ server: server.mcpUrl, clientDeleted: true }])
      const deletes = (yield* server.requestsTo("clientConfiguration")).filter((r) => r.method === "DELETE")
      expect(deletes).toHaveLength(1)
      expect(Option.isNone(yield* server.provider.store.getClient(clientId))).toBe(true)
      expect(JSON.parse((yield* cli("status", "--json", "--dir", dir)).stdout)).toEqual([])
      // The shared registration (the same client) is gone too.
      const shared = yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.getClient(TokenStorage.clientKey(server.issuer, "browser"))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      expect(Option.isNone(shared)).toBe(true)
      expect((yield* cli("status", "--dir", dir)).stdout).toContain("No stored credentials")
    }), 180_000)

  it.scopedLive("exit codes: usage 2, not signed in 3; logout --all signs out of everything", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const dir = yield* tempDir
      expect((yield* cli("login", "--browser", "--manual", "--dir", dir, server.mcpUrl)).code).toBe(2)
      expect((yield* cli("token", "--dir", dir, "not a url")).code).toBe(2)
      expect((yield* cli("frobnicate")).code).toBe(2)
      expect((yield* cli("logout", "--dir", dir)).code).toBe(2)
      const notSignedIn = yield* cli("status", "--dir", dir, server.mcpUrl)
      expect(notSignedIn.code).toBe(3)
      expect((yield* cli("logout", "--dir", dir, server.mcpUrl)).code).toBe(3)

      expect((yield* cli("login", "--headless", "--dir", dir, server.mcpUrl)).code).toBe(0)
      const other = `${server.baseUrl}/mcp/`
      expect(TokenStorage.serverKey(other)).toBe(TokenStorage.serverKey(server.mcpUrl)) // same server, same key
      const all = yield* cli("logout", "--all", "--json", "--dir", dir)
      expect(all.code).toBe(0)
      expect(JSON.parse(all.stdout)).toMatchObject([{ server: server.mcpUrl, revoked: ["refresh_token", "access_token"] }])
      expect(JSON.parse((yield* cli("status", "--json", "--dir", dir)).stdout)).toEqual([])

      const help = yield* cli("--help")
      expect(help.code).toBe(0)
      for (const sub of ["login", "status", "token", "logout"]) expect(help.stdout).toContain(sub)
    }), 180_000)
})
