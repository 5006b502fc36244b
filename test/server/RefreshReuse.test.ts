/**
 * `refreshTokenReuseInterval`: a rotated refresh token presented again shortly after rotation (a
 * client refreshing twice at once, e.g. the official TypeScript SDK's background GET and POST)
 * is honoured instead of revoking the grant; after the interval, reuse revokes it as before.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { createServer } from "node:http"
import { OAuthProvider, OAuthProviderStore } from "../../src/server/index.js"

const start = (reuse: Duration.DurationInput | undefined) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const provider = yield* OAuthProvider.make({
      issuer: HttpServer.formatAddress(server.address),
      ...(reuse === undefined ? {} : { refreshTokenReuseInterval: reuse })
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    yield* server.serve(provider.router)
    const client = yield* provider.registerClient({ clientId: "c", tokenEndpointAuthMethod: "none" })
    const issued = yield* provider.issueToken({ clientId: client.clientId, subject: "u", refreshToken: true })
    return { provider, refreshToken: Redacted.value(issued.refreshToken!) }
  })

const refresh = (provider: OAuthProvider.OAuthProvider, refreshToken: string) =>
  Effect.promise(async () => {
    const response = await fetch(provider.endpoints.token, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "c" })
    })
    return { status: response.status, body: (await response.json()) as Record<string, string> }
  })

describe("OAuthProvider refresh token reuse interval", () => {
  it.scopedLive("within the interval a second use of the same refresh token succeeds and the grant lives on", () =>
    Effect.gen(function*() {
      const { provider, refreshToken } = yield* start("5 seconds")
      const [a, b] = yield* Effect.all([refresh(provider, refreshToken), refresh(provider, refreshToken)], {
        concurrency: "unbounded"
      })
      expect([a.status, b.status]).toEqual([200, 200])
      // Both new refresh tokens still work: nothing was revoked.
      expect((yield* refresh(provider, a.body["refresh_token"]!)).status).toBe(200)
      expect((yield* refresh(provider, b.body["refresh_token"]!)).status).toBe(200)
    }))

  it.scopedLive("without an interval (the default) reuse revokes the whole grant", () =>
    Effect.gen(function*() {
      const { provider, refreshToken } = yield* start(undefined)
      const first = yield* refresh(provider, refreshToken)
      const again = yield* refresh(provider, refreshToken)
      expect(first.status).toBe(200)
      expect(again).toMatchObject({ status: 400, body: { error: "invalid_grant" } })
      expect((yield* refresh(provider, first.body["refresh_token"]!)).status).toBe(400)
    }))

  it.scopedLive("after the interval, reuse revokes the grant", () =>
    Effect.gen(function*() {
      const { provider, refreshToken } = yield* start("200 millis")
      const first = yield* refresh(provider, refreshToken)
      yield* Effect.sleep("400 millis")
      const again = yield* refresh(provider, refreshToken)
      expect(again.body["error"]).toBe("invalid_grant")
      expect((yield* refresh(provider, first.body["refresh_token"]!)).status).toBe(400)
    }))
})
