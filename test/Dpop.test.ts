/**
 * DPoP (RFC 9449) end to end against a loopback authorization server and resource server that
 * verify every proof with `jose`: a proof on the token request, the authorization server's nonce
 * (§8), `Authorization: DPoP` with a fresh proof bound to the token (`ath`) on every MCP request,
 * and the resource server's nonce (§9).
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Jose from "jose"
import { createHash } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Authorizer from "../src/Authorizer.js"
import * as Dpop from "../src/Dpop.js"
import * as HttpAuth from "../src/HttpAuth.js"
import * as TestStorage from "../src/TestStorage.js"

interface Seen {
  readonly path: string
  readonly authorization: string | undefined
  readonly proof: Jose.JWTPayload | undefined
  readonly jkt: string | undefined
  readonly problem: string | undefined
}

const verifyProof = async (header: string | undefined, method: string, url: string) => {
  if (header === undefined) return { problem: "no proof" }
  const protectedHeader = Jose.decodeProtectedHeader(header)
  if (protectedHeader.typ !== "dpop+jwt" || protectedHeader.jwk === undefined) return { problem: "bad header" }
  if ("d" in protectedHeader.jwk) return { problem: "private key in proof" }
  const key = await Jose.importJWK(protectedHeader.jwk, protectedHeader.alg ?? "ES256")
  const { payload } = await Jose.jwtVerify(header, key)
  if (payload["htm"] !== method || payload["htu"] !== url) return { problem: "htm/htu mismatch" }
  return { payload, jkt: await Jose.calculateJwkThumbprint(protectedHeader.jwk, "sha256") }
}

/** `rotateNonce`: the resource server gives a new nonce with every successful answer (RFC 9449 §9). */
const startDpopServers = (options: { readonly rotateNonce?: boolean } = {}) =>
  Effect.acquireRelease(
    Effect.async<{ readonly base: string; readonly seen: Array<Seen>; readonly server: http.Server }>((resume) => {
      const seen: Array<Seen> = []
      let base = ""
      let rsNonce = "rs-nonce"
      let rotations = 0
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", async () => {
          const path = new URL(req.url ?? "/", base).pathname
          const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
            res.writeHead(status, { "content-type": "application/json", ...headers })
            res.end(JSON.stringify(body))
          }
          if (path === "/.well-known/oauth-protected-resource/mcp") {
            return json(200, { resource: `${base}/mcp`, authorization_servers: [base] })
          }
          if (path === "/.well-known/oauth-authorization-server") {
            return json(200, {
              issuer: base,
              authorization_endpoint: `${base}/authorize`,
              token_endpoint: `${base}/token`,
              code_challenge_methods_supported: ["S256"],
              dpop_signing_alg_values_supported: ["ES256"]
            })
          }
          const proofHeader = typeof req.headers["dpop"] === "string" ? req.headers["dpop"] : undefined
          if (path === "/token") {
            const checked = await verifyProof(proofHeader, "POST", `${base}/token`).catch((e) => ({ problem: String(e) }))
            const payload = "payload" in checked ? checked.payload : undefined
            seen.push({ path, authorization: undefined, proof: payload, jkt: "jkt" in checked ? checked.jkt : undefined, problem: checked.problem })
            if (payload === undefined) return json(400, { error: "invalid_dpop_proof" })
            if (payload["nonce"] !== "as-nonce") {
              return json(400, { error: "use_dpop_nonce" }, { "dpop-nonce": "as-nonce" })
            }
            return json(200, { access_token: "dpop-bound-token", token_type: "DPoP", expires_in: 3600 })
          }
          if (path === "/mcp") {
            const authorization = req.headers["authorization"]
            if (authorization === undefined) {
              seen.push({ path, authorization, proof: undefined, jkt: undefined, problem: undefined })
              return json(401, { error: "unauthorized" }, {
                "www-authenticate": `DPoP resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`
              })
            }
            const checked = await verifyProof(proofHeader, "POST", `${base}/mcp`).catch((e) => ({ problem: String(e) }))
            const payload = "payload" in checked ? checked.payload : undefined
            const ath = createHash("sha256").update("dpop-bound-token").digest("base64url")
            const problem = checked.problem ??
              (payload?.["ath"] !== ath ? "ath mismatch" : authorization !== "DPoP dpop-bound-token" ? "scheme" : undefined)
            seen.push({ path, authorization, proof: payload, jkt: "jkt" in checked ? checked.jkt : undefined, problem })
            if (problem !== undefined) return json(401, { error: "invalid_token" }, { "www-authenticate": `DPoP error="invalid_token"` })
            if (payload?.["nonce"] !== rsNonce) {
              return json(401, { error: "use_dpop_nonce" }, {
                "www-authenticate": `DPoP error="use_dpop_nonce"`,
                "dpop-nonce": rsNonce
              })
            }
            if (options.rotateNonce === true) {
              rsNonce = `rs-nonce-${++rotations}`
              return json(200, { ok: true }, { "dpop-nonce": rsNonce })
            }
            return json(200, { ok: true })
          }
          json(404, {})
        })
      })
      server.listen(0, "127.0.0.1", () => {
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        resume(Effect.succeed({ base, seen, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

/** `n` MCP calls in a row through one OAuthLayer (a pre-registered client, signed in by `layerTest`): their statuses. */
const calls = (base: string, n: number) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const call = Effect.scoped(Effect.map(client.post(`${base}/mcp`, { body: HttpBody.unsafeJson({}) }), (r) => r.status))
    const statuses: Array<number> = []
    for (let i = 0; i < n; i++) statuses.push(yield* call)
    return statuses
  }).pipe(
    Effect.provide(
      HttpAuth.OAuthLayer({ mcpUrl: `${base}/mcp`, clientId: "dpop-client" }).pipe(
        Layer.provide(TestStorage.layer()),
        Layer.provide(Authorizer.layerTest("the-code")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )

describe("DPoP (RFC 9449)", () => {
  it.scopedLive("proofs on the token request and every MCP request, with both servers' nonces", () =>
    Effect.gen(function*() {
      const { base, seen } = yield* startDpopServers()
      const statuses = yield* calls(base, 2)
      expect(statuses).toEqual([200, 200])
      expect(seen.every((s) => s.problem === undefined)).toBe(true)
      const tokenRequests = seen.filter((s) => s.path === "/token")
      expect(tokenRequests.map((s) => s.proof?.["nonce"])).toEqual([undefined, "as-nonce"])
      const resourceRequests = seen.filter((s) => s.path === "/mcp")
      // 401 without a token; a proof with the nonce last seen from this origin (the AS's, same host
      // here), answered by the RS's own nonce challenge; then two successful calls with it.
      expect(resourceRequests.map((s) => s.proof?.["nonce"])).toEqual([undefined, "as-nonce", "rs-nonce", "rs-nonce"])
      const withProof = resourceRequests.filter((s) => s.proof !== undefined)
      expect(new Set(withProof.map((s) => s.proof?.jti)).size).toBe(withProof.length) // a fresh proof each time
      expect(new Set([...tokenRequests, ...withProof].map((s) => s.jkt)).size).toBe(1) // one key throughout
    }))
})

describe("DPoP nonce given with a successful answer (RFC 9449 §9)", () => {
  it.scopedLive("the next proof carries it: no use_dpop_nonce round trip after the first", () =>
    Effect.gen(function*() {
      const { base, seen } = yield* startDpopServers({ rotateNonce: true })
      const statuses = yield* calls(base, 3)
      expect(statuses).toEqual([200, 200, 200])
      expect(seen.every((s) => s.problem === undefined)).toBe(true)
      const resourceRequests = seen.filter((s) => s.path === "/mcp")
      // the first call as above; each later proof carries the nonce of the answer before it
      expect(resourceRequests.map((s) => s.proof?.["nonce"])).toEqual([
        undefined,
        "as-nonce",
        "rs-nonce",
        "rs-nonce-1",
        "rs-nonce-2"
      ])
    }))
})

describe("DPoP key created on first need", () => {
  it.effect("building the service generates no key; the first proof does, once; the thumbprint is the proof key's", () =>
    Effect.gen(function*() {
      const generateKey = vi.spyOn(globalThis.crypto.subtle, "generateKey")
      try {
        const dpop = yield* Dpop.make
        expect(generateKey).toHaveBeenCalledTimes(0)
        const proof = yield* dpop.proof({ method: "POST", url: "https://as.example.com/token" })
        yield* dpop.proof({ method: "POST", url: "https://as.example.com/token" })
        expect(generateKey).toHaveBeenCalledTimes(1)
        const jwk = Jose.decodeProtectedHeader(proof).jwk!
        expect(yield* dpop.thumbprint).toBe(yield* Effect.promise(() => Jose.calculateJwkThumbprint(jwk, "sha256")))
        expect(generateKey).toHaveBeenCalledTimes(1)
      } finally {
        generateKey.mockRestore()
      }
    }))

  it.effect("a key exported by one service signs the proofs of another that uses it; an unusable one is refused and changes nothing", () =>
    Effect.gen(function*() {
      const first = yield* Dpop.make
      const exported = yield* first.exportKey!
      expect(Redacted.value(exported)).toMatch(/"d":/)
      expect(String(exported)).not.toContain(Redacted.value(exported))
      const second = yield* Dpop.make
      const own = yield* second.thumbprint
      for (const bad of ["not json", "{\"kty\":\"EC\",\"crv\":\"P-256\"}", "{\"kty\":\"RSA\",\"n\":\"x\",\"e\":\"AQAB\",\"d\":\"x\"}", "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}"]) {
        expect(yield* second.useKey!(Redacted.make(bad))).toBe(false)
        expect(yield* second.thumbprint).toBe(own)
      }
      expect(yield* second.useKey!(exported)).toBe(true)
      expect(yield* second.thumbprint).toBe(yield* first.thumbprint)
      const proof = yield* second.proof({ method: "GET", url: "https://rs.example.com/mcp" })
      const jwk = Jose.decodeProtectedHeader(proof).jwk!
      const { payload } = yield* Effect.promise(() => Jose.jwtVerify(proof, Jose.EmbeddedJWK, { typ: "dpop+jwt" }))
      expect(payload["htu"]).toBe("https://rs.example.com/mcp")
      expect(yield* Effect.promise(() => Jose.calculateJwkThumbprint(jwk, "sha256"))).toBe(yield* first.thumbprint)
      expect(Redacted.value(yield* second.exportKey!)).toBe(Redacted.value(exported))
    }))

  it.effect("one service for several servers' stored sets: switching between their keys imports each once, and every proof carries the key asked for", () =>
    Effect.gen(function*() {
      const a = yield* Effect.flatMap(Dpop.make, (d) => d.exportKey!)
      const b = yield* Effect.flatMap(Dpop.make, (d) => d.exportKey!)
      const shared = yield* Dpop.make
      const importKey = vi.spyOn(globalThis.crypto.subtle, "importKey")
      try {
        const thumbprints: Array<string> = []
        for (const key of [a, b, a, b, a]) {
          expect(yield* shared.useKey!(key)).toBe(true)
          const proof = yield* shared.proof({ method: "POST", url: "https://rs.example.com/mcp" })
          thumbprints.push(yield* Effect.promise(() => Jose.calculateJwkThumbprint(Jose.decodeProtectedHeader(proof).jwk!, "sha256")))
        }
        expect(new Set(thumbprints).size).toBe(2)
        expect(thumbprints[0]).toBe(thumbprints[2])
        expect(thumbprints[1]).toBe(thumbprints[3])
        expect(importKey).toHaveBeenCalledTimes(2)
        // A proof asked for with a key is signed with it, whatever key the service uses now (a
        // layer sharing the service may have switched it); an unusable one falls back.
        const thumbprintOf = (proof: string) =>
          Effect.promise(() => Jose.calculateJwkThumbprint(Jose.decodeProtectedHeader(proof).jwk!, "sha256"))
        const url = "https://rs.example.com/mcp"
        expect(yield* thumbprintOf(yield* shared.proof({ method: "POST", url, key: b }))).toBe(thumbprints[1])
        expect(yield* shared.thumbprint).toBe(thumbprints[0])
        expect(yield* thumbprintOf(yield* shared.proof({ method: "POST", url, key: Redacted.make("{}") }))).toBe(
          thumbprints[0]
        )
      } finally {
        importKey.mockRestore()
      }
    }))
})
