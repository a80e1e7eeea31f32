/**
 * The live Storage: files under the download directory through node:fs/promises. Files and their
 * directories are created on first write, never truncated; padding files are never created;
 * open handles are kept in a bounded LRU and all closed with the torrent's scope. Piece hashes and
 * writes run on one disk thread shared by the layer's torrents (internal/diskThread.ts).
 */
import { read as fdRead } from "node:fs"
import * as Fs from "node:fs/promises"
import * as NodePath from "node:path"
import { Effect, Layer, Option } from "effect"
import * as DiskThread from "./internal/diskThread.js"
import * as HandleCache from "./internal/handleCache.js"
import { type FileAccess, fromSystemError, make, Storage, StorageError, type StoredFile } from "./Storage.js"

/** Tuning of the live storage. */
export interface Options {
  /** Open file handles kept per torrent (default 64); more files are reopened as needed. */
  readonly maxOpenFiles?: number
}

/** Default bound on the open file handles of one torrent. */
export const defaultMaxOpenFiles = 64

// No O_TRUNC: existing data must survive (resume), and writes never extend a file past its length.
const openWritable = Fs.constants.O_RDWR | Fs.constants.O_CREAT

/** Opens `path` for writing, creating its parent directories when they are missing. */
const openForWrite = (path: string, flags: number): Effect.Effect<Fs.FileHandle, StorageError> => {
  const open = Effect.tryPromise({ try: () => Fs.open(path, flags, 0o666), catch: (cause) => fromSystemError(cause, "open", path) })
  return open.pipe(
    Effect.catchIf(
      (error) => error.reason === "NotFound",
      () =>
        Effect.tryPromise({
          try: () => Fs.mkdir(NodePath.dirname(path), { recursive: true }),
          catch: (cause) => fromSystemError(cause, "mkdir", NodePath.dirname(path))
        }).pipe(Effect.zipRight(open))
    )
  )
}

const closeHandle = (handle: Fs.FileHandle): Effect.Effect<void> =>
  Effect.tryPromise(() => handle.close()).pipe(Effect.ignoreLogged)

/**
 * Fills all of `target` from `file` at `position` by node:fs's callback reads on the handle's
 * descriptor: one Effect step, where a promise per read and a loop around it cost about 40.
 * Fails with `Truncated` if the file ends first.
 */
const readFully = (handle: Fs.FileHandle, file: StoredFile, position: number, target: Uint8Array): Effect.Effect<void, StorageError> =>
  Effect.async<void, StorageError>((resume) => {
    const step = (done: number) =>
      fdRead(handle.fd, target, done, target.length - done, position + done, (error, n) => {
        if (error !== null) resume(Effect.fail(fromSystemError(error, "read", file.path)))
        else if (done + n === target.length) resume(Effect.void)
        else if (n === 0) resume(Effect.fail(new StorageError({ reason: "Truncated", operation: "read", path: file.path })))
        else step(done + n)
      })
    step(0)
  })

/** The node:fs file primitives behind one torrent, with their handles bounded and scoped. */
const makeAccess = (options: Options, thread: DiskThread.DiskThread) =>
  Effect.gen(function* () {
    const handles = yield* HandleCache.make<Fs.FileHandle, StorageError>({
      capacity: options.maxOpenFiles ?? defaultMaxOpenFiles,
      open: (path, writable) =>
        writable
          ? openForWrite(path, openWritable)
          : Effect.tryPromise({ try: () => Fs.open(path, "r"), catch: (cause) => fromSystemError(cause, "open", path) }),
      close: closeHandle
    })
    const access: FileAccess = {
      read: (file, position, target) =>
        handles.use(file.path, false, (handle) => readFully(handle, file, position, target)),
      writePiece: (data, parts, digest) => {
        const onThread = (writes: ReadonlyArray<DiskThread.FileWrite>, check: Uint8Array | undefined) =>
          Effect.mapError(thread.writePiece(data, writes, check), (failure) =>
            // A thread lost before a write names the piece's first file (a piece of padding only has none).
            fromSystemError(failure, "write", (parts[failure.at] ?? parts[0])?.file.path ?? "(padding)"))
        // Each part's file handle stays in use until the thread has written to its descriptor.
        const withHandles = (fds: ReadonlyArray<number>, check: Uint8Array | undefined): Effect.Effect<boolean, StorageError> => {
          const next = parts[fds.length]
          if (next !== undefined) return handles.use(next.file.path, true, (handle) => withHandles([...fds, handle.fd], check))
          return onThread(parts.map((part, i) => ({ fd: fds[i]!, position: part.position, begin: part.begin, length: part.length })), check)
        }
        // Hash and write in one step once the files are open (every piece but a file's first); else
        // hash first, so that a piece that does not match creates no file.
        if (digest === undefined || parts.every((part) => handles.has(part.file.path, true))) return withHandles([], digest)
        return Effect.flatMap(onThread([], digest), (matches) => (matches ? withHandles([], undefined) : Effect.succeed(false)))
      },
      create: (file) =>
        Effect.acquireRelease(openForWrite(file.path, Fs.constants.O_WRONLY | Fs.constants.O_CREAT), closeHandle).pipe(
          Effect.asVoid,
          Effect.scoped
        ),
      length: (file) =>
        Effect.tryPromise({ try: () => Fs.stat(file.path), catch: (cause) => fromSystemError(cause, "stat", file.path) })
          .pipe(
            Effect.flatMap((stats) =>
              stats.isFile()
                ? Effect.succeed(Option.some(stats.size))
                : Effect.fail(new StorageError({ reason: "NotAFile", operation: "stat", path: file.path }))
            ),
            Effect.catchIf((error) => error.reason === "NotFound", () => Effect.succeedNone)
          ),
      sync: (file) =>
        handles.use(file.path, true, (handle) =>
          Effect.tryPromise({ try: () => handle.datasync(), catch: (cause) => fromSystemError(cause, "sync", file.path) })
        )
    }
    return access
  })

/** The live Storage service over node:fs; its torrents share one disk thread for piece hashes and writes. */
export const layer = (options: Options = {}): Layer.Layer<Storage> =>
  Layer.scoped(
    Storage,
    Effect.map(DiskThread.make, (thread) => ({
      open: (info, directory) => Effect.flatMap(makeAccess(options, thread), (access) => make(info, directory, access))
    }))
  )
