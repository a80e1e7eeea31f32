/**
 * A Storage that fails on purpose, wrapped around any other (the memory one in tests): a disk
 * that fills up, reads or writes that fail with EIO, slow writes, and a crash point where the
 * process "dies" in the middle of a write, leaving a torn piece behind, so a new session on the
 * same disk can show that it resumes from what really reached it.
 */
import { Context, type Duration, Effect, Layer, Ref } from "effect"
import { pieceHash } from "../metainfo/Metainfo.js"
import { hashIs, Storage, StorageError, type StorageOperation, type TorrentStorage } from "../storage/Storage.js"

/** The faults to inject; all off by default. Counts run across every torrent of the storage. */
export interface Faults {
  /** A write that would take the bytes written past this fails with `NoSpace` (ENOSPC) and writes nothing. */
  readonly noSpaceAfterBytes?: number
  /** Reads after the first `n` fail with `IO` (EIO); 0 fails every read. */
  readonly failReadsAfter?: number
  /** Writes after the first `n` fail with `IO` (EIO) and write nothing. */
  readonly failWritesAfter?: number
  /** Every piece write takes this long. */
  readonly writeDelay?: Duration.DurationInput
  /** Every flush takes this long (an fsync writing back a lot). */
  readonly flushDelay?: Duration.DurationInput
  /**
   * The process dies during write number `n + 1`: the first half of that piece reaches the disk
   * (the rest stays zero: a torn write), the write fails, and so does every operation after it.
   */
  readonly crashAfterWrites?: number
}

/** What the faulty storage has done so far. */
export interface Stats {
  readonly reads: number
  readonly writes: number
  readonly bytesWritten: number
  /** Flushes that completed, and the bytes written when the last of them started. */
  readonly flushes: number
  readonly bytesWrittenAtLastFlush: number
  /** Flushes started and not yet completed. */
  readonly flushing: number
  /** Whether the crash point was reached. */
  readonly crashed: boolean
}

/** Inspects and changes the faults of a running faulty storage. */
export class Control extends Context.Tag("bitfiber/testing/FaultyStorage/Control")<
  Control,
  {
    readonly stats: Effect.Effect<Stats>
    /** Replaces the faults (counts so far are kept): `set({})` heals the disk. */
    readonly set: (faults: Faults) => Effect.Effect<void>
  }
>() {}

const systemError = (code: string, reason: StorageError["reason"], operation: StorageOperation, path: string) =>
  new StorageError({ reason, operation, path, cause: Object.assign(new Error(`${code}: injected fault`), { code }) })

/** Wraps `inner`'s storages with the faults in `faults` (read on every operation). */
const wrap = (
  inner: Context.Tag.Service<Storage>,
  faults: Ref.Ref<Faults>,
  stats: Ref.Ref<Stats>
): Context.Tag.Service<Storage> => ({
  open: (info, directory) =>
    Effect.map(inner.open(info, directory), (storage): TorrentStorage => {
      const path = storage.directory
      const crashed = (operation: StorageOperation) =>
        Effect.flatMap(Ref.get(stats), (s) =>
          s.crashed ? Effect.fail(systemError("EIO", "IO", operation, path)) : Effect.void)

      /** `inner`, unless the disk crashed or reads fail by now (a run of pieces counts as one read). */
      const faultyRead = <A>(inner: Effect.Effect<A, StorageError>) =>
        Effect.gen(function* () {
          yield* crashed("read")
          const { failReadsAfter } = yield* Ref.get(faults)
          const { reads } = yield* Ref.getAndUpdate(stats, (s) => ({ ...s, reads: s.reads + 1 }))
          if (failReadsAfter !== undefined && reads >= failReadsAfter) return yield* systemError("EIO", "IO", "read", path)
          return yield* inner
        })
      const read = (index: number, begin: number, length: number, into?: Uint8Array) =>
        faultyRead(storage.read(index, begin, length, into))

      const writePiece = (index: number, data: Uint8Array) =>
        Effect.gen(function* () {
          yield* crashed("write")
          const current = yield* Ref.get(faults)
          if (current.writeDelay !== undefined) yield* Effect.sleep(current.writeDelay)
          const { bytesWritten, writes } = yield* Ref.get(stats)
          if (current.crashAfterWrites !== undefined && writes >= current.crashAfterWrites) {
            const torn = new Uint8Array(data.length)
            torn.set(data.subarray(0, Math.floor(data.length / 2)))
            yield* Ref.update(stats, (s) => ({ ...s, crashed: true }))
            yield* storage.writePiece(index, torn)
            return yield* systemError("EIO", "IO", "write", path)
          }
          if (current.failWritesAfter !== undefined && writes >= current.failWritesAfter) {
            return yield* systemError("EIO", "IO", "write", path)
          }
          if (current.noSpaceAfterBytes !== undefined && bytesWritten + data.length > current.noSpaceAfterBytes) {
            return yield* systemError("ENOSPC", "NoSpace", "write", path)
          }
          yield* storage.writePiece(index, data)
          yield* Ref.update(stats, (s) => ({ ...s, writes: s.writes + 1, bytesWritten: s.bytesWritten + data.length }))
        })

      return {
        info: storage.info,
        directory: storage.directory,
        read,
        readPieces: (first, count, into) => faultyRead(storage.readPieces(first, count, into)),
        writePiece,
        fileLength: (fileIndex) => Effect.zipRight(crashed("stat"), storage.fileLength(fileIndex)),
        // Hashed here, so that only pieces that are written meet the write faults.
        writeVerified: (index, data) =>
          hashIs(data, pieceHash(storage.info, index)) ? Effect.as(writePiece(index, data), true) : Effect.succeed(false),
        flush: Effect.gen(function* () {
          yield* crashed("sync")
          const { flushDelay } = yield* Ref.get(faults)
          const { bytesWritten } = yield* Ref.getAndUpdate(stats, (s) => ({ ...s, flushing: s.flushing + 1 }))
          yield* storage.flush
          if (flushDelay !== undefined) yield* Effect.sleep(flushDelay)
          yield* Ref.update(stats, (s) => ({
            ...s,
            flushes: s.flushes + 1,
            flushing: s.flushing - 1,
            bytesWrittenAtLastFlush: bytesWritten
          }))
        })
      }
    })
})

/**
 * A Storage with `faults` over the Storage it is given, and its `Control`. Provide
 * it inside the real storage: `effect.pipe(Effect.provide(FaultyStorage.layer(f)), Effect.provide(MemoryStorage.layer))`.
 */
export const layer = (faults: Faults): Layer.Layer<Storage | Control, never, Storage> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const inner = yield* Storage
      const current = yield* Ref.make(faults)
      const stats = yield* Ref.make<Stats>({ reads: 0, writes: 0, bytesWritten: 0, flushes: 0, bytesWrittenAtLastFlush: 0, flushing: 0, crashed: false })
      return Context.make(Storage, wrap(inner, current, stats)).pipe(
        Context.add(Control, { stats: Ref.get(stats), set: (next) => Ref.set(current, next) })
      )
    })
  )
