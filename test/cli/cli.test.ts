/**
 * The real `bitfiber` executable, run from source as a child process: the exit codes, and that
 * a failure prints one line and nothing else. Kept to a few runs: each one pays Node's start.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { infoHash, scratch } from "./fixtures.js"

const main = path.resolve(import.meta.dirname, "../../packages/cli/src/main.ts")
// By absolute URL: the runs' working directory is a temp dir, where "tsx" would not resolve.
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const bitfiber = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<Run>((resume) => {
    const child = execFile(
      process.execPath,
      ["--conditions=@bitfiber/source", "--import", tsx, main, ...args],
      { cwd, timeout: 170_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
    )
  })

/** A failing run printed exactly one line, in the documented form, with no stack or log dump. */
const expectOneLine = (run: Run, pattern: RegExp) => {
  expect(run.stdout).toBe("")
  expect(run.stderr).toMatch(/^bitfiber: [^\n]+ — [^\n]+\n$/)
  expect(run.stderr).toMatch(pattern)
  expect(run.stderr).not.toMatch(/ERROR|\bat .+:\d+/)
}

describe("bitfiber executable", () => {
  it.scoped("exits 0 with clean JSON, 3 on a corrupt torrent, 4 on a missing file, 2 on a bad flag", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(Effect.sync(scratch), (dir) =>
        Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const [ok, corrupt, missing, badFlag] = yield* Effect.all(
        [
          bitfiber(["info", "--json", "album.torrent"], dir),
          bitfiber(["info", "page.torrent"], dir),
          bitfiber(["info", "missing.torrent"], dir),
          bitfiber(["create", "payload", "--piece-length", "lots"], dir)
        ],
        { concurrency: "unbounded" }
      )
      expect(ok).toMatchObject({ code: 0, stderr: "" })
      expect(JSON.parse(ok!.stdout)).toMatchObject({ infoHash, name: "album" })

      expect(corrupt!.code).toBe(3)
      expectOneLine(corrupt!, /^bitfiber: not a torrent file: page\.torrent: .*byte 0 — .*magnet link\n$/)

      expect(missing!.code).toBe(4)
      expectOneLine(missing!, /no such file or directory: missing\.torrent — check the path/)

      expect(badFlag!.code).toBe(2)
      expectOneLine(badFlag!, /"lots" is not a size .* — run 'bitfiber --help'/)
    }), { timeout: 180_000 })
})
