/**
 * Recycled buffers for the blocks of received `piece` messages. The framer copies each block out
 * of the socket's chunk into one of these, and the torrent gives it back once the block is in its
 * piece: socket chunks are then garbage as soon as they are framed. Left as views, they lived
 * until their blocks reached a piece, long enough for a 2 MiB young generation to promote ~1 in 5
 * of them: 30 MiB of dead 64 KiB chunks in the old generation between two major GCs (a 512 MiB
 * download's sawtooth of peak RSS). A block never given back is garbage like any other buffer.
 */
/** Buffers for blocks, and where they come back. Mutable: one torrent's fibers share it. */
export interface BlockPool {
  /** Bytes in a full block, the size of the pool's buffers. */
  readonly blockLength: number
  /** A copy of `block`: in a recycled buffer if it is a full block (`blockLength`), else in a fresh one. */
  readonly copy: (block: Uint8Array) => Uint8Array
  /** Hands back a block from `copy` that nothing reads any more (each block once, at most). */
  readonly release: (block: Uint8Array) => void
  /** Buffers waiting to be reused. */
  readonly spare: () => number
  /** Drops the spare buffers (a torrent without peers keeps none). */
  readonly clear: () => void
}

/** A pool of buffers of `blockLength` bytes (the size we request), keeping up to `capacity` spare. */
export const make = (blockLength: number, capacity: number): BlockPool => {
  const spares: Array<Uint8Array> = []
  return {
    blockLength,
    copy: (block) => {
      const copy = block.length === blockLength ? (spares.pop() ?? new Uint8Array(blockLength)) : new Uint8Array(block.length)
      copy.set(block)
      return copy
    },
    release: (block) => {
      // Only whole buffers of a full block's size: never a view into something else.
      if (block.byteOffset === 0 && block.buffer.byteLength === blockLength && block.length === blockLength && spares.length < capacity) {
        spares.push(block)
      }
    },
    spare: () => spares.length,
    clear: () => {
      spares.length = 0
    }
  }
}
