/** Test data on disk: scoped temp dirs, deterministic payloads, and their SHA-256 digests. */
import { createCipheriv, createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir, mkdtemp, open, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join, relative, sep } from "node:path"
import { pipeline } from "node:stream/promises"
import { Effect, type Scope } from "effect"

/** One file of a payload: its path relative to the payload's dir, and its size in bytes. */
export interface PayloadFile {
  readonly path: string
  readonly size: number
}

/** A fresh directory under the OS temp dir, removed with everything in it when the Scope closes (kept if BITFIBER_KEEP_TMP is set). */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), `bitfiber-${prefix}-`))),
    (dir) =>
      process.env["BITFIBER_KEEP_TMP"] === undefined
        ? Effect.promise(() => rm(dir, { recursive: true, force: true }))
        : Effect.sync(() => console.error(`[harness] kept ${dir}`))
  )

const chunkSize = 4 * 1024 * 1024

/**
 * Writes `files` under `dir` with pseudo-random content that depends only on `seed` and each
 * file's path, and no two pieces alike at any piece size: chunk k of a file is a 4 MiB AES-CTR
 * keystream block XORed with a word derived from k (cheaper than AES for every byte). Returns `dir`.
 */
export const makeTestPayload = (options: {
  readonly dir: string
  readonly files: ReadonlyArray<PayloadFile>
  readonly seed?: string | number
}): Effect.Effect<string> =>
  Effect.promise(async () => {
    const chunk = Buffer.alloc(chunkSize)
    const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunkSize / 4)
    for (const file of options.files) {
      const key = createHash("sha256").update(`${options.seed ?? 0}\0${file.path}`).digest()
      const base = new Uint32Array(createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(chunkSize)).buffer)
      const target = join(options.dir, file.path)
      await mkdir(dirname(target), { recursive: true })
      const handle = await open(target, "w")
      try {
        for (let k = 0, left = file.size; left > 0; k++, left -= chunkSize) {
          const mask = Math.imul(k + 1, 0x9e3779b1) >>> 0
          for (let i = 0; i < words.length; i++) words[i] = base[i] ^ mask
          await handle.write(chunk, 0, Math.min(left, chunkSize))
        }
      } finally {
        await handle.close()
      }
    }
    return options.dir
  })

/** Hex SHA-256 of one file's content. */
export const sha256File = (path: string): Effect.Effect<string> =>
  Effect.promise(async () => {
    const hash = createHash("sha256")
    await pipeline(createReadStream(path, { highWaterMark: chunkSize }), hash)
    return hash.digest("hex")
  })

/**
 * Hex SHA-256 of every regular file under `dir`, keyed by its path relative to `dir` ("/"
 * separated) in sorted order; files whose relative path matches `exclude` are left out.
 */
export const sha256Dir = (dir: string, options: { readonly exclude?: RegExp } = {}): Effect.Effect<Record<string, string>> =>
  Effect.gen(function*() {
    const entries = yield* Effect.promise(() => readdir(dir, { recursive: true, withFileTypes: true }))
    const paths = entries
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join("/"))
      .filter((path) => options.exclude === undefined || !options.exclude.test(path))
      .sort()
    const digests: Record<string, string> = {}
    for (const path of paths) digests[path] = yield* sha256File(join(dir, path))
    return digests
  })

/** Matches the relative path of a BEP 47 pad file (".pad/N"), e.g. for `sha256Dir`'s `exclude`. */
export const padFilePattern = /(^|\/)\.pad\//

/**
 * Writes a torrent's pad files (zeros) under `dir`, as clients without BEP 47 support (aria2c
 * 1.36, transmission 3.00) expect them on disk when seeding; `files` as in `libtorrentInfo`.
 */
export const writePadFiles = (
  dir: string,
  files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly pad: boolean }>
): Effect.Effect<void> =>
  Effect.promise(async () => {
    for (const file of files.filter((f) => f.pad)) {
      const target = join(dir, file.path)
      await mkdir(dirname(target), { recursive: true })
      const handle = await open(target, "w")
      await handle.truncate(file.size).finally(() => handle.close())
    }
  })
