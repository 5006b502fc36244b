/**
 * Opening the user's browser (RFC 8252 §4.1: native apps use an external user agent) with the
 * `open` package and no forced app, so the desktop's default browser, or `$BROWSER` on Linux,
 * is used; and deciding whether there is anything to open a browser with at all.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ChildProcess } from "node:child_process"

/** @internal */
export interface Environment {
  readonly platform: string
  readonly env: Readonly<Record<string, string | undefined>>
}

const nonEmpty = (value: string | undefined): boolean => value !== undefined && value.trim() !== ""

/**
 * Whether a graphical browser can be expected: macOS and Windows always; on Linux and the BSDs
 * when an X11 or Wayland display is set, when `$BROWSER` names one, or under WSL (which opens
 * the Windows browser).
 *
 * @internal
 */
export const hasDisplay = (environment: Environment): boolean => {
  if (environment.platform === "darwin" || environment.platform === "win32") return true
  const env = environment.env
  return nonEmpty(env["DISPLAY"]) || nonEmpty(env["WAYLAND_DISPLAY"]) || nonEmpty(env["BROWSER"]) ||
    nonEmpty(env["WSL_DISTRO_NAME"])
}

/** @internal */
export const currentEnvironment = (): Environment => ({ platform: process.platform, env: process.env })

/** How long to watch the launcher for an early failure (xdg-open exits non-zero within ms). */
const LAUNCH_WATCH_MS = 1500

const watchLauncher = (child: ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    if (child.exitCode !== null) {
      return child.exitCode === 0 ? resolve() : reject(new Error(`the launcher exited with code ${child.exitCode}`))
    }
    const timer = setTimeout(() => {
      cleanup()
      resolve()
    }, LAUNCH_WATCH_MS)
    timer.unref()
    const onExit = (code: number | null) => {
      cleanup()
      if (code === 0 || code === null) resolve()
      else reject(new Error(`the launcher exited with code ${code}`))
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    const cleanup = () => {
      clearTimeout(timer)
      child.off("exit", onExit)
      child.off("error", onError)
    }
    child.once("exit", onExit)
    child.once("error", onError)
  })

/**
 * Opens `url` with the system's default browser (or `browser`, an app name or list of names
 * to try, as the `open` package understands them). Fails with a readable reason when there is
 * no display, the launcher is missing, or it exits with an error shortly after starting.
 *
 * @internal
 */
export const openSystemBrowser = (
  url: string,
  options: { readonly browser?: string | ReadonlyArray<string> | undefined; readonly environment?: Environment } = {}
): Effect.Effect<void, string> =>
  Effect.suspend(() => {
    const environment = options.environment ?? currentEnvironment()
    if (options.browser === undefined && !hasDisplay(environment)) {
      return Effect.fail("no graphical display found (DISPLAY, WAYLAND_DISPLAY and BROWSER are unset)")
    }
    const browser = options.browser
    return Effect.tryPromise({
      try: async () => {
        const { default: open } = await import("open")
        const child = browser === undefined
          ? await open(url, { wait: false })
          : await open(url, { wait: false, app: { name: typeof browser === "string" ? browser : [...browser] } })
        await watchLauncher(child)
      },
      catch: (cause) => cause instanceof Error ? cause.message : String(cause)
    })
  })
