/**
 * The small, bounded subset of HTTP/1.1 that trackers speak: one GET per connection
 * (`Connection: close`), a response body framed by Content-Length, chunked transfer-encoding or
 * the end of the connection, and query strings that carry raw bytes percent-encoded.
 */
import { Data, Either, Option } from "effect"

/** Why bytes are not an acceptable HTTP message. */
export class HttpMessageError extends Data.TaggedError("HttpMessageError")<{
  /** `TooLarge`: over a size limit; `Malformed`: not HTTP; `Truncated`: the connection ended mid-message. */
  readonly reason: "TooLarge" | "Malformed" | "Truncated"
  readonly message: string
}> {}

/** A parsed response. Header names are lower-cased. */
export interface Response {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: Uint8Array
}

/** A parsed request head (the body, if any, is ignored). */
export interface RequestHead {
  readonly method: string
  /** The request target as sent, e.g. `/announce?info_hash=...`. */
  readonly target: string
  readonly headers: ReadonlyMap<string, string>
}

/** Limits for a response. */
export interface Limits {
  /** Longest status line plus headers. */
  readonly maxHead: number
  /** Largest body. */
  readonly maxBody: number
}

/** Defaults: 16 KiB of head, 2 MiB of body. */
export const defaultLimits: Limits = { maxHead: 16 * 1024, maxBody: 2 * 1024 * 1024 }

const fail = (reason: HttpMessageError["reason"], message: string) =>
  Either.left(new HttpMessageError({ reason, message }))

const needMore = Either.right(Option.none())

const CRLF = [13, 10]
const CRLFCRLF = [13, 10, 13, 10]

const indexOf = (buffer: Uint8Array, needle: ReadonlyArray<number>, from: number, to: number): number => {
  for (let i = from; i + needle.length <= to; i++) {
    let match = true
    for (let j = 0; j < needle.length; j++) {
      if (buffer[i + j] !== needle[j]) {
        match = false
        break
      }
    }
    if (match) return i
  }
  return -1
}

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1")

interface Head {
  readonly line: string
  readonly headers: Map<string, string>
  readonly bodyStart: number
}

/** Splits a head into its first line and its headers, or explains why it cannot. */
const parseHead = (buffer: Uint8Array, maxHead: number): Either.Either<Option.Option<Head>, HttpMessageError> => {
  const end = indexOf(buffer, CRLFCRLF, 0, Math.min(buffer.length, maxHead + 4))
  if (end < 0) return buffer.length > maxHead ? fail("TooLarge", `head over ${maxHead} bytes`) : needMore
  const lines = latin1(buffer.subarray(0, end)).split("\r\n")
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    if (colon <= 0) return fail("Malformed", `bad header line ${JSON.stringify(line.slice(0, 80))}`)
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    // Repeated headers are joined as RFC 9110 allows for list-valued ones.
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value)
  }
  return Either.right(Option.some({ line: lines[0]!, headers, bodyStart: end + 4 }))
}

/**
 * Parses a response from all bytes received so far. `ended` says the peer closed the
 * connection. Returns `None` while more bytes are needed.
 */
export const parseResponse = (
  buffer: Uint8Array,
  ended: boolean,
  limits: Limits = defaultLimits
): Either.Either<Option.Option<Response>, HttpMessageError> =>
  Either.flatMap(parseHead(buffer, limits.maxHead), (head) => {
    if (Option.isNone(head)) return ended ? fail("Truncated", "connection closed inside the head") : needMore
    const { bodyStart, headers, line } = head.value
    const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(line)
    if (status === null) return fail("Malformed", `bad status line ${JSON.stringify(line.slice(0, 80))}`)
    const code = Number(status[1])
    const done = (body: Uint8Array) => Either.right(Option.some({ status: code, headers, body }))
    const rest = buffer.subarray(bodyStart)
    if (code === 204 || code === 304 || (code >= 100 && code < 200)) return done(new Uint8Array(0))
    const encoding = headers.get("transfer-encoding")
    if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
      if (encoding.toLowerCase() !== "chunked") return fail("Malformed", `unsupported transfer-encoding ${encoding}`)
      return Either.flatMap(decodeChunked(rest, limits.maxBody), (body) => {
        if (Option.isSome(body)) return done(body.value)
        return ended ? fail("Truncated", "connection closed inside a chunk") : needMore
      })
    }
    const lengthHeader = headers.get("content-length")
    if (lengthHeader !== undefined) {
      if (!/^\d{1,15}$/.test(lengthHeader)) return fail("Malformed", `bad content-length ${lengthHeader}`)
      const length = Number(lengthHeader)
      if (length > limits.maxBody) return fail("TooLarge", `body of ${length} bytes, over ${limits.maxBody}`)
      if (rest.length >= length) return done(rest.slice(0, length))
      return ended ? fail("Truncated", `body ended at ${rest.length} of ${length} bytes`) : needMore
    }
    if (rest.length > limits.maxBody) return fail("TooLarge", `body over ${limits.maxBody} bytes`)
    return ended ? done(rest.slice()) : needMore
  })

/** Decodes a complete chunked body, or `None` while the last chunk has not arrived. */
const decodeChunked = (
  bytes: Uint8Array,
  maxBody: number
): Either.Either<Option.Option<Uint8Array>, HttpMessageError> => {
  const parts: Array<Uint8Array> = []
  let total = 0
  let at = 0
  for (;;) {
    const lineEnd = indexOf(bytes, CRLF, at, Math.min(bytes.length, at + 1024))
    if (lineEnd < 0) return bytes.length - at > 1024 ? fail("Malformed", "chunk size line too long") : needMore
    const sizeText = latin1(bytes.subarray(at, lineEnd)).split(";")[0]!.trim()
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return fail("Malformed", `bad chunk size ${JSON.stringify(sizeText)}`)
    const size = parseInt(sizeText, 16)
    // Trailers after the last chunk carry nothing a tracker needs: the body is complete here.
    if (size === 0) return Either.right(Option.some(Buffer.concat(parts, total)))
    total += size
    if (total > maxBody) return fail("TooLarge", `chunked body over ${maxBody} bytes`)
    const dataStart = lineEnd + 2
    if (bytes.length < dataStart + size + 2) return needMore
    if (bytes[dataStart + size] !== 13 || bytes[dataStart + size + 1] !== 10) {
      return fail("Malformed", "chunk not followed by CRLF")
    }
    parts.push(bytes.subarray(dataStart, dataStart + size))
    at = dataStart + size + 2
  }
}

/** Parses a request head from the bytes received so far; `None` while it is incomplete. */
export const parseRequestHead = (
  buffer: Uint8Array,
  maxHead: number
): Either.Either<Option.Option<RequestHead>, HttpMessageError> =>
  Either.flatMap(parseHead(buffer, maxHead), (head) => {
    if (Option.isNone(head)) return needMore
    const request = /^([A-Z]{1,16}) (\S+) HTTP\/1\.[01]$/.exec(head.value.line)
    if (request === null) return fail("Malformed", `bad request line ${JSON.stringify(head.value.line.slice(0, 80))}`)
    return Either.right(Option.some({ method: request[1]!, target: request[2]!, headers: head.value.headers }))
  })

/** A GET request that asks the server to close the connection after its response. */
export const encodeGet = (target: string, host: string): Uint8Array =>
  Buffer.from(
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: bitfiber/0.1\r\n` +
      "Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
    "latin1"
  )

/** A complete response with a Content-Length, after which the server closes the connection. */
export const encodeResponse = (status: number, reason: string, contentType: string, body: Uint8Array): Uint8Array =>
  Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${contentType}\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      "latin1"
    ),
    body
  ])

const isUnreserved = (byte: number) =>
  (byte >= 0x30 && byte <= 0x39) || // 0-9
  (byte >= 0x41 && byte <= 0x5a) || // A-Z
  (byte >= 0x61 && byte <= 0x7a) || // a-z
  byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e // - . _ ~

const HEX = "0123456789ABCDEF"

/** Percent-encodes raw bytes: every byte outside RFC 3986's unreserved set becomes `%XX`. */
export const percentEncode = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) {
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[byte >>> 4]}${HEX[byte & 15]}`
  }
  return out
}

/** The value of one hex digit's char code, or -1. */
const hexValue = (code: number): number => {
  if (code >= 0x30 && code <= 0x39) return code - 0x30 // 0-9
  if (code >= 0x41 && code <= 0x46) return code - 0x37 // A-F
  if (code >= 0x61 && code <= 0x66) return code - 0x57 // a-f
  return -1
}

/** Decodes a percent-encoded query component to raw bytes (`+` is a space); `None` on a bad escape. */
export const percentDecode = (text: string): Option.Option<Uint8Array> => {
  const out = new Uint8Array(text.length)
  let length = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x25) {
      const high = hexValue(text.charCodeAt(i + 1))
      const low = hexValue(text.charCodeAt(i + 2))
      if (high < 0 || low < 0) return Option.none()
      out[length++] = (high << 4) | low
      i += 2
    } else if (code > 0x7e || code < 0x21) {
      return Option.none()
    } else {
      out[length++] = code === 0x2b ? 0x20 : code
    }
  }
  return Option.some(out.slice(0, length))
}

/** Splits a query string (without `?`) into its parameters; a name may repeat (scrape's info_hash). */
export const parseQuery = (query: string): Option.Option<ReadonlyMap<string, ReadonlyArray<Uint8Array>>> => {
  const params = new Map<string, Array<Uint8Array>>()
  if (query === "") return Option.some(params)
  for (const pair of query.split("&")) {
    if (pair === "") continue
    const equals = pair.indexOf("=")
    const name = percentDecode(equals < 0 ? pair : pair.slice(0, equals))
    const value = percentDecode(equals < 0 ? "" : pair.slice(equals + 1))
    if (Option.isNone(name) || Option.isNone(value)) return Option.none()
    const key = latin1(name.value)
    const values = params.get(key)
    if (values === undefined) params.set(key, [value.value])
    else values.push(value.value)
  }
  return Option.some(params)
}
