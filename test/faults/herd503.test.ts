/**
 * Fault: 1000 concurrent calls need a refresh while the token endpoint answers 503
 * `temporarily_unavailable` with `Retry-After: 1` to its first 3 requests. What must hold: one
 * refresh (single-flight) retried within the bounded policy (3 retries) eventually succeeds;
 * every call ends OK or with a typed error; no sign-in; no more token requests than 1 + 3.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"

const HERD = 1000

const callMcp = Effect.fn("callMcp")(function*(url: string) {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "tools/list" }) })
  return response.status
}, Effect.scoped)

describe("fault: a herd meets a token endpoint that is briefly unavailable", () => {
  it.scopedLive(`${HERD} calls, 3 × 503 with Retry-After: one refresh succeeds, every call OK or typed, bounded retries`, () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ accessTokenTtlSeconds: 1 })
      const layer = HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      yield* Effect.gen(function*() {
        expect(yield* callMcp(server.mcpUrl)).toBe(200) // signed in
        yield* server.setFaults({ accessTokenTtlSeconds: 3600 })
        yield* Effect.sleep("1100 millis") // the access token has expired
        yield* server.resetCounters
        yield* server.setFaults({ token503Count: 3, tokenRetryAfter: "1" })
        const started = Date.now()
        const results = yield* Effect.all(
          Array.from({ length: HERD }, () =>
            callMcp(server.mcpUrl).pipe(
              Effect.mapError((e) => Option.isSome(HttpAuth.oauthErrorOf(e)) ? "typed" : `untyped: ${e.message}`),
              Effect.either
            )),
          { concurrency: "unbounded" }
        )
        const took = Date.now() - started
        const ok = results.filter((r) => Either.isRight(r) && r.right === 200).length
        const typed = results.filter((r) => Either.isLeft(r) && r.left === "typed").length
        expect(ok + typed).toBe(HERD) // every call OK or a typed error; no other status, no untyped failure
        expect(ok).toBe(HERD) // and with 3 retries allowed, the 4th attempt succeeds for everyone
        const refreshes = (yield* server.requestsTo("token")).filter((r) => r.form["grant_type"] === "refresh_token")
        expect(refreshes.length).toBe(4) // 3 refused + 1 success, shared by the whole herd
        expect(new Set(refreshes.map((r) => r.form["refresh_token"])).size).toBe(1)
        expect(yield* server.count("authorize")).toBe(0)
        expect(took).toBeGreaterThanOrEqual(2_900) // Retry-After honoured between attempts
      }).pipe(Effect.provide(layer))
    }))
})
