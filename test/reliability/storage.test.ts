/**
 * Disk faults through FaultyStorage: a full disk or an I/O error fails the torrent with a typed
 * StorageError (never a crash, never a false "complete"); slow disks only slow it down; and a
 * process that dies between two writes leaves a disk a new session resumes from.
 */
import { type Torrent } from "@bitfiber/core"
import { MemoryNetwork, Seed, Simulation, Swarm } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { bytesVerifiedOnDisk, piecesVerifiedOnDisk, printSeedOnFailure, seedMathRandom, small, suiteSeed } from "./support/Scenario.js"

const SEEDER = "10.0.6.1"
const SECOND_SEEDER = "10.0.6.2"
const LEECHER = "10.0.6.3"
const PIECE = small.metainfo.info.pieceLength

/** A seeded switchboard with an honest bitfiber seeder on it. */
const swarmWithSeeder = Effect.gen(function* () {
  const seed = suiteSeed()
  yield* seedMathRandom(seed)
  const board = yield* MemoryNetwork.make({ seed })
  const seeder = yield* Swarm.seeder(yield* Swarm.host(board, SEEDER), small)
  return { board, seeder, hint: Seed.replayHint(seed) }
})

/** Waits (in virtual time) for `torrent.completed`, returning how it ended. */
const outcome = (torrent: Torrent.Torrent) =>
  Simulation.run(Effect.either(torrent.completed), { limit: "5 minutes" })

printSeedOnFailure()

describe("disk faults", () => {
  it.scoped("the disk fills up (ENOSPC after 100 kB): the torrent fails with Storage/NoSpace, no false complete", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      const host = yield* Swarm.host(board, LEECHER, { faults: { noSpaceAfterBytes: 100_000 } })
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
      const ended = yield* outcome(leecher.torrent)
      expect(Either.isLeft(ended), hint).toBe(true)
      const error = Either.getLeft(ended).pipe(Option.getOrThrow)
      expect(error).toMatchObject({ _tag: "TorrentError", reason: "Storage", cause: { _tag: "StorageError", reason: "NoSpace" } })
      expect(error.message).toMatch(/no space left on device/)
      const progress = yield* leecher.torrent.progress
      expect(progress.state).toBe("failed")
      expect(progress.complete).toBe(false)
      // What it claims verified is on disk, nothing more: at most the 6 pieces that fit.
      const onDisk = yield* piecesVerifiedOnDisk(host, small)
      expect(onDisk).toBe(Math.floor(100_000 / PIECE))
      expect(progress.verifiedPieces).toBeLessThanOrEqual(onDisk)
    }))

  it.scoped("flushes every flushEveryBytes while downloading; completes only once everything written is flushed", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      // Slow flushes: one started in the background is still running when the last piece is verified.
      const host = yield* Swarm.host(board, LEECHER, { faults: { flushDelay: "300 millis" } })
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false, flushEveryBytes: 64 * 1024 })
      const ended = yield* outcome(leecher.torrent)
      expect(Either.isRight(ended), hint).toBe(true)
      // Read as the torrent completes: the virtual clock stopped with it.
      const stats = yield* (yield* Option.match(host.faults, { onNone: () => Effect.die("no faults"), onSome: Effect.succeed })).stats
      const total = small.metainfo.info.totalLength
      expect(stats, hint).toMatchObject({ flushing: 0, bytesWritten: total, bytesWrittenAtLastFlush: total })
      // Background flushes (not more than one per 64 KiB verified), then the last one.
      expect(stats.flushes, hint).toBeGreaterThanOrEqual(2)
      expect(stats.flushes, hint).toBeLessThanOrEqual(Math.ceil(total / (64 * 1024)) + 1)
    }))

  it.scoped("a write fails with EIO: the torrent fails with Storage/IO naming the errno", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      const host = yield* Swarm.host(board, LEECHER, { faults: { failWritesAfter: 3 } })
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
      const error = Either.getLeft(yield* outcome(leecher.torrent)).pipe(Option.getOrThrow)
      expect(error, hint).toMatchObject({ reason: "Storage", cause: { reason: "IO", operation: "write" } })
      expect(error.message).toMatch(/EIO/)
      expect(yield* piecesVerifiedOnDisk(host, small)).toBe(3)
    }))

  it.scoped("a seeder's disk starts failing reads (EIO): the seeder's torrent fails, the leecher completes from another", () =>
    Effect.gen(function* () {
      const seed = suiteSeed()
      yield* seedMathRandom(seed)
      const board = yield* MemoryNetwork.make({ seed })
      const failingHost = yield* Swarm.host(board, SEEDER, { faults: {} })
      const failing = yield* Swarm.seeder(failingHost, small)
      yield* Simulation.run(failing.torrent.completed)
      // Healthy through the resume check, then every read fails.
      yield* Option.getOrThrow(failingHost.faults).set({ failReadsAfter: 0 })
      const host = yield* Swarm.host(board, LEECHER)
      const leecher = yield* Swarm.leecher(host, small, [failing.address], { listen: false })
      yield* Simulation.run(Effect.sleep("5 seconds"))
      const failed = yield* failing.torrent.progress
      expect(failed.state, Seed.replayHint(seed)).toBe("failed")
      expect(failed.error).toMatch(/input\/output error reading .* \(EIO\)/)
      // Another seeder turns up: the leecher completes from it.
      const healthy = yield* Swarm.seeder(yield* Swarm.host(board, SECOND_SEEDER), small)
      yield* leecher.torrent.addPeers([healthy.address])
      expect(Either.isRight(yield* outcome(leecher.torrent)), Seed.replayHint(seed)).toBe(true)
      expect(yield* Swarm.hasContent(host, small)).toBe(true)
      expect((yield* leecher.torrent.peerErrors).some((error) => error.address.startsWith(`${SEEDER}:`))).toBe(true)
    }))

  it.scoped("a slow disk (300 ms per piece) with a small write budget: slower, complete and exact", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      const host = yield* Swarm.host(board, LEECHER, { faults: { writeDelay: "300 millis" } })
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false, maxPendingWriteBytes: 2 * PIECE })
      const ended = yield* outcome(leecher.torrent)
      expect(Either.isRight(ended), hint).toBe(true)
      expect(yield* Swarm.hasContent(host, small)).toBe(true)
      const stats = yield* Option.getOrThrow(host.faults).stats
      expect(stats.writes).toBe(small.metainfo.info.pieceCount)
    }))

  it.scoped("the process dies during the 11th write (a torn piece): a new session on the same disk resumes from 10 pieces", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      const files = yield* Swarm.disk
      // The first life: writes 10 pieces, then dies halfway through the 11th.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const host = yield* Swarm.host(board, LEECHER, { disk: files, faults: { crashAfterWrites: 10 } })
          const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
          const error = Either.getLeft(yield* outcome(leecher.torrent)).pipe(Option.getOrThrow)
          expect(error, hint).toMatchObject({ reason: "Storage", cause: { reason: "IO" } })
          expect((yield* Option.getOrThrow(host.faults).stats).crashed).toBe(true)
        })
      )
      // The second life, on the same files.
      const host = yield* Swarm.host(board, LEECHER, { disk: files })
      expect(yield* piecesVerifiedOnDisk(host, small)).toBe(10)
      const missing = small.metainfo.info.totalLength - (yield* bytesVerifiedOnDisk(host, small))
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
      const ended = yield* outcome(leecher.torrent)
      expect(Either.isRight(ended), hint).toBe(true)
      expect(yield* Swarm.hasContent(host, small)).toBe(true)
      const progress = yield* leecher.torrent.progress
      // Only what was missing was downloaded again.
      expect(progress.downloaded).toBe(missing)
    }))

  it.scoped("the disk fills up, the user frees space, and a new session completes from what was written", () =>
    Effect.gen(function* () {
      const { board, hint, seeder } = yield* swarmWithSeeder
      const files = yield* Swarm.disk
      yield* Effect.scoped(
        Effect.gen(function* () {
          const host = yield* Swarm.host(board, LEECHER, { disk: files, faults: { noSpaceAfterBytes: 200_000 } })
          const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
          expect(Either.isLeft(yield* outcome(leecher.torrent)), hint).toBe(true)
        })
      )
      const host = yield* Swarm.host(board, LEECHER, { disk: files })
      const leecher = yield* Swarm.leecher(host, small, [seeder.address], { listen: false })
      expect(Either.isRight(yield* outcome(leecher.torrent)), hint).toBe(true)
      expect(yield* Swarm.hasContent(host, small)).toBe(true)
    }))
})
