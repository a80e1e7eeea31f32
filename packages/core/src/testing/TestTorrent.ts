/**
 * Test torrents built in memory: deterministic pseudo-random content, correct SHA-1 piece hashes,
 * the `Metainfo` model and the `.torrent` bytes it parses from. The info-hash is the SHA-1 of the
 * canonical bencoding of the info dictionary, exactly as a real client computes it.
 */
import { createHash } from "node:crypto"
import * as Bencode from "../bencode/Bencode.js"
import * as InfoHash from "../metainfo/InfoHash.js"
import type * as Metainfo from "../metainfo/Metainfo.js"
import { Prng } from "./Seed.js"

/** One file of a test torrent. */
export interface FileSpec {
  /** Path inside the torrent, components separated by `/`. */
  readonly path: string
  readonly length: number
  /** A BEP 47 padding file: zeros, marked `attr: "p"`. */
  readonly padding?: boolean
}

/** What to build. */
export interface Options {
  /**
   * The files in torrent order. One file without a `/` in its path (and `multiFile` unset) gives
   * the single-file form, named `name` or else the file's path.
   */
  readonly files: ReadonlyArray<FileSpec>
  readonly pieceLength: number
  /** The torrent's name (default: the single file's path, or `"test"`). */
  readonly name?: string
  /** Seed of the content generator (default 1); same options and seed, same bytes. */
  readonly seed?: number
  /** Force the multi-file form even for one file. */
  readonly multiFile?: boolean
  /** Tracker tiers, written as `announce` and `announce-list`. */
  readonly trackers?: ReadonlyArray<ReadonlyArray<string>>
  /** BEP 27 private flag. */
  readonly private?: boolean
}

/** A built test torrent. */
export interface TestTorrent {
  readonly metainfo: Metainfo.Metainfo
  /** The bencoded `.torrent` file. */
  readonly torrent: Uint8Array
  /** All files' bytes concatenated in torrent order. */
  readonly content: Uint8Array
}

const sha1 = (bytes: Uint8Array): Uint8Array => createHash("sha1").update(bytes).digest()

/** Builds a test torrent. */
export const make = (options: Options): TestTorrent => {
  const single = options.files.length === 1 && options.multiFile !== true ? options.files[0] : undefined
  const multiFile = single === undefined || single.path.includes("/")
  const name = options.name ?? (multiFile || single === undefined ? "test" : single.path)

  const totalLength = options.files.reduce((sum, file) => sum + file.length, 0)
  const content = new Uint8Array(totalLength)
  new Prng(options.seed ?? 1).fill(content)
  const files: Array<Metainfo.FileEntry> = []
  let offset = 0
  for (const file of options.files) {
    if (file.padding === true) content.fill(0, offset, offset + file.length)
    const components = multiFile ? file.path.split("/") : []
    const path = [name, ...components]
    files.push({ rawPath: path, path, length: file.length, offset, padding: file.padding === true })
    offset += file.length
  }

  const pieceCount = Math.ceil(totalLength / options.pieceLength)
  const pieces = new Uint8Array(pieceCount * 20)
  for (let index = 0; index < pieceCount; index++) {
    const start = index * options.pieceLength
    pieces.set(sha1(content.subarray(start, Math.min(start + options.pieceLength, totalLength))), index * 20)
  }

  const infoDictionary: Bencode.Encodable = {
    name,
    "piece length": options.pieceLength,
    pieces,
    private: options.private === true ? 1 : undefined,
    length: multiFile ? undefined : totalLength,
    files: multiFile
      ? options.files.map((file) => ({
        length: file.length,
        path: file.path.split("/"),
        attr: file.padding === true ? "p" : undefined
      }))
      : undefined
  }
  // The encoder is canonical, so the info value inside the torrent is byte-identical to infoBytes.
  const infoBytes = Bencode.encode(infoDictionary)
  const trackers = options.trackers ?? []
  const torrent = Bencode.encode({
    announce: trackers[0]?.[0],
    "announce-list": trackers.length > 0 ? trackers : undefined,
    info: infoDictionary
  })
  return {
    metainfo: {
      infoHash: InfoHash.unsafeFromBytes(sha1(infoBytes)),
      info: {
        name,
        pieceLength: options.pieceLength,
        pieces,
        pieceCount,
        files,
        totalLength,
        private: options.private === true,
        multiFile
      },
      infoBytes,
      trackers,
      urlList: [],
      comment: undefined,
      createdBy: undefined,
      creationDate: undefined
    },
    torrent,
    content
  }
}

/** The bytes of piece `index`. */
export const piece = (test: TestTorrent, index: number): Uint8Array => {
  const { pieceLength, totalLength } = test.metainfo.info
  return test.content.subarray(index * pieceLength, Math.min((index + 1) * pieceLength, totalLength))
}
