/**
 * Proves the interop harness with real clients only (no bitfiber code): every later interop
 * test follows this shape. A scoped Effect starts tracker, seeder and leecher; the Scope kills
 * them and removes their dirs; a failing test prints every process's log.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"

const files = [
  { path: "payload/a.bin", size: 3 * 1024 * 1024 },
  { path: "payload/sub/b.bin", size: 1024 * 1024 - 17 },
  { path: "payload/sub/c.bin", size: 17 }
]

/** A 4 MiB payload made by mktorrent, announced to a fresh opentracker, seeded by libtorrent. */
const swarm = (announce: "http" | "udp") =>
  Effect.gen(function*() {
    const root = yield* Interop.tempDir("harness")
    const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: "harness" })
    const tracker = yield* Interop.opentracker()
    const torrentPath = yield* Interop.mktorrent({
      path: join(seedDir, "payload"),
      out: join(root, "payload.torrent"),
      announce: [announce === "http" ? tracker.httpUrl : tracker.udpUrl],
      pieceLength: 64 * 1024
    })
    const info = yield* Interop.libtorrentInfo(torrentPath)
    yield* tracker.addInfoHash(info.infoHash)
    const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
    return { root, torrentPath, seeder, expected: yield* Interop.sha256Dir(seedDir) }
  })

Interop.describeInterop("interop harness", ["opentracker", "mktorrent", "libtorrent"], () => {
  it.scopedLive("libtorrent downloads from libtorrent via the HTTP tracker", () =>
    Effect.gen(function*() {
      const { expected, root, torrentPath } = yield* swarm("http")
      const leecher = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "lt") })
      yield* leecher.waitFinished("40 seconds")
      expect(yield* Interop.sha256Dir(join(root, "lt"))).toEqual(expected)
    }), 60_000)

  it.scopedLive("libtorrent downloads from libtorrent via the UDP tracker", () =>
    Effect.gen(function*() {
      const { expected, root, torrentPath } = yield* swarm("udp")
      const leecher = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "lt") })
      yield* leecher.waitFinished("40 seconds")
      expect(leecher.process.log()).toMatch(/udp:\/\/127\.0\.0\.1:\d+\/announce.*received peers/)
      expect(yield* Interop.sha256Dir(join(root, "lt"))).toEqual(expected)
    }), 60_000)

  Interop.describeInterop("aria2c", ["aria2c"], () => {
    it.scopedLive("aria2c downloads from libtorrent via the HTTP tracker", () =>
      Effect.gen(function*() {
        const { expected, root, torrentPath } = yield* swarm("http")
        const leecher = yield* Interop.aria2Leecher({ torrentPath, dir: join(root, "aria2") })
        yield* leecher.waitFinished("40 seconds")
        expect(yield* Interop.sha256Dir(join(root, "aria2"))).toEqual(expected)
      }), 60_000)
  })

  Interop.describeInterop("transmission-cli", ["transmission-cli"], () => {
    // transmission never dials 127.x peers itself: the libtorrent seeder dials it.
    it.scopedLive("transmission-cli downloads from a libtorrent seeder that dials it", () =>
      Effect.gen(function*() {
        const { expected, root, seeder, torrentPath } = yield* swarm("http")
        const leecher = yield* Interop.transmissionLeecher({ torrentPath, dir: join(root, "transmission") })
        yield* seeder.connectPeer({ host: "127.0.0.1", port: leecher.port })
        yield* leecher.waitFinished("45 seconds")
        expect(yield* Interop.sha256Dir(join(root, "transmission"))).toEqual(expected)
      }), 60_000)
  })
})
