import { FileLayout } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { expectBytes, type FileSpec, makeTorrent, mixed } from "./fixtures.js"

const segmentsOf = (fixture: ReturnType<typeof makeTorrent>, index: number, begin: number, length: number) =>
  Option.getOrThrow(FileLayout.segments(fixture.info, index, begin, length))

/** The bytes the segments point at, taken from the individual files (padding as zeros). */
const assemble = (fixture: ReturnType<typeof makeTorrent>, index: number, begin: number, length: number) => {
  const out = new Uint8Array(length)
  for (const segment of segmentsOf(fixture, index, begin, length)) {
    const file = fixture.fileBytes(segment.fileIndex).subarray(segment.fileOffset, segment.fileOffset + segment.length)
    out.set(segment.padding ? new Uint8Array(segment.length) : file, segment.pieceOffset - begin)
  }
  return out
}

describe("FileLayout", () => {
  it("maps a piece spanning several files, skipping zero-length files", () => {
    const fixture = makeTorrent([{ length: 10 }, { length: 0 }, { length: 5 }, { length: 20 }], 16)
    expect(segmentsOf(fixture, 0, 0, 16)).toEqual([
      { fileIndex: 0, fileOffset: 0, length: 10, pieceOffset: 0, padding: false },
      { fileIndex: 2, fileOffset: 0, length: 5, pieceOffset: 10, padding: false },
      { fileIndex: 3, fileOffset: 0, length: 1, pieceOffset: 15, padding: false }
    ])
    expect(segmentsOf(fixture, 1, 4, 8)).toEqual([
      { fileIndex: 3, fileOffset: 5, length: 8, pieceOffset: 4, padding: false }
    ])
  })

  it("gives the short last piece only its own bytes", () => {
    const fixture = makeTorrent([{ length: 10 }, { length: 30 }], 16)
    expect(fixture.info.pieceCount).toBe(3)
    expect(segmentsOf(fixture, 2, 0, 8)).toEqual([
      { fileIndex: 1, fileOffset: 22, length: 8, pieceOffset: 0, padding: false }
    ])
    expect(FileLayout.segments(fixture.info, 2, 0, 9)).toEqual(Option.none())
  })

  it("marks padding-file segments", () => {
    const fixture = makeTorrent([{ length: 10 }, { length: 6, padding: true }, { length: 16 }], 16)
    expect(segmentsOf(fixture, 0, 0, 16).map((s) => [s.fileIndex, s.padding])).toEqual([[0, false], [1, true]])
  })

  it("refuses ranges outside the torrent", () => {
    const { info } = mixed()
    const last = info.pieceCount - 1
    expect(FileLayout.segments(info, info.pieceCount, 0, 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, -1, 0, 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, 0, -1, 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, 0, 0, info.pieceLength + 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, 0, 0.5, 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, last, info.totalLength - last * info.pieceLength, 1)).toEqual(Option.none())
    expect(FileLayout.segments(info, 0, 5, 0)).toEqual(Option.some([]))
  })

  it("maps a byte range over several pieces to one segment per file, offsets from the range's start", () => {
    const fixture = makeTorrent([{ length: 10 }, { length: 0 }, { length: 5 }, { length: 20 }], 16)
    expect(Option.getOrThrow(FileLayout.rangeSegments(fixture.info, 4, 30))).toEqual([
      { fileIndex: 0, fileOffset: 4, length: 6, pieceOffset: 0, padding: false },
      { fileIndex: 2, fileOffset: 0, length: 5, pieceOffset: 6, padding: false },
      { fileIndex: 3, fileOffset: 0, length: 19, pieceOffset: 11, padding: false }
    ])
    expect(FileLayout.rangeSegments(fixture.info, 0, 36)).toEqual(Option.none())
    expect(FileLayout.rangeSegments(fixture.info, -1, 2)).toEqual(Option.none())
  })

  it("places a byte offset in its piece, the end in the last piece", () => {
    const { info } = mixed()
    expect(FileLayout.pieceAt(info, 0)).toBe(0)
    expect(FileLayout.pieceAt(info, info.pieceLength - 1)).toBe(0)
    expect(FileLayout.pieceAt(info, info.pieceLength)).toBe(1)
    expect(FileLayout.pieceAt(info, info.totalLength)).toBe(info.pieceCount - 1)
  })

  const fileSpec: fc.Arbitrary<FileSpec> = fc.record({
    length: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 100 })),
    padding: fc.boolean()
  })
  const torrent = fc
    .tuple(fc.array(fileSpec, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 64 }))
    .filter(([files]) => files.some((file) => file.length > 0))
    .map(([files, pieceLength]) => makeTorrent(files, pieceLength))

  it.prop("the segments of every piece exactly tile the piece", [torrent], ([fixture]) => {
    const { info } = fixture
    for (let index = 0; index < info.pieceCount; index++) {
      const size = Math.min(info.pieceLength, info.totalLength - index * info.pieceLength)
      let next = 0
      for (const segment of segmentsOf(fixture, index, 0, size)) {
        const file = info.files[segment.fileIndex]!
        // One boolean per segment keeps thousands of pieces per run cheap; the message names the culprit.
        const tiles = segment.pieceOffset === next && segment.length > 0 &&
          segment.fileOffset + segment.length <= file.length &&
          file.offset + segment.fileOffset === index * info.pieceLength + segment.pieceOffset &&
          segment.padding === file.padding
        expect(tiles, JSON.stringify({ index, next, segment })).toBe(true)
        next += segment.length
      }
      expect(next).toBe(size)
      expectBytes(assemble(fixture, index, 0, size), fixture.piece(index))
    }
  })

  it.prop(
    "any sub-range of a piece maps to the torrent's bytes",
    [torrent, fc.nat(), fc.nat(), fc.nat()],
    ([fixture, pieceSeed, beginSeed, lengthSeed]) => {
      const index = pieceSeed % fixture.info.pieceCount
      const piece = fixture.piece(index)
      const begin = beginSeed % piece.length
      const length = lengthSeed % (piece.length - begin + 1)
      expectBytes(assemble(fixture, index, begin, length), piece.subarray(begin, begin + length))
    }
  )
})
