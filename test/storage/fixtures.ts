/** Hand-built torrents for the storage tests: an `Info` and the exact bytes it describes. */
import type { Metainfo } from "@bitfiber/core"
import { expect } from "@effect/vitest"
import { createHash } from "node:crypto"

/** One file of a test torrent. */
export interface FileSpec {
  readonly length: number
  readonly padding?: boolean
  /** Path below the torrent name; defaults to a nested `d<i%3>/f<i>.bin`. */
  readonly path?: ReadonlyArray<string>
}

/** A test torrent: its info and the bytes of the whole torrent (padding is zeros). */
export interface Fixture {
  readonly info: Metainfo.Info
  readonly content: Uint8Array
  /** The bytes of file `index`. */
  readonly fileBytes: (index: number) => Uint8Array
  /** The bytes of piece `index`. */
  readonly piece: (index: number) => Uint8Array
}

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
export const bytes = (length: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let state = seed | 1
  for (let i = 0; i < length; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    out[i] = state & 0xff
  }
  return out
}

/** Builds the torrent `name` over `files`, hashing its pieces. */
export const makeTorrent = (files: ReadonlyArray<FileSpec>, pieceLength: number, seed = 7, name = "t"): Fixture => {
  const totalLength = files.reduce((sum, file) => sum + file.length, 0)
  const content = bytes(totalLength, seed)
  let offset = 0
  const entries = files.map((file, index): Metainfo.FileEntry => {
    const path = [name, ...(file.path ?? (file.padding ? [".pad", String(index)] : [`d${index % 3}`, `f${index}.bin`]))]
    const entry = { rawPath: path, path, length: file.length, offset, padding: file.padding ?? false }
    if (entry.padding) content.fill(0, offset, offset + file.length)
    offset += file.length
    return entry
  })
  const pieceCount = Math.ceil(totalLength / pieceLength)
  const pieces = new Uint8Array(pieceCount * 20)
  for (let index = 0; index < pieceCount; index++) {
    const data = content.subarray(index * pieceLength, Math.min(totalLength, (index + 1) * pieceLength))
    pieces.set(createHash("sha1").update(data).digest(), index * 20)
  }
  const info: Metainfo.Info = {
    name,
    pieceLength,
    pieces,
    pieceCount,
    files: entries,
    totalLength,
    private: false,
    multiFile: true
  }
  return {
    info,
    content,
    fileBytes: (index) => content.subarray(entries[index]!.offset, entries[index]!.offset + entries[index]!.length),
    piece: (index) => content.subarray(index * pieceLength, Math.min(totalLength, (index + 1) * pieceLength))
  }
}

/** A fixed permutation of `0..n-1` (Fisher-Yates over a seeded generator). */
export const shuffled = (n: number, seed: number): Array<number> => {
  const order = Array.from({ length: n }, (_, i) => i)
  const random = bytes(n * 4, seed)
  for (let i = n - 1; i > 0; i--) {
    const r = ((random[i * 4]! << 16) | (random[i * 4 + 1]! << 8) | random[i * 4 + 2]!) % (i + 1)
    ;[order[i], order[r]] = [order[r]!, order[i]!]
  }
  return order
}

/** A torrent exercising every layout case: files spanning pieces, zero-length files, padding, a short last piece. */
export const mixed = (): Fixture =>
  makeTorrent(
    [
      { length: 100 },
      { length: 0 },
      { length: 40_000 },
      { length: 1_000, padding: true },
      { length: 16_384 },
      { length: 0, path: ["empty", "nothing.txt"] },
      { length: 3 },
      { length: 70_000 },
      { length: 5 },
      { length: 0, path: ["last-empty"] }
    ],
    32_768
  )

/** Asserts equal bytes; cheaper than a deep `toEqual` on large arrays, and names the first difference. */
export const expectBytes = (actual: Uint8Array, expected: Uint8Array): void => {
  expect(actual.length, "length").toBe(expected.length)
  const first = actual.findIndex((byte, i) => byte !== expected[i])
  expect(first, "index of the first differing byte").toBe(-1)
}
