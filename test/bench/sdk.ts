/**
 * This library's MCP client against the official SDK's (`@modelcontextprotocol/sdk` `Client` over
 * `StreamableHTTPClientTransport` with an `OAuthClientProvider`), in the same run, against the
 * same loopback servers (the embedded authorization server and an MCP endpoint with an `add`
 * tool on one origin), arms interleaved so that drift affects them alike. Ratios, not times.
 *
 * - sdk_latency_ratio: a signed-in `tools/call`, ours ÷ SDK, interleaved call by call in rounds
 *   in random order (order.ts): the median of the per-round median ratios; `null_ratio` is a second SDK
 *   client ÷ the first (the noise).
 * - cold_wall_ratio: a cold sign-in (discovery, registration, authorization, token) plus the
 *   first call, wall time, ours ÷ SDK: the median of the per-round ratios over interleaved
 *   rounds in random order (order.ts);
 *   `null_ratio` is a second SDK arm ÷ the first; `with_layers_ratio` is ours with the storage
 *   and authorizer built as a merged `Layer` rather than provided as services.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Authorizer from "../../src/Authorizer.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as TestStorage from "../../src/TestStorage.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { protectedAddServer } from "../fixtures/effectCost.js"
import { connectSdkClient, SdkOAuthProvider } from "../fixtures/SdkOAuthClient.js"
import { seeded, shuffled } from "./order.js"
import { median } from "./stats.js"

const startServers = Effect.map(protectedAddServer, (url) => ({ mcpUrl: url.href }))

/** The official SDK client, signed in from nothing (the SDK's own two-step flow). */
const sdkConnect = (mcpUrl: string): Promise<Client> =>
  connectSdkClient(mcpUrl, new SdkOAuthProvider(), { name: "sdk-bench" })

/**
 * This library's client, signed in from nothing (fresh storage, headless authorizer), over the
 * process's one HTTP client — as the SDK arm uses the process's one `fetch` (undici's global
 * dispatcher), so that neither arm gets connections the other has to open anew. The storage and
 * authorizer are made and provided as services, as the SDK arm constructs its provider object.
 */
const oursConnect = (mcpUrl: string, http: Context.Context<HttpClient.HttpClient>) =>
  Effect.gen(function*() {
    const [storage] = yield* TestStorage.make()
    const authorizer = yield* Effect.provide(Authorizer.makeHeadless(), http)
    return yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["mcp"] } } }).pipe(
      Effect.provideService(TokenStorage.TokenStorage, storage),
      Effect.provideService(Authorizer.Authorizer, authorizer),
      Effect.provide(http)
    )
  })

/**
 * The same with the storage and authorizer built as a merged `Layer` (each memoized layer costs
 * a scope, a deferred and a semaphore; `mergeAll` builds them in parallel fibers).
 */
const oursConnectLayers = (mcpUrl: string, http: Context.Context<HttpClient.HttpClient>) =>
  Effect.gen(function*() {
    // Built into the caller's scope: the storage and authorizer must outlive the connect.
    const deps = yield* Layer.build(
      Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()).pipe(Layer.provideMerge(Layer.succeedContext(http)))
    )
    return yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["mcp"] } } }).pipe(
      Effect.provide(deps)
    )
  })

const round3 = (x: number) => Number(x.toFixed(3))

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const value = yield* effect
    return [performance.now() - start, value] as const
  })

/** sdk_latency_ratio and cold_wall_ratio, as JSON-line objects. */
export const sdkComparison: Effect.Effect<Array<Record<string, unknown>>> = Effect.gen(function*() {
  const { mcpUrl } = yield* startServers
  const lines: Array<Record<string, unknown>> = []
  const http = yield* Layer.build(NodeHttpClient.layerUndici)

  // Cold sign-in + first call, interleaved rounds: ours, the SDK, and the SDK again (the null
  // arm, showing the noise), in a random order every round.
  const cold = { ours: [] as Array<number>, layers: [] as Array<number>, sdk: [] as Array<number>, sdk2: [] as Array<number> }
  const coldOurs = (connect: typeof oursConnect) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const [ms] = yield* timed(
        Effect.flatMap(connect(mcpUrl, http), (c) => c.callTool("add", { a: 1, b: 2 })).pipe(Scope.extend(scope))
      )
      yield* Scope.close(scope, Exit.void)
      return ms
    })
  const coldSdk = Effect.map(
    timed(Effect.promise(async () => {
      const client = await sdkConnect(mcpUrl)
      await client.callTool({ name: "add", arguments: { a: 1, b: 2 } })
      await client.close()
    })),
    ([ms]) => ms
  )
  // A cold flow is 12-50 ms of wall time, one sample per arm and round (a ratio of two such
  // samples spreads by ±30 %), its first rounds slower while the JIT warms every arm: 10 rounds
  // of warm-up, then 300 measured (a null arm over 40 rounds after 3 read 0.87-1.50; over 80,
  // 0.94-1.25; over 300 in random order, 0.98-1.02).
  const warmUp = 10
  const rounds = warmUp + 300
  const perRound = { ours: [] as Array<number>, layers: [] as Array<number>, sdk2: [] as Array<number> }
  const random = seeded(13)
  for (let i = 0; i < rounds; i++) {
    const arms = [
      Effect.map(coldOurs(oursConnect), (ms) => ["ours", ms] as const),
      Effect.map(coldSdk, (ms) => ["sdk", ms] as const),
      Effect.map(coldOurs(oursConnectLayers), (ms) => ["layers", ms] as const),
      Effect.map(coldSdk, (ms) => ["sdk2", ms] as const)
    ]
    for (const k of shuffled(arms.length, random)) {
      const [arm, ms] = yield* arms[k]!
      if (i >= warmUp) cold[arm].push(ms)
    }
    if (i >= warmUp) {
      const sdk = cold.sdk[cold.sdk.length - 1]!
      perRound.ours.push(cold.ours[cold.ours.length - 1]! / sdk)
      perRound.layers.push(cold.layers[cold.layers.length - 1]! / sdk)
      perRound.sdk2.push(cold.sdk2[cold.sdk2.length - 1]! / sdk)
    }
  }
  lines.push({
    metric: "cold_wall_ratio",
    value: round3(median(perRound.ours)),
    goal: 1,
    null_ratio: round3(median(perRound.sdk2)),
    with_layers_ratio: round3(median(perRound.layers)),
    rounds: cold.ours.length,
    median_ours_ms: round3(median(cold.ours)),
    median_sdk_ms: round3(median(cold.sdk))
  })

  // Signed-in calls: ours, SDK, and a second SDK client (the null arm), interleaved blocks.
  const scope = yield* Scope.make()
  const ours = yield* Scope.extend(oursConnect(mcpUrl, http), scope)
  const sdk = yield* Effect.promise(() => sdkConnect(mcpUrl))
  const sdk2 = yield* Effect.promise(() => sdkConnect(mcpUrl))
  const callOurs = ours.callTool("add", { a: 1, b: 2 })
  const callSdk = (c: Client) => Effect.promise(() => c.callTool({ name: "add", arguments: { a: 1, b: 2 } }))
  // Interleaved call by call, in random order, in rounds (blocks of 50 calls per arm let a GC
  // pause or a neighbour's burst land on one arm: the null arm then read 0.90-1.09).
  const callsPerRound = 50
  const callRounds = 30
  const timeOne = (call: Effect.Effect<unknown, unknown>, into: Array<number>) =>
    Effect.map(Effect.orDie(timed(call)), ([ms]) => void into.push(ms))
  for (let w = 0; w < 150; w++) {
    yield* timeOne(callOurs, [])
    yield* timeOne(callSdk(sdk), [])
    yield* timeOne(callSdk(sdk2), [])
  }
  const ratios: Array<number> = []
  const nulls: Array<number> = []
  const all = { ours: [] as Array<number>, sdk: [] as Array<number> }
  for (let r = 0; r < callRounds; r++) {
    const o: Array<number> = []
    const s: Array<number> = []
    const n: Array<number> = []
    const arms = [timeOne(callOurs, o), timeOne(callSdk(sdk), s), timeOne(callSdk(sdk2), n)]
    for (let j = 0; j < callsPerRound; j++) {
      for (const k of shuffled(arms.length, random)) yield* arms[k]!
    }
    ratios.push(median(o) / median(s))
    nulls.push(median(n) / median(s))
    all.ours.push(...o)
    all.sdk.push(...s)
  }
  lines.push({
    metric: "sdk_latency_ratio",
    value: round3(median(ratios)),
    goal: 1,
    null_ratio: round3(median(nulls)),
    rounds: callRounds,
    calls_per_round: callsPerRound,
    median_ours_ms: round3(median(all.ours)),
    median_sdk_ms: round3(median(all.sdk))
  })
  yield* Effect.promise(() => Promise.all([sdk.close(), sdk2.close()]))
  yield* Scope.close(scope, Exit.void)
  return lines
}).pipe(Effect.scoped, Effect.orDie)
