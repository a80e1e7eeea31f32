/**
 * bitfiber downloads from real seeders (libtorrent, aria2c, and a mixed swarm) on 127.0.0.1 and
 * must end with byte-identical files: peers found through opentracker over HTTP and UDP or given
 * directly, multi-file torrents with empty files and nested directories, tiny and huge pieces.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Interop from "./support/index.js"
import { bitfiberServices, bitfiberSession, readTorrent, waitCompleted, waitForSeeds, waitUntil } from "./support/Bitfiber.js"

const MiB = 1024 * 1024

/** A payload under `root/seed`, its torrent (mktorrent) announced to a fresh opentracker. */
const trackedSwarm = (options: {
  readonly name: string
  readonly protocol: "http" | "udp"
  readonly files: ReadonlyArray<Interop.PayloadFile>
  readonly pieceLength: number
}) =>
  Effect.gen(function*() {
    const root = yield* Interop.tempDir(options.name)
    const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files: options.files, seed: options.name })
    const tracker = yield* Interop.opentracker()
    const torrentPath = yield* Interop.mktorrent({
      path: join(seedDir, options.files[0]!.path.split("/")[0]!),
      out: join(root, `${options.name}.torrent`),
      announce: [options.protocol === "http" ? tracker.httpUrl : tracker.udpUrl],
      pieceLength: options.pieceLength
    })
    const info = yield* Interop.libtorrentInfo(torrentPath)
    yield* tracker.addInfoHash(info.infoHash)
    return { root, seedDir, tracker, torrentPath, info, leechDir: join(root, "bitfiber") }
  })

/** A bitfiber leecher that knows only the torrent's trackers: completes, then must hold the seeder's bytes. */
const leechThroughTracker = (swarm: Effect.Effect.Success<ReturnType<typeof trackedSwarm>>) =>
  Effect.gen(function*() {
    const session = yield* bitfiberSession()
    const torrent = yield* session.add({ torrent: yield* readTorrent(swarm.torrentPath), directory: swarm.leechDir })
    yield* waitCompleted(torrent, "60 seconds")
    const progress = yield* torrent.progress
    expect(progress.verifiedPieces).toBe(swarm.info.numPieces)
    expect(progress.trackers.some((tracker) => tracker.status === "ok" && tracker.peers > 0)).toBe(true)
    expect(yield* Interop.sha256Dir(swarm.leechDir)).toEqual(yield* Interop.sha256Dir(swarm.seedDir))
    return torrent
  })

/** A bitfiber session (with `config`) downloads `torrentPath` into `leechDir` from the peer on `port`. */
const leechFrom = (torrentPath: string, leechDir: string, port: number, config?: Parameters<typeof bitfiberSession>[0]) =>
  Effect.gen(function*() {
    const session = yield* bitfiberSession(config)
    const torrent = yield* session.add({
      torrent: yield* readTorrent(torrentPath),
      directory: leechDir,
      peers: [{ host: "127.0.0.1", port }]
    })
    yield* waitCompleted(torrent, "60 seconds")
    return torrent
  })

const payload = [
  { path: "payload/a.bin", size: 3 * MiB + 12345 },
  { path: "payload/sub/b.bin", size: MiB - 17 },
  { path: "payload/sub/c.bin", size: 17 }
]

Interop.describeInterop("bitfiber downloads from real seeders", ["opentracker", "mktorrent", "libtorrent"], () => {
  it.scopedLive("from a libtorrent seeder it finds only through opentracker over HTTP", () =>
    Effect.gen(function*() {
      const swarm = yield* trackedSwarm({ name: "lt-http", protocol: "http", files: payload, pieceLength: 64 * 1024 })
      yield* Interop.libtorrentSeeder({ torrentPath: swarm.torrentPath, dataDir: swarm.seedDir })
      yield* waitForSeeds(swarm.tracker.httpUrl, swarm.info.infoHash, 1)
      yield* leechThroughTracker(swarm)
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("from a libtorrent seeder it finds only through opentracker over UDP", () =>
    Effect.gen(function*() {
      const swarm = yield* trackedSwarm({ name: "lt-udp", protocol: "udp", files: payload, pieceLength: 64 * 1024 })
      yield* Interop.libtorrentSeeder({ torrentPath: swarm.torrentPath, dataDir: swarm.seedDir })
      yield* waitForSeeds(swarm.tracker.httpUrl, swarm.info.infoHash, 1)
      const torrent = yield* leechThroughTracker(swarm)
      expect((yield* torrent.progress).trackers.map((tracker) => tracker.url)).toEqual([swarm.tracker.udpUrl])
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  it.scopedLive("from a libtorrent seeder given directly: a multi-file torrent with empty files and nested directories", () =>
    Effect.gen(function*() {
      const root = yield* Interop.tempDir("nested")
      const files = [
        { path: "album/empty-first.txt", size: 0 },
        { path: "album/one.bin", size: 1536 * 1024 + 3 },
        { path: "album/deep/er/two.bin", size: 700 * 1024 + 1 },
        { path: "album/deep/er/empty.txt", size: 0 },
        { path: "album/deep/three.bin", size: 17 },
        { path: "album/z/y/x/w/four.bin", size: 96 * 1024 },
        { path: "album/z/empty-last", size: 0 }
      ]
      const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: "nested" })
      const torrentPath = yield* Interop.mktorrent({
        path: join(seedDir, "album"),
        out: join(root, "album.torrent"),
        pieceLength: 32 * 1024
      })
      const info = yield* Interop.libtorrentInfo(torrentPath)
      // mktorrent keeps zero-length files (transmission-create would drop them).
      expect(info.files.filter((file) => file.size === 0)).toHaveLength(3)
      const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })

      const leechDir = join(root, "bitfiber")
      yield* leechFrom(torrentPath, leechDir, seeder.port)
      const digests = yield* Interop.sha256Dir(leechDir)
      expect(Object.keys(digests)).toHaveLength(files.length)
      expect(digests).toEqual(yield* Interop.sha256Dir(seedDir))
    }).pipe(Effect.provide(bitfiberServices)), 90_000)

  for (const encryption of ["prefer", "require"] as const) {
    it.scopedLive(`from a libtorrent seeder that forces RC4 encryption (MSE), dialing with encryption "${encryption}"`, () =>
      Effect.gen(function*() {
        const root = yield* Interop.tempDir(`mse-${encryption}`)
        const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files: payload, seed: "mse" })
        const torrentPath = yield* Interop.mktorrent({ path: join(seedDir, "payload"), out: join(root, "mse.torrent"), pieceLength: 32 * 1024 })
        const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir, encryption: "forced-rc4" })
        const leechDir = join(root, "bitfiber")
        yield* leechFrom(torrentPath, leechDir, seeder.port, { encryption })
        expect(yield* Interop.sha256Dir(leechDir)).toEqual(yield* Interop.sha256Dir(seedDir))
      }).pipe(Effect.provide(bitfiberServices)), 90_000)
  }

  for (const geometry of [
    { label: "16 KiB pieces (one block each)", pieceLength: 16 * 1024, size: 2 * MiB + 5000 },
    { label: "4 MiB pieces (256 blocks each)", pieceLength: 4 * MiB, size: 12 * MiB + 100 * 1024 }
  ]) {
    it.scopedLive(`from a libtorrent seeder given directly: ${geometry.label}`, () =>
      Effect.gen(function*() {
        const root = yield* Interop.tempDir("geometry")
        const seedDir = yield* Interop.makeTestPayload({
          dir: join(root, "seed"),
          files: [{ path: "big.bin", size: geometry.size }],
          seed: geometry.pieceLength
        })
        const torrentPath = join(root, "big.torrent")
        const info = yield* Interop.libtorrentCreate({
          path: join(seedDir, "big.bin"),
          out: torrentPath,
          pieceLength: geometry.pieceLength
        })
        expect(info.pieceLength).toBe(geometry.pieceLength)
        expect(info.numPieces).toBe(Math.ceil(geometry.size / geometry.pieceLength))
        const seeder = yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })

        const leechDir = join(root, "bitfiber")
        const torrent = yield* leechFrom(torrentPath, leechDir, seeder.port)
        expect((yield* torrent.progress).verifiedPieces).toBe(info.numPieces)
        expect(yield* Interop.sha256Dir(leechDir)).toEqual(yield* Interop.sha256Dir(seedDir))
      }).pipe(Effect.provide(bitfiberServices)), 90_000)
  }

  Interop.describeInterop("with aria2c", ["aria2c"], () => {
    it.scopedLive("from an aria2c seeder it finds only through opentracker over HTTP", () =>
      Effect.gen(function*() {
        const swarm = yield* trackedSwarm({ name: "aria2-http", protocol: "http", files: payload, pieceLength: 64 * 1024 })
        yield* Interop.aria2Seeder({ torrentPath: swarm.torrentPath, dataDir: swarm.seedDir })
        yield* waitForSeeds(swarm.tracker.httpUrl, swarm.info.infoHash, 1)
        yield* leechThroughTracker(swarm)
      }).pipe(Effect.provide(bitfiberServices)), 90_000)

    it.scopedLive("from three seeders at once (libtorrent, aria2c, bitfiber), more than one of them uploading", () =>
      Effect.gen(function*() {
        const files = [{ path: "swarm/a.bin", size: 6 * MiB }, { path: "swarm/b.bin", size: 2 * MiB + 999 }]
        const swarm = yield* trackedSwarm({ name: "three-seeders", protocol: "http", files, pieceLength: 32 * 1024 })
        const libtorrent = yield* Interop.libtorrentSeeder({ torrentPath: swarm.torrentPath, dataDir: swarm.seedDir })
        yield* Interop.aria2Seeder({ torrentPath: swarm.torrentPath, dataDir: swarm.seedDir })
        const bitfiberSeeder = yield* bitfiberSession()
        const seeding = yield* bitfiberSeeder.add({ torrent: yield* readTorrent(swarm.torrentPath), directory: swarm.seedDir })
        yield* waitCompleted(seeding, "30 seconds")
        yield* waitForSeeds(swarm.tracker.httpUrl, swarm.info.infoHash, 3)

        yield* leechThroughTracker(swarm)
        // The leecher does not count bytes per peer: ask the seeders what they sent.
        yield* waitUntil("a libtorrent status line after the download", Effect.sync(() => libtorrent.status() !== undefined))
        // One more libtorrent status line and one more bitfiber tick, both with their final counters.
        yield* Effect.sleep("1500 millis")
        const bitfiberUploaded = (yield* seeding.progress).uploaded
        const libtorrentUploaded = libtorrent.status()?.total_upload ?? 0
        // aria2c logs no counters: it helped if the other two sent less than everything.
        const total = files.reduce((sum, file) => sum + file.size, 0)
        const uploaders = [bitfiberUploaded > 0, libtorrentUploaded > 0, bitfiberUploaded + libtorrentUploaded < total]
        const counters = JSON.stringify({ bitfiberUploaded, libtorrentUploaded, total })
        expect(uploaders.filter(Boolean).length, counters).toBeGreaterThan(1)
      }).pipe(Effect.provide(bitfiberServices)), 120_000)
  })
})
