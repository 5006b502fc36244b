/**
 * The proxy's provisional `initialize` answer, for a host whose patience is shorter than a
 * sign-in. A host starts the proxy and expects `initialize` answered within its own start-up
 * timeout, but on a first start the server's real answer waits for a browser sign-in. After
 * `initializeWait` the proxy answers with this result instead: the host's protocol version,
 * `tools`, `resources` and `prompts` with `listChanged`, and instructions saying a sign-in is in
 * progress. Requests then wait for the session as before, and once the real server is connected:
 *
 * - a `notifications/…/list_changed` is sent for each of tools, resources and prompts that the
 *   server has, so the host lists them again (MCP lifecycle: capabilities with `listChanged`);
 * - `prompts/list`, `resources/list` and `resources/templates/list` for a capability the server
 *   lacks are answered with an empty list here, not an error, since the proxy claimed it.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#list-changed-notification
 * @since 0.1.0
 */
import type { JsonRpcNotification } from "../mcp/JsonRpc.js"
import * as JsonRpc from "../mcp/JsonRpc.js"
import * as McpSchema from "../mcp/McpSchema.js"

/**
 * The provisional `InitializeResult` for a host that asked for `protocolVersion`: that version
 * when the library speaks it, else the latest it does (the host then decides, as with any server).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 * @since 0.1.0
 * @category results
 */
export const result = (protocolVersion: string, url: string): McpSchema.InitializeResult => ({
  protocolVersion: McpSchema.SUPPORTED_PROTOCOL_VERSIONS.some((v) => v === protocolVersion)
    ? protocolVersion
    : McpSchema.LATEST_PROTOCOL_VERSION,
  capabilities: {
    tools: { listChanged: true },
    resources: { listChanged: true },
    prompts: { listChanged: true }
  },
  serverInfo: { name: "effect-mcp-oauth proxy", version: "0.1.0" },
  instructions: `Signing in to ${url}: the server's tools, resources and prompts are listed once ` +
    "the sign-in completes (a list_changed notification follows)."
})

/**
 * The `list_changed` notifications to send once the real server is connected: one for each of
 * tools, resources and prompts that it has.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#list-changed-notification
 * @since 0.1.0
 * @category notifications
 */
export const listChanged = (capabilities: McpSchema.ServerCapabilities): ReadonlyArray<JsonRpcNotification> => [
  ...(capabilities.tools === undefined ? [] : [JsonRpc.notification("notifications/tools/list_changed", undefined)]),
  ...(capabilities.resources === undefined
    ? []
    : [JsonRpc.notification("notifications/resources/list_changed", undefined)]),
  ...(capabilities.prompts === undefined ? [] : [JsonRpc.notification("notifications/prompts/list_changed", undefined)])
]

/**
 * The answer the proxy gives itself to a list request for a capability it claimed provisionally
 * and the server lacks (an empty list), or `undefined` to forward the request.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#listing-prompts
 * @since 0.1.0
 * @category results
 */
export const emptyListFor = (
  method: string,
  capabilities: McpSchema.ServerCapabilities
): Record<string, ReadonlyArray<never>> | undefined =>
  method === "prompts/list" && capabilities.prompts === undefined
    ? { prompts: [] }
    : method === "resources/list" && capabilities.resources === undefined
    ? { resources: [] }
    : method === "resources/templates/list" && capabilities.resources === undefined
    ? { resourceTemplates: [] }
    : undefined
