/**
 * Raw HTTP helpers for the server tests: plain `fetch` with redirects never followed, so every
 * assertion is about exactly what the server answered.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createServer } from "node:http"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import type { TestServer } from "../fixtures/TestAuthServer.js"

/** An authorization server with `options` (issuer: its own loopback address), on a memory store. */
export const serveProvider = (options: Omit<OAuthProvider.Options, "issuer"> = {}) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const issuer = HttpServer.formatAddress(server.address)
    const provider = yield* OAuthProvider.make({ ...options, issuer }).pipe(
      Effect.provide(OAuthProviderStore.layerMemory)
    )
    yield* server.serve(provider.router)
    return { provider, issuer }
  }).pipe(Effect.orDie)

export interface RawResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The parsed JSON body; `undefined` when the body is not JSON. */
  readonly body: Record<string, unknown>
}

export const request = (url: string, init: RequestInit = {}): Effect.Effect<RawResponse> =>
  Effect.promise(async (signal) => {
    const res = await fetch(url, { redirect: "manual", signal, ...init })
    const text = await res.text()
    let body: Record<string, unknown> = {}
    try {
      body = JSON.parse(text) as Record<string, unknown>
    } catch {
      body = {}
    }
    return { status: res.status, headers: res.headers, text, body }
  })

export const postForm = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString()
  })

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })

export const pkcePair = () => {
  const verifier = randomBytes(32).toString("base64url")
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") }
}

/** RFC 6749 §2.3.1: Basic credentials of the form-urlencoded id and secret, UTF-8, base64. */
export const basic = (id: string, secret: string): string => {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`, "utf8").toString("base64")}`
}

export const REDIRECT = "http://127.0.0.1:53123/callback"

export const registerPublicClient = (server: TestServer, extra: Record<string, unknown> = {}) =>
  Effect.map(
    postJson(`${server.issuer}/register`, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      client_name: "test",
      ...extra
    }),
    (res) => res.body as { client_id: string; client_secret?: string }
  )

export interface AuthorizeParams {
  readonly clientId: string
  readonly challenge: string
  readonly redirectUri?: string
  readonly state?: string
  readonly scope?: string
  readonly resource?: string
  readonly extra?: Record<string, string>
}

export const authorizeUrl = (server: TestServer, p: AuthorizeParams): string => {
  const url = new URL(`${server.issuer}/authorize`)
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", p.clientId)
  url.searchParams.set("redirect_uri", p.redirectUri ?? REDIRECT)
  url.searchParams.set("code_challenge", p.challenge)
  url.searchParams.set("code_challenge_method", "S256")
  url.searchParams.set("state", p.state ?? "st-123")
  if (p.scope !== undefined) url.searchParams.set("scope", p.scope)
  if (p.resource !== undefined) url.searchParams.set("resource", p.resource)
  for (const [k, v] of Object.entries(p.extra ?? {})) url.searchParams.set(k, v)
  return url.toString()
}

/** Calls /authorize and returns the redirect's Location as a URL (fails the test if there is none). */
export const authorize = (server: TestServer, p: AuthorizeParams) =>
  Effect.map(request(authorizeUrl(server, p)), (res) => {
    const location = res.headers.get("location")
    if (location === null) throw new Error(`expected a redirect, got ${res.status}: ${res.text}`)
    return { status: res.status, location: new URL(location) }
  })

/** Registers a public client and runs the whole code flow; returns the token response. */
export const codeFlow = (server: TestServer, options: { readonly scope?: string; readonly resource?: string } = {}) =>
  Effect.gen(function*() {
    const client = yield* registerPublicClient(server)
    const { challenge, verifier } = pkcePair()
    const { location } = yield* authorize(server, { clientId: client.client_id, challenge, ...options })
    const code = location.searchParams.get("code")!
    const token = yield* postForm(`${server.issuer}/token`, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: client.client_id,
      ...(options.resource === undefined ? {} : { resource: options.resource })
    })
    return { client, token, verifier, code }
  })
