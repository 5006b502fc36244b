/**
 * The library against an INDEPENDENT authorization server: panva's oidc-provider configured like
 * a production one (open DCR + RFC 7592, PKCE S256 required, RFC 8707 JWT access tokens for the
 * MCP URL, rotating refresh tokens with reuse detection, RFC 9207 `iss`, PAR on, login + consent
 * as HTML forms, the registered `scope` enforced), in front of an MCP server built on the official
 * SDK that binds sessions to `sub` + `client_id` (see ./oidcProvider.ts). Every scenario goes
 * through `McpClient` with `auth: { oauth }`, `Authorizer.layerBrowser` and the file
 * `TokenStorage`; the user is real Chromium clicking the forms (first sign-in, deny, step-up) or a
 * scripted user agent posting the same forms over HTTP (elsewhere). Each scenario asserts and logs
 * what the authorization server counted: registrations, authorization requests, token requests
 * per grant. Chromium scenarios skip locally and fail in CI (CI=true) when Chromium is missing.
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import type { Duration } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import * as Discovery from "../../src/Discovery.js"
import { AuthorizationError } from "../../src/Errors.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as Revocation from "../../src/Revocation.js"
import { type ClientInformation, StoredToken } from "../../src/Schemas.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { available, CHROMIUM, inCi, launch, newPage } from "../browser/chromium.js"
import { rawOAuthServer } from "../oauthRawServer.js"
import { chromiumUser, httpUser, startInterop, summarize } from "./oidcProvider.js"
import type { Decision, Interop } from "./oidcProvider.js"

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** A fresh token directory, removed with the scope. */
const tokenDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "oidc-interop-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * What one client process has: the file store in `directory`, the browser sign-in with `opener`
 * as the user's browser, and an HTTP client. A new call is a new instance (a new process).
 */
const clientLayer = (
  directory: string,
  opener: Authorizer.BrowserOpener,
  http: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) =>
  Layer.mergeAll(
    TokenStorage.layerFileSystemNode(directory),
    Authorizer.layerBrowser({ timeout: "15 seconds" }).pipe(
      Layer.provide(Layer.succeed(Authorizer.BrowserOpener, opener))
    )
  ).pipe(Layer.provideMerge(http))

/** An HTTP client that follows redirects itself, below the library (where it cannot stop them). */
const followingUndici = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(HttpClient.HttpClient, HttpClient.followRedirects())
).pipe(Layer.provide(NodeHttpClient.layerUndici))

const connect = (
  interop: Interop,
  options: { readonly scopes?: ReadonlyArray<string>; readonly requestTimeout?: Duration.DurationInput } = {}
) =>
  McpClient.connect(new URL(interop.mcp.url), {
    auth: { oauth: { clientName: "effect-mcp-oauth interop", ...(options.scopes === undefined ? {} : { scopes: options.scopes }) } },
    ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout })
  })

interface WhoAmI {
  readonly sub: string
  readonly clientId: string
  readonly scopes: ReadonlyArray<string>
}

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): string => {
  const first = result.content[0]
  return typeof first === "object" && first !== null && "text" in first && typeof first.text === "string"
    ? first.text
    : ""
}

const whoami = (client: McpClient.McpClient) =>
  Effect.map(client.callTool("whoami"), (result): WhoAmI => JSON.parse(textOf(result)))

const storedState = (interop: Interop) =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    const key = TokenStorage.serverKey(interop.mcp.url)
    return { tokens: yield* storage.getTokens(key), client: yield* storage.getClient(key) }
  })

/** The error and its `cause`s, outermost first. */
const causeChain = (error: unknown): ReadonlyArray<unknown> => {
  const chain: Array<unknown> = []
  let current = error
  while (typeof current === "object" && current !== null && chain.length < 10) {
    chain.push(current)
    current = "cause" in current ? current.cause : undefined
  }
  return chain
}

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" ? u._tag : undefined

const reasonOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "reason" in u && typeof u.reason === "string" ? u.reason : undefined

const log = (scenario: string, interop: Interop) =>
  Effect.sync(() => console.log(summarize(scenario, interop.as.counts, interop.mcp.counts)))

const redirectUriOf = (url: string): string => new URL(url).searchParams.get("redirect_uri") ?? ""
const clientIdOf = (url: string): string => new URL(url).searchParams.get("client_id") ?? ""
const scopeOf = (url: string): ReadonlyArray<string> =>
  (new URL(url).searchParams.get("scope") ?? "").split(" ").filter((s) => s !== "").sort()

/**
 * A fresh oidc-provider and MCP server, and an empty token directory. `asProcess(user)` runs an
 * effect as one client process (its own scope and layers over that directory) whose browser is
 * `user`; `whoamiAs` connects such a process and calls `whoami`; `stored` and `clearTokens` read
 * and change the directory from outside.
 */
const setup = (options: Parameters<typeof startInterop>[0] = {}) =>
  Effect.gen(function*() {
    const interop = yield* startInterop(options)
    const dir = yield* tokenDirectory
    const asProcess = (user: Authorizer.BrowserOpener, http?: Layer.Layer<HttpClient.HttpClient>) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.scoped, Effect.provide(clientLayer(dir, user, http)))
    const whoamiAs = (
      user: Authorizer.BrowserOpener,
      connectOptions: Parameters<typeof connect>[1] = { scopes: ["mcp:read"] }
    ) => asProcess(user)(Effect.flatMap(connect(interop, connectOptions), whoami))
    const onDirectory = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, TokenStorage.layerFileSystemNode(dir))
    const stored = onDirectory(storedState(interop))
    const clearTokens = onDirectory(
      Effect.flatMap(TokenStorage.TokenStorage, (storage) => storage.clearTokens(TokenStorage.serverKey(interop.mcp.url)))
    )
    return { interop, asProcess, whoamiAs, stored, clearTokens, onDirectory }
  })

/**
 * `setup` with a Chromium page as the user's browser (`user`, which takes `decision` on the
 * consent page); `opened` lists the authorization URLs it was sent to.
 */
const setupWithChromium = (decision: { readonly decision?: Decision } = {}) =>
  Effect.gen(function*() {
    const environment = yield* setup()
    const page = yield* Effect.flatMap(launch, newPage)
    const opened: Array<string> = []
    const user = chromiumUser(page, environment.interop.as.issuer, { opened, ...decision })
    return { ...environment, opened, user }
  })

/** What one sign-in costs at the authorization server: 1 registration, 1 code, 1 code exchange. */
const expectOneSignIn = (counts: Interop["as"]["counts"]) => {
  expect(counts.registrations).toBe(1)
  expect(counts.codesIssued).toBe(1)
  expect(counts.tokenRequests).toEqual({ authorization_code: { ok: 1, error: 0 } })
}

/** A refresh-token grant (RFC 6749 §6) at the AS, made directly, not through the library. */
const refreshDirectly = (interop: Interop, client: ClientInformation, refreshToken: Redacted.Redacted<string>) =>
  Effect.promise(async () => {
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: Redacted.value(refreshToken),
      resource: interop.mcp.url
    })
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" }
    if (client.clientSecret === undefined) body.set("client_id", client.clientId)
    else {
      headers["authorization"] = "Basic " + Buffer.from(
        `${encodeURIComponent(client.clientId)}:${encodeURIComponent(Redacted.value(client.clientSecret))}`
      ).toString("base64")
    }
    const response = await fetch(`${interop.as.issuer}/token`, { method: "POST", headers, body })
    return { status: response.status, body: await response.json() as unknown }
  })

/** Whether anything still accepts connections at `url`. */
const listening = (url: string) =>
  Effect.promise(() =>
    fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => {
        await r.arrayBuffer()
        return true
      },
      () => false
    )
  )

// -----------------------------------------------------------------------------
// Real Chromium clicks the forms
// -----------------------------------------------------------------------------

describe("oidc-provider interop, Chromium as the user", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  it.scopedLive("first sign-in: 401 → DCR → login + consent clicked in Chromium → JWT for the MCP URL; 1 registration, 1 authorization (code), 1 code exchange", () =>
    Effect.gen(function*() {
      const { asProcess, interop, opened, user } = yield* setupWithChromium()
      const result = yield* asProcess(user)(Effect.gen(function*() {
        const client = yield* connect(interop, { scopes: ["mcp:read"] })
        const me = yield* whoami(client)
        return { me, stored: yield* storedState(interop) }
      }))
      yield* log("first sign-in", interop)

      expect(result.me.sub).toBe("alice")
      expect(result.me.scopes).toEqual(["mcp:read"])
      expect(opened).toHaveLength(1)
      expect(redirectUriOf(opened[0]!)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
      expect(new URL(opened[0]!).searchParams.get("code_challenge_method")).toBe("S256")
      expect(new URL(opened[0]!).searchParams.get("resource")).toBe(interop.mcp.url)
      expect(Option.map(result.stored.client, (c) => c.clientId)).toEqual(Option.some(result.me.clientId))
      expect(Option.map(result.stored.tokens, (t) => t.issuer)).toEqual(Option.some(interop.as.issuer))
      expect(Option.map(result.stored.tokens, (t) => t.refreshToken !== undefined)).toEqual(Option.some(true))

      expectOneSignIn(interop.as.counts)
      expect(interop.mcp.counts.sessions).toBe(1)
    }))

  it.scopedLive("deny: Cancel on the consent page → AuthorizationError Denied (access_denied) at the McpClient API, nothing stored, callback server closed", () =>
    Effect.gen(function*() {
      const { interop, opened, user, whoamiAs, ...directory } = yield* setupWithChromium({ decision: "deny" })
      const exit = yield* Effect.exit(whoamiAs(user))
      const stored = yield* directory.stored
      yield* log("deny", interop)

      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) return
      // A clean exit: one typed failure, no defect, no interruption.
      expect(Cause.isInterrupted(exit.cause)).toBe(false)
      expect([...Cause.defects(exit.cause)]).toEqual([])
      const failure = Cause.failureOption(exit.cause)
      expect(Option.isSome(failure)).toBe(true)
      const chain = causeChain(Option.getOrUndefined(failure))
      const described = chain.map((e) => `${tagOf(e) ?? "?"}(${reasonOf(e) ?? ""})`)
      const denied = chain.find((e): e is AuthorizationError => e instanceof AuthorizationError)
      expect(denied?.reason).toBe("Denied")
      expect(denied?.error).toBe("access_denied")
      expect(described).toContain("AuthorizationError(Denied)")

      expect(opened).toHaveLength(1)
      expect(yield* listening(redirectUriOf(opened[0]!))).toBe(false)
      expect(Option.isNone(stored.tokens)).toBe(true)
      const counts = interop.as.counts
      expect(counts.registrations).toBe(1)
      expect(counts.codesIssued).toBe(0)
      // The user's denial, once (a pre-flight's prompt=none answer is another test's business).
      expect(counts.authorizationErrors.filter((e) => e === "access_denied")).toHaveLength(1)
      expect(counts.tokenRequests).toEqual({})
      expect(interop.mcp.counts.sessions).toBe(0)
    }))

  it.scopedLive("step-up from mcp:read to mcp:write in one call: 403 insufficient_scope → consent for mcp:write in Chromium → the call succeeds; 1 registration, 2 authorizations", () =>
    Effect.gen(function*() {
      const { asProcess, interop, opened, user } = yield* setupWithChromium()
      const result = yield* asProcess(user)(Effect.gen(function*() {
        const client = yield* connect(interop, { scopes: ["mcp:read"] })
        const before = yield* whoami(client)
        const written = textOf(yield* client.callTool("write"))
        const after = yield* whoami(client)
        return { before, written, after, stored: yield* storedState(interop) }
      }))
      yield* log("step-up", interop)

      expect(result.before.scopes).toEqual(["mcp:read"])
      expect(result.written).toBe("written")
      expect([...result.after.scopes].sort()).toEqual(["mcp:read", "mcp:write"])
      expect(result.after.clientId).toBe(result.before.clientId)
      expect(opened).toHaveLength(2)
      // The union (the library may add offline_access where the AS lists it).
      expect(scopeOf(opened[1]!)).toEqual(expect.arrayContaining(["mcp:read", "mcp:write"]))
      expect(clientIdOf(opened[1]!)).toBe(clientIdOf(opened[0]!))
      expect(Option.map(result.stored.tokens, (t) => [...t.scopes])).toEqual(
        Option.some(expect.arrayContaining(["mcp:read", "mcp:write"]))
      )

      const counts = interop.as.counts
      expect(interop.mcp.counts.status403).toBe(1)
      // The server keeps the session of the same user and client: the retry goes on in it.
      expect(interop.mcp.counts.sessions).toBe(1)
      expect(interop.mcp.counts.status404).toBe(0)
      expect(counts.registrations).toBe(1)
      expect(counts.codesIssued).toBe(2)
      // Never refused for the scope (a pre-flight's prompt=none login_required is another test's business).
      expect(counts.authorizationErrors.filter((e) => e !== "login_required")).toEqual([])
      expect(counts.tokenRequests).toEqual({ authorization_code: { ok: 2, error: 0 } })
    }))
})

// -----------------------------------------------------------------------------
// A scripted user agent posts the same forms
// -----------------------------------------------------------------------------

describe("oidc-provider interop, a scripted user agent", () => {
  it.scopedLive("one authorization request per sign-in: no pre-flight GET of the authorization URL when RFC 7592 can answer", () =>
    Effect.gen(function*() {
      const { interop, whoamiAs } = yield* setup()
      const opened: Array<string> = []
      yield* whoamiAs(httpUser(interop.as.issuer, { opened }))
      yield* log("one authorization request per sign-in", interop)

      const counts = interop.as.counts
      expect(opened).toHaveLength(1)
      expect(counts.codesIssued).toBe(1)
      // Each GET of the authorization URL starts a login interaction at the AS.
      expect(counts.authorizationRequests).toBe(1)
    }))

  it.scopedLive("a denied sign-in reaches the McpClient caller as the typed AuthorizationError, not as a closed transport", () =>
    Effect.gen(function*() {
      const { interop, whoamiAs } = yield* setup()
      const error = yield* Effect.flip(whoamiAs(httpUser(interop.as.issuer, { decision: "deny" })))
      yield* log("deny, as the caller sees it", interop)
      const chain = causeChain(error)
      const described = chain.map((e) => `${tagOf(e) ?? "?"}(${reasonOf(e) ?? ""})`)
      expect(described).toContain("AuthorizationError(Denied)")
      expect(described.filter((d) => d === "McpTransportError(Closed)")).toEqual([])
      // Wrapped once at most: the OAuth error is the error itself or its direct cause.
      expect(described.indexOf("AuthorizationError(Denied)")).toBeLessThanOrEqual(1)
    }))

  it.scopedLive("refresh by expiry rotates the refresh token; the replayed old refresh token is refused (invalid_grant)", () =>
    Effect.gen(function*() {
      const { asProcess, interop } = yield* setup({ accessTokenTtl: 4 })
      const result = yield* asProcess(httpUser(interop.as.issuer))(Effect.gen(function*() {
        const client = yield* connect(interop, { scopes: ["mcp:read"] })
        yield* whoami(client)
        const first = yield* storedState(interop)
        // Past 3 s of the 4 s lifetime: inside the refresh margin (a quarter of a lifetime this short).
        yield* Effect.sleep("3300 millis")
        const me = yield* whoami(client)
        const second = yield* storedState(interop)
        return { me, first, second }
      }))

      const first = Option.getOrThrow(result.first.tokens)
      const second = Option.getOrThrow(result.second.tokens)
      const client = Option.getOrThrow(result.first.client)
      expect(result.me.sub).toBe("alice")
      expect(Redacted.value(second.accessToken)).not.toBe(Redacted.value(first.accessToken))
      expect(first.refreshToken).toBeDefined()
      expect(second.refreshToken).toBeDefined()
      expect(Redacted.value(second.refreshToken!)).not.toBe(Redacted.value(first.refreshToken!))

      // The first refresh token, already used once, presented again.
      const replay = yield* refreshDirectly(interop, client, first.refreshToken!)
      yield* log("refresh by expiry + replay", interop)
      expect(replay.status).toBe(400)
      expect(replay.body).toMatchObject({ error: "invalid_grant" })

      const counts = interop.as.counts
      expect(counts.registrations).toBe(1)
      expect(counts.codesIssued).toBe(1)
      expect(counts.tokenRequests).toEqual({
        authorization_code: { ok: 1, error: 0 },
        refresh_token: { ok: 1, error: 1 }
      })
      expect(counts.tokenErrors).toEqual(["refresh_token:invalid_grant"])
    }))

  it.scopedLive("an MCP request redirected to another origin by a client below: the exposed set is revoked at oidc-provider, its refresh token refused after, and the next call signs in again", () =>
    Effect.gen(function*() {
      const evil = yield* rawOAuthServer(() => ({ status: 404, json: { error: "not_found" } }))
      const { asProcess, interop } = yield* setup()
      const result = yield* asProcess(httpUser(interop.as.issuer), followingUndici)(Effect.gen(function*() {
        const client = yield* connect(interop, { scopes: ["mcp:read"] })
        yield* whoami(client)
        const exposed = yield* storedState(interop)
        interop.mcp.redirectNext(`${evil.url}/mcp`)
        const error = yield* Effect.flip(whoami(client))
        const afterError = yield* storedState(interop)
        const me = yield* whoami(client)
        const after = yield* storedState(interop)
        return { exposed, error, afterError, me, after }
      }))
      yield* log("exposure by a redirect below the library", interop)
      const exposed = Option.getOrThrow(result.exposed.tokens)
      const client = Option.getOrThrow(result.exposed.client)
      // The leak itself happened below the library (its limit): the other origin got the token.
      expect(evil.requests.map((r) => r.headers["authorization"])).toEqual([`Bearer ${Redacted.value(exposed.accessToken)}`])
      const described = causeChain(result.error).map((e) => `${tagOf(e) ?? "?"}(${reasonOf(e) ?? ""})`)
      expect(described).toContain("OAuthRequestError(Redirect)")
      const oauthError = causeChain(result.error).find((e) => tagOf(e) === "OAuthRequestError")
      expect(oauthError).toMatchObject({ exposed: ["access_token"] })
      const message = oauthError instanceof Error ? oauthError.message : ""
      // oidc-provider revokes the refresh token (and with it the grant) but refuses to revoke its
      // self-contained JWT access token (RFC 9068; it stores none): the error says the leaked
      // token stays valid, and until when.
      expect(interop.as.counts.revocations).toEqual([200, 400])
      expect(message).toMatch(
        /the refresh token was revoked at .* and the tokens forgotten; revoking the access_token failed: the revocation endpoint answered unsupported_token_type \(HTTP 400\)/
      )
      expect(message).toContain(
        `the exposed access token was not revoked and stays valid until it expires (${new Date(exposed.expiresAt!).toISOString()})`
      )
      expect(result.afterError.tokens).toEqual(Option.none())
      // The refresh token is dead at the AS: a refresh with it is refused.
      const replay = yield* refreshDirectly(interop, client, exposed.refreshToken!)
      expect(replay.status).toBe(400)
      expect(replay.body).toMatchObject({ error: "invalid_grant" })
      // The next call signed in again, with the registered client kept, and got a new token set.
      expect(result.me.sub).toBe("alice")
      const renewed = Option.getOrThrow(result.after.tokens)
      expect(Redacted.value(renewed.accessToken)).not.toBe(Redacted.value(exposed.accessToken))
      expect(interop.as.counts.registrations).toBe(1)
      expect(interop.as.counts.codesIssued).toBe(2)
    }))

  it.scopedLive("DPoP with oidc-provider's nonces: bound tokens; a new process presents the stored set, and after expiry refreshes it, with the stored key: no sign-in; sign-out revokes the bound refresh token", () =>
    Effect.gen(function*() {
      const { asProcess, interop, onDirectory, stored, whoamiAs } = yield* setup({ dpop: true, accessTokenTtl: 4 })
      const me = yield* whoamiAs(httpUser(interop.as.issuer))
      const first = Option.getOrThrow((yield* stored).tokens)
      expect(me.sub).toBe("alice")
      expect(first.tokenType).toBe("DPoP")
      expect(first.dpopKey).toBeDefined()
      const signedIn = structuredClone(interop.as.counts)
      const boundRequests = interop.mcp.counts.dpopBound
      expect(boundRequests).toBeGreaterThan(0)

      // A second process, the token still valid: presented with proofs of the stored key.
      const opened: Array<string> = []
      const second = yield* whoamiAs(httpUser(interop.as.issuer, { opened }))
      expect(second.sub).toBe("alice")
      expect(interop.as.counts).toEqual(signedIn)
      expect(interop.mcp.counts.dpopBound).toBeGreaterThan(boundRequests)
      expect(interop.mcp.counts.status401).toBe(1)

      // Past the refresh margin of the 4 s token: a third process refreshes with the stored key
      // (oidc-provider binds a public client's refresh token to it, RFC 9449 §5).
      yield* Effect.sleep("3300 millis")
      const third = yield* asProcess(httpUser(interop.as.issuer, { opened }))(
        Effect.flatMap(connect(interop, { scopes: ["mcp:read"] }), whoami)
      )
      yield* log("DPoP across processes", interop)
      expect(third.sub).toBe("alice")
      expect(opened).toEqual([])
      expect(interop.as.counts.authorizationRequests).toBe(1)
      expect(interop.as.counts.tokenRequests["refresh_token"]?.ok).toBe(1)
      expect(interop.as.counts.tokenErrors.filter((e) => e !== "authorization_code:use_dpop_nonce" && e !== "refresh_token:use_dpop_nonce")).toEqual([])
      const refreshed = Option.getOrThrow((yield* stored).tokens)
      expect(Redacted.value(refreshed.accessToken)).not.toBe(Redacted.value(first.accessToken))
      expect(Redacted.value(refreshed.dpopKey!)).toBe(Redacted.value(first.dpopKey!))

      // Sign-out (the CLI's logout) revokes the DPoP-bound refresh token: gone from the provider.
      const refreshTokenKnown = Effect.promise(() =>
        interop.as.provider.RefreshToken.find(Redacted.value(refreshed.refreshToken!)).then((t) => t !== undefined)
      )
      expect(yield* refreshTokenKnown).toBe(true)
      const signedOut = yield* onDirectory(Revocation.signOut(TokenStorage.serverKey(interop.mcp.url))).pipe(
        Effect.provide(Discovery.layer().pipe(Layer.provideMerge(NodeHttpClient.layerUndici)))
      )
      expect(signedOut.revoked).toContain("refresh_token")
      expect(interop.as.counts.revocations[0]).toBe(200)
      expect(yield* refreshTokenKnown).toBe(false)
      expect(Option.isNone((yield* stored).tokens)).toBe(true)
    }))

  it.scopedLive("DPoP: a corrupted stored key loses nothing but that set: the next process signs in again, and stores a usable key", () =>
    Effect.gen(function*() {
      const { interop, onDirectory, stored, whoamiAs } = yield* setup({ dpop: true })
      yield* whoamiAs(httpUser(interop.as.issuer))
      const first = Option.getOrThrow((yield* stored).tokens)
      yield* onDirectory(Effect.flatMap(TokenStorage.TokenStorage, (storage) =>
        storage.setTokens(
          TokenStorage.serverKey(interop.mcp.url),
          new StoredToken({ ...first, dpopKey: Redacted.make("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1}") })
        )))
      const me = yield* whoamiAs(httpUser(interop.as.issuer))
      yield* log("DPoP with a corrupted stored key", interop)
      expect(me.sub).toBe("alice")
      expect(interop.as.counts.codesIssued).toBe(2)
      expect(interop.as.counts.registrations).toBe(1)
      const renewed = Option.getOrThrow((yield* stored).tokens)
      expect(renewed.tokenType).toBe("DPoP")
      expect(Redacted.value(renewed.dpopKey!)).toMatch(/"d":/)
    }))

  it.scopedLive("a second process reuses the file store: no browser, no registration, no authorization, no token request", () =>
    Effect.gen(function*() {
      const { interop, whoamiAs } = yield* setup()
      const first = yield* whoamiAs(httpUser(interop.as.issuer))
      const afterFirst = structuredClone(interop.as.counts)

      // A new layer instance, a new scope: nothing shared with the first but the directory.
      const opened: Array<string> = []
      const second = yield* whoamiAs(httpUser(interop.as.issuer, { opened }))
      yield* log("second process on the file store", interop)

      expect(second).toEqual(first)
      expect(opened).toEqual([])
      const { discovery: _d1, ...now } = interop.as.counts
      const { discovery: _d2, ...then } = afterFirst
      expect(now).toEqual(then)
      expectOneSignIn(afterFirst)
      expect(interop.mcp.counts.sessions).toBe(2)
    }))

  it.scopedLive("a re-login (tokens gone, client kept) reuses the registered client on a new callback port: 1 registration, 2 authorizations", () =>
    Effect.gen(function*() {
      const { clearTokens, interop, whoamiAs } = yield* setup()
      const opened: Array<string> = []
      const run = whoamiAs(httpUser(interop.as.issuer, { opened }))
      const first = yield* run
      yield* clearTokens
      const second = yield* run
      yield* log("re-login", interop)

      expect(second.clientId).toBe(first.clientId)
      expect(opened).toHaveLength(2)
      expect(clientIdOf(opened[1]!)).toBe(clientIdOf(opened[0]!))
      const counts = interop.as.counts
      expect(counts.registrations).toBe(1)
      expect(counts.codesIssued).toBe(2)
      expect(counts.tokenRequests).toEqual({ authorization_code: { ok: 2, error: 0 } })
    }))

  for (const mode of ["oidc", "rfc8414"] as const) {
    const path = mode === "oidc" ? "/.well-known/openid-configuration" : "/.well-known/oauth-authorization-server"
    it.scopedLive(`metadata only at ${path}: discovered there and the sign-in completes`, () =>
      Effect.gen(function*() {
        const { interop, whoamiAs } = yield* setup({ discovery: mode })
        const me = yield* whoamiAs(httpUser(interop.as.issuer))
        yield* log(`metadata only at ${path}`, interop)

        expect(me.sub).toBe("alice")
        const counts = interop.as.counts
        expect(counts.discovery[path] ?? 0).toBeGreaterThanOrEqual(1)
        expectOneSignIn(counts)
      }))
  }

  it.scopedLive("a client deleted at the AS: the RFC 7592 read fails and the library registers again before the browser opens", () =>
    Effect.gen(function*() {
      const { clearTokens, interop, whoamiAs, ...directory } = yield* setup()
      const run = (opened: Array<string>) => whoamiAs(httpUser(interop.as.issuer, { opened }))
      const first = yield* run([])
      const stored = yield* directory.stored
      expect(Option.map(stored.client, (c) => c.registrationClientUri !== undefined)).toEqual(Option.some(true))
      yield* Effect.promise(() => interop.as.deleteClient(first.clientId))
      expect(yield* Effect.promise(() => interop.as.hasClient(first.clientId))).toBe(false)
      // The user signs in again (tokens gone); the stored client no longer exists at the AS.
      yield* clearTokens
      const before = structuredClone(interop.as.counts)
      const opened: Array<string> = []
      const second = yield* run(opened)
      yield* log("client deleted at the AS", interop)

      const counts = interop.as.counts
      expect(second.clientId).not.toBe(first.clientId)
      // The browser opened once, already with the new client.
      expect(opened.map(clientIdOf)).toEqual([second.clientId])
      expect(counts.registrations - before.registrations).toBe(1)
      expect(counts.clientConfiguration.GET - before.clientConfiguration.GET).toBeGreaterThanOrEqual(1)
      // No authorization request was ever sent for the deleted client (how many were sent for the
      // new one is the one-request-per-sign-in test's business).
      const sent = counts.authorizationClientIds.slice(before.authorizationClientIds.length)
      expect(sent.length).toBeGreaterThanOrEqual(1)
      expect(sent.filter((id) => id !== second.clientId)).toEqual([])
      expect(counts.tokenRequests).toEqual({ authorization_code: { ok: 2, error: 0 } })
    }))

  it.scopedLive("the MCP server forgets the session: its 404 starts a new session (subscribers told), the call succeeds, no new sign-in", () =>
    Effect.gen(function*() {
      const { asProcess, interop } = yield* setup()
      const opened: Array<string> = []
      const result = yield* asProcess(httpUser(interop.as.issuer, { opened }))(Effect.gen(function*() {
        const client = yield* connect(interop, { scopes: ["mcp:read"] })
        const events = yield* client.subscribe
        const before = yield* whoami(client)
        yield* Effect.promise(() => interop.mcp.forgetSessions())
        const after = yield* whoami(client)
        const restarted = (yield* events.takeAll).pipe((all) => [...all].filter(McpClient.isSessionRestarted))
        return { before, after, restarted: restarted.length }
      }))
      yield* log("session forgotten by the MCP server", interop)

      expect(result.after).toEqual(result.before)
      expect(result.restarted).toBe(1)
      expect(opened).toHaveLength(1)
      expect(interop.mcp.counts.status404).toBe(1)
      expect(interop.mcp.counts.sessions).toBe(2)
      expectOneSignIn(interop.as.counts)
    }))

  it.scopedLive("a sign-in left waiting past the MCP request timeout still completes", () =>
    Effect.gen(function*() {
      const { interop, whoamiAs } = yield* setup()
      const opened: Array<string> = []
      // The user takes 3.5 s to get to the browser; the MCP request timeout is 2 s.
      const user = httpUser(interop.as.issuer, { opened, delayMillis: 3500 })
      const me = yield* whoamiAs(user, { scopes: ["mcp:read"], requestTimeout: "2 seconds" })
      yield* log("slow sign-in", interop)

      expect(me.sub).toBe("alice")
      expect(opened).toHaveLength(1)
      expectOneSignIn(interop.as.counts)
    }))
})

// -----------------------------------------------------------------------------
// The fixture is what it claims to be
// -----------------------------------------------------------------------------

describe("the oidc-provider fixture", () => {
  const json = (response: Response) => response.json() as Promise<Record<string, unknown>>

  /** Registers a native public client the way an MCP client would. */
  const register = (issuer: string, body: Record<string, unknown>) =>
    fetch(`${issuer}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        ...body
      })
    })

  /** The `Location` a GET of the authorization endpoint answers with (never followed). */
  const authorize = async (issuer: string, params: Record<string, string>) => {
    const response = await fetch(`${issuer}/auth?${new URLSearchParams(params)}`, { redirect: "manual" })
    await response.arrayBuffer()
    const location = response.headers.get("location")
    return { status: response.status, location: location === null ? undefined : new URL(location, issuer) }
  }

  const S256 = { code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" }

  it.scopedLive("production-like: metadata, PKCE required, registered scope enforced, loopback redirect on any port for native clients", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop()
      const issuer = interop.as.issuer
      const checks = yield* Effect.promise(async () => {
        const metadata = await json(await fetch(`${issuer}/.well-known/oauth-authorization-server`))
        const registered = await json(
          await register(issuer, { redirect_uris: ["http://127.0.0.1:1111/callback"], scope: "mcp:read" })
        )
        const clientId = String(registered["client_id"])
        const base = { response_type: "code", client_id: clientId, state: "s", resource: interop.mcp.url }
        // Another loopback port than the registered one: accepted (to the login interaction).
        const otherPort = await authorize(issuer, {
          ...base,
          ...S256,
          redirect_uri: "http://127.0.0.1:2222/callback",
          scope: "mcp:read"
        })
        // Without PKCE: refused.
        const noPkce = await authorize(issuer, { ...base, redirect_uri: "http://127.0.0.1:2222/callback", scope: "mcp:read" })
        // A scope outside the registered one: invalid_scope.
        const wider = await authorize(issuer, {
          ...base,
          ...S256,
          redirect_uri: "http://127.0.0.1:2222/callback",
          scope: "mcp:read mcp:write"
        })
        // RFC 7592: the client configuration endpoint answers with the registration access token.
        const read = await fetch(String(registered["registration_client_uri"]), {
          headers: { authorization: `Bearer ${String(registered["registration_access_token"])}` }
        })
        await read.arrayBuffer()
        return { metadata, registered, otherPort, noPkce, wider, readStatus: read.status }
      })
      expect(checks.metadata).toMatchObject({
        issuer,
        code_challenge_methods_supported: ["S256"],
        authorization_response_iss_parameter_supported: true,
        pushed_authorization_request_endpoint: `${issuer}/request`,
        registration_endpoint: `${issuer}/reg`
      })
      expect(checks.metadata["scopes_supported"]).toEqual(expect.arrayContaining(["mcp:read", "mcp:write"]))
      expect(checks.registered).toMatchObject({ scope: "mcp:read", application_type: "native" })
      expect(checks.registered["registration_access_token"]).toEqual(expect.any(String))
      expect(checks.readStatus).toBe(200)
      expect(checks.otherPort.location?.pathname).toMatch(/^\/interaction\//)
      expect(checks.noPkce.location?.origin).toBe("http://127.0.0.1:2222")
      expect(checks.noPkce.location?.searchParams.get("error")).toBe("invalid_request")
      expect(checks.noPkce.location?.searchParams.get("iss")).toBe(issuer)
      expect(checks.wider.location?.searchParams.get("error")).toBe("invalid_scope")
    }))

  it.scopedLive("discovery documents switch: only the OIDC path, or only the RFC 8414 path", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ discovery: "oidc" })
      const status = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${interop.as.issuer}${path}`)
          await response.arrayBuffer()
          return response.status
        })
      const oidc = "/.well-known/openid-configuration"
      const rfc8414 = "/.well-known/oauth-authorization-server"
      expect([yield* status(oidc), yield* status(rfc8414)]).toEqual([200, 404])
      interop.as.setDiscovery("rfc8414")
      expect([yield* status(oidc), yield* status(rfc8414)]).toEqual([404, 200])
    }))

  it.scopedLive("the MCP server: 401 with resource_metadata and scope, PRM naming the provider, 401 invalid_token for a forged token", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop()
      const result = yield* Effect.promise(async () => {
        const init = { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } }
        const post = (headers: Record<string, string>) =>
          fetch(interop.mcp.url, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
            body: JSON.stringify(init)
          })
        const anonymous = await post({})
        await anonymous.arrayBuffer()
        const forged = await post({ authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." })
        await forged.arrayBuffer()
        const prm = await json(await fetch(interop.mcp.prmUrl))
        return {
          anonymous: { status: anonymous.status, challenge: anonymous.headers.get("www-authenticate") },
          forged: { status: forged.status, challenge: forged.headers.get("www-authenticate") },
          prm
        }
      })
      expect(result.anonymous.status).toBe(401)
      expect(result.anonymous.challenge).toBe(`Bearer resource_metadata="${interop.mcp.prmUrl}", scope="mcp:read"`)
      expect(result.forged.status).toBe(401)
      expect(result.forged.challenge).toContain("error=\"invalid_token\"")
      expect(result.prm).toEqual({
        resource: interop.mcp.url,
        authorization_servers: [interop.as.issuer],
        scopes_supported: ["mcp:read", "mcp:write"],
        bearer_methods_supported: ["header"]
      })
    }))
})
