/**
 * How the CLI shows a device code (RFC 8628 §3.3): the address and the code on standard error
 * and, when standard error is a terminal wide and tall enough, a QR code of the address to scan
 * with a phone (RFC 8628 §3.3.1: `verification_uri_complete` "may be rendered as a QR code").
 * The QR code is drawn by `uqr` (a maintained, dependency-free encoder), loaded only when a
 * device code is shown. Nothing goes to stdout, which keeps the command's result.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3.1
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as DeviceAuthorization from "../DeviceAuthorization.js"

/**
 * What the display knows of the terminal behind standard error.
 *
 * @since 0.1.0
 * @category models
 */
export interface TerminalSize {
  readonly isTTY: boolean
  readonly columns: number | undefined
  readonly rows: number | undefined
}

/**
 * The address a QR code should carry: `verification_uri_complete` when the server gave one (the
 * user then only checks the code), else `verification_uri` (RFC 8628 §3.3.1).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3.1
 * @since 0.1.0
 * @category display
 */
export const qrTarget = (prompt: DeviceAuthorization.DeviceCodePrompt): string =>
  prompt.verificationUriComplete ?? prompt.verificationUri

/**
 * The QR code's lines, two modules per character row (`▀`, `▄`, `█`, space), with a quiet zone
 * of two modules. Light modules are drawn as blocks, so it reads on the usual dark terminal.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3.1
 * @since 0.1.0
 * @category display
 */
export const qrLines = (text: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(
    Effect.promise(() => import("uqr")),
    (uqr) => uqr.renderUnicodeCompact(text, { border: 2, ecc: "L" }).split("\n")
  )

/**
 * Whether a QR code of `lines` fits: only on a terminal, no wider than its columns, and leaving
 * room for the prompt line (when the terminal reports its rows).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3.1
 * @since 0.1.0
 * @category display
 */
export const fits = (lines: ReadonlyArray<string>, terminal: TerminalSize): boolean => {
  if (!terminal.isTTY || terminal.columns === undefined) return false
  const width = lines.reduce((max, line) => Math.max(max, [...line].length), 0)
  return width <= terminal.columns && (terminal.rows === undefined || lines.length + 2 <= terminal.rows)
}

/**
 * The text shown for `prompt`: the prompt line of {@link DeviceAuthorization.promptText}, then the
 * QR code when it {@link fits}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @since 0.1.0
 * @category display
 */
export const render = (
  prompt: DeviceAuthorization.DeviceCodePrompt,
  terminal: TerminalSize
): Effect.Effect<string> =>
  Effect.map(
    terminal.isTTY ? qrLines(qrTarget(prompt)) : Effect.succeed<ReadonlyArray<string>>([]),
    (lines) =>
      fits(lines, terminal) && lines.length > 0
        ? `${DeviceAuthorization.promptText(prompt)}\n${lines.join("\n")}`
        : DeviceAuthorization.promptText(prompt)
  )

/**
 * The CLI's `onDeviceCode`: {@link render} for the terminal behind standard error, written there.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 * @since 0.1.0
 * @category display
 */
export const showOnStderr = (prompt: DeviceAuthorization.DeviceCodePrompt): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.sync((): TerminalSize => ({
      isTTY: process.stderr.isTTY === true,
      columns: process.stderr.columns,
      rows: process.stderr.rows
    })),
    (terminal) => Effect.flatMap(render(prompt, terminal), Console.error)
  )
