/** Which real BitTorrent programs are installed, and suites that skip (or fail) without them. */
import { spawnSync } from "node:child_process"
import { accessSync, constants } from "node:fs"
import { delimiter, join } from "node:path"
import { describe, it } from "vitest"

/** A program an interop suite needs; "libtorrent" is the python3-libtorrent binding. */
export type Tool = "opentracker" | "mktorrent" | "aria2c" | "transmission-cli" | "libtorrent"

/** The Debian package that provides each tool. */
export const aptPackage: Readonly<Record<Tool, string>> = {
  opentracker: "opentracker",
  mktorrent: "mktorrent",
  aria2c: "aria2",
  "transmission-cli": "transmission-cli",
  libtorrent: "python3-libtorrent"
}

/** The python that has Debian's libtorrent bindings (a pyenv python earlier on PATH does not). */
export const python = process.env["BITFIBER_PYTHON"] ?? "/usr/bin/python3"

const onPath = (program: string) =>
  (process.env["PATH"] ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK)
      return true
    } catch {
      return false
    }
  })

const cache = new Map<Tool, boolean>()

/** Whether `tool` can be run here (checked once per test worker). */
export const isInstalled = (tool: Tool): boolean => {
  let installed = cache.get(tool)
  if (installed === undefined) {
    installed = tool === "libtorrent"
      ? spawnSync(python, ["-c", "import libtorrent"], { stdio: "ignore", timeout: 10_000 }).status === 0
      : onPath(tool)
    cache.set(tool, installed)
  }
  return installed
}

/** The tools of `tools` that are not installed. */
export const missingTools = (tools: ReadonlyArray<Tool>): ReadonlyArray<Tool> => tools.filter((tool) => !isInstalled(tool))

/** True when env BITFIBER_INTEROP=required: a missing tool fails the suite instead of skipping it (CI). */
export const interopRequired = (): boolean => process.env["BITFIBER_INTEROP"] === "required"

const installHint = (tools: ReadonlyArray<Tool>) =>
  `${tools.join(", ")} not installed — apt-get install -y ${[...new Set(tools.map((tool) => aptPackage[tool]))].join(" ")}`

/**
 * `describe` for a suite that drives real programs: with all `tools` installed it is a plain
 * describe; otherwise it is skipped with a title saying what to install, or, when
 * BITFIBER_INTEROP=required, it fails.
 */
export const describeInterop = (name: string, tools: ReadonlyArray<Tool>, body: () => void): void => {
  const missing = missingTools(tools)
  if (missing.length === 0) describe(name, body)
  else if (interopRequired()) {
    describe(name, () => {
      it(`needs ${installHint(missing)}`, () => {
        throw new Error(`BITFIBER_INTEROP=required but ${installHint(missing)}`)
      })
    })
  } else describe.skip(`${name} (skipped: ${installHint(missing)})`, body)
}
