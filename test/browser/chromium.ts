/**
 * Debian's Chromium, headless, for the real-browser tests: the flags a closed network and a root
 * user need. Without /usr/bin/chromium the tests skip locally and fail in CI (CI=true).
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Browser, Page } from "playwright-core"
import { chromium } from "playwright-core"

export const CHROMIUM = "/usr/bin/chromium"
export const available = Fs.existsSync(CHROMIUM)
export const inCi = process.env["CI"] === "true"
export const OUTPUT = Path.resolve(__dirname, "../../test-output")

/** A headless Chromium, closed with the scope. */
export const launch = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic"
      ]
    })
  ),
  (browser: Browser) => Effect.promise(() => browser.close())
)

/** A page of `browser`, closed with the scope. */
export const newPage = (browser: Browser) =>
  Effect.acquireRelease(
    Effect.promise(() => browser.newPage({ viewport: { width: 800, height: 500 } })),
    (page: Page) => Effect.promise(() => page.close())
  )
