import { FetchHttpClient, Terminal } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Queue, TestClock } from "effect"
import { spawn } from "node:child_process"
import * as Path from "node:path"
import * as Authorizer from "../src/Authorizer.js"
import type { AuthorizationRequest } from "../src/Authorizer.js"
import { rawServer } from "./AuthorizerRawServer.js"

const STATE = "manual-state-0123456789"
const AUTHORIZE = "https://as.example.com/authorize"
const CALLBACK = Authorizer.DEFAULT_REDIRECT_URI

const request = (overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
  url: new URL(`${AUTHORIZE}?response_type=code&client_id=client-1&state=${STATE}`),
  state: STATE,
  redirectUri: CALLBACK,
  issuer: "https://as.example.com",
  issParameterSupported: false,
  clientId: "client-1",
  ...overrides
})

/**
 * Runs `layerManual` in a child process whose standard input is a pipe fed `input` and then
 * closed; `nodeContext` also provides `NodeContext.layer` (whose `NodeTerminal` writes to stdout).
 * The child prints one JSON line on stdout: the code, or the error and how long the wait took.
 * A child still running after 30 s is killed (`killed`).
 */
const runManualChild = (input: string, options: { readonly nodeContext?: boolean } = {}) => {
  const root = Path.resolve(__dirname, "..")
  const script = `
    import { FetchHttpClient } from "@effect/platform"
    import { NodeContext } from "@effect/platform-node"
    import { Effect, Layer } from "effect"
    import * as Authorizer from ${JSON.stringify(Path.join(root, "src/Authorizer.ts"))}
    const request = {
      url: new URL("https://as.example.com/authorize?state=s1"), state: "s1",
      redirectUri: Authorizer.DEFAULT_REDIRECT_URI, issuer: "https://as.example.com",
      issParameterSupported: false, clientId: "c"
    }
    const program = Effect.flatMap(Authorizer.Authorizer, (a) => Effect.flatMap(a.session, (s) => s.authorize(request)))
    const context = ${options.nodeContext === true ? "Layer.merge(FetchHttpClient.layer, NodeContext.layer)" : "FetchHttpClient.layer"}
    const started = Date.now()
    Effect.runPromiseExit(program.pipe(Effect.scoped, Effect.provide(Authorizer.layerManual({ preflight: false }).pipe(Layer.provideMerge(context)))))
      .then((exit) => {
        const ms = Date.now() - started
        process.stdout.write(JSON.stringify(exit._tag === "Success" ? { code: exit.value.code } : { error: String(exit.cause), ms }))
        process.exit(0)
      })
  `
  return Effect.async<{ stdout: string; stderr: string; killed: boolean }>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill("SIGKILL")
    }, 30_000)
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ stdout, stderr, killed }))
    })
    child.stdin.end(input)
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })
}

/** A Terminal whose input is a queue of lines (`undefined` = Ctrl-D) and whose output is recorded. */
const fakeTerminal = Effect.gen(function*() {
  const lines = yield* Queue.unbounded<string | undefined>()
  const output: Array<string> = []
  const terminal: Terminal.Terminal = {
    columns: Effect.succeed(80),
    rows: Effect.succeed(24),
    isTTY: Effect.succeed(true),
    readInput: Effect.die("not used"),
    readLine: Queue.take(lines).pipe(
      Effect.flatMap((line) => line === undefined ? Effect.fail(new Terminal.QuitException()) : Effect.succeed(line))
    ),
    display: (text) => Effect.sync(() => void output.push(text))
  }
  return { terminal, lines, output, text: () => output.join("") }
})

const manual = (
  terminal: Terminal.Terminal,
  options: Authorizer.ManualOptions = { preflight: false }
) =>
  Effect.gen(function*() {
    const authorizer = yield* Authorizer.Authorizer
    const session = yield* authorizer.session
    return session
  }).pipe(
    Effect.provide(
      Authorizer.layerManual({ ...options, terminal }).pipe(Layer.provide(FetchHttpClient.layer))
    )
  )

describe("Authorizer.layerManual", () => {
  it.scoped("prints the URL, reads the pasted callback URL and returns the code", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      expect(session.redirectUri).toBe(CALLBACK)
      yield* Queue.offer(t.lines, `  ${CALLBACK}?code=pasted-code&state=${STATE}  `)
      const response = yield* session.authorize(request())
      expect(response).toStrictEqual({ code: "pasted-code", state: STATE, iss: undefined })
      expect(t.text()).toContain(request().url.href)
      expect(t.text()).toContain("Callback URL: ")
    }))

  it.scoped("accepts an address without scheme and a bare query string", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offer(t.lines, `127.0.0.1:33418/callback?code=a&state=${STATE}`)
      expect((yield* session.authorize(request())).code).toBe("a")
      yield* Queue.offer(t.lines, `?code=b&state=${STATE}`)
      expect((yield* session.authorize(request())).code).toBe("b")
      yield* Queue.offer(t.lines, `code=c&state=${STATE}`)
      expect((yield* session.authorize(request())).code).toBe("c")
    }))

  it.scoped("a malformed paste asks again with a clear message", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offerAll(t.lines, ["hello there", "", request().url.href, `${CALLBACK}?code=ok&state=${STATE}`])
      const error = yield* Effect.flip(session.authorize(request()))
      // Three attempts by default: the fourth line is never read.
      expect(error._tag === "AuthorizationError" && error.reason).toBe("InvalidResponse")
      expect(error.message).toContain("after 3 attempt(s)")
      const out = t.text()
      expect(out).toContain("Not usable: that is not a URL.")
      expect(out).toContain("Not usable: nothing was pasted.")
      expect(out).toContain("that is the sign-in address itself")
      expect(out.match(/Callback URL: /g)).toHaveLength(3)
    }))

  it.scoped("a bad paste followed by a good one succeeds", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offerAll(t.lines, [
        `${CALLBACK}?code=old&state=from-an-older-attempt`,
        `http://127.0.0.1:1234/elsewhere?code=x&state=${STATE}`,
        `${CALLBACK}?code=new&state=${STATE}`
      ])
      const response = yield* session.authorize(request())
      expect(response.code).toBe("new")
      expect(t.text()).toContain("belongs to a different sign-in attempt")
      expect(t.text()).toContain("does not start with the redirect URI")
    }))

  it.scoped("maxAttempts bounds the questions", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal, { preflight: false, maxAttempts: 1 })
      yield* Queue.offerAll(t.lines, ["nope", `${CALLBACK}?code=ok&state=${STATE}`])
      const error = yield* Effect.flip(session.authorize(request()))
      expect(error.message).toContain("after 1 attempt(s)")
    }))

  it.scoped("a pasted error= is Denied at once", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offerAll(t.lines, [
        `${CALLBACK}?error=access_denied&error_description=Nope&state=${STATE}`,
        `${CALLBACK}?code=ok&state=${STATE}`
      ])
      const error = yield* Effect.flip(session.authorize(request()))
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Denied")
      expect(error.message).toContain("Nope")
    }))

  it.scoped("a pasted callback from another issuer is IssuerMismatch", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offer(t.lines, `${CALLBACK}?code=c&state=${STATE}&iss=https%3A%2F%2Fevil.example`)
      const error = yield* Effect.flip(session.authorize(request()))
      expect(error._tag === "AuthorizationError" && error.reason).toBe("IssuerMismatch")
    }))

  it.scoped("end of input is Cancelled", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      yield* Queue.offer(t.lines, undefined)
      const error = yield* Effect.flip(session.authorize(request()))
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Cancelled")
    }))

  it.scoped("no paste within the timeout (default 300 s) is Timeout", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const session = yield* manual(t.terminal)
      const fiber = yield* Effect.fork(session.authorize(request()))
      yield* TestClock.adjust("299 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Timeout")
    }))

  it.live("the pre-flight turns an unknown client into ClientNotFound before anything is printed", () =>
    Effect.gen(function*() {
      const t = yield* fakeTerminal
      const as = yield* rawServer((_req, res) => {
        res.writeHead(400, { "content-type": "text/html" })
        res.end("<h1>Bad request</h1><p>Unknown client</p>")
      })
      const session = yield* manual(t.terminal, {})
      const error = yield* Effect.flip(
        session.authorize(request({ url: new URL(`${as.url}/authorize?client_id=client-1&state=${STATE}`) }))
      )
      expect(error._tag).toBe("ClientNotFound")
      expect(t.output).toHaveLength(0)
    }).pipe(Effect.scoped))

  it.live("without a Terminal it reads standard input and prompts on standard error", () =>
    Effect.gen(function*() {
      const [ok, eof] = yield* Effect.all([
        runManualChild(`${CALLBACK}?code=from-stdin&state=s1\n`),
        runManualChild("")
      ], { concurrency: 2 })
      expect(JSON.parse(ok.stdout)).toStrictEqual({ code: "from-stdin" })
      expect(ok.stderr).toContain("https://as.example.com/authorize?state=s1")
      expect(ok.stderr).toContain("Callback URL:")
      expect(String(JSON.parse(eof.stdout).error)).toContain("Cancelled")
    }), 60_000)

  it.live("with NodeContext.layer (a NodeTerminal in context) it still prompts on standard error, and end of input is Cancelled at once", () =>
    Effect.gen(function*() {
      const [ok, eof] = yield* Effect.all([
        runManualChild(`${CALLBACK}?code=from-stdin&state=s1\n`, { nodeContext: true }),
        runManualChild("", { nodeContext: true })
      ], { concurrency: 2 })
      // stdout carries only the program's own result line: no prompt, no URL.
      expect(JSON.parse(ok.stdout)).toStrictEqual({ code: "from-stdin" })
      expect(ok.stderr).toContain("https://as.example.com/authorize?state=s1")
      expect(ok.stderr).toContain("Callback URL:")
      expect(eof.killed).toBe(false)
      const ended = JSON.parse(eof.stdout)
      expect(ended.error).toContain("Cancelled")
      expect(ended.ms).toBeLessThan(5_000)
      expect(eof.stderr).toContain("Callback URL:")
    }), 60_000)
})

describe("Authorizer.layerAuto", () => {
  const redirectUriWith = (env: Record<string, string>, options: Authorizer.AutoOptions = {}) =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      return session.redirectUri
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Authorizer.layerAuto(options).pipe(
          Layer.provide(FetchHttpClient.layer),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
        )
      )
    )

  const linux = process.platform !== "darwin" && process.platform !== "win32"

  it.live("chooses the browser when a display is available", () =>
    Effect.gen(function*() {
      for (const env of [{ DISPLAY: ":0" }, { WAYLAND_DISPLAY: "wayland-0" }, { BROWSER: "firefox" }]) {
        expect(yield* redirectUriWith(env)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
        expect(yield* redirectUriWith(env)).not.toBe(Authorizer.DEFAULT_REDIRECT_URI)
      }
    }))

  it.live("chooses the manual sign-in without a display (Linux)", () =>
    Effect.gen(function*() {
      if (!linux) return
      expect(yield* redirectUriWith({})).toBe(Authorizer.DEFAULT_REDIRECT_URI)
      expect(yield* redirectUriWith({ DISPLAY: "  " })).toBe(Authorizer.DEFAULT_REDIRECT_URI)
    }))

  it.live("mode overrides the detection", () =>
    Effect.gen(function*() {
      expect(yield* redirectUriWith({}, { mode: "browser" })).not.toBe(Authorizer.DEFAULT_REDIRECT_URI)
      expect(yield* redirectUriWith({ DISPLAY: ":0" }, { mode: "manual", manual: { redirectUri: "http://127.0.0.1:5/m" } }))
        .toBe("http://127.0.0.1:5/m")
    }))

  it.effect("hasDisplay reads the environment through Config", () =>
    Effect.gen(function*() {
      const withEnv = (env: Record<string, string>) =>
        Authorizer.hasDisplay.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
      expect(yield* withEnv({ DISPLAY: ":1" })).toBe(true)
      expect(yield* withEnv({ WSL_DISTRO_NAME: "Ubuntu" })).toBe(true)
      if (linux) expect(yield* withEnv({})).toBe(false)
    }))
})
