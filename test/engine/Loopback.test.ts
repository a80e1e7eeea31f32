import { describe, expect, it } from "@effect/vitest"
import { TestTorrent } from "@bitfiber/core/testing"
import { Effect, Logger, LogLevel } from "effect"
import { liveServices, loopbackSession, readContent, tempDir, writeContent } from "./fixtures.js"

describe("bitfiber leecher <-> bitfiber seeder on loopback", () => {
  it.scopedLive("downloads a multi-file torrent with identical bytes", () =>
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

      const seeder = yield* loopbackSession()
      const seeding = yield* seeder.add({ torrent: test.torrent, directory: seedDir })
      yield* seeding.completed

      const leecher = yield* loopbackSession()
      const download = yield* leecher.add({
        torrent: test.torrent,
        directory: leechDir,
        peers: [{ host: "127.0.0.1", port: seeder.port }]
      })
      const started = Date.now()
      yield* download.completed.pipe(Effect.timeout("30 seconds"))
      console.log("download ms", Date.now() - started)
      const progress = yield* download.progress
      expect(progress.verifiedPieces).toBe(test.metainfo.info.pieceCount)
      const bytes = yield* readContent(test.metainfo, leechDir)
      expect(Buffer.from(bytes).equals(Buffer.from(test.content))).toBe(true)
    }).pipe(Effect.provide(liveServices), Logger.withMinimumLogLevel(LogLevel.Debug)))
})
