/**
 * Compact peer lists (BEP 23 / BEP 7 / BEP 11): 6 bytes per IPv4 peer (address, port) and 18
 * bytes per IPv6 peer, big-endian. Trackers, ut_pex and DHT all speak it.
 */
import { Data, Either } from "effect"
import type { Address } from "./Network.js"

/** Why a compact peer list or an address could not be converted. */
export class CompactPeerError extends Data.TaggedError("CompactPeerError")<{
  /** `Length`: the list is not a multiple of the entry size; `Address`: not an IP literal of that family or a bad port. */
  readonly reason: "Length" | "Address"
  readonly input: string
}> {}

/** Bytes per IPv4 entry. */
export const IPV4_LENGTH = 6

/** Bytes per IPv6 entry. */
export const IPV6_LENGTH = 18

const lengthError = (bytes: Uint8Array, entry: number) =>
  Either.left(new CompactPeerError({ reason: "Length", input: `${bytes.length} bytes, not a multiple of ${entry}` }))

/** Decodes a list of 6-byte IPv4 entries. */
export const decode4 = (bytes: Uint8Array): Either.Either<ReadonlyArray<Address>, CompactPeerError> => {
  if (bytes.length % IPV4_LENGTH !== 0) return lengthError(bytes, IPV4_LENGTH)
  const peers: Array<Address> = []
  for (let i = 0; i < bytes.length; i += IPV4_LENGTH) {
    peers.push({
      host: `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}`,
      port: (bytes[i + 4]! << 8) | bytes[i + 5]!
    })
  }
  return Either.right(peers)
}

/** Decodes a list of 18-byte IPv6 entries; hosts are in RFC 5952 canonical text form. */
export const decode6 = (bytes: Uint8Array): Either.Either<ReadonlyArray<Address>, CompactPeerError> => {
  if (bytes.length % IPV6_LENGTH !== 0) return lengthError(bytes, IPV6_LENGTH)
  const peers: Array<Address> = []
  for (let i = 0; i < bytes.length; i += IPV6_LENGTH) {
    peers.push({ host: formatIpv6(bytes.subarray(i, i + 16)), port: (bytes[i + 16]! << 8) | bytes[i + 17]! })
  }
  return Either.right(peers)
}

/** Encodes IPv4 peers; fails on a host that is not a dotted-quad literal or a port outside 0-65535. */
export const encode4 = (peers: ReadonlyArray<Address>): Either.Either<Uint8Array, CompactPeerError> => {
  const out = new Uint8Array(peers.length * IPV4_LENGTH)
  for (let p = 0; p < peers.length; p++) {
    const { host, port } = peers[p]!
    const ip = parseIpv4(host)
    if (ip === undefined || !validPort(port)) return addressError(host, port)
    out.set(ip, p * IPV4_LENGTH)
    out[p * IPV4_LENGTH + 4] = port >>> 8
    out[p * IPV4_LENGTH + 5] = port & 0xff
  }
  return Either.right(out)
}

/** Encodes IPv6 peers; fails on a host that is not an IPv6 literal or a port outside 0-65535. */
export const encode6 = (peers: ReadonlyArray<Address>): Either.Either<Uint8Array, CompactPeerError> => {
  const out = new Uint8Array(peers.length * IPV6_LENGTH)
  for (let p = 0; p < peers.length; p++) {
    const { host, port } = peers[p]!
    const ip = parseIpv6(host)
    if (ip === undefined || !validPort(port)) return addressError(host, port)
    out.set(ip, p * IPV6_LENGTH)
    out[p * IPV6_LENGTH + 16] = port >>> 8
    out[p * IPV6_LENGTH + 17] = port & 0xff
  }
  return Either.right(out)
}

const validPort = (port: number) => Number.isInteger(port) && port >= 0 && port <= 0xffff

const addressError = (host: string, port: number) =>
  Either.left(new CompactPeerError({ reason: "Address", input: `${host} port ${port}` }))

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** The 4 bytes of a dotted-quad literal, or undefined. */
const parseIpv4 = (host: string): Uint8Array | undefined => {
  const match = IPV4.exec(host)
  if (match === null) return undefined
  const bytes = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const octet = Number(match[i + 1])
    if (octet > 255) return undefined
    bytes[i] = octet
  }
  return bytes
}

const GROUP = /^[0-9a-fA-F]{1,4}$/

/** The 16 bytes of an IPv6 literal (with `::` and an optional trailing dotted quad), or undefined. */
const parseIpv6 = (host: string): Uint8Array | undefined => {
  const halves = host.split("::")
  if (halves.length > 2) return undefined
  const groups = (text: string): Array<number> | undefined => {
    if (text === "") return []
    const parts = text.split(":")
    const out: Array<number> = []
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!
      if (i === parts.length - 1 && part.includes(".")) {
        const ip = parseIpv4(part)
        if (ip === undefined) return undefined
        out.push((ip[0]! << 8) | ip[1]!, (ip[2]! << 8) | ip[3]!)
      } else if (GROUP.test(part)) {
        out.push(parseInt(part, 16))
      } else {
        return undefined
      }
    }
    return out
  }
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  if (head === undefined || tail === undefined) return undefined
  // A tail that came after "::" stands for at least one zero group; without "::" exactly 8 are needed.
  const count = head.length + tail.length
  if (halves.length === 2 ? count > 7 : count !== 8) return undefined
  const bytes = new Uint8Array(16)
  head.forEach((g, i) => {
    bytes[2 * i] = g >>> 8
    bytes[2 * i + 1] = g & 0xff
  })
  tail.forEach((g, i) => {
    const at = 2 * (8 - tail.length + i)
    bytes[at] = g >>> 8
    bytes[at + 1] = g & 0xff
  })
  return bytes
}

/** RFC 5952 text form: lower-case hex, the longest run (>= 2) of zero groups written `::`. */
const formatIpv6 = (bytes: Uint8Array): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!)
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":")
  return bestStart < 0 ? hex(0, 8) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}
