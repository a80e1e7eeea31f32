/**
 * Whole-piece read-ahead for seeding: the first request for a block reads its whole piece, the
 * following requests for that piece (from any peer) are served from memory. A bounded LRU, so a
 * torrent's upload memory does not grow with its size; concurrent misses share one read.
 */
import { Deferred, Effect, FiberId } from "effect"
import { pieceSize } from "../metainfo/Metainfo.js"
import type { StorageError, TorrentStorage } from "./Storage.js"

/** Reads blocks through the cache. */
export type ReadBlock = (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>

/** A cached block reader over `storage` holding at most `maxBytes` of pieces. */
export const make = (storage: TorrentStorage, maxBytes: number): ReadBlock => {
  // Map iteration order is insertion order: re-inserting on a hit keeps the LRU at the front.
  const pieces = new Map<number, Deferred.Deferred<Uint8Array, StorageError>>()
  let cachedBytes = 0

  const evict = () => {
    for (const [index] of pieces) {
      if (cachedBytes <= maxBytes) break
      pieces.delete(index)
      cachedBytes -= pieceSize(storage.info, index)
    }
  }

  return (index, begin, length) =>
    Effect.suspend(() => {
      const size = pieceSize(storage.info, index)
      if (size > maxBytes / 2) return storage.read(index, begin, length)
      const slice = (piece: Uint8Array) => piece.subarray(begin, begin + length)
      const hit = pieces.get(index)
      if (hit !== undefined) {
        pieces.delete(index)
        pieces.set(index, hit)
        return Effect.map(Deferred.await(hit), slice)
      }
      // Registered before the first yield, so concurrent misses of this piece wait for this read.
      const loading = Deferred.unsafeMake<Uint8Array, StorageError>(FiberId.none)
      pieces.set(index, loading)
      cachedBytes += size
      evict()
      // A failed or interrupted read must not stay cached: the next request tries the disk again.
      const forget = Effect.sync(() => {
        if (pieces.get(index) === loading) {
          pieces.delete(index)
          cachedBytes -= size
        }
      })
      return storage.read(index, 0, size).pipe(
        Effect.tapError(() => forget),
        Effect.onInterrupt(() => Effect.zipRight(forget, Deferred.interrupt(loading))),
        Effect.exit,
        Effect.tap((piece) => Deferred.done(loading, piece)),
        Effect.flatten,
        Effect.map(slice)
      )
    })
}
