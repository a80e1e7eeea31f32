/**
 * The Storage service: where a torrent's pieces are read from and written to. The torrent sees
 * pieces; an implementation only provides per-file primitives (`FileAccess`) and `make` does the
 * piece-to-file mapping, so the live (node:fs) and in-memory stores behave the same and a fault
 * wrapper around either is a few lines.
 */
import { createHash } from "node:crypto"
import * as NodePath from "node:path"
import { Context, Data, Effect, Option, type Scope } from "effect"
import { type Info, pieceHash, pieceSize } from "../metainfo/Metainfo.js"
import * as FileLayout from "./FileLayout.js"

/** What kind of failure a storage operation hit. */
export type StorageErrorReason =
  | "NotFound"
  | "Truncated"
  | "NoSpace"
  | "Permission"
  | "NotAFile"
  | "TooManyFiles"
  | "OutOfRange"
  | "UnsafePath"
  | "IO"

/** The operation that failed, named in the error message. */
export type StorageOperation = "open" | "read" | "write" | "stat" | "sync" | "mkdir"

/** Why a storage operation failed, and on which path. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly reason: StorageErrorReason
  readonly operation: StorageOperation
  readonly path: string
  readonly cause?: unknown
}> {
  /** One line for a user: what went wrong, doing what, where (and the errno code when it is not obvious). */
  override get message(): string {
    const code = this.reason === "IO" ? codeOf(this.cause) : undefined
    return `${describe[this.reason]} ${verb[this.operation]} ${this.path}${code === undefined ? "" : ` (${code})`}`
  }
}

const describe: Record<StorageErrorReason, string> = {
  NotFound: "no such file",
  Truncated: "file is shorter than the torrent needs",
  NoSpace: "no space left on device",
  Permission: "permission denied",
  NotAFile: "not a regular file (or a file is in the way of a directory)",
  TooManyFiles: "too many open files",
  OutOfRange: "byte range outside the torrent",
  UnsafePath: "unsafe file path (outside the download directory or listed twice)",
  IO: "input/output error"
}

const verb: Record<StorageOperation, string> = {
  open: "opening",
  read: "reading",
  write: "writing",
  stat: "checking",
  sync: "syncing",
  mkdir: "creating directory"
}

const reasonOfCode: Record<string, StorageErrorReason> = {
  ENOENT: "NotFound",
  ENOSPC: "NoSpace",
  EDQUOT: "NoSpace",
  EFBIG: "NoSpace",
  EACCES: "Permission",
  EPERM: "Permission",
  EROFS: "Permission",
  EISDIR: "NotAFile",
  ENOTDIR: "NotAFile",
  EEXIST: "NotAFile",
  EMFILE: "TooManyFiles",
  ENFILE: "TooManyFiles"
}

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined

/** Maps a Node.js system error (by its errno `code`) to a `StorageError`; unknown codes are `IO`. */
export const fromSystemError = (cause: unknown, operation: StorageOperation, path: string): StorageError => {
  const code = codeOf(cause)
  const reason = code !== undefined && Object.hasOwn(reasonOfCode, code) ? reasonOfCode[code]! : "IO"
  return new StorageError({ reason, operation, path, cause })
}

/** The storage of one open torrent. Operations may run concurrently from several fibers. */
export interface TorrentStorage {
  /** The torrent this storage holds. */
  readonly info: Info
  /** Absolute download directory; every file lives under it. */
  readonly directory: string
  /**
   * Reads `length` bytes at `begin` of piece `index`, into the start of `into` when it is given
   * (a buffer of the caller's to reuse; at least `length` bytes), else into a new buffer. Fails
   * with `NotFound` or `Truncated` when the bytes were never written, which callers checking for
   * data treat as "piece missing".
   */
  readonly read: (index: number, begin: number, length: number, into?: Uint8Array) => Effect.Effect<Uint8Array, StorageError>
  /**
   * Reads the `count` whole pieces from `first` on, one after the other, like `read` (into the
   * start of `into` when given): one read per file for a run of pieces, as a resume check wants.
   */
  readonly readPieces: (first: number, count: number, into?: Uint8Array) => Effect.Effect<Uint8Array, StorageError>
  /**
   * Writes a whole piece to the files it spans, creating files and directories as needed. Also
   * creates the zero-length files that sit at this piece's offsets, so a complete download has
   * every file without a separate finishing step.
   */
  readonly writePiece: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  /**
   * `writePiece` if `data` hashes to piece `index`'s SHA-1, and whether it did: a piece that does
   * not match touches no disk. The live storage hashes and writes on its disk thread, in one step.
   */
  readonly writeVerified: (index: number, data: Uint8Array) => Effect.Effect<boolean, StorageError>
  /** The stored length of file `fileIndex`, none if it does not exist (padding: its length). */
  readonly fileLength: (fileIndex: number) => Effect.Effect<Option.Option<number>, StorageError>
  /** Makes every write so far durable (fsync of the files written since the last flush). */
  readonly flush: Effect.Effect<void, StorageError>
}

/** One file of the torrent as an implementation sees it. */
export interface StoredFile {
  readonly index: number
  /** Absolute path, checked to be inside the download directory. */
  readonly path: string
  /** The length the torrent gives it; writes never go past it. */
  readonly length: number
}

/** The per-file primitives an implementation provides to `make`. Never called for padding files. */
export interface FileAccess {
  /** Fills `target` from `position` of the file; `NotFound` / `Truncated` when the bytes are not there. */
  readonly read: (file: StoredFile, position: number, target: Uint8Array) => Effect.Effect<void, StorageError>
  /**
   * Writes `parts` of one piece's `data`, in order, creating files and their directories if needed;
   * never truncates. With `digest`, only if `data` hashes to it (SHA-1). Whether it wrote.
   */
  readonly writePiece: (data: Uint8Array, parts: ReadonlyArray<PiecePart>, digest?: Uint8Array) => Effect.Effect<boolean, StorageError>
  /** Creates the (zero-length) file and its directories if it does not exist. */
  readonly create: (file: StoredFile) => Effect.Effect<void, StorageError>
  /** The current length of the file, none if it does not exist; `NotAFile` for a directory. */
  readonly length: (file: StoredFile) => Effect.Effect<Option.Option<number>, StorageError>
  /** Makes the file's written bytes durable. */
  readonly sync: (file: StoredFile) => Effect.Effect<void, StorageError>
}

/** Where bytes [begin, begin + length) of a piece go: `position` of `file`. */
export interface PiecePart {
  readonly file: StoredFile
  readonly position: number
  readonly begin: number
  readonly length: number
}

/** Whether the SHA-1 of `data`, computed on the calling thread (~0.1 ms per 256 KiB), is `digest`. */
export const hashIs = (data: Uint8Array, digest: Uint8Array): boolean =>
  createHash("sha1").update(data).digest().equals(digest)

/** Builds a `TorrentStorage` from per-file primitives; fails with `UnsafePath` for a path outside `directory`. */
export const make = (info: Info, directory: string, access: FileAccess): Effect.Effect<TorrentStorage, StorageError> =>
  Effect.gen(function* () {
    const root = NodePath.resolve(directory)
    const files = yield* resolveFiles(info, root)
    // Zero-length files are created with the piece at whose offset they sit.
    const emptyFilesByPiece = new Map<number, Array<StoredFile>>()
    for (const file of files) {
      if (file.length !== 0 || info.files[file.index]!.padding) continue
      const piece = FileLayout.pieceAt(info, info.files[file.index]!.offset)
      const atPiece = emptyFilesByPiece.get(piece)
      if (atPiece === undefined) emptyFilesByPiece.set(piece, [file])
      else atPiece.push(file)
    }
    const dirty = new Set<number>()
    const outOfRange = (operation: StorageOperation, cause: object) =>
      new StorageError({ reason: "OutOfRange", operation, path: root, cause })

    const read = (index: number, begin: number, length: number, into?: Uint8Array) =>
      Effect.suspend(() => {
        const found = FileLayout.segments(info, index, begin, length)
        if (Option.isNone(found)) return Effect.fail(outOfRange("read", { index, begin, length }))
        return readSegments(found.value, begin, length, into)
      })

    const readPieces = (first: number, count: number, into?: Uint8Array) =>
      Effect.suspend(() => {
        const start = first * info.pieceLength
        const length = Math.min(info.totalLength, (first + count) * info.pieceLength) - start
        const found = Number.isInteger(first) && Number.isInteger(count) && first >= 0 && count > 0 && first + count <= info.pieceCount
          ? FileLayout.rangeSegments(info, start, length)
          : Option.none()
        if (Option.isNone(found)) return Effect.fail(outOfRange("read", { first, count }))
        return readSegments(found.value, 0, length, into)
      })

    /** Reads `segments` (offsets from `begin` on) into `into` or a new buffer of `length` bytes. */
    const readSegments = (segments: ReadonlyArray<FileLayout.Segment>, begin: number, length: number, into: Uint8Array | undefined) =>
      Effect.suspend(() => {
        if (into !== undefined && into.length < length) return Effect.fail(outOfRange("read", { length, into: into.length }))
        const data = segments.filter((segment) => !segment.padding)
        // Padding reads as zeros: zero-fill only when there is padding, else every byte is overwritten.
        const padded = data.length !== segments.length
        const target = into === undefined
          ? padded ? new Uint8Array(length) : Buffer.allocUnsafe(length)
          : padded ? into.subarray(0, length).fill(0) : into.subarray(0, length)
        return Effect.as(
          Effect.forEach(
            data,
            (segment) => {
              const offset = segment.pieceOffset - begin
              return access.read(files[segment.fileIndex]!, segment.fileOffset, target.subarray(offset, offset + segment.length))
            },
            { discard: true }
          ),
          target
        )
      })

    const write = (index: number, data: Uint8Array, verify: boolean) =>
      Effect.suspend(() => {
        const found = Option.filter(FileLayout.segments(info, index, 0, data.length), () => data.length === pieceSize(info, index))
        if (Option.isNone(found)) return Effect.fail(outOfRange("write", { index, length: data.length }))
        const parts = found.value.filter((segment) => !segment.padding).map((segment): PiecePart => ({
          file: files[segment.fileIndex]!,
          position: segment.fileOffset,
          begin: segment.pieceOffset,
          length: segment.length
        }))
        return Effect.flatMap(access.writePiece(data, parts, verify ? pieceHash(info, index) : undefined), (written) => {
          if (!written) return Effect.succeed(false)
          // Dirty once written, not before: a flush running meanwhile must not take a file off
          // the dirty set before these bytes are in it. (A failed write fails the torrent.)
          for (const part of parts) dirty.add(part.file.index)
          const empty = emptyFilesByPiece.get(index)
          return empty === undefined ? Effect.succeed(true) : Effect.as(Effect.forEach(empty, access.create, { discard: true }), true)
        })
      })

    const fileLength = (fileIndex: number) =>
      Effect.suspend(() => {
        const file = files[fileIndex]
        if (file === undefined) return Effect.fail(outOfRange("stat", { fileIndex }))
        return info.files[fileIndex]!.padding ? Effect.succeed(Option.some(file.length)) : access.length(file)
      })

    const flush = Effect.suspend(() => {
      const written = [...dirty]
      dirty.clear()
      return Effect.forEach(written, (fileIndex) => access.sync(files[fileIndex]!), { discard: true }).pipe(
        // Files not synced this time stay dirty for the next flush.
        Effect.tapError(() => Effect.sync(() => written.forEach((fileIndex) => dirty.add(fileIndex))))
      )
    })

    return {
      info,
      directory: root,
      read,
      readPieces,
      writePiece: (index, data) => Effect.asVoid(write(index, data, false)),
      writeVerified: (index, data) => write(index, data, true),
      fileLength,
      flush
    } satisfies TorrentStorage
  })

/** Absolute paths of the torrent's files; defence in depth against paths escaping `root` or colliding. */
const resolveFiles = (info: Info, root: string): Effect.Effect<ReadonlyArray<StoredFile>, StorageError> =>
  Effect.suspend(() => {
    const seen = new Set<string>()
    const files: Array<StoredFile> = []
    for (const [index, entry] of info.files.entries()) {
      const path = NodePath.resolve(root, ...entry.path)
      const relative = NodePath.relative(root, path)
      const escapes = relative === "" || relative === ".." || relative.startsWith(`..${NodePath.sep}`) ||
        NodePath.isAbsolute(relative)
      if (entry.path.length === 0 || escapes || (!entry.padding && seen.has(path))) {
        return Effect.fail(new StorageError({ reason: "UnsafePath", operation: "open", path }))
      }
      if (!entry.padding) seen.add(path)
      files.push({ index, path, length: entry.length })
    }
    return Effect.succeed(files)
  })

/** The Storage service: opens the storage of a torrent under a download directory. */
export class Storage extends Context.Tag("bitfiber/Storage")<
  Storage,
  {
    /** Opens (lazily: nothing touches the disk until the first read or write) a torrent's storage. */
    readonly open: (info: Info, directory: string) => Effect.Effect<TorrentStorage, StorageError, Scope.Scope>
  }
>() {}
