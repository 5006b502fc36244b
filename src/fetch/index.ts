/**
 * `effect-mcp-oauth/fetch`: this library's OAuth as a WHATWG `fetch` for Promise-style code such
 * as the official MCP TypeScript SDK (`StreamableHTTPClientTransport({ fetch })`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * from "./OAuthFetch.js"
