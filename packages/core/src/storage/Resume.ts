/**
 * The resume check: which pieces are already on disk and correct. Reads runs of consecutive
 * pieces in order and hashes them on a thread per core (from 64 MiB stored; see hashPool) while
 * the next are read, so memory stays at a few runs (4 MiB each, or one piece when pieces are
 * larger: two more than hashing threads) whatever the torrent's size.
 */
import { Effect, Fiber, Option } from "effect"
import * as HashPool from "../metainfo/internal/hashPool.js"
import { pieceHash, pieceSize } from "../metainfo/Metainfo.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as FileLayout from "./FileLayout.js"
import { hashIs, type StorageError, type TorrentStorage } from "./Storage.js"

/** Pieces passed (read or skipped) between two progress reports, at most. */
const PROGRESS_PIECES = 256
/**
 * Bytes read between two progress reports, at most. A report per 256 KiB piece (a SubscriptionRef
 * update that the CLI's stream consumes) took about as much of the check's time as the hash.
 */
const PROGRESS_BYTES = 16 * 1024 * 1024

/**
 * The pieces present and matching their hash. Missing or short files make their pieces missing
 * without being read; only real I/O failures (permission, EIO, a directory in a file's place) fail.
 * `onProgress(checked, total)` runs every 16 MiB read or 256 pieces passed, and after the last.
 */
export const check = (
  storage: TorrentStorage,
  onProgress?: (checked: number, total: number) => Effect.Effect<void>
): Effect.Effect<Bitfield, StorageError> =>
  Effect.gen(function* () {
    const info = storage.info
    // One stat per file up front lets pieces of absent or short files be skipped unread.
    const lengths = yield* Effect.forEach(info.files, (file, fileIndex) =>
      file.length === 0 ? Effect.succeed(Option.some(0)) : storage.fileLength(fileIndex))
    const have = Bitfield.empty(info.pieceCount)
    // A fresh download (no data file exists) needs no walk over its pieces at all.
    const nothingStored = info.files.every((file, fileIndex) =>
      file.padding || file.length === 0 || Option.isNone(lengths[fileIndex]!)
    )
    if (nothingStored) {
      if (onProgress !== undefined) yield* onProgress(info.pieceCount, info.pieceCount)
      return have
    }
    // The pieces whose bytes all lie in files long enough to hold them: those are read.
    const stored = Bitfield.empty(info.pieceCount)
    let storedBytes = 0
    for (let index = 0; index < info.pieceCount; index++) {
      const segments = Option.getOrElse(FileLayout.segments(info, index, 0, pieceSize(info, index)), () => [])
      const onDisk = segments.every((segment) =>
        Option.exists(lengths[segment.fileIndex]!, (length) => length >= segment.fileOffset + segment.length)
      )
      if (onDisk) {
        stored.add(index)
        storedBytes += pieceSize(info, index)
      }
    }
    const nextStored = (from: number): number => {
      for (let index = from; index < info.pieceCount; index++) if (stored.has(index)) return index
      return -1
    }
    return yield* Effect.scoped(Effect.gen(function* () {
      // Each run is read (on node's thread pool) and then hashed (on the pool's threads, or here
      // without any) in a fiber of its own, while the runs before it are compared: the check
      // takes about the longer of reading and hashing. Consecutive stored pieces are read as one
      // run, one read per file.
      const pool = yield* HashPool.make(HashPool.threadsFor(storedBytes))
      const free = pool.runBuffers(info.pieceLength)
      const runPieces = free[0]!.length / info.pieceLength
      const missing = (error: StorageError) => error.reason === "NotFound" || error.reason === "Truncated"
      const runs: Array<{
        readonly first: number
        readonly count: number
        readonly buffer: Uint8Array
        readonly digests: Fiber.Fiber<Option.Option<Uint8Array>, StorageError>
      }> = []
      let toRead = nextStored(0)
      const startRuns = Effect.gen(function* () {
        while (toRead >= 0 && free.length > 0) {
          const first = toRead
          let count = 1
          while (count < runPieces && first + count < info.pieceCount && stored.has(first + count)) count++
          toRead = nextStored(first + count)
          const buffer = free.pop()!
          // The files may have shrunk or vanished since they were checked: read piece by piece then.
          const digests = yield* Effect.fork(
            storage.readPieces(first, count, buffer).pipe(
              Effect.flatMap((data) => pool.digests(data, info.pieceLength)),
              Effect.asSome,
              Effect.catchIf(missing, () => Effect.succeedNone)
            )
          )
          runs.push({ first, count, buffer, digests })
        }
        // A forked fiber starts once this one yields: let them issue their reads.
        yield* Effect.yieldNow()
      })
      yield* startRuns
      let reported = 0
      let readSinceReport = 0
      for (let index = 0; index < info.pieceCount; index++) {
        if (runs[0]?.first === index) {
          const run = runs.shift()!
          const digests = yield* Fiber.join(run.digests)
          for (let k = 0; k < run.count; k++) {
            const piece = run.first + k
            const size = pieceSize(info, piece)
            const matches = Option.isSome(digests)
              ? Buffer.from(digests.value.buffer, digests.value.byteOffset + 20 * k, 20).equals(pieceHash(info, piece))
              : yield* storage.read(piece, 0, size, run.buffer).pipe(
                Effect.map((bytes) => hashIs(bytes, pieceHash(info, piece))),
                Effect.catchIf(missing, () => Effect.succeed(false))
              )
            if (matches) have.add(piece)
            readSinceReport += size
          }
          free.push(run.buffer)
          yield* startRuns
          // On to the run's last piece: progress counts it as checked.
          index = run.first + run.count - 1
        }
        const last = index + 1 === info.pieceCount
        if (onProgress !== undefined && (last || readSinceReport >= PROGRESS_BYTES || index + 1 - reported >= PROGRESS_PIECES)) {
          yield* onProgress(index + 1, info.pieceCount)
          reported = index + 1
          readSinceReport = 0
        }
      }
      return have
    }))
  })
