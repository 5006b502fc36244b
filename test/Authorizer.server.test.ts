/**
 * The authorizers against the project's own authorization server (src/server/OAuthProvider via
 * test/fixtures/TestAuthServer): the code that comes back is exchanged for a real token.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as Authorizer from "../src/Authorizer.js"
import type { AuthorizationRequest, AuthorizationSession } from "../src/Authorizer.js"
import { httpGet } from "./AuthorizerRawServer.js"
import { startTestServer } from "./fixtures/TestAuthServer.js"
import type { TestServer } from "./fixtures/TestAuthServer.js"

const VERIFIER = "authorizer-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
const CHALLENGE = createHash("sha256").update(VERIFIER).digest("base64url")
const STATE = "server-state-0123456789"
const CLIENT_ID = "authorizer-test-client"

const setup = (options: Parameters<typeof startTestServer>[0] = {}) =>
  Effect.gen(function*() {
    const server = yield* startTestServer(options)
    yield* server.registerClient({
      clientId: CLIENT_ID,
      tokenEndpointAuthMethod: "none",
      redirectUris: ["http://127.0.0.1/callback"],
      clientName: "Authorizer test"
    })
    return server
  })

const requestFor = (server: TestServer, session: AuthorizationSession): AuthorizationRequest => {
  const url = new URL(server.provider.endpoints.authorization)
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", CLIENT_ID)
  url.searchParams.set("redirect_uri", session.redirectUri)
  url.searchParams.set("code_challenge", CHALLENGE)
  url.searchParams.set("code_challenge_method", "S256")
  url.searchParams.set("state", STATE)
  url.searchParams.set("resource", server.mcpUrl)
  return {
    url,
    state: STATE,
    redirectUri: session.redirectUri,
    issuer: server.issuer,
    issParameterSupported: server.provider.metadata.authorization_response_iss_parameter_supported === true,
    clientId: CLIENT_ID
  }
}

/** Redeems the code at the token endpoint: proves it is a real, unused code for our request. */
const redeem = (server: TestServer, code: string, redirectUri: string) =>
  Effect.promise(async () => {
    const response = await fetch(server.provider.endpoints.token, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: VERIFIER,
        client_id: CLIENT_ID,
        resource: server.mcpUrl
      })
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const signIn = (server: TestServer) =>
  Effect.gen(function*() {
    const authorizer = yield* Authorizer.Authorizer
    const session = yield* authorizer.session
    const response = yield* session.authorize(requestFor(server, session))
    return { response, redirectUri: session.redirectUri }
  }).pipe(Effect.scoped)

describe("Authorizer against the TestAuthServer", () => {
  describe("layerHeadless", () => {
    const headless = Layer.provide(Authorizer.layerHeadless(), FetchHttpClient.layer)

    it.live("an auto-approving server: the code comes back with RFC 9207 iss and redeems for a token", () =>
      Effect.gen(function*() {
        const server = yield* setup({ consent: "approve" })
        expect(server.provider.metadata.authorization_response_iss_parameter_supported).toBe(true)
        const { response, redirectUri } = yield* signIn(server).pipe(Effect.provide(headless))
        expect(redirectUri).toBe(Authorizer.DEFAULT_REDIRECT_URI)
        expect(response.state).toBe(STATE)
        expect(response.iss).toBe(server.issuer)
        const token = yield* redeem(server, response.code, redirectUri)
        expect(token.status).toBe(200)
        expect(typeof token.body["access_token"]).toBe("string")
        expect(yield* server.count("authorize")).toBe(1)
      }).pipe(Effect.scoped))

    it.live("a denial is Denied with the server's description", () =>
      Effect.gen(function*() {
        const server = yield* setup({ consent: "deny" })
        const error = yield* Effect.flip(signIn(server).pipe(Effect.provide(headless)))
        expect(error._tag === "AuthorizationError" && error.reason).toBe("Denied")
        expect(error.message).toContain("The user denied the request")
      }).pipe(Effect.scoped))

    it.live("a forgotten client is ClientNotFound", () =>
      Effect.gen(function*() {
        const server = yield* setup({ consent: "approve" })
        yield* server.forgetClients
        const error = yield* Effect.flip(signIn(server).pipe(Effect.provide(headless)))
        expect(error._tag).toBe("ClientNotFound")
        expect(error._tag === "ClientNotFound" && error.clientId).toBe(CLIENT_ID)
      }).pipe(Effect.scoped))

    it.live("a consent page is InvalidResponse: headless cannot click", () =>
      Effect.gen(function*() {
        const server = yield* setup({ consent: "page" })
        const error = yield* Effect.flip(signIn(server).pipe(Effect.provide(headless)))
        expect(error._tag === "AuthorizationError" && error.reason).toBe("InvalidResponse")
        expect(error.message).toContain("HTTP 200")
      }).pipe(Effect.scoped))
  })

  describe("layerBrowser", () => {
    /** A node:http "browser" that follows the authorization server's redirect to our callback. */
    const followingBrowser = (pages: Array<{ status: number; body: string }>) =>
      Layer.succeed(Authorizer.BrowserOpener, {
        open: (url: string) =>
          Effect.gen(function*() {
            const first = yield* httpGet(url)
            const location = first.headers.location
            if (location !== undefined) pages.push(yield* httpGet(new URL(location, url).href))
          }).pipe(Effect.orDie, Effect.forkDaemon, Effect.asVoid)
      })

    it.live("the browser's redirect reaches the callback server; the code redeems for a token", () => {
      const pages: Array<{ status: number; body: string }> = []
      return Effect.gen(function*() {
        const server = yield* setup({ consent: "approve" })
        const { response, redirectUri } = yield* signIn(server).pipe(
          Effect.provide(
            Layer.provide(Authorizer.layerBrowser(), Layer.merge(FetchHttpClient.layer, followingBrowser(pages)))
          )
        )
        expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
        expect(response.iss).toBe(server.issuer)
        const token = yield* redeem(server, response.code, redirectUri)
        expect(token.status).toBe(200)
        // The pre-flight GET and the browser's.
        expect(yield* server.count("authorize")).toBe(2)
        yield* Effect.sleep("50 millis")
        expect(pages[0]?.body).toContain("Signed in. You can close this tab.")
      }).pipe(Effect.scoped)
    })

    it.live("duplicated or foreign state parameters get an error page; the real callback still completes the sign-in", () => {
      const strays: Array<{ status: number; body: string }> = []
      const pages: Array<{ status: number; body: string }> = []
      // Before following the authorization server's redirect, the "browser" (or an attacker on
      // loopback) hits the callback with ambiguous and foreign states.
      const opener = Layer.succeed(Authorizer.BrowserOpener, {
        open: (url: string) =>
          Effect.gen(function*() {
            const callback = new URL(url).searchParams.get("redirect_uri") ?? ""
            for (
              const query of [
                "state=a&state=b",
                `code=evil&state=${STATE}&state=other`,
                `code=evil&state=other&state=${STATE}`,
                `code=evil&state=${STATE}&state=${STATE}`,
                "error=access_denied&state=a&state=b",
                "code=evil&state=forged"
              ]
            ) strays.push(yield* httpGet(`${callback}?${query}`))
            const first = yield* httpGet(url)
            const location = first.headers.location
            if (location !== undefined) pages.push(yield* httpGet(new URL(location, url).href))
          }).pipe(Effect.orDie, Effect.forkDaemon, Effect.asVoid)
      })
      return Effect.gen(function*() {
        const server = yield* setup({ consent: "approve" })
        const { response, redirectUri } = yield* signIn(server).pipe(
          Effect.provide(Layer.provide(Authorizer.layerBrowser(), Layer.merge(FetchHttpClient.layer, opener)))
        )
        expect(strays).toHaveLength(6)
        for (const stray of strays) {
          expect(stray.status).toBe(400)
          expect(stray.body).toContain("not for the current sign-in")
        }
        expect(response.code).not.toBe("evil")
        const token = yield* redeem(server, response.code, redirectUri)
        expect(token.status).toBe(200)
        yield* Effect.sleep("50 millis")
        expect(pages[0]?.body).toContain("Signed in. You can close this tab.")
      }).pipe(Effect.scoped)
    })

    it.live("the pre-flight detects a forgotten client before the browser opens", () => {
      const pages: Array<{ status: number; body: string }> = []
      let opened = 0
      return Effect.gen(function*() {
        const server = yield* setup({ consent: "page" })
        yield* server.forgetClients
        const error = yield* Effect.flip(
          signIn(server).pipe(
            Effect.provide(
              Layer.provide(
                Authorizer.layerBrowser(),
                Layer.merge(
                  FetchHttpClient.layer,
                  Layer.succeed(Authorizer.BrowserOpener, {
                    open: () =>
                      Effect.sync(() => {
                        opened++
                      })
                  })
                )
              )
            )
          )
        )
        expect(error._tag).toBe("ClientNotFound")
        expect(error._tag === "ClientNotFound" && error.description).toContain("not found")
        expect(opened).toBe(0)
        expect(pages).toHaveLength(0)
      }).pipe(Effect.scoped)
    })
  })
})
