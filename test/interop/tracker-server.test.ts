/**
 * bitfiber's TrackerServer as the only way real clients find each other on 127.0.0.1: libtorrent
 * and aria2c announce to it over HTTP, libtorrent and bitfiber over UDP (aria2c without DHT hangs
 * on udp:// trackers), and every leecher must end with the seeder's bytes. libtorrent on both
 * sides of one tracker is in tracker.test.ts.
 */
import { TrackerServer } from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"
import { bitfiberServices, bitfiberSession, readTorrent, waitCompleted, waitUntil } from "./support/Bitfiber.js"

const files = [
  { path: "payload/a.bin", size: 2 * 1024 * 1024 + 77 },
  { path: "payload/sub/b.bin", size: 300 * 1024 }
]

/** Our tracker on HTTP or UDP, and a payload whose torrent announces only to it. */
const ourTracker = (protocol: "http" | "udp", name: string) =>
  Effect.gen(function*() {
    const loopback = { host: "127.0.0.1", port: 0 }
    const server = yield* TrackerServer.make(protocol === "http" ? { http: loopback } : { udp: loopback })
    const announceUrl = (protocol === "http" ? server.http : server.udp)!.announceUrl
    const root = yield* Interop.tempDir(name)
    const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: name })
    const torrentPath = yield* Interop.mktorrent({
      path: join(seedDir, "payload"),
      out: join(root, "payload.torrent"),
      announce: [announceUrl],
      pieceLength: 32 * 1024
    })
    // A leecher that asks before the seeder's `started` is in waits a whole interval.
    const waitForPeers = (peers: number) =>
      waitUntil(`${peers} peer(s) at our tracker`, Effect.map(server.size, (size) => size.peers >= peers))
    return { root, seedDir, torrentPath, announceUrl, waitForPeers, expected: yield* Interop.sha256Dir(seedDir) }
  })

Interop.describeInterop("real clients find each other through our tracker server", ["mktorrent", "libtorrent", "aria2c"], () => {
  it.scopedLive("an aria2c leecher finds a libtorrent seeder through our HTTP tracker", () =>
    Effect.gen(function*() {
      const { expected, root, seedDir, torrentPath, waitForPeers } = yield* ourTracker("http", "ours-lt-aria2")
      yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
      yield* waitForPeers(1)
      const leecher = yield* Interop.aria2Leecher({ torrentPath, dir: join(root, "aria2") })
      yield* leecher.waitFinished("60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "aria2"))).toEqual(expected)
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("a libtorrent leecher finds an aria2c seeder through our HTTP tracker", () =>
    Effect.gen(function*() {
      const { expected, root, seedDir, torrentPath, waitForPeers } = yield* ourTracker("http", "ours-aria2-lt")
      yield* Interop.aria2Seeder({ torrentPath, dataDir: seedDir })
      yield* waitForPeers(1)
      const leecher = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "lt") })
      yield* leecher.waitFinished("60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "lt"))).toEqual(expected)
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("a libtorrent leecher and a bitfiber leecher find a libtorrent seeder through our UDP tracker", () =>
    Effect.gen(function*() {
      const { expected, root, seedDir, torrentPath, waitForPeers } = yield* ourTracker("udp", "ours-udp")
      yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
      yield* waitForPeers(1)
      const session = yield* bitfiberSession()
      const torrent = yield* session.add({ torrent: yield* readTorrent(torrentPath), directory: join(root, "bitfiber") })
      const leecher = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "lt") })
      yield* leecher.waitFinished("60 seconds")
      yield* waitCompleted(torrent, "60 seconds")
      expect(yield* Interop.sha256Dir(join(root, "lt"))).toEqual(expected)
      expect(yield* Interop.sha256Dir(join(root, "bitfiber"))).toEqual(expected)
    }).pipe(Effect.provide(bitfiberServices)), 90_000)
})
