import { MemoryStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { runUnderTestClock } from "./fixtures.js"
import * as Path from "node:path"

const test = TestTorrent.make({
  files: [
    { path: "set/a.bin", length: 300_000 },
    { path: "set/b.bin", length: 0 },
    { path: "set/c/d.bin", length: 500_000 }
  ],
  pieceLength: 32 * 1024,
  name: "set"
})
const info = test.metainfo.info
const directory = "/downloads"

/** Downloads `test` over the in-memory network from seeders listening with `behaviours`. */
const downloadFrom = (behaviours: ReadonlyArray<ScriptedPeer.Behaviour>, config: SessionConfig.SessionConfigInput = {}) =>
  Effect.gen(function* () {
    const switchboard = yield* MemoryNetwork.make()
    const seeders = yield* Effect.forEach(behaviours, (behaviour, i) =>
      ScriptedPeer.listen(
        { host: `10.0.0.${i + 1}`, port: 6881 },
        ScriptedPeer.seed({ info, infoHash: test.metainfo.infoHash, content: test.content, behaviour })
      ).pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: `10.0.0.${i + 1}` })))
    )
    const services = Layer.mergeAll(MemoryStorage.layer, TrackerClient.layer()).pipe(
      Layer.provideMerge(MemoryNetwork.layer(switchboard, { host: "10.0.0.100" }))
    )
    return yield* Effect.gen(function* () {
      const session = yield* Session.make(yield* SessionConfig.make({ listen: false, ...config }))
      const torrent = yield* session.add({
        torrent: test.torrent,
        directory,
        peers: seeders.map((seeder) => seeder.address)
      })
      const done = yield* Effect.fork(torrent.completed)
      yield* runUnderTestClock(done, 600)
      const disk = yield* MemoryStorage.MemoryDisk
      const content = new Uint8Array(info.totalLength)
      for (const file of info.files) {
        const bytes = yield* disk.file(Path.join(directory, ...file.path))
        expect(Option.isSome(bytes)).toBe(true)
        content.set(Option.getOrThrow(bytes), file.offset)
      }
      return { content, progress: yield* torrent.progress }
    }).pipe(Effect.provide(services))
  })

describe("download over the in-memory network (TestClock)", () => {
  it.scoped("completes from one honest seeder with identical bytes", () =>
    Effect.gen(function* () {
      const { content, progress } = yield* downloadFrom([{}])
      expect(Buffer.from(content).equals(Buffer.from(test.content))).toBe(true)
      expect(progress.verifiedPieces).toBe(info.pieceCount)
    }))

  it.scoped("preferring encryption, redials plain a seeder that does not speak MSE, and completes", () =>
    Effect.gen(function* () {
      const { content, progress } = yield* downloadFrom([{}], { encryption: "prefer" })
      expect(Buffer.from(content).equals(Buffer.from(test.content))).toBe(true)
      expect(progress.verifiedPieces).toBe(info.pieceCount)
    }))

  it.scoped("completes when a seeder disconnects mid-piece and another sends a corrupt piece", () =>
    Effect.gen(function* () {
      const { content } = yield* downloadFrom([{ disconnectAfterBlocks: 3 }, { corruptPiece: 2 }, {}])
      expect(Buffer.from(content).equals(Buffer.from(test.content))).toBe(true)
    }))

  it.scoped("completes from a seeder that corrupts a piece when an honest one exists", () =>
    Effect.gen(function* () {
      const { content } = yield* downloadFrom([{ corruptPiece: 0 }, { corruptPiece: 5 }, {}])
      expect(Buffer.from(content).equals(Buffer.from(test.content))).toBe(true)
    }))
})
