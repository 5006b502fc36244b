/**
 * Fuzzing the CLI's argument parsing, in-process (`Cli.run`): any argv gives an exit code
 * (0 ok, 1 error, 2 usage, 3 not signed in), never a defect and never a hang. The token
 * directory is a temporary one (`--dir` and `XDG_CACHE_HOME`), and the only URLs are loopback
 * ports nothing listens on, so no run touches the network or the user's credentials.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FastCheck as fc, Logger, LogLevel } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Cli from "../../src/cli/Cli.js"
import { deadPort } from "../oauthRawServer.js"
import { assertAsyncProperty, nastyString } from "./arbitraries.js"

const EXIT_CODES: ReadonlyArray<number> = Object.values(Cli.ExitCode)

describe("fuzz: CLI arguments", () => {
  it.live("any argv: an exit code, never a defect, within 10 s", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-cli-fuzz-"))
      process.env["XDG_CACHE_HOME"] = dir
      const port = yield* deadPort
      const url = `http://127.0.0.1:${port}/mcp`
      // Free-form words cannot name a host: no ':' or '/', and nothing that starts the wizard.
      const word = nastyString.map((s) => s.replace(/[:/]/g, "").slice(0, 200)).filter((s) => !s.startsWith("--w"))
      const piece = fc.oneof(
        fc.constantFrom("login", "status", "token", "logout", "help"),
        fc.constantFrom("--json", "--all", "--headless", "--help", "-h", "--version", "--scopes", "--client-id", "--dir"),
        fc.constantFrom(url, `${url}/`, "not a url", "https", "", "--", "-", "---x", "--json=1", "--log-level", "debug"),
        word
      )
      const loose = fc.array(piece, { maxLength: 8 }).map((args) => [...args, "--dir", dir])
      // Well-formed commands with hostile values, so that runs get past the parser.
      const formed = fc.record({
        command: fc.constantFrom("login", "status", "token", "logout"),
        flags: fc.subarray(["--json", "--all", "--headless"]),
        scopes: fc.option(word, { nil: undefined }),
        clientId: fc.option(word, { nil: undefined }),
        target: fc.option(fc.oneof(fc.constant(url), word), { nil: undefined })
      }).map(({ clientId, command, flags, scopes, target }) => [
        command,
        ...(command === "login" ? flags : flags.filter((f) => f !== "--headless")),
        ...(scopes === undefined || command !== "login" ? [] : ["--scopes", scopes]),
        ...(clientId === undefined || command !== "login" ? [] : ["--client-id", clientId]),
        "--dir",
        dir,
        ...(target === undefined ? [] : [target])
      ])
      const argv = fc.oneof(loose, formed)
      try {
        yield* Effect.promise(() =>
          assertAsyncProperty(
            fc.asyncProperty(argv, async (args) => {
              const exit = await Effect.runPromiseExit(
                Cli.run(args).pipe(
                  Effect.timeout("10 seconds"),
                  Effect.provide(NodeContext.layer),
                  Logger.withMinimumLogLevel(LogLevel.None)
                )
              )
              expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause).slice(0, 500) : "").toBe(true)
              if (Exit.isSuccess(exit)) expect(EXIT_CODES).toContain(exit.value)
            }),
            { numRuns: 40 }
          )
        )
      } finally {
        NodeFs.rmSync(dir, { recursive: true, force: true })
      }
    }), 120_000)
})
