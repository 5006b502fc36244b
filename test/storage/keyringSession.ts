/**
 * A real Secret Service for the keychain tests: a private D-Bus session (`dbus-run-session`)
 * running `gnome-keyring-daemon --unlock --components=secrets` with a throw-away HOME, so the
 * tests never touch the user's own keyring. `useKeyringSession()` starts it before the file's
 * tests and points this process at it through `DBUS_SESSION_BUS_ADDRESS` (the binding reads it
 * when it first connects, and keeps what it found then: so the session must be up before the
 * first keychain call of the process — one session per test file, which vitest runs in a
 * process of its own).
 *
 * Missing packages (gnome-keyring, dbus-daemon): the keychain tests fail under CI=true (CI must
 * have them: .ci/ensure-test-deps.sh installs them) and are skipped with a message elsewhere.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"

const find = (name: string): string | undefined =>
  ["/usr/bin", "/usr/local/bin", "/bin"].map((d) => NodePath.join(d, name)).find((p) => NodeFs.existsSync(p))

const dbusRunSession = find("dbus-run-session")
const dbusSend = find("dbus-send")
const gnomeKeyringDaemon = find("gnome-keyring-daemon")

export const isCI = process.env["CI"] === "true"

/** Whether to run the keychain suites; prints why not when they are skipped. */
export const keyringTestsEnabled: boolean = (() => {
  if (process.platform !== "linux") {
    if (!isCI) console.warn("[keychain tests] SKIPPED: the real-keychain tests run on Linux (Secret Service)")
    return false
  }
  if (dbusRunSession !== undefined && dbusSend !== undefined && gnomeKeyringDaemon !== undefined) return true
  if (isCI) return true // run, and fail loudly in useKeyringSession
  console.warn(
    "[keychain tests] SKIPPED: gnome-keyring, dbus-daemon and dbus-bin are not installed (run .ci/ensure-test-deps.sh)"
  )
  return false
})()

export interface KeyringSession {
  readonly address: string
  /** Ends the session: the bus and the keyring daemon go away. */
  readonly stop: () => Promise<void>
}

/** Starts a D-Bus session with an unlocked, empty keyring; resolves once it answers. */
export const startKeyringSession = (): Promise<KeyringSession> => {
  if (dbusRunSession === undefined || dbusSend === undefined || gnomeKeyringDaemon === undefined) {
    return Promise.reject(
      new Error(
        "gnome-keyring / dbus-daemon / dbus-bin are not installed but CI=true: the keychain tests must run " +
          "(install them with .ci/ensure-test-deps.sh)"
      )
    )
  }
  const home = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-keyring-"))
  // The daemon runs in the foreground (its messages reach our stderr) and unlocks — creating it
  // first — the login keyring with the password on its stdin (an empty one creates nothing).
  // READY once it owns its bus name: a call before that would start a second, locked daemon
  // through D-Bus activation.
  const script = [
    `printf '%s\\n' "$DBUS_SESSION_BUS_ADDRESS"`,
    `printf 'test' | ${gnomeKeyringDaemon} --foreground --unlock --components=secrets &`,
    "i=0",
    "until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus " +
    "org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do",
    "  i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05",
    "done",
    "echo READY",
    "wait"
  ].join("\n")
  const child: ChildProcess = spawn(dbusRunSession, ["--", "sh", "-c", script], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: home,
      XDG_DATA_HOME: NodePath.join(home, "data"),
      XDG_CACHE_HOME: NodePath.join(home, "cache"),
      XDG_CONFIG_HOME: NodePath.join(home, "config")
    }
  })
  let stopping = false
  const stop = () =>
    new Promise<void>((resolve) => {
      stopping = true
      const done = () => {
        NodeFs.rmSync(home, { recursive: true, force: true })
        resolve()
      }
      if (child.exitCode !== null || child.signalCode !== null) return done()
      child.once("exit", done)
      try {
        process.kill(-(child.pid ?? 0), "SIGTERM")
      } catch {
        done()
      }
    })
  return new Promise<KeyringSession>((resolve, reject) => {
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`the keyring session did not start within 20 s: ${err}`))
    }, 20_000)
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString()
      // after start-up, the daemon's complaints are worth seeing in the test output
      if (out.includes("READY") && !/fd limit/.test(d.toString())) process.stderr.write(`[keyring] ${d.toString()}`)
    })
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString()
      const lines = out.split("\n")
      if (lines.includes("READY")) {
        clearTimeout(timer)
        resolve({ address: lines[0] ?? "", stop })
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (out.split("\n").includes("READY")) {
        if (!stopping) {
          console.warn(`[keychain tests] the keyring session ended (${code}): gnome-keyring-daemon exited; see [keyring] above`)
        }
        return
      }
      reject(new Error(`the keyring session exited (${code}) before it was ready: ${err}`))
    })
  })
}

/**
 * Starts a keyring session before this file's tests, points the process at it, and stops it
 * afterwards. Returns a getter for the running session.
 */
export const useKeyringSession = (): (() => KeyringSession) => {
  let session: KeyringSession | undefined
  beforeAll(async () => {
    session = await startKeyringSession()
    process.env["DBUS_SESSION_BUS_ADDRESS"] = session.address
  }, 30_000)
  afterAll(async () => {
    await session?.stop()
  })
  return () => {
    if (session === undefined) throw new Error("the keyring session is not running")
    return session
  }
}
