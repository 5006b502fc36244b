/**
 * The device authorization grant (RFC 8628) against an INDEPENDENT authorization server:
 * oidc-provider with `features.deviceFlow` on (test/interop/oidcProvider.ts), in front of the
 * official-SDK MCP server. The user is a scripted user agent that opens the
 * `verification_uri_complete` shown through `onDeviceCode`, confirms the user code, logs in and
 * consents or denies on oidc-provider's HTML forms, while the library polls the token endpoint
 * (oidc-provider names no `interval`: 5 s, RFC 8628 §3.2).
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Authorizer from "../../src/Authorizer.js"
import type * as DeviceAuthorization from "../../src/DeviceAuthorization.js"
import { AuthorizationError } from "../../src/Errors.js"
import * as McpClient from "../../src/mcp/McpClient.js"
import * as SignInEvents from "../../src/SignInEvents.js"
import * as TokenStorage from "../../src/TokenStorage.js"
import { available, CHROMIUM, inCi, launch, newPage } from "../browser/chromium.js"
import { clickThroughDevice, httpUser, startInterop, summarize } from "./oidcProvider.js"
import type { Decision, Interop } from "./oidcProvider.js"

const tokenDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "device-interop-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A client process whose authorizer must never be used: the device flow needs no redirect. */
const clientLayer = (directory: string) =>
  Layer.mergeAll(TokenStorage.layerFileSystemNode(directory), Authorizer.layerTest(() => Effect.die("no browser here")))
    .pipe(Layer.provideMerge(NodeHttpClient.layerUndici))

/**
 * The MCP client with `grant: "device_code"`; each prompt is recorded and handed to the scripted
 * user, who acts in the background (as a person on another device would) while the library polls.
 */
const signInByDevice = (
  interop: Interop,
  decision: Decision,
  prompts: Array<DeviceAuthorization.DeviceCodePrompt>,
  user: { readonly run: (url: string) => Promise<void> } = httpUser(interop.as.issuer, { device: true, decision })
) => {
  const userDone: Array<Promise<void>> = []
  return McpClient.connect(new URL(interop.mcp.url), {
    auth: {
      oauth: {
        clientName: "effect-mcp-oauth device interop",
        scopes: ["mcp:read"],
        grant: "device_code",
        onDeviceCode: (prompt) =>
          Effect.sync(() => {
            prompts.push(prompt)
            userDone.push(user.run(prompt.verificationUriComplete ?? prompt.verificationUri))
          })
      }
    }
  }).pipe(
    Effect.flatMap((client) => client.callTool("whoami")),
    Effect.scoped,
    Effect.tap(() => Effect.promise(() => Promise.all(userDone)))
  )
}

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): string => {
  const first = result.content[0]
  return typeof first === "object" && first !== null && "text" in first && typeof first.text === "string"
    ? first.text
    : ""
}

describe("device authorization grant (RFC 8628) against oidc-provider", () => {
  for (const dpop of [false, true]) {
    it.scopedLive(
      `consent: the user approves on another device → the MCP call succeeds with a token bound to the MCP URL, stored with its refresh token${
        dpop ? " (DPoP: every poll carries a proof, the token and its key are stored)" : ""
      }`,
      () =>
        Effect.gen(function*() {
          const interop = yield* startInterop({ deviceFlow: true, dpop })
          const dir = yield* tokenDirectory
          const prompts: Array<DeviceAuthorization.DeviceCodePrompt> = []
          const events: Array<SignInEvents.SignInEvent> = []
          const result = yield* signInByDevice(interop, "approve", prompts).pipe(
            Effect.provide(Layer.merge(clientLayer(dir), SignInEvents.layer((e) => Effect.sync(() => void events.push(e)))))
          )
          console.log(summarize("device consent", interop.as.counts, interop.mcp.counts))

          const who: { readonly scopes: ReadonlyArray<string> } = JSON.parse(textOf(result))
          expect(who.scopes).toContain("mcp:read")
          expect(prompts).toHaveLength(1)
          const prompt = prompts[0]!
          expect(prompt.issuer).toBe(interop.as.issuer)
          expect(prompt.verificationUri).toBe(`${interop.as.issuer}/device`)
          expect(prompt.verificationUriComplete).toContain("user_code=")
          // The same prompt through the sign-in events, then the sign-in itself.
          expect(events.map((e) => e._tag)).toEqual(["DeviceCode", "SignedIn"])
          expect(events[0]).toMatchObject({
            _tag: "DeviceCode",
            mcpUrl: interop.mcp.url,
            userCode: prompt.userCode,
            verificationUriComplete: prompt.verificationUriComplete
          })
          expect(interop.as.counts.registrations).toBe(1)
          const device = interop.as.counts.tokenRequests["urn:ietf:params:oauth:grant-type:device_code"]
          expect(device?.ok).toBe(1)
          expect(interop.as.counts.authorizationRequests).toBe(0)

          const stored = yield* Effect.flatMap(
            TokenStorage.TokenStorage,
            (s) => s.getTokens(TokenStorage.serverKey(interop.mcp.url))
          ).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))
          expect(Option.isSome(stored)).toBe(true)
          expect(Option.getOrUndefined(stored)?.refreshToken).toBeDefined()
          expect(Option.getOrUndefined(stored)?.issuer).toBe(interop.as.issuer)
          if (dpop) {
            expect(Option.getOrUndefined(stored)?.tokenType).toBe("DPoP")
            expect(Option.getOrUndefined(stored)?.dpopKey).toBeDefined()
            expect(interop.mcp.counts.dpopBound).toBeGreaterThan(0)
          }
        }),
      60_000
    )
  }

  it.scopedLive("deny: the user cancels on the consent page → AuthorizationError Denied (access_denied), nothing stored", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ deviceFlow: true })
      const dir = yield* tokenDirectory
      const prompts: Array<DeviceAuthorization.DeviceCodePrompt> = []
      const exit = yield* signInByDevice(interop, "deny", prompts).pipe(Effect.provide(clientLayer(dir)), Effect.exit)
      console.log(summarize("device deny", interop.as.counts, interop.mcp.counts))

      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) return
      expect([...Cause.defects(exit.cause)]).toEqual([])
      const chain: Array<unknown> = []
      let current: unknown = Option.getOrUndefined(Cause.failureOption(exit.cause))
      while (typeof current === "object" && current !== null && chain.length < 10) {
        chain.push(current)
        current = "cause" in current ? current.cause : undefined
      }
      const denied = chain.find((e): e is AuthorizationError => e instanceof AuthorizationError)
      expect(denied?.reason).toBe("Denied")
      expect(denied?.error).toBe("access_denied")
      expect(prompts).toHaveLength(1)
      const stored = yield* Effect.flatMap(
        TokenStorage.TokenStorage,
        (s) => s.getTokens(TokenStorage.serverKey(interop.mcp.url))
      ).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))
      expect(Option.isNone(stored)).toBe(true)
    }), 60_000)
})

/** `Authorizer.makeAuto` in an environment without DISPLAY, WAYLAND_DISPLAY, BROWSER or WSL. */
const autoWithoutDisplay = (options: Authorizer.AutoOptions = {}) =>
  Authorizer.makeAuto(options).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))

describe("Authorizer.layerAuto and the device grant", () => {
  it.effect("without a display the auto authorizer prefers the device grant (unless device: false or mode manual); with one it is the browser", () =>
    Effect.gen(function*() {
      expect((yield* autoWithoutDisplay()).preferDeviceCode).toBe(true)
      expect((yield* autoWithoutDisplay({ device: false })).preferDeviceCode).toBeUndefined()
      expect((yield* autoWithoutDisplay({ mode: "manual" })).preferDeviceCode).toBeUndefined()
      const withDisplay = yield* Authorizer.makeAuto().pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DISPLAY", ":0"]])))
      )
      expect(withDisplay.preferDeviceCode).toBeUndefined()
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("no display, the AS offers the device grant: the default grant signs in by device code (no authorization request)", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ deviceFlow: true })
      const dir = yield* tokenDirectory
      const user = httpUser(interop.as.issuer, { device: true })
      const userDone: Array<Promise<void>> = []
      const layer = Layer.mergeAll(
        TokenStorage.layerFileSystemNode(dir),
        Layer.effect(Authorizer.Authorizer, autoWithoutDisplay())
      ).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))
      const result = yield* McpClient.connect(new URL(interop.mcp.url), {
        auth: {
          oauth: {
            scopes: ["mcp:read"],
            onDeviceCode: (prompt) => Effect.sync(() => void userDone.push(user.run(prompt.verificationUriComplete ?? prompt.verificationUri)))
          }
        }
      }).pipe(Effect.flatMap((client) => client.callTool("whoami")), Effect.scoped, Effect.provide(layer))
      yield* Effect.promise(() => Promise.all(userDone))
      console.log(summarize("auto, no display, device offered", interop.as.counts, interop.mcp.counts))
      expect(JSON.parse(textOf(result)).scopes).toContain("mcp:read")
      expect(userDone).toHaveLength(1)
      expect(interop.as.counts.authorizationRequests).toBe(0)
      expect(interop.as.counts.tokenRequests["urn:ietf:params:oauth:grant-type:device_code"]?.ok).toBe(1)
    }), 60_000)

  it.scopedLive("an authorizer preferring the device grant, the AS without it: the authorization-code flow runs", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop()
      const dir = yield* tokenDirectory
      const shown: Array<DeviceAuthorization.DeviceCodePrompt> = []
      const browser = Authorizer.makeBrowser({ timeout: "15 seconds" }).pipe(
        Effect.provide(Layer.succeed(Authorizer.BrowserOpener, httpUser(interop.as.issuer)))
      )
      const layer = Layer.mergeAll(
        TokenStorage.layerFileSystemNode(dir),
        Layer.effect(Authorizer.Authorizer, Effect.map(browser, (a) => ({ ...a, preferDeviceCode: true })))
      ).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))
      const result = yield* McpClient.connect(new URL(interop.mcp.url), {
        auth: { oauth: { scopes: ["mcp:read"], onDeviceCode: (prompt) => Effect.sync(() => void shown.push(prompt)) } }
      }).pipe(Effect.flatMap((client) => client.callTool("whoami")), Effect.scoped, Effect.provide(layer))
      expect(JSON.parse(textOf(result)).scopes).toContain("mcp:read")
      expect(shown).toEqual([])
      expect(interop.as.counts.authorizationRequests).toBe(1)
      expect(interop.as.counts.tokenRequests["authorization_code"]?.ok).toBe(1)
    }), 60_000)
})

describe("device authorization grant, Chromium as the user on the other device", () => {
  if (!available && !inCi) {
    it.skip(`needs ${CHROMIUM} (run .ci/ensure-chromium.sh)`, () => {})
    return
  }

  for (const decision of ["approve", "deny"] as const) {
    it.scopedLive(`Chromium opens verification_uri_complete, confirms the code, logs in and ${decision === "approve" ? "consents → the MCP call succeeds" : "cancels → AuthorizationError Denied"}`, () =>
      Effect.gen(function*() {
        const interop = yield* startInterop({ deviceFlow: true })
        const dir = yield* tokenDirectory
        const page = yield* Effect.flatMap(launch, newPage)
        const prompts: Array<DeviceAuthorization.DeviceCodePrompt> = []
        const exit = yield* signInByDevice(interop, decision, prompts, { run: (url) => clickThroughDevice(page, url, decision) })
          .pipe(Effect.provide(clientLayer(dir)), Effect.exit)
        console.log(summarize(`device, Chromium, ${decision}`, interop.as.counts, interop.mcp.counts))
        expect(prompts).toHaveLength(1)
        if (decision === "approve") {
          expect(Exit.isSuccess(exit)).toBe(true)
          if (Exit.isSuccess(exit)) expect(JSON.parse(textOf(exit.value)).scopes).toContain("mcp:read")
          expect(yield* Effect.promise(() => page.title())).toBe("Sign-in Success")
        } else {
          const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
          const chain: Array<unknown> = []
          let current: unknown = failure
          while (typeof current === "object" && current !== null && chain.length < 10) {
            chain.push(current)
            current = "cause" in current ? current.cause : undefined
          }
          const denied = chain.find((e): e is AuthorizationError => e instanceof AuthorizationError)
          expect(denied?.reason).toBe("Denied")
          expect(denied?.error).toBe("access_denied")
        }
      }), 90_000)
  }
})
