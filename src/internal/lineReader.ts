/**
 * Reads one line from standard input with a prompt on standard error (standard output may carry
 * a protocol, e.g. an MCP stdio transport). `None` when input ends (EOF) or the user presses
 * Ctrl-C.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as readline from "node:readline"

/** @internal */
export const readLineFromStdin = (prompt: string): Effect.Effect<Option.Option<string>> =>
  Effect.async<Option.Option<string>>((resume) => {
    const rl = readline.createInterface({
      input: process.stdin,
      output: process.stderr,
      terminal: Boolean(process.stdin.isTTY && process.stderr.isTTY)
    })
    let done = false
    const finish = (value: Option.Option<string>) => {
      if (done) return
      done = true
      rl.close()
      resume(Effect.succeed(value))
    }
    rl.once("close", () => finish(Option.none()))
    rl.once("SIGINT", () => finish(Option.none()))
    rl.question(prompt, (answer) => finish(Option.some(answer)))
    return Effect.sync(() => {
      done = true
      rl.close()
    })
  })
