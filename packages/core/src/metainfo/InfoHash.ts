/**
 * The 20-byte SHA-1 of a torrent's bencoded `info` dictionary: the torrent's identity on the
 * wire, at trackers and in magnet links.
 */
import { Brand, Data, Either } from "effect"

/** A 20-byte v1 info-hash. */
export type InfoHash = Uint8Array & Brand.Brand<"InfoHash">

/** Why a string or byte array is not an info-hash. */
export class InfoHashError extends Data.TaggedError("InfoHashError")<{
  readonly reason: "Length" | "Hex" | "Base32"
  readonly input: string
}> {}

/** Length of a v1 info-hash in bytes. */
export const LENGTH = 20

/** Brands 20 bytes as an info-hash (copying, so later mutation of `bytes` cannot change it). */
export const fromBytes = (bytes: Uint8Array): Either.Either<InfoHash, InfoHashError> =>
  bytes.length === LENGTH
    ? Either.right(Uint8Array.from(bytes) as InfoHash)
    : Either.left(new InfoHashError({ reason: "Length", input: `${bytes.length} bytes` }))

/** Brands bytes known to be 20 long (e.g. a SHA-1 digest) without a check. */
export const unsafeFromBytes = (bytes: Uint8Array): InfoHash => bytes as InfoHash

/** Lower-case hex form, also used as a map key. */
export const toHex = (hash: InfoHash): string => Buffer.from(hash).toString("hex")

/** Parses 40 hex digits (either case). */
export const fromHex = (hex: string): Either.Either<InfoHash, InfoHashError> =>
  /^[0-9a-fA-F]{40}$/.test(hex)
    ? Either.right(Uint8Array.from(Buffer.from(hex, "hex")) as InfoHash)
    : Either.left(new InfoHashError({ reason: hex.length === 40 ? "Hex" : "Length", input: hex }))

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

/** RFC 4648 base32 form (32 characters, no padding), as used by old magnet links. */
export const toBase32 = (hash: InfoHash): string => {
  let out = ""
  let buffer = 0
  let bits = 0
  for (const byte of hash) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out
}

/** Parses 32 base32 characters (either case). */
export const fromBase32 = (text: string): Either.Either<InfoHash, InfoHashError> => {
  if (text.length !== 32) return Either.left(new InfoHashError({ reason: "Length", input: text }))
  const out = new Uint8Array(LENGTH)
  let buffer = 0
  let bits = 0
  let index = 0
  for (const char of text.toUpperCase()) {
    const value = BASE32.indexOf(char)
    if (value < 0) return Either.left(new InfoHashError({ reason: "Base32", input: text }))
    buffer = ((buffer << 5) | value) & 0xffff
    bits += 5
    if (bits >= 8) {
      out[index++] = (buffer >>> (bits - 8)) & 0xff
      bits -= 8
    }
  }
  return Either.right(out as InfoHash)
}

/** Byte-wise equality. */
export const equals = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
