/**
 * Creates a v1 `.torrent` from a file or a directory.
 *
 * Choices: files are ordered by their path components compared as UTF-8 bytes; hidden and
 * zero-length files are included; symbolic links are followed (a link back to a directory that
 * contains it is a `SymlinkLoop` error); anything that is neither a file nor a directory (fifo,
 * socket, device) is an `UnsupportedFile` error, never skipped silently. Hashing reads the
 * files as one stream into a few reused buffers of ~4 MiB of whole pieces, hashed on a thread per
 * core (up to 4) while the next are read, so memory does not grow with the data; the result is
 * parsed back with `Metainfo.parse`, so the two always agree.
 */
import { Clock, Data, Effect, Either, Fiber } from "effect"
import type { FileHandle } from "node:fs/promises"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import * as Bencode from "../bencode/Bencode.js"
import * as HashPool from "./internal/hashPool.js"
import * as Metainfo from "./Metainfo.js"

/** What to put in the torrent. */
export interface Options {
  /** A file or a directory. */
  readonly path: string
  /** Tracker tiers (BEP 12). */
  readonly trackers?: ReadonlyArray<ReadonlyArray<string>>
  /** A power of two from 16 KiB to 256 MiB; by default chosen for about 1000-2000 pieces. */
  readonly pieceLength?: number
  /** BEP 27 private flag. */
  readonly private?: boolean
  readonly comment?: string
  /** BEP 19 web seeds. */
  readonly webSeeds?: ReadonlyArray<string>
  /** Default `bitfiber/0.1.0`. */
  readonly createdBy?: string
  /** Default now (from Effect's Clock); `null` leaves the date out. */
  readonly creationDate?: Date | null
}

/** Hashing progress, reported after each chunk read. */
export interface Progress {
  readonly hashedBytes: number
  readonly totalBytes: number
}

/** The created torrent: its bytes and their parse. */
export interface Result {
  readonly torrent: Uint8Array
  readonly metainfo: Metainfo.Metainfo
}

/** Why a torrent could not be created. */
export class CreateError extends Data.TaggedError("CreateError")<{
  readonly reason:
    | "NotFound"
    | "Empty"
    | "UnsupportedFile"
    | "SymlinkLoop"
    | "Io"
    | "FileChanged"
    | "InvalidOption"
    | "InvalidTorrent"
  readonly message: string
  readonly path?: string
  readonly cause?: unknown
}> {}

/** Default `Options.createdBy`. */
export const DEFAULT_CREATED_BY = "bitfiber/0.1.0"
/** Smallest piece length, chosen or given. */
export const MIN_PIECE_LENGTH = 16 * 1024
/** Largest automatically chosen piece length. */
export const MAX_AUTO_PIECE_LENGTH = 16 * 1024 * 1024
const TARGET_MAX_PIECES = 2000

/** The automatic piece length: the smallest power of two giving at most ~2000 pieces, clamped. */
export const autoPieceLength = (totalLength: number): number => {
  let pieceLength = MIN_PIECE_LENGTH
  while (totalLength / pieceLength > TARGET_MAX_PIECES && pieceLength < MAX_AUTO_PIECE_LENGTH) pieceLength *= 2
  return pieceLength
}

interface SourceFile {
  /** Path components below the torrent's root (empty for a single-file torrent). */
  readonly components: ReadonlyArray<string>
  readonly absolute: string
  readonly length: number
}

const ioError = (path: string, action: string) => (cause: unknown): CreateError => {
  const code = (cause as { readonly code?: unknown } | null)?.code
  return code === "ENOENT"
    ? new CreateError({ reason: "NotFound", message: `${path} does not exist`, path, cause })
    : new CreateError({ reason: "Io", message: `cannot ${action} ${path}: ${String(cause)}`, path, cause })
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

// Depth-first with sorted children yields files in path-component byte order.
const walk = (
  absolute: string,
  components: ReadonlyArray<string>,
  ancestors: ReadonlySet<string>,
  out: Array<SourceFile>
): Effect.Effect<void, CreateError> =>
  Effect.gen(function*() {
    const stats = yield* Effect.tryPromise({ try: () => fs.stat(absolute, { bigint: true }), catch: ioError(absolute, "stat") })
    if (stats.isFile()) {
      out.push({ components, absolute, length: Number(stats.size) })
      return
    }
    if (!stats.isDirectory()) {
      return yield* new CreateError({ reason: "UnsupportedFile", message: `${absolute} is not a file or a directory`, path: absolute })
    }
    const identity = `${stats.dev}:${stats.ino}`
    if (ancestors.has(identity)) {
      return yield* new CreateError({ reason: "SymlinkLoop", message: `${absolute} links back to a directory above it`, path: absolute })
    }
    const names = yield* Effect.tryPromise({ try: () => fs.readdir(absolute), catch: ioError(absolute, "list") })
    const inside = new Set(ancestors).add(identity)
    for (const name of names.sort(byBytes)) {
      yield* walk(nodePath.join(absolute, name), [...components, name], inside, out)
    }
  })

/** A run being filled with whole pieces, or hashed. */
interface Run {
  readonly buffer: Uint8Array
  /** Index of its first piece. */
  first: number
  filled: number
}

/**
 * The piece hashes of `files` read one after another as one stream of bytes, in pieces of
 * `pieceLength`; `onHashed` after each run. Runs are read into the pool's buffers and hashed on its
 * threads while the next ones are read.
 */
const hashFiles = (
  files: ReadonlyArray<SourceFile>,
  pieceLength: number,
  pieceCount: number,
  pool: HashPool.HashPool,
  onHashed: (bytes: number) => Effect.Effect<void>
): Effect.Effect<Uint8Array, CreateError> =>
  Effect.gen(function*() {
    const pieces = new Uint8Array(pieceCount * 20)
    const free = pool.runBuffers(pieceLength)
    const runLength = free[0]!.length
    const hashing: Array<{ readonly run: Run; readonly digests: Fiber.Fiber<Uint8Array> }> = []
    const collectOldest = Effect.gen(function*() {
      const { digests, run } = hashing.shift()!
      pieces.set(yield* Fiber.join(digests), run.first * 20)
      free.push(run.buffer)
      yield* onHashed(run.filled)
    })
    let run: Run = { buffer: free.pop()!, first: 0, filled: 0 }
    const startHashing = Effect.gen(function*() {
      hashing.push({ run, digests: yield* Effect.fork(pool.digests(run.buffer.subarray(0, run.filled), pieceLength)) })
    })
    const submit = Effect.gen(function*() {
      yield* startHashing
      const next = run.first + run.filled / pieceLength
      while (free.length === 0) yield* collectOldest
      run = { buffer: free.pop()!, first: next, filled: 0 }
    })
    for (const file of files) {
      yield* Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => fs.open(file.absolute, "r"), catch: ioError(file.absolute, "open") }),
        (handle: FileHandle) =>
          Effect.gen(function*() {
            for (let position = 0; position < file.length;) {
              const length = Math.min(runLength - run.filled, file.length - position)
              const into = run
              const { bytesRead } = yield* Effect.tryPromise({
                try: () => handle.read(into.buffer, into.filled, length, position),
                catch: ioError(file.absolute, "read")
              })
              if (bytesRead === 0) {
                return yield* new CreateError({ reason: "FileChanged", message: `${file.absolute} shrank while being hashed`, path: file.absolute })
              }
              position += bytesRead
              run.filled += bytesRead
              if (run.filled === runLength) yield* submit
            }
          }),
        (handle) => Effect.promise(() => handle.close()).pipe(Effect.ignore)
      )
    }
    // The last run: its last piece may be shorter.
    if (run.filled > 0) yield* startHashing
    while (hashing.length > 0) yield* collectOldest
    return pieces
  })

const checkOptions = (options: Options): Either.Either<void, CreateError> => {
  const invalid = (message: string) => Either.left(new CreateError({ reason: "InvalidOption", message }))
  const { pieceLength, creationDate } = options
  if (
    pieceLength !== undefined &&
    (!Number.isInteger(pieceLength) || pieceLength < MIN_PIECE_LENGTH || pieceLength > Metainfo.MAX_PIECE_LENGTH ||
      (pieceLength & (pieceLength - 1)) !== 0)
  ) {
    return invalid(`piece length ${pieceLength} is not a power of two from 16 KiB to 256 MiB`)
  }
  if (creationDate instanceof Date && Number.isNaN(creationDate.getTime())) return invalid("creation date is invalid")
  return Either.right(undefined)
}

const encodeTorrent = (
  options: Options,
  name: string,
  files: ReadonlyArray<SourceFile>,
  single: boolean,
  pieceLength: number,
  pieces: Uint8Array,
  seconds: number | undefined
): Uint8Array => {
  const tiers = Metainfo.normalizeTiers(options.trackers ?? [])
  const webSeeds = Metainfo.normalizeTiers([options.webSeeds ?? []])[0] ?? []
  const info: Bencode.Encodable = {
    name,
    "piece length": pieceLength,
    pieces,
    private: options.private === true ? 1 : undefined,
    ...(single
      ? { length: files[0]?.length ?? 0 }
      : { files: files.map((file) => ({ length: file.length, path: file.components })) })
  }
  return Bencode.encode({
    announce: tiers[0]?.[0],
    // Like mktorrent: announce-list only when there is more than one tracker.
    "announce-list": tiers.flat().length > 1 ? tiers : undefined,
    comment: options.comment,
    "created by": options.createdBy ?? DEFAULT_CREATED_BY,
    "creation date": seconds,
    info,
    "url-list": webSeeds.length > 0 ? webSeeds : undefined
  })
}

const parseBack = (torrent: Uint8Array): Either.Either<Metainfo.Metainfo, CreateError> =>
  Either.mapLeft(Metainfo.parse(torrent), (cause) =>
    new CreateError({ reason: "InvalidTorrent", message: `the files cannot form a valid torrent: ${cause.message}`, cause }))

/** Creates a torrent, calling `onProgress` as data is hashed. */
export const make = (
  options: Options,
  onProgress?: (progress: Progress) => Effect.Effect<void>
): Effect.Effect<Result, CreateError> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    const root = nodePath.resolve(options.path)
    const name = nodePath.basename(root)
    const files: Array<SourceFile> = []
    yield* walk(root, [], new Set(), files)
    const single = files.length === 1 && files[0]!.components.length === 0
    const totalLength = files.reduce((sum, file) => sum + file.length, 0)
    if (totalLength === 0) {
      return yield* new CreateError({
        reason: "Empty",
        message: files.length === 0 ? `${root} contains no files` : `${root} contains only empty files`,
        path: root
      })
    }
    const pieceLength = options.pieceLength ?? autoPieceLength(totalLength)
    const pieceCount = Math.ceil(totalLength / pieceLength)
    const millis = options.creationDate === undefined ? yield* Clock.currentTimeMillis : options.creationDate?.getTime()
    const seconds = millis === undefined ? undefined : Math.floor(millis / 1000)
    const build = (pieces: Uint8Array) => encodeTorrent(options, name, files, single, pieceLength, pieces, seconds)
    // Validate names and layout before spending minutes on hashing.
    yield* parseBack(build(new Uint8Array(pieceCount * 20)))

    let hashedBytes = 0
    const onHashed = (bytes: number) =>
      Effect.suspend(() => {
        hashedBytes += bytes
        return onProgress === undefined ? Effect.void : onProgress({ hashedBytes, totalBytes: totalLength })
      })
    const pieces = yield* Effect.scoped(
      Effect.flatMap(HashPool.make(HashPool.threadsFor(totalLength)), (pool) => hashFiles(files, pieceLength, pieceCount, pool, onHashed))
    )
    const torrent = build(pieces)
    return { torrent, metainfo: yield* parseBack(torrent) }
  })
