/**
 * Bencode (BEP 3): a bounded decoder for untrusted input and a canonical encoder.
 *
 * Our own codec rather than the `bencode` npm package: that one has no depth, size or item
 * limits and cannot report where a value sits in the input, and the info-hash must be the SHA-1
 * of the original bytes of the `info` value (real torrents have unsorted keys, so a re-encoding
 * differs). Decoding is strict where the format is (integers, string length prefixes, duplicate
 * keys) and lenient where real files are not (unsorted dictionary keys are accepted).
 *
 * Value model: byte strings are `Uint8Array` (views into the decoded input, not copies),
 * integers are `number` (anything beyond `Number.MAX_SAFE_INTEGER` is rejected), lists are
 * arrays, dictionaries are `Map`s whose keys are the raw key bytes read as latin1 (one char per
 * byte, so lossless and ordered like the bytes).
 */
import { Data, Either } from "effect"

/** A decoded bencode value. */
export type Value = Uint8Array | number | ReadonlyArray<Value> | Dictionary

/** A decoded dictionary; keys are the raw key bytes as latin1 strings. */
export type Dictionary = ReadonlyMap<string, Value>

/**
 * What `encode` accepts: decoded values plus conveniences for building messages. Strings are
 * written as UTF-8 byte strings; plain objects are dictionaries whose `undefined` entries are left
 * out; dictionary keys are written as latin1 (keys with a char above U+00FF as UTF-8).
 */
export type Encodable =
  | Uint8Array
  | number
  | string
  | ReadonlyArray<Encodable>
  | ReadonlyMap<string, Encodable>
  | { readonly [key: string]: Encodable | undefined }

/** Decoder limits; every one has a default suited to a `.torrent` file. */
export interface Options {
  /** Deepest nesting of lists and dictionaries (default 32, at most 512). */
  readonly maxDepth?: number
  /** Largest input in bytes (default 64 MiB). */
  readonly maxLength?: number
  /** Most values in one input, counting every nested value (default 4,000,000). */
  readonly maxItems?: number
}

/** Default `Options.maxDepth`. */
export const DEFAULT_MAX_DEPTH = 32
/** Default `Options.maxLength`. */
export const DEFAULT_MAX_LENGTH = 64 * 1024 * 1024
/** Default `Options.maxItems`. */
export const DEFAULT_MAX_ITEMS = 4_000_000
// Bounds recursion whatever the caller asks for, so the JS stack can never overflow.
const HARD_MAX_DEPTH = 512

/** Why bytes are not valid bencode within the limits. `offset` is where the problem was found. */
export class BencodeError extends Data.TaggedError("BencodeError")<{
  readonly reason:
    | "Truncated"
    | "UnexpectedByte"
    | "InvalidInteger"
    | "IntegerRange"
    | "InvalidLength"
    | "LengthExceedsInput"
    | "KeyNotString"
    | "DuplicateKey"
    | "TooDeep"
    | "TooLarge"
    | "TooManyItems"
    | "TrailingData"
  readonly offset: number
  readonly message: string
}> {}

/** Why a dictionary field is not what the caller expected. */
export class BencodeFieldError extends Data.TaggedError("BencodeFieldError")<{
  readonly reason: "Missing" | "WrongType"
  readonly field: string
  readonly expected: "bytes" | "string" | "integer" | "list" | "dictionary"
  readonly message: string
}> {}

/** A half-open byte range `[start, end)` in the decoded input. */
export interface Span {
  readonly start: number
  readonly end: number
}

/** A decoded value with where it ended and the spans of its top-level dictionary values. */
export interface Document {
  readonly value: Value
  /** Offset just past the value (equals the input length unless trailing data was allowed). */
  readonly end: number
  /** For a dictionary at the top: the exact bytes of each of its values. Empty otherwise. */
  readonly spans: ReadonlyMap<string, Span>
}

interface State {
  readonly bytes: Uint8Array
  readonly latin1: Buffer
  readonly maxDepth: number
  readonly maxItems: number
  readonly spans: Map<string, Span>
  pos: number
  items: number
}

const fail = (reason: BencodeError["reason"], offset: number, message: string): BencodeError =>
  new BencodeError({ reason, offset, message: `${message} at byte ${offset}` })

const isDigit = (byte: number): boolean => byte >= 0x30 && byte <= 0x39

// Parses `<digits>:`; the length is checked against the remaining input digit by digit, so an
// absurd prefix fails before it is fully read and long before anything is allocated.
const readString = (state: State): Uint8Array | BencodeError => {
  const { bytes } = state
  const start = state.pos
  let length = 0
  let pos = start
  while (pos < bytes.length && isDigit(bytes[pos]!)) {
    if (pos > start && length === 0) return fail("InvalidLength", start, "string length with a leading zero")
    length = length * 10 + (bytes[pos]! - 0x30)
    pos++
    if (length > bytes.length - pos) return fail("LengthExceedsInput", start, `string length ${length}+ beyond the input`)
  }
  if (pos >= bytes.length) return fail("Truncated", pos, "input ends inside a string length")
  if (bytes[pos] !== 0x3a) return fail("InvalidLength", pos, "string length not followed by ':'")
  pos++
  if (length > bytes.length - pos) return fail("LengthExceedsInput", start, `string length ${length} beyond the input`)
  state.pos = pos + length
  return bytes.subarray(pos, pos + length)
}

const readInteger = (state: State): number | BencodeError => {
  const { bytes } = state
  const start = state.pos
  let pos = start + 1
  const negative = bytes[pos] === 0x2d
  if (negative) pos++
  const digitsStart = pos
  while (pos < bytes.length && isDigit(bytes[pos]!)) pos++
  if (pos >= bytes.length) return fail("Truncated", pos, "input ends inside an integer")
  if (bytes[pos] !== 0x65) return fail("InvalidInteger", pos, "integer with a non-digit")
  const digits = pos - digitsStart
  if (digits === 0) return fail("InvalidInteger", start, "integer without digits")
  if (bytes[digitsStart] === 0x30 && (digits > 1 || negative)) {
    return fail("InvalidInteger", start, negative ? "integer -0" : "integer with a leading zero")
  }
  if (digits > 16) return fail("IntegerRange", start, "integer beyond 2^53")
  let value = 0
  for (let i = digitsStart; i < pos; i++) value = value * 10 + (bytes[i]! - 0x30)
  if (value > Number.MAX_SAFE_INTEGER) return fail("IntegerRange", start, "integer beyond 2^53")
  state.pos = pos + 1
  return negative ? -value : value
}

const readValue = (state: State, depth: number): Value | BencodeError => {
  const { bytes } = state
  if (state.pos >= bytes.length) return fail("Truncated", state.pos, "input ends where a value was expected")
  if (++state.items > state.maxItems) return fail("TooManyItems", state.pos, `more than ${state.maxItems} values`)
  const byte = bytes[state.pos]!
  if (isDigit(byte)) return readString(state)
  if (byte === 0x69) return readInteger(state)
  if (byte !== 0x6c && byte !== 0x64) return fail("UnexpectedByte", state.pos, `unexpected byte 0x${byte.toString(16)}`)
  if (depth >= state.maxDepth) return fail("TooDeep", state.pos, `nesting deeper than ${state.maxDepth}`)
  state.pos++
  return byte === 0x6c ? readList(state, depth + 1) : readDictionary(state, depth + 1)
}

const readList = (state: State, depth: number): Value | BencodeError => {
  const list: Array<Value> = []
  for (;;) {
    if (state.pos >= state.bytes.length) return fail("Truncated", state.pos, "input ends inside a list")
    if (state.bytes[state.pos] === 0x65) {
      state.pos++
      return list
    }
    const item = readValue(state, depth)
    if (item instanceof BencodeError) return item
    list.push(item)
  }
}

const readDictionary = (state: State, depth: number): Value | BencodeError => {
  const dictionary = new Map<string, Value>()
  for (;;) {
    const keyStart = state.pos
    if (keyStart >= state.bytes.length) return fail("Truncated", keyStart, "input ends inside a dictionary")
    if (state.bytes[keyStart] === 0x65) {
      state.pos++
      return dictionary
    }
    if (!isDigit(state.bytes[keyStart]!)) return fail("KeyNotString", keyStart, "dictionary key is not a string")
    const keyBytes = readString(state)
    if (keyBytes instanceof BencodeError) return keyBytes
    const key = state.latin1.toString("latin1", state.pos - keyBytes.length, state.pos)
    if (dictionary.has(key)) return fail("DuplicateKey", keyStart, `duplicate key "${key.slice(0, 64)}"`)
    const valueStart = state.pos
    const value = readValue(state, depth)
    if (value instanceof BencodeError) return value
    dictionary.set(key, value)
    if (depth === 1) state.spans.set(key, { start: valueStart, end: state.pos })
  }
}

const run = (
  bytes: Uint8Array,
  options: Options | undefined,
  allowTrailing: boolean
): Either.Either<Document, BencodeError> => {
  const maxLength = options?.maxLength ?? DEFAULT_MAX_LENGTH
  if (bytes.length > maxLength) return Either.left(fail("TooLarge", 0, `input of ${bytes.length} bytes over ${maxLength}`))
  const state: State = {
    bytes,
    latin1: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
    maxDepth: Math.min(options?.maxDepth ?? DEFAULT_MAX_DEPTH, HARD_MAX_DEPTH),
    maxItems: options?.maxItems ?? DEFAULT_MAX_ITEMS,
    spans: new Map(),
    pos: 0,
    items: 0
  }
  const value = readValue(state, 0)
  if (value instanceof BencodeError) return Either.left(value)
  if (!allowTrailing && state.pos !== bytes.length) {
    return Either.left(fail("TrailingData", state.pos, "data after the value"))
  }
  return Either.right({ value, end: state.pos, spans: state.spans })
}

/** Decodes exactly one value filling all of `bytes`. */
export const decode = (bytes: Uint8Array, options?: Options): Either.Either<Value, BencodeError> =>
  Either.map(run(bytes, options, false), (document) => document.value)

/** Decodes exactly one value filling all of `bytes`, with the spans of its top-level values. */
export const decodeDocument = (bytes: Uint8Array, options?: Options): Either.Either<Document, BencodeError> =>
  run(bytes, options, false)

/** Decodes one value at the start of `bytes`, leaving what follows (e.g. ut_metadata piece data). */
export const decodePrefix = (bytes: Uint8Array, options?: Options): Either.Either<Document, BencodeError> =>
  run(bytes, options, true)

// ---------------------------------------------------------------------------------------------
// Encoding

const textEncoder = new TextEncoder()

const keyBytes = (key: string): Buffer =>
  // Keys are latin1 in the value model; a char beyond U+00FF cannot be latin1, so it means UTF-8.
  /[^\u0000-\u00ff]/.test(key) ? Buffer.from(key, "utf8") : Buffer.from(key, "latin1")

const ascii = (text: string): Uint8Array => Buffer.from(text, "latin1")

// Numbers are meant to be safe integers; anything else is written truncated (non-finite as 0)
// rather than producing invalid bencode.
const integerText = (value: number): string => (Number.isFinite(value) ? Math.trunc(value).toFixed(0) : "0")

const writeValue = (value: Encodable, out: Array<Uint8Array>): void => {
  if (value instanceof Uint8Array) {
    out.push(ascii(`${value.length}:`), value)
  } else if (typeof value === "number") {
    out.push(ascii(`i${integerText(value)}e`))
  } else if (typeof value === "string") {
    const bytes = textEncoder.encode(value)
    out.push(ascii(`${bytes.length}:`), bytes)
  } else if (Array.isArray(value)) {
    out.push(ascii("l"))
    for (const item of value as ReadonlyArray<Encodable>) writeValue(item, out)
    out.push(ascii("e"))
  } else {
    const entries: Array<readonly [Buffer, Encodable]> = []
    const source: Iterable<readonly [string, Encodable | undefined]> =
      value instanceof Map ? value : Object.entries(value as { readonly [key: string]: Encodable | undefined })
    for (const [key, item] of source) if (item !== undefined) entries.push([keyBytes(key), item])
    entries.sort((a, b) => Buffer.compare(a[0], b[0]))
    out.push(ascii("d"))
    for (const [key, item] of entries) {
      out.push(ascii(`${key.length}:`), key)
      writeValue(item, out)
    }
    out.push(ascii("e"))
  }
}

/** Encodes canonically: dictionary keys sorted by their raw bytes. */
export const encode = (value: Encodable): Uint8Array => {
  const out: Array<Uint8Array> = []
  writeValue(value, out)
  const bytes = Buffer.concat(out)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

// ---------------------------------------------------------------------------------------------
// Typed access, for parsers of torrents, tracker replies, extension handshakes and KRPC

const textDecoder = new TextDecoder("utf-8")

/** Whether a value is a byte string. */
export const isBytes = (value: Value): value is Uint8Array => value instanceof Uint8Array
/** Whether a value is an integer. */
export const isInteger = (value: Value): value is number => typeof value === "number"
/** Whether a value is a list. */
export const isList = (value: Value): value is ReadonlyArray<Value> => Array.isArray(value)
/** Whether a value is a dictionary. */
export const isDictionary = (value: Value): value is Dictionary => value instanceof Map

/** UTF-8 text of a byte string (invalid sequences become U+FFFD). */
export const text = (bytes: Uint8Array): string => textDecoder.decode(bytes)

const field = <A extends Value>(
  dictionary: Dictionary,
  key: string,
  expected: BencodeFieldError["expected"],
  guard: (value: Value) => value is A
): Either.Either<A, BencodeFieldError> => {
  const value = dictionary.get(key)
  if (value === undefined) {
    return Either.left(new BencodeFieldError({ reason: "Missing", field: key, expected, message: `missing field "${key}"` }))
  }
  return guard(value)
    ? Either.right(value)
    : Either.left(
        new BencodeFieldError({ reason: "WrongType", field: key, expected, message: `field "${key}" is not a ${expected}` })
      )
}

/** The byte string at `key`. */
export const getBytes = (dictionary: Dictionary, key: string): Either.Either<Uint8Array, BencodeFieldError> =>
  field(dictionary, key, "bytes", isBytes)

/** The byte string at `key` as UTF-8 text. */
export const getString = (dictionary: Dictionary, key: string): Either.Either<string, BencodeFieldError> =>
  Either.map(field(dictionary, key, "string", isBytes), text)

/** The integer at `key`. */
export const getInteger = (dictionary: Dictionary, key: string): Either.Either<number, BencodeFieldError> =>
  field(dictionary, key, "integer", isInteger)

/** The list at `key`. */
export const getList = (dictionary: Dictionary, key: string): Either.Either<ReadonlyArray<Value>, BencodeFieldError> =>
  field(dictionary, key, "list", isList)

/** The dictionary at `key`. */
export const getDictionary = (dictionary: Dictionary, key: string): Either.Either<Dictionary, BencodeFieldError> =>
  field(dictionary, key, "dictionary", isDictionary)

/** Makes any getter optional: `undefined` when the key is absent, still an error when mistyped. */
export const optional = <A>(
  dictionary: Dictionary,
  key: string,
  get: (dictionary: Dictionary, key: string) => Either.Either<A, BencodeFieldError>
): Either.Either<A | undefined, BencodeFieldError> =>
  dictionary.has(key) ? get(dictionary, key) : Either.right(undefined)
