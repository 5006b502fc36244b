/**
 * Descriptions of values received from a peer for error messages, safe on any JSON: a value
 * nested deeper than the call stack allows (`[[[[…]]]]`) is described, not stringified.
 *
 * @internal
 */
import * as ParseResult from "effect/ParseResult"

const TOO_DEEP = "(nested too deeply to show)"

/** `JSON.stringify(value)`, or a placeholder when the value cannot be stringified. @internal */
export const stringify = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return TOO_DEEP
  }
}

/**
 * The tree description of a parse error and the error to keep as a `cause` — none when the
 * value it holds is too deep to format (any later formatting of the cause would overflow too).
 *
 * @internal
 */
export const parseError = (
  error: ParseResult.ParseError
): { readonly text: string; readonly cause: ParseResult.ParseError | undefined } => {
  try {
    return { text: ParseResult.TreeFormatter.formatErrorSync(error), cause: error }
  } catch {
    return { text: `the value does not match ${TOO_DEEP}`, cause: undefined }
  }
}
