/**
 * One process of the soak (test/bench/soak.ts): steady calls through `OAuthLayer` sharing a file
 * token store (and the lock it brings) with the other processes, for SOAK_SECONDS; prints one
 * JSON line: calls, failures, RSS and open file descriptors after warm-up and at the end.
 * Environment: SOAK_DIR, SOAK_MCP_URL, SOAK_SECONDS, SOAK_INTERVAL_MS.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { readdirSync } from "node:fs"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as TokenStorage from "../../src/TokenStorage.js"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}
const mcpUrl = env("SOAK_MCP_URL")
const seconds = Number(env("SOAK_SECONDS"))
const interval = Number(process.env["SOAK_INTERVAL_MS"] ?? "50")

const sample = () => ({ rssMb: process.memoryUsage().rss / 1_048_576, fds: readdirSync("/proc/self/fd").length })

const call = Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.post(mcpUrl, { body: HttpBody.unsafeJson({ jsonrpc: "2.0", id: 1, method: "ping" }) })
  yield* response.arrayBuffer
  return response.status
}).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  let calls = 0
  let failed = 0
  const errors = new Map<string, number>()
  const once = Effect.gen(function*() {
    calls++
    const status = yield* Effect.either(call)
    if (status._tag === "Left" || status.right !== 200) {
      failed++
      const what = status._tag === "Left" ? status.left.message.slice(0, 160) : `HTTP ${status.right}`
      errors.set(what, (errors.get(what) ?? 0) + 1)
    }
  })
  const began = Date.now()
  // warm-up: 20 calls, then the baseline
  for (let i = 0; i < 20; i++) yield* once
  if (typeof globalThis.gc === "function") globalThis.gc()
  const start = sample()
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    yield* once
    yield* Effect.sleep(interval)
  }
  if (typeof globalThis.gc === "function") globalThis.gc()
  const end = sample()
  console.log(JSON.stringify({ calls, failed, errors: Object.fromEntries(errors), start, end, began, ended: Date.now() }))
})

void Effect.runPromise(
  program.pipe(
    Effect.provide(
      HttpAuth.OAuthLayer({ mcpUrl }).pipe(
        Layer.provide(Layer.merge(TokenStorage.layerFileSystemNode(env("SOAK_DIR")), Authorizer.layerHeadless())),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )
).then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
