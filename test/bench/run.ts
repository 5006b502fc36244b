/**
 * Benchmarks, printed as JSON lines (`npm run bench`). Everything runs in one process on
 * loopback; compare the ratios measured in one run, not absolute times.
 *
 * - overhead_ratio: median latency through the OAuthLayer client with a valid token ÷ the same
 *   requests through the bare client carrying the same token (goal ≤ 1.01), and
 *   overhead_floor_ratio, the same for a one-line mapRequest that reads the in-memory token (no
 *   goal: the least any token middleware does, the floor of this measurement), and
 *   overhead_cpu_us, the microseconds the middleware adds per request over an in-memory client
 *   (test/bench/overheadCpu.ts), with its share of a loopback request.
 * - herd_token_requests: token-endpoint hits when 1000 concurrent requests start with an expired
 *   token (goal 1).
 * - cold_flow_round_trips: HTTP requests of a first sign-in with dynamic registration, counting
 *   the authorization GET and both tries of the MCP request (goal 7).
 * - herd_requests: every HTTP request when N concurrent calls carry a token the server no longer
 *   accepts (signed in before): N 401s, one refresh, N retries (goal 2N + 1).
 * - stale_client_requests: the server forgot the client and refuses the token: 401, refresh
 *   (invalid_client), registration, authorization, token, retry (goal 6).
 * - warm_restart_requests: a new process whose stored token has expired: the refresh and the
 *   call, with the discovery stored with the token (goal 2 HTTP requests; an MCP session adds
 *   its initialize and initialized).
 * - proactive_refreshes_per_lifetime: 60 s tokens, a call every 5 s for 10 lifetimes (TestClock):
 *   refreshes ÷ lifetimes (goal 1), with the 401s after the sign-in (goal 0).
 * - sdk_latency_ratio, cold_wall_ratio: against the official SDK client (test/bench/sdk.ts).
 * - plus the storage benchmarks of test/bench/storage.ts and the proxy benchmarks of
 *   test/bench/proxy.ts (proxy_overhead_ratio, proxy_sign_ins, proxy_herd_refreshes).
 * - proxy_ready_ratio and proxy_rss_ratio (part "proxy-start", test/bench/proxyStart.ts): the
 *   shipped proxy bin against mcp-remote, both with a stored valid token (goal ≤ 1.0 each).
 * - the cold-start figures of test/bench/startup.ts (cli_start_ratio, import_ms / import_rss_mb of
 *   each entry beside the SDK client and the floor, effect/Schema + @effect/platform's HttpClient;
 *   they measure `dist/`, so `npm run bench` builds first).
 * - the soak of test/bench/soak.ts (SOAK_SECONDS, default 600, 20 when CI=true; 0 skips it).
 */
import { HttpBody, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Fiber, Layer, Logger, Option, Redacted, TestClock, TestContext } from "effect"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as OAuth from "../../src/OAuth.js"
import { StoredToken } from "../../src/Schemas.js"
import * as TestStorage from "../../src/TestStorage.js"
import type { TokenStorage } from "../../src/TokenStorage.js"
import { seedSignedIn, startTestServer, type TestServer } from "../fixtures/TestAuthServer.js"
import { overheadCpu } from "./overheadCpu.js"
import { benchProxy } from "./proxy.js"
import { benchProxyStart } from "./proxyStart.js"
import { soak } from "./soak.js"
import { sdkComparison } from "./sdk.js"
import { median } from "./stats.js"

const emit = (line: Record<string, unknown>) => Effect.sync(() => console.log(JSON.stringify(line)))

/** An HttpClient from a layer that stays alive for the enclosing scope. */
const clientFrom = <E>(layer: Layer.Layer<HttpClient.HttpClient, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, HttpClient.HttpClient))

const post = (client: HttpClient.HttpClient, url: string) =>
  client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) }).pipe(
    Effect.flatMap((r) => r.arrayBuffer),
    Effect.scoped
  )

const seeded = seedSignedIn

const oauthLayer = (server: TestServer, storage: Layer.Layer<TestStorage.TestStorage | TokenStorage>) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
    Layer.provide(storage),
    Layer.provide(Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

/**
 * Median latencies of `arms` on `url`, interleaved request by request in rotating order (blocks
 * of 100 requests per arm let a GC pause or a neighbour's burst land on one arm: a null arm then
 * spread 0.95-1.06), after warming each arm: per round, each arm's median ÷ the first arm's.
 * The order stays cyclic here, unlike order.ts: its null arm shows no predecessor bias
 * (0.99-1.00), and a random order charges any client whose code differs from the bare one more
 * (overhead_floor_ratio 1.023-1.033 instead of 1.011-1.021), as unpredictable switching between
 * two clients' code would, which one app's one client does not do.
 */
const interleaved = (url: string, arms: ReadonlyArray<HttpClient.HttpClient>) =>
  Effect.gen(function*() {
    // 90 rounds: over 30, three runs of the same code spread by ±1 % (1.018-1.032); over 90,
    // by ±0.2 %. (Before the fixture's request log became a Chunk, a run this long was
    // quadratic: every request copied the whole log.)
    const rounds = 90
    const perRound = 100
    const timeOne = (c: HttpClient.HttpClient, into: Array<number>) =>
      Effect.gen(function*() {
        const start = performance.now()
        yield* post(c, url)
        into.push(performance.now() - start)
      })
    for (const arm of arms) yield* Effect.repeatN(timeOne(arm, []), 200)
    const ratios = arms.map((): Array<number> => [])
    const roundMedians = arms.map((): Array<number> => [])
    const all = arms.map((): Array<number> => [])
    for (let i = 0; i < rounds; i++) {
      const times = arms.map((): Array<number> => [])
      const runs = arms.map((arm, k) => timeOne(arm, times[k]!))
      for (let j = 0; j < perRound; j++) {
        for (let k = 0; k < runs.length; k++) yield* runs[(i + j + k) % runs.length]!
      }
      times.forEach((t, k) => {
        ratios[k]!.push(median(t) / median(times[0]!))
        roundMedians[k]!.push(median(t))
        all[k]!.push(...t)
      })
    }
    /** The median of per-round ratios of arm `a` to arm `b`. */
    const ratioOf = (a: number, b: number) => median(roundMedians[a]!.map((t, i) => t / roundMedians[b]![i]!))
    return { ratios: ratios.map(median), ratioOf, medians: all.map(median), requests: all[0]!.length }
  })

const overheadRatio = Effect.gen(function*() {
  const server = yield* startTestServer()
  const { accessToken, client, token } = yield* seeded(server, { expired: false })
  const bare = yield* clientFrom(NodeHttpClient.layerUndici)
  const bareWithToken = HttpClient.mapRequest(bare, HttpClientRequest.bearerToken(Redacted.value(accessToken)))
  const layer = yield* Layer.build(oauthLayer(server, TestStorage.layer({ tokens: token, client })))
  const authed = Context.get(layer, HttpClient.HttpClient)
  const oauth = Context.get(layer, OAuth.OAuth)
  // The bare client with tracing off, as OAuthLayer runs its requests under Effect's own tracer
  // (which records nothing): OAuthLayer ÷ this arm is the like-for-like cost of the middleware.
  const bareUntraced = HttpClient.withTracerDisabledWhen(bareWithToken, () => true)
  // The null arm is the bare client again: its ratio to the first shows the noise.
  const measured = yield* interleaved(server.mcpUrl, [bareWithToken, authed, bareWithToken, bareUntraced])
  yield* emit({
    metric: "overhead_ratio",
    value: Number(measured.ratios[1]!.toFixed(3)),
    goal: 1.01,
    null_ratio: Number(measured.ratios[2]!.toFixed(3)),
    // the bare client with tracing off ÷ the bare client, and OAuthLayer ÷ that untraced client
    bare_untraced_ratio: Number(measured.ratios[3]!.toFixed(3)),
    vs_untraced_ratio: Number(measured.ratioOf(1, 3).toFixed(3)),
    requests: measured.requests,
    median_bare_ms: Number(measured.medians[0]!.toFixed(3)),
    median_oauth_ms: Number(measured.medians[1]!.toFixed(3))
  })
  // The least any token middleware does: one synchronous request mapping that reads the token in
  // memory (no clock service, no refresh, no answer handling). Its ratio is the floor this
  // method can read for a client that differs from the bare one at all.
  const floor = HttpClient.mapRequest(bare, (request) =>
    Option.match(oauth.cachedToken(Date.now()), {
      onNone: () => request,
      onSome: (t) => HttpClientRequest.bearerToken(request, Redacted.value(t.accessToken))
    }))
  if (Option.isNone(oauth.cachedToken(Date.now()))) {
    return yield* Effect.dieMessage("overhead_floor_ratio: no token in memory, the floor arm would send none")
  }
  const floorMeasured = yield* interleaved(server.mcpUrl, [bareWithToken, floor, bareWithToken])
  yield* emit({
    metric: "overhead_floor_ratio",
    value: Number(floorMeasured.ratios[1]!.toFixed(3)),
    goal: null,
    means: "a one-line mapRequest reading the in-memory token ÷ the bare client: context for overhead_ratio",
    null_ratio: Number(floorMeasured.ratios[2]!.toFixed(3)),
    requests: floorMeasured.requests
  })
  // The same middleware without a network: what it costs itself, against the loopback request.
  const cpu = yield* overheadCpu(server.mcpUrl, { accessToken, token, client })
  yield* emit({
    metric: "overhead_cpu_us",
    value: Number(cpu.overheadUs.toFixed(2)),
    goal: null,
    means: "microseconds per request the OAuthLayer client adds over the bare client, both over an " +
      "in-memory client answering at once (negative: it costs less, its requests make no span under " +
      "Effect's own tracer); vs_untraced_us: over the bare client with tracing off, like for like",
    floor_cpu_us: Number(cpu.floorUs.toFixed(2)),
    // the bare client with tracing off over the bare client, and OAuthLayer over that client
    bare_untraced_us: Number(cpu.untracedUs.toFixed(2)),
    vs_untraced_us: Number(cpu.vsUntracedUs.toFixed(2)),
    bare_in_memory_us: Number(cpu.bareUs.toFixed(2)),
    share_of_loopback_request: Number((cpu.overheadUs / (measured.medians[0]! * 1000)).toFixed(4)),
    requests: cpu.requests
  })
}).pipe(Effect.scoped)

const herd = Effect.gen(function*() {
  const server = yield* startTestServer()
  const { client, token } = yield* seeded(server, { expired: true })
  const concurrency = 1000
  const authed = yield* clientFrom(oauthLayer(server, TestStorage.layer({ tokens: token, client })))
  const start = performance.now()
  yield* Effect.forEach(Array.from({ length: concurrency }), () => post(authed, server.mcpUrl), {
    concurrency: "unbounded",
    discard: true
  })
  yield* emit({
    metric: "herd_token_requests",
    concurrency,
    value: yield* server.count("token"),
    goal: 1,
    elapsed_ms: Math.round(performance.now() - start)
  })
}).pipe(Effect.scoped)

const coldFlow = Effect.gen(function*() {
  const server = yield* startTestServer()
  const authed = yield* clientFrom(oauthLayer(server, TestStorage.layer()))
  const start = performance.now()
  yield* post(authed, server.mcpUrl)
  const elapsed = performance.now() - start
  const counts = yield* server.counts
  yield* emit({
    metric: "cold_flow_round_trips",
    value: (yield* server.requests).length,
    goal: 7,
    breakdown: counts,
    elapsed_ms: Math.round(elapsed)
  })
}).pipe(Effect.scoped)

/** Signs in through `authed` (a cold flow) and returns the stored token. */
const signIn = (server: TestServer, authed: HttpClient.HttpClient, storage: TestStorage.TestStorage) =>
  Effect.gen(function*() {
    yield* post(authed, server.mcpUrl)
    const tokens = yield* storage.tokens
    return [...tokens.values()][0]!
  })

const oauthLayerWithStorage = (server: TestServer) =>
  Effect.gen(function*() {
    const storageLayer = TestStorage.layer()
    const context = yield* Layer.build(
      HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
        Layer.provideMerge(storageLayer),
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
    return { authed: Context.get(context, HttpClient.HttpClient), storage: Context.get(context, TestStorage.TestStorage) }
  })

const herdRequests = Effect.gen(function*() {
  const server = yield* startTestServer()
  const { authed, storage } = yield* oauthLayerWithStorage(server)
  const token = yield* signIn(server, authed, storage)
  yield* server.provider.revokeToken(Redacted.value(token.accessToken))
  yield* server.resetCounters
  const n = 1000
  yield* Effect.forEach(Array.from({ length: n }), () => post(authed, server.mcpUrl), {
    concurrency: "unbounded",
    discard: true
  })
  yield* emit({
    metric: "herd_requests",
    n,
    value: (yield* server.requests).length,
    goal: 2 * n + 1,
    breakdown: yield* server.counts
  })
}).pipe(Effect.scoped)

const staleClientRequests = Effect.gen(function*() {
  const server = yield* startTestServer()
  const { authed, storage } = yield* oauthLayerWithStorage(server)
  const token = yield* signIn(server, authed, storage)
  yield* server.forgetClients
  yield* server.provider.revokeToken(Redacted.value(token.accessToken))
  yield* server.resetCounters
  yield* post(authed, server.mcpUrl)
  yield* emit({
    metric: "stale_client_requests",
    value: (yield* server.requests).length,
    goal: 6,
    breakdown: yield* server.counts
  })
}).pipe(Effect.scoped)

const warmRestartRequests = Effect.gen(function*() {
  const server = yield* startTestServer()
  const first = yield* oauthLayerWithStorage(server)
  const token = yield* signIn(server, first.authed, first.storage)
  const client = [...(yield* first.storage.clients).values()][0]!
  // A new process: its own layer, seeded with what the first stored, the token now expired.
  const expired = new StoredToken({ ...token, expiresAt: Date.now() - 1000 })
  yield* server.resetCounters
  const second = yield* clientFrom(oauthLayer(server, TestStorage.layer({ tokens: expired, client })))
  yield* post(second, server.mcpUrl)
  yield* emit({
    metric: "warm_restart_requests",
    value: (yield* server.requests).length,
    goal: 2,
    breakdown: yield* server.counts
  })
}).pipe(Effect.scoped)

/**
 * Runs a section in a fiber of its own, awaited rather than joined: `Effect.provide(TestContext)`
 * leaves the TestClock as the fiber's default clock afterwards, and a join would carry it into
 * the sections after this one (they then read a clock that stands still).
 */
const isolated = <A, E>(section: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.fork(section).pipe(Effect.flatMap(Fiber.await), Effect.flatten)

const proactiveRefreshes = Effect.gen(function*() {
  const server = yield* startTestServer({ accessTokenTtlSeconds: 60 })
  const authed = yield* clientFrom(oauthLayer(server, TestStorage.layer()))
  yield* post(authed, server.mcpUrl)
  const lifetimes = 10
  const calls = lifetimes * 12
  for (let i = 0; i < calls; i++) {
    yield* TestClock.adjust("5 seconds")
    yield* post(authed, server.mcpUrl)
  }
  const refreshes = (yield* server.requestsTo("token")).filter((r) => r.form["grant_type"] === "refresh_token")
  yield* emit({
    metric: "proactive_refreshes_per_lifetime",
    value: refreshes.length / lifetimes,
    goal: 1,
    token_lifetime_s: 60,
    lifetimes,
    unauthorized_after_sign_in: (yield* server.count("resource")) - 2 - calls,
    unauthorized_goal: 0
  })
}).pipe(Effect.scoped, Effect.provide(TestContext.TestContext), isolated)

const here = dirname(fileURLToPath(import.meta.url))

/** Cold start of the shipped CLI and import cost of each entry point (test/bench/startup.ts). */
const startupBenchmarks = Effect.promise(async () => {
  const mod: typeof import("./startup.js") = await import(join(here, "startup.ts"))
  return [...(await mod.benchCliStart()), ...(await mod.benchImports())]
}).pipe(Effect.flatMap((lines) => Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true })))

const storageBenchmarks = Effect.promise(async () => {
  if (!existsSync(join(here, "storage.ts"))) return []
  const mod: {
    readonly benchCrossProcessRefreshes?: () => Promise<object>
    readonly benchFileStore10k?: () => Promise<Array<object>>
  } = await import(join(here, "storage.ts"))
  const lines: Array<object> = []
  if (mod.benchFileStore10k !== undefined) lines.push(...(await mod.benchFileStore10k()))
  if (mod.benchCrossProcessRefreshes !== undefined) lines.push(await mod.benchCrossProcessRefreshes())
  return lines
}).pipe(Effect.flatMap((lines) => Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true })))

Effect.runPromise(
  Effect.gen(function*() {
    const only = process.argv.slice(2)
    const want = (name: string) => only.length === 0 || only.includes(name)
    if (want("counts")) {
      yield* coldFlow
      yield* herd
      yield* herdRequests
      yield* staleClientRequests
      yield* warmRestartRequests
      yield* proactiveRefreshes
    }
    if (want("overhead")) yield* overheadRatio
    if (want("sdk")) yield* Effect.flatMap(sdkComparison, (lines) => Effect.forEach(lines, emit, { discard: true }))
    if (want("storage")) yield* storageBenchmarks
    if (want("proxy")) {
      yield* Effect.flatMap(Effect.promise(benchProxy), (lines) =>
        Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true }))
    }
    if (want("proxy-start")) {
      yield* Effect.flatMap(Effect.promise(benchProxyStart), (lines) =>
        Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true }))
    }
    if (want("startup")) yield* startupBenchmarks
    if (want("soak") && process.env["SOAK_SECONDS"] !== "0") yield* soak(emit)
    // Logs (a refresh that failed in stale_client_requests, say) go to stderr: stdout is JSON lines.
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))))
).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
