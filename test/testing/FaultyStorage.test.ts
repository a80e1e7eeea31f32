import { MemoryStorage, Storage } from "@bitfiber/core"
import { FaultyStorage, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"

const test = TestTorrent.make({ files: [{ path: "f.bin", length: 4 * 1024 }], pieceLength: 1024 })
const piece = (index: number) => TestTorrent.piece(test, index)

/** A faulty storage over a fresh memory disk, opened for the test torrent. */
const open = (faults: FaultyStorage.Faults) =>
  Effect.gen(function* () {
    const storage = yield* (yield* Storage.Storage).open(test.metainfo.info, "/d")
    return { storage, control: yield* FaultyStorage.Control, disk: yield* MemoryStorage.MemoryDisk }
  }).pipe(Effect.provide(FaultyStorage.layer(faults)), Effect.provide(MemoryStorage.layer))

describe("FaultyStorage", () => {
  it.scoped("fails the write that would pass the space limit with NoSpace, writing nothing of it", () =>
    Effect.gen(function* () {
      const { control, disk, storage } = yield* open({ noSpaceAfterBytes: 2500 })
      yield* storage.writePiece(0, piece(0))
      yield* storage.writePiece(1, piece(1))
      const error = yield* Effect.flip(storage.writePiece(2, piece(2)))
      expect(error).toMatchObject({ _tag: "StorageError", reason: "NoSpace", operation: "write" })
      expect(error.message).toMatch(/^no space left on device/)
      expect(Option.getOrThrow(yield* disk.file("/d/f.bin")).length).toBe(2048)
      expect(yield* control.stats).toEqual({ reads: 0, writes: 2, bytesWritten: 2048, flushes: 0, bytesWrittenAtLastFlush: 0, flushing: 0, crashed: false })
    }))

  it.scoped("fails reads or writes with EIO after the given count, until the faults are changed", () =>
    Effect.gen(function* () {
      const { control, storage } = yield* open({ failReadsAfter: 1, failWritesAfter: 1 })
      yield* storage.writePiece(0, piece(0))
      expect((yield* Effect.flip(storage.writePiece(1, piece(1)))).message).toMatch(/input\/output error writing .*\(EIO\)/)
      yield* storage.read(0, 0, 10)
      expect((yield* Effect.flip(storage.read(0, 0, 10))).reason).toBe("IO")
      yield* control.set({})
      yield* storage.writePiece(1, piece(1))
      expect(Buffer.compare(yield* storage.read(1, 0, 1024), piece(1))).toBe(0)
    }))

  it.scoped("a crash point leaves half of the piece on disk and fails everything afterwards", () =>
    Effect.gen(function* () {
      const { control, disk, storage } = yield* open({ crashAfterWrites: 1 })
      yield* storage.writePiece(0, piece(0))
      expect((yield* Effect.flip(storage.writePiece(1, piece(1)))).reason).toBe("IO")
      expect((yield* Effect.flip(storage.read(0, 0, 10))).reason).toBe("IO")
      expect((yield* Effect.flip(storage.flush)).reason).toBe("IO")
      const file = Option.getOrThrow(yield* disk.file("/d/f.bin"))
      expect(Buffer.compare(file.subarray(1024, 1536), piece(1).subarray(0, 512))).toBe(0)
      expect(file.subarray(1536, 2048).every((byte) => byte === 0)).toBe(true)
      expect((yield* control.stats).crashed).toBe(true)
    }))

  it.scoped("slow writes take their delay on the clock", () =>
    Effect.gen(function* () {
      const { storage } = yield* open({ writeDelay: "2 seconds" })
      const write = yield* Effect.fork(storage.writePiece(0, piece(0)))
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(write))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(write)
    }))
})
