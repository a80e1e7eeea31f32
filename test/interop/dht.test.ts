/**
 * bitfiber finds a libtorrent seeder through the DHT (BEP 5) alone, on 127.0.0.1: the magnet
 * link has only the info-hash (no tracker, no peer), and the only DHT node bitfiber is told of
 * is libtorrent's. A plain bitfiber DHT node is the one libtorrent announces to (libtorrent
 * stores no peer for its own torrent), which bitfiber has to learn of from libtorrent's answers.
 */
import { Dht, Magnet } from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"
import { BitfiberTimeout, bitfiberServices, bitfiberSession, waitCompleted, waitUntil } from "./support/Bitfiber.js"

const files = [
  { path: "payload/a.bin", size: 2 * 1024 * 1024 + 7 },
  { path: "payload/sub/b.bin", size: 200 * 1024 }
]

Interop.describeInterop("bitfiber finds peers through the DHT", ["mktorrent", "libtorrent"], () => {
  it.scopedLive("resolves a tracker-less magnet through libtorrent's DHT node and downloads from libtorrent", () =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const root = yield* Interop.tempDir("dht")
      const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: "dht" })
      const torrentPath = yield* Interop.mktorrent({
        path: join(seedDir, "payload"),
        out: join(root, "payload.torrent"),
        pieceLength: 32 * 1024
      })
      const info = yield* Interop.libtorrentInfo(torrentPath)

      // The node libtorrent announces to; nobody tells bitfiber's leecher about it.
      const router = yield* Dht.make({ address: { host: "127.0.0.1", port: 0 } })
      const seeder = yield* Interop.libtorrentSeeder({
        torrentPath,
        dataDir: seedDir,
        dht: true,
        dhtNodes: [router.address]
      })
      // libtorrent announces once it has DHT nodes; ask again until the router stores it (bounded).
      yield* Interop.live(
        Effect.gen(function*() {
          for (let attempt = 0; attempt < 15; attempt++) {
            yield* seeder.dhtAnnounce
            yield* Effect.sleep("2 seconds")
            if ((yield* router.stats).storedInfoHashes >= 1) return
          }
          return yield* new BitfiberTimeout({ what: "libtorrent's DHT announce never reached the router node", progress: undefined })
        })
      )
      const announced = yield* Clock.currentTimeMillis

      // Only libtorrent's node to start from (its DHT shares the listen port).
      const session = yield* bitfiberSession({ dht: true, dhtBootstrap: [`127.0.0.1:${seeder.port}`] })
      const dht = session.dht
      if (dht === undefined) return yield* Effect.die("the session has no DHT node")
      // Bootstrapped: it knows libtorrent's node and, from libtorrent's answer, the router.
      yield* waitUntil("bitfiber's DHT node knows two nodes", Effect.map(dht.stats, (stats) => stats.nodes >= 2), "30 seconds")
      const bootstrapped = yield* Clock.currentTimeMillis

      const magnet = yield* Magnet.parse(`magnet:?xt=urn:btih:${info.infoHash}`)
      const leechDir = join(root, "bitfiber")
      const torrent = yield* session.addMagnet(magnet, { directory: leechDir, metadataTimeout: "45 seconds" })
      const resolved = yield* Clock.currentTimeMillis
      expect(torrent.metainfo.info.name).toBe("payload")
      expect(torrent.metainfo.info.totalLength).toBe(info.totalSize)
      yield* waitCompleted(torrent, "45 seconds")
      expect(yield* Interop.sha256Dir(leechDir)).toEqual(yield* Interop.sha256Dir(seedDir))
      const stats = yield* dht.stats
      expect(stats.answersReceived).toBeGreaterThan(0)
      yield* Effect.logInfo(
        `dht interop: announced ${announced - started} ms, bootstrapped +${bootstrapped - announced} ms, ` +
          `metadata +${resolved - bootstrapped} ms, complete +${(yield* Clock.currentTimeMillis) - resolved} ms; leecher DHT ${JSON.stringify(stats)}`
      )
    }).pipe(Effect.provide(bitfiberServices)), 150_000)
})
