/**
 * RFC 8628 polling against a loopback token endpoint that answers what the test scripts
 * (`authorization_pending`, `slow_down`, `expired_token`, then a token), on the `TestClock`: the
 * test moves the clock to each wait's end, and the server records the (virtual) second at which
 * each poll arrived, so the intervals are measured exactly.
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Option, TestClock } from "effect"
import * as DeviceAuthorization from "../src/DeviceAuthorization.js"
import type { DiscoveryResult } from "../src/Discovery.js"
import { AuthorizationServerMetadata, ClientInformation } from "../src/Schemas.js"
import * as TokenExchange from "../src/TokenExchange.js"
import { rawOAuthServer, type Reply } from "./oauthRawServer.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** The earliest pending wait of the `TestClock` (its list is not ordered). */
const earliestSleep = Effect.map(TestClock.sleeps(), (sleeps) =>
  Chunk.isEmpty(sleeps) ? Option.none<number>() : Option.some(Math.min(...sleeps)))

const realPause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))

/**
 * Runs one device sign-in against a server whose token endpoint answers `answers` in turn
 * (`token` = success). Returns the exit, the virtual seconds of the polls, and what was shown.
 */
const run = (options: {
  readonly interval: number | undefined
  readonly expiresIn: number
  readonly answers: ReadonlyArray<string>
}) =>
  Effect.gen(function*() {
    let now = 0
    const polls: Array<number> = []
    const server = yield* rawOAuthServer((req, s): Reply | undefined => {
      if (req.path === "/device") {
        return {
          json: {
            device_code: "dev-code-1",
            user_code: "WDJB-MJHT",
            verification_uri: `${s.url}/activate`,
            verification_uri_complete: `${s.url}/activate?user_code=WDJB-MJHT`,
            expires_in: options.expiresIn,
            ...(options.interval === undefined ? {} : { interval: options.interval })
          }
        }
      }
      if (req.path === "/token") {
        polls.push(now / 1000)
        const answer = options.answers[polls.length - 1] ?? "authorization_pending"
        return answer === "token"
          ? { json: { access_token: "at-1", token_type: "Bearer", expires_in: 3600, refresh_token: "rt-1" } }
          : { status: 400, json: { error: answer } }
      }
      return { status: 404 }
    })
    const issuer = server.url
    const discovery: DiscoveryResult = {
      mcpUrl: `${issuer}/mcp`,
      protectedResource: Option.none(),
      resource: `${issuer}/mcp`,
      authorizationServer: new AuthorizationServerMetadata({
        issuer,
        token_endpoint: `${issuer}/token`,
        device_authorization_endpoint: `${issuer}/device`,
        code_challenge_methods_supported: ["S256"]
      }),
      issuer,
      legacy: false
    }
    const client = new ClientInformation({
      clientId: "device-client",
      tokenEndpointAuthMethod: "none",
      source: "preregistered",
      issuer,
      redirectUris: []
    })
    const shown: Array<DeviceAuthorization.DeviceCodePrompt> = []
    const exchange = yield* TokenExchange.make({ timeout: "60 seconds" })
    const fiber = yield* DeviceAuthorization.signIn({
      httpClient: yield* HttpClient.HttpClient,
      exchange,
      discovery,
      client,
      scopes: ["mcp:read"],
      show: (prompt) => Effect.sync(() => shown.push(prompt)),
      httpOptions: { timeout: "60 seconds" }
    }).pipe(Effect.fork)
    // Drive the clock: when the only pending wait due within 15 s is the poll interval (the HTTP
    // timeouts are 60 s, the codes' lifetime longer), jump to its end; otherwise let I/O run.
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) break
      const next = yield* earliestSleep
      if (Option.isSome(next) && next.value > now && next.value <= now + 15_000) {
        now = next.value
        yield* TestClock.setTime(now)
      }
      // Real time for the sockets (and for the woken fiber to run).
      yield* realPause
    }
    const exit = yield* Fiber.await(fiber)
    return { exit, polls, shown, requests: server.requests }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))

describe("DeviceAuthorization: polling (RFC 8628 §3.5)", () => {
  it.scoped("slow_down adds 5 s to the interval for every later poll; authorization_pending keeps it", () =>
    Effect.gen(function*() {
      const { exit, polls, requests, shown } = yield* run({
        interval: 1,
        expiresIn: 600,
        answers: ["authorization_pending", "slow_down", "slow_down", "authorization_pending", "token"]
      })
      console.log(`device flow polls under slow_down (virtual seconds): ${polls.join(", ")}`)
      expect(Exit.isSuccess(exit)).toBe(true)
      // 1 s, then 1 s, then slow_down → 6 s, slow_down → 11 s, pending keeps 11 s.
      expect(polls).toEqual([1, 2, 8, 19, 30])
      expect(shown).toHaveLength(1)
      expect(shown[0]?.userCode).toBe("WDJB-MJHT")
      expect(shown[0]?.verificationUriComplete).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/activate\?user_code=WDJB-MJHT$/)
      // The device authorization request carries the client, the scope and the RFC 8707 resource.
      const device = requests[0]!
      expect(device.path).toBe("/device")
      expect(device.form.get("client_id")).toBe("device-client")
      expect(device.form.get("scope")).toBe("mcp:read")
      expect(device.form.get("resource")).toMatch(/\/mcp$/)
      const poll = requests[1]!
      expect(poll.form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:device_code")
      expect(poll.form.get("device_code")).toBe("dev-code-1")
      expect(poll.form.get("resource")).toMatch(/\/mcp$/)
      if (Exit.isSuccess(exit)) expect(exit.value.refreshToken).toBeDefined()
    }))

  it.scoped("no interval in the response: polls every 5 s", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* run({ interval: undefined, expiresIn: 600, answers: ["authorization_pending", "token"] })
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(polls).toEqual([5, 10])
    }))

  it.scoped("expired_token from the server → AuthorizationError Timeout, polling stops", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* run({ interval: 1, expiresIn: 600, answers: ["authorization_pending", "expired_token"] })
      expect(polls).toEqual([1, 2])
      expect(failureOf(exit)).toMatchObject({ _tag: "AuthorizationError", reason: "Timeout", error: "expired_token" })
    }))

  it.scoped("access_denied → AuthorizationError Denied", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* run({ interval: 1, expiresIn: 600, answers: ["access_denied"] })
      expect(polls).toEqual([1])
      expect(failureOf(exit)).toMatchObject({ _tag: "AuthorizationError", reason: "Denied", error: "access_denied" })
    }))

  it.scoped("the codes' lifetime runs out while the user has not acted → Timeout (expired_token), no poll after it", () =>
    Effect.gen(function*() {
      const { exit, polls } = yield* run({ interval: 2, expiresIn: 5, answers: [] })
      expect(polls).toEqual([2, 4])
      expect(failureOf(exit)).toMatchObject({ _tag: "AuthorizationError", reason: "Timeout", error: "expired_token" })
    }))

  it.scoped("interrupting the sign-in stops the polling", () =>
    Effect.gen(function*() {
      let polled = 0
      const server = yield* rawOAuthServer((req) => {
        if (req.path === "/token") polled++
        return req.path === "/device"
          ? { json: { device_code: "d", user_code: "U", verification_uri: "http://127.0.0.1/x", expires_in: 600, interval: 1 } }
          : { status: 400, json: { error: "authorization_pending" } }
      })
      const issuer = server.url
      const exchange = yield* TokenExchange.make({ timeout: "60 seconds" })
      const fiber = yield* DeviceAuthorization.signIn({
        httpClient: yield* HttpClient.HttpClient,
        exchange,
        discovery: {
          mcpUrl: `${issuer}/mcp`,
          protectedResource: Option.none(),
          resource: undefined,
          authorizationServer: new AuthorizationServerMetadata({
            issuer,
            token_endpoint: `${issuer}/token`,
            device_authorization_endpoint: `${issuer}/device`
          }),
          issuer,
          legacy: false
        },
        client: new ClientInformation({
          clientId: "c",
          tokenEndpointAuthMethod: "none",
          source: "preregistered",
          issuer,
          redirectUris: []
        }),
        scopes: [],
        show: () => Effect.void,
        httpOptions: { timeout: "60 seconds" }
      }).pipe(Effect.fork)
      while (polled < 1) {
        const next = yield* earliestSleep
        if (Option.isSome(next) && next.value <= 1000) yield* TestClock.setTime(next.value)
        yield* realPause
      }
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 minute")
      yield* realPause
      expect(polled).toBe(1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
