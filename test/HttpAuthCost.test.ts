/**
 * What `OAuthLayer` adds to a request that already has a valid token (issue 13, "OAuth overhead,
 * valid token"): counted in effect steps against the same request made by the bare client with
 * the same token, both against the test authorization server's MCP endpoint on loopback.
 */
import { HttpBody, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import { OAuthLayer } from "../src/HttpAuth.js"
import * as TestStorage from "../src/TestStorage.js"
import { counted } from "./fixtures/effectCost.js"
import { seedSignedIn, startTestServer } from "./fixtures/TestAuthServer.js"

const ping = (client: HttpClient.HttpClient, url: string) =>
  client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) }).pipe(
    Effect.flatMap((response) => Effect.as(response.arrayBuffer, response.status))
  )

describe("OAuthLayer's cost on a request with a valid token", () => {
  it.scopedLive("at most 6 effect steps more than the bare client sending the same token, and no fiber", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      const { accessToken, client, token } = yield* seedSignedIn(server)
      const bare = yield* HttpClient.HttpClient
      const bareWithToken = HttpClient.mapRequest(bare, HttpClientRequest.bearerToken(Redacted.value(accessToken)))
      const authed = Context.get(
        yield* Layer.build(
          OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
            Layer.provide(TestStorage.layer({ tokens: token, client })),
            Layer.provide(Authorizer.layerHeadless())
          )
        ),
        HttpClient.HttpClient
      )
      expect(yield* ping(bareWithToken, server.mcpUrl)).toBe(200)
      expect(yield* ping(authed, server.mcpUrl)).toBe(200)
      const [withoutLayer] = yield* counted(ping(bareWithToken, server.mcpUrl))
      const [withLayer] = yield* counted(ping(authed, server.mcpUrl))
      // was 38 (a chain of five client wrappers, a Ref read, two FiberRef reads), then 18 (the token
      // read through effects, an error handler per request); now 5: one wrapper, the token and the
      // clock read in place, no error handler unless an OAuth error can arise
      expect(withLayer.steps - withoutLayer.steps).toBeLessThanOrEqual(6)
      expect(withLayer.started).toBe(0)
      expect(yield* server.count("token")).toBe(0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
