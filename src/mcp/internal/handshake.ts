/**
 * The start of a session: the client's capabilities (implied by its handlers), `initialize` with
 * version negotiation on a stateful session, `server/discover` on a stateless one (SEP-2575).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { McpTransportError } from "../McpErrors.js"
import * as McpSchema from "../McpSchema.js"
import type { McpClientHandlers } from "./clientState.js"

/**
 * The capabilities a client declares: those its handlers answer for, plus `extra`.
 *
 * @internal
 */
export const clientCapabilities = (
  handlers: McpClientHandlers,
  extra: McpSchema.ClientCapabilities | undefined
): McpSchema.ClientCapabilities => ({
  ...(handlers.elicitation === undefined ? {} : { elicitation: {} }),
  ...(handlers.sampling === undefined ? {} : { sampling: {} }),
  ...(handlers.roots === undefined ? {} : { roots: { listChanged: handlers.roots.listChanged ?? false } }),
  ...extra
})

/**
 * Stateless sessions: what `server/discover` says, shaped like an `initialize` result.
 *
 * @internal
 */
export const fromDiscoverResult = (version: string, found: typeof McpSchema.DiscoverResult.Type): McpSchema.InitializeResult => {
  const metaInfo = found._meta?.["io.modelcontextprotocol/serverInfo"]
  const serverInfo = found.serverInfo ??
    (typeof metaInfo === "object" && metaInfo !== null && "name" in metaInfo &&
        typeof metaInfo.name === "string" && "version" in metaInfo && typeof metaInfo.version === "string"
      ? { name: metaInfo.name, version: metaInfo.version }
      : { name: "unknown", version: "unknown" })
  return {
    protocolVersion: version,
    capabilities: found.capabilities ?? {},
    serverInfo,
    ...(found.instructions === undefined ? {} : { instructions: found.instructions })
  }
}

/**
 * The protocol version the server chose, if this client speaks it.
 *
 * @internal
 */
export const negotiatedVersion = (initializeResult: McpSchema.InitializeResult) =>
  Schema.decodeUnknown(McpSchema.ProtocolVersion)(initializeResult.protocolVersion).pipe(
    Effect.mapError(() =>
      new McpTransportError({
        reason: "UnsupportedVersion",
        description: `The server chose protocol version "${initializeResult.protocolVersion}"; this client speaks ${
          McpSchema.SUPPORTED_PROTOCOL_VERSIONS.join(", ")
        }`
      })
    )
  )
