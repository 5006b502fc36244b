import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as McpClient from "../../src/mcp/McpClient.js"

const fixture = fileURLToPath(new URL("./fixtures/stdio-server.ts", import.meta.url))
const root = path.resolve(fileURLToPath(new URL("../..", import.meta.url)))

const tsx = pathToFileURL(path.join(root, "node_modules/tsx/dist/loader.mjs")).href

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const textOf = (result: { readonly content: ReadonlyArray<{ readonly type: string }> }): string => {
  const first = result.content[0]
  return first !== undefined && "text" in first && typeof first.text === "string" ? first.text : ""
}

describe("stdio transport against the official SDK server", () => {
  it.live("infers node + tsx for a .ts path, initializes, lists and calls tools", () =>
    Effect.gen(function*() {
      const client = yield* McpClient.connect(fixture, { closeGracePeriod: "5 seconds" })
      expect(client.serverInfo.name).toBe("fixture-server")
      expect(client.protocolVersion).toBe("2025-11-25")
      const tools = yield* client.listTools()
      expect(tools.map((t) => t.name)).toContain("whoami")
      const sum = yield* client.callTool("add", { a: 20, b: 22 })
      expect(textOf(sum)).toBe("42")
      const prompt = yield* client.getPrompt("review", { code: "y" })
      expect(prompt.messages).toHaveLength(1)
    }).pipe(Effect.scoped, Effect.provide([NodeContext.layer, NodeHttpClient.layerUndici])))

  it.live("passes explicit env and cwd, not the parent's secrets, and forwards stderr", () =>
    Effect.gen(function*() {
      process.env["SECRET_FROM_PARENT"] = "do-not-leak"
      const cwd = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "mcp-stdio-")))
      const lines: Array<string> = []
      const scope = yield* Scope.make()
      const client = yield* McpClient.connect({
        command: process.execPath,
        // the fixture runs in a directory without node_modules: tsx is found through the absolute path
        args: ["--import", tsx, fixture],
        env: { FIXTURE_VALUE: "from-test" },
        cwd,
        stderr: (line) => Effect.sync(() => lines.push(line))
      }).pipe(Scope.extend(scope))
      const who = JSON.parse(textOf(yield* client.callTool("whoami"))) as Record<string, unknown>
      expect(who["cwd"]).toBe(cwd)
      expect(who["fixture"]).toBe("from-test")
      expect(who["secret"]).toBeNull()
      expect(lines).toContain("stdio fixture ready")
      yield* Scope.close(scope, Exit.void)
      expect(isAlive(Number(who["pid"]))).toBe(false)
      fs.rmSync(cwd, { recursive: true })
      delete process.env["SECRET_FROM_PARENT"]
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("kills a server that ignores the end of stdin after the grace period", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const scope = yield* Scope.make()
      const client = yield* McpClient.connect({
        command: process.execPath,
        args: ["--import", "tsx", fixture],
        env: { IGNORE_STDIN_END: "1" },
        cwd: root,
        closeGracePeriod: "300 millis",
        stderr: (line) => Effect.sync(() => lines.push(line))
      }).pipe(Scope.extend(scope))
      const who = JSON.parse(textOf(yield* client.callTool("whoami"))) as Record<string, unknown>
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      expect(isAlive(Number(who["pid"]))).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("a server that dies fails the pending request with a typed Closed error, at once", () =>
    Effect.gen(function*() {
      const client = yield* McpClient.connect({ command: process.execPath, args: ["--import", "tsx", fixture], cwd: root })
      const started = Date.now()
      const error = yield* Effect.flip(client.callTool("crash"))
      expect(error._tag).toBe("McpTransportError")
      expect(error._tag === "McpTransportError" && error.reason).toBe("Closed")
      expect(Date.now() - started).toBeLessThan(10_000)
      const again = yield* Effect.flip(client.ping())
      expect(again._tag === "McpTransportError" && again.reason).toBe("Closed")
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("a command that cannot be spawned is a typed Spawn error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(McpClient.connect({ command: "/nonexistent/mcp-server-binary" }))
      expect(error._tag === "McpTransportError" && error.reason).toBe("Spawn")
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
