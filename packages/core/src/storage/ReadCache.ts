/**
 * Whole-piece read-ahead for seeding: the first request for a block reads its whole piece, the
 * following requests for that piece (from any peer) are served from memory. A bounded LRU, so a
 * torrent's upload memory does not grow with its size; concurrent misses share one read.
 */
import { Deferred, Effect, FiberId } from "effect"
import { pieceSize } from "../metainfo/Metainfo.js"
import type { StorageError, TorrentStorage } from "./Storage.js"

/** Blocks of a torrent's pieces, read through the cache. */
export interface ReadCache {
  /** The block, from memory or from a read of its whole piece. */
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /**
   * The block at once if its piece is in memory (a use, for the LRU), else `undefined`: a
   * seeder serves 15 of every 16 blocks this way, without an Effect step per block.
   */
  readonly cached: (index: number, begin: number, length: number) => Uint8Array | undefined
}

interface Entry {
  /** Set once the piece has been read: what `cached` serves without an Effect (a Deferred
   * gives its value only through one). */
  data: Uint8Array | undefined
  readonly loading: Deferred.Deferred<Uint8Array, StorageError>
}

/** A cached block reader over `storage` holding at most `maxBytes` of pieces. */
export const make = (storage: TorrentStorage, maxBytes: number): ReadCache => {
  // Map iteration order is insertion order: re-inserting on a hit keeps the LRU at the front.
  const pieces = new Map<number, Entry>()
  let cachedBytes = 0

  const evict = () => {
    for (const [index] of pieces) {
      if (cachedBytes <= maxBytes) break
      pieces.delete(index)
      cachedBytes -= pieceSize(storage.info, index)
    }
  }

  const use = (index: number): Entry | undefined => {
    const hit = pieces.get(index)
    if (hit !== undefined) {
      pieces.delete(index)
      pieces.set(index, hit)
    }
    return hit
  }

  const cached: ReadCache["cached"] = (index, begin, length) =>
    use(index)?.data?.subarray(begin, begin + length)

  const read: ReadCache["read"] = (index, begin, length) =>
    Effect.suspend(() => {
      const size = pieceSize(storage.info, index)
      if (size > maxBytes / 2) return storage.read(index, begin, length)
      const slice = (piece: Uint8Array) => piece.subarray(begin, begin + length)
      const hit = use(index)
      if (hit !== undefined) return hit.data !== undefined ? Effect.succeed(slice(hit.data)) : Effect.map(Deferred.await(hit.loading), slice)
      // Registered before the first yield, so concurrent misses of this piece wait for this read.
      const entry: Entry = { data: undefined, loading: Deferred.unsafeMake<Uint8Array, StorageError>(FiberId.none) }
      pieces.set(index, entry)
      cachedBytes += size
      evict()
      // A failed or interrupted read must not stay cached: the next request tries the disk again.
      const forget = Effect.sync(() => {
        if (pieces.get(index) === entry) {
          pieces.delete(index)
          cachedBytes -= size
        }
      })
      return storage.read(index, 0, size).pipe(
        Effect.tap((piece) => {
          entry.data = piece
        }),
        Effect.tapError(() => forget),
        Effect.onInterrupt(() => Effect.zipRight(forget, Deferred.interrupt(entry.loading))),
        Effect.exit,
        Effect.tap((piece) => Deferred.done(entry.loading, piece)),
        Effect.flatten,
        Effect.map(slice)
      )
    })

  return { read, cached }
}
