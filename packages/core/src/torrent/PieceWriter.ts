/**
 * Received pieces on their way to disk: blocks are collected into piece buffers (reused once
 * their piece is written), complete pieces are hashed and written by a few verifier fibers off
 * the supervisor's loop, and what they wrote is flushed in the background every
 * `flushEveryBytes`. It counts the bytes waiting to be written, so that the supervisor stops
 * requesting while the disk lags behind the network.
 */
import { Effect, Fiber, Queue, type Scope } from "effect"
import { type Info, pieceSize } from "../metainfo/Metainfo.js"
import * as PieceAssembler from "../storage/PieceAssembler.js"
import type { StorageError, TorrentStorage } from "../storage/Storage.js"
import type { TorrentEvent } from "./TorrentEvent.js"

/**
 * Bytes of piece buffers kept for reuse: about what a fast download has in flight (8 MiB pending
 * writes plus the pieces being assembled), so that it allocates none after its first second. A
 * dropped buffer is shared with the disk thread and freed only after both threads collected it;
 * dropping spares beyond 16 buffers raised a 1 GiB download's peak RSS from ~109 to ~120 MiB.
 */
const MAX_SPARE_BYTES = 16 * 1024 * 1024
/** Pieces in verification at once: the next ones queue at the storage's disk thread while one is hashed and written. */
const VERIFIERS = 4

/** What the writer of a torrent needs. */
export interface Options {
  readonly info: Info
  readonly storage: TorrentStorage
  /** Where each piece's outcome is posted: `PieceVerified`, `PieceRejected` or `StorageFailed`. */
  readonly mailbox: Queue.Queue<TorrentEvent>
  /** Bytes written between two background flushes. */
  readonly flushEveryBytes: number
  /** Where the verifiers and the background flushes run. */
  readonly scope: Scope.Scope
}

/** The pieces of one torrent being assembled, verified and written. Only the supervisor's fiber calls it. */
export interface PieceWriter {
  /** Bytes of complete pieces handed to the verifiers and not yet reported verified or rejected. */
  readonly pendingWriteBytes: () => number
  /** Adds a block the picker accepted to its piece; a complete piece goes to the verifiers. */
  readonly addBlock: (index: number, begin: number, block: Uint8Array, peer: string) => void
  /** Whether complete pieces wait while no verifier runs yet. */
  readonly verifiersDue: () => boolean
  /** Starts the verifiers. */
  readonly startVerifiers: Effect.Effect<void>
  /** Piece `index` was reported verified (it is written): it counts toward the next background flush. */
  readonly verified: (index: number) => void
  /** Piece `index` was reported rejected: it is no longer pending. */
  readonly rejected: (index: number) => void
  /** Starts a background flush once `flushEveryBytes` were written since the last, unless one still runs. */
  readonly flushIfDue: Effect.Effect<void>
  /** Waits for the background flush, then makes every write so far durable. */
  readonly flush: Effect.Effect<void, StorageError>
}

/** A writer with no piece in flight and no fiber yet. */
export const make = (options: Options): Effect.Effect<PieceWriter> =>
  Effect.gen(function* () {
    const { info, mailbox, scope, storage } = options
    const assemblers = new Map<number, PieceAssembler.PieceAssembler>()
    const verifyQueue = yield* Queue.unbounded<PieceAssembler.CompletePiece>()
    // Piece buffers handed back by the verifier once written, reused by the next pieces.
    const spareBuffers: Array<Buffer> = []
    let pendingWriteBytes = 0

    // The verifiers: hash complete pieces and write the good ones, off the supervisor's loop.
    // Several at once, so that the pieces completed in one turn reach the storage's disk thread
    // together (one message) and it has the next ones queued while it works. A loop, not
    // `Effect.forever`, which yields to the scheduler after every piece: each take suspends anyway.
    const verifier = Effect.gen(function* () {
      while (true) {
        const piece = yield* Queue.take(verifyQueue)
        const outcome = yield* PieceAssembler.verifyAndWrite(storage, piece).pipe(
          Effect.catchAll((error) => Effect.succeed({ _tag: "StorageFailed", error } as const))
        )
        // Only whole-piece buffers of our own allocation go back (never a slice of a shared pool).
        if (piece.data.buffer.byteLength === info.pieceLength && (spareBuffers.length + 1) * info.pieceLength <= MAX_SPARE_BYTES) {
          spareBuffers.push(Buffer.from(piece.data.buffer, 0, info.pieceLength))
        }
        yield* Queue.offer(mailbox, outcome)
      }
    })
    // Started with the first complete piece: a torrent that downloads nothing holds no verifier fiber.
    let verifying = false

    // The last background flush; completion waits for it (it took its files off the dirty set).
    let flushing: Fiber.RuntimeFiber<void> | undefined
    let unflushedBytes = 0
    const flushInBackground = Effect.gen(function* () {
      unflushedBytes = 0
      flushing = yield* Effect.forkIn(
        storage.flush.pipe(Effect.catchAll((error) => Queue.offer(mailbox, { _tag: "StorageFailed", error })), Effect.asVoid),
        scope
      )
    })

    return {
      pendingWriteBytes: () => pendingWriteBytes,

      addBlock: (index, begin, block, peer) => {
        let assembler = assemblers.get(index)
        if (assembler === undefined) {
          assembler = PieceAssembler.PieceAssembler.make(info, index, spareBuffers.pop())
          assemblers.set(index, assembler)
        }
        const added = assembler.add(begin, block, peer)
        if (added._tag === "Complete") {
          assemblers.delete(index)
          pendingWriteBytes += added.piece.data.length
          Queue.unsafeOffer(verifyQueue, added.piece)
        }
      },

      verifiersDue: () => !verifying && pendingWriteBytes > 0,

      startVerifiers: Effect.suspend(() => {
        verifying = true
        return Effect.forEach(Array.from({ length: VERIFIERS }), () => Effect.forkIn(verifier, scope), { discard: true })
      }),

      verified: (index) => {
        const size = pieceSize(info, index)
        pendingWriteBytes -= size
        unflushedBytes += size
      },

      rejected: (index) => {
        pendingWriteBytes -= pieceSize(info, index)
      },

      flushIfDue: Effect.suspend(() =>
        unflushedBytes >= options.flushEveryBytes && (flushing === undefined || flushing.unsafePoll() !== null)
          ? flushInBackground
          : Effect.void
      ),

      flush: Effect.gen(function* () {
        if (flushing !== undefined) yield* Fiber.join(flushing)
        yield* storage.flush
      })
    }
  })
