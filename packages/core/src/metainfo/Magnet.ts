/**
 * Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=...&tr=...&x.pe=...&ws=...&so=...`.
 * Parsing is total: malformed percent-escapes, hashes, peers or selections are typed errors.
 * `+` in a value means a space (form encoding, as libtorrent reads it); `format` escapes both.
 */
import { Data, Either } from "effect"
import { isIPv6 } from "node:net"
import type { Address } from "../net/Network.js"
import { formatAddress } from "../net/Network.js"
import { fromBase32, fromHex, type InfoHash, toHex } from "./InfoHash.js"

/** An inclusive range of file indices (`so=4-6` is first 4, last 6; `so=2` is 2..2). */
export interface FileRange {
  readonly first: number
  readonly last: number
}

/** A parsed magnet link. */
export interface Magnet {
  readonly infoHash: InfoHash
  /** `dn`: a display name until the metadata arrives. */
  readonly name: string | undefined
  /** `tr`: tracker URLs in order, without duplicates (each is its own tier). */
  readonly trackers: ReadonlyArray<string>
  /** `x.pe`: peers to dial directly. */
  readonly peers: ReadonlyArray<Address>
  /** `ws`: BEP 19 web seeds. */
  readonly webSeeds: ReadonlyArray<string>
  /** `so` (BEP 53): the files to download (never empty), or `undefined` for all. */
  readonly select: ReadonlyArray<FileRange> | undefined
}

/** Why a string is not a usable magnet link. */
export class MagnetError extends Data.TaggedError("MagnetError")<{
  readonly reason: "TooLong" | "NotMagnet" | "BadEncoding" | "MissingXt" | "UnsupportedXt" | "BadHash" | "BadPeer" | "BadSelect"
  readonly message: string
}> {}

/** Longest magnet link accepted, in characters. */
export const MAX_LENGTH = 64 * 1024
/** Most ranges in `so`. */
export const MAX_SELECT_RANGES = 1024
/** Largest file index `so` may name. */
export const MAX_SELECT_INDEX = 10_000_000

const fail = (reason: MagnetError["reason"], message: string) => Either.left(new MagnetError({ reason, message }))

const decodeValue = (raw: string): Either.Either<string, MagnetError> =>
  Either.try({
    try: () => decodeURIComponent(raw.replace(/\+/g, " ")),
    catch: () => new MagnetError({ reason: "BadEncoding", message: `malformed percent-encoding in "${raw.slice(0, 80)}"` })
  })

const parseHash = (text: string): Either.Either<InfoHash, MagnetError> => {
  const hash = text.length === 32 ? fromBase32(text) : fromHex(text)
  return Either.mapLeft(hash, () => new MagnetError({ reason: "BadHash", message: `"${text.slice(0, 80)}" is not a 40-hex or 32-base32 info-hash` }))
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/

const parsePeer = (text: string): Either.Either<Address, MagnetError> => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  const port = Number(match?.[3])
  const v6 = match?.[1]
  const host = v6 ?? match?.[2]
  const valid = host !== undefined && port >= 1 && port <= 65535 && (v6 !== undefined ? isIPv6(v6) : HOST_NAME.test(host))
  return valid ? Either.right({ host, port }) : fail("BadPeer", `"${text.slice(0, 80)}" is not host:port or [v6]:port`)
}

const parseSelect = (text: string): Either.Either<ReadonlyArray<FileRange>, MagnetError> => {
  const parts = text.split(",")
  if (parts.length > MAX_SELECT_RANGES) return fail("BadSelect", `more than ${MAX_SELECT_RANGES} ranges in so`)
  const ranges: Array<FileRange> = []
  for (const part of parts) {
    const match = /^(\d{1,8})(?:-(\d{1,8}))?$/.exec(part)
    const first = Number(match?.[1])
    const last = match?.[2] === undefined ? first : Number(match[2])
    if (match === null || last < first || last > MAX_SELECT_INDEX) {
      return fail("BadSelect", `"${part.slice(0, 40)}" is not an index or a range of indices`)
    }
    ranges.push({ first, last })
  }
  return Either.right(ranges)
}

/** Parses a magnet link carrying a v1 info-hash (`xt=urn:btih:`). */
export const parse = (uri: string): Either.Either<Magnet, MagnetError> =>
  Either.gen(function*() {
    if (uri.length > MAX_LENGTH) return yield* fail("TooLong", `magnet link longer than ${MAX_LENGTH} characters`)
    const trimmed = uri.trim()
    if (!/^magnet:\?/i.test(trimmed)) return yield* fail("NotMagnet", "not a magnet link (magnet:?...)")
    let infoHash: InfoHash | undefined
    let sawV2 = false
    let sawXt = false
    let name: string | undefined
    const trackers = new Set<string>()
    const webSeeds = new Set<string>()
    const peers: Array<Address> = []
    let select: ReadonlyArray<FileRange> | undefined
    for (const parameter of trimmed.slice("magnet:?".length).split("&")) {
      if (parameter === "") continue
      const equals = parameter.indexOf("=")
      const key = (equals < 0 ? parameter : parameter.slice(0, equals)).toLowerCase()
      const value = yield* decodeValue(equals < 0 ? "" : parameter.slice(equals + 1))
      if (/^xt(\.\d+)?$/.test(key)) {
        sawXt = true
        const btih = /^urn:btih:(.*)$/i.exec(value)
        if (btih !== null) {
          const hash = yield* parseHash(btih[1]!)
          if (infoHash !== undefined && toHex(infoHash) !== toHex(hash)) {
            return yield* fail("BadHash", "two different btih info-hashes")
          }
          infoHash = hash
        } else if (/^urn:btmh:/i.test(value)) {
          sawV2 = true
        }
      } else if (key === "dn") {
        name ??= value
      } else if (/^tr(\.\d+)?$/.test(key)) {
        if (value !== "") trackers.add(value)
      } else if (key === "ws") {
        if (value !== "") webSeeds.add(value)
      } else if (key === "x.pe") {
        peers.push(yield* parsePeer(value))
      } else if (key === "so") {
        select = yield* parseSelect(value)
      }
    }
    if (infoHash === undefined) {
      if (!sawXt) return yield* fail("MissingXt", "no xt (exact topic) parameter")
      return yield* fail(
        "UnsupportedXt",
        sawV2 ? "a v2-only magnet (urn:btmh) is not supported: it needs a urn:btih info-hash" : "no urn:btih exact topic"
      )
    }
    return { infoHash, name, trackers: [...trackers], peers, webSeeds: [...webSeeds], select }
  })

// Percent-encodes the UTF-8 bytes of everything but RFC 3986 unreserved characters; unlike
// encodeURIComponent it cannot throw (a lone surrogate becomes U+FFFD).
const escape = (text: string): string => {
  let out = ""
  for (const byte of Buffer.from(text, "utf8")) {
    const char = String.fromCharCode(byte)
    out += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/** Writes a magnet link that `parse` reads back to the same value. */
export const format = (magnet: Magnet): string => {
  const parts = [`xt=urn:btih:${toHex(magnet.infoHash)}`]
  if (magnet.name !== undefined) parts.push(`dn=${escape(magnet.name)}`)
  for (const tracker of magnet.trackers) parts.push(`tr=${escape(tracker)}`)
  for (const webSeed of magnet.webSeeds) parts.push(`ws=${escape(webSeed)}`)
  for (const peer of magnet.peers) parts.push(`x.pe=${escape(formatAddress(peer))}`)
  if (magnet.select !== undefined) {
    parts.push(`so=${magnet.select.map(({ first, last }) => (first === last ? `${first}` : `${first}-${last}`)).join(",")}`)
  }
  return `magnet:?${parts.join("&")}`
}

/** Whether file `index` is selected (every file is when the link has no `so`). */
export const isSelected = (magnet: Magnet, index: number): boolean =>
  magnet.select === undefined || magnet.select.some(({ first, last }) => index >= first && index <= last)
