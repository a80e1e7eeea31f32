import { describe, expect, it } from "@effect/vitest"
import { TestTorrent } from "@bitfiber/core/testing"
import { Effect } from "effect"
import { Magnet } from "@bitfiber/core"
import { liveServices, loopbackSession, readContent, tempDir, writeContent } from "./fixtures.js"

describe("bitfiber leecher <-> bitfiber seeder on loopback", () => {
  for (const [name, seederEncryption, leecherEncryption] of [
    ["", "accept", "accept"],
    [", the leecher requiring an RC4 stream (MSE)", "accept", "require"],
    [", the seeder requiring an RC4 stream and the leecher preferring MSE", "require", "prefer"]
  ] as const) {
    it.scopedLive(`downloads a multi-file torrent with identical bytes${name}`, () =>
      Effect.gen(function* () {
        const test = TestTorrent.make({
          files: [
            { path: "album/one.bin", length: 700_000 },
            { path: "album/empty.txt", length: 0 },
            { path: "album/deep/two.bin", length: 1_234_567 }
          ],
          pieceLength: 64 * 1024,
          name: "album"
        })
        const seedDir = yield* tempDir
        const leechDir = yield* tempDir
        yield* writeContent(test.metainfo, test.content, seedDir)

        const seeder = yield* loopbackSession({ encryption: seederEncryption })
        const seeding = yield* seeder.add({ torrent: test.torrent, directory: seedDir })
        yield* seeding.completed

        const leecher = yield* loopbackSession({ encryption: leecherEncryption })
        const download = yield* leecher.add({
          torrent: test.torrent,
          directory: leechDir,
          peers: [{ host: "127.0.0.1", port: seeder.port }]
        })
        yield* download.completed.pipe(Effect.timeout("30 seconds"))
        const progress = yield* download.progress
        expect(progress.verifiedPieces).toBe(test.metainfo.info.pieceCount)
        const bytes = yield* readContent(test.metainfo, leechDir)
        expect(Buffer.from(bytes).equals(Buffer.from(test.content))).toBe(true)
      }).pipe(Effect.provide(liveServices)))
  }

  for (const [name, encryption] of [["", "accept"], [", both requiring RC4 streams (MSE) for the metadata too", "require"]] as const) {
    it.scopedLive(`starts from a magnet link: fetches the metadata (BEP 9) from the seeder, then downloads${name}`, () =>
      Effect.gen(function* () {
        const test = TestTorrent.make({
          files: [{ path: "m/x.bin", length: 400_000 }, { path: "m/y.bin", length: 90_000 }],
          pieceLength: 32 * 1024,
          name: "m"
        })
        const seedDir = yield* tempDir
        const leechDir = yield* tempDir
        yield* writeContent(test.metainfo, test.content, seedDir)
        const seeder = yield* loopbackSession({ encryption })
        yield* (yield* seeder.add({ torrent: test.torrent, directory: seedDir })).completed
        const leecher = yield* loopbackSession({ encryption })
        const magnet = yield* Magnet.parse(
          `magnet:?xt=urn:btih:${Buffer.from(test.metainfo.infoHash).toString("hex")}&dn=m&x.pe=127.0.0.1:${seeder.port}`
        )
        const download = yield* leecher.addMagnet(magnet, { directory: leechDir, metadataTimeout: "20 seconds" })
        expect(download.metainfo.info.totalLength).toBe(test.metainfo.info.totalLength)
        yield* download.completed.pipe(Effect.timeout("30 seconds"))
        const bytes = yield* readContent(test.metainfo, leechDir)
        expect(Buffer.from(bytes).equals(Buffer.from(test.content))).toBe(true)
      }).pipe(Effect.provide(liveServices)))
  }
})
