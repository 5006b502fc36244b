/**
 * overhead_cpu_us: the CPU time the OAuthLayer client adds to one request with a valid token,
 * measured without a network: every arm sends to an in-memory HTTP client that answers at once
 * with one canned response, so a request costs a few microseconds and the middleware's own steps
 * are what differs. Arms (interleaved in blocks, the order rotating every round): the bare client
 * carrying the token, the OAuthLayer client over the same canned client, the floor (a one-line
 * mapRequest reading the in-memory token, as in overhead_floor_ratio), and the bare client with
 * tracing off (as OAuthLayer runs its requests under Effect's own tracer, which records nothing).
 * Values are medians of per-round differences, in microseconds per request.
 */
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as OAuth from "../../src/OAuth.js"
import type { ClientInformation, StoredToken } from "../../src/Schemas.js"
import * as TestStorage from "../../src/TestStorage.js"
import { median } from "./stats.js"

/** An HTTP client that answers every request at once with the same 200 (its body never read). */
const canned = (): HttpClient.HttpClient => {
  const answer = new Response("{}", { status: 200, headers: { "content-type": "application/json" } })
  return HttpClient.make((request) => Effect.succeed(HttpClientResponse.fromWeb(request, answer)))
}

/** Mean microseconds per request of `n` sequential requests through `client`. */
const perRequest = (client: HttpClient.HttpClient, url: string, n: number) =>
  Effect.gen(function*() {
    const request = HttpClientRequest.post(url)
    const start = performance.now()
    for (let i = 0; i < n; i++) yield* client.execute(request)
    return ((performance.now() - start) * 1000) / n
  })

/** The CPU cost per request of the OAuthLayer client and of the floor, over the bare client. */
export const overheadCpu = (
  mcpUrl: string,
  seeded: { readonly accessToken: Redacted.Redacted<string>; readonly token: StoredToken; readonly client: ClientInformation }
) =>
  Effect.gen(function*() {
    const inner = canned()
    const bare = HttpClient.mapRequest(inner, HttpClientRequest.bearerToken(Redacted.value(seeded.accessToken)))
    const layer = yield* Layer.build(
      HttpAuth.OAuthLayer({ mcpUrl }).pipe(
        Layer.provide(TestStorage.layer({ tokens: seeded.token, client: seeded.client })),
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(Layer.succeed(HttpClient.HttpClient, inner))
      )
    )
    const authed = Context.get(layer, HttpClient.HttpClient)
    const oauth = Context.get(layer, OAuth.OAuth)
    // the first request loads the stored token into memory
    yield* perRequest(authed, mcpUrl, 1)
    if (Option.isNone(oauth.cachedToken(Date.now()))) {
      return yield* Effect.dieMessage("overhead_cpu_us: no token in memory after the first request")
    }
    const floor = HttpClient.mapRequest(inner, (request) =>
      Option.match(oauth.cachedToken(Date.now()), {
        onNone: () => request,
        onSome: (t) => HttpClientRequest.bearerToken(request, Redacted.value(t.accessToken))
      }))
    // the bare client with tracing off (OAuthLayer turns it off under Effect's own tracer)
    const bareUntraced = HttpClient.withTracerDisabledWhen(bare, () => true)
    const arms = [bare, authed, floor, bareUntraced]
    for (const arm of arms) yield* perRequest(arm, mcpUrl, 20_000)
    const rounds = 200
    const block = 1_000
    const authedDelta: Array<number> = []
    const floorDelta: Array<number> = []
    const bareTimes: Array<number> = []
    const untracedDelta: Array<number> = []
    const vsUntraced: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      const times: Array<number> = [0, 0, 0, 0]
      for (let k = 0; k < arms.length; k++) {
        const arm = (r + k) % arms.length
        times[arm] = yield* perRequest(arms[arm]!, mcpUrl, block)
      }
      bareTimes.push(times[0]!)
      authedDelta.push(times[1]! - times[0]!)
      floorDelta.push(times[2]! - times[0]!)
      untracedDelta.push(times[3]! - times[0]!)
      vsUntraced.push(times[1]! - times[3]!)
    }
    return {
      overheadUs: median(authedDelta),
      floorUs: median(floorDelta),
      untracedUs: median(untracedDelta),
      vsUntracedUs: median(vsUntraced),
      bareUs: median(bareTimes),
      requests: rounds * block
    }
  }).pipe(Effect.scoped)
