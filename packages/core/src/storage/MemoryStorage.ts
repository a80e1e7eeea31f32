/**
 * An in-memory Storage for tests: files are growable byte arrays keyed by absolute path. Same
 * semantics as the live storage (missing file = `NotFound`, short file = `Truncated`, padding never
 * stored), and a `MemoryDisk` to inspect or pre-fill the files.
 */
import * as NodePath from "node:path"
import { Context, Effect, Layer, Option } from "effect"
import { type FileAccess, hashIs, make, Storage, StorageError } from "./Storage.js"

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

/**
 * A stored file as pages of `PAGE_SIZE` bytes, allocated when first written (holes read as zeros,
 * as in a sparse file): writes in any order cost only the bytes written, never a reallocation and
 * copy of the whole file (which stalled the event loop and doubled memory on big files).
 */
interface MemoryFile {
  readonly pages: Map<number, Uint8Array>
  /** How far the file has been written (its size). */
  length: number
}

const PAGE_SIZE = 64 * 1024

const emptyFile = (): MemoryFile => ({ pages: new Map(), length: 0 })

/** Calls `f` for each page-sized piece of the byte range [position, position + length). */
const forEachPage = (position: number, length: number, f: (page: number, offset: number, at: number, n: number) => void) => {
  let done = 0
  while (done < length) {
    const absolute = position + done
    const page = Math.floor(absolute / PAGE_SIZE)
    const offset = absolute % PAGE_SIZE
    const n = Math.min(PAGE_SIZE - offset, length - done)
    f(page, offset, done, n)
    done += n
  }
}

const readInto = (stored: MemoryFile, position: number, target: Uint8Array) =>
  forEachPage(position, target.length, (page, offset, at, n) => {
    const bytes = stored.pages.get(page)
    if (bytes === undefined) target.fill(0, at, at + n)
    else target.set(bytes.subarray(offset, offset + n), at)
  })

const writeFrom = (stored: MemoryFile, position: number, bytes: Uint8Array) => {
  forEachPage(position, bytes.length, (page, offset, at, n) => {
    let pageBytes = stored.pages.get(page)
    if (pageBytes === undefined) {
      pageBytes = new Uint8Array(PAGE_SIZE)
      stored.pages.set(page, pageBytes)
    }
    pageBytes.set(bytes.subarray(at, at + n), offset)
  })
  stored.length = Math.max(stored.length, position + bytes.length)
}

const contents = (stored: MemoryFile): Uint8Array => {
  const bytes = new Uint8Array(stored.length)
  readInto(stored, 0, bytes)
  return bytes
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
      readInto(stored, position, target)
      return Effect.void
    }),
  writePiece: (data, parts, digest) =>
    Effect.sync(() => {
      if (digest !== undefined && !hashIs(data, digest)) return false
      for (const { begin, file, length, position } of parts) {
        const stored = files.get(file.path) ?? emptyFile()
        writeFrom(stored, position, data.subarray(begin, begin + length))
        files.set(file.path, stored)
      }
      return true
    }),
  create: (file) =>
    Effect.sync(() => {
      if (!files.has(file.path)) files.set(file.path, emptyFile())
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
            Option.map(Option.fromNullable(files.get(NodePath.resolve(path))), contents)
          ),
        put: (path, bytes) =>
          Effect.sync(() => {
            const stored = emptyFile()
            writeFrom(stored, 0, bytes)
            files.set(NodePath.resolve(path), stored)
          }),
        paths: Effect.sync(() => [...files.keys()].sort())
      })
    )
  })
)
