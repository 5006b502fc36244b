/**
 * SEP-2322 (multi round-trip requests) on the 2026-07-28 wire: a tool call, prompt or resource
 * read answered with an `InputRequiredResult` is answered from the handlers and sent again.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { McpTransportError } from "../McpErrors.js"
import * as McpSchema from "../McpSchema.js"
import type { ClientState, McpClientError, RequestOptions } from "./clientState.js"
import { decodeWith } from "./clientState.js"
import { dispatch } from "./serverRequests.js"

const inputRequiredMethods: ReadonlySet<string> = new Set(McpSchema.INPUT_REQUIRED_METHODS)

const isInputRequired = (result: unknown): boolean =>
  typeof result === "object" && result !== null && "resultType" in result && result.resultType === "input_required"

const decodeInputRequired = decodeWith(McpSchema.InputRequiredResult, "InputRequiredResult")

/** The original params plus this round's answers and the opaque state, exactly as received. */
const retryParams = (
  params: unknown,
  needed: McpSchema.InputRequiredResult,
  responses: Record<string, unknown>
): Record<string, unknown> => {
  const base: Record<string, unknown> = typeof params === "object" && params !== null ? { ...params } : {}
  delete base["inputResponses"]
  delete base["requestState"]
  return {
    ...base,
    ...(needed.inputRequests === undefined ? {} : { inputResponses: responses }),
    ...(needed.requestState === undefined ? {} : { requestState: needed.requestState })
  }
}

/**
 * Send a request with `exchange`; on the 2026-07-28 wire, answer each `InputRequiredResult` of a
 * tool call, prompt or resource read from the handlers and retry with a new id, at most
 * `maxInputRounds` times. A result with no `resultType` is complete.
 *
 * @internal
 */
export const roundTrips = (
  state: ClientState,
  maxInputRounds: number,
  exchange: (method: string, params: unknown, options?: RequestOptions) => Effect.Effect<unknown, McpClientError>,
  method: string,
  params: unknown,
  options?: RequestOptions
): Effect.Effect<unknown, McpClientError> =>
  Effect.gen(function*() {
    let current = params
    for (let round = 0;; round++) {
      const result = yield* exchange(method, current, options)
      if (state.stateless === undefined || !inputRequiredMethods.has(method) || !isInputRequired(result)) return result
      if (round >= maxInputRounds) {
        return yield* Effect.fail(
          new McpTransportError({
            reason: "Protocol",
            description: `${method} still required input after ${maxInputRounds} rounds`
          })
        )
      }
      const needed = yield* decodeInputRequired(result)
      const responses: Record<string, unknown> = {}
      for (const [key, input] of Object.entries(needed.inputRequests ?? {})) {
        responses[key] = yield* dispatch(state.handlers, input.method, input.params)
      }
      current = retryParams(params, needed, responses)
    }
  })
