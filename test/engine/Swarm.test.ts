import { MemoryStorage, Session, SessionConfig, type Torrent, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, type Scope } from "effect"
import { runUnderTestClock } from "./fixtures.js"
import * as Path from "node:path"

const test = TestTorrent.make({
  files: [
    { path: "s/one.bin", length: 200_000 },
    { path: "s/two.bin", length: 333_333 }
  ],
  pieceLength: 16 * 1024,
  name: "s"
})
const info = test.metainfo.info
const directory = "/data"

/** A bitfiber peer on its own simulated host with its own in-memory disk. */
interface Peer {
  readonly session: Session.SessionService
  readonly torrent: Torrent.Torrent
  readonly content: Effect.Effect<Uint8Array>
}

const peer = (
  switchboard: MemoryNetwork.Switchboard,
  host: string,
  options: { readonly seed: boolean; readonly peers?: ReadonlyArray<{ host: string; port: number }> }
): Effect.Effect<Peer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const services = Layer.mergeAll(MemoryStorage.layer, TrackerClient.layer()).pipe(
      Layer.provideMerge(MemoryNetwork.layer(switchboard, { host }))
    )
    const context = yield* Layer.build(services)
    return yield* Effect.gen(function* () {
      const disk = yield* MemoryStorage.MemoryDisk
      if (options.seed) {
        for (const file of info.files) {
          yield* disk.put(Path.join(directory, ...file.path), test.content.subarray(file.offset, file.offset + file.length))
        }
      }
      const session = yield* Session.make(yield* SessionConfig.make({ port: 6881 }))
      const torrent = yield* session.add({ torrent: test.torrent, directory, ...(options.peers ? { peers: options.peers } : {}) })
      const content = Effect.gen(function* () {
        const out = new Uint8Array(info.totalLength)
        for (const file of info.files) {
          const bytes = yield* disk.file(Path.join(directory, ...file.path))
          out.set(Option.getOrElse(bytes, () => new Uint8Array(0)), file.offset)
        }
        return out
      })
      return { session, torrent, content }
    }).pipe(Effect.provide(context), Effect.orDie)
  })

/** Advances the TestClock until every effect is done (bounded). */
const completeAll = (torrents: ReadonlyArray<Torrent.Torrent>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Effect.all(torrents.map((t) => t.completed), { concurrency: "unbounded" }))
    return yield* runUnderTestClock(fiber, 300)
  })

const identical = (bytes: Uint8Array) => Buffer.from(bytes).equals(Buffer.from(test.content))

describe("bitfiber swarms on the in-memory network (TestClock)", () => {
  it.scoped("one bitfiber seeder serves four bitfiber leechers at once", () =>
    Effect.gen(function* () {
      const switchboard = yield* MemoryNetwork.make()
      const seeder = yield* peer(switchboard, "10.1.0.1", { seed: true })
      yield* completeAll([seeder.torrent])
      const seederAddress = { host: "10.1.0.1", port: seeder.session.port }
      const leechers = yield* Effect.forEach([2, 3, 4, 5], (n) =>
        peer(switchboard, `10.1.0.${n}`, { seed: false, peers: [seederAddress] }))
      yield* completeAll(leechers.map((l) => l.torrent))
      for (const leecher of leechers) expect(identical(yield* leecher.content)).toBe(true)
      expect((yield* seeder.torrent.progress).uploaded).toBeGreaterThanOrEqual(info.totalLength)
    }))

  it.scoped("a leecher becomes the seeder of the next peer after the first seeder leaves", () =>
    Effect.gen(function* () {
      const switchboard = yield* MemoryNetwork.make()
      const a = yield* peer(switchboard, "10.2.0.1", { seed: true })
      yield* completeAll([a.torrent])
      const b = yield* peer(switchboard, "10.2.0.2", { seed: false, peers: [{ host: "10.2.0.1", port: a.session.port }] })
      yield* completeAll([b.torrent])
      yield* a.session.remove(a.torrent.infoHash)
      const c = yield* peer(switchboard, "10.2.0.3", { seed: false, peers: [{ host: "10.2.0.2", port: b.session.port }] })
      yield* completeAll([c.torrent])
      expect(identical(yield* c.content)).toBe(true)
      expect((yield* b.torrent.progress).uploaded).toBeGreaterThanOrEqual(info.totalLength)
    }))
})
