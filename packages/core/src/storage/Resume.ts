/**
 * The resume check: which pieces are already on disk and correct. Reads runs of consecutive
 * pieces in order, the next run read while one is hashed, so memory stays at two runs (8 MiB, or
 * two pieces when pieces are larger) whatever the torrent's size.
 */
import { Effect, Fiber, Option } from "effect"
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
 * Consecutive pieces are read in runs of up to this many bytes (at least one piece), one read per
 * file: per piece, a read through the storage and the event loop cost the main thread about as
 * much as reading the bytes.
 */
const RUN_BYTES = 4 * 1024 * 1024

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
    for (let index = 0; index < info.pieceCount; index++) {
      const segments = Option.getOrElse(FileLayout.segments(info, index, 0, pieceSize(info, index)), () => [])
      const onDisk = segments.every((segment) =>
        Option.exists(lengths[segment.fileIndex]!, (length) => length >= segment.fileOffset + segment.length)
      )
      if (onDisk) stored.add(index)
    }
    const nextStored = (from: number): number => {
      for (let index = from; index < info.pieceCount; index++) if (stored.has(index)) return index
      return -1
    }
    // Hashed here, while the next run is read (on node's thread pool): the check takes about the
    // longer of reading and hashing. Two buffers: the run being hashed, and the one being read.
    const runPieces = Math.max(1, Math.floor(RUN_BYTES / info.pieceLength))
    const buffers = [new Uint8Array(runPieces * info.pieceLength), new Uint8Array(runPieces * info.pieceLength)] as const
    let slot = 0
    const missing = (error: StorageError) => error.reason === "NotFound" || error.reason === "Truncated"
    let toRead = nextStored(0)
    const startRun = Effect.gen(function* () {
      if (toRead < 0) return undefined
      const first = toRead
      let count = 1
      while (count < runPieces && first + count < info.pieceCount && stored.has(first + count)) count++
      toRead = nextStored(first + count)
      const buffer = buffers[slot]!
      slot ^= 1
      // The files may have shrunk or vanished since they were checked: read piece by piece then.
      const fiber = yield* Effect.fork(
        storage.readPieces(first, count, buffer).pipe(Effect.asSome, Effect.catchIf(missing, () => Effect.succeedNone))
      )
      // A forked fiber starts once this one yields: let it issue its reads before the hashing.
      yield* Effect.yieldNow()
      return { first, count, buffer, fiber }
    })
    let next = yield* startRun
    let reported = 0
    let readSinceReport = 0
    for (let index = 0; index < info.pieceCount; index++) {
      if (next?.first === index) {
        const run = next
        const data = yield* Fiber.join(run.fiber)
        next = yield* startRun
        for (let k = 0; k < run.count; k++) {
          const piece = run.first + k
          const size = pieceSize(info, piece)
          const bytes = Option.isSome(data)
            ? Option.some(data.value.subarray(k * info.pieceLength, k * info.pieceLength + size))
            : yield* storage.read(piece, 0, size, run.buffer).pipe(Effect.asSome, Effect.catchIf(missing, () => Effect.succeedNone))
          if (Option.isSome(bytes) && hashIs(bytes.value, pieceHash(info, piece))) have.add(piece)
          readSinceReport += size
        }
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
  })
