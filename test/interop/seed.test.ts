/**
 * bitfiber seeds to real leechers (aria2c, transmission-cli, libtorrent) and to itself on
 * 127.0.0.1: the seeder's data is on disk and verified by the resume check, every leecher must
 * end with byte-identical files, and a bitfiber leecher that completed seeds on to the next one.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"
import { bitfiberServices, bitfiberSession, readTorrent, waitCompleted, waitForSeeds, waitUntil } from "./support/Bitfiber.js"

const MiB = 1024 * 1024

const files = [
  { path: "payload/a.bin", size: 3 * MiB + 4321 },
  { path: "payload/sub/b.bin", size: MiB - 17 },
  { path: "payload/sub/empty.txt", size: 0 },
  { path: "payload/sub/c.bin", size: 17 }
]
const totalSize = files.reduce((sum, file) => sum + file.size, 0)

/**
 * A payload on disk, its torrent (mktorrent, optionally announced to a fresh opentracker), and a
 * bitfiber session seeding it from that disk once the resume check has verified every piece.
 */
const bitfiberSeeder = (name: string, options: { readonly tracker?: boolean } = {}) =>
  Effect.gen(function*() {
    const root = yield* Interop.tempDir(name)
    const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: name })
    const tracker = options.tracker === true ? yield* Interop.opentracker() : undefined
    const torrentPath = yield* Interop.mktorrent({
      path: join(seedDir, "payload"),
      out: join(root, "payload.torrent"),
      announce: tracker === undefined ? [] : [tracker.httpUrl],
      pieceLength: 64 * 1024
    })
    const info = yield* Interop.libtorrentInfo(torrentPath)
    if (tracker !== undefined) yield* tracker.addInfoHash(info.infoHash)
    const session = yield* bitfiberSession()
    const seeding = yield* session.add({ torrent: yield* readTorrent(torrentPath), directory: seedDir })
    yield* waitCompleted(seeding, "30 seconds")
    const progress = yield* seeding.progress
    expect(progress).toMatchObject({ state: "seeding", checkedPieces: info.numPieces, verifiedPieces: info.numPieces })
    return { root, seedDir, torrentPath, info, tracker, session, seeding, expected: yield* Interop.sha256Dir(seedDir) }
  })

Interop.describeInterop("bitfiber seeds to real leechers", ["mktorrent", "libtorrent"], () => {
  it.scopedLive("a libtorrent leecher that dials it gets identical bytes", () =>
    Effect.gen(function*() {
      const { expected, root, seeding, session, torrentPath } = yield* bitfiberSeeder("seed-lt")
      const leecher = yield* Interop.libtorrentLeecher({
        torrentPath,
        saveDir: join(root, "lt"),
        peers: [{ host: "127.0.0.1", port: session.port }]
      })
      yield* leecher.waitFinished("60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "lt"))).toEqual(expected)
      yield* waitUntil("the seeder counting its upload", Effect.map(seeding.progress, (p) => p.uploaded >= totalSize), "5 seconds")
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("four bitfiber leechers at once get identical bytes", () =>
    Effect.gen(function*() {
      const { expected, root, session, torrentPath } = yield* bitfiberSeeder("seed-four")
      const torrent = yield* readTorrent(torrentPath)
      const dirs = [1, 2, 3, 4].map((n) => join(root, `leecher-${n}`))
      yield* Effect.forEach(dirs, (directory) =>
        Effect.gen(function*() {
          const leecher = yield* bitfiberSession()
          const download = yield* leecher.add({ torrent, directory, peers: [{ host: "127.0.0.1", port: session.port }] })
          yield* waitCompleted(download, "60 seconds")
        }), { concurrency: "unbounded" })
      for (const dir of dirs) expect(yield* Interop.sha256Dir(dir)).toEqual(expected)
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("a bitfiber leecher seeds on: libtorrent A seeds to bitfiber B, A stops, B seeds to libtorrent C", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("relay")
      const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "a"), files, seed: "relay" })
      const torrentPath = yield* Interop.mktorrent({
        path: join(seedDir, "payload"),
        out: join(root, "payload.torrent"),
        pieceLength: 32 * 1024
      })
      const expected = yield* Interop.sha256Dir(seedDir)
      const a = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })

      const b = yield* bitfiberSession()
      const relay = yield* b.add({
        torrent: yield* readTorrent(torrentPath),
        directory: join(root, "b"),
        peers: [{ host: "127.0.0.1", port: a.port }]
      })
      yield* waitCompleted(relay, "60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "b"))).toEqual(expected)
      yield* a.process.stop

      const c = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "c"), peers: [{ host: "127.0.0.1", port: b.port }] })
      yield* c.waitFinished("60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "c"))).toEqual(expected)
      yield* waitUntil("the relay counting its upload", Effect.map(relay.progress, (p) => p.uploaded >= totalSize), "5 seconds")
    }).pipe(Effect.provide(bitfiberServices)), 120_000)

  Interop.describeInterop("aria2c", ["opentracker", "aria2c"], () => {
    it.scopedLive("an aria2c leecher that finds it through opentracker gets identical bytes", () =>
      Effect.gen(function*() {
        const { expected, info, root, tracker, torrentPath } = yield* bitfiberSeeder("seed-aria2", { tracker: true })
        yield* waitForSeeds(tracker!.httpUrl, info.infoHash, 1)
        const leecher = yield* Interop.aria2Leecher({ torrentPath, dir: join(root, "aria2") })
        yield* leecher.waitFinished("60 seconds")
        expect(yield* Interop.sha256Dir(join(root, "aria2"))).toEqual(expected)
      }).pipe(Effect.provide(bitfiberServices)), 90_000)

    it.scopedLive("an aria2c leecher that requires an RC4-encrypted stream (MSE) gets identical bytes", () =>
      Effect.gen(function*() {
        const { expected, info, root, tracker, torrentPath } = yield* bitfiberSeeder("seed-aria2-rc4", { tracker: true })
        yield* waitForSeeds(tracker!.httpUrl, info.infoHash, 1)
        const leecher = yield* Interop.aria2Leecher({
          torrentPath,
          dir: join(root, "aria2"),
          args: ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]
        })
        yield* leecher.waitFinished("60 seconds")
        expect(yield* Interop.sha256Dir(join(root, "aria2"))).toEqual(expected)
      }).pipe(Effect.provide(bitfiberServices)), 90_000)
  })

  Interop.describeInterop("transmission-cli", ["transmission-cli"], () => {
    // transmission 3.00 never dials 127.x peers itself: the seeder must dial it.
    it.scopedLive("a transmission-cli leecher that the seeder dials gets identical bytes", () =>
      Effect.gen(function*() {
        const { expected, root, seeding, torrentPath } = yield* bitfiberSeeder("seed-transmission")
        const leecher = yield* Interop.transmissionLeecher({ torrentPath, dir: join(root, "transmission") })
        yield* seeding.addPeers([{ host: "127.0.0.1", port: leecher.port }])
        yield* leecher.waitFinished("60 seconds")
        // transmission 3.00 creates no zero-length files.
        const empty = new Set(files.filter((file) => file.size === 0).map((file) => file.path))
        const nonEmpty = Object.fromEntries(Object.entries(expected).filter(([path]) => !empty.has(path)))
        expect(yield* Interop.sha256Dir(join(root, "transmission"))).toEqual(nonEmpty)
      }).pipe(Effect.provide(bitfiberServices)), 90_000)
  })
})
