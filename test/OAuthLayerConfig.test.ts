import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import { OAuthLayerConfig } from "../src/HttpAuth.js"
import * as TestStorage from "../src/TestStorage.js"
import { startTestServer } from "./fixtures/TestAuthServer.js"

const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("OAuthLayerConfig", () => {
  it.scopedLive("reads the server URL and scopes from configuration and signs in with them", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ scopesSupported: ["files:read", "files:write"] })
      const layer = OAuthLayerConfig().pipe(
        Layer.provide(TestStorage.layer()),
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(withEnv({ MCP_URL: server.mcpUrl, MCP_OAUTH_SCOPES: "files:read files:write" }))
      )
      const status = yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        const response = yield* client.post(server.mcpUrl, { body: HttpBody.unsafeJson({}) })
        return response.status
      }).pipe(Effect.scoped, Effect.provide(layer))
      expect(status).toBe(200)
      const [authorize] = yield* server.requestsTo("authorize")
      expect(authorize!.query["scope"]).toBe("files:read files:write")
    }))

  it.scopedLive("MCP_OAUTH_ISSUER names the trusted authorization server: another issuer is IssuerMismatch and gets no request for a client or token", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const layer = OAuthLayerConfig().pipe(
        Layer.provide(TestStorage.layer()),
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(withEnv({ MCP_URL: server.mcpUrl, MCP_OAUTH_ISSUER: "https://as.example.com" }))
      )
      const error = yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        return yield* Effect.flip(client.post(server.mcpUrl, { body: HttpBody.unsafeJson({}) }))
      }).pipe(Effect.scoped, Effect.provide(layer))
      expect(yield* server.counts).toMatchObject({ register: 0, authorize: 0, token: 0 })
      expect(error.cause).toMatchObject({
        _tag: "IssuerMismatch",
        reason: "NotConfigured",
        expected: "https://as.example.com",
        actual: server.issuer
      })
    }))

  it.effect("a missing MCP_URL fails the layer with a ConfigError naming it", () =>
    Effect.gen(function*() {
      const layer = OAuthLayerConfig().pipe(
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(withEnv({ MCP_OAUTH_SCOPES: "x" }))
      )
      const error = yield* Effect.flip(Effect.provide(HttpClient.HttpClient, layer))
      expect(String(error)).toContain("MCP_URL")
    }))
})
