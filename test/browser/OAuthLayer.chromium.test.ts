/**
 * The whole browser sign-in through the public entry point: a request through the `OAuthLayer`
 * client gets 401; the library discovers, registers, starts its loopback callback server and
 * hands the authorization URL to the browser; headless Chromium (playing the user) approves on
 * the authorization server's consent page; the callback completes, the code is exchanged, the
 * token stored, and the request retried. Fails (not skips) in CI when Chromium is missing.
 */
import { HttpBody, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import * as HttpAuth from "../../src/HttpAuth.js"
import * as TestStorage from "../../src/TestStorage.js"
import { serverKey } from "../../src/TokenStorage.js"
import { startTestServer } from "../fixtures/TestAuthServer.js"
import { available, CHROMIUM, inCi, launch, newPage, OUTPUT } from "./chromium.js"

describe("OAuthLayer with the browser sign-in (headless Chromium as the user)", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  it.scopedLive("a 401 opens the consent page; Approve stores the tokens and the request succeeds", () =>
    Effect.gen(function*() {
      const server = yield* startTestServer({ consent: "page", scopesSupported: ["read"] })
      const page = yield* Effect.flatMap(launch, newPage)
      const seen: Array<string> = []
      // The "browser" the library opens: Chromium, where the user clicks Approve.
      const opener = Layer.succeed(Authorizer.BrowserOpener, {
        open: (url: string) =>
          Effect.promise(async () => {
            seen.push(url)
            await page.goto(url)
            await page.click("#approve")
          })
      })
      const layer = HttpAuth.OAuthLayer({ mcpUrl: server.mcpUrl, scopes: ["read"] }).pipe(
        Layer.provideMerge(TestStorage.layer()),
        Layer.provide(Layer.provide(Authorizer.layerBrowser({ timeout: "60 seconds" }), opener)),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const result = yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        const response = yield* client.post(server.mcpUrl, { body: HttpBody.unsafeJson({ hello: 1 }) })
        const body = yield* response.json
        return { status: response.status, body, stored: yield* TestStorage.tokens }
      }).pipe(Effect.scoped, Effect.provide(layer))

      expect(result.status).toBe(200)
      expect(result.body).toMatchObject({ ok: true, sub: "test-user", scopes: ["read"] })
      const stored = result.stored.get(serverKey(server.mcpUrl))
      expect(stored?.scopes).toEqual(["read"])
      expect(seen).toHaveLength(1)
      expect(new URL(seen[0]!).searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)

      yield* Effect.promise(async () => {
        await page.waitForLoadState("load")
        await Fs.promises.mkdir(OUTPUT, { recursive: true })
        await page.screenshot({ path: Path.join(OUTPUT, "oauthlayer-browser-signed-in.png") })
      })
      const heading = yield* Effect.promise(() => page.textContent("h1"))
      expect(heading).toMatch(/signed in/i)
    }))
})
