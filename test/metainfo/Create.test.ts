import { Create, Metainfo } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

/** A scratch directory holding `files` (path -> content), removed when the test's scope closes. */
const scratch = (files: Readonly<Record<string, Uint8Array>>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const root = await mkdtemp(join(tmpdir(), "bitfiber-create-"))
      for (const [path, content] of Object.entries(files)) {
        await mkdir(dirname(join(root, path)), { recursive: true })
        await writeFile(join(root, path), content)
      }
      return root
    }),
    (root) => Effect.promise(() => rm(root, { recursive: true, force: true }))
  )

/** Random bytes, so a misplaced block changes a piece hash. */
const data = (length: number) => new Uint8Array(randomBytes(length))

/** Piece hashes computed independently: concatenate everything, then SHA-1 each piece. */
const expectedPieces = (contents: ReadonlyArray<Uint8Array>, pieceLength: number) => {
  const all = Buffer.concat(contents)
  const hashes: Array<Buffer> = []
  for (let at = 0; at < all.length; at += pieceLength) {
    hashes.push(createHash("sha1").update(all.subarray(at, at + pieceLength)).digest())
  }
  return new Uint8Array(Buffer.concat(hashes))
}

const reasonOf = <A>(effect: Effect.Effect<A, Create.CreateError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

describe("Create.make", () => {
  it.scoped("makes a single-file torrent whose last piece is shorter", () =>
    Effect.gen(function*() {
      const content = data(100_000)
      const root = yield* scratch({ "movie.bin": content })
      const result = yield* Create.make({ path: join(root, "movie.bin"), pieceLength: 32768, trackers: [["http://t/announce"]] })
      const { info } = result.metainfo
      expect(info).toMatchObject({ name: "movie.bin", multiFile: false, totalLength: 100_000, pieceLength: 32768, pieceCount: 4 })
      expect(Metainfo.pieceSize(info, 3)).toBe(100_000 - 3 * 32768)
      expect(info.pieces).toEqual(expectedPieces([content], 32768))
      expect(result.metainfo.trackers).toEqual([["http://t/announce"]])
      expect(result.metainfo.createdBy).toBe("bitfiber/0.1.0")
      // TestClock's now is the epoch.
      expect(result.metainfo.creationDate).toEqual(new Date(0))
    }))

  it.scoped("makes a directory torrent in path byte order, with nested dirs, hidden and zero-length files", () =>
    Effect.gen(function*() {
      const files = {
        "b.bin": data(40_000),
        "a/z.bin": data(20_000),
        "a/empty": new Uint8Array(),
        "a/deep/x.bin": data(16_384),
        ".hidden": data(10),
        "B.bin": data(7)
      }
      const root = yield* scratch(files)
      const result = yield* Create.make({ path: root, pieceLength: 16384, creationDate: null })
      const order = [".hidden", "B.bin", "a/deep/x.bin", "a/empty", "a/z.bin", "b.bin"] as const
      const { info } = result.metainfo
      expect(info.multiFile).toBe(true)
      expect(info.files.map((file) => file.path.slice(1).join("/"))).toEqual(order)
      expect(info.files.every((file) => file.path[0] === info.name)).toBe(true)
      expect(info.files.map((file) => file.length)).toEqual(order.map((path) => files[path].length))
      expect(info.pieces).toEqual(expectedPieces(order.map((path) => files[path]), 16384))
      expect(result.metainfo.creationDate).toBeUndefined()
    }))

  it.scoped("parses back to exactly its metainfo, with every option written", () =>
    Effect.gen(function*() {
      const root = yield* scratch({ "d/x": data(50_000), "d/y": data(3) })
      const result = yield* Create.make({
        path: join(root, "d"),
        trackers: [["http://a/announce", "http://b/announce"], ["udp://c:80"], ["http://a/announce"]],
        private: true,
        comment: "a comment",
        webSeeds: ["http://seed/"],
        createdBy: "test",
        creationDate: new Date(1_700_000_000_000)
      })
      expect(Either.getOrThrow(Metainfo.parse(result.torrent))).toEqual(result.metainfo)
      expect(result.metainfo).toMatchObject({
        trackers: [["http://a/announce", "http://b/announce"], ["udp://c:80"]],
        urlList: ["http://seed/"],
        comment: "a comment",
        createdBy: "test",
        creationDate: new Date(1_700_000_000_000)
      })
      expect(result.metainfo.info.private).toBe(true)
    }))

  it("chooses a power-of-two piece length for about 1000-2000 pieces", () => {
    expect(Create.autoPieceLength(1)).toBe(16384)
    expect(Create.autoPieceLength(2 ** 30)).toBe(2 ** 20)
    expect(Create.autoPieceLength(2 ** 40)).toBe(16 * 2 ** 20)
    for (const total of [5e7, 3e8, 7e9]) {
      const pieces = Math.ceil(total / Create.autoPieceLength(total))
      expect(pieces).toBeGreaterThanOrEqual(1000)
      expect(pieces).toBeLessThanOrEqual(2000)
    }
  })

  it.scoped("hashes 70 MiB across files, reporting progress up to the total", () =>
    Effect.gen(function*() {
      const contents = [data(40 * 1024 * 1024 + 5), data(10), data(30 * 1024 * 1024)]
      const root = yield* scratch({ "a": contents[0]!, "b": contents[1]!, "c": contents[2]! })
      const total = contents.reduce((sum, content) => sum + content.length, 0)
      const seen: Array<Create.Progress> = []
      const result = yield* Create.make({ path: root, pieceLength: 65536 }, (progress) => Effect.sync(() => seen.push(progress)))
      expect(result.metainfo.info.pieces).toEqual(expectedPieces(contents, 65536))
      expect(seen.length).toBeGreaterThan(2)
      expect(seen.at(-1)).toEqual({ hashedBytes: total, totalBytes: total })
      expect(seen.every((p, i) => i === 0 || p.hashedBytes > seen[i - 1]!.hashedBytes)).toBe(true)
    }))

  describe("typed errors", () => {
    it.scoped("a path that does not exist: NotFound", () =>
      Effect.gen(function*() {
        const root = yield* scratch({})
        expect(yield* reasonOf(Create.make({ path: join(root, "nope") }))).toBe("NotFound")
      }))

    it.scoped("an empty directory, or one with only empty files: Empty", () =>
      Effect.gen(function*() {
        const root = yield* scratch({ "only/empty": new Uint8Array() })
        yield* Effect.promise(() => mkdir(join(root, "void")))
        expect(yield* reasonOf(Create.make({ path: join(root, "void") }))).toBe("Empty")
        expect(yield* reasonOf(Create.make({ path: join(root, "only") }))).toBe("Empty")
      }))

    it.scoped("a piece length that is not a power of two of at least 16 KiB: InvalidOption", () =>
      Effect.gen(function*() {
        const root = yield* scratch({ "a": data(10) })
        for (const pieceLength of [8192, 20000, 0, 2 ** 30]) {
          expect(yield* reasonOf(Create.make({ path: root, pieceLength }))).toBe("InvalidOption")
        }
      }))

    it.scoped("a symlink back to an enclosing directory: SymlinkLoop", () =>
      Effect.gen(function*() {
        const root = yield* scratch({ "d/a": data(10) })
        yield* Effect.promise(() => symlink(join(root, "d"), join(root, "d", "loop")))
        expect(yield* reasonOf(Create.make({ path: join(root, "d") }))).toBe("SymlinkLoop")
      }))

    it.scoped("a followed symlink to a file is included", () =>
      Effect.gen(function*() {
        const root = yield* scratch({ "d/a": data(10), "elsewhere": data(20) })
        yield* Effect.promise(() => symlink(join(root, "elsewhere"), join(root, "d", "link")))
        const result = yield* Create.make({ path: join(root, "d") })
        expect(result.metainfo.info.files.map((file) => [file.path.at(-1), file.length])).toEqual([["a", 10], ["link", 20]])
      }))

    it.scoped("a file name the torrent format cannot carry: InvalidTorrent", () =>
      Effect.gen(function*() {
        const root = yield* scratch({ "d/back\\slash": data(10) })
        const error = yield* Effect.flip(Create.make({ path: join(root, "d") }))
        expect(error.reason).toBe("InvalidTorrent")
        expect(error.cause).toMatchObject({ _tag: "MetainfoError", reason: "PathComponent" })
      }))
  })
})
