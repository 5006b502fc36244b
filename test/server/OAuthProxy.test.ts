/**
 * The OAuth proxy in front of oidc-provider with dynamic registration turned off and one static
 * client (the proxy's): the library's McpClient registers with the proxy, the user (a scripted
 * user agent with a cookie jar) approves the proxy's consent page, signs in and consents
 * upstream, the client calls a tool on an MCP endpoint verifying the proxy's own tokens,
 * refreshes, and its token is revoked. A second client is not let through on the user's earlier
 * upstream consent: it meets the proxy's consent page, and a consent form posted from another
 * browser (no cookie) is refused.
 */
import { FetchHttpClient, HttpServer, KeyValueStore } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import type { Duration } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"
import * as OAuthProxy from "../../src/server/OAuthProxy.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { BrowserOpenError } from "../../src/Authorizer.js"
import { available, CHROMIUM, inCi, launch, newPage } from "../browser/chromium.js"
import { connectSdkClient, SdkOAuthProvider } from "../fixtures/SdkOAuthClient.js"
import { clickThrough, httpUser, startOidcProvider } from "../interop/oidcProvider.js"
import { basic, pkcePair, postForm, postJson, request } from "./http.js"

const UPSTREAM_SECRET = "proxy-upstream-secret"

const pkceChallengeOf = (verifier: string) => createHash("sha256").update(verifier).digest("base64url")

const endpoint = McpEndpoint.make({
  name: "proxy-test",
  version: "1.0.0",
  tools: [
    McpEndpoint.tool({
      name: "whoami",
      parameters: Schema.Struct({}),
      handler: () =>
        Effect.map(BearerAuth.AuthenticatedToken, (t) => ({ subject: t.subject, client: t.clientId, resource: t.resource }))
    })
  ]
})

/** oidc-provider as the upstream, then the proxy + MCP endpoint on one origin in front of it. */
const startProxy = (
  options: { readonly accessTokenTtl?: Duration.DurationInput; readonly discover?: boolean } = {}
) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const base = HttpServer.formatAddress(server.address)
    const mcpUrl = `${base}/mcp`
    const upstream = yield* Effect.acquireRelease(
      Effect.promise(() =>
        startOidcProvider({
          resource: "http://127.0.0.1:9/upstream-api",
          registration: false,
          clients: [{
            client_id: "proxy",
            client_secret: UPSTREAM_SECRET,
            redirect_uris: [`${base}/callback`],
            grant_types: ["authorization_code", "refresh_token"],
            response_types: ["code"],
            token_endpoint_auth_method: "client_secret_basic",
            scope: "openid"
          }]
        })
      ),
      (s) => Effect.promise(() => s.close())
    )
    const proxy = yield* OAuthProxy.make({
      issuer: base,
      resource: mcpUrl,
      upstream: options.discover === true
        ? { issuer: upstream.issuer, clientId: "proxy", clientSecret: Redacted.make(UPSTREAM_SECRET) }
        : {
          issuer: upstream.issuer,
          authorizationEndpoint: `${upstream.issuer}/auth`,
          tokenEndpoint: `${upstream.issuer}/token`,
          clientId: "proxy",
          clientSecret: Redacted.make(UPSTREAM_SECRET)
        },
      ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl })
    }).pipe(Effect.provide(Layer.merge(OAuthProviderStore.layerMemory, FetchHttpClient.layer)))
    const auth = OAuthProxy.authProvider(proxy)
    yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
    return { base, mcpUrl, upstream, proxy }
  }).pipe(Effect.orDie)

const tokenDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "oauth-proxy-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const clientLayer = (directory: string, opener: Authorizer.BrowserOpener) =>
  Layer.mergeAll(
    TokenStorage.layerFileSystemNode(directory),
    Authorizer.layerBrowser({ timeout: "15 seconds" }).pipe(
      Layer.provide(Layer.succeed(Authorizer.BrowserOpener, opener))
    )
  ).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))

const whoami = (client: McpClient.McpClient) =>
  Effect.map(client.callTool("whoami"), (result) => {
    const first = result.content[0]
    const text = typeof first === "object" && first !== null && "text" in first && typeof first.text === "string"
      ? first.text
      : "{}"
    return JSON.parse(text) as { subject: string; client: string; resource: string }
  })

const stored = (mcpUrl: string) =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    const key = TokenStorage.serverKey(mcpUrl)
    return { tokens: yield* storage.getTokens(key), client: yield* storage.getClient(key) }
  })


/**
 * An upstream that accepts any authorization code: records token requests, answers with an ID
 * token of `claims` (a string: the payload part as it is).
 */
const rawUpstream = Effect.gen(function*() {
  const tokenRequests: Array<{ body: URLSearchParams; authorization: string | undefined }> = []
  const state: { claims: Record<string, unknown> | string } = { claims: {} }
  const upstream = yield* Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; close: () => void }>((resolve) => {
        const server = createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (c: Buffer) => chunks.push(c))
          req.on("end", () => {
            tokenRequests.push({
              body: new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
              authorization: req.headers["authorization"]
            })
            const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url")
            const idToken = `${b64({ alg: "none" })}.${
              typeof state.claims === "string" ? state.claims : b64(state.claims)
            }.`
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify({ access_token: "up-at", token_type: "Bearer", id_token: idToken }))
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            close: () => {
              server.closeAllConnections()
              server.close()
            }
          }))
      })
    ),
    (u) => Effect.sync(u.close)
  )
  return {
    tokenRequests,
    upstream,
    setClaims: (claims: Record<string, unknown> | string) => {
      state.claims = claims
      return claims
    }
  }
})


/** A loopback redirect URI that records what it receives (a client's callback). */
const captureServer = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ url: string; received: Array<URL>; close: () => void }>((resolve) => {
      const received: Array<URL> = []
      const server = createServer((req, res) => {
        received.push(new URL(req.url ?? "/", "http://127.0.0.1"))
        res.end("ok")
      })
      server.listen(0, "127.0.0.1", () =>
        resolve({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
          received,
          close: () => {
            server.closeAllConnections()
            server.close()
          }
        }))
    })
  ),
  (c) => Effect.sync(c.close)
)

/**
 * The official SDK's OAuthClientProvider, with the scripted user agent as its browser: the code is
 * the one the capture server last received.
 */
const sdkProvider = (
  capture: { readonly url: string; readonly received: Array<URL> },
  user: Authorizer.BrowserOpener
) =>
  new SdkOAuthProvider({
    redirectUrl: capture.url,
    authorize: async (url) => {
      await Effect.runPromise(user.open(url.toString()))
      const callback = capture.received.at(-1)
      const code = callback?.searchParams.get("code")
      if (code === null || code === undefined) throw new Error(`no code: ${callback?.search}`)
      return code
    }
  })

const connectSdk = (mcpUrl: string, provider: SdkOAuthProvider) =>
  Effect.acquireRelease(
    Effect.promise(() => connectSdkClient(mcpUrl, provider, { name: "sdk-through-proxy" })),
    (client) => Effect.promise(() => client.close())
  )

describe("OAuthProxy in front of oidc-provider (no dynamic registration, one static client)", () => {
  it.scopedLive("McpClient: registers with the proxy, consent + upstream sign-in, calls a tool, refreshes (rotation); a replayed refresh token revokes the grant", () =>
    Effect.gen(function*() {
      const env = yield* startProxy({ accessTokenTtl: "3 seconds" })
      const dir = yield* tokenDirectory
      const user = httpUser(env.upstream.issuer, { alsoOrigins: [env.base] })
      const result = yield* Effect.gen(function*() {
        const client = yield* McpClient.connect(new URL(env.mcpUrl), { auth: { oauth: { clientName: "proxy e2e" } } })
        const me = yield* whoami(client)
        const first = yield* stored(env.mcpUrl)
        // Past the refresh margin of a 3 s token (a few round trips, at most a tenth to a quarter
        // of its lifetime) or past its expiry: either way the next call refreshes first.
        yield* Effect.sleep("2600 millis")
        const again = yield* whoami(client)
        const second = yield* stored(env.mcpUrl)
        return { me, again, first, second }
      }).pipe(Effect.scoped, Effect.provide(clientLayer(dir, user)))

      const client = Option.getOrThrow(result.first.client)
      expect(result.me).toEqual({ subject: "alice", client: client.clientId, resource: env.mcpUrl })
      expect(result.again.subject).toBe("alice")
      const first = Option.getOrThrow(result.first.tokens)
      const second = Option.getOrThrow(result.second.tokens)
      // the proxy's own tokens, rotated on refresh
      expect(Redacted.value(second.accessToken)).not.toBe(Redacted.value(first.accessToken))
      expect(Redacted.value(second.refreshToken!)).not.toBe(Redacted.value(first.refreshToken!))
      expect(Option.isSome(yield* env.proxy.verifyAccessToken(Redacted.value(second.accessToken)))).toBe(true)

      // upstream: no registration, one authorization request by the proxy's client, one code exchange,
      // and nothing for the refresh (the proxy refreshes its own tokens)
      const up = env.upstream.counts
      console.log(
        `[oauth-proxy] upstream requests: registrations=${up.registrations}, authorization=${up.authorizationRequests} ` +
          `(${up.authorizationClientIds.join(",")}), interactions=${up.interactions}, token=${JSON.stringify(up.tokenRequests)}`
      )
      expect(up.registrations).toBe(0)
      expect(up.authorizationClientIds).toEqual(["proxy"])
      expect(up.tokenRequests).toEqual({ authorization_code: { ok: 1, error: 0 } })

      // the replayed refresh token is refused, and revoking the current one ends the grant
      const auth = client.clientSecret === undefined
        ? { headers: {}, fields: { client_id: client.clientId } }
        : { headers: { authorization: basic(client.clientId, Redacted.value(client.clientSecret)) }, fields: {} }
      const replay = yield* postForm(`${env.base}/token`, {
        grant_type: "refresh_token",
        refresh_token: Redacted.value(first.refreshToken!),
        ...auth.fields
      }, auth.headers)
      expect(replay.body["error"]).toBe("invalid_grant")
      // reuse detection revoked the family: the current access token no longer works either
      const call = yield* request(env.mcpUrl, {
        method: "POST",
        headers: { authorization: `Bearer ${Redacted.value(second.accessToken)}`, "content-type": "application/json" },
        body: "{}"
      })
      expect(call.status).toBe(401)
    }))

  it.scopedLive("the official SDK client: registers with the proxy, signs in through it, calls a tool, refreshes after a revocation", () =>
    Effect.gen(function*() {
      const env = yield* startProxy()
      const capture = yield* captureServer
      const provider = sdkProvider(capture, httpUser(env.upstream.issuer, { alsoOrigins: [env.base] }))
      const client = yield* connectSdk(env.mcpUrl, provider)
      const call = Effect.promise(() => client.callTool({ name: "whoami", arguments: {} }))
      const text = (r: unknown) =>
        ((r as { content: Array<{ text?: string }> }).content[0]?.text ?? "")
      const me = JSON.parse(text(yield* call)) as { subject: string; client: string; resource: string }
      expect(me).toEqual({ subject: "alice", client: provider.client?.client_id, resource: env.mcpUrl })
      // the access token revoked at the proxy: the SDK's next call gets 401 and refreshes (rotated)
      const first = provider.saved!
      yield* postForm(`${env.base}/revoke`, { token: first.access_token, client_id: provider.client!.client_id })
      expect(JSON.parse(text(yield* call)).subject).toBe("alice")
      const second = provider.saved!
      expect(second.access_token).not.toBe(first.access_token)
      expect(second.refresh_token).not.toBe(first.refresh_token)
      expect(env.upstream.counts.authorizationClientIds).toEqual(["proxy"])
      expect(env.upstream.counts.tokenRequests).toEqual({ authorization_code: { ok: 1, error: 0 } })
    }))

  it.scopedLive("upstream endpoints from its metadata (read once); revocation at the proxy ends the access token", () =>
    Effect.gen(function*() {
      const env = yield* startProxy({ discover: true })
      const dir = yield* tokenDirectory
      const user = httpUser(env.upstream.issuer, { alsoOrigins: [env.base] })
      const state = yield* Effect.gen(function*() {
        const client = yield* McpClient.connect(new URL(env.mcpUrl), { auth: { oauth: { clientName: "revoker" } } })
        yield* whoami(client)
        return yield* stored(env.mcpUrl)
      }).pipe(Effect.scoped, Effect.provide(clientLayer(dir, user)))
      const client = Option.getOrThrow(state.client)
      const tokens = Option.getOrThrow(state.tokens)
      const fields = client.clientSecret === undefined ? { client_id: client.clientId } : {}
      const headers = client.clientSecret === undefined
        ? {}
        : { authorization: basic(client.clientId, Redacted.value(client.clientSecret)) }
      const revoked = yield* postForm(`${env.base}/revoke`, { token: Redacted.value(tokens.accessToken), ...fields }, headers)
      expect(revoked.status).toBe(200)
      expect(env.upstream.counts.discovery).toEqual({ "/.well-known/oauth-authorization-server": 1 })
      expect(env.upstream.counts.authorizationClientIds).toEqual(["proxy"])
      expect(Option.isNone(yield* env.proxy.verifyAccessToken(Redacted.value(tokens.accessToken)))).toBe(true)
    }))

  it.scopedLive("confused deputy: a second client meets the proxy's consent page despite the upstream session and consent", () =>
    Effect.gen(function*() {
      const env = yield* startProxy()
      const register = (name: string) =>
        Effect.map(
          postJson(`${env.base}/register`, {
            client_name: name,
            redirect_uris: ["http://127.0.0.1:40000/cb"],
            token_endpoint_auth_method: "none"
          }),
          (r) => String(r.body["client_id"])
        )
      const authorizeUrl = (clientId: string) => {
        const url = new URL(`${env.base}/authorize`)
        url.searchParams.set("response_type", "code")
        url.searchParams.set("client_id", clientId)
        url.searchParams.set("redirect_uri", "http://127.0.0.1:40000/cb")
        url.searchParams.set("code_challenge", pkcePair().challenge)
        url.searchParams.set("code_challenge_method", "S256")
        url.searchParams.set("resource", env.mcpUrl)
        url.searchParams.set("state", "s")
        return url.toString()
      }
      // One browser (one cookie jar): the user approves client A at the proxy and upstream.
      const opened: Array<string> = []
      const approving = httpUser(env.upstream.issuer, { alsoOrigins: [env.base], opened })
      const a = yield* register("client A")
      yield* Effect.either(approving.open(authorizeUrl(a)))
      expect(env.upstream.counts.codesIssued).toBe(1)
      const interactionsAfterA = env.upstream.counts.interactions

      // Client B in the same browser, the user does not approve it at the proxy: B never reaches
      // the upstream, although the upstream would have answered at once (session + consent).
      const b = yield* register("client B (attacker)")
      const refusing = httpUser(env.upstream.issuer, { alsoOrigins: [env.base], proxyDecision: "deny" })
      yield* Effect.either(refusing.open(authorizeUrl(b)))
      expect(env.upstream.counts.authorizationRequests).toBe(1)
      expect(env.upstream.counts.codesIssued).toBe(1)

      // The attacker's own consent request id, posted from the victim's browser: no cookie → 403.
      const page = yield* request(authorizeUrl(b), { headers: { accept: "text/html" } })
      expect(page.status).toBe(200)
      expect(page.text).toContain("client B (attacker)")
      const id = /name="request_id" value="([^"]+)"/.exec(page.text)![1]!
      const forged = yield* postForm(`${env.base}/authorize/consent`, { request_id: id, decision: "approve" })
      expect(forged.status).toBe(403)
      expect(forged.headers.get("location")).toBeNull()
      expect(env.upstream.counts.authorizationRequests).toBe(1)

      // Approved at the proxy, B goes upstream and (upstream session and grant kept) gets through
      // without any upstream interaction: the proxy's page was the only question asked.
      const second = httpUser(env.upstream.issuer, { alsoOrigins: [env.base] })
      yield* Effect.either(second.open(authorizeUrl(b)))
      expect(env.upstream.counts.authorizationRequests).toBe(2)
      expect(interactionsAfterA).toBeGreaterThan(0)
    }))

  it.scopedLive("the upstream's denial reaches the client as access_denied; an unknown callback state is refused; two consent tabs", () =>
    Effect.gen(function*() {
      const env = yield* startProxy()
      const received: Array<URL> = []
      const capture = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<{ url: string; close: () => void }>((resolve) => {
            const server = createServer((req, res) => {
              received.push(new URL(req.url ?? "/", "http://127.0.0.1"))
              res.end("ok")
            })
            server.listen(0, "127.0.0.1", () =>
              resolve({
                url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cb`,
                close: () => {
                  server.closeAllConnections()
                  server.close()
                }
              }))
          })
        ),
        (c) => Effect.sync(c.close)
      )
      const registered = yield* postJson(`${env.base}/register`, {
        client_name: "denied",
        redirect_uris: [capture.url],
        token_endpoint_auth_method: "none"
      })
      const clientId = String(registered.body["client_id"])
      const authorizeUrl = (state: string) => {
        const url = new URL(`${env.base}/authorize`)
        url.searchParams.set("response_type", "code")
        url.searchParams.set("client_id", clientId)
        url.searchParams.set("redirect_uri", capture.url)
        url.searchParams.set("code_challenge", pkcePair().challenge)
        url.searchParams.set("code_challenge_method", "S256")
        url.searchParams.set("resource", env.mcpUrl)
        url.searchParams.set("state", state)
        return url.toString()
      }
      const denying = httpUser(env.upstream.issuer, { alsoOrigins: [env.base], decision: "deny" })
      yield* denying.open(authorizeUrl("d1"))
      expect(received).toHaveLength(1)
      expect(received[0]!.searchParams.get("error")).toBe("access_denied")
      expect(received[0]!.searchParams.get("state")).toBe("d1")
      expect(received[0]!.searchParams.get("iss")).toBe(env.base)
      expect(received[0]!.searchParams.get("code")).toBeNull()
      expect(env.upstream.counts.tokenRequests).toEqual({})

      const bogus = yield* request(`${env.base}/callback?state=made-up&code=x`)
      expect(bogus.status).toBe(400)
      expect(bogus.headers.get("location")).toBeNull()

      // Two consent pages open in one browser: each form is bound to its own page's cookie.
      const cookies: Array<string> = []
      const ids: Array<string> = []
      for (const state of ["t1", "t2"]) {
        const page = yield* request(authorizeUrl(state), { headers: { accept: "text/html" } })
        cookies.push((page.headers.get("set-cookie") ?? "").split(";")[0]!)
        ids.push(/name="request_id" value="([^"]+)"/.exec(page.text)![1]!)
      }
      const jar = cookies.join("; ")
      const first = yield* postForm(`${env.base}/authorize/consent`, { request_id: ids[0]!, decision: "deny" }, { cookie: jar })
      expect(first.status).toBe(303)
      expect(first.headers.get("location")).toContain("state=t1")
      // the other tab's cookie does not approve this one
      const crossed = yield* postForm(`${env.base}/authorize/consent`, { request_id: ids[1]!, decision: "approve" }, {
        cookie: cookies[0]!
      })
      expect(crossed.status).toBe(403)
      const second = yield* postForm(`${env.base}/authorize/consent`, { request_id: ids[1]!, decision: "approve" }, { cookie: jar })
      expect(second.status).toBe(303)
      expect(second.headers.get("location")).toContain(`${env.upstream.issuer}/auth?`)
    }))

  it.scopedLive("against a raw upstream: its own PKCE S256 and Basic auth upstream; an ID token for another client or issuer, or a foreign iss, is refused", () =>
    Effect.gen(function*() {
      const { tokenRequests, upstream, setClaims } = yield* rawUpstream
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      const base = HttpServer.formatAddress(server.address)
      const proxy = yield* OAuthProxy.make({
        issuer: base,
        resource: `${base}/mcp`,
        upstream: {
          issuer: upstream.url,
          authorizationEndpoint: `${upstream.url}/authorize`,
          tokenEndpoint: `${upstream.url}/token`,
          clientId: "proxy",
          clientSecret: Redacted.make(UPSTREAM_SECRET)
        }
      }).pipe(Effect.provide(Layer.merge(OAuthProviderStore.layerMemory, FetchHttpClient.layer)))
      yield* server.serve(proxy.router)
      const redirectUri = "http://127.0.0.1:40001/cb"
      const registered = yield* postJson(`${base}/register`, { redirect_uris: [redirectUri], token_endpoint_auth_method: "none" })
      const clientId = String(registered.body["client_id"])
      const pkce = pkcePair()

      /** Through the proxy's consent to the upstream; the browser's trip back to /callback with `query`. */
      const signIn = (query: (state: string) => string) =>
        Effect.gen(function*() {
          const url = new URL(`${base}/authorize`)
          for (const [k, v] of Object.entries({
            response_type: "code",
            client_id: clientId,
            redirect_uri: redirectUri,
            code_challenge: pkce.challenge,
            code_challenge_method: "S256",
            resource: `${base}/mcp`,
            state: "down"
          })) url.searchParams.set(k, v)
          const page = yield* request(url.toString(), { headers: { accept: "text/html" } })
          const id = /name="request_id" value="([^"]+)"/.exec(page.text)![1]!
          const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0]!
          const approved = yield* postForm(`${base}/authorize/consent`, { request_id: id, decision: "approve" }, { cookie })
          const toUpstream = new URL(approved.headers.get("location")!)
          const back = yield* request(`${base}/callback?${query(toUpstream.searchParams.get("state")!)}`)
          return { toUpstream, back: new URL(back.headers.get("location") ?? "http://none/") }
        })

      setClaims({ iss: upstream.url, aud: "proxy", sub: "bob" })
      const ok = yield* signIn((state) => `code=up-code&state=${state}&iss=${encodeURIComponent(upstream.url)}`)
      // upstream authorization request: the proxy's client, its own S256 challenge, openid
      expect(ok.toUpstream.origin + ok.toUpstream.pathname).toBe(`${upstream.url}/authorize`)
      expect(ok.toUpstream.searchParams.get("client_id")).toBe("proxy")
      expect(ok.toUpstream.searchParams.get("redirect_uri")).toBe(`${base}/callback`)
      expect(ok.toUpstream.searchParams.get("code_challenge_method")).toBe("S256")
      expect(ok.toUpstream.searchParams.get("code_challenge")).not.toBe(pkce.challenge)
      expect(ok.toUpstream.searchParams.get("scope")).toBe("openid")
      // upstream token request: Basic auth, the code, the verifier of that challenge
      const sent = tokenRequests[0]!
      expect(sent.authorization).toBe(basic("proxy", UPSTREAM_SECRET))
      expect(sent.body.get("code")).toBe("up-code")
      expect(sent.body.get("client_secret")).toBeNull()
      expect(pkceChallengeOf(sent.body.get("code_verifier")!)).toBe(ok.toUpstream.searchParams.get("code_challenge"))
      // the downstream client gets the proxy's code, redeemable with its own verifier, for bob
      expect(ok.back.searchParams.get("state")).toBe("down")
      const code = ok.back.searchParams.get("code")!
      const tokens = yield* postForm(`${base}/token`, {
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: pkce.verifier,
        client_id: clientId
      })
      expect(tokens.status).toBe(200)
      const claims = yield* proxy.verifyAccessToken(String(tokens.body["access_token"]))
      expect(Option.map(claims, (c) => [c.subject, c.resource])).toEqual(Option.some(["bob", `${base}/mcp`]))

      setClaims({ iss: upstream.url, aud: "someone-else", sub: "bob" })
      const wrongAud = yield* signIn((state) => `code=c2&state=${state}`)
      expect(wrongAud.back.searchParams.get("error")).toBe("server_error")
      expect(wrongAud.back.searchParams.get("code")).toBeNull()
      setClaims({ iss: "http://evil.example", aud: "proxy", sub: "bob" })
      const wrongIss = yield* signIn((state) => `code=c3&state=${state}`)
      expect(wrongIss.back.searchParams.get("error")).toBe("server_error")
      setClaims({ iss: upstream.url, aud: "proxy", sub: "bob" })
      const mixUp = yield* signIn((state) => `code=c4&state=${state}&iss=${encodeURIComponent("http://evil.example")}`)
      expect(mixUp.back.searchParams.get("error")).toBe("access_denied")
      // the mix-up answer was refused before its code was sent anywhere
      expect(tokenRequests.map((r) => r.body.get("code"))).toEqual(["up-code", "c2", "c3"])
      // an audience list naming the proxy is accepted; a payload that is not a JSON object is refused
      setClaims({ iss: upstream.url, aud: ["other", "proxy"], sub: "carol" })
      const listed = yield* signIn((state) => `code=c5&state=${state}`)
      expect(listed.back.searchParams.get("code")).not.toBeNull()
      for (const payload of [Buffer.from("not json").toString("base64url"), "%%%", Buffer.from("[1]").toString("base64url")]) {
        setClaims(payload)
        const malformed = yield* signIn((state) => `code=c6&state=${state}`)
        expect(malformed.back.searchParams.get("error")).toBe("server_error")
        expect(malformed.back.searchParams.get("code")).toBeNull()
      }
    }))

  it.scopedLive("two instances sharing one KeyValueStore: each step of a sign-in and refresh may land on either", () =>
    Effect.gen(function*() {
      const { setClaims, upstream } = yield* rawUpstream
      setClaims({ iss: upstream.url, aud: "proxy", sub: "carol" })
      const kv = yield* KeyValueStore.KeyValueStore.pipe(Effect.provide(KeyValueStore.layerMemory))
      const a = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      const b = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      const baseA = HttpServer.formatAddress(a.address)
      const baseB = HttpServer.formatAddress(b.address)
      // one public issuer (behind a load balancer); two processes, each with its own store over the shared KV
      const instance = Effect.gen(function*() {
        const store = yield* OAuthProviderStore.makeKeyValueStore().pipe(
          Effect.provideService(KeyValueStore.KeyValueStore, kv)
        )
        return yield* OAuthProxy.make({
          issuer: baseA,
          resource: `${baseA}/mcp`,
          upstream: {
            issuer: upstream.url,
            authorizationEndpoint: `${upstream.url}/authorize`,
            tokenEndpoint: `${upstream.url}/token`,
            clientId: "proxy",
            clientSecret: Redacted.make(UPSTREAM_SECRET)
          }
        }).pipe(
          Effect.provideService(OAuthProviderStore.OAuthProviderStore, store),
          Effect.provide(FetchHttpClient.layer)
        )
      })
      const proxyA = yield* instance
      const proxyB = yield* instance
      yield* a.serve(proxyA.router)
      yield* b.serve(proxyB.router)

      const redirectUri = "http://127.0.0.1:40002/cb"
      const registered = yield* postJson(`${baseB}/register`, { redirect_uris: [redirectUri], token_endpoint_auth_method: "none" })
      const clientId = String(registered.body["client_id"])
      const pkce = pkcePair()
      const url = new URL(`${baseA}/authorize`)
      for (const [k, v] of Object.entries({
        response_type: "code",
        client_id: clientId,
        redirect_uri: redirectUri,
        code_challenge: pkce.challenge,
        code_challenge_method: "S256",
        resource: `${baseA}/mcp`
      })) url.searchParams.set(k, v)
      const page = yield* request(url.toString(), { headers: { accept: "text/html" } })
      const id = /name="request_id" value="([^"]+)"/.exec(page.text)![1]!
      const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0]!
      const approved = yield* postForm(`${baseB}/authorize/consent`, { request_id: id, decision: "approve" }, { cookie })
      const state = new URL(approved.headers.get("location")!).searchParams.get("state")!
      const back = yield* request(`${baseA}/callback?code=up&state=${state}`)
      const code = new URL(back.headers.get("location")!).searchParams.get("code")!
      const tokens = yield* postForm(`${baseB}/token`, {
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: pkce.verifier,
        client_id: clientId
      })
      expect(tokens.status).toBe(200)
      const claims = yield* proxyA.verifyAccessToken(String(tokens.body["access_token"]))
      expect(Option.map(claims, (c) => c.subject)).toEqual(Option.some("carol"))
      const refreshed = yield* postForm(`${baseA}/token`, {
        grant_type: "refresh_token",
        refresh_token: String(tokens.body["refresh_token"]),
        client_id: clientId
      })
      expect(refreshed.status).toBe(200)
      const replay = yield* postForm(`${baseB}/token`, {
        grant_type: "refresh_token",
        refresh_token: String(tokens.body["refresh_token"]),
        client_id: clientId
      })
      expect(replay.body["error"]).toBe("invalid_grant")
    }))

  it.scoped("registration: loopback redirect URIs on any port, configured patterns, others refused; no client_credentials", () =>
    Effect.gen(function*() {
      const allowed = OAuthProxy.redirectUriAllowed(["https://app.example.com/cb", /https:\/\/[a-z]+\.example\.org\/oauth/])
      expect(allowed("http://127.0.0.1:5555/callback")).toBe(true)
      expect(allowed("http://localhost:1/x")).toBe(true)
      expect(allowed("https://app.example.com/cb")).toBe(true)
      expect(allowed("https://team.example.org/oauth")).toBe(true)
      expect(allowed("https://evil.example.net/cb")).toBe(false)
      expect(allowed("https://team.example.org/oauth/../x")).toBe(false)
      const env = yield* startProxy()
      const refused = yield* postJson(`${env.base}/register`, { redirect_uris: ["https://evil.example.net/cb"] })
      expect(refused.body["error"]).toBe("invalid_redirect_uri")
      const cc = yield* postJson(`${env.base}/register`, {
        grant_types: ["client_credentials"],
        token_endpoint_auth_method: "client_secret_basic"
      })
      expect(cc.status).toBe(400)
      const metadata = yield* request(`${env.base}/.well-known/oauth-authorization-server`)
      expect(metadata.body["grant_types_supported"]).toEqual(["authorization_code", "refresh_token"])
      expect(metadata.body["introspection_endpoint"]).toBe(`${env.base}/introspect`)
      expect(metadata.body["registration_endpoint"]).toBe(`${env.base}/register`)
    }))
})

describe("OAuthProxy, Chromium as the user", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  it.scopedLive("McpClient through the proxy's consent page and oidc-provider's login and consent, clicked in Chromium", () =>
    Effect.gen(function*() {
      const env = yield* startProxy()
      const dir = yield* tokenDirectory
      const page = yield* Effect.flatMap(launch, newPage)
      const chromium: Authorizer.BrowserOpener = {
        open: (url) =>
          Effect.tryPromise({
            try: async () => {
              await page.goto(url)
              // the proxy's own consent page names the client
              const client = await page.textContent("#client")
              if (client !== "proxy in chromium") throw new Error(`consent page names ${client}`)
              const before = page.url()
              await Promise.all([page.waitForURL((u) => u.href !== before), page.click("#approve")])
              await page.waitForLoadState("load")
              await clickThrough(page, page.url(), env.upstream.issuer)
            },
            catch: (error) => new BrowserOpenError({ detail: String(error) })
          })
      }
      const me = yield* Effect.gen(function*() {
        const client = yield* McpClient.connect(new URL(env.mcpUrl), { auth: { oauth: { clientName: "proxy in chromium" } } })
        return yield* whoami(client)
      }).pipe(Effect.scoped, Effect.provide(clientLayer(dir, chromium)))
      expect(me.subject).toBe("alice")
      expect(me.resource).toBe(env.mcpUrl)
      expect(env.upstream.counts.authorizationClientIds).toEqual(["proxy"])
      expect(env.upstream.counts.tokenRequests).toEqual({ authorization_code: { ok: 1, error: 0 } })
    }))
})
