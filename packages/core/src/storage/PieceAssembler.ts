/**
 * Collects the blocks of one in-flight piece, then has the storage check its SHA-1 and write it.
 * One assembler holds one piece-sized buffer, so the supervisor bounds memory by bounding the
 * pieces in flight.
 */
import { Effect } from "effect"
import { type Info, pieceSize } from "../metainfo/Metainfo.js"
import type { StorageError, TorrentStorage } from "./Storage.js"

/** Size of a requested block (the de-facto standard; the last block of a piece may be shorter). */
export const blockSize = 16 * 1024

/** A piece whose every block has arrived, ready to be verified. */
export interface CompletePiece {
  readonly index: number
  readonly data: Uint8Array
  /** The peers that sent accepted blocks of it, in first-contribution order. */
  readonly peers: ReadonlyArray<string>
}

/** What `add` did with a block. */
export type AddResult =
  | { readonly _tag: "Added" }
  | { readonly _tag: "Duplicate" }
  | { readonly _tag: "Invalid" }
  | { readonly _tag: "Complete"; readonly piece: CompletePiece }

/** The piece matched its hash: it may be written and announced. */
export interface PieceVerified {
  readonly _tag: "PieceVerified"
  readonly index: number
}

/** The piece did not match its hash: `peers` sent its blocks (one of them lied or corrupted it). */
export interface PieceRejected {
  readonly _tag: "PieceRejected"
  readonly index: number
  readonly peers: ReadonlyArray<string>
}

const added: AddResult = { _tag: "Added" }
const duplicate: AddResult = { _tag: "Duplicate" }
const invalid: AddResult = { _tag: "Invalid" }

/** The blocks received so far of one piece. Mutable: it lives inside one fiber's state. */
export class PieceAssembler {
  /** Number of blocks in the piece. */
  readonly blockCount: number
  // Uninitialised memory is fine: the buffer is only handed out once every block overwrote it.
  // Shared memory: the live storage hashes and writes it on its disk thread without a copy.
  private readonly buffer: Buffer
  private readonly received: Uint8Array
  private readonly contributors = new Set<string>()
  private receivedCount = 0

  private constructor(
    readonly index: number,
    /** Piece length in bytes. */
    readonly size: number,
    buffer: Buffer | undefined
  ) {
    this.blockCount = Math.ceil(size / blockSize)
    this.buffer = buffer !== undefined && buffer.length >= size ? buffer.subarray(0, size) : Buffer.from(new SharedArrayBuffer(size))
    this.received = new Uint8Array(this.blockCount)
  }

  /**
   * An empty assembler for piece `index` of `info` (the caller keeps `index` in range). A `buffer`
   * of at least the piece's size is reused instead of allocating: fresh large buffers cost a page
   * fault per 4 KiB, which dominated a download's CPU profile.
   */
  static make(info: Info, index: number, buffer?: Buffer): PieceAssembler {
    return new PieceAssembler(index, pieceSize(info, index), buffer)
  }

  /**
   * Adds the block at `begin` sent by `peer`. `Invalid` for a block not on a block boundary or of
   * the wrong length, `Duplicate` for one already received (ignored), `Complete` for the last one.
   */
  add(begin: number, block: Uint8Array, peer: string): AddResult {
    if (!Number.isInteger(begin) || begin < 0 || begin >= this.size || begin % blockSize !== 0) return invalid
    if (block.length !== Math.min(blockSize, this.size - begin)) return invalid
    const blockIndex = begin / blockSize
    if (this.received[blockIndex] === 1) return duplicate
    this.received[blockIndex] = 1
    this.receivedCount++
    this.buffer.set(block, begin)
    this.contributors.add(peer)
    if (this.receivedCount < this.blockCount) return added
    return { _tag: "Complete", piece: { index: this.index, data: this.buffer, peers: [...this.contributors] } }
  }

  /** Number of blocks received. */
  get blocksReceived(): number {
    return this.receivedCount
  }
}

/** Writes a complete piece if it matches its SHA-1 (see `TorrentStorage.writeVerified`); a rejected piece touches no disk. */
export const verifyAndWrite = (
  storage: TorrentStorage,
  piece: CompletePiece
): Effect.Effect<PieceVerified | PieceRejected, StorageError> =>
  Effect.map(storage.writeVerified(piece.index, piece.data), (written): PieceVerified | PieceRejected =>
    written
      ? { _tag: "PieceVerified", index: piece.index }
      : { _tag: "PieceRejected", index: piece.index, peers: piece.peers })
