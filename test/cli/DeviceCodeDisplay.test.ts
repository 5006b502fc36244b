/**
 * The CLI's device-code display: a QR code of the verification address on a terminal where it
 * fits, read back by an independent decoder (jsQR); nothing but the prompt line elsewhere.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as DeviceCodeDisplay from "../../src/cli/DeviceCodeDisplay.js"
import type * as DeviceAuthorization from "../../src/DeviceAuthorization.js"
import { decodeQr, qrRows } from "../fixtures/qrDecode.js"

const complete: DeviceAuthorization.DeviceCodePrompt = {
  issuer: "https://as.example.com",
  userCode: "WDJB-MJHT",
  verificationUri: "https://as.example.com/device",
  verificationUriComplete: "https://as.example.com/device?user_code=WDJB-MJHT",
  expiresIn: Duration.minutes(10)
}
const plain: DeviceAuthorization.DeviceCodePrompt = { ...complete, verificationUriComplete: undefined }
const wide = { isTTY: true, columns: 120, rows: 50 }

describe("DeviceCodeDisplay", () => {
  it.effect("on a wide terminal: the prompt line, then a QR code that decodes to verification_uri_complete", () =>
    Effect.gen(function*() {
      const text = yield* DeviceCodeDisplay.render(complete, wide)
      const [first] = text.split("\n")
      expect(first).toContain("WDJB-MJHT")
      expect(first).toContain(complete.verificationUriComplete)
      const rows = qrRows(text)
      expect(rows.length).toBeGreaterThan(10)
      expect(decodeQr(rows)).toBe(complete.verificationUriComplete)
    }))

  it.effect("without verification_uri_complete the QR code carries verification_uri (the code is typed)", () =>
    Effect.gen(function*() {
      const text = yield* DeviceCodeDisplay.render(plain, wide)
      expect(text).toContain("enter the code WDJB-MJHT")
      expect(decodeQr(qrRows(text))).toBe(plain.verificationUri)
    }))

  it.effect("no QR code when stderr is not a terminal, too narrow or too short: only the prompt line", () =>
    Effect.gen(function*() {
      const lines = yield* DeviceCodeDisplay.qrLines(complete.verificationUriComplete!)
      const width = [...lines[0]!].length
      for (
        const terminal of [
          { isTTY: false, columns: 200, rows: 100 },
          { isTTY: true, columns: undefined, rows: undefined },
          { isTTY: true, columns: width - 1, rows: 100 },
          { isTTY: true, columns: 200, rows: lines.length }
        ]
      ) {
        const text = yield* DeviceCodeDisplay.render(complete, terminal)
        expect(text.split("\n"), JSON.stringify(terminal)).toHaveLength(1)
        expect(qrRows(text)).toEqual([])
      }
      // exactly fitting is enough
      const fitting = yield* DeviceCodeDisplay.render(complete, { isTTY: true, columns: width, rows: lines.length + 2 })
      expect(decodeQr(qrRows(fitting))).toBe(complete.verificationUriComplete)
    }))
})
