import { MemoryStorage, PieceAssembler, Storage } from "@bitfiber/core"
import { FaultyStorage } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as NodePath from "node:path"
import { expectBytes, type Fixture, makeTorrent, shuffled } from "./fixtures.js"

const { blockSize } = PieceAssembler

/** 5 pieces of 64 KiB (4 blocks each) in one file; the last piece is 10_000 bytes (one short block). */
const fixture: Fixture = makeTorrent([{ length: 4 * 65_536 + 10_000, path: ["data.bin"] }], 65_536)

/** Feeds every block of piece `index` in a scrambled order, alternating between `peers`. */
const feed = (assembler: PieceAssembler.PieceAssembler, data: Uint8Array, peers: ReadonlyArray<string>) =>
  shuffled(Math.ceil(data.length / blockSize), 9).map((block, i) =>
    assembler.add(block * blockSize, data.subarray(block * blockSize, (block + 1) * blockSize), peers[i % peers.length]!)
  )

const completed = (results: ReadonlyArray<PieceAssembler.AddResult>): PieceAssembler.CompletePiece => {
  const last = results[results.length - 1]!
  if (last._tag !== "Complete") throw new Error(`expected the last block to complete the piece, got ${last._tag}`)
  return last.piece
}

/** The outcome of verifying (and writing) `piece` into a memory storage. */
const verified = (piece: PieceAssembler.CompletePiece) =>
  Effect.runSync(
    Effect.scoped(
      Effect.flatMap(Effect.flatMap(Storage.Storage, (storage) => storage.open(fixture.info, "/downloads")), (storage) =>
        PieceAssembler.verifyAndWrite(storage, piece))
    ).pipe(Effect.provide(MemoryStorage.layer))
  )

describe("PieceAssembler", () => {
  it("verifies a piece assembled from blocks in any order", () => {
    const assembler = PieceAssembler.PieceAssembler.make(fixture.info, 1)
    const results = feed(assembler, fixture.piece(1), ["a", "b"])
    expect(results.map((r) => r._tag)).toEqual(["Added", "Added", "Added", "Complete"])
    const piece = completed(results)
    expectBytes(piece.data, fixture.piece(1))
    expect(verified(piece)).toEqual({ _tag: "PieceVerified", index: 1 })
  })

  it("handles the short last piece and its short last block", () => {
    const last = fixture.info.pieceCount - 1
    const assembler = PieceAssembler.PieceAssembler.make(fixture.info, last)
    expect(assembler.blockCount).toBe(1)
    expect(assembler.add(0, new Uint8Array(blockSize), "a")._tag).toBe("Invalid")
    const piece = completed(feed(assembler, fixture.piece(last), ["a"]))
    expect(verified(piece)._tag).toBe("PieceVerified")
  })

  it("rejects a piece with a corrupt block, naming every contributing peer", () => {
    const assembler = PieceAssembler.PieceAssembler.make(fixture.info, 2)
    const corrupt = Uint8Array.from(fixture.piece(2))
    corrupt[3 * blockSize + 77]! ^= 0xff
    const piece = completed(feed(assembler, corrupt, ["a", "b", "c"]))
    const outcome = verified(piece)
    expect(outcome._tag).toBe("PieceRejected")
    expect(outcome._tag === "PieceRejected" && [...outcome.peers].sort()).toEqual(["a", "b", "c"])
  })

  it("ignores duplicate blocks: first copy wins, the sender is not a contributor", () => {
    const assembler = PieceAssembler.PieceAssembler.make(fixture.info, 0)
    const data = fixture.piece(0)
    expect(assembler.add(0, data.subarray(0, blockSize), "a")._tag).toBe("Added")
    expect(assembler.add(0, new Uint8Array(blockSize), "evil")._tag).toBe("Duplicate")
    expect(assembler.blocksReceived).toBe(1)
    for (const block of [1, 2]) assembler.add(block * blockSize, data.subarray(block * blockSize, (block + 1) * blockSize), "a")
    const result = assembler.add(3 * blockSize, data.subarray(3 * blockSize), "b")
    const piece = completed([result])
    expect(piece.peers).toEqual(["a", "b"])
    expect(verified(piece)._tag).toBe("PieceVerified")
    expect(assembler.add(blockSize, data.subarray(blockSize, 2 * blockSize), "c")._tag).toBe("Duplicate")
  })

  it("refuses blocks off the block grid or of the wrong length", () => {
    const assembler = PieceAssembler.PieceAssembler.make(fixture.info, 0)
    const block = new Uint8Array(blockSize)
    expect(assembler.add(1, block, "a")._tag).toBe("Invalid")
    expect(assembler.add(-blockSize, block, "a")._tag).toBe("Invalid")
    expect(assembler.add(4 * blockSize, block, "a")._tag).toBe("Invalid")
    expect(assembler.add(0, block.subarray(1), "a")._tag).toBe("Invalid")
    expect(assembler.add(0, new Uint8Array(blockSize + 1), "a")._tag).toBe("Invalid")
    expect(assembler.blocksReceived).toBe(0)
  })

  it.scoped("verifyAndWrite writes a verified piece and leaves the disk alone for a rejected one", () =>
    Effect.gen(function* () {
      const storage = yield* (yield* Storage.Storage).open(fixture.info, "/downloads")
      const disk = yield* MemoryStorage.MemoryDisk
      const bad = Uint8Array.from(fixture.piece(3))
      bad[0]! ^= 1
      const rejected = yield* PieceAssembler.verifyAndWrite(storage, { index: 3, data: bad, peers: ["x"] })
      expect(rejected).toEqual({ _tag: "PieceRejected", index: 3, peers: ["x"] })
      expect(yield* disk.paths).toEqual([])
      const verified = yield* PieceAssembler.verifyAndWrite(storage, { index: 3, data: fixture.piece(3), peers: ["y"] })
      expect(verified).toEqual({ _tag: "PieceVerified", index: 3 })
      expectBytes(yield* storage.read(3, 0, 65_536), fixture.piece(3))
      expect(Option.map(yield* disk.file(NodePath.join("/downloads", "t", "data.bin")), (b) => b.length)).toEqual(
        Option.some(4 * 65_536)
      )
    }).pipe(Effect.provide(MemoryStorage.layer)))

  it.scoped("verifyAndWrite surfaces a disk failure as a typed StorageError", () =>
    Effect.gen(function* () {
      const storage = yield* (yield* Storage.Storage).open(fixture.info, "/downloads")
      const error = yield* Effect.flip(PieceAssembler.verifyAndWrite(storage, { index: 0, data: fixture.piece(0), peers: [] }))
      expect(error.reason).toBe("NoSpace")
    }).pipe(Effect.provide(FaultyStorage.layer({ noSpaceAfterBytes: 0 })), Effect.provide(MemoryStorage.layer)))
})
