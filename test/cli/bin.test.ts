/**
 * The built executable (bin/bitfiber.js loading dist/bitfiber.cjs, as `pnpm install` builds it):
 * its V8 code cache is written when missing or unusable, used when valid, and never in the way.
 * Runs a copy of the package's bin, bundle and package.json in a temp dir, so the cache files
 * written here are the test's own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const cliPackage = path.resolve(import.meta.dirname, "../../packages/cli")
const builtBundle = path.join(cliPackage, "dist/bitfiber.cjs")
const version: string = JSON.parse(fs.readFileSync(path.join(cliPackage, "package.json"), "utf8")).version

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `<root>/bin/bitfiber.js ...args` through its shebang, as a user's shell would. */
const run = (root: string, ...args: ReadonlyArray<string>) =>
  Effect.async<Run>((resume) => {
    const child = execFile(path.join(root, "bin/bitfiber.js"), args, { timeout: 60_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr })))
  })

/** A copy of the built package's bin, bundle and package.json, removed with the scope. */
const packageCopy = Effect.acquireRelease(
  Effect.sync(() => {
    if (!fs.existsSync(builtBundle)) throw new Error(`${builtBundle} is missing: run \`pnpm build\` first`)
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bin-"))
    fs.mkdirSync(path.join(root, "bin"))
    fs.mkdirSync(path.join(root, "dist"))
    fs.copyFileSync(path.join(cliPackage, "bin/bitfiber.js"), path.join(root, "bin/bitfiber.js"))
    fs.chmodSync(path.join(root, "bin/bitfiber.js"), 0o755)
    fs.copyFileSync(builtBundle, path.join(root, "dist/bitfiber.cjs"))
    fs.copyFileSync(path.join(cliPackage, "package.json"), path.join(root, "package.json"))
    return root
  }),
  (root) => Effect.sync(() => fs.rmSync(root, { recursive: true, force: true }))
)

describe("built bitfiber executable", () => {
  it.scoped("writes its code cache when missing or rejected, and keeps a valid one", () =>
    Effect.gen(function*() {
      const root = yield* packageCopy
      const cache = path.join(root, "dist/bitfiber.cjs.cache")

      const first = yield* run(root, "--version")
      expect(first).toMatchObject({ code: 0, stderr: "" })
      expect(first.stdout).toContain(version)
      const written = fs.statSync(cache)
      expect(written.size).toBeGreaterThan(100_000)

      // A valid cache is used, not rewritten (a rewrite replaces the file: a new inode).
      const second = yield* run(root, "--version")
      expect(second).toMatchObject({ code: 0, stderr: "", stdout: first.stdout })
      expect(fs.statSync(cache)).toMatchObject({ ino: written.ino, mtimeMs: written.mtimeMs })

      // A cache V8 rejects (here: garbage) costs a compile from source and is replaced.
      fs.writeFileSync(cache, Buffer.alloc(4096, 7))
      const third = yield* run(root, "--version")
      expect(third).toMatchObject({ code: 0, stderr: "", stdout: first.stdout })
      expect(fs.statSync(cache).size).toBeGreaterThan(100_000)
      expect(fs.readdirSync(path.join(root, "dist")).sort()).toEqual(["bitfiber.cjs", "bitfiber.cjs.cache"])
    }))

  it.scoped("runs when its cache cannot be written, and says how to build a missing bundle", () =>
    Effect.gen(function*() {
      const root = yield* packageCopy
      const dist = path.join(root, "dist")
      // The cache's path taken by a directory: unreadable and unwritable even for root (a
      // read-only install behaves the same way).
      fs.mkdirSync(path.join(dist, "bitfiber.cjs.cache"))
      const unwritable = yield* run(root, "--version")
      expect(unwritable).toMatchObject({ code: 0, stderr: "" })
      expect(unwritable.stdout).toContain(version)
      expect(fs.readdirSync(dist).sort()).toEqual(["bitfiber.cjs", "bitfiber.cjs.cache"])
      expect(fs.statSync(path.join(dist, "bitfiber.cjs.cache")).isDirectory()).toBe(true)

      fs.rmSync(path.join(dist, "bitfiber.cjs"))
      const missing = yield* run(root, "--version")
      expect(missing.code).toBe(1)
      expect(missing.stdout).toBe("")
      expect(missing.stderr).toMatch(/^bitfiber: cannot read .*dist\/bitfiber\.cjs \(ENOENT\): build it with `pnpm build`\n$/)
    }))
})
