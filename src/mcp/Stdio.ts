/**
 * The stdio transport: the client spawns the server as a subprocess (through `@effect/platform`'s
 * `CommandExecutor`) and exchanges newline-delimited JSON-RPC on its stdin/stdout; stderr is
 * forwarded to a sink. Closing the scope ends stdin, waits a grace period for the process to
 * exit, then sends SIGTERM and finally SIGKILL.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as Scope from "effect/Scope"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { JsonRpcMessage } from "./JsonRpc.js"
import * as JsonRpc from "./JsonRpc.js"
import { McpTransportError } from "./McpErrors.js"
import { McpTransport } from "./McpTransport.js"

/**
 * Environment variables inherited by default (as the reference SDKs do), so that secrets in the
 * parent's environment do not leak to a server unless asked for.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_INHERITED_ENV: ReadonlyArray<string> = process.platform === "win32"
  ? [
    "APPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PROCESSOR_ARCHITECTURE",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "USERNAME",
    "USERPROFILE",
    "PROGRAMFILES"
  ]
  : ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "TMPDIR", "LANG"]

/**
 * Options of the stdio transport.
 *
 * - `command`, `args`: what to run (no shell).
 * - `env`: variables for the server, added to the inherited ones.
 * - `inheritEnv`: `true` to pass the whole parent environment, a list of names to pass those
 *   (default {@link DEFAULT_INHERITED_ENV}).
 * - `cwd`: working directory of the server.
 * - `stderr`: where the server's stderr lines go (default `Effect.logDebug`).
 * - `closeGracePeriod`: how long to wait after ending stdin before killing (default 2 seconds).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category models
 */
export interface StdioOptions {
  readonly command: string
  readonly args?: ReadonlyArray<string> | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly inheritEnv?: boolean | ReadonlyArray<string> | undefined
  readonly cwd?: string | undefined
  readonly stderr?: ((line: string) => Effect.Effect<void>) | undefined
  readonly closeGracePeriod?: Duration.DurationInput | undefined
}

const environment = (options: StdioOptions): Record<string, string> => {
  const inherited: Record<string, string> = {}
  const names = options.inheritEnv === true
    ? Object.keys(process.env)
    : options.inheritEnv === false
    ? []
    : options.inheritEnv ?? DEFAULT_INHERITED_ENV
  for (const name of names) {
    const value = process.env[name]
    // Skip exported shell functions, which can be abused.
    if (value !== undefined && !value.startsWith("()")) inherited[name] = value
  }
  return { ...inherited, ...options.env }
}

const describe = (options: StdioOptions): string => [options.command, ...(options.args ?? [])].join(" ")

/** Start the server process with the chosen environment and working directory. */
const spawn = (
  executor: CommandExecutor.CommandExecutor,
  options: StdioOptions
): Effect.Effect<CommandExecutor.Process, McpTransportError, Scope.Scope> => {
  let command = Command.make(options.command, ...(options.args ?? [])).pipe(
    Command.env(environment(options), { extendEnv: false })
  )
  if (options.cwd !== undefined) command = Command.workingDirectory(command, options.cwd)
  return executor.start(command).pipe(
    Effect.mapError((error) =>
      new McpTransportError({
        reason: "Spawn",
        description: `Could not start "${describe(options)}": ${error.message}`,
        cause: error
      })
    )
  )
}

/**
 * One JSON-RPC message (or batch) per line of stdout into `incoming`; when stdout closes,
 * `incoming` fails as Closed, with the exit code when the process ends within a second.
 */
const readStdout = (
  child: CommandExecutor.Process,
  incoming: Mailbox.Mailbox<JsonRpcMessage, McpTransportError>,
  options: StdioOptions
): Effect.Effect<void> =>
  child.stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filter((line) => line.trim() !== ""),
    Stream.runForEach((line) =>
      JsonRpc.decodeText(line).pipe(
        Effect.flatMap((messages) => incoming.offerAll(messages)),
        Effect.catchAll((error) => Effect.logWarning("MCP: ignoring a line that is not JSON-RPC", error.description))
      )
    ),
    Effect.ignore,
    Effect.zipRight(child.exitCode.pipe(Effect.timeout("1 second"), Effect.option)),
    Effect.flatMap((code) =>
      incoming.fail(
        new McpTransportError({
          reason: "Closed",
          description: `The server process "${describe(options)}" closed its stdout${
            Option.match(code, { onNone: () => "", onSome: (c) => ` (exit code ${c})` })
          }`
        })
      )
    ),
    Effect.asVoid
  )

/** Finalizers are uninterruptible: each bounded wait is made interruptible so its timeout works. */
const within = <A, E>(effect: Effect.Effect<A, E>, duration: Duration.DurationInput) =>
  Effect.option(Effect.timeout(Effect.interruptible(effect), duration))

/**
 * Close stdin and give the server `closeGracePeriod` to exit, then SIGTERM, then SIGKILL; end
 * `incoming` last.
 */
const shutdown = (
  child: CommandExecutor.Process,
  stdin: Fiber.RuntimeFiber<void>,
  outgoing: Mailbox.Mailbox<string>,
  incoming: Mailbox.Mailbox<JsonRpcMessage, McpTransportError>,
  closeGracePeriod: Duration.DurationInput
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* outgoing.end
    yield* within(Fiber.await(stdin), "1 second")
    const exited = yield* within(child.exitCode, closeGracePeriod)
    if (Option.isNone(exited) && (yield* child.isRunning.pipe(Effect.orElseSucceed(() => false)))) {
      const terminated = yield* within(child.kill("SIGTERM"), "2 seconds")
      if (Option.isNone(terminated)) yield* within(child.kill("SIGKILL"), "2 seconds")
    }
    yield* incoming.end
  }).pipe(Effect.withSpan("McpClient.Stdio.close"))

/**
 * Spawn the server and connect to its stdio.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: StdioOptions
): Effect.Effect<McpTransport, McpTransportError, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const scope = yield* Effect.scope
    const child = yield* spawn(executor, options)
    const incoming = yield* Mailbox.make<JsonRpcMessage, McpTransportError>()
    const outgoing = yield* Mailbox.make<string>()
    const stderrSink = options.stderr ?? ((line: string) => Effect.logDebug(`MCP server stderr: ${line}`))

    const stdin = yield* Mailbox.toStream(outgoing).pipe(
      Stream.encodeText,
      Stream.run(child.stdin),
      Effect.catchAll((error) => Effect.logDebug("MCP: stdin of the server closed", error.message)),
      Effect.forkIn(scope)
    )
    yield* child.stderr.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach(stderrSink),
      Effect.ignore,
      Effect.forkIn(scope)
    )
    yield* Effect.forkIn(readStdout(child, incoming, options), scope)
    yield* Effect.addFinalizer(() =>
      shutdown(child, stdin, outgoing, incoming, options.closeGracePeriod ?? Duration.seconds(2))
    )

    const send = (message: JsonRpcMessage): Effect.Effect<void, McpTransportError> =>
      Effect.flatMap(Effect.flatMap(JsonRpc.encodeText(message), (line) => outgoing.offer(`${line}\n`)), (accepted) =>
        accepted
          ? Effect.void
          : Effect.fail(new McpTransportError({ reason: "Closed", description: "The stdio transport is closed" })))

    return McpTransport.of({
      send,
      incoming,
      setProtocolVersion: () => Effect.void,
      start: Effect.void
    })
  })

/**
 * The transport as a layer.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: StdioOptions
): Layer.Layer<McpTransport, McpTransportError, CommandExecutor.CommandExecutor> =>
  Layer.scoped(McpTransport, make(options))
