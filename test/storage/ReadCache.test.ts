import { ReadCache, type Storage } from "@bitfiber/core"
import { TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberSet } from "effect"

const test = TestTorrent.make({ files: [{ path: "f.bin", length: 10 * 32 * 1024 }], pieceLength: 32 * 1024 })

/** A storage over `test.content` that counts its reads. */
const countingStorage = () => {
  const calls = { reads: 0 }
  const storage: Storage.TorrentStorage = {
    info: test.metainfo.info,
    directory: "/",
    read: (index, begin, length, into) =>
      Effect.sync(() => {
        calls.reads++
        const start = index * test.metainfo.info.pieceLength + begin
        const bytes = test.content.subarray(start, start + length)
        if (into === undefined) return new Uint8Array(bytes)
        into.set(bytes)
        return into.subarray(0, length)
      }),
    readPieces: () => Effect.die("unused"),
    writePiece: () => Effect.void,
    fileLength: () => Effect.die("unused"),
    flush: Effect.void,
    writeVerified: () => Effect.die("unused")
  }
  return { storage, calls }
}

describe("ReadCache", () => {
  it.effect("serves every block of a piece from one read of the whole piece", () =>
    Effect.gen(function* () {
      const { calls, storage } = countingStorage()
      const { read } = ReadCache.make(storage, 1024 * 1024)
      const blocks = yield* Effect.all([read(3, 0, 16384), read(3, 16384, 16384), read(3, 0, 16384)], {
        concurrency: "unbounded"
      })
      expect(calls.reads).toBe(1)
      const base = 3 * 32 * 1024
      expect(Buffer.from(blocks[1]).equals(Buffer.from(test.content.subarray(base + 16384, base + 32768)))).toBe(true)
    }))

  it.effect("evicts the least recently used piece beyond its budget", () =>
    Effect.gen(function* () {
      const { calls, storage } = countingStorage()
      const { read } = ReadCache.make(storage, 2 * 32 * 1024)
      yield* read(0, 0, 16384)
      yield* read(1, 0, 16384)
      yield* read(0, 0, 16384) // 0 is now the most recent
      yield* read(2, 0, 16384) // evicts 1
      expect(calls.reads).toBe(3)
      yield* read(0, 0, 16384)
      expect(calls.reads).toBe(3)
      yield* read(1, 0, 16384)
      expect(calls.reads).toBe(4)
    }))

  const PIECE = 32 * 1024
  const expected = (index: number, begin: number, length: number) =>
    Buffer.from(test.content.subarray(index * PIECE + begin, index * PIECE + begin + length))

  it.effect("reuses an evicted piece's buffer only once every block lent from it is given back", () =>
    Effect.gen(function* () {
      const { storage } = countingStorage()
      const cache = ReadCache.make(storage, 2 * PIECE)
      const lent = yield* cache.read(0, 0, 16384)
      const again = cache.cached(0, 16384, 16384)!
      yield* cache.read(1, 0, 16384)
      yield* cache.read(2, 0, 16384) // evicts 0, whose two blocks are still out
      yield* cache.read(3, 0, 16384) // evicts 1, whose block is out too
      yield* cache.read(4, 0, 16384)
      // Nothing read since overwrote a block that is still out.
      expect(Buffer.from(lent).equals(expected(0, 0, 16384))).toBe(true)
      expect(Buffer.from(again).equals(expected(0, 16384, 16384))).toBe(true)
      cache.release(lent)
      yield* cache.read(5, 0, 16384)
      expect(Buffer.from(again).equals(expected(0, 16384, 16384))).toBe(true)
      cache.release(again)
      // Piece 0's buffer is free now: the next piece read goes into it.
      yield* cache.read(6, 0, 16384)
      yield* cache.read(7, 0, 16384)
      const reused = cache.cached(7, 0, 16384)!
      expect(reused.buffer === lent.buffer || cache.cached(6, 0, 16384)!.buffer === lent.buffer).toBe(true)
      expect(Buffer.from(reused).equals(expected(7, 0, 16384))).toBe(true)
    }))

  it.scoped("prefetch reads a piece in the background, once, and the next request finds it in memory", () =>
    Effect.gen(function* () {
      const { calls, storage } = countingStorage()
      const run = yield* FiberSet.makeRuntime<never>()
      const cache = ReadCache.make(storage, 4 * PIECE, run)
      cache.prefetch(2)
      cache.prefetch(2)
      const block = yield* cache.read(2, 16384, 16384) // waits for the prefetch's read, not a second one
      expect(Buffer.from(block).equals(expected(2, 16384, 16384))).toBe(true)
      expect(cache.cached(2, 0, 16384)).toBeDefined()
      cache.prefetch(2) // in memory: nothing to do
      expect(calls.reads).toBe(1)
    }))

  it.effect("gives a block at once only once its piece is in memory", () =>
    Effect.gen(function* () {
      const { calls, storage } = countingStorage()
      const cache = ReadCache.make(storage, 2 * 32 * 1024)
      expect(cache.cached(4, 0, 16384)).toBeUndefined()
      yield* cache.read(4, 0, 16384)
      const block = cache.cached(4, 16384, 16384)
      const base = 4 * 32 * 1024
      expect(block !== undefined && Buffer.from(block).equals(Buffer.from(test.content.subarray(base + 16384, base + 32768)))).toBe(true)
      yield* cache.read(5, 0, 16384)
      expect(cache.cached(4, 0, 16384)).toBeDefined() // a use: 4 is now the most recent
      yield* cache.read(6, 0, 16384) // evicts 5
      expect(cache.cached(5, 0, 16384)).toBeUndefined()
      expect(cache.cached(4, 0, 16384)).toBeDefined()
      expect(calls.reads).toBe(3)
    }))
})
