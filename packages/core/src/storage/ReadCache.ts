/**
 * Whole-piece read-ahead for seeding: the first request for a block reads its whole piece, the
 * following requests for that piece (from any peer) are served from memory. A bounded LRU, so a
 * torrent's upload memory does not grow with its size; concurrent misses share one read.
 *
 * Piece buffers are reused: blocks are lent out (`read`, `cached`) and given back (`release`)
 * once the transport is done with them, and an evicted piece's buffer takes the next piece read
 * once none of its blocks is out. A fresh 256 KiB buffer per piece read was 1 GiB of ArrayBuffers
 * per GiB served, which V8 counts against the old generation's limit until a major GC frees them:
 * 41 major GCs while serving 1 GiB.
 */
import { Deferred, Effect, FiberId } from "effect"
import { pieceSize } from "../metainfo/Metainfo.js"
import type { StorageError, TorrentStorage } from "./Storage.js"

/** Buffers of evicted pieces kept for the next reads. */
const MAX_SPARE_BUFFERS = 4

/** Blocks of a torrent's pieces, read through the cache. */
export interface ReadCache {
  /** The block, from memory or from a read of its whole piece. Give it back with `release`. */
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /**
   * The block at once if its piece is in memory (a use, for the LRU), else `undefined`: a
   * seeder serves 15 of every 16 blocks this way, without an Effect step per block. Give it
   * back with `release`.
   */
  readonly cached: (index: number, begin: number, length: number) => Uint8Array | undefined
  /**
   * Gives back a block from `read` or `cached` that nothing reads any more (a write that sent it
   * has completed): each block once at most. A block never given back is garbage like any other
   * buffer, and its piece's buffer is then never reused.
   */
  readonly release: (block: Uint8Array) => void
  /**
   * Starts reading piece `index` in the background unless it is in memory or on its way (a
   * request for it has just arrived): the writer then finds it cached instead of waiting for
   * the disk while the blocks of other pieces wait behind it.
   */
  readonly prefetch: (index: number) => void
}

interface Entry {
  /** Set once the piece has been read: what `cached` serves without an Effect (a Deferred
   * gives its value only through one). */
  data: Uint8Array | undefined
  readonly loading: Deferred.Deferred<Uint8Array, StorageError>
}

/** Blocks of one piece buffer that are out, and whether its piece has left the cache. */
interface Loan {
  count: number
  evicted: boolean
}

/**
 * A cached block reader over `storage` holding at most `maxBytes` of pieces; `run` forks the
 * background reads of `prefetch` (without it, `prefetch` does nothing).
 */
export const make = (
  storage: TorrentStorage,
  maxBytes: number,
  run?: (effect: Effect.Effect<void>) => unknown
): ReadCache => {
  // Map iteration order is insertion order: re-inserting on a hit keeps the LRU at the front.
  const pieces = new Map<number, Entry>()
  let cachedBytes = 0
  const { pieceLength } = storage.info
  const spares: Array<Uint8Array> = []
  // Weak: the buffer of a block that is never given back (its connection died) is not kept.
  const loans = new WeakMap<ArrayBufferLike, Loan>()

  // A piece over half the budget is not cached: its blocks are read one by one.
  const tooLarge = (size: number) => size > maxBytes / 2

  // Only whole buffers of a piece's length, ours to overwrite (never a view into something else).
  const reusable = (data: Uint8Array) => data.byteOffset === 0 && data.buffer.byteLength === pieceLength

  const recycle = (buffer: ArrayBufferLike) => {
    if (spares.length < MAX_SPARE_BUFFERS) spares.push(new Uint8Array(buffer))
  }

  const lend = (data: Uint8Array, begin: number, length: number): Uint8Array => {
    if (reusable(data)) {
      const loan = loans.get(data.buffer)
      if (loan === undefined) loans.set(data.buffer, { count: 1, evicted: false })
      else loan.count++
    }
    return data.subarray(begin, begin + length)
  }

  const release: ReadCache["release"] = (block) => {
    const loan = loans.get(block.buffer)
    if (loan === undefined || --loan.count > 0) return
    loans.delete(block.buffer)
    if (loan.evicted) recycle(block.buffer)
  }

  const evict = () => {
    for (const [index, entry] of pieces) {
      if (cachedBytes <= maxBytes) break
      pieces.delete(index)
      cachedBytes -= pieceSize(storage.info, index)
      if (entry.data === undefined || !reusable(entry.data)) continue
      const loan = loans.get(entry.data.buffer)
      if (loan === undefined) recycle(entry.data.buffer)
      else loan.evicted = true
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

  const cached: ReadCache["cached"] = (index, begin, length) => {
    const data = use(index)?.data
    return data === undefined ? undefined : lend(data, begin, length)
  }

  // Registers piece `index` (not cached) and gives the read that fills it: registered before the
  // first yield, so concurrent misses of this piece wait for this read.
  const load = (index: number, size: number): Effect.Effect<Uint8Array, StorageError> => {
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
    return storage.read(index, 0, size, spares.pop()).pipe(
      Effect.tap((piece) => {
        entry.data = piece
      }),
      Effect.tapError(() => forget),
      Effect.onInterrupt(() => Effect.zipRight(forget, Deferred.interrupt(entry.loading))),
      Effect.exit,
      Effect.tap((piece) => Deferred.done(entry.loading, piece)),
      Effect.flatten
    )
  }

  const read: ReadCache["read"] = (index, begin, length) =>
    Effect.suspend(() => {
      const size = pieceSize(storage.info, index)
      if (tooLarge(size)) return storage.read(index, begin, length)
      const slice = (piece: Uint8Array) => lend(piece, begin, length)
      const hit = use(index)
      if (hit !== undefined) return hit.data !== undefined ? Effect.succeed(slice(hit.data)) : Effect.map(Deferred.await(hit.loading), slice)
      return Effect.map(load(index, size), slice)
    })

  const prefetch: ReadCache["prefetch"] = (index) => {
    const size = pieceSize(storage.info, index)
    if (run === undefined || tooLarge(size) || pieces.has(index)) return
    run(Effect.ignore(load(index, size)))
  }

  return { read, cached, release, prefetch }
}
