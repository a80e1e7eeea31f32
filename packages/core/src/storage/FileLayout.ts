/**
 * Where the bytes of a piece live on disk: a torrent is the concatenation of its files, so a
 * byte range of a piece maps to one or more segments of consecutive files. Pure.
 */
import { Option } from "effect"
import { type FileEntry, type Info, pieceSize } from "../metainfo/Metainfo.js"

/** The part of one file that a byte range of a piece covers. */
export interface Segment {
  /** Index of the file in `Info.files`. */
  readonly fileIndex: number
  /** Offset of the segment's first byte within the file. */
  readonly fileOffset: number
  /** Number of bytes (always > 0). */
  readonly length: number
  /**
   * Offset of the segment's first byte within the piece (not within the requested range); for
   * `rangeSegments`, from the start of the range.
   */
  readonly pieceOffset: number
  /** A BEP 47 padding file: never written, read back as zeros. */
  readonly padding: boolean
}

/**
 * The segments covering `length` bytes at `begin` of piece `index`, in file order; none when the
 * range is not inside the piece. Zero-length files never appear.
 */
export const segments = (
  info: Info,
  index: number,
  begin: number,
  length: number
): Option.Option<ReadonlyArray<Segment>> => {
  if (!Number.isInteger(index) || index < 0 || index >= info.pieceCount) return Option.none()
  if (!Number.isInteger(begin) || !Number.isInteger(length) || begin < 0 || length < 0) return Option.none()
  if (begin + length > pieceSize(info, index)) return Option.none()
  const pieceStart = index * info.pieceLength
  return cover(info, pieceStart + begin, pieceStart + begin + length, pieceStart)
}

/**
 * The segments covering torrent bytes [start, start + length), in file order, offsets counted
 * from `start`; none when the range is not inside the torrent. Zero-length files never appear.
 */
export const rangeSegments = (info: Info, start: number, length: number): Option.Option<ReadonlyArray<Segment>> =>
  !Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > info.totalLength
    ? Option.none()
    : cover(info, start, start + length, start)

/** The segments of torrent bytes [start, end), their `pieceOffset` counted from `origin`. */
const cover = (info: Info, start: number, end: number, origin: number): Option.Option<ReadonlyArray<Segment>> => {
  const result: Array<Segment> = []
  let position = start
  // Each iteration consumes one file, so the loop is bounded by the file count.
  for (let fileIndex = fileAt(info.files, position); position < end && fileIndex < info.files.length; fileIndex++) {
    const file = info.files[fileIndex]!
    if (file.length === 0) continue
    const fileOffset = position - file.offset
    const segmentLength = Math.min(file.length - fileOffset, end - position)
    result.push({ fileIndex, fileOffset, length: segmentLength, pieceOffset: position - origin, padding: file.padding })
    position += segmentLength
  }
  // Only reachable when the file list does not add up to `totalLength`: refuse rather than guess.
  return position === end ? Option.some(result) : Option.none()
}

/** The piece holding torrent byte `offset`; an offset at the very end belongs to the last piece. */
export const pieceAt = (info: Info, offset: number): number =>
  Math.max(0, Math.min(Math.floor(offset / info.pieceLength), info.pieceCount - 1))

/**
 * Index of the last file starting at or before `position`. Files are sorted by offset and a
 * zero-length file shares its offset with the next one, so for `position < totalLength` this is
 * the non-empty file containing `position`.
 */
const fileAt = (files: ReadonlyArray<FileEntry>, position: number): number => {
  let low = 0
  let high = files.length - 1
  while (low < high) {
    const middle = (low + high + 1) >>> 1
    if (files[middle]!.offset <= position) low = middle
    else high = middle - 1
  }
  return low
}
