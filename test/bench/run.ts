/**
 * Benchmarks, printed as JSON lines (`npm run bench`). Everything runs in one process on
 * loopback; compare the ratios measured in one run, not absolute times.
 *
 * - overhead_ratio: median latency through the OAuthLayer client with a valid token ÷ the same
 *   requests through the bare client carrying the same token (goal ≤ 1.10).
 * - herd_token_requests: token-endpoint hits when 1000 concurrent requests start with an expired
 *   token (goal 1).
 * - cold_flow_round_trips: HTTP requests of a first sign-in with dynamic registration, counting
 *   the authorization GET and both tries of the MCP request (goal 7).
 * - plus the storage benchmarks of test/bench/storage.ts, the proxy benchmarks of
 *   test/bench/proxy.ts (proxy_overhead_ratio, proxy_sign_ins, proxy_herd_refreshes) and the
 *   cold-start ones of test/bench/startup.ts (cli_start_ratio, import_ms / import_rss_mb; they
 *   measure `dist/`).
 */
import { HttpBody, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted } from "effect"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import { ClientInformation, StoredToken } from "../../src/Schemas.js"
import * as TestStorage from "../../src/TestStorage.js"
import type { TokenStorage } from "../../src/TokenStorage.js"
import { startTestServer, type TestServer } from "../fixtures/TestAuthServer.js"
import { benchProxy } from "./proxy.js"

const emit = (line: Record<string, unknown>) => Effect.sync(() => console.log(JSON.stringify(line)))

/** An HttpClient from a layer that stays alive for the enclosing scope. */
const clientFrom = <E>(layer: Layer.Layer<HttpClient.HttpClient, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, HttpClient.HttpClient))

const post = (client: HttpClient.HttpClient, url: string) =>
  client.post(url, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) }).pipe(
    Effect.flatMap((r) => r.arrayBuffer),
    Effect.scoped
  )

const median = (xs: Array<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const seeded = (server: TestServer, options: { readonly expired: boolean }) =>
  Effect.gen(function*() {
    const registered = yield* server.registerClient({
      tokenEndpointAuthMethod: "none",
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    })
    const issued = yield* server.issueToken({ clientId: registered.clientId, refreshToken: true })
    const client = new ClientInformation({
      clientId: registered.clientId,
      tokenEndpointAuthMethod: "none",
      source: "dynamic",
      issuer: server.issuer,
      redirectUris: [Authorizer.DEFAULT_REDIRECT_URI]
    })
    const token = new StoredToken({
      accessToken: issued.accessToken,
      tokenType: "Bearer",
      ...(issued.refreshToken === undefined ? {} : { refreshToken: issued.refreshToken }),
      expiresAt: options.expired ? Date.now() - 1000 : issued.expiresAt,
      scopes: [],
      issuer: server.issuer,
      resource: server.mcpUrl,
      obtainedAt: Date.now()
    })
    return { client, token, accessToken: issued.accessToken }
  })

const oauthLayer = (server: TestServer, storage: Layer.Layer<TestStorage.TestStorage | TokenStorage>) =>
  HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl }).pipe(
    Layer.provide(storage),
    Layer.provide(Authorizer.layerHeadless()),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const overheadRatio = Effect.gen(function*() {
  const server = yield* startTestServer()
  const { accessToken, client, token } = yield* seeded(server, { expired: false })
  const bare = yield* clientFrom(NodeHttpClient.layerUndici)
  const bareWithToken = HttpClient.mapRequest(bare, HttpClientRequest.bearerToken(Redacted.value(accessToken)))
  const authed = yield* clientFrom(oauthLayer(server, TestStorage.layer({ tokens: token, client })))
  const rounds = 20
  const perRound = 100
  const timesBare: Array<number> = []
  const timesAuthed: Array<number> = []
  const timeOne = (c: HttpClient.HttpClient, into: Array<number>) =>
    Effect.gen(function*() {
      const start = performance.now()
      yield* post(c, server.mcpUrl)
      into.push(performance.now() - start)
    })
  // Warm up both paths, then interleave rounds so drift affects both equally.
  yield* Effect.repeatN(timeOne(bareWithToken, []), 200)
  yield* Effect.repeatN(timeOne(authed, []), 200)
  for (let i = 0; i < rounds; i++) {
    yield* Effect.repeatN(timeOne(bareWithToken, timesBare), perRound - 1)
    yield* Effect.repeatN(timeOne(authed, timesAuthed), perRound - 1)
  }
  const bareMedian = median(timesBare)
  const authedMedian = median(timesAuthed)
  yield* emit({
    metric: "overhead_ratio",
    value: Number((authedMedian / bareMedian).toFixed(3)),
    goal: 1.1,
    requests: timesBare.length,
    median_bare_ms: Number(bareMedian.toFixed(3)),
    median_oauth_ms: Number(authedMedian.toFixed(3))
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

const here = dirname(fileURLToPath(import.meta.url))

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

/** Cold start of the shipped CLI and import cost of each entry point (test/bench/startup.ts). */
const startupBenchmarks = Effect.promise(async () => {
  const mod: typeof import("./startup.js") = await import(join(here, "startup.ts"))
  return [...(await mod.benchCliStart()), ...(await mod.benchImports())]
}).pipe(Effect.flatMap((lines) => Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true })))

Effect.runPromise(
  Effect.gen(function*() {
    yield* coldFlow
    yield* herd
    yield* overheadRatio
    yield* storageBenchmarks
    yield* Effect.flatMap(Effect.promise(benchProxy), (lines) =>
      Effect.forEach(lines, (l) => emit(l as Record<string, unknown>), { discard: true }))
    yield* startupBenchmarks
  }).pipe(Effect.provide(Layer.empty))
).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
