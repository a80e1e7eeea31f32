/**
 * The receive buffer of a socket we open: node reads into it (net's `onread`) instead of into a
 * fresh 64 KiB ArrayBuffer per read. V8 charges those buffers, until a GC frees them, against the
 * old generation's limit (external memory since the last mark-compact): at 200 MiB/s they started
 * a major GC every ~140 ms, 35 per GiB downloaded, each marking the whole 14 MB heap.
 *
 * Chunks are views of the ring, valid until the reader's next read: the reader holds one batch
 * while node fills the next. Each read goes to the lowest free range that fits a full read (else
 * the largest that fits a small one), so a ring whose reader keeps up stays in its first pages.
 */

/** Bytes node reads at once, libuv's own read size. */
export const READ_BYTES = 64 * 1024
/** Room smaller than this is not read into: the ring counts as full. */
const MIN_READ_BYTES = 16 * 1024

/** Ring bytes holding chunks of one batch: `generation` tells the batch. */
interface Held {
  readonly generation: number
  readonly start: number
  end: number
}

/** One socket's receive ring. Node's `onread` calls `reserve` and `filled`; the reader `consumed` and `handOut`. */
export interface ReceiveRing {
  /** Where node reads next, or `undefined` when the ring is full (pause, and read into a buffer of your own). */
  readonly reserve: () => Uint8Array | undefined
  /** The chunk of `n` bytes that node has just read into `buffer` (the last reserved, or your own). */
  readonly filled: (buffer: Uint8Array, n: number) => Uint8Array
  /** The reader is done with every chunk handed out so far (it reads again). */
  readonly consumed: () => void
  /** Every chunk filled since the last hand-out now belongs to the reader, until `consumed`. */
  readonly handOut: () => void
}

/** A ring of `size` bytes (allocated at once; the system backs its pages as reads reach them). */
export const make = (size: number): ReceiveRing => {
  const ring = Buffer.allocUnsafe(size)
  // Ranges of held chunks (at most a few: a batch's chunks are contiguous until a read wraps).
  let held: Array<Held> = []
  // The batch being filled; every smaller generation has been handed out.
  let generation = 0
  let reservedAt = 0

  return {
    reserve: () => {
      held.sort((a, b) => a.start - b.start)
      let best = -1
      let bestLength = 0
      let from = 0
      for (let i = 0; i <= held.length; i++) {
        const room = (i < held.length ? held[i]!.start : size) - from
        if (room >= READ_BYTES) {
          best = from
          bestLength = READ_BYTES
          break
        }
        if (room >= MIN_READ_BYTES && room > bestLength) {
          best = from
          bestLength = room
        }
        if (i < held.length) from = held[i]!.end
      }
      if (best < 0) return undefined
      reservedAt = best
      return ring.subarray(best, best + bestLength)
    },
    filled: (buffer, n) => {
      if (buffer.buffer === ring.buffer) {
        const last = held.find((range) => range.generation === generation && range.end === reservedAt)
        if (last !== undefined) last.end += n
        else held.push({ generation, start: reservedAt, end: reservedAt + n })
      }
      return buffer.subarray(0, n)
    },
    consumed: () => {
      if (held.length > 0 && held.some((range) => range.generation < generation)) {
        held = held.filter((range) => range.generation === generation)
      }
    },
    handOut: () => {
      generation++
    }
  }
}
