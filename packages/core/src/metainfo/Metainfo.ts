/**
 * The model of a v1 `.torrent` file (BEP 3), parsed and validated: `Metainfo.parse`.
 *
 * Validation policy (decided here, relied on by Storage): everything inside `info` is checked
 * strictly because it decides where bytes land on disk: piece length 1 B..256 MiB (any value,
 * powers of two are not required: old torrents have others), piece hashes a multiple of 20 and
 * exactly one per piece, file lengths and their total safe integers (<= 2^53), no empty, `.`,
 * `..`, NUL- or separator-containing path component, no two files at one path and no file that is
 * also a directory of another. `rawPath` keeps the names as written; `path` is sanitized for the
 * local filesystem (control characters replaced, components trimmed to 255 UTF-8 bytes, and on
 * Windows its reserved characters and device names), which never changes the info-hash.
 */
import { Data, Either } from "effect"
import { createHash } from "node:crypto"
import * as Bencode from "../bencode/Bencode.js"
import { equals, type InfoHash, toHex, unsafeFromBytes } from "./InfoHash.js"

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

// ---------------------------------------------------------------------------------------------
// Parsing

/** Why bytes are not a valid v1 torrent (or bare `info` dictionary). `field` names the culprit. */
export class MetainfoError extends Data.TaggedError("MetainfoError")<{
  readonly reason:
    | "Bencode"
    | "NotADictionary"
    | "MissingField"
    | "WrongType"
    | "InvalidField"
    | "UnsupportedVersion"
    | "AmbiguousLayout"
    | "PieceLength"
    | "PiecesLength"
    | "PieceCount"
    | "FileLength"
    | "TotalLength"
    | "Empty"
    | "NoFiles"
    | "TooManyFiles"
    | "PathComponent"
    | "PathTooDeep"
    | "PathCollision"
    | "InfoHashMismatch"
  readonly message: string
  readonly field?: string
  readonly cause?: Bencode.BencodeError
}> {}

/** Limits and choices for `parse`; all optional. */
export interface ParseOptions {
  /** Most files in one torrent (default 100,000). */
  readonly maxFiles?: number
  /** Also replace Windows' reserved characters and device names (default: on Windows). */
  readonly windowsPaths?: boolean
  /** Limits for the bencode decoder (defaults suit torrents up to 64 MiB). */
  readonly bencode?: Bencode.Options
}

/** Default `ParseOptions.maxFiles`. */
export const DEFAULT_MAX_FILES = 100_000
/** Largest accepted piece length: 256 MiB. */
export const MAX_PIECE_LENGTH = 256 * 1024 * 1024
/** Most components in one file's path (Linux's PATH_MAX of 4096 allows no more than 2048). */
export const MAX_PATH_DEPTH = 1024
const MAX_COMPONENT_BYTES = 255

const error = (reason: MetainfoError["reason"], message: string, field?: string): MetainfoError =>
  new MetainfoError(field === undefined ? { reason, message } : { reason, message, field })

const fieldError = (prefix: string) => (cause: Bencode.BencodeFieldError): MetainfoError =>
  error(
    cause.reason === "Missing" ? "MissingField" : "WrongType",
    `${cause.reason === "Missing" ? "missing" : "mistyped"} field "${prefix}${cause.field}" (expected ${cause.expected})`,
    prefix + cause.field
  )

const bencodeError = (cause: Bencode.BencodeError): MetainfoError =>
  new MetainfoError({ reason: "Bencode", message: `not bencode: ${cause.message}`, cause })

const sha1 = (bytes: Uint8Array): InfoHash => unsafeFromBytes(Uint8Array.from(createHash("sha1").update(bytes).digest()))

// A UTF-8 variant (`name.utf-8`, `path.utf-8`) wins when present, as in libtorrent.
const preferUtf8 = (dictionary: Bencode.Dictionary, key: string): string =>
  dictionary.has(`${key}.utf-8`) ? `${key}.utf-8` : key

const checkComponent = (component: string, field: string): MetainfoError | undefined => {
  if (component === "" || component === "." || component === "..") {
    return error("PathComponent", `path component "${component}" in ${field}`, field)
  }
  return /[/\\\u0000]/.test(component)
    ? error("PathComponent", `path component with a separator or NUL in ${field}`, field)
    : undefined
}

const WINDOWS_RESERVED_NAME = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i

// Keeps a short extension and cuts the stem at a code point boundary.
const trimComponent = (component: string): string => {
  if (Buffer.byteLength(component) <= MAX_COMPONENT_BYTES) return component
  const dot = component.lastIndexOf(".")
  const extension = dot > 0 && component.length - dot <= 16 ? component.slice(dot) : ""
  let budget = MAX_COMPONENT_BYTES - Buffer.byteLength(extension)
  let stem = ""
  for (const char of component.slice(0, component.length - extension.length)) {
    const size = Buffer.byteLength(char)
    if (size > budget) break
    stem += char
    budget -= size
  }
  return stem + extension
}

/** Makes one validated path component safe to create on the local filesystem. */
export const sanitizeComponent = (component: string, windowsPaths: boolean): string => {
  // Fast path for the usual name: no control characters and short enough whatever its encoding.
  if (!windowsPaths && component.length <= MAX_COMPONENT_BYTES / 3 && !/[\u0000-\u001f\u007f]/.test(component)) {
    return component
  }
  let safe = component.replace(/[\u0000-\u001f\u007f]/g, "_")
  if (windowsPaths) {
    safe = safe.replace(/[<>:"|?*]/g, "_").replace(/[. ]$/, "_")
    if (WINDOWS_RESERVED_NAME.test(safe)) safe = `_${safe}`
  }
  return trimComponent(safe)
}

interface PathNode {
  readonly children: Map<string, PathNode>
  isFile: boolean
}

// A trie of sanitized paths: linear in the number of components, whatever the nesting.
const claimPath = (root: PathNode, path: ReadonlyArray<string>): boolean => {
  let node = root
  for (const component of path) {
    if (node.isFile) return false
    let child = node.children.get(component)
    if (child === undefined) {
      child = { children: new Map(), isFile: false }
      node.children.set(component, child)
    }
    node = child
  }
  if (node.isFile || node.children.size > 0) return false
  node.isFile = true
  return true
}

interface RawFile {
  readonly components: ReadonlyArray<string>
  readonly length: number
  readonly padding: boolean
}

const missingOrWrong = (value: Bencode.Value | undefined, field: string, expected: string): MetainfoError =>
  value === undefined
    ? error("MissingField", `missing field "${field}"`, field)
    : error("WrongType", `field "${field}" is not ${expected}`, field)

const parseLength = (dictionary: Bencode.Dictionary, field: string): number | MetainfoError => {
  const length = dictionary.get("length")
  if (typeof length !== "number") return missingOrWrong(length, field, "an integer")
  return length < 0 ? error("FileLength", `negative length in ${field}`, field) : length
}

// Plain checks rather than Either combinators: this runs once per file, up to maxFiles times.
const parseFile = (entry: Bencode.Value, index: number): RawFile | MetainfoError => {
  const where = `info.files[${index}]`
  if (!Bencode.isDictionary(entry)) return error("WrongType", `${where} is not a dictionary`, where)
  const length = parseLength(entry, `${where}.length`)
  if (length instanceof MetainfoError) return length
  const pathField = `${where}.${preferUtf8(entry, "path")}`
  const path = entry.get(preferUtf8(entry, "path"))
  if (path === undefined || !Bencode.isList(path)) return missingOrWrong(path, pathField, "a list")
  if (path.length === 0) return error("PathComponent", `empty ${pathField}`, pathField)
  if (path.length > MAX_PATH_DEPTH) return error("PathTooDeep", `${pathField} deeper than ${MAX_PATH_DEPTH}`, pathField)
  const components: Array<string> = []
  for (const component of path) {
    if (!Bencode.isBytes(component)) return error("WrongType", `${pathField} has a non-string component`, pathField)
    components.push(Bencode.text(component))
  }
  const attr = entry.get("attr")
  if (attr !== undefined && !Bencode.isBytes(attr)) return error("WrongType", `${where}.attr is not a string`, `${where}.attr`)
  return { components, length, padding: attr !== undefined && attr.includes(0x70) }
}

const parseFileList = (
  list: ReadonlyArray<Bencode.Value>,
  maxFiles: number
): Either.Either<ReadonlyArray<RawFile>, MetainfoError> => {
  if (list.length === 0) return Either.left(error("NoFiles", "info.files is empty", "info.files"))
  if (list.length > maxFiles) {
    return Either.left(error("TooManyFiles", `${list.length} files, more than ${maxFiles}`, "info.files"))
  }
  const files: Array<RawFile> = []
  for (let index = 0; index < list.length; index++) {
    const file = parseFile(list[index]!, index)
    if (file instanceof MetainfoError) return Either.left(file)
    files.push(file)
  }
  return Either.right(files)
}

const buildInfo = (info: Bencode.Dictionary, options: ParseOptions | undefined): Either.Either<Info, MetainfoError> =>
  Either.gen(function*() {
    const field = fieldError("info.")
    if (!info.has("pieces") && info.get("meta version") === 2) {
      return yield* Either.left(error("UnsupportedVersion", "a v2-only torrent (BEP 52) is not supported", "info"))
    }
    const name = yield* Either.mapLeft(Bencode.getString(info, preferUtf8(info, "name")), field)
    const pieceLength = yield* Either.mapLeft(Bencode.getInteger(info, "piece length"), field)
    if (pieceLength < 1 || pieceLength > MAX_PIECE_LENGTH) {
      return yield* Either.left(error("PieceLength", `piece length ${pieceLength} outside 1..${MAX_PIECE_LENGTH}`, "info.piece length"))
    }
    const pieces = yield* Either.mapLeft(Bencode.getBytes(info, "pieces"), field)
    if (pieces.length % 20 !== 0) {
      return yield* Either.left(error("PiecesLength", `info.pieces is ${pieces.length} bytes, not a multiple of 20`, "info.pieces"))
    }
    const privateFlag = yield* Either.mapLeft(Bencode.optional(info, "private", Bencode.getInteger), field)
    const multiFile = info.has("files")
    if (multiFile && info.has("length")) {
      return yield* Either.left(error("AmbiguousLayout", "info has both files and length", "info"))
    }
    const singleLength = multiFile ? 0 : parseLength(info, "info.length")
    if (singleLength instanceof MetainfoError) return yield* Either.left(singleLength)
    const rawFiles: ReadonlyArray<RawFile> = multiFile
      ? yield* parseFileList(yield* Either.mapLeft(Bencode.getList(info, "files"), field), options?.maxFiles ?? DEFAULT_MAX_FILES)
      : [{ components: [], length: singleLength, padding: false }]

    const nameError = checkComponent(name, "info.name")
    if (nameError !== undefined) return yield* Either.left(nameError)
    const windowsPaths = options?.windowsPaths ?? process.platform === "win32"
    const localName = sanitizeComponent(name, windowsPaths)
    const claimed: PathNode = { children: new Map(), isFile: false }
    const files: Array<FileEntry> = []
    let offset = 0
    for (let index = 0; index < rawFiles.length; index++) {
      const raw = rawFiles[index]!
      const where = multiFile ? `info.files[${index}].path` : "info.name"
      for (const component of raw.components) {
        const componentError = checkComponent(component, where)
        if (componentError !== undefined) return yield* Either.left(componentError)
      }
      const path = [localName, ...raw.components.map((component) => sanitizeComponent(component, windowsPaths))]
      // Padding files are never written, and libtorrent gives every one of a size the same path.
      if (!raw.padding && !claimPath(claimed, path)) {
        return yield* Either.left(error("PathCollision", `${where} collides with another file: ${path.join("/")}`, where))
      }
      if (raw.length > Number.MAX_SAFE_INTEGER - offset) {
        return yield* Either.left(error("TotalLength", "total length beyond 2^53", where))
      }
      files.push({ rawPath: [name, ...raw.components], path, length: raw.length, offset, padding: raw.padding })
      offset += raw.length
    }
    const totalLength = offset
    if (totalLength === 0) return yield* Either.left(error("Empty", "the torrent has no data (total length 0)", "info"))
    const pieceCount = pieces.length / 20
    const expectedPieces = Math.ceil(totalLength / pieceLength)
    if (pieceCount !== expectedPieces) {
      return yield* Either.left(
        error("PieceCount", `${pieceCount} piece hashes for ${expectedPieces} pieces of ${totalLength} bytes`, "info.pieces")
      )
    }
    return {
      name,
      pieceLength,
      // Still a view into the input: `sharePieces` points it into the torrent's copy of `info`.
      pieces,
      pieceCount,
      files,
      totalLength,
      private: privateFlag === 1,
      multiFile
    }
  })

/**
 * `info` with its piece hashes as a view into `infoBytes`, the copy of the `info` value found at
 * `start` in `input`: a torrent then holds its hashes once (they are most of its bytes), not twice.
 */
const sharePieces = (info: Info, input: Uint8Array, start: number, infoBytes: Uint8Array): Info => {
  const offset = info.pieces.byteOffset - input.byteOffset - start
  const inside = info.pieces.buffer === input.buffer && offset >= 0 && offset + info.pieces.length <= infoBytes.length
  return { ...info, pieces: inside ? infoBytes.subarray(offset, offset + info.pieces.length) : Uint8Array.from(info.pieces) }
}

const decodeDictionary = (
  bytes: Uint8Array,
  options: ParseOptions | undefined
): Either.Either<Bencode.Document & { readonly value: Bencode.Dictionary }, MetainfoError> =>
  Either.flatMap(Either.mapLeft(Bencode.decodeDocument(bytes, options?.bencode), bencodeError), (document) =>
    Bencode.isDictionary(document.value)
      ? Either.right({ ...document, value: document.value })
      : Either.left(error("NotADictionary", "the top-level value is not a dictionary")))

/** Tracker tiers as BEP 12 wants them: URLs trimmed, empty ones and repeats (in any tier) dropped. */
export const normalizeTiers = (tiers: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<ReadonlyArray<string>> => {
  const seen = new Set<string>()
  const result: Array<ReadonlyArray<string>> = []
  for (const tier of tiers) {
    const urls: Array<string> = []
    for (const url of tier.map((raw) => raw.trim())) {
      if (url !== "" && !seen.has(url)) urls.push(url)
      seen.add(url)
    }
    if (urls.length > 0) result.push(urls)
  }
  return result
}

const parseTrackers = (root: Bencode.Dictionary): Either.Either<ReadonlyArray<ReadonlyArray<string>>, MetainfoError> =>
  Either.gen(function*() {
    const field = fieldError("")
    const tiers: Array<ReadonlyArray<string>> = []
    const list = yield* Either.mapLeft(Bencode.optional(root, "announce-list", Bencode.getList), field)
    for (const tier of list ?? []) {
      if (!Bencode.isList(tier)) return yield* Either.left(error("WrongType", "an announce-list tier is not a list", "announce-list"))
      const urls: Array<string> = []
      for (const url of tier) {
        if (!Bencode.isBytes(url)) return yield* Either.left(error("WrongType", "an announce-list URL is not a string", "announce-list"))
        urls.push(Bencode.text(url))
      }
      tiers.push(urls)
    }
    const normalized = normalizeTiers(tiers)
    // BEP 12: a client that understands announce-list ignores announce.
    if (normalized.length > 0) return normalized
    const announce = yield* Either.mapLeft(Bencode.optional(root, "announce", Bencode.getString), field)
    return normalizeTiers([[announce ?? ""]])
  })

const parseUrlList = (root: Bencode.Dictionary): Either.Either<ReadonlyArray<string>, MetainfoError> => {
  const value = root.get("url-list")
  const items = value === undefined ? [] : Bencode.isBytes(value) ? [value] : Bencode.isList(value) ? value : undefined
  if (items === undefined) return Either.left(error("WrongType", "url-list is neither a string nor a list", "url-list"))
  const urls = new Set<string>()
  for (const item of items) {
    if (!Bencode.isBytes(item)) return Either.left(error("WrongType", "a url-list entry is not a string", "url-list"))
    const url = Bencode.text(item).trim()
    if (url !== "") urls.add(url)
  }
  return Either.right([...urls])
}

// Date's range is +-8.64e15 ms.
const MAX_DATE_SECONDS = 8_640_000_000_000

/** Parses and validates a v1 `.torrent` file (hybrid v1/v2 torrents are read as v1). */
export const parse = (bytes: Uint8Array, options?: ParseOptions): Either.Either<Metainfo, MetainfoError> =>
  Either.gen(function*() {
    const document = yield* decodeDictionary(bytes, options)
    const root = document.value
    const field = fieldError("")
    const infoDictionary = yield* Either.mapLeft(Bencode.getDictionary(root, "info"), field)
    const span = document.spans.get("info")
    if (span === undefined) return yield* Either.left(error("MissingField", "missing field \"info\"", "info"))
    const parsedInfo = yield* buildInfo(infoDictionary, options)
    const infoBytes = Uint8Array.from(bytes.subarray(span.start, span.end))
    const info = sharePieces(parsedInfo, bytes, span.start, infoBytes)
    const trackers = yield* parseTrackers(root)
    const urlList = yield* parseUrlList(root)
    const comment = yield* Either.mapLeft(Bencode.optional(root, preferUtf8(root, "comment"), Bencode.getString), field)
    const createdBy = yield* Either.mapLeft(Bencode.optional(root, "created by", Bencode.getString), field)
    const seconds = yield* Either.mapLeft(Bencode.optional(root, "creation date", Bencode.getInteger), field)
    if (seconds !== undefined && Math.abs(seconds) > MAX_DATE_SECONDS) {
      return yield* Either.left(error("InvalidField", `creation date ${seconds} out of range`, "creation date"))
    }
    return {
      infoHash: sha1(infoBytes),
      info,
      infoBytes,
      trackers,
      urlList,
      comment,
      createdBy,
      creationDate: seconds === undefined ? undefined : new Date(seconds * 1000)
    }
  })

/**
 * Builds a Metainfo from a bare bencoded `info` dictionary (as fetched over ut_metadata),
 * checking it against `expected` when given. Trackers, web seeds and the rest are empty.
 */
export const parseInfo = (
  infoBytes: Uint8Array,
  expected?: InfoHash,
  options?: ParseOptions
): Either.Either<Metainfo, MetainfoError> =>
  Either.gen(function*() {
    const document = yield* decodeDictionary(infoBytes, options)
    const infoHash = sha1(infoBytes)
    if (expected !== undefined && !equals(infoHash, expected)) {
      return yield* Either.left(
        error("InfoHashMismatch", `info hashes to ${toHex(infoHash)}, expected ${toHex(expected)}`, "info")
      )
    }
    const copy = Uint8Array.from(infoBytes)
    return {
      infoHash,
      info: sharePieces(yield* buildInfo(document.value, options), infoBytes, 0, copy),
      infoBytes: copy,
      trackers: [],
      urlList: [],
      comment: undefined,
      createdBy: undefined,
      creationDate: undefined
    }
  })
