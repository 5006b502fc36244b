/**
 * The host side of the proxy tests and benchmarks: the official SDK's `Client` +
 * `StdioClientTransport` spawning `effect-mcp-oauth proxy` — the shipped bundle once a test file
 * calls `useBundledCli` (./bundledProxy.ts; every proxy test does), else the sources through tsx — answering
 * elicitations.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import type { CreateMessageResult, Root } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as readline from "node:readline"

export const ROOT = NodePath.resolve(import.meta.dirname, "../..")
export const MAIN = NodePath.join(ROOT, "src", "cli", "main.ts")

let entry: ReadonlyArray<string> = ["--import", "tsx", MAIN]

/** node's arguments that start the CLI: the bundle chosen by {@link useCli}, else the sources. */
export const cliEntry = (): ReadonlyArray<string> => entry

/** Runs the CLI from the file at `path` (the built bundle) from now on. */
export const useCli = (path: string): void => {
  entry = [path]
}

export const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "emo-proxy-"))),
  (d) => Effect.sync(() => NodeFs.rmSync(d, { recursive: true, force: true }))
)

/** node's arguments to run the proxy for `url` with the credentials in `dir` (headless sign-in). */
export const proxyArgs = (
  url: string,
  dir: string,
  extra: ReadonlyArray<string> = [],
  signIn: "--headless" | "--manual" = "--headless"
) => [
  ...entry,
  "proxy",
  signIn,
  "--allow-http",
  "--dir",
  dir,
  ...extra,
  url
]

export const env = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v
  return { ...out, NO_COLOR: "1", NODE_NO_WARNINGS: "1" }
}

export const textOf = (result: unknown): string => {
  const content = (result as { content: Array<{ type: string; text?: string }> }).content
  return content.map((c) => c.text ?? "").join("")
}

/** The host: the official SDK client spawning the proxy over stdio, answering elicitations. */
export const host = (
  url: string,
  dir: string,
  options: {
    readonly args?: ReadonlyArray<string>
    readonly env?: Readonly<Record<string, string>>
    /** Answers elicitations (default: accept with a name naming the question). */
    readonly elicit?: (message: string) => Promise<{ action: "accept"; content: { name: string } }>
    /**
     * Sign in with `--manual` instead of `--headless`: each sign-in address the proxy prints on
     * stderr is handed to this user (a scripted user agent standing in for the browser).
     */
    readonly user?: (url: string) => Promise<void>
    /** Declares sampling and answers `sampling/createMessage` with this (given the first text). */
    readonly sample?: (text: string) => CreateMessageResult
    /** Declares roots (with `listChanged`) and answers `roots/list` with what this returns now. */
    readonly roots?: () => ReadonlyArray<Root>
  } = {}
) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const stderr: Array<string> = []
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: proxyArgs(url, dir, options.args, options.user === undefined ? "--headless" : "--manual"),
        env: { ...env(), ...options.env },
        cwd: ROOT,
        stderr: "pipe"
      })
      const user = options.user
      let seen = 0
      transport.stderr?.on("data", (d) => {
        stderr.push(String(d))
        if (user === undefined) return
        const addresses = [...stderr.join("").matchAll(/open this address[^\n]*:\n\n {2}(\S+)/g)]
        for (const address of addresses.slice(seen)) void user(address[1]!).catch(() => {})
        seen = addresses.length
      })
      const client = new Client({ name: "stdio-host", version: "1.0.0" }, {
        capabilities: {
          elicitation: {},
          ...(options.sample === undefined ? {} : { sampling: {} }),
          ...(options.roots === undefined ? {} : { roots: { listChanged: true } })
        }
      })
      const { sample, roots } = options
      if (sample !== undefined) {
        client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
          const first = request.params.messages[0]?.content
          return sample(first !== undefined && !Array.isArray(first) && first.type === "text" ? first.text : "")
        })
      }
      if (roots !== undefined) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [...roots()] }))
      client.setRequestHandler(ElicitRequestSchema, async (request) =>
        options.elicit !== undefined ? options.elicit(request.params.message) : {
          action: "accept",
          content: { name: `Ada (asked: ${request.params.message})` }
        })
      await client.connect(transport, { timeout: 60_000 })
      return { client, stderr }
    }),
    ({ client }) => Effect.promise(() => client.close())
  )

/** A raw stdio peer of the proxy: write lines, read parsed messages, see the exit code. */
export const rawProxy = (url: string, dir: string, args: ReadonlyArray<string> = proxyArgs(url, dir)) =>
  Effect.sync(() => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: env(), stdio: ["pipe", "pipe", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const messages: Array<Record<string, unknown>> = []
    const waiters: Array<() => void> = []
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      messages.push(JSON.parse(line))
      for (const w of waiters.splice(0)) w()
    })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    const next = async (): Promise<Record<string, unknown>> => {
      while (messages.length === 0) await new Promise<void>((resolve) => waiters.push(resolve))
      return messages.shift()!
    }
    return {
      child,
      send: (message: unknown) => child.stdin.write(typeof message === "string" ? `${message}\n` : `${JSON.stringify(message)}\n`),
      next,
      exited,
      stderr: () => stderr
    }
  })


/** A host's `initialize` request (id 1), as a raw line for `rawProxy`. */
export const initializeRequest = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } }
}

/** The sign-in addresses a proxy printed on stderr so far (`--manual`). */
export const addressesIn = (stderr: string): Array<string> =>
  [...stderr.matchAll(/open this address[^\n]*:\n\n {2}(\S+)/g)].map((m) => m[1]!)

/** Waits until `check` holds (polling), or fails after `millis`. */
export const until = (what: string, check: () => boolean | Promise<boolean>, millis = 30_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + millis
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
