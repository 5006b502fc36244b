/**
 * An Effect MCP client: `McpClient` over Streamable HTTP, legacy HTTP+SSE or stdio transports.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Auth from "./Auth.js"

/**
 * @since 0.1.0
 */
export * as Elicitation from "./Elicitation.js"

/**
 * @since 0.1.0
 */
export * as JsonRpc from "./JsonRpc.js"

/**
 * @since 0.1.0
 */
export * as LegacySse from "./LegacySse.js"

/**
 * @since 0.1.0
 */
export * as McpClient from "./McpClient.js"

/**
 * @since 0.1.0
 */
export * from "./McpErrors.js"

/**
 * @since 0.1.0
 */
export * as McpHeaders from "./McpHeaders.js"

/**
 * @since 0.1.0
 */
export * as McpSchema from "./McpSchema.js"

/**
 * @since 0.1.0
 */
export * as McpTransport from "./McpTransport.js"

/**
 * The client side of the MCP skills extension (SEP-2640): list skills, load one on demand,
 * verify each file read against the listed entry.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension
 * @since 0.1.0
 */
export * as Skills from "./Skills.js"

/**
 * @since 0.1.0
 */
export * as Sse from "./Sse.js"

/**
 * @since 0.1.0
 */
export * as StreamableHttp from "./StreamableHttp.js"

/**
 * @since 0.1.0
 */
export * as Stdio from "./Stdio.js"

/**
 * @since 0.1.0
 */
export * as Target from "./Target.js"
