/**
 * Fault: the authorization server receives a refresh, rotates the refresh token, and its
 * connection is reset before it answers; then it is unreachable, then back on the same port.
 * What must hold: the call fails with a typed error, the refresh token (which may have been
 * rotated) is presented once — never retried automatically, even once the server is back — and
 * the next call recovers.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Authorizer from "../../src/Authorizer.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import {
  AuthProvider,
  OAuthProvider,
  OAuthProviderStore
} from "../../src/server/index.js"
import * as TestStorage from "../../src/TestStorage.js"
import { pingEndpoint, remoteAuthFor } from "../fixtures/remoteProtected.js"

const listen = NodeHttpServer.make(() => http.createServer(), { port: 0, host: "127.0.0.1" })

/**
 * A node:http front for the authorization server that can stop, start on the same port, and
 * reset the connection of the next refresh after the server behind it has answered it.
 */
const startFront = Effect.acquireRelease(
  Effect.promise(async () => {
    let backend = ""
    let resetNextRefresh = false
    const refreshTokens: Array<string> = []
    const authorizes: Array<string> = []
    let restarted: Promise<void> = Promise.resolve()
    const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Array<Buffer> = []
      for await (const chunk of req) chunks.push(Buffer.from(chunk))
      const body = Buffer.concat(chunks)
      const path = req.url ?? "/"
      if (path.startsWith("/authorize")) authorizes.push(path)
      const form = new URLSearchParams(body.toString("utf8"))
      const isRefresh = path.startsWith("/token") && form.get("grant_type") === "refresh_token"
      if (isRefresh) refreshTokens.push(form.get("refresh_token") ?? "")
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "content-length" && k !== "connection") headers[k] = v
      const answer = await fetch(backend + path, {
        method: req.method ?? "GET",
        headers,
        redirect: "manual",
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body })
      })
      const text = Buffer.from(await answer.arrayBuffer())
      if (isRefresh && resetNextRefresh) {
        // the server has rotated the refresh token; its answer never arrives; it goes away and is
        // back 400 ms later on the same port (within the client's retry backoff, were it to retry)
        resetNextRefresh = false
        req.socket.resetAndDestroy()
        restarted = stop().then(() => new Promise((resolve) => setTimeout(resolve, 400))).then(start)
        return
      }
      const out: Record<string, string> = {}
      answer.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "transfer-encoding" && k !== "content-encoding") out[k] = v
      })
      res.writeHead(answer.status, out).end(text)
    }
    let server = http.createServer((req, res) => void handler(req, res))
    let port = 0
    const start = () =>
      new Promise<void>((resolve, reject) => {
        server = http.createServer((req, res) => void handler(req, res))
        server.once("error", reject)
        server.listen(port, "127.0.0.1", () => {
          port = (server.address() as AddressInfo).port
          resolve()
        })
      })
    const stop = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    await start()
    return {
      url: `http://127.0.0.1:${port}`,
      setBackend: (url: string) => void (backend = url),
      armReset: () => void (resetNextRefresh = true),
      refreshTokens,
      authorizes,
      restarted: () => restarted,
      stop,
      isListening: () => server.listening
    }
  }),
  (front) => Effect.promise(() => front.isListening() ? front.stop() : Promise.resolve())
)

const startServers = Effect.gen(function*() {
  const front = yield* startFront
  const backend = yield* listen
  const provider = yield* OAuthProvider.make({
    issuer: front.url,
    scopesSupported: ["tools"],
    accessTokenTtl: "1 second"
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  yield* backend.serve(provider.router)
  front.setBackend(HttpServer.formatAddress(backend.address))
  const mcpServer = yield* listen
  const auth = remoteAuthFor(mcpServer, provider)
  const endpoint = pingEndpoint("reset-test")
  yield* mcpServer.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  return { front, mcpUrl: auth.resourceUrl("/mcp") }
})

const clientDeps = Layer.mergeAll(TestStorage.layer(), Authorizer.layerHeadless()).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

describe("fault: the authorization server resets a refresh it has processed, then comes back", () => {
  it.scopedLive("typed error, the refresh token presented once (no automatic retry), the next call recovers", () =>
    Effect.gen(function*() {
      const { front, mcpUrl } = yield* startServers
      const client = yield* McpClient.connect(new URL(mcpUrl), { auth: { oauth: { scopes: ["tools"] } } })
      yield* client.callTool("ping")
      expect(front.authorizes.length).toBe(1)
      yield* Effect.sleep("1200 millis") // the access token has expired
      front.armReset()
      const error = yield* Effect.flip(client.callTool("ping"))
      // typed: the OAuth error (a lost connection to the token endpoint) is found under the MCP error
      const cause = McpClient.oauthCause(error)
      expect(cause._tag === "Some" && cause.value._tag).toBe("OAuthRequestError")
      expect(cause._tag === "Some" && cause.value._tag === "OAuthRequestError" && cause.value.reason).toBe("Transport")
      // the refresh token the server may have rotated went out once, and no sign-in started
      expect(front.refreshTokens.length).toBe(1)
      expect(front.authorizes.length).toBe(1)

      yield* Effect.promise(() => front.restarted()) // back on the same port
      const result = yield* client.callTool("ping")
      expect(result.isError ?? false).toBe(false)
    }).pipe(Effect.provide(clientDeps)))
})
