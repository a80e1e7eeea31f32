/**
 * The resume check: which pieces are already on disk and correct. Reads the pieces in order, the
 * next ones read while one is hashed, so memory stays at a few pieces whatever the torrent's size.
 */
import { Effect, Fiber, Option } from "effect"
import { pieceHash, pieceSize } from "../metainfo/Metainfo.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as FileLayout from "./FileLayout.js"
import { hashIs, type StorageError, type TorrentStorage } from "./Storage.js"

/** Pieces passed (read or skipped) between two progress reports, at most. */
const PROGRESS_PIECES = 256
/**
 * Piece reads in flight while a piece is hashed (each waits on node's thread pool and the event
 * loop): up to 4, and no more than 1 MiB of them, so that large pieces stay at two buffers.
 */
const MAX_READ_AHEAD = 4
const READ_AHEAD_BYTES = 1024 * 1024
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
    // Hashed here, not on the storage's disk thread: with the next reads in flight meanwhile, the
    // check takes about the longer of reading and hashing, and a seeder (which never writes)
    // would start the thread only for this. Each read in flight has a buffer of its own, and one
    // more holds the piece being hashed: a read never fills the buffer being hashed.
    const readAhead = Math.max(1, Math.min(MAX_READ_AHEAD, Math.floor(READ_AHEAD_BYTES / info.pieceLength)))
    const buffers = Array.from({ length: readAhead + 1 }, () => new Uint8Array(info.pieceLength))
    let slot = 0
    const reads: Array<{ readonly index: number; readonly fiber: Fiber.RuntimeFiber<Option.Option<Uint8Array>, StorageError> }> = []
    let toRead = nextStored(0)
    const startReads = Effect.gen(function* () {
      while (reads.length < readAhead && toRead >= 0) {
        const fiber = yield* Effect.fork(
          storage.read(toRead, 0, pieceSize(info, toRead), buffers[slot]!).pipe(
            Effect.asSome,
            // The file may have shrunk or vanished since it was checked: still just a missing piece.
            Effect.catchIf((error) => error.reason === "NotFound" || error.reason === "Truncated", () => Effect.succeedNone)
          )
        )
        reads.push({ index: toRead, fiber })
        slot = (slot + 1) % buffers.length
        toRead = nextStored(toRead + 1)
      }
      // A forked fiber starts once this one yields: let the new ones issue their reads.
      yield* Effect.yieldNow()
    })
    yield* startReads
    let reported = 0
    let readSinceReport = 0
    for (let index = 0; index < info.pieceCount; index++) {
      if (reads[0]?.index === index) {
        const data = yield* Fiber.join(reads.shift()!.fiber)
        yield* startReads
        if (Option.isSome(data) && hashIs(data.value, pieceHash(info, index))) have.add(index)
        readSinceReport += pieceSize(info, index)
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
