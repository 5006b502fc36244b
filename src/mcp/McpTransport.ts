/**
 * The contract between `McpClient` and a transport (Streamable HTTP, legacy HTTP+SSE, stdio).
 * A transport moves JSON-RPC messages; it knows nothing of MCP methods.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Mailbox from "effect/Mailbox"
import * as Context from "effect/Context"
import type { JsonRpcMessage } from "./JsonRpc.js"
import type { McpTransportError } from "./McpErrors.js"

/**
 * Per-message options of {@link McpTransport.send}.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#custom-headers-from-tool-parameters
 * @since 0.1.0
 * @category models
 */
export interface SendOptions {
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A connected transport. Its lifetime is the `Scope` it was built in: closing that scope closes
 * the connection (HTTP DELETE of the session, end of the SSE stream, end of stdin then kill).
 *
 * - `send` hands one message to the peer; `options.headers` are extra HTTP headers for this one
 *   message (e.g. SEP-2243 `Mcp-Param-*`), which transports without headers ignore. For a
 *   request it succeeds once the message was
 *   delivered (Streamable HTTP: once the answer, carried by the POST's own response, has been
 *   put on `incoming`) and fails when the transport knows the answer will never come.
 * - `incoming` carries every message from the peer; it fails (or ends) when the connection dies.
 * - `setProtocolVersion` is called once `initialize` has succeeded (HTTP sends
 *   `MCP-Protocol-Version` from then on).
 * - `start` is called after `notifications/initialized`: a transport may open extra channels then
 *   (Streamable HTTP: the optional GET stream).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export interface McpTransport {
  readonly send: (message: JsonRpcMessage, options?: SendOptions) => Effect.Effect<void, McpTransportError>
  readonly incoming: Mailbox.ReadonlyMailbox<JsonRpcMessage, McpTransportError>
  readonly setProtocolVersion: (version: string) => Effect.Effect<void>
  readonly start: Effect.Effect<void>
}

/**
 * The transport tag `McpClient` is built on.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category tags
 */
export const McpTransport: Context.Tag<McpTransport, McpTransport> = Context.GenericTag<McpTransport>(
  "effect-mcp-oauth/mcp/McpTransport"
)
