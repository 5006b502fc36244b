/**
 * `effect-mcp-oauth login --device` (the shipped bundle, test/cli/bundle.ts) as a subprocess against oidc-provider with its device flow
 * on: the address with the user code goes to stderr, a scripted user agent opens it and
 * approves, the CLI's polling gets the tokens and stores them; stdout carries only the result.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as TokenStorage from "../../src/TokenStorage.js"
import { bundledCli, runCli as runBundled } from "../cli/bundle.js"
import { decodeQr, qrRows } from "../fixtures/qrDecode.js"
import { httpUser, startInterop, summarize } from "./oidcProvider.js"

const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const cli = bundledCli()

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-device-cli-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

/** The bundled CLI with `args`, `user` acting on the device address it prints on stderr. */
const runCli = (args: ReadonlyArray<string>, user?: { readonly run: (url: string) => Promise<void> }) =>
  Effect.suspend(() => {
    const opened: Array<string> = []
    return Effect.map(
      runBundled(cli.path(), args, (stderr) => {
        const url = /open (http:\/\/\S+?) on any device/.exec(stderr)?.[1]
        if (url !== undefined && opened.length === 0 && user !== undefined) {
          opened.push(url)
          void user.run(url)
        }
      }),
      (run) => ({ ...run, opened })
    )
  })

describe("CLI login --device against oidc-provider", () => {
  it.scopedLive("the address goes to stderr, the user approves elsewhere, the tokens are stored", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ deviceFlow: true })
      const dir = yield* tempDir
      const user = httpUser(interop.as.issuer, { device: true })
      const run = yield* runCli(["login", "--device", "--json", "--dir", dir, "--scopes", "mcp:read", interop.mcp.url], user)
      const opened = run.opened
      console.log(summarize("CLI login --device", interop.as.counts))
      expect(run.code, run.stderr).toBe(0)
      expect(opened).toHaveLength(1)
      expect(opened[0]).toContain(`${interop.as.issuer}/device?user_code=`)
      expect(JSON.parse(run.stdout)).toMatchObject({ server: TokenStorage.serverKey(interop.mcp.url) })
      expect(interop.as.counts.tokenRequests["urn:ietf:params:oauth:grant-type:device_code"]?.ok).toBe(1)
      const stored = yield* Effect.flatMap(TokenStorage.TokenStorage, (s) =>
        s.getTokens(TokenStorage.serverKey(interop.mcp.url))).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))
      expect(Option.isSome(stored)).toBe(true)
    }), 90_000)

  it.scopedLive("with DPoP: login --device stores a bound token and its key; `token` prints it and says on stderr that it is no Bearer token", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ deviceFlow: true, dpop: true })
      const dir = yield* tempDir
      const login = yield* runCli(
        ["login", "--device", "--dir", dir, "--scopes", "mcp:read", interop.mcp.url],
        httpUser(interop.as.issuer, { device: true })
      )
      expect(login.code, login.stderr).toBe(0)
      const stored = Option.getOrThrow(
        yield* Effect.flatMap(TokenStorage.TokenStorage, (s) => s.getTokens(TokenStorage.serverKey(interop.mcp.url))).pipe(
          Effect.provide(TokenStorage.layerFileSystemNode(dir))
        )
      )
      expect(stored.tokenType).toBe("DPoP")
      expect(stored.dpopKey).toBeDefined()
      const token = yield* runCli(["token", "--dir", dir, interop.mcp.url])
      expect(token.code, token.stderr).toBe(0)
      expect(token.stdout.trim()).toBe(Redacted.value(stored.accessToken))
      expect(token.stderr).toContain("This token is DPoP-bound (RFC 9449)")
      const json = yield* runCli(["token", "--json", "--dir", dir, interop.mcp.url])
      expect(JSON.parse(json.stdout)).toMatchObject({ token_type: "DPoP" })
    }), 90_000)

  it.scopedLive("on a terminal (a pseudo-terminal from script(1)) the user scans the QR code and approves", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop({ deviceFlow: true })
      const dir = yield* tempDir
      const user = httpUser(interop.as.issuer, { device: true })
      const scanned: Array<string> = []
      const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`
      const command = [process.execPath, cli.path(), "login", "--device", "--dir", dir, "--scopes", "mcp:read", interop.mcp.url]
        .map(quote).join(" ")
      const run = yield* Effect.async<{ code: number | null; output: string }>((resume) => {
        // script(1) runs the CLI on a pseudo-terminal: stdout and stderr are both that terminal.
        const child = spawn("script", ["-qfec", `stty cols 120 rows 60; exec ${command}`, "/dev/null"], {
          cwd: ROOT,
          env: { ...process.env, NO_COLOR: "1", NODE_NO_WARNINGS: "1" },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        const onData = (d: Buffer) => {
          output += d.toString("utf8")
          const url = scanned.length === 0 ? decodeQr(qrRows(output)) : undefined
          if (url !== undefined) {
            scanned.push(url)
            void user.run(url)
          }
        }
        child.stdout.on("data", onData)
        child.stderr.on("data", onData)
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
        child.on("exit", (code) => {
          clearTimeout(timer)
          resume(Effect.succeed({ code, output }))
        })
      })
      expect(run.code, run.output).toBe(0)
      expect(scanned).toHaveLength(1)
      // the QR code carries the address printed in the prompt line, user code included
      const printed = /open (http:\/\/\S+?) on any device/.exec(run.output)?.[1]
      expect(scanned[0]).toBe(printed)
      expect(scanned[0]).toContain(`${interop.as.issuer}/device?user_code=`)
      expect(run.output).toContain("Signed in to")
      expect(interop.as.counts.tokenRequests["urn:ietf:params:oauth:grant-type:device_code"]?.ok).toBe(1)
    }), 90_000)
})
