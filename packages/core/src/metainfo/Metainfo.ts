/**
 * The model of a v1 `.torrent` file (BEP 3), parsed and validated.
 * (Parsing lives in this module too: `Metainfo.parse`.)
 */
import type { InfoHash } from "./InfoHash.js"

/** One file of a torrent, placed in the torrent's byte stream. */
export interface FileEntry {
  /** Path components as written in the torrent (the torrent name first), UTF-8 decoded. */
  readonly rawPath: ReadonlyArray<string>
  /** Path components sanitized for the local filesystem, relative to the download directory. */
  readonly path: ReadonlyArray<string>
  /** Length in bytes (may be 0). */
  readonly length: number
  /** Offset of the file's first byte in the concatenation of all files. */
  readonly offset: number
  /** A BEP 47 padding file (`attr` contains `p`): its bytes are zeros and never written. */
  readonly padding: boolean
}

/** The `info` dictionary: everything the info-hash covers. */
export interface Info {
  readonly name: string
  readonly pieceLength: number
  /** Concatenated 20-byte SHA-1 hashes, one per piece. */
  readonly pieces: Uint8Array
  readonly pieceCount: number
  /** Files in torrent order; a single-file torrent has one entry whose path is `[name]`. */
  readonly files: ReadonlyArray<FileEntry>
  readonly totalLength: number
  /** BEP 27 private flag. */
  readonly private: boolean
  /** Whether the torrent used the multi-file form (`files`), even with one file. */
  readonly multiFile: boolean
}

/** A parsed `.torrent`. */
export interface Metainfo {
  readonly infoHash: InfoHash
  readonly info: Info
  /** The exact bytes of the bencoded `info` value, as served over ut_metadata. */
  readonly infoBytes: Uint8Array
  /** Tracker tiers (BEP 12); a lone `announce` becomes a single tier. */
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  /** BEP 19 web seeds. */
  readonly urlList: ReadonlyArray<string>
  readonly comment: string | undefined
  readonly createdBy: string | undefined
  readonly creationDate: Date | undefined
}

/** Length in bytes of piece `index` (the last one may be shorter). */
export const pieceSize = (info: Info, index: number): number =>
  index === info.pieceCount - 1 ? info.totalLength - index * info.pieceLength : info.pieceLength

/** The expected SHA-1 of piece `index`. */
export const pieceHash = (info: Info, index: number): Uint8Array => info.pieces.subarray(index * 20, index * 20 + 20)
