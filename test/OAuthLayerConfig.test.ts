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
