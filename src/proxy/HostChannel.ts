/**
 * The host side of the stdio proxy: the MCP host (a desktop app, an IDE) runs the proxy as a
 * stdio server and exchanges newline-delimited JSON-RPC on its stdin/stdout. This module reads
 * stdin line by line (a malformed line is reported, not fatal) and writes messages to stdout one
 * line each, in order. Nothing else may write to stdout: it is the protocol.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type * as Scope from "effect/Scope"
import * as readline from "node:readline"
import type { Readable, Writable } from "node:stream"
import type { JsonRpcMessage } from "../mcp/JsonRpc.js"
import * as JsonRpc from "../mcp/JsonRpc.js"
import type { McpTransportError } from "../mcp/McpErrors.js"

/**
 * One line from the host: its messages, or why it could not be read (invalid JSON, not JSON-RPC).
 *
 * @see https://www.jsonrpc.org/specification#error_object
 * @since 0.1.0
 * @category models
 */
export type HostLine = Either.Either<ReadonlyArray<JsonRpcMessage>, McpTransportError>

/**
 * The connection to the host: `incoming` ends when the host closes stdin; `send` writes one
 * message.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category models
 */
export interface HostChannel {
  readonly incoming: Stream.Stream<HostLine>
  readonly send: (message: JsonRpcMessage) => Effect.Effect<void>
}

/**
 * A host channel over a readable and a writable stream (default: this process's stdin and
 * stdout). A write to a closed stdout is dropped (the host is gone; stdin's end follows).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  input: Readable = process.stdin,
  output: Writable = process.stdout
): Effect.Effect<HostChannel, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lines = yield* Effect.acquireRelease(
      Effect.sync(() => readline.createInterface({ input, crlfDelay: Infinity, terminal: false })),
      (rl) => Effect.sync(() => rl.close())
    )
    let writable = true
    const onError = () => {
      writable = false
    }
    output.on("error", onError)
    yield* Effect.addFinalizer(() => Effect.sync(() => output.off("error", onError)))
    const incoming = Stream.fromAsyncIterable(lines, (e) => e).pipe(
      Stream.catchAll((e) => Stream.fromEffect(Effect.logWarning(`proxy: reading stdin failed: ${String(e)}`)).pipe(Stream.drain)),
      Stream.tap((line) => Effect.logDebug(`proxy: host line of ${line.length} characters`)),
      Stream.filter((line) => line.trim() !== ""),
      Stream.mapEffect((line) => Effect.either(JsonRpc.decodeText(line)))
    )
    const send = (message: JsonRpcMessage): Effect.Effect<void> =>
      Effect.async<void>((resume) => {
        if (!writable || output.writableEnded) return resume(Effect.void)
        output.write(`${JsonRpc.encode(message)}\n`, () => resume(Effect.void))
      })
    return { incoming, send }
  })
