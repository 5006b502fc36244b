/**
 * `npm run demo` as a newcomer runs it: the real program in a child process (tsx), its output
 * and exit status. The browser variant uses a `BROWSER` program that plays the user on the
 * consent page (loads it, clicks Approve, follows the redirect to the loopback callback).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runDemo = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<Run>((resume) => {
    const child = execFile(
      "node_modules/.bin/tsx",
      ["examples/demo.ts", ...args],
      { env: { ...process.env, NO_COLOR: "1", ...env }, timeout: 90_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
    )
  })

const exists = (path: string) =>
  Effect.promise(() => stat(path).then(() => true, () => false))

const storageDir = (stdout: string): string => {
  const match = /token storage\s+(\S+)/.exec(stdout)
  expect(match).not.toBeNull()
  return match![1]!
}

/** The lines of one numbered section of the output. */
const section = (stdout: string, n: number): string => {
  const start = stdout.indexOf(`\n${n}. `)
  const end = stdout.indexOf(`\n${n + 1}. `)
  return stdout.slice(start, end < 0 ? undefined : end)
}

const FAKE_BROWSER = `#!/usr/bin/env node
const url = process.argv[2]
const page = await (await fetch(url)).text()
const id = /name="request_id" value="([^"]+)"/.exec(page)[1]
const action = /form method="post" action="([^"]+)"/.exec(page)[1]
const decided = await fetch(action, {
  method: "POST",
  redirect: "manual",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ request_id: id, decision: "approve" })
})
await fetch(decided.headers.get("location"))
`

describe("npm run demo", () => {
  it.live("signs in headlessly, reuses the stored token, refreshes it, and cleans up", () =>
    Effect.gen(function*() {
      const run = yield* runDemo([])
      expect(run.stderr).not.toMatch(/at .*\.ts:\d+/) // no stack traces
      expect(run.code).toBe(0)
      const out = run.stdout
      // 1. servers
      expect(out).toMatch(/authorization server\s+http:\/\/127\.0\.0\.1:\d+/)
      expect(out).toMatch(/MCP server\s+http:\/\/127\.0\.0\.1:\d+\/mcp/)
      // 2. the cold flow, in order
      const first = section(out, 2)
      const steps = [
        /→ mcp\s+POST \S+\/mcp\s+initialize\s+\(no token\)/,
        /← 401\s+WWW-Authenticate: Bearer .*resource_metadata="\S+\/\.well-known\/oauth-protected-resource\/mcp"/,
        /→ discovery\s+GET \S+\/\.well-known\/oauth-protected-resource\/mcp/,
        /→ discovery\s+GET \S+\/\.well-known\/oauth-authorization-server/,
        /→ registration\s+POST \S+\/register/,
        /→ sign-in\s+GET \S+\/authorize/,
        /→ token\s+POST \S+\/token\s+\(grant_type=authorization_code\)/,
        /→ mcp\s+POST \S+\/mcp\s+initialize\s+\(Bearer token\)/,
        /add\(2, 3\) = 5/,
        /whoami = \{"subject":"demo-user",.*"scopes":\["tools"\]\}/
      ]
      let at = 0
      for (const step of steps) {
        const found = first.slice(at).search(step)
        expect(found, `missing, or out of order: ${step}`).toBeGreaterThanOrEqual(0)
        at += found
      }
      // 3. reuse: no OAuth traffic at all
      const second = section(out, 3)
      expect(second).toMatch(/whoami = \{"subject":"demo-user"/)
      expect(second).not.toMatch(/→ (discovery|registration|sign-in|token)/)
      expect(second).not.toMatch(/no token\)/)
      // 4. refresh, no sign-in
      const third = section(out, 4)
      expect(third).toMatch(/→ token\s+POST \S+\/token\s+\(grant_type=refresh_token\)/)
      expect(third).not.toMatch(/→ (registration|sign-in)/)
      expect(third).toMatch(/add\(2, 3\) = 5/)
      expect(out).toContain("1 registration, 1 sign-in, 1 refresh, 3 connections.")
      // no secrets: no token-looking values in the output
      expect(out).not.toMatch(/(access_token|refresh_token|code)=[A-Za-z0-9_-]{8,}/)
      // the temporary token directory is gone
      expect(yield* exists(storageDir(out))).toBe(false)
    }), 120_000)

  it.live("with --browser, signs in on the consent page through the browser and the loopback callback", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "demo-browser-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const browser = join(dir, "browser.mjs")
      yield* Effect.promise(() => writeFile(browser, FAKE_BROWSER).then(() => chmod(browser, 0o755)))
      const run = yield* runDemo(["--browser"], { BROWSER: browser })
      expect(run.code).toBe(0)
      expect(run.stdout).toContain("Your browser will open at the consent page: click Approve.")
      expect(run.stderr).toContain("Opened your browser to sign in")
      expect(section(run.stdout, 2)).toMatch(/→ token\s+POST \S+\/token\s+\(grant_type=authorization_code\)/)
      expect(run.stdout).toContain("1 registration, 1 sign-in, 1 refresh, 3 connections.")
    }).pipe(Effect.scoped), 120_000)
})
