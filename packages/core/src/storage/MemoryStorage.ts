/**
 * An in-memory Storage for tests: files are growable byte arrays keyed by absolute path. Same
 * semantics as the live storage (missing file = `NotFound`, short file = `Truncated`, padding never
 * stored), and a `MemoryDisk` to inspect or pre-fill the files.
 */
import * as NodePath from "node:path"
import { Context, Effect, Layer, Option } from "effect"
import { type FileAccess, make, Storage, StorageError } from "./Storage.js"

/** The files a memory storage holds, for tests to read back or pre-fill. */
export class MemoryDisk extends Context.Tag("bitfiber/MemoryDisk")<
  MemoryDisk,
  {
    /** A copy of the bytes of the file at `path` (resolved like the torrent's paths), if it exists. */
    readonly file: (path: string) => Effect.Effect<Option.Option<Uint8Array>>
    /** Stores a file as if it were on disk before the torrent opened (a seeder's data, a truncated file). */
    readonly put: (path: string, bytes: Uint8Array) => Effect.Effect<void>
    /** The absolute paths of all stored files, sorted. */
    readonly paths: Effect.Effect<ReadonlyArray<string>>
  }
>() {}

/** A stored file: `bytes` is spare capacity, `length` is how far it has been written (a file's size). */
interface MemoryFile {
  bytes: Uint8Array
  length: number
}

/** File primitives over a map of path to file. */
const makeAccess = (files: Map<string, MemoryFile>): FileAccess => ({
  read: (file, position, target) =>
    Effect.suspend(() => {
      const stored = files.get(file.path)
      if (stored === undefined) return Effect.fail(new StorageError({ reason: "NotFound", operation: "open", path: file.path }))
      if (stored.length < position + target.length) {
        return Effect.fail(new StorageError({ reason: "Truncated", operation: "read", path: file.path }))
      }
      target.set(stored.bytes.subarray(position, position + target.length))
      return Effect.void
    }),
  write: (file, position, bytes) =>
    Effect.sync(() => {
      const stored = files.get(file.path) ?? { bytes: new Uint8Array(0), length: 0 }
      const end = position + bytes.length
      if (end > stored.bytes.length) {
        // Doubling keeps in-order writes of a big file linear, as a real file's growth is.
        const grown = new Uint8Array(Math.min(file.length, Math.max(end, stored.bytes.length * 2)))
        grown.set(stored.bytes.subarray(0, stored.length))
        stored.bytes = grown
      }
      stored.bytes.set(bytes, position)
      stored.length = Math.max(stored.length, end)
      files.set(file.path, stored)
    }),
  create: (file) =>
    Effect.sync(() => {
      if (!files.has(file.path)) files.set(file.path, { bytes: new Uint8Array(0), length: 0 })
    }),
  length: (file) => Effect.sync(() => Option.map(Option.fromNullable(files.get(file.path)), (stored) => stored.length)),
  sync: () => Effect.void
})

/** A memory Storage and its disk; each build of the layer starts with an empty disk. */
export const layer: Layer.Layer<Storage | MemoryDisk> = Layer.effectContext(
  Effect.sync(() => {
    const files = new Map<string, MemoryFile>()
    const access = makeAccess(files)
    return Context.make(Storage, { open: (info, directory) => make(info, directory, access) }).pipe(
      Context.add(MemoryDisk, {
        file: (path) =>
          Effect.sync(() =>
            Option.map(Option.fromNullable(files.get(NodePath.resolve(path))), (stored) => stored.bytes.slice(0, stored.length))
          ),
        put: (path, bytes) =>
          Effect.sync(() => void files.set(NodePath.resolve(path), { bytes: Uint8Array.from(bytes), length: bytes.length })),
        paths: Effect.sync(() => [...files.keys()].sort())
      })
    )
  })
)
