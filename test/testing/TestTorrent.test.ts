import { InfoHash, Metainfo } from "@bitfiber/core"
import { TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { createHash } from "node:crypto"

const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest()

describe("TestTorrent", () => {
  it("builds a multi-file torrent whose .torrent bytes parse to the same model", () => {
    const test = TestTorrent.make({
      name: "album",
      files: [{ path: "a.bin", length: 1000 }, { path: "disc 2/b.bin", length: 70_000 }, { path: "empty", length: 0 }],
      pieceLength: 16384,
      trackers: [["http://127.0.0.1:6969/announce"]]
    })
    const parsed = Either.getOrThrow(Metainfo.parse(test.torrent))
    expect(InfoHash.toHex(parsed.infoHash)).toBe(InfoHash.toHex(test.metainfo.infoHash))
    expect(parsed.info).toEqual(test.metainfo.info)
    expect(parsed.infoBytes).toEqual(test.metainfo.infoBytes)
    expect(parsed.trackers).toEqual([["http://127.0.0.1:6969/announce"]])
    expect(test.metainfo.info.files.map((file) => file.path)).toEqual([
      ["album", "a.bin"],
      ["album", "disc 2", "b.bin"],
      ["album", "empty"]
    ])
    expect(test.metainfo.info.pieceCount).toBe(5)
    expect(test.content.length).toBe(71_000)
  })

  it("uses the single-file form for one file without a directory", () => {
    const test = TestTorrent.make({ files: [{ path: "movie.mkv", length: 5 }], pieceLength: 4 })
    const parsed = Either.getOrThrow(Metainfo.parse(test.torrent))
    expect(parsed.info).toEqual(test.metainfo.info)
    expect(test.metainfo.info).toMatchObject({ name: "movie.mkv", multiFile: false, pieceCount: 2, totalLength: 5 })
    expect(test.metainfo.info.files[0]!.path).toEqual(["movie.mkv"])
  })

  it("hashes every piece, the short last one included", () => {
    const test = TestTorrent.make({ files: [{ path: "x", length: 100_001 }], pieceLength: 32768 })
    for (let index = 0; index < test.metainfo.info.pieceCount; index++) {
      expect(sha1(TestTorrent.piece(test, index))).toEqual(Buffer.from(Metainfo.pieceHash(test.metainfo.info, index)))
    }
    expect(TestTorrent.piece(test, 3).length).toBe(100_001 - 3 * 32768)
  })

  it("generates the same content for the same seed and other content for another", () => {
    const options = { files: [{ path: "x", length: 4099 }], pieceLength: 1024 }
    const a = TestTorrent.make(options)
    const b = TestTorrent.make(options)
    const c = TestTorrent.make({ ...options, seed: 2 })
    expect(Buffer.compare(a.content, b.content)).toBe(0)
    expect(InfoHash.equals(a.metainfo.infoHash, b.metainfo.infoHash)).toBe(true)
    expect(Buffer.compare(a.content, c.content)).not.toBe(0)
    expect(InfoHash.equals(a.metainfo.infoHash, c.metainfo.infoHash)).toBe(false)
    // Not degenerate: most byte values occur.
    expect(new Set(a.content).size).toBeGreaterThan(200)
  })

  it("fills BEP 47 padding files with zeros and marks them", () => {
    const test = TestTorrent.make({
      files: [{ path: "a", length: 10 }, { path: ".pad/6", length: 6, padding: true }, { path: "b", length: 16 }],
      pieceLength: 16
    })
    expect(Array.from(test.content.subarray(10, 16))).toEqual([0, 0, 0, 0, 0, 0])
    const parsed = Either.getOrThrow(Metainfo.parse(test.torrent))
    expect(parsed.info.files.map((file) => file.padding)).toEqual([false, true, false])
  })
})
