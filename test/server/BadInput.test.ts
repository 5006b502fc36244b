/**
 * Hostile and broken requests against the authorization server, each answered with the right
 * OAuth error code AND leaving the store untouched: the server stands on a store that records
 * every write, and each case asserts which writes (none, usually) it caused.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { createServer } from "node:http"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import { makeMemory, OAuthProviderStore } from "../../src/server/OAuthProviderStore.js"
import { basic, pkcePair, postForm, postJson, request } from "./http.js"

const REDIRECT = "http://127.0.0.1:53123/callback"
const HTTPS_REDIRECT = "https://app.example.com/oauth/callback"

/** The provider on loopback over a memory store whose writes are recorded by name. */
const start = Effect.gen(function*() {
  const inner = yield* makeMemory
  const writes: Array<string> = []
  const record = <A extends ReadonlyArray<unknown>, R>(name: string, f: (...args: A) => Effect.Effect<R>) =>
  (...args: A) => Effect.zipRight(Effect.sync(() => writes.push(name)), f(...args))
  const store = OAuthProviderStore.of({
    ...inner,
    putClient: record("putClient", inner.putClient),
    putCode: record("putCode", inner.putCode),
    putAccessToken: record("putAccessToken", inner.putAccessToken),
    putRefreshToken: record("putRefreshToken", inner.putRefreshToken),
    putPending: record("putPending", inner.putPending),
    deleteAccessToken: record("deleteAccessToken", inner.deleteAccessToken),
    revokeFamily: record("revokeFamily", inner.revokeFamily)
  })
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const issuer = HttpServer.formatAddress(server.address)
  const provider = yield* OAuthProvider.make({ issuer, scopesSupported: ["read"], maxBodyBytes: 4096 }).pipe(
    Effect.provideService(OAuthProviderStore, store)
  )
  yield* server.serve(provider.router)
  const publicClient = yield* provider.registerClient({
    tokenEndpointAuthMethod: "none",
    redirectUris: [REDIRECT, HTTPS_REDIRECT]
  })
  const confidential = yield* provider.registerClient({
    clientSecret: "s3cret",
    redirectUris: [HTTPS_REDIRECT],
    grantTypes: ["authorization_code", "refresh_token", "client_credentials"]
  })
  writes.length = 0
  const authorizeUrl = (params: Record<string, string>) => {
    const url = new URL(provider.endpoints.authorization)
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    return url.href
  }
  const codeFor = (challenge: string) =>
    Effect.gen(function*() {
      const res = yield* request(authorizeUrl({
        response_type: "code",
        client_id: publicClient.clientId,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state: "s"
      }))
      return new URL(res.headers.get("location")!).searchParams.get("code")!
    })
  return { provider, issuer, writes, publicClient, confidential, authorizeUrl, codeFor }
}).pipe(Effect.orDie)

describe("bad input leaves nothing behind", () => {
  it.scoped("malformed or hostile registration bodies: invalid_client_metadata / invalid_redirect_uri, no client stored", () =>
    Effect.gen(function*() {
      const s = yield* start
      const register = `${s.issuer}/register`
      const cases: Array<[unknown, string]> = [
        [{ redirect_uris: "http://127.0.0.1/cb" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], grant_types: ["password"] }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], scope: "admin" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], response_types: ["token"] }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], grant_types: ["client_credentials"], token_endpoint_auth_method: "none" }, "invalid_client_metadata"],
        [{ grant_types: ["authorization_code"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["http://evil.example.com/cb"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["https://app.example.com/cb#frag"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["/relative/cb"] }, "invalid_redirect_uri"],
        [[1, 2, 3], "invalid_client_metadata"],
        [null, "invalid_client_metadata"]
      ]
      for (const [body, error] of cases) {
        const res = yield* postJson(register, body)
        expect([res.status, res.body["error"]], JSON.stringify(body)).toEqual([400, error])
      }
      const notJson = yield* request(register, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{\"redirect_uris\": ["
      })
      expect([notJson.status, notJson.body["error"]]).toEqual([400, "invalid_client_metadata"])
      const wrongType = yield* request(register, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "redirect_uris=http://127.0.0.1/cb"
      })
      expect(wrongType.body["error"]).toBe("invalid_client_metadata")
      const oversized = yield* postJson(register, { redirect_uris: [REDIRECT], client_name: "x".repeat(10_000) })
      expect(oversized.status).toBe(413)
      expect(s.writes).toEqual([])
    }))

  it.scoped("redirect URI tricks never redirect and store no code", () =>
    Effect.gen(function*() {
      const s = yield* start
      const { challenge } = pkcePair()
      const tricks = [
        "https://app.example.com/oauth/callback/../../evil",
        "https://app.example.com/oauth/callback?extra=1",
        "https://app.example.com/oauth/callback/",
        "https://app.example.com/OAUTH/callback",
        "https://app.example.com:8443/oauth/callback",
        "https://app.example.com.evil.com/oauth/callback",
        "https://app.example.com@evil.com/oauth/callback",
        "http://app.example.com/oauth/callback",
        "http://127.0.0.1:53123/callback#x",
        "http://127.0.0.1:9/other",
        "http://user@127.0.0.1:53123/callback",
        "http://localhost:53123/callback",
        "javascript:alert(1)"
      ]
      for (const redirectUri of tricks) {
        const res = yield* request(s.authorizeUrl({
          response_type: "code",
          client_id: s.publicClient.clientId,
          redirect_uri: redirectUri,
          code_challenge: challenge,
          code_challenge_method: "S256",
          state: "st"
        }))
        expect([res.status, res.headers.get("location"), res.body["error"]], redirectUri).toEqual([
          400,
          null,
          "invalid_request"
        ])
      }
      // an unknown client never redirects either, whatever redirect_uri it names
      const unknown = yield* request(s.authorizeUrl({
        response_type: "code",
        client_id: "nobody",
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: "S256"
      }))
      expect([unknown.status, unknown.headers.get("location"), unknown.body["error"]]).toEqual([
        400,
        null,
        "invalid_client"
      ])
      // loopback: another port is fine (RFC 8252 §7.3) and is the only write
      const otherPort = yield* request(s.authorizeUrl({
        response_type: "code",
        client_id: s.publicClient.clientId,
        redirect_uri: "http://127.0.0.1:40000/callback",
        code_challenge: challenge,
        code_challenge_method: "S256"
      }))
      expect(otherPort.status).toBe(302)
      expect(s.writes).toEqual(["putCode"])
    }))

  it.scoped("a wrong PKCE verifier, a reused code, a foreign code: invalid_grant and no token issued", () =>
    Effect.gen(function*() {
      const s = yield* start
      const { challenge, verifier } = pkcePair()
      const token = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
        postForm(`${s.issuer}/token`, { grant_type: "authorization_code", redirect_uri: REDIRECT, ...fields }, headers)

      const code1 = yield* s.codeFor(challenge)
      const wrong = yield* token({ code: code1, code_verifier: pkcePair().verifier, client_id: s.publicClient.clientId })
      expect([wrong.status, wrong.body["error"]]).toEqual([400, "invalid_grant"])
      const afterBurn = yield* token({ code: code1, code_verifier: verifier, client_id: s.publicClient.clientId })
      expect(afterBurn.body["error"]).toBe("invalid_grant") // the failed attempt spent the code

      const code2 = yield* s.codeFor(challenge)
      const foreign = yield* token(
        { code: code2, code_verifier: verifier },
        { authorization: basic(s.confidential.clientId, "s3cret") }
      )
      expect([foreign.status, foreign.body["error"]]).toEqual([400, "invalid_grant"])
      expect(s.writes.filter((w) => w === "putAccessToken" || w === "putRefreshToken")).toEqual([])

      const code3 = yield* s.codeFor(challenge)
      const ok = yield* token({ code: code3, code_verifier: verifier, client_id: s.publicClient.clientId })
      expect(ok.status).toBe(200)
      s.writes.length = 0
      const replay = yield* token({ code: code3, code_verifier: verifier, client_id: s.publicClient.clientId })
      expect([replay.status, replay.body["error"]]).toEqual([400, "invalid_grant"])
      expect(s.writes).toEqual(["revokeFamily"]) // the replay revokes, and issues nothing
      expect(Option.isNone(yield* s.provider.verifyAccessToken(String(ok.body["access_token"])))).toBe(true)
    }))

  it.scoped("a code presented by another client is refused and stays redeemable by the client it was issued to", () =>
    Effect.gen(function*() {
      const s = yield* start
      const { challenge, verifier } = pkcePair()
      const code = yield* s.codeFor(challenge)
      const token = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
        postForm(`${s.issuer}/token`, { grant_type: "authorization_code", redirect_uri: REDIRECT, code, ...fields }, headers)
      const foreign = yield* token({ code_verifier: verifier }, { authorization: basic(s.confidential.clientId, "s3cret") })
      expect([foreign.status, foreign.body["error"]]).toEqual([400, "invalid_grant"])
      const own = yield* token({ code_verifier: verifier, client_id: s.publicClient.clientId })
      expect(own.status).toBe(200)
      expect(Option.isSome(yield* s.provider.verifyAccessToken(String(own.body["access_token"])))).toBe(true)
    }))

  it.scoped("client authentication failures are 401 invalid_client at /token and /revoke, each with a challenge (RFC 9110 §15.5.2; body and public clients too), nothing stored", () =>
    Effect.gen(function*() {
      const s = yield* start
      const issued = yield* s.provider.issueToken({ clientId: s.confidential.clientId, refreshToken: true })
      s.writes.length = 0
      const at = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
        postForm(`${s.issuer}${path}`, fields, headers)
      const attempts: Array<[string, Record<string, string>, Record<string, string>]> = [
        ["/token", { grant_type: "client_credentials" }, { authorization: basic("nobody", "x") }],
        ["/token", { grant_type: "client_credentials" }, { authorization: basic(s.confidential.clientId, "wrong") }],
        ["/token", { grant_type: "client_credentials", client_id: s.confidential.clientId, client_secret: "wrong" }, {}],
        ["/token", { grant_type: "client_credentials", client_id: s.confidential.clientId }, {}],
        ["/token", { grant_type: "client_credentials" }, {}],
        ["/token", { grant_type: "refresh_token", refresh_token: "x", client_id: "gone-client" }, {}],
        ["/token", { grant_type: "client_credentials" }, { authorization: "Basic !!!notbase64" }],
        ["/revoke", { token: "whatever" }, { authorization: basic("nobody", "x") }],
        ["/revoke", { token: "whatever", client_id: "nobody" }, {}]
      ]
      for (const [path, fields, headers] of attempts) {
        const res = yield* at(path, fields, headers)
        const label = `${path} ${JSON.stringify(fields)} ${JSON.stringify(headers)}`
        expect([res.status, res.body["error"]], label).toEqual([401, "invalid_client"])
        expect(res.headers.get("www-authenticate"), label).toBe(`Basic realm="${s.issuer}", charset="UTF-8"`)
        expect(res.headers.get("cache-control"), label).toBe("no-store")
      }
      // revocation with a wrong secret must not revoke anything
      for (const token of [issued.accessToken, issued.refreshToken!]) {
        const revoke = yield* at("/revoke", { token: Redacted.value(token) }, {
          authorization: basic(s.confidential.clientId, "wrong")
        })
        expect(revoke.status).toBe(401)
      }
      expect(s.writes).toEqual([])
      expect(Option.isSome(yield* s.provider.verifyAccessToken(Redacted.value(issued.accessToken)))).toBe(true)
    }))

  it.scoped("a reused refresh token is invalid_grant and revokes its grant; a malformed refresh stores nothing", () =>
    Effect.gen(function*() {
      const s = yield* start
      const issued = yield* s.provider.issueToken({ clientId: s.publicClient.clientId, refreshToken: true })
      const refresh = Redacted.value(issued.refreshToken!)
      const form = (extra: Record<string, string>) =>
        postForm(`${s.issuer}/token`, { grant_type: "refresh_token", client_id: s.publicClient.clientId, ...extra })
      s.writes.length = 0
      const widened = yield* form({ refresh_token: refresh, scope: "read admin" })
      expect([widened.status, widened.body["error"]]).toEqual([400, "invalid_scope"])
      const twoResources = yield* request(`${s.issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `grant_type=refresh_token&client_id=${s.publicClient.clientId}&refresh_token=${refresh}` +
          `&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example`
      })
      expect([twoResources.status, twoResources.body["error"]]).toEqual([400, "invalid_target"])
      const repeated = yield* request(`${s.issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `grant_type=refresh_token&grant_type=refresh_token&client_id=${s.publicClient.clientId}&refresh_token=${refresh}`
      })
      expect([repeated.status, repeated.body["error"]]).toEqual([400, "invalid_request"])
      expect(s.writes).toEqual([])
      const first = yield* form({ refresh_token: refresh })
      expect(first.status).toBe(200)
      const again = yield* form({ refresh_token: refresh })
      expect([again.status, again.body["error"]]).toEqual([400, "invalid_grant"])
      expect(Option.isNone(yield* s.provider.verifyAccessToken(String(first.body["access_token"])))).toBe(true)
      const rotated = yield* form({ refresh_token: String(first.body["refresh_token"]) })
      expect(rotated.body["error"]).toBe("invalid_grant")
    }))
})
