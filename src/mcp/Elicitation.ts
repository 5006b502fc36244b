/**
 * Helpers for answering `elicitation/create` in form mode: read the `default` values a server
 * put in its `requestedSchema` (SEP-1034) so a handler can accept with them.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#requested-schema
 * @since 0.1.0
 */
import type * as McpSchema from "./McpSchema.js"

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The `default` of every top-level property of a requested schema that declares one (strings,
 * numbers, integers, booleans, enums).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#requested-schema
 * @since 0.1.0
 * @category helpers
 */
export const defaults = (
  requestedSchema: Readonly<Record<string, unknown>> | undefined
): Record<string, unknown> => {
  const properties = requestedSchema?.["properties"]
  if (!isRecord(properties)) return {}
  const out: Record<string, unknown> = {}
  for (const [name, property] of Object.entries(properties)) {
    if (isRecord(property) && "default" in property) out[name] = property["default"]
  }
  return out
}

/**
 * An `accept` answer whose content is the schema's defaults overridden by `content`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#response-actions
 * @since 0.1.0
 * @category helpers
 */
export const acceptWithDefaults = (
  params: McpSchema.ElicitRequestParams,
  content: Readonly<Record<string, unknown>> = {}
): McpSchema.ElicitResult => ({
  action: "accept",
  content: { ...defaults(params.requestedSchema), ...content }
})
