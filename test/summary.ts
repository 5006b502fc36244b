/**
 * The last line of `npm test`: the vitest counts (from its JSON report) plus the conformance
 * scenarios (from conformance-results/summary.json, with their checks counted), as one
 * "N passed, M failed, K skipped" line.
 */
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const read = (path: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, path), "utf8"))
const count = (value: unknown): number => (typeof value === "number" ? value : 0)

const vitest = read("test-output/vitest.json")
const conformance = read("conformance-results/summary.json")
const checks = (conformance["checks"] ?? {}) as Record<string, unknown>
const passed = count(vitest["numPassedTests"]) + count(conformance["passed"])
const failed = count(vitest["numFailedTests"]) + count(conformance["failed"])
const skipped = count(vitest["numPendingTests"]) + count(vitest["numTodoTests"])
console.log(
  `vitest: ${count(vitest["numPassedTests"])} passed, ${count(vitest["numFailedTests"])} failed; ` +
    `MCP conformance ${String(conformance["version"])}: ${count(conformance["passed"])} passed, ` +
    `${count(conformance["failed"])} failed (checks: ${count(checks["passed"])} passed, ${count(checks["failed"])} failed, ` +
    `${count(checks["skipped"])} skipped)`
)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
