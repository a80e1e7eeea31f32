import { Resume, Storage } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as NodePath from "node:path"
import { implementations, TestDisk } from "./disks.js"
import { type Fixture, makeTorrent, mixed } from "./fixtures.js"

/** Lays the torrent's files down as a previous session (or another client) would have. */
const putFiles = (directory: string, fixture: Fixture, change: (index: number, bytes: Uint8Array) => Uint8Array | undefined) =>
  Effect.gen(function* () {
    const disk = yield* TestDisk
    for (const [index, file] of fixture.info.files.entries()) {
      if (file.padding) continue
      const bytes = change(index, Uint8Array.from(fixture.fileBytes(index)))
      if (bytes !== undefined) yield* disk.put(NodePath.join(directory, ...file.path), bytes)
    }
  })

/** The pieces that include bytes of one of `files`, computed from offsets (independently of FileLayout). */
const piecesTouching = (fixture: Fixture, files: ReadonlyArray<number>, from = 0): Set<number> => {
  const { info } = fixture
  const result = new Set<number>()
  for (let piece = 0; piece < info.pieceCount; piece++) {
    const start = piece * info.pieceLength
    const end = Math.min(info.totalLength, start + info.pieceLength)
    for (const index of files) {
      const file = info.files[index]!
      if (file.length > 0 && start < file.offset + file.length && file.offset + from < end) result.add(piece)
    }
  }
  return result
}

/** Counts the pieces a check reads (a run of pieces counts each). */
const countingReads = (storage: Storage.TorrentStorage) => {
  const counter = { reads: 0 }
  const counted: Storage.TorrentStorage = {
    ...storage,
    read: (index, begin, length, into) => Effect.zipRight(Effect.sync(() => counter.reads++), storage.read(index, begin, length, into)),
    readPieces: (first, count, into) =>
      Effect.zipRight(Effect.sync(() => (counter.reads += count)), storage.readPieces(first, count, into))
  }
  return [counted, counter] as const
}

const allPieces = (fixture: Fixture) => Array.from({ length: fixture.info.pieceCount }, (_, i) => i)

for (const { layer, name } of implementations) {
  describe(`Resume over ${name}`, () => {
    it.layer(layer)((it) => {
      const setUp = (change: (index: number, bytes: Uint8Array) => Uint8Array | undefined) =>
        Effect.gen(function* () {
          const fixture = mixed()
          const directory = yield* (yield* TestDisk).directory
          yield* putFiles(directory, fixture, change)
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          return { fixture, directory, storage }
        })

      it.scoped("finds every piece of a complete download, reporting progress once it is done", () =>
        Effect.gen(function* () {
          const { fixture, storage } = yield* setUp((_, bytes) => bytes)
          const progress: Array<readonly [number, number]> = []
          const have = yield* Resume.check(storage, (checked, total) => Effect.sync(() => progress.push([checked, total])))
          expect([...have.indices()]).toEqual(allPieces(fixture))
          expect(progress).toEqual([[fixture.info.pieceCount, fixture.info.pieceCount]])
        }))

      it.scoped("reports progress every 256 pieces or 16 MiB read, and after the last piece", () =>
        Effect.gen(function* () {
          const reports = (fixture: Fixture, kept: (fileIndex: number) => boolean) =>
            Effect.gen(function* () {
              const directory = yield* (yield* TestDisk).directory
              yield* putFiles(directory, fixture, (index, bytes) => (kept(index) ? bytes : undefined))
              const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
              const progress: Array<number> = []
              const have = yield* Resume.check(storage, (checked) => Effect.sync(() => progress.push(checked)))
              const expected = fixture.info.files.reduce((sum, file, index) => (kept(index) ? sum + file.length : sum), 0) / fixture.info.pieceLength
              expect(have.count).toBe(expected)
              return progress
            })
          // 20 pieces of 1 MiB, read in runs of 4 MiB: a report per 16 MiB.
          expect(yield* reports(makeTorrent([{ length: 20 * 1_048_576 }], 1_048_576), () => true)).toEqual([16, 20])
          // 600 pieces of an absent file skipped, then one read: a report per 256 pieces passed.
          expect(yield* reports(makeTorrent([{ length: 600 * 1_024, path: ["gone"] }, { length: 1_024, path: ["here"] }], 1_024), (index) => index === 1))
            .toEqual([256, 512, 601])
        }))

      it.scoped("finds nothing in an empty directory, without reading", () =>
        Effect.gen(function* () {
          const { storage } = yield* setUp(() => undefined)
          const [counted, counter] = countingReads(storage)
          const have = yield* Resume.check(counted)
          expect(have.count).toBe(0)
          expect(counter.reads).toBe(0)
        }))

      it.scoped("misses exactly the piece holding a corrupted byte", () =>
        Effect.gen(function* () {
          // Byte 30_000 of file 7 sits at torrent offset 57_487 + 30_000: piece 2.
          const { fixture, storage } = yield* setUp((index, bytes) => {
            if (index === 7) bytes[30_000]! ^= 0x01
            return bytes
          })
          const have = yield* Resume.check(storage)
          expect([...have.indices()]).toEqual(allPieces(fixture).filter((i) => i !== 2))
        }))

      it.scoped("checks 80 MiB on hashing threads: misses exactly the pieces holding a corrupted byte, across files", () =>
        Effect.gen(function* () {
          const pieceLength = 256 * 1024
          // 32 MiB + 7 bytes, then 48 MiB: piece 128 spans both files.
          const fixture = makeTorrent([{ length: 32 * 1_048_576 + 7 }, { length: 48 * 1_048_576 }], pieceLength)
          const directory = yield* (yield* TestDisk).directory
          // Byte 5 of file 0 (piece 0), the last byte of file 0 (piece 128) and byte 40 MiB of file 1 (torrent offset 72 MiB + 7: piece 288).
          yield* putFiles(directory, fixture, (index, bytes) => {
            if (index === 0) [5, bytes.length - 1].forEach((at) => (bytes[at]! ^= 0x01))
            else bytes[40 * 1_048_576]! ^= 0x01
            return bytes
          })
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          const have = yield* Resume.check(storage)
          expect([...have.indices()]).toEqual(allPieces(fixture).filter((i) => i !== 0 && i !== 128 && i !== 288))
        }))

      it.scoped("misses the pieces of a missing file, reading only the others", () =>
        Effect.gen(function* () {
          const { fixture, storage } = yield* setUp((index, bytes) => (index === 4 ? undefined : bytes))
          const missing = piecesTouching(fixture, [4])
          expect(missing.size).toBeGreaterThan(0)
          const [counted, counter] = countingReads(storage)
          const have = yield* Resume.check(counted)
          expect([...have.indices()]).toEqual(allPieces(fixture).filter((i) => !missing.has(i)))
          expect(counter.reads).toBe(fixture.info.pieceCount - missing.size)
        }))

      it.scoped("misses the pieces past the end of a truncated file", () =>
        Effect.gen(function* () {
          // File 7 (70_000 bytes from offset 57_487) cut to 20_000: piece 1 ends at 65_536, inside the kept
          // part; pieces 2 and 3 need bytes past the cut.
          const { fixture, storage } = yield* setUp((index, bytes) => (index === 7 ? bytes.subarray(0, 20_000) : bytes))
          const missing = piecesTouching(fixture, [7], 20_000)
          expect([...missing]).toEqual([2, 3])
          const have = yield* Resume.check(storage)
          expect([...have.indices()]).toEqual([0, 1])
        }))

      it.scoped("reads a run piece by piece when it comes back short (a file shrank during the check)", () =>
        Effect.gen(function* () {
          const { fixture, storage } = yield* setUp((_, bytes) => bytes)
          const [counted, counter] = countingReads({
            ...storage,
            readPieces: () => Effect.fail(new Storage.StorageError({ reason: "Truncated", operation: "read", path: storage.directory }))
          })
          const have = yield* Resume.check(counted)
          expect([...have.indices()]).toEqual(allPieces(fixture))
          // Every piece twice: in the run that failed, then on its own.
          expect(counter.reads).toBe(2 * fixture.info.pieceCount)
        }))

      it.scoped("fails with a typed error when a file cannot be read", () =>
        Effect.gen(function* () {
          const { storage } = yield* setUp((_, bytes) => bytes)
          for (const code of ["EACCES", "EIO"]) {
            const failure = Effect.fail(Storage.fromSystemError({ code }, "read", storage.directory))
            const faulty: Storage.TorrentStorage = {
              ...storage,
              read: (index, begin, length, into) => (index === 1 ? failure : storage.read(index, begin, length, into)),
              readPieces: (first, count, into) => (first <= 1 && 1 < first + count ? failure : storage.readPieces(first, count, into))
            }
            const error = yield* Effect.flip(Resume.check(faulty))
            expect(error.reason).toBe(code === "EACCES" ? "Permission" : "IO")
          }
        }))
    })
  })
}

describe("Resume over NodeStorage", () => {
  it.layer(implementations[0]!.layer)((it) => {
    it.scoped("fails NotAFile when a directory stands where a file should be", () =>
      Effect.gen(function* () {
        const fixture = mixed()
        const directory = yield* (yield* TestDisk).directory
        yield* putFiles(directory, fixture, (index, bytes) => (index === 4 ? undefined : bytes))
        const blocked = NodePath.join(directory, ...fixture.info.files[4]!.path)
        yield* Effect.promise(() => Fs.mkdir(blocked, { recursive: true }))
        const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
        const error = yield* Effect.flip(Resume.check(storage))
        expect(error.reason).toBe("NotAFile")
        expect(error.message).toContain(blocked)
      }))
  })
})
