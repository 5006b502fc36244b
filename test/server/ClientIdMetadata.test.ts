import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as ClientIdMetadata from "../../src/server/ClientIdMetadata.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import type { TestServer } from "../fixtures/TestAuthServer.js"
import { authorize, authorizeUrl, pkcePair, postForm, REDIRECT, request } from "./http.js"

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
})
