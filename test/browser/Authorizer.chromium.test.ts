/**
 * A real browser plays the user: headless Chromium (Debian's /usr/bin/chromium, driven with
 * playwright-core) is handed the authorization URL by the BrowserOpener, sees the authorization
 * server's consent page, clicks Approve or Deny, follows the redirect to our loopback callback
 * server and renders its page. Screenshots go to test-output/ (git-ignored).
 *
 * Without /usr/bin/chromium the test is skipped locally and FAILS in CI (CI=true): run
 * .ci/ensure-chromium.sh.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import type { Scope } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import type { AuthorizationRequest, AuthorizationSession } from "../../src/Authorizer.js"
import { rawServer } from "../AuthorizerRawServer.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import { available, CHROMIUM, inCi, launch, newPage, OUTPUT } from "./chromium.js"
import type { TestServer } from "../fixtures/TestAuthServer.js"

const VERIFIER = "chromium-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
const CHALLENGE = createHash("sha256").update(VERIFIER).digest("base64url")
const CLIENT_ID = "chromium-test-client"

/** The authorization server the browser talks to: its authorization URL, issuer, and a token redeemer. */
interface AuthorizationServer {
  readonly authorizationEndpoint: string
  readonly issuer: string
  readonly redeem: (code: string, redirectUri: string) => Effect.Effect<{ status: number; body: Record<string, unknown> }>
}

const redeemAt = (tokenEndpoint: string) => (code: string, redirectUri: string) =>
  Effect.promise(async () => {
    const r = await fetch(tokenEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: VERIFIER,
        client_id: CLIENT_ID
      })
    })
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  })

/** The project's authorization server (src/server/OAuthProvider) with its HTML consent page. */
const projectServer = Effect.gen(function*() {
  const server: TestServer = yield* startTestServer({ consent: "page", scopesSupported: ["read"] })
  yield* server.registerClient({
    clientId: CLIENT_ID,
    tokenEndpointAuthMethod: "none",
    redirectUris: ["http://127.0.0.1/callback"],
    clientName: "Chromium sign-in test",
    scope: "read"
  })
  return {
    authorizationEndpoint: server.provider.endpoints.authorization,
    issuer: server.issuer,
    redeem: redeemAt(server.provider.endpoints.token)
  } satisfies AuthorizationServer
})

/**
 * A minimal consent endpoint of our own (raw node:http): GET shows Approve/Deny in a form whose
 * CSP allows posting to itself and being redirected to the client's redirect URI; POST redirects
 * with a code or access_denied. Its token endpoint accepts the code it issued once.
 */
const ownConsentServer = Effect.gen(function*() {
  const issued = new Map<string, string>()
  const server = yield* rawServer((req, res, self) => {
    const url = new URL(req.url ?? "/", self.url)
    if (req.method === "GET" && url.pathname === "/authorize") {
      const redirectUri = url.searchParams.get("redirect_uri") ?? ""
      const origin = new URL(redirectUri).origin
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": `default-src 'none'; form-action 'self' ${origin}`
      })
      const hidden = ["redirect_uri", "state"].map((k) =>
        `<input type="hidden" name="${k}" value="${(url.searchParams.get(k) ?? "").replace(/"/g, "&quot;")}">`
      ).join("")
      res.end(
        `<!doctype html><title>Consent</title><h1>Authorize Chromium sign-in test?</h1>` +
          `<form method="post" action="/consent">${hidden}` +
          `<button name="decision" value="approve" id="approve">Approve</button>` +
          `<button name="decision" value="deny" id="deny">Deny</button></form>`
      )
      return
    }
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      const form = new URLSearchParams(body)
      if (url.pathname === "/consent") {
        const target = new URL(form.get("redirect_uri") ?? "")
        target.searchParams.set("state", form.get("state") ?? "")
        if (form.get("decision") === "approve") {
          const code = `own-${issued.size + 1}`
          issued.set(code, target.origin + target.pathname)
          target.searchParams.set("code", code)
        } else {
          target.searchParams.set("error", "access_denied")
          target.searchParams.set("error_description", "the user denied the request")
        }
        target.searchParams.set("iss", self.url)
        res.writeHead(303, { location: target.href })
        res.end()
        return
      }
      if (url.pathname === "/token") {
        const code = form.get("code") ?? ""
        const ok = issued.get(code) === form.get("redirect_uri")
        issued.delete(code)
        res.writeHead(ok ? 200 : 400, { "content-type": "application/json" })
        res.end(JSON.stringify(ok ? { access_token: "at", token_type: "Bearer", scope: "read" } : { error: "invalid_grant" }))
        return
      }
      res.writeHead(404)
      res.end()
    })
  })
  return {
    authorizationEndpoint: `${server.url}/authorize`,
    issuer: server.url,
    redeem: redeemAt(`${server.url}/token`)
  } satisfies AuthorizationServer
})

const requestFor = (as: AuthorizationServer, session: AuthorizationSession, state: string): AuthorizationRequest => {
  const url = new URL(as.authorizationEndpoint)
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", CLIENT_ID)
  url.searchParams.set("redirect_uri", session.redirectUri)
  url.searchParams.set("code_challenge", CHALLENGE)
  url.searchParams.set("code_challenge_method", "S256")
  url.searchParams.set("state", state)
  url.searchParams.set("scope", "read")
  return {
    url,
    state,
    redirectUri: session.redirectUri,
    issuer: as.issuer,
    issParameterSupported: true,
    clientId: CLIENT_ID
  }
}

/**
 * Runs one sign-in: the BrowserOpener hands the URL over; the "user" loads it in Chromium, checks
 * the consent page and clicks `button`; returns the authorize outcome and the callback page.
 */
const signInWithChromium = (
  server: Effect.Effect<AuthorizationServer, never, Scope.Scope>,
  button: "#approve" | "#deny",
  screenshot: string
) =>
  Effect.gen(function*() {
    const as = yield* server
    const browser = yield* launch
    const page = yield* newPage(browser)
    const consoleMessages: Array<string> = []
    page.on("console", (message) => void consoleMessages.push(message.text()))
    const handedOver = yield* Deferred.make<string>()
    const opener = Layer.succeed(Authorizer.BrowserOpener, {
      open: (url: string) => Deferred.succeed(handedOver, url).pipe(Effect.asVoid)
    })
    const authorizer = yield* Authorizer.Authorizer.pipe(
      Effect.provide(
        Layer.provide(Authorizer.layerBrowser({ timeout: "60 seconds" }), Layer.merge(FetchHttpClient.layer, opener))
      )
    )
    const session = yield* authorizer.session
    const state = `chromium-${button.slice(1)}-${Date.now()}`
    const fiber = yield* Effect.fork(Effect.either(session.authorize(requestFor(as, session, state))))

    const url = yield* Deferred.await(handedOver)
    const callbackPage = yield* Effect.promise(async () => {
      await page.goto(url)
      // The authorization server's consent page, as a person sees it.
      await page.waitForSelector(button)
      const consentText = await page.textContent("body")
      const callback = page.waitForResponse((r) => r.url().startsWith(session.redirectUri), { timeout: 15_000 })
      await page.click(button)
      const response = await callback.catch((error: unknown) => {
        const blocked = consoleMessages.find((m) => m.includes("Content Security Policy"))
        throw new Error(
          blocked === undefined
            ? `the browser never reached the callback server (${String(error)}); console: ${consoleMessages.join(" | ")}`
            : `the consent page's Content-Security-Policy blocked the redirect to the client's redirect URI ` +
              `(a form-action directive must allow it; Chromium checks form-action on redirects): ${blocked}`
        )
      })
      await page.waitForLoadState("load")
      await Fs.promises.mkdir(OUTPUT, { recursive: true })
      await page.screenshot({ path: Path.join(OUTPUT, screenshot) })
      return {
        consentText: consentText ?? "",
        status: response.status(),
        headers: response.headers(),
        url: page.url(),
        title: await page.title(),
        heading: (await page.textContent("h1")) ?? "",
        text: (await page.textContent("main")) ?? ""
      }
    })
    const outcome = yield* Fiber.join(fiber)
    return { as, session, outcome, callbackPage, state }
  })

describe("sign-in with a real browser (headless Chromium)", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  it("Chromium is installed (CI must not skip the real-browser test)", () => {
    expect(Fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/ensure-chromium.sh`).toBe(true)
  })

  const servers = [
    ["the project's authorization server (OAuthProvider consent page)", projectServer, "project"],
    ["a minimal consent page of our own", ownConsentServer, "own"]
  ] as const

  for (const [name, server, tag] of servers) {
    describe(name, () => {
      it.live("Approve: the code comes back, redeems for a token, and the success page renders", () =>
        Effect.gen(function*() {
          const shot = `browser-login-approve-${tag}.png`
          const { as, callbackPage, outcome, session, state } = yield* signInWithChromium(server, "#approve", shot)
          expect(callbackPage.consentText).toContain("Chromium sign-in test")
          expect(outcome._tag).toBe("Right")
          if (outcome._tag !== "Right") return
          expect(outcome.right.state).toBe(state)
          expect(outcome.right.iss).toBe(as.issuer)

          expect(callbackPage.url.startsWith(session.redirectUri)).toBe(true)
          expect(callbackPage.status).toBe(200)
          expect(callbackPage.title).toBe("Signed in")
          expect(callbackPage.text).toContain("Signed in. You can close this tab.")
          expect(callbackPage.headers["cache-control"]).toBe("no-store")
          expect(callbackPage.headers["referrer-policy"]).toBe("no-referrer")

          const token = yield* as.redeem(outcome.right.code, session.redirectUri)
          expect(token.status).toBe(200)
          expect(token.body["scope"]).toBe("read")
          expect(Fs.statSync(Path.join(OUTPUT, shot)).size).toBeGreaterThan(1000)
        }).pipe(Effect.scoped), 60_000)

      it.live("Deny: AuthorizationError Denied, and the error page renders", () =>
        Effect.gen(function*() {
          const shot = `browser-login-deny-${tag}.png`
          const { callbackPage, outcome } = yield* signInWithChromium(server, "#deny", shot)
          expect(outcome._tag).toBe("Left")
          if (outcome._tag !== "Left") return
          const error = outcome.left
          expect(error._tag === "AuthorizationError" && error.reason).toBe("Denied")
          expect(error._tag === "AuthorizationError" && error.error).toBe("access_denied")
          expect(callbackPage.heading).toBe("Sign-in was not completed")
          expect(callbackPage.text).toContain("the user denied the request")
          expect(Fs.statSync(Path.join(OUTPUT, shot)).size).toBeGreaterThan(1000)
        }).pipe(Effect.scoped), 60_000)
    })
  }
})

