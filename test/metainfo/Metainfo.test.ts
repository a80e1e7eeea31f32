import { Bencode, InfoHash, Metainfo } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { createHash } from "node:crypto"

const sha1 = (bytes: Uint8Array) => new Uint8Array(createHash("sha1").update(bytes).digest())
const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))

/** A valid v1 info dictionary over `files` (length each), with real piece hashes of zero data. */
const infoOf = (
  files: ReadonlyArray<{ readonly path: ReadonlyArray<string>; readonly length: number; readonly attr?: string }>,
  pieceLength = 16384
) => {
  const total = files.reduce((sum, file) => sum + file.length, 0)
  const pieces = new Uint8Array(Math.ceil(total / pieceLength) * 20)
  for (let i = 0; i * pieceLength < total; i++) {
    pieces.set(sha1(new Uint8Array(Math.min(pieceLength, total - i * pieceLength))), i * 20)
  }
  return { name: "root", "piece length": pieceLength, pieces, files: files.map((file) => ({ ...file })) }
}

const torrent = (info: Bencode.Encodable, extra: { readonly [key: string]: Bencode.Encodable | undefined } = {}) =>
  Bencode.encode({ announce: "http://tracker.example/announce", ...extra, info })

const parsed = (bytes: Uint8Array, options?: Metainfo.ParseOptions) => Either.getOrThrow(Metainfo.parse(bytes, options))
const reasonOf = (bytes: Uint8Array) => {
  const result = Metainfo.parse(bytes)
  return Either.isLeft(result) ? result.left.reason : "parsed"
}

const twoFiles = infoOf([{ path: ["a.bin"], length: 20000 }, { path: ["sub", "b.bin"], length: 5000 }])

describe("Metainfo.parse", () => {
  it("reads a single-file torrent", () => {
    const info = { name: "file.bin", "piece length": 16384, length: 40000, pieces: new Uint8Array(60) }
    const metainfo = parsed(torrent(info, { comment: "hi", "created by": "me", "creation date": 1700000000 }))
    expect(metainfo.info).toMatchObject({ name: "file.bin", pieceLength: 16384, pieceCount: 3, totalLength: 40000, multiFile: false, private: false })
    expect(metainfo.info.files).toEqual([{ rawPath: ["file.bin"], path: ["file.bin"], length: 40000, offset: 0, padding: false }])
    expect(metainfo).toMatchObject({ comment: "hi", createdBy: "me", creationDate: new Date(1700000000 * 1000), urlList: [] })
    expect(metainfo.trackers).toEqual([["http://tracker.example/announce"]])
    expect(Metainfo.pieceSize(metainfo.info, 2)).toBe(40000 - 2 * 16384)
  })

  it("reads a multi-file torrent with offsets, the name first in every path", () => {
    const metainfo = parsed(torrent(twoFiles))
    expect(metainfo.info.multiFile).toBe(true)
    expect(metainfo.info.totalLength).toBe(25000)
    expect(metainfo.info.files.map(({ length, offset, path }) => ({ path, length, offset }))).toEqual([
      { path: ["root", "a.bin"], length: 20000, offset: 0 },
      { path: ["root", "sub", "b.bin"], length: 5000, offset: 20000 }
    ])
  })

  it("takes the info-hash over the original bytes of info, not over a re-encoding", () => {
    // "pieces" before "piece length", "name" last: not canonical order.
    const pieces = sha1(new Uint8Array(10))
    const info = Uint8Array.of(
      ...latin1("d6:lengthi10e6:pieces20:"), ...pieces, ...latin1("12:piece lengthi16384e4:name1:xe")
    )
    const bytes = Uint8Array.of(...latin1("d4:info"), ...info, ...latin1("e"))
    const metainfo = parsed(bytes)
    expect(metainfo.infoBytes).toEqual(info)
    expect(metainfo.infoHash).toEqual(sha1(info))
    const reencoded = Bencode.encode(Either.getOrThrow(Bencode.decode(info)))
    expect(InfoHash.equals(metainfo.infoHash, sha1(reencoded))).toBe(false)
  })

  it("reads BEP 47 padding files, which may share one path", () => {
    const info = infoOf([
      { path: ["a"], length: 1000 },
      { path: [".pad", "15384"], length: 15384, attr: "p" },
      { path: ["b"], length: 1000 },
      { path: [".pad", "15384"], length: 15384, attr: "p" },
      { path: ["c"], length: 1000, attr: "x" }
    ])
    const files = parsed(torrent(info)).info.files
    expect(files.map((file) => file.padding)).toEqual([false, true, false, true, false])
    expect(files.map((file) => file.offset)).toEqual([0, 1000, 16384, 17384, 32768])
  })

  it("prefers name.utf-8 and path.utf-8", () => {
    const info = { ...infoOf([{ path: ["x"], length: 10 }]), "name.utf-8": "naïve", files: [{ length: 10, path: ["x"], "path.utf-8": ["ü"] }] }
    const metainfo = parsed(torrent(info))
    expect(metainfo.info.name).toBe("naïve")
    expect(metainfo.info.files[0]!.rawPath).toEqual(["naïve", "ü"])
  })

  it("reads tiers from announce-list (ignoring announce), dropping repeats and empty tiers", () => {
    const metainfo = parsed(torrent(twoFiles, {
      announce: "http://ignored/announce",
      "announce-list": [["http://a/announce", "udp://b:80"], [], ["http://a/announce", " http://c/announce "]]
    }))
    expect(metainfo.trackers).toEqual([["http://a/announce", "udp://b:80"], ["http://c/announce"]])
    expect(parsed(torrent(twoFiles, { announce: undefined })).trackers).toEqual([])
  })

  it("reads url-list as a string or a list, private and creation date", () => {
    expect(parsed(torrent(twoFiles, { "url-list": "http://seed/" })).urlList).toEqual(["http://seed/"])
    expect(parsed(torrent(twoFiles, { "url-list": ["http://a/", "", "http://a/", "http://b/"] })).urlList)
      .toEqual(["http://a/", "http://b/"])
    expect(parsed(torrent({ ...twoFiles, private: 1 })).info.private).toBe(true)
    expect(parsed(torrent({ ...twoFiles, private: 0 })).info.private).toBe(false)
  })

  it("sanitizes local paths without changing the info-hash", () => {
    const info = infoOf([{ path: ["bad\u0001name", "x".repeat(300) + ".mkv"], length: 10 }])
    const metainfo = parsed(torrent(info), { windowsPaths: false })
    const file = metainfo.info.files[0]!
    expect(file.rawPath[1]).toBe("bad\u0001name")
    expect(file.path[1]).toBe("bad_name")
    expect(Buffer.byteLength(file.path[2]!)).toBe(255)
    expect(file.path[2]!.endsWith(".mkv")).toBe(true)
    expect(metainfo.infoHash).toEqual(sha1(metainfo.infoBytes))
  })

  it("parseInfo builds the same info from bare info bytes and checks the hash", () => {
    const metainfo = parsed(torrent(twoFiles))
    const fromInfo = Either.getOrThrow(Metainfo.parseInfo(metainfo.infoBytes, metainfo.infoHash))
    expect(fromInfo.info).toEqual(metainfo.info)
    expect(fromInfo.infoHash).toEqual(metainfo.infoHash)
    const other = Metainfo.parseInfo(metainfo.infoBytes, InfoHash.unsafeFromBytes(new Uint8Array(20)))
    expect(Either.isLeft(other) && other.left.reason).toBe("InfoHashMismatch")
  })

  it("holds the piece hashes once: a view into its copy of info, untouched by later changes to the input", () => {
    const bytes = torrent(twoFiles)
    const metainfo = parsed(bytes)
    const fromInfo = Either.getOrThrow(Metainfo.parseInfo(metainfo.infoBytes))
    for (const { info, infoBytes } of [metainfo, fromInfo]) {
      expect(info.pieces).toEqual(twoFiles.pieces)
      expect(info.pieces.buffer).toBe(infoBytes.buffer)
    }
    bytes.fill(0)
    expect(metainfo.info.pieces).toEqual(twoFiles.pieces)
  })

  describe("hostile torrents fail with a typed reason", () => {
    const cases: ReadonlyArray<readonly [string, Uint8Array, Metainfo.MetainfoError["reason"]]> = [
      ["path traversal (..)", torrent(infoOf([{ path: ["..", "etc", "passwd"], length: 10 }])), "PathComponent"],
      ["an absolute path (empty first component)", torrent(infoOf([{ path: ["", "etc", "passwd"], length: 10 }])), "PathComponent"],
      ["an absolute name", torrent({ ...infoOf([{ path: ["x"], length: 10 }]), name: "/etc" }), "PathComponent"],
      ["a component with /", torrent(infoOf([{ path: ["a/b"], length: 10 }])), "PathComponent"],
      ["a component with \\", torrent(infoOf([{ path: ["a\\b"], length: 10 }])), "PathComponent"],
      ["a component with NUL", torrent(infoOf([{ path: ["a\u0000b"], length: 10 }])), "PathComponent"],
      ["a . component", torrent(infoOf([{ path: [".", "a"], length: 10 }])), "PathComponent"],
      ["an empty path", torrent(infoOf([{ path: [], length: 10 }])), "PathComponent"],
      ["two files at one path", torrent(infoOf([{ path: ["a"], length: 10 }, { path: ["a"], length: 10 }])), "PathCollision"],
      ["a file that is another's directory", torrent(infoOf([{ path: ["a"], length: 10 }, { path: ["a", "b"], length: 10 }])), "PathCollision"],
      ["a directory that is a later file", torrent(infoOf([{ path: ["a", "b"], length: 10 }, { path: ["a"], length: 10 }])), "PathCollision"],
      ["pieces not a multiple of 20", torrent({ ...twoFiles, pieces: new Uint8Array(39) }), "PiecesLength"],
      ["too few piece hashes for the size", torrent({ ...twoFiles, pieces: new Uint8Array(20) }), "PieceCount"],
      ["too many piece hashes for the size", torrent({ ...twoFiles, pieces: new Uint8Array(200) }), "PieceCount"],
      ["a zero piece length", torrent({ ...twoFiles, "piece length": 0 }), "PieceLength"],
      ["a 1 GiB piece length", torrent({ ...twoFiles, "piece length": 2 ** 30 }), "PieceLength"],
      ["a negative file length", torrent(infoOf([{ path: ["a"], length: -5 }])), "FileLength"],
      ["a negative single-file length", torrent({ name: "a", "piece length": 16384, pieces: new Uint8Array(), length: -1 }), "FileLength"],
      ["neither files nor length", torrent({ name: "a", "piece length": 16384, pieces: new Uint8Array(20) }), "MissingField"],
      [
        "a total beyond 2^53",
        torrent({ ...infoOf([{ path: ["a"], length: 10 }]), files: [{ path: ["a"], length: 2 ** 52 }, { path: ["b"], length: 2 ** 52 }] }),
        "TotalLength"
      ],
      ["no data at all", torrent(infoOf([{ path: ["a"], length: 0 }])), "Empty"],
      ["an empty file list", torrent({ ...twoFiles, files: [] }), "NoFiles"],
      ["both files and length", torrent({ ...twoFiles, length: 10 }), "AmbiguousLayout"],
      ["a missing piece length", torrent({ ...twoFiles, "piece length": undefined }), "MissingField"],
      ["a string length", torrent({ ...twoFiles, files: [{ path: ["a"], length: "10" }] }), "WrongType"],
      ["no info", Bencode.encode({ announce: "x" }), "MissingField"],
      ["a list at the top", Bencode.encode([1]), "NotADictionary"],
      ["a v2-only torrent", torrent({ name: "x", "piece length": 16384, "meta version": 2, "file tree": {} }), "UnsupportedVersion"],
      ["100-deep nesting", latin1("d4:info" + "l".repeat(100) + "e".repeat(100) + "e"), "Bencode"],
      ["a leading-zero integer", latin1("d4:infod12:piece lengthi016384eee"), "Bencode"],
      ["-0", latin1("d4:infod12:piece lengthi-0eee"), "Bencode"],
      ["a creation date beyond Date's range", torrent(twoFiles, { "creation date": 9e15 }), "InvalidField"],
      ["a mistyped announce-list", torrent(twoFiles, { "announce-list": ["http://a/"] }), "WrongType"]
    ]
    for (const [name, bytes, reason] of cases) {
      it(`${name}: ${reason}`, () => {
        expect(reasonOf(bytes)).toBe(reason)
      })
    }

    it("a 2000000000: string prefix in a 1 KB file fails at once as bencode", () => {
      const bytes = new Uint8Array(1024).fill(0x65)
      bytes.set(latin1("d4:info2000000000:"))
      const started = performance.now()
      const result = Metainfo.parse(bytes)
      expect(performance.now() - started).toBeLessThan(250)
      expect(Either.isLeft(result) && result.left.reason).toBe("Bencode")
      expect(Either.isLeft(result) && result.left.cause?.reason).toBe("LengthExceedsInput")
    })

    it("more files than maxFiles: TooManyFiles", () => {
      const info = infoOf(Array.from({ length: 11 }, (_, i) => ({ path: [`f${i}`], length: 1 })))
      const result = Metainfo.parse(torrent(info), { maxFiles: 10 })
      expect(Either.isLeft(result) && result.left.reason).toBe("TooManyFiles")
    })

    it("names the offending field", () => {
      const result = Metainfo.parse(torrent(infoOf([{ path: ["a"], length: 1 }, { path: ["..", "b"], length: 1 }])))
      expect(Either.isLeft(result) && result.left.field).toBe("info.files[1].path")
    })
  })

  it.prop("random bytes give a Metainfo or a MetainfoError, never a throw", [fc.uint8Array({ maxLength: 300 })], ([bytes]) => {
    const result = Metainfo.parse(bytes)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("MetainfoError")
  }, { fastCheck: { numRuns: 3000 } })

  const valid = torrent(infoOf([{ path: ["a"], length: 20000 }, { path: ["d", "b"], length: 30000 }]), {
    "announce-list": [["http://a/"]],
    "url-list": ["http://w/"]
  })
  it.prop(
    "a valid torrent with random bytes overwritten still parses or fails with a typed error",
    [fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })],
    ([edits]) => {
      const bytes = Uint8Array.from(valid)
      for (const [at, byte] of edits) bytes[at] = byte
      const result = Metainfo.parse(bytes)
      if (Either.isRight(result)) expect(result.right.infoHash).toEqual(sha1(result.right.infoBytes))
      else expect(result.left._tag).toBe("MetainfoError")
    },
    { fastCheck: { numRuns: 3000 } }
  )
})

describe("Metainfo.sanitizeComponent", () => {
  it("replaces control characters everywhere and Windows' reserved characters on Windows", () => {
    expect(Metainfo.sanitizeComponent("a\tb\u007f", false)).toBe("a_b_")
    expect(Metainfo.sanitizeComponent("a:b?.txt", false)).toBe("a:b?.txt")
    expect(Metainfo.sanitizeComponent("a:b?.txt", true)).toBe("a_b_.txt")
    expect(Metainfo.sanitizeComponent("CON.txt", true)).toBe("_CON.txt")
    expect(Metainfo.sanitizeComponent("trailing. ", true)).toBe("trailing._")
  })

  it.prop("trims to at most 255 UTF-8 bytes at a code point boundary", [fc.fullUnicodeString({ minLength: 1, maxLength: 400 })], ([name]) => {
    const safe = Metainfo.sanitizeComponent(name, false)
    expect(Buffer.byteLength(safe)).toBeLessThanOrEqual(255)
    expect(Buffer.from(safe).toString()).toBe(safe)
    if (Buffer.byteLength(name) <= 255 && !/[\u0000-\u001f\u007f]/.test(name)) expect(safe).toBe(name)
  })
})
