/**
 * Misbehaving seeders from ScriptedPeer's catalogue, each beside honest ones: the download
 * completes with identical bytes, and the bad peer is dropped or banned for the right reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { errorsOf, expectComplete, printSeedOnFailure, run, scriptedHost, small } from "./support/Scenario.js"

const BAD = scriptedHost(0)

printSeedOnFailure()

describe("a misbehaving seeder beside an honest one", () => {
  it.scoped("wrong info-hash in its handshake: dropped with HandshakeFailed(InfoHashMismatch)", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ wrongInfoHash: true }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)).toContainEqual(expect.objectContaining({ _tag: "HandshakeFailed", reason: "InfoHashMismatch" }))
    }))

  it.scoped("garbage bytes after the handshake: dropped with a ProtocolViolation", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ garbage: 4096, seed: 7 }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)).toContainEqual(expect.objectContaining({ _tag: "ProtocolViolation" }))
    }))

  it.scoped("a 4 GiB length prefix: dropped with MessageTooLarge before anything is allocated for it", () =>
    Effect.gen(function* () {
      const before = process.memoryUsage().arrayBuffers
      const outcome = yield* run({ scripted: [{ lengthPrefix: 0xffff_ffff }, {}] })
      const grown = process.memoryUsage().arrayBuffers - before
      expectComplete(outcome)
      const [error] = errorsOf(outcome, BAD)
      expect(error).toMatchObject({ _tag: "ProtocolViolation", reason: "Frame", cause: { reason: "MessageTooLarge", length: 0xffff_ffff } })
      // The whole run (torrent, disks, buffers) is a few MiB; a 4 GiB frame buffer would show.
      expect(grown).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scoped("a frame just over the limit is refused too; one at the limit would be buffered, not a reason to drop", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ lengthPrefix: 64 * 1024 + 1 }, {}], config: { maxMessageLength: 64 * 1024 } })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)[0]).toMatchObject({ _tag: "ProtocolViolation", cause: { reason: "MessageTooLarge", limit: 64 * 1024 } })
    }))

  it.scoped("a bitfield with spare bits set: dropped with ProtocolViolation(Bitfield)", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ badBitfield: "spareBits" }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)[0]).toMatchObject({ _tag: "ProtocolViolation", reason: "Bitfield" })
    }))

  it.scoped("a bitfield of the wrong length: dropped with ProtocolViolation(Bitfield)", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ badBitfield: "wrongLength" }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)[0]).toMatchObject({ _tag: "ProtocolViolation", reason: "Bitfield" })
    }))

  it.scoped("a have for a piece past the end: dropped with ProtocolViolation(HaveOutOfRange)", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ haveOutOfRange: true }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)[0]).toMatchObject({ _tag: "ProtocolViolation", reason: "HaveOutOfRange" })
    }))

  it.scoped("blocks nobody requested, full of garbage: never written, the download still exact", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ unrequestedBlocks: 200, seed: 3 }, {}] })
      expectComplete(outcome)
    }))

  it.scoped("one piece always corrupt: fetched from the honest seeder, and the honest one never banned for shared blame", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ corruptPiece: 2 }, {}, {}] })
      expectComplete(outcome)
      for (const honest of [scriptedHost(1), scriptedHost(2)]) {
        expect(errorsOf(outcome, honest).filter((error) => error._tag === "Dropped" && error.reason === "Banned")).toEqual([])
      }
    }))

  it.scoped("every block corrupt: banned (Dropped(Banned)) after repeated hash failures", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ corruptAll: true }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)).toContainEqual(expect.objectContaining({ _tag: "Dropped", reason: "Banned" }))
    }))

  it.scoped("a slow-loris seeder (one byte a second): its requests move to the honest seeder", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ slowLoris: "1 second" }, {}], limit: "5 minutes" })
      expectComplete(outcome)
    }))

  it.scoped("a seeder that chokes forever: the download comes from the others", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ chokeForever: true }, {}] })
      expectComplete(outcome)
    }))

  it.scoped("a seeder that disconnects after 3 blocks: ConnectionLost, and the blocks it owed are fetched elsewhere", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ disconnectAfterBlocks: 3 }, {}] })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD)).toContainEqual(expect.objectContaining({ _tag: "ConnectionLost" }))
    }))

  it.scoped("the only seeder disconnects every 5 blocks: reconnecting to it gets the whole torrent", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ disconnectAfterBlocks: 5 }], limit: "30 minutes" })
      expectComplete(outcome)
      expect(errorsOf(outcome, BAD).length).toBeGreaterThanOrEqual(Math.floor(small.metainfo.info.pieceCount / 5))
    }))

  it.scoped("a slow seeder (2 s per block) beside a fast engine seeder: done in fast-seeder time", () =>
    Effect.gen(function* () {
      const outcome = yield* run({ scripted: [{ serveDelay: "2 seconds" }], honest: 1 })
      expectComplete(outcome)
      // 24 blocks from the slow seeder alone would take 48 s.
      expect(outcome.elapsed).toBeLessThan(30_000)
    }))

  it.scoped("five different liars and one honest bitfiber seeder: complete, and every liar dropped", () =>
    Effect.gen(function* () {
      const liars = [
        { wrongInfoHash: true },
        { badBitfield: "spareBits" as const },
        { haveOutOfRange: true },
        { lengthPrefix: 0x7fff_ffff },
        { corruptAll: true }
      ]
      const outcome = yield* run({ scripted: liars, honest: 1 })
      expectComplete(outcome)
      for (let i = 0; i < liars.length; i++) {
        expect(errorsOf(outcome, scriptedHost(i)).length, `liar ${i} ${JSON.stringify(liars[i])}`).toBeGreaterThan(0)
      }
    }))

  it.scoped("only liars and no honest source: never complete, nothing wrong written, all of them dropped, no hang", () =>
    Effect.gen(function* () {
      const outcome = yield* run({
        scripted: [{ corruptAll: true }, { corruptAll: true, seed: 1 }, { garbage: 100 }],
        limit: "3 minutes",
        step: "5 seconds"
      })
      expect(outcome.completed).toBe(false)
      expect(outcome.progress.verifiedPieces).toBe(0)
      expect(outcome.piecesOnDisk).toBe(0)
      expect(errorsOf(outcome, scriptedHost(0))).toContainEqual(expect.objectContaining({ _tag: "Dropped", reason: "Banned" }))
      expect(errorsOf(outcome, scriptedHost(1))).toContainEqual(expect.objectContaining({ _tag: "Dropped", reason: "Banned" }))
      expect(errorsOf(outcome, scriptedHost(2))).toContainEqual(expect.objectContaining({ _tag: "ProtocolViolation" }))
    }))
})
