import { NodeStorage, Resume, Storage } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { readdirSync } from "node:fs"
import * as Fs from "node:fs/promises"
import * as NodePath from "node:path"
import { implementations, TestDisk } from "./disks.js"
import { expectBytes, type Fixture, makeTorrent, mixed, shuffled } from "./fixtures.js"

/** Descriptors this process has open (Linux). */
const openDescriptors = () => readdirSync("/proc/self/fd").length

/** Waits `n` turns of the event loop. */
const nextTurns = (n: number): Effect.Effect<void> =>
  n === 0 ? Effect.void : Effect.zipRight(Effect.promise(() => new Promise((resolve) => setImmediate(resolve))), nextTurns(n - 1))

/** 30 files of 1000 bytes over 1 KiB pieces: nearly every piece spans two files. */
const manyFiles = (): Fixture => makeTorrent(Array.from({ length: 30 }, () => ({ length: 1_000 })), 1_024)

const expectFiles = (directory: string, fixture: Fixture) =>
  Effect.gen(function* () {
    const disk = yield* TestDisk
    for (const [index, file] of fixture.info.files.entries()) {
      const stored = yield* disk.file(NodePath.join(directory, ...file.path))
      expectBytes(Option.getOrThrow(stored), fixture.fileBytes(index))
    }
  })

describe("NodeStorage", () => {
  // The shared layer bounds handles at `maxOpenFiles` (4).
  it.layer(implementations[0]!.layer)((it) => {
    it.scoped("keeps at most maxOpenFiles handles open and closes them all with the scope", () =>
      Effect.gen(function* () {
        const fixture = manyFiles()
        const directory = yield* (yield* TestDisk).directory
        let before = openDescriptors()
        let peak = 0
        yield* Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
            // The layer's disk thread has descriptors of its own: start it before counting (a
            // piece that does not match opens no file).
            expect(yield* storage.writeVerified(0, new Uint8Array(fixture.piece(0).length))).toBe(false)
            before = openDescriptors()
            for (const index of shuffled(fixture.info.pieceCount, 11)) {
              yield* storage.writePiece(index, fixture.piece(index))
              peak = Math.max(peak, openDescriptors() - before)
            }
            for (let index = 0; index < fixture.info.pieceCount; index++) {
              yield* storage.read(index, 0, 100)
              peak = Math.max(peak, openDescriptors() - before)
            }
          })
        )
        expect(peak).toBeGreaterThan(0)
        expect(peak).toBeLessThanOrEqual(4)
        expect(openDescriptors()).toBe(before)
        yield* expectFiles(directory, fixture)
      }))

    it.scoped("stays correct with concurrent writes and readers competing for two handles", () =>
      Effect.gen(function* () {
        const fixture = manyFiles()
        const directory = yield* (yield* TestDisk).directory
        const before = openDescriptors()
        yield* Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
            yield* Effect.forEach(shuffled(fixture.info.pieceCount, 13), (index) =>
              Effect.zipRight(
                storage.writePiece(index, fixture.piece(index)),
                storage.read(index, 0, fixture.piece(index).length).pipe(
                  Effect.tap((data) => Effect.sync(() => expectBytes(data, fixture.piece(index))))
                )
              ), { concurrency: 8, discard: true })
          })
        ).pipe(Effect.provide(NodeStorage.layer({ maxOpenFiles: 2 })))
        expect(openDescriptors()).toBe(before)
        yield* expectFiles(directory, fixture)
      }))

    it.scoped("verifies every piece of a torrent at once: good ones written, corrupt ones reported and never on disk", () =>
      Effect.gen(function* () {
        // Requests spread over turns of the event loop, faster than the thread hashes and writes
        // the first messages' megabytes: later messages queue at the thread while it works.
        const pieceLength = 64 * 1_024
        const fixture = makeTorrent([{ length: 160 * pieceLength, path: ["all.bin"] }], pieceLength)
        const directory = yield* (yield* TestDisk).directory
        const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
        const corrupt = (index: number) => index % 3 === 1
        // Piece 0 first: the file is open, and each of the others is one request to the thread.
        expect(yield* storage.writeVerified(0, fixture.piece(0))).toBe(true)
        const outcomes = yield* Effect.forEach(
          Array.from({ length: fixture.info.pieceCount }, (_, index) => index),
          (index) => {
            const data = fixture.piece(index).slice()
            if (corrupt(index)) data[index % data.length]! ^= 0xff
            return Effect.zipRight(nextTurns(index % 8), storage.writeVerified(index, data))
          },
          { concurrency: "unbounded" }
        )
        expect(outcomes).toEqual(outcomes.map((_, index) => !corrupt(index)))
        const stored = Option.getOrThrow(yield* (yield* TestDisk).file(NodePath.join(directory, ...fixture.info.files[0]!.path)))
        for (let index = 0; index < fixture.info.pieceCount; index++) {
          const at = stored.subarray(index * pieceLength, (index + 1) * pieceLength)
          if (corrupt(index)) expect(at.every((byte) => byte === 0)).toBe(true)
          else expectBytes(at, fixture.piece(index))
        }
      }))

    it.scoped("never truncates existing data when a torrent is reopened", () =>
      Effect.gen(function* () {
        const fixture = mixed()
        const directory = yield* (yield* TestDisk).directory
        const service = yield* Storage.Storage
        yield* Effect.scoped(
          Effect.flatMap(service.open(fixture.info, directory), (storage) =>
            Effect.forEach(shuffled(fixture.info.pieceCount, 2), (index) => storage.writePiece(index, fixture.piece(index)))
          )
        )
        const storage = yield* service.open(fixture.info, directory)
        yield* storage.writePiece(1, fixture.piece(1))
        yield* storage.flush
        expect((yield* Resume.check(storage)).isComplete).toBe(true)
      }))

    it.scoped("fails NotAFile writing below a path that is a regular file", () =>
      Effect.gen(function* () {
        const fixture = mixed()
        const directory = yield* (yield* TestDisk).directory
        // File 2 lives in t/d2/: make t/d2 a file.
        yield* Effect.promise(() =>
          Fs.mkdir(NodePath.join(directory, "t"), { recursive: true }).then(() => Fs.writeFile(NodePath.join(directory, "t", "d2"), "x"))
        )
        const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
        const error = yield* Effect.flip(storage.writePiece(0, fixture.piece(0)))
        expect(error.reason).toBe("NotAFile")
        expect(error.message).toContain(NodePath.join(directory, "t", "d2", "f2.bin"))
      }))
  })

  it.scoped("a write failing on the disk thread is a typed StorageError, and the next write works", () =>
    Effect.gen(function* () {
      const fixture = makeTorrent([{ length: 3 * 1_024, path: ["full.bin"] }, { length: 1_024, path: ["ok.bin"] }], 1_024)
      const directory = yield* (yield* TestDisk).directory
      // Every write(2) to /dev/full fails with ENOSPC.
      yield* Effect.promise(() =>
        Fs.mkdir(NodePath.join(directory, "t"), { recursive: true }).then(() => Fs.symlink("/dev/full", NodePath.join(directory, "t", "full.bin")))
      )
      const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
      const error = yield* Effect.flip(storage.writePiece(1, fixture.piece(1)))
      expect(error.reason).toBe("NoSpace")
      expect(error.message).toContain("full.bin")
      yield* storage.writePiece(3, fixture.piece(3))
      expectBytes(yield* storage.read(3, 0, 1_024), fixture.piece(3))
    }).pipe(Effect.provide(implementations[0]!.layer)))

  it.scoped("starts its disk thread on the first write and stops it with the layer", () =>
    Effect.gen(function* () {
      const threads = () => readdirSync("/proc/self/task").length
      const fixture = mixed()
      const before = threads()
      const directory = yield* (yield* TestDisk).directory
      const during = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          expect(threads()).toBe(before)
          yield* storage.writePiece(0, fixture.piece(0))
          return threads()
        }).pipe(Effect.provide(NodeStorage.layer()))
      )
      expect(during).toBeGreaterThan(before)
      expect(threads()).toBe(before)
    }).pipe(Effect.provide(implementations[0]!.layer)))

  it.scoped("a wrapper that runs out of space after N bytes is a few lines", () =>
    Effect.gen(function* () {
      const fixture = mixed()
      let budget = 40_000
      const noSpaceAfterBudget = Layer.effect(
        Storage.Storage,
        Effect.map(Storage.Storage, (inner) => ({
          open: (info, directory) =>
            Effect.map(inner.open(info, directory), (storage): Storage.TorrentStorage => ({
              ...storage,
              writePiece: (index, data) =>
                (budget -= data.length) < 0
                  ? Effect.fail(new Storage.StorageError({ reason: "NoSpace", operation: "write", path: storage.directory }))
                  : storage.writePiece(index, data)
            }))
        }))
      ).pipe(Layer.provide(NodeStorage.layer()))
      const directory = yield* (yield* TestDisk).directory
      const error = yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* (yield* Storage.Storage).open(fixture.info, directory)
          yield* storage.writePiece(0, fixture.piece(0))
          return yield* Effect.flip(storage.writePiece(1, fixture.piece(1)))
        })
      ).pipe(Effect.provide(noSpaceAfterBudget))
      expect(error.message).toBe(`no space left on device writing ${directory}`)
    }).pipe(Effect.provide(implementations[0]!.layer)))
})
