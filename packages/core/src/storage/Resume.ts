/**
 * The resume check: which pieces are already on disk and correct. Reads and hashes one piece at a
 * time, in order, into one buffer, so memory stays at one piece whatever the torrent's size.
 */
import { Effect, Option } from "effect"
import { pieceHash, pieceSize } from "../metainfo/Metainfo.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as FileLayout from "./FileLayout.js"
import { hashIs, type StorageError, type TorrentStorage } from "./Storage.js"

/** Pieces skipped unread between two progress reports. */
const PROGRESS_BATCH = 256

/**
 * The pieces present and matching their hash. Missing or short files make their pieces missing
 * without being read; only real I/O failures (permission, EIO, a directory in a file's place) fail.
 * `onProgress(checked, total)` runs after every piece read, and every few hundred pieces skipped.
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
    // One buffer for every piece: each is hashed before the next is read. Hashed here, not on the
    // storage's disk thread: reads and hashes alternate, so the thread would not make the check
    // faster, and a seeder (which never writes) would start it only for this (~18 MiB).
    const buffer = new Uint8Array(info.pieceLength)
    for (let index = 0; index < info.pieceCount; index++) {
      const size = pieceSize(info, index)
      const stored = Option.getOrElse(FileLayout.segments(info, index, 0, size), () => []).every((segment) =>
        Option.exists(lengths[segment.fileIndex]!, (length) => length >= segment.fileOffset + segment.length)
      )
      if (stored) {
        const data = yield* storage.read(index, 0, size, buffer).pipe(
          Effect.asSome,
          // The file may have shrunk or vanished since it was checked: still just a missing piece.
          Effect.catchIf((error) => error.reason === "NotFound" || error.reason === "Truncated", () => Effect.succeedNone)
        )
        if (Option.isSome(data) && hashIs(data.value, pieceHash(info, index))) have.add(index)
      }
      // Per piece read; pieces skipped unread are reported in batches, so a sparse torrent is cheap.
      const reportNow = stored || (index + 1) % PROGRESS_BATCH === 0 || index + 1 === info.pieceCount
      if (onProgress !== undefined && reportNow) yield* onProgress(index + 1, info.pieceCount)
    }
    return have
  })
