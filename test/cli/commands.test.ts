/**
 * The commands run in-process through the real command tree (Cli.run), with stdout captured:
 * what `info` and `create` print, and the one-line report and exit code of their failures.
 */
import { InfoHash, Metainfo } from "@bitfiber/core"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Console, Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cli from "../../packages/cli/src/Cli.js"
import * as ErrorMessage from "../../packages/cli/src/ErrorMessage.js"
import * as ExitCode from "../../packages/cli/src/ExitCode.js"
import { infoHash, magnet, scratch } from "./fixtures.js"
import { liveServices, loopbackSession, tempDir, writeContent } from "../engine/fixtures.js"
import { TestTorrent } from "@bitfiber/core/testing"

let dir = ""
beforeAll(() => {
  dir = scratch()
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Runs `bitfiber ...args`: what it printed on stdout, and main.ts's report of how it ended. */
const bitfiber = (...args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const exit = yield* Console.consoleWith((console) =>
      Cli.run(["node", "bitfiber", ...args]).pipe(
        Effect.withConsole({ ...console, log: (...items) => Effect.sync(() => void stdout.push(items.join(" "))) }),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
    )
    return { stdout: stdout.join("\n"), ...ErrorMessage.fromExit(exit) }
  })

const file = (name: string) => path.join(dir, name)

describe("bitfiber info", () => {
  it.effect("prints a torrent's name, info-hash, size, pieces, trackers by tier and files", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber("info", file("album.torrent"))
      expect(run.exitCode).toBe(ExitCode.Ok)
      const lines = run.stdout.split("\n")
      expect(lines.slice(0, 5)).toEqual([
        "name:        album",
        `info-hash:   ${infoHash}`,
        "size:        19.5 KiB (20005 bytes)",
        "pieces:      2 x 16.0 KiB",
        "private:     no"
      ])
      expect(lines).toContain("comment:     test torrent")
      expect(lines).toContain("created on:  2023-11-14T22:13:20.000Z")
      expect(run.stdout).toContain(
        "trackers:\n  tier 1: http://127.0.0.1:6969/announce\n          udp://127.0.0.1:6969\n  tier 2: http://127.0.0.1:7070/announce\n"
      )
      expect(run.stdout).toContain("web seeds:\n  http://127.0.0.1:8080/\n")
      expect(run.stdout.endsWith("files (2):\n    19.5 KiB  album/cd1/01 intro.flac\n         5 B  album/notes.txt")).toBe(true)
    }))

  it.effect("--json prints the torrent as one JSON object with every field", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber("info", "--json", file("album.torrent"))
      expect(run.exitCode).toBe(ExitCode.Ok)
      expect(JSON.parse(run.stdout)).toEqual({
        type: "torrent",
        infoHash,
        name: "album",
        totalLength: 20005,
        pieceLength: 16384,
        pieceCount: 2,
        private: false,
        files: [
          { path: "album/cd1/01 intro.flac", length: 20000, padding: false },
          { path: "album/notes.txt", length: 5, padding: false }
        ],
        trackers: [["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"], ["http://127.0.0.1:7070/announce"]],
        urlList: ["http://127.0.0.1:8080/"],
        comment: "test torrent",
        createdBy: "hand",
        creationDate: "2023-11-14T22:13:20.000Z"
      })
    }))

  it.effect("shows what a magnet link says: info-hash, name, trackers and peers", () =>
    Effect.gen(function*() {
      const json = yield* bitfiber("info", "--json", magnet)
      expect(JSON.parse(json.stdout)).toEqual({
        type: "magnet",
        infoHash,
        name: "album",
        trackers: [["udp://127.0.0.1:6969"]],
        peers: ["127.0.0.1:6881", "[::1]:6882"],
        webSeeds: []
      })
      const human = yield* bitfiber("info", magnet)
      expect(human.exitCode).toBe(ExitCode.Ok)
      expect(human.stdout).toContain(
        `name:        album\ninfo-hash:   ${infoHash}\ntrackers:\n  tier 1: udp://127.0.0.1:6969\npeers:\n  127.0.0.1:6881\n  [::1]:6882\n`
      )
    }))

  // A seeder that speaks only RC4 streams (MSE): the metadata comes only under --encryption require.
  it.scopedLive("--resolve fetches a magnet's metadata from its peer, under --encryption", () =>
    Effect.gen(function*() {
      const test = TestTorrent.make({ files: [{ path: "a.bin", length: 70_000 }, { path: "b.bin", length: 5_000 }], pieceLength: 16 * 1024, name: "r" })
      const seedDir = yield* tempDir
      yield* writeContent(test.metainfo, test.content, seedDir)
      const seeder = yield* loopbackSession({ encryption: "require" })
      yield* (yield* seeder.add({ torrent: test.torrent, directory: seedDir })).completed
      const link = `magnet:?xt=urn:btih:${InfoHash.toHex(test.metainfo.infoHash)}&x.pe=127.0.0.1:${seeder.port}`
      const plain = yield* bitfiber("info", "--json", "--resolve", "--timeout", "2", link)
      expect(plain.exitCode).not.toBe(ExitCode.Ok)
      const resolved = yield* bitfiber("info", "--json", "--resolve", "--timeout", "20", "--encryption", "require", link)
      expect(resolved.exitCode).toBe(ExitCode.Ok)
      const json = JSON.parse(resolved.stdout)
      expect(json.type).toBe("torrent")
      expect(json.infoHash).toBe(InfoHash.toHex(test.metainfo.infoHash))
      expect(json.files).toEqual([
        { path: "r/a.bin", length: 70_000, padding: false },
        { path: "r/b.bin", length: 5_000, padding: false }
      ])
    }).pipe(Effect.provide(liveServices)), 30_000)

  it.effect("lists 50 files and says how many more, unless --all", () =>
    Effect.gen(function*() {
      const many = path.join(dir, "many")
      fs.mkdirSync(many)
      for (let i = 0; i < 60; i++) fs.writeFileSync(path.join(many, `f${String(i).padStart(2, "0")}`), "x")
      expect((yield* bitfiber("create", many, "-o", file("many.torrent"))).exitCode).toBe(ExitCode.Ok)
      const capped = yield* bitfiber("info", file("many.torrent"))
      expect(capped.stdout).toContain("many/f49\n  ... and 10 more (--all lists them)")
      expect(capped.stdout).not.toContain("many/f50")
      const all = yield* bitfiber("info", "--all", file("many.torrent"))
      expect(all.stdout).toContain("many/f59")
      expect(all.stdout).not.toContain("more (--all")
    }))

  it.effect("rejects a magnet link without an info-hash with exit code 3", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber("info", "magnet:?dn=album&tr=udp://127.0.0.1:6969")
      expect(run.exitCode).toBe(ExitCode.InvalidInput)
      expect(run.line).toMatch(/^bitfiber: invalid magnet link: no xt .* — /)
    }))

  it.effect("rejects a torrent with a bad piece count with exit code 3, naming the file", () =>
    Effect.gen(function*() {
      const broken = Buffer.from(fs.readFileSync(file("album.torrent"))).toString("latin1").replace("6:pieces40:", "6:pieces20:")
        .replace("\x07".repeat(40), "\x07".repeat(20))
      fs.writeFileSync(file("broken.torrent"), Buffer.from(broken, "latin1"))
      const run = yield* bitfiber("info", file("broken.torrent"))
      expect(run.exitCode).toBe(ExitCode.InvalidInput)
      expect(run.line).toContain(`bitfiber: invalid torrent file: ${file("broken.torrent")}: `)
    }))
})

describe("bitfiber create", () => {
  it.effect("writes a torrent that Metainfo.parse reads back with the files, tiers and options given", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber(
        "create",
        file("payload"),
        "-o",
        file("made.torrent"),
        "-t",
        "http://127.0.0.1:6969/announce,udp://127.0.0.1:6969",
        "-t",
        "http://127.0.0.1:7070/announce",
        "--piece-length",
        "16K",
        "--private",
        "--comment",
        "made by a test",
        "--web-seed",
        "http://127.0.0.1:8080/",
        "--no-date",
        "--json"
      )
      expect(run.exitCode).toBe(ExitCode.Ok)
      const metainfo = Either.getOrThrow(Metainfo.parse(fs.readFileSync(file("made.torrent"))))
      expect(metainfo.info.files.map((entry) => [entry.rawPath.join("/"), entry.length])).toEqual([
        ["payload/a.bin", 50_000],
        ["payload/sub/b.txt", 5]
      ])
      expect(metainfo.info.pieceLength).toBe(16384)
      expect(metainfo.info.private).toBe(true)
      expect(metainfo.trackers).toEqual([
        ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"],
        ["http://127.0.0.1:7070/announce"]
      ])
      expect(metainfo.urlList).toEqual(["http://127.0.0.1:8080/"])
      expect(metainfo.comment).toBe("made by a test")
      expect(metainfo.creationDate).toBeUndefined()
      const hex = InfoHash.toHex(metainfo.infoHash)
      expect(JSON.parse(run.stdout)).toEqual({
        infoHash: hex,
        output: file("made.torrent"),
        magnet: `magnet:?xt=urn:btih:${hex}&dn=payload&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce` +
          `&tr=udp%3A%2F%2F127.0.0.1%3A6969&tr=http%3A%2F%2F127.0.0.1%3A7070%2Fannounce&ws=http%3A%2F%2F127.0.0.1%3A8080%2F`,
        pieceLength: 16384,
        pieceCount: 4,
        totalLength: 50_005
      })
    }))

  it.effect("prints the info-hash, the output path and a magnet link", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber("create", file("payload/a.bin"), "-o", file("a.torrent"))
      expect(run.exitCode).toBe(ExitCode.Ok)
      const metainfo = Either.getOrThrow(Metainfo.parse(fs.readFileSync(file("a.torrent"))))
      const hex = InfoHash.toHex(metainfo.infoHash)
      expect(run.stdout.split("\n")).toEqual([
        `info-hash:  ${hex}`,
        `torrent:    ${file("a.torrent")}`,
        "content:    1 file, 48.8 KiB in 4 pieces of 16.0 KiB",
        `magnet:     magnet:?xt=urn:btih:${hex}&dn=a.bin`
      ])
    }))

  it.effect("refuses to overwrite an existing file unless --force", () =>
    Effect.gen(function*() {
      const refused = yield* bitfiber("create", file("payload"), "-o", file("taken.torrent"))
      expect(refused.exitCode).toBe(ExitCode.FileSystem)
      expect(refused.line).toBe(
        `bitfiber: ${file("taken.torrent")} already exists — pass --force to overwrite it, or choose another file with -o`
      )
      expect(fs.readFileSync(file("taken.torrent"), "utf8")).toBe("keep me")
      const forced = yield* bitfiber("create", file("payload"), "-o", file("taken.torrent"), "--force")
      expect(forced.exitCode).toBe(ExitCode.Ok)
      expect(Either.isRight(Metainfo.parse(fs.readFileSync(file("taken.torrent"))))).toBe(true)
    }))

  it.effect("rejects a piece length that is not a power of two with exit code 2", () =>
    Effect.gen(function*() {
      const run = yield* bitfiber("create", file("payload"), "-o", file("odd.torrent"), "--piece-length", "24K")
      expect(run.exitCode).toBe(ExitCode.Usage)
      expect(run.line).toMatch(/^bitfiber: piece length 24576 is not a power of two .* — run 'bitfiber create --help'/)
      expect(fs.existsSync(file("odd.torrent"))).toBe(false)
    }))

  it.effect("reports an empty directory as invalid input (exit code 3)", () =>
    Effect.gen(function*() {
      fs.mkdirSync(file("empty"))
      const run = yield* bitfiber("create", file("empty"), "-o", file("empty.torrent"))
      expect(run.exitCode).toBe(ExitCode.InvalidInput)
      expect(run.line).toMatch(/^bitfiber: nothing to share: .*empty contains no files — /)
    }))
})
