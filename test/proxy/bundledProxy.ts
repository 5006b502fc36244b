/**
 * For proxy test files: build the shipped CLI bundle (test/cli/bundle.ts) before the file's tests
 * and run the proxy from it, as a host running the installed package does. Kept apart from
 * ./stdioHost.ts, which the benchmarks import outside vitest.
 */
import { beforeAll } from "vitest"
import { bundledCli } from "../cli/bundle.js"
import { useCli } from "./stdioHost.js"

/** Registers the bundle's build (beforeAll) and makes `host` / `rawProxy` start it. */
export const useBundledCli = (): void => {
  const cli = bundledCli()
  beforeAll(() => useCli(cli.path()))
}
