/**
 * bitfiber starts from what a magnet link or a peer tells it, against real libtorrent on
 * 127.0.0.1: the metadata (BEP 9) from a seeder found through the link's `tr` tracker, and a
 * seeder it hears of only through a libtorrent peer's ut_pex (BEP 11).
 */
import { Magnet } from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"
import { bitfiberServices, bitfiberSession, readTorrent, waitCompleted, waitUntil } from "./support/Bitfiber.js"

const files = [
  { path: "payload/a.bin", size: 2 * 1024 * 1024 + 5 },
  { path: "payload/sub/b.bin", size: 333 * 1024 }
]

Interop.describeInterop("bitfiber from a magnet link and from peer exchange", ["opentracker", "mktorrent", "libtorrent"], () => {
  it.scopedLive("fetches the metadata from a libtorrent seeder found through the magnet's tracker, then downloads", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("magnet")
      const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: "magnet" })
      const tracker = yield* Interop.opentracker()
      const torrentPath = yield* Interop.mktorrent({
        path: join(seedDir, "payload"),
        out: join(root, "payload.torrent"),
        announce: [tracker.httpUrl],
        pieceLength: 32 * 1024
      })
      const info = yield* Interop.libtorrentInfo(torrentPath)
      yield* tracker.addInfoHash(info.infoHash)
      const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
      yield* seeder.process.waitForLine(/tracker_reply_alert/, "20 seconds")

      // Nothing but the info-hash and the tracker: no name, no peer.
      const magnet = yield* Magnet.parse(`magnet:?xt=urn:btih:${info.infoHash}&tr=${encodeURIComponent(tracker.httpUrl)}`)
      const session = yield* bitfiberSession()
      const leechDir = join(root, "bitfiber")
      const torrent = yield* session.addMagnet(magnet, { directory: leechDir, metadataTimeout: "30 seconds" })
      expect(torrent.metainfo.info.name).toBe("payload")
      expect(torrent.metainfo.info.totalLength).toBe(info.totalSize)
      expect(torrent.metainfo.info.files.map((file) => file.path.join("/"))).toEqual(files.map((file) => file.path))
      yield* waitCompleted(torrent, "60 seconds")
      expect(yield* Interop.sha256Dir(leechDir)).toEqual(yield* Interop.sha256Dir(seedDir))
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("dials a libtorrent seeder it learns of only through a libtorrent peer's ut_pex", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("pex")
      const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: "pex" })
      const torrentPath = yield* Interop.mktorrent({
        path: join(seedDir, "payload"),
        out: join(root, "payload.torrent"),
        pieceLength: 32 * 1024
      })
      const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
      // The middle peer knows the seeder but is throttled to a trickle, so it cannot be the source.
      const middle = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "middle") })
      yield* middle.process.send("download-limit 1000")
      yield* middle.process.waitForLine(/"download-limit": 1000/, "10 seconds")
      yield* middle.connectPeer({ host: "127.0.0.1", port: seeder.port })
      yield* waitUntil("the middle peer connected to the seeder", Effect.sync(() => (middle.status()?.num_peers ?? 0) >= 1))

      // Not listening: nobody can dial us, so any transfer from the seeder is a connection we made.
      const session = yield* bitfiberSession({ listen: false })
      const leechDir = join(root, "bitfiber")
      const torrent = yield* session.add({
        torrent: yield* readTorrent(torrentPath),
        directory: leechDir,
        peers: [{ host: "127.0.0.1", port: middle.port }]
      })
      yield* waitCompleted(torrent, "90 seconds")
      expect(yield* Interop.sha256Dir(leechDir)).toEqual(yield* Interop.sha256Dir(seedDir))
      expect(middle.status()?.progress ?? 0).toBeLessThan(0.5)
    }).pipe(Effect.provide(bitfiberServices)), 120_000)
})
