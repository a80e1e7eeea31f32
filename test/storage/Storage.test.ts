import { Storage } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option } from "effect"
import * as NodePath from "node:path"
import { implementations, TestDisk } from "./disks.js"
import { expectBytes, type Fixture, makeTorrent, mixed, shuffled } from "./fixtures.js"

const pathOf = (directory: string, fixture: Fixture, fileIndex: number) =>
  NodePath.join(directory, ...fixture.info.files[fileIndex]!.path)

const writeAll = (storage: Storage.TorrentStorage, fixture: Fixture, seed: number) =>
  Effect.forEach(shuffled(fixture.info.pieceCount, seed), (index) => storage.writePiece(index, fixture.piece(index)), {
    discard: true
  })

for (const { layer, name } of implementations) {
  describe(name, () => {
    it.layer(layer)((it) => {
      it.scoped("writes pieces in any order; the files are byte-identical to the torrent", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const disk = yield* TestDisk
          const directory = yield* disk.directory
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          yield* writeAll(storage, fixture, 3)
          yield* storage.flush
          for (const [index, file] of fixture.info.files.entries()) {
            const stored = yield* disk.file(pathOf(directory, fixture, index))
            if (file.padding) expect(stored, "padding files are never created").toEqual(Option.none())
            else expectBytes(Option.getOrThrow(stored), fixture.fileBytes(index))
          }
        }))

      it.scoped("writes a piece only if it matches its hash, from shared and from ordinary buffers", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const disk = yield* TestDisk
          const directory = yield* disk.directory
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          const shared = (bytes: Uint8Array) => {
            const copy = new Uint8Array(new SharedArrayBuffer(bytes.length))
            copy.set(bytes)
            return copy
          }
          for (let index = 0; index < fixture.info.pieceCount; index++) {
            const corrupt = shared(fixture.piece(index))
            corrupt[corrupt.length - 1]! ^= 1
            expect(yield* storage.writeVerified(index, corrupt)).toBe(false)
            expect(yield* storage.writeVerified(index, Uint8Array.from(corrupt))).toBe(false)
          }
          // A piece that does not match creates no file.
          for (const fileIndex of fixture.info.files.keys()) {
            expect(yield* disk.file(pathOf(directory, fixture, fileIndex))).toEqual(Option.none())
          }
          for (let index = 0; index < fixture.info.pieceCount; index++) {
            const data = index % 2 === 0 ? shared(fixture.piece(index)) : fixture.piece(index)
            expect(yield* storage.writeVerified(index, data)).toBe(true)
          }
          for (const [index, file] of fixture.info.files.entries()) {
            if (!file.padding) expectBytes(Option.getOrThrow(yield* disk.file(pathOf(directory, fixture, index))), fixture.fileBytes(index))
          }
        }))

      it.scoped("reads back any range, padding as zeros, across file boundaries", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const storage = yield* (yield* Storage.Storage).open(fixture.info, yield* (yield* TestDisk).directory)
          yield* writeAll(storage, fixture, 5)
          const { pieceLength } = fixture.info
          // [piece, begin, length]: within a file, across 3 files with a zero-length one, over padding, the short last piece.
          const ranges = [[0, 0, 50], [0, 50, 16_384], [1, 0, 16_384], [1, 7_000, 20_000], [3, 16_384, 12_804]] as const
          for (const [index, begin, length] of ranges) {
            const start = index * pieceLength + begin
            expectBytes(yield* storage.read(index, begin, length), fixture.content.subarray(start, start + length))
          }
        }))

      it.scoped("reads runs of whole pieces, padding as zeros, and refuses runs outside the torrent", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const storage = yield* (yield* Storage.Storage).open(fixture.info, yield* (yield* TestDisk).directory)
          yield* writeAll(storage, fixture, 5)
          const { pieceCount, pieceLength } = fixture.info
          // [first, count]: one piece, a run over files and padding, a run ending with the short last piece.
          for (const [first, count] of [[0, 1], [0, 3], [1, pieceCount - 1]] as const) {
            const into = new Uint8Array(count * pieceLength)
            const data = yield* storage.readPieces(first, count, into)
            const start = first * pieceLength
            expectBytes(data, fixture.content.subarray(start, Math.min(fixture.info.totalLength, start + count * pieceLength)))
          }
          for (const [first, count] of [[0, 0], [-1, 1], [pieceCount - 1, 2], [0.5, 1]] as const) {
            expect((yield* Effect.flip(storage.readPieces(first, count))).reason).toBe("OutOfRange")
          }
        }))

      it.scoped("creates each zero-length file with the piece at its offset", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const disk = yield* TestDisk
          const directory = yield* disk.directory
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          const last = fixture.info.pieceCount - 1
          yield* storage.writePiece(0, fixture.piece(0))
          expect(yield* disk.file(pathOf(directory, fixture, 1))).toEqual(Option.some(new Uint8Array(0)))
          expect(yield* disk.file(pathOf(directory, fixture, 9))).toEqual(Option.none())
          expect(yield* storage.fileLength(9)).toEqual(Option.none())
          yield* storage.writePiece(last, fixture.piece(last))
          expect(yield* disk.file(pathOf(directory, fixture, 9))).toEqual(Option.some(new Uint8Array(0)))
          expect(yield* storage.fileLength(9)).toEqual(Option.some(0))
        }))

      it.scoped("fails NotFound reading a piece that was never written", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const storage = yield* (yield* Storage.Storage).open(fixture.info, yield* (yield* TestDisk).directory)
          const error = yield* Effect.flip(storage.read(2, 0, 100))
          expect(error.reason).toBe("NotFound")
          expect(error.path).toBe(NodePath.join(storage.directory, "t", "d1", "f7.bin"))
        }))

      it.scoped("fails Truncated reading past the end of a partly written file", () =>
        Effect.gen(function* () {
          // One file over two pieces: writing piece 0 makes it 32 bytes long.
          const fixture = makeTorrent([{ length: 48 }], 32)
          const storage = yield* (yield* Storage.Storage).open(fixture.info, yield* (yield* TestDisk).directory)
          yield* storage.writePiece(0, fixture.piece(0))
          expect(yield* storage.fileLength(0)).toEqual(Option.some(32))
          expect((yield* Effect.flip(storage.read(1, 0, 16))).reason).toBe("Truncated")
        }))

      it.scoped("rejects ranges and pieces outside the torrent", () =>
        Effect.gen(function* () {
          const fixture = mixed()
          const storage = yield* (yield* Storage.Storage).open(fixture.info, yield* (yield* TestDisk).directory)
          const count = fixture.info.pieceCount
          for (const attempt of [
            storage.read(count, 0, 1),
            storage.read(0, fixture.info.pieceLength - 1, 2),
            storage.writePiece(0, fixture.piece(1).subarray(1)),
            storage.writePiece(count, fixture.piece(0)),
            storage.fileLength(fixture.info.files.length)
          ]) {
            expect((yield* Effect.flip(attempt)).reason).toBe("OutOfRange")
          }
        }))

      it.scoped("refuses a torrent whose paths escape the directory or collide", () =>
        Effect.gen(function* () {
          const directory = yield* (yield* TestDisk).directory
          const service = yield* Storage.Storage
          const escaping = makeTorrent([{ length: 10 }, { length: 10, path: ["..", "..", "escaped"] }], 16)
          const colliding = makeTorrent([{ length: 10, path: ["same"] }, { length: 10, path: ["same"] }], 16)
          for (const fixture of [escaping, colliding]) {
            const error = yield* Effect.flip(service.open(fixture.info, directory))
            expect(error.reason).toBe("UnsafePath")
          }
        }))
    })
  })
}

describe("StorageError", () => {
  it("maps errno codes to reasons", () => {
    const reasons = Object.fromEntries(
      ["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "ENOENT", "EISDIR", "ENOTDIR", "EMFILE", "EIO", "EWHATEVER"].map((
        code
      ) => [code, Storage.fromSystemError({ code }, "write", "/x").reason])
    )
    expect(reasons).toEqual({
      ENOSPC: "NoSpace",
      EDQUOT: "NoSpace",
      EACCES: "Permission",
      EPERM: "Permission",
      EROFS: "Permission",
      ENOENT: "NotFound",
      EISDIR: "NotAFile",
      ENOTDIR: "NotAFile",
      EMFILE: "TooManyFiles",
      EIO: "IO",
      EWHATEVER: "IO"
    })
  })

  it("says what went wrong, doing what, where", () => {
    const cause = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
    const error = Storage.fromSystemError(cause, "write", "/downloads/t/a.bin")
    expect(error.message).toBe("no space left on device writing /downloads/t/a.bin")
    expect(error.cause).toBe(cause)
    expect(Storage.fromSystemError({ code: "EACCES" }, "open", "/d/f").message).toBe("permission denied opening /d/f")
    expect(Storage.fromSystemError({ code: "EBUSY" }, "sync", "/d/f").message).toBe("input/output error syncing /d/f (EBUSY)")
  })
})

describe("Storage.flush", () => {
  it.effect("syncs a file whose write was still in progress when an earlier flush ran", () =>
    Effect.gen(function* () {
      const fixture = makeTorrent([{ length: 50_000 }], 16_384)
      const gate = yield* Deferred.make<void>()
      const synced: Array<string> = []
      const access: Storage.FileAccess = {
        read: () => Effect.void,
        writePiece: () => Effect.as(Deferred.await(gate), true),
        create: () => Effect.void,
        length: () => Effect.succeed(Option.none()),
        sync: (file) => Effect.sync(() => void synced.push(file.path))
      }
      const storage = yield* Storage.make(fixture.info, "/downloads", access)
      const writing = yield* Effect.fork(storage.writePiece(0, fixture.piece(0)))
      yield* Effect.yieldNow()
      // A flush while the write is in flight has nothing written to make durable yet...
      yield* storage.flush
      expect(synced).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(writing)
      // ...and the next one syncs the file once the bytes are in it.
      yield* storage.flush
      expect(synced).toEqual([NodePath.join("/downloads", ...fixture.info.files[0]!.path)])
      yield* storage.flush
      expect(synced).toHaveLength(1)
    }))
})
