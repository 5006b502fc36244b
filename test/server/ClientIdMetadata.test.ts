import { HttpClient, HttpClientError, HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as NodeHttp from "node:http"
import { Effect, Either, Option, TestClock } from "effect"
import { createServer } from "node:http"
import type { ServerResponse } from "node:http"
import * as ClientIdMetadata from "../../src/server/ClientIdMetadata.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import type { TestServer } from "../fixtures/TestAuthServer.js"
import { authorize, authorizeUrl, pkcePair, postForm, REDIRECT, request } from "./http.js"

/** A loopback server answering every request with `handle`; `hits` counts requests per path. */
const serveDocuments = (handle: (path: string, res: ServerResponse) => void) =>
  Effect.gen(function*() {
    const hits = new Map<string, number>()
    const server = createServer((req, res) => {
      const path = req.url ?? "/"
      hits.set(path, (hits.get(path) ?? 0) + 1)
      handle(path, res)
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { base: `http://127.0.0.1:${port}`, hits: (path: string) => hits.get(path) ?? 0 }
  })

/** An HttpClient that records every request and never connects anywhere. */
const recordingClient = () => {
  const sent: Array<string> = []
  const client = HttpClient.make((request) => {
    sent.push(request.url)
    return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "recorded" }))
  })
  return { sent, client }
}

const reasonOf = <A>(effect: Effect.Effect<A, ClientIdMetadata.ClientIdMetadataError>) =>
  Effect.map(Effect.either(effect), (result) => (Either.isLeft(result) ? result.left.reason : "ok"))

const CLIENT_URL = "https://client.example.com/oauth/metadata.json"

const docFor = (url: string, extra: Record<string, unknown> = {}) => ({
  client_id: url,
  client_name: "CIMD client",
  redirect_uris: ["http://127.0.0.1/callback"],
  ...extra
})

/** The code flow with a URL client id; returns the token response. */
const flow = (server: TestServer, clientId: string) =>
  Effect.gen(function*() {
    const { challenge, verifier } = pkcePair()
    const { location } = yield* authorize(server, { clientId, challenge })
    return yield* postForm(`${server.issuer}/token`, {
      grant_type: "authorization_code",
      code: location.searchParams.get("code")!,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: clientId
    })
  })

describe("Client ID Metadata Documents", () => {
  it("validates URL client ids and documents", () => {
    expect(ClientIdMetadata.isClientIdUrl(CLIENT_URL)).toBe(true)
    expect(ClientIdMetadata.isClientIdUrl("https://client.example.com/")).toBe(false)
    expect(ClientIdMetadata.isClientIdUrl("https://client.example.com/a#f")).toBe(false)
    expect(ClientIdMetadata.isClientIdUrl("http://client.example.com/a")).toBe(false)
    expect(ClientIdMetadata.isClientIdUrl("http://127.0.0.1:9/a")).toBe(false)
    expect(ClientIdMetadata.isClientIdUrl("http://127.0.0.1:9/a", true)).toBe(true)
    expect(ClientIdMetadata.isClientIdUrl("not a url")).toBe(false)
    const ok = ClientIdMetadata.toClient(CLIENT_URL, docFor(CLIENT_URL), 0)
    expect(Either.map(ok, (c) => [c.clientId, c.tokenEndpointAuthMethod, c.grantTypes])).toEqual(
      Either.right([CLIENT_URL, "none", ["authorization_code", "refresh_token"]])
    )
    const problems = [
      docFor("https://other.example.com/metadata.json"),
      docFor(CLIENT_URL, { client_secret: "s" }),
      docFor(CLIENT_URL, { token_endpoint_auth_method: "client_secret_basic" }),
      docFor(CLIENT_URL, { redirect_uris: [] }),
      docFor(CLIENT_URL, { redirect_uris: ["http://evil.example.com/cb"] }),
      docFor(CLIENT_URL, { grant_types: ["client_credentials"] }),
      { client_id: CLIENT_URL },
      "nope"
    ]
    for (const doc of problems) expect(Either.isLeft(ClientIdMetadata.toClient(CLIENT_URL, doc, 0))).toBe(true)
  })

  it.scoped("a known document lets a URL client id run the code flow without registration", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ cimd: true })
      yield* server.setClientMetadataDocument(CLIENT_URL, docFor(CLIENT_URL))
      const metadata = yield* request(server.asMetadataUrl)
      expect(metadata.body["client_id_metadata_document_supported"]).toBe(true)
      const token = yield* flow(server, CLIENT_URL)
      expect(token.status).toBe(200)
      expect(yield* server.count("register")).toBe(0)
    }))

  it.scoped("a document served over HTTP is fetched; a bad or missing one leaves the client unknown", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ cimd: true })
      const url = server.clientMetadataUrl("good")
      yield* server.setClientMetadataDocument(url, docFor(url))
      expect((yield* flow(server, url)).status).toBe(200)
      expect(yield* server.count("clientMetadata")).toBe(2) // authorize and token each resolve it
      const liar = server.clientMetadataUrl("liar")
      yield* server.setClientMetadataDocument(liar, docFor(CLIENT_URL))
      const { challenge } = pkcePair()
      const res = yield* request(authorizeUrl(server, { clientId: liar, challenge }))
      expect(res.status).toBe(400)
      expect(res.body["error"]).toBe("invalid_client")
      const missing = yield* request(authorizeUrl(server, { clientId: server.clientMetadataUrl("missing"), challenge }))
      expect(missing.status).toBe(400)
    }))

  it.scoped("without CIMD support a URL client id is unknown", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer()
      yield* server.setClientMetadataDocument(CLIENT_URL, docFor(CLIENT_URL))
      const { challenge } = pkcePair()
      const res = yield* request(authorizeUrl(server, { clientId: CLIENT_URL, challenge }))
      expect(res.status).toBe(400)
      expect(res.body["error_description"]).toContain("not found")
    }))

  it.scoped("a chunked body over the size limit is a TooLarge error, counted while it streams", () =>
    Effect.gen(function*() {
      const docs = yield* serveDocuments((_path, res) => {
        // no content-length: chunked transfer encoding, 8 MiB in 64 KiB chunks
        res.writeHead(200, { "content-type": "application/json" })
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        let sent = 0
        const pump = () => {
          while (sent < 128) {
            sent++
            if (!res.write(chunk)) return void res.once("drain", pump)
          }
          res.end()
        }
        res.on("error", () => {})
        pump()
      })
      const fetch = yield* ClientIdMetadata.fetchDocument({ allowHttpLoopback: true }).pipe(
        Effect.provide(NodeHttpClient.layer)
      )
      expect(yield* reasonOf(fetch(`${docs.base}/big/client.json`))).toBe("TooLarge")
    }))

  it.effect("hosts that are or resolve to private, loopback or link-local addresses are refused before anything is sent", () =>
    Effect.gen(function*() {
      const { client, sent } = recordingClient()
      const lookups: Array<string> = []
      const table: Record<string, ReadonlyArray<string>> = {
        "metadata.example.com": ["169.254.169.254"],
        "intranet.example.com": ["93.184.216.34", "10.0.0.1"],
        "v6.example.com": ["fd00::1"],
        "mapped.example.com": ["::ffff:10.0.0.1"],
        "public.example.com": ["93.184.216.34"]
      }
      const fetch = yield* ClientIdMetadata.fetchDocument({
        resolve: (host) => Effect.sync(() => (lookups.push(host), table[host] ?? []))
      }).pipe(Effect.provideService(HttpClient.HttpClient, client))
      for (const host of ["metadata.example.com", "intranet.example.com", "v6.example.com", "mapped.example.com"]) {
        expect(yield* reasonOf(fetch(`https://${host}/client.json`)), host).toBe("ForbiddenAddress")
      }
      expect(yield* reasonOf(fetch("https://nowhere.example.com/client.json"))).toBe("Unresolvable")
      // literal addresses are refused without a lookup
      for (const literal of ["10.0.0.1", "169.254.169.254", "127.0.0.1", "[::1]", "[fd00::1]", "[::ffff:169.254.169.254]"]) {
        expect(yield* reasonOf(fetch(`https://${literal}/client.json`)), literal).toBe("ForbiddenAddress")
      }
      expect(lookups).not.toContain("10.0.0.1")
      // the resolver OAuthProvider uses goes through the same guard
      const resolver = yield* ClientIdMetadata.fetcher().pipe(Effect.provideService(HttpClient.HttpClient, client))
      expect(yield* resolver("https://169.254.169.254/latest/meta-data/client.json")).toEqual(Option.none())
      expect(yield* resolver("https://10.0.0.1/client.json")).toEqual(Option.none())
      expect(sent).toEqual([])
      // a public host passes the guard and reaches the HTTP client
      expect(yield* reasonOf(fetch("https://public.example.com/client.json"))).toBe("Transport")
      expect(sent).toEqual(["https://public.example.com/client.json"])
      // the system resolver: localhost is loopback, refused unless allowed
      const system = yield* ClientIdMetadata.fetchDocument().pipe(Effect.provideService(HttpClient.HttpClient, client))
      expect(yield* reasonOf(system("https://localhost/client.json"))).toBe("ForbiddenAddress")
      expect(sent).toHaveLength(1)
    }))

  it.scoped("pinAddresses: the connection goes only to the addresses the check approved, never to a second DNS answer (DNS rebinding)", () =>
    Effect.gen(function*() {
      // A document server on 127.0.0.1 only; its documents name the URL they were fetched from.
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<NodeHttp.Server>((resolve) => {
            const s = NodeHttp.createServer((req, res) => {
              res.writeHead(200, { "content-type": "application/json" })
              res.end(JSON.stringify(docFor(`http://${req.headers.host}${req.url}`)))
            })
            s.listen(0, "127.0.0.1", () => resolve(s))
          })
        ),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const port = (server.address() as { port: number }).port
      const url = `http://localhost:${port}/client.json`
      const { client, sent } = recordingClient()
      const pinnedTo = (address: string) =>
        ClientIdMetadata.fetchDocument({
          allowHttpLoopback: true,
          pinAddresses: true,
          cacheMaxEntries: 0,
          resolve: () => Effect.succeed([address])
        }).pipe(Effect.provideService(HttpClient.HttpClient, client))
      // approved 127.0.0.1: fetched over the fetcher's own client (not the one in context)
      expect(yield* reasonOf((yield* pinnedTo("127.0.0.1"))(url))).toBe("ok")
      // approved 127.0.0.2: the connection goes there (nothing listens), not where the system's
      // DNS would send "localhost" (127.0.0.1, where the server is)
      expect(yield* reasonOf((yield* pinnedTo("127.0.0.2"))(url))).toBe("Transport")
      // one fetcher, whose check answers differently each time: each fetch connects where its own
      // check said (no pin outlives its fetch)
      const answers = ["127.0.0.1", "127.0.0.2", "127.0.0.1"]
      const changing = yield* ClientIdMetadata.fetchDocument({
        allowHttpLoopback: true,
        pinAddresses: true,
        cacheMaxEntries: 0,
        resolve: () => Effect.sync(() => [answers.shift() ?? "127.0.0.2"])
      }).pipe(Effect.provideService(HttpClient.HttpClient, client))
      expect([yield* reasonOf(changing(url)), yield* reasonOf(changing(url)), yield* reasonOf(changing(url))])
        .toEqual(["ok", "Transport", "ok"])
      expect(sent).toEqual([])
    }))

  it("freshness follows RFC 9111: s-maxage, max-age, Expires; no-store, no-cache and private are never reused", () => {
    const date = "Tue, 01 Dec 2026 12:00:00 GMT"
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "max-age=60" })).toBe(60_000)
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "public, max-age=60, s-maxage=10" })).toBe(10_000)
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "max-age=60", age: "50" })).toBe(10_000)
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "no-store, max-age=60" })).toBe(0)
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "no-cache" })).toBe(0)
    expect(ClientIdMetadata.freshnessLifetime({ "cache-control": "private, max-age=60" })).toBe(0)
    expect(ClientIdMetadata.freshnessLifetime({ expires: "Tue, 01 Dec 2026 12:05:00 GMT", date })).toBe(300_000)
    expect(ClientIdMetadata.freshnessLifetime({ expires: "0", date })).toBe(0)
    expect(ClientIdMetadata.freshnessLifetime({})).toBe(0)
  })

  it.scoped("repeated /authorize fetches a cacheable document once while it is fresh; no-store every time", () =>
    Effect.gen(function*() {
      const docs = yield* serveDocuments((path, res) => {
        const url = `http://127.0.0.1:${res.req.socket.localPort}${path}`
        res.writeHead(200, {
          "content-type": "application/json",
          "cache-control": path.startsWith("/cached") ? "max-age=60" : "no-store"
        })
        res.end(JSON.stringify({ client_id: url, redirect_uris: [REDIRECT] }))
      })
      const resolve = yield* ClientIdMetadata.fetcher({ allowHttpLoopback: true }).pipe(
        Effect.provide(NodeHttpClient.layer)
      )
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      const issuer = HttpServer.formatAddress(server.address)
      const provider = yield* OAuthProvider.make({
        issuer,
        clientIdMetadataDocumentSupported: true,
        resolveClientIdMetadataDocument: resolve
      }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
      yield* server.serve(provider.router)
      const { challenge } = pkcePair()
      const authorizeAs = (clientId: string) => {
        const url = new URL(provider.endpoints.authorization)
        for (
          const [k, v] of Object.entries({
            response_type: "code",
            client_id: clientId,
            redirect_uri: REDIRECT,
            code_challenge: challenge,
            code_challenge_method: "S256"
          })
        ) url.searchParams.set(k, v)
        return Effect.map(request(url.href), (res) => res.status)
      }
      for (let i = 0; i < 3; i++) {
        expect(yield* authorizeAs(`${docs.base}/cached/client.json`)).toBe(302)
        expect(yield* authorizeAs(`${docs.base}/fresh/client.json`)).toBe(302)
      }
      expect(docs.hits("/cached/client.json")).toBe(1)
      expect(docs.hits("/fresh/client.json")).toBe(3)
      yield* TestClock.adjust("61 seconds")
      expect(yield* authorizeAs(`${docs.base}/cached/client.json`)).toBe(302)
      expect(docs.hits("/cached/client.json")).toBe(2)
      expect(Option.isNone(yield* provider.store.getClient(`${docs.base}/cached/client.json`))).toBe(true)
    }))
})
