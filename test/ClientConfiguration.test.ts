import { FileSystem } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as ClientConfiguration from "../src/ClientConfiguration.js"
import * as Discovery from "../src/Discovery.js"
import * as Registration from "../src/Registration.js"
import { ClientInformation } from "../src/Schemas.js"
import * as TokenStorage from "../src/TokenStorage.js"
import { startTestServer, type TestServer } from "./fixtures/TestAuthServer.js"
import { rawOAuthServer } from "./oauthRawServer.js"

const REDIRECT = "http://127.0.0.1:33418/callback"

/** Registers a client dynamically at `server` (RFC 7591) and returns what would be stored. */
const registerAt = (server: TestServer, scope = "mcp:read") =>
  Effect.gen(function*() {
    const discovery = yield* Discovery.make()
    const registration = yield* Registration.make()
    const found = yield* discovery.discover(server.mcpUrl, { resourceMetadataUrl: server.prmUrl })
    return yield* registration.register({ discovery: found, redirectUri: REDIRECT, scope })
  })

describe("ClientConfiguration (RFC 7592)", () => {
  it.scopedLive("a registration that offers RFC 7592 is stored with its configuration URI and a Redacted token", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const client = yield* registerAt(server)
      expect(ClientConfiguration.isManaged(client)).toBe(true)
      expect(client.registrationClientUri).toBe(`${server.issuer}/register/${client.clientId}`)
      expect(Redacted.isRedacted(client.registrationAccessToken)).toBe(true)
      expect(client.scope).toBe("mcp:read")
      // Never printed: neither by String() nor by JSON.
      const token = Redacted.value(client.registrationAccessToken!)
      expect(String(client)).not.toContain(token)
      expect(JSON.stringify(client)).not.toContain(token)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("read returns the registration; the Bearer token goes only to the configuration URI", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const client = yield* registerAt(server)
      const configuration = yield* ClientConfiguration.read(client)
      expect(configuration.client.clientId).toBe(client.clientId)
      expect(configuration.client.redirectUris).toEqual([REDIRECT])
      expect(configuration.metadata["client_name"]).toBe("effect-mcp-oauth")
      const reads = yield* server.requestsTo("clientConfiguration")
      expect(reads.map((r) => r.method)).toEqual(["GET"])
      expect(reads[0]!.headers["authorization"]).toBe(`Bearer ${Redacted.value(client.registrationAccessToken!)}`)
      const elsewhere = (yield* server.requests).filter((r) =>
        r.endpoint !== "clientConfiguration" && r.headers["authorization"] !== undefined
      )
      expect(elsewhere).toEqual([])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a client the server no longer knows (401 on read) is ClientNotFound", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const client = yield* registerAt(server)
      yield* server.forgetClients
      const error = yield* Effect.flip(ClientConfiguration.read(client))
      expect(error._tag).toBe("ClientNotFound")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("404 on read is ClientNotFound; 500 is a Rejected registration error", () =>
    Effect.gen(function*() {
      const raw = yield* rawOAuthServer((req) =>
        req.path === "/gone" ? { status: 404 } : { status: 500, json: { error: "server_error" } }
      )
      const client = (path: string) =>
        new ClientInformation({
          clientId: "c1",
          tokenEndpointAuthMethod: "none",
          source: "dynamic",
          issuer: raw.url,
          redirectUris: [REDIRECT],
          registrationClientUri: `${raw.url}${path}`,
          registrationAccessToken: Redacted.make("rat")
        })
      expect((yield* Effect.flip(ClientConfiguration.read(client("/gone"))))._tag).toBe("ClientNotFound")
      const failed = yield* Effect.flip(ClientConfiguration.read(client("/broken")))
      expect(failed._tag).toBe("OAuthRegistrationError")
      if (failed._tag === "OAuthRegistrationError") expect(failed.reason).toBe("Rejected")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("update sends the whole registration back with the scope and redirect URIs widened", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const client = yield* registerAt(server)
      const updated = yield* ClientConfiguration.update(client, {
        addScopes: ["mcp:write"],
        addRedirectUris: ["http://127.0.0.1:40000/callback"]
      })
      expect(updated.client.scope).toBe("mcp:read mcp:write")
      expect(updated.client.redirectUris).toEqual([REDIRECT, "http://127.0.0.1:40000/callback"])
      const put = (yield* server.requestsTo("clientConfiguration")).find((r) => r.method === "PUT")!
      const body = put.json as Record<string, unknown>
      expect(body["client_id"]).toBe(client.clientId)
      expect(body["client_name"]).toBe("effect-mcp-oauth")
      expect(body["grant_types"]).toEqual(["authorization_code", "refresh_token"])
      // RFC 7592 §2.2: these members are not sent back.
      expect(body).not.toHaveProperty("registration_access_token")
      expect(body).not.toHaveProperty("registration_client_uri")
      expect(body).not.toHaveProperty("client_id_issued_at")
      // The server holds the widened registration.
      const reread = yield* ClientConfiguration.read(updated.client)
      expect(reread.client.scope).toBe("mcp:read mcp:write")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it("updateBody: the union of scopes and redirect URIs, read-only members dropped", () => {
    expect(
      ClientConfiguration.updateBody(
        {
          client_id: "c",
          scope: "a b",
          redirect_uris: ["x"],
          registration_access_token: "t",
          registration_client_uri: "u",
          client_secret_expires_at: 0,
          client_id_issued_at: 1
        },
        { addScopes: ["b", "c"], addRedirectUris: ["x", "y"] }
      )
    ).toEqual({ client_id: "c", scope: "a b c", redirect_uris: ["x", "y"] })
  })

  it.scopedLive("remove deletes the client at the server; a second remove is ClientNotFound", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ clientManagement: true })
      const client = yield* registerAt(server)
      yield* ClientConfiguration.remove(client)
      expect(Option.isNone(yield* server.provider.store.getClient(client.clientId))).toBe(true)
      expect((yield* Effect.flip(ClientConfiguration.remove(client)))._tag).toBe("ClientNotFound")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a client without RFC 7592 values, and a non-HTTPS non-loopback URI, are refused without a request", () =>
    Effect.gen(function*() {
      const plain = new ClientInformation({
        clientId: "c1",
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: "https://as.example.com",
        redirectUris: [REDIRECT]
      })
      const notManaged = yield* Effect.flip(ClientConfiguration.read(plain))
      expect(notManaged._tag).toBe("OAuthRegistrationError")
      const insecure = new ClientInformation({
        ...plain,
        registrationClientUri: "http://as.example.com/register/c1",
        registrationAccessToken: Redacted.make("rat")
      })
      const refused = yield* Effect.flip(ClientConfiguration.read(insecure))
      expect(refused._tag).toBe("OAuthRequestError")
      if (refused._tag === "OAuthRequestError") expect(refused.reason).toBe("InsecureUrl")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("the file store keeps the RFC 7592 values; older records without them still read", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "emo-cc-" })
      const storage = Context.get(
        yield* Layer.build(TokenStorage.layerFileSystem(dir)),
        TokenStorage.TokenStorage
      )
      const client = new ClientInformation({
        clientId: "c1",
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: "https://as.example.com",
        redirectUris: [REDIRECT],
        scope: "mcp:read",
        registrationClientUri: "https://as.example.com/register/c1",
        registrationAccessToken: Redacted.make("rat-secret-value")
      })
      yield* storage.setClient("k1", client)
      const back = yield* storage.getClient("k1")
      expect(Option.isSome(back)).toBe(true)
      if (Option.isSome(back)) {
        expect(back.value.registrationClientUri).toBe("https://as.example.com/register/c1")
        expect(Redacted.value(back.value.registrationAccessToken!)).toBe("rat-secret-value")
        expect(back.value.scope).toBe("mcp:read")
      }
      const old = new ClientInformation({
        clientId: "c2",
        tokenEndpointAuthMethod: "none",
        source: "dynamic",
        issuer: "https://as.example.com",
        redirectUris: [REDIRECT]
      })
      yield* storage.setClient("k2", old)
      const oldBack = yield* storage.getClient("k2")
      expect(Option.map(oldBack, (c) => c.registrationClientUri)).toEqual(Option.some(undefined))
      // Every file in the store stays private.
      for (const name of NodeFs.readdirSync(dir)) {
        const mode = NodeFs.statSync(NodePath.join(dir, name)).mode & 0o777
        expect(mode & 0o077).toBe(0)
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})
