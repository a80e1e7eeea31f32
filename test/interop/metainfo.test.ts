/**
 * Metainfo against real tools: torrents made by mktorrent and libtorrent parse to the info-hash
 * and file list libtorrent reports; torrents made by Create.make are read identically by
 * libtorrent and transmission-show.
 */
import { Create, InfoHash, Metainfo } from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as Interop from "./support/index.js"

const payload = [
  { path: "payload/a.bin", size: 300_000 },
  { path: "payload/sub/b.bin", size: 65_536 },
  { path: "payload/sub/c.bin", size: 17 }
]
const unicodePayload = [
  { path: "ünïcødé/日本語 ファイル.bin", size: 50_000 },
  { path: "ünïcødé/Ελληνικά/файл.txt", size: 20_000 },
  { path: "ünïcødé/emoji 🎉.dat", size: 1_000 }
]

const parseFile = (path: string) =>
  Effect.map(Effect.promise(() => readFile(path)), (bytes) => Either.getOrThrow(Metainfo.parse(bytes)))

/** The file list as libtorrent writes it: "/"-joined path with the name first for multi-file torrents. */
const filesOf = (metainfo: Metainfo.Metainfo) =>
  metainfo.info.files.map((file) => ({ path: file.rawPath.join("/"), size: file.length, pad: file.padding }))

/** Checks our parse of `torrentPath` against libtorrent's reading of it. */
const expectSameAsLibtorrent = (torrentPath: string) =>
  Effect.gen(function*() {
    const ours = yield* parseFile(torrentPath)
    const theirs = yield* Interop.libtorrentInfo(torrentPath)
    expect(InfoHash.toHex(ours.infoHash)).toBe(theirs.infoHash)
    expect(filesOf(ours)).toEqual(theirs.files)
    expect(ours.info).toMatchObject({
      name: theirs.name,
      pieceLength: theirs.pieceLength,
      pieceCount: theirs.numPieces,
      totalLength: theirs.totalSize,
      private: theirs.private
    })
    return ours
  })

/** What transmission-show prints: the hash and the file list (paths, name first). */
const transmissionShow = (torrentPath: string) =>
  Effect.map(Interop.run("transmission-show", "transmission-show", [torrentPath]), ({ stdout }) => {
    const hash = /^\s*Hash: ([0-9a-f]{40})$/m.exec(stdout)?.[1]
    const files = stdout.slice(stdout.indexOf("\nFILES\n") + 7).split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => line.trim().replace(/ \([^)]*\)$/, ""))
    return { hash, files }
  })

Interop.describeInterop("metainfo interop", ["mktorrent", "libtorrent", "transmission-cli"], () => {
  it.scopedLive("parses mktorrent's single-file torrent like libtorrent", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("metainfo")
      yield* Interop.makeTestPayload({ dir: root, files: [{ path: "single.bin", size: 1_000_003 }] })
      const torrentPath = yield* Interop.mktorrent({
        path: join(root, "single.bin"),
        out: join(root, "single.torrent"),
        announce: ["http://127.0.0.1:1/announce", ["http://127.0.0.1:2/announce", "http://127.0.0.1:3/announce"]],
        pieceLength: 32768,
        private: true,
        webSeeds: ["http://127.0.0.1:4/"]
      })
      const ours = yield* expectSameAsLibtorrent(torrentPath)
      expect(ours.info.multiFile).toBe(false)
      expect(ours.trackers).toEqual([
        ["http://127.0.0.1:1/announce"],
        ["http://127.0.0.1:2/announce", "http://127.0.0.1:3/announce"]
      ])
      expect(ours.urlList).toEqual(["http://127.0.0.1:4/"])
    }), 60_000)

  it.scopedLive("parses mktorrent's directory torrent like libtorrent", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("metainfo")
      yield* Interop.makeTestPayload({ dir: root, files: payload })
      const torrentPath = yield* Interop.mktorrent({ path: join(root, "payload"), out: join(root, "dir.torrent"), pieceLength: 32768 })
      const ours = yield* expectSameAsLibtorrent(torrentPath)
      expect(ours.info.files.map((file) => file.path.join("/"))).toEqual(payload.map((file) => file.path))
    }), 60_000)

  it.scopedLive("parses libtorrent's v1 torrent with pad files and unicode names like libtorrent", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("metainfo")
      yield* Interop.makeTestPayload({ dir: root, files: unicodePayload })
      const torrentPath = join(root, "pad.torrent")
      yield* Interop.libtorrentCreate({ path: join(root, "ünïcødé"), out: torrentPath, pieceLength: 16384, padFiles: true })
      const ours = yield* expectSameAsLibtorrent(torrentPath)
      expect(ours.info.files.some((file) => file.padding)).toBe(true)
      expect(ours.info.files.filter((file) => !file.padding).map((file) => file.path.join("/")).sort())
        .toEqual(unicodePayload.map((file) => file.path).sort())
    }), 60_000)

  it.scopedLive("reads the v1 half of libtorrent's hybrid v1/v2 torrent", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("metainfo")
      yield* Interop.makeTestPayload({ dir: root, files: payload })
      const torrentPath = join(root, "hybrid.torrent")
      yield* Interop.libtorrentCreate({ path: join(root, "payload"), out: torrentPath, version: "hybrid" })
      yield* expectSameAsLibtorrent(torrentPath)
    }), 60_000)

  it.scopedLive("Create.make's torrents read the same in libtorrent and transmission-show", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("metainfo")
      yield* Interop.makeTestPayload({ dir: root, files: [...unicodePayload, { path: "ünïcødé/empty", size: 0 }] })
      yield* Interop.makeTestPayload({ dir: root, files: [{ path: "one.bin", size: 123_457 }] })
      for (const source of ["ünïcødé", "one.bin"]) {
        const result = yield* Create.make({ path: join(root, source), trackers: [["http://127.0.0.1:1/announce"]] })
        const torrentPath = join(root, `${source}.torrent`)
        yield* Effect.promise(() => writeFile(torrentPath, result.torrent))
        const ours = yield* expectSameAsLibtorrent(torrentPath)
        expect(ours).toEqual(result.metainfo)
        const shown = yield* transmissionShow(torrentPath)
        expect(shown.hash).toBe(InfoHash.toHex(result.metainfo.infoHash))
        expect(shown.files).toEqual(result.metainfo.info.files.map((file) => file.rawPath.join("/")))
      }
    }), 60_000)
})
