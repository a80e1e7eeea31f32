/**
 * Payloads of BEP 10 extended messages: the extended handshake, BEP 9 ut_metadata (fetching the
 * info dictionary from peers) and BEP 11 ut_pex (peer exchange). Each codec maps the payload of a
 * `Message.Extended` (after its id byte); decoding is bounded and ignores keys it does not know.
 */
import { Either } from "effect"
import * as Bencode from "../bencode/Bencode.js"
import * as CompactPeer from "../net/CompactPeer.js"
import type { Address } from "../net/Network.js"
import { ProtocolError } from "./ProtocolError.js"

/** Extended message id of the extended handshake. */
export const HANDSHAKE_ID = 0

/** Name of BEP 9 in the handshake's `m` dictionary. */
export const UT_METADATA = "ut_metadata"

/** Name of BEP 11 in the handshake's `m` dictionary. */
export const UT_PEX = "ut_pex"

/** Size of a ut_metadata piece; only the last one is shorter. */
export const METADATA_PIECE_LENGTH = 16 * 1024

/** Most peers accepted in one pex list (BEP 11 asks senders for at most 50). */
export const MAX_PEX_PEERS = 200

const badExtension = (cause: unknown) => new ProtocolError({ reason: "BadExtension", cause })

const decodeDictionary = (
  payload: Uint8Array,
  options: Bencode.Options,
  prefix: boolean
): Either.Either<{ readonly dictionary: Bencode.Dictionary; readonly end: number }, ProtocolError> =>
  Either.match((prefix ? Bencode.decodePrefix : Bencode.decodeDocument)(payload, options), {
    onLeft: (error) => Either.left(badExtension(error)),
    onRight: ({ end, value }) =>
      Bencode.isDictionary(value) ? Either.right({ dictionary: value, end }) : Either.left(badExtension("not a dictionary"))
  })

/** The integer at `key` if it is one within [min, max]; anything else counts as absent. */
const integerIn = (dictionary: Bencode.Dictionary, key: string, min: number, max: number): number | undefined => {
  const value = dictionary.get(key)
  return typeof value === "number" && value >= min && value <= max ? value : undefined
}

// ---------------------------------------------------------------------------------------------
// BEP 10 extended handshake

/** The extended handshake (BEP 10). Optional fields that are absent or invalid are left out. */
export interface ExtendedHandshake {
  /** `m`: extension name to the id the sender wants to receive it under; 0 = disabled. */
  readonly extensions: ReadonlyMap<string, number>
  /** `v`: client name and version. */
  readonly client?: string
  /** `p`: the sender's listening port. */
  readonly port?: number
  /** `reqq`: how many outstanding requests the sender queues. */
  readonly requestQueue?: number
  /** `metadata_size` (BEP 9): length of the info dictionary in bytes. */
  readonly metadataSize?: number
  /** `yourip`: our address as the sender sees it (4 or 16 bytes). */
  readonly yourIp?: Uint8Array
}

/** Largest extended handshake payload accepted. */
export const MAX_HANDSHAKE_LENGTH = 64 * 1024

const handshakeLimits: Bencode.Options = { maxLength: MAX_HANDSHAKE_LENGTH, maxDepth: 8, maxItems: 4096 }

/** The bencoded payload of an extended handshake. */
export const encodeHandshake = (handshake: ExtendedHandshake): Uint8Array =>
  Bencode.encode({
    m: handshake.extensions,
    v: handshake.client,
    p: handshake.port,
    reqq: handshake.requestQueue,
    metadata_size: handshake.metadataSize,
    yourip: handshake.yourIp
  })

/** Decodes an extended handshake; fails only when the payload is not a bounded bencoded dictionary. */
export const decodeHandshake = (payload: Uint8Array): Either.Either<ExtendedHandshake, ProtocolError> =>
  Either.map(decodeDictionary(payload, handshakeLimits, false), ({ dictionary }) => {
    const extensions = new Map<string, number>()
    const m = dictionary.get("m")
    if (m !== undefined && Bencode.isDictionary(m)) {
      // Ids travel in one byte; anything else cannot be used and is dropped.
      for (const [name, id] of m) if (typeof id === "number" && id >= 0 && id <= 255) extensions.set(name, id)
    }
    const v = dictionary.get("v")
    const yourIp = dictionary.get("yourip")
    const port = integerIn(dictionary, "p", 1, 0xffff)
    const requestQueue = integerIn(dictionary, "reqq", 1, 0xffffffff)
    const metadataSize = integerIn(dictionary, "metadata_size", 1, 0x7fffffff)
    return {
      extensions,
      ...(v !== undefined && Bencode.isBytes(v) ? { client: Bencode.text(v) } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(requestQueue !== undefined ? { requestQueue } : {}),
      ...(metadataSize !== undefined ? { metadataSize } : {}),
      ...(yourIp !== undefined && Bencode.isBytes(yourIp) && (yourIp.length === 4 || yourIp.length === 16)
        ? { yourIp: Uint8Array.from(yourIp) }
        : {})
    }
  })

// ---------------------------------------------------------------------------------------------
// BEP 9 ut_metadata

/** Asks for metadata piece `piece`. */
export interface MetadataRequest {
  readonly _tag: "MetadataRequest"
  readonly piece: number
}
/** Metadata piece `piece` of an info dictionary of `totalSize` bytes; `data` is a view of the payload. */
export interface MetadataData {
  readonly _tag: "MetadataData"
  readonly piece: number
  readonly totalSize: number
  readonly data: Uint8Array
}
/** The sender will not give us piece `piece`. */
export interface MetadataReject {
  readonly _tag: "MetadataReject"
  readonly piece: number
}
/** A ut_metadata message. */
export type MetadataMessage = MetadataRequest | MetadataData | MetadataReject

const metadataLimits: Bencode.Options = { maxLength: METADATA_PIECE_LENGTH + 1024, maxDepth: 4, maxItems: 64 }

/** The payload of a ut_metadata message: a bencoded dictionary, followed by the piece for data. */
export const encodeMetadata = (message: MetadataMessage): Uint8Array => {
  switch (message._tag) {
    case "MetadataRequest":
      return Bencode.encode({ msg_type: 0, piece: message.piece })
    case "MetadataReject":
      return Bencode.encode({ msg_type: 2, piece: message.piece })
    case "MetadataData": {
      const header = Bencode.encode({ msg_type: 1, piece: message.piece, total_size: message.totalSize })
      const out = new Uint8Array(header.length + message.data.length)
      out.set(header)
      out.set(message.data, header.length)
      return out
    }
  }
}

/**
 * Decodes a ut_metadata message. A data message must carry exactly the bytes its piece has in an
 * info dictionary of `total_size` bytes. An unknown `msg_type` fails with `UnknownMessage`, which
 * BEP 9 says to ignore.
 */
export const decodeMetadata = (payload: Uint8Array): Either.Either<MetadataMessage, ProtocolError> =>
  Either.flatMap(decodeDictionary(payload, metadataLimits, true), ({ dictionary, end }) => {
    const type = dictionary.get("msg_type")
    if (typeof type !== "number") return Either.left(badExtension("msg_type missing"))
    if (type < 0 || type > 2) return Either.left(new ProtocolError({ reason: "UnknownMessage", messageId: type }))
    const piece = integerIn(dictionary, "piece", 0, 0x7fffffff)
    if (piece === undefined) return Either.left(badExtension("piece missing"))
    if (type !== 1 && end !== payload.length) return Either.left(badExtension("data after a request or reject"))
    switch (type) {
      case 0:
        return Either.right<MetadataMessage>({ _tag: "MetadataRequest", piece })
      case 2:
        return Either.right<MetadataMessage>({ _tag: "MetadataReject", piece })
      default: {
        const totalSize = integerIn(dictionary, "total_size", 1, 0x7fffffff)
        if (totalSize === undefined) return Either.left(badExtension("total_size missing"))
        const data = payload.subarray(end)
        // Also fails for a piece past the end, whose expected length is <= 0.
        if (data.length !== Math.min(METADATA_PIECE_LENGTH, totalSize - piece * METADATA_PIECE_LENGTH) || data.length === 0) {
          return Either.left(badExtension(`piece ${piece} of ${totalSize} bytes has ${data.length} bytes`))
        }
        return Either.right<MetadataMessage>({ _tag: "MetadataData", piece, totalSize, data })
      }
    }
  })

// ---------------------------------------------------------------------------------------------
// BEP 11 ut_pex

/** Flag bits of a pex peer (`added.f`). */
export const PexFlags = {
  /** Prefers encryption. */
  Encryption: 0x01,
  /** Is a seed (or upload-only). */
  Seed: 0x02,
  /** Supports uTP. */
  Utp: 0x04,
  /** Supports ut_holepunch. */
  Holepunch: 0x08,
  /** Was reachable: the sender connected to it. */
  Reachable: 0x10
} as const

/** A peer the sender connected to, with its `PexFlags`. */
export interface PexPeer {
  readonly address: Address
  readonly flags: number
}

/** A ut_pex message: peers connected and disconnected since the last one, IPv4 and IPv6 together. */
export interface PexMessage {
  readonly added: ReadonlyArray<PexPeer>
  readonly dropped: ReadonlyArray<Address>
}

// Four full lists of IPv6-sized entries, two flag strings, and 1 KiB for keys and unknown entries.
const pexLimits: Bencode.Options = { maxLength: MAX_PEX_PEERS * (4 * 18 + 2) + 1024, maxDepth: 4, maxItems: 256 }

const isIpv6 = (address: Address) => address.host.includes(":")

/** The payload of a ut_pex message; fails on a host that is not an IP literal. */
export const encodePex = (message: PexMessage): Either.Either<Uint8Array, CompactPeer.CompactPeerError> => {
  const added4 = message.added.filter((peer) => !isIpv6(peer.address))
  const added6 = message.added.filter((peer) => isIpv6(peer.address))
  return Either.all({
    added: CompactPeer.encode4(added4.map((peer) => peer.address)),
    added6: CompactPeer.encode6(added6.map((peer) => peer.address)),
    dropped: CompactPeer.encode4(message.dropped.filter((address) => !isIpv6(address))),
    dropped6: CompactPeer.encode6(message.dropped.filter(isIpv6))
  }).pipe(
    Either.map((lists) =>
      Bencode.encode({
        ...lists,
        "added.f": Uint8Array.from(added4, (peer) => peer.flags),
        "added6.f": Uint8Array.from(added6, (peer) => peer.flags)
      })
    )
  )
}

/** The compact peers at `key` (absent = none), failing on a bad length or more than `MAX_PEX_PEERS`. */
const peersAt = (
  dictionary: Bencode.Dictionary,
  key: string,
  decode: (bytes: Uint8Array) => Either.Either<ReadonlyArray<Address>, CompactPeer.CompactPeerError>
): Either.Either<ReadonlyArray<Address>, ProtocolError> => {
  const value = dictionary.get(key)
  if (value === undefined) return Either.right([])
  if (!Bencode.isBytes(value)) return Either.left(badExtension(`${key} is not a byte string`))
  return Either.match(decode(value), {
    onLeft: (error) => Either.left(badExtension(error)),
    onRight: (peers) =>
      peers.length > MAX_PEX_PEERS ? Either.left(badExtension(`${peers.length} peers in ${key}`)) : Either.right(peers)
  })
}

/** Pairs peers with their flag bytes; flags are 0 where the flag string is missing or too short. */
const withFlags = (peers: ReadonlyArray<Address>, flags: Bencode.Value | undefined): ReadonlyArray<PexPeer> =>
  peers.map((address, i) => ({ address, flags: flags !== undefined && Bencode.isBytes(flags) ? flags[i] ?? 0 : 0 }))

/** Decodes a ut_pex message. */
export const decodePex = (payload: Uint8Array): Either.Either<PexMessage, ProtocolError> =>
  Either.flatMap(decodeDictionary(payload, pexLimits, false), ({ dictionary }) =>
    Either.map(
      Either.all([
        peersAt(dictionary, "added", CompactPeer.decode4),
        peersAt(dictionary, "added6", CompactPeer.decode6),
        peersAt(dictionary, "dropped", CompactPeer.decode4),
        peersAt(dictionary, "dropped6", CompactPeer.decode6)
      ]),
      ([added4, added6, dropped4, dropped6]) => ({
        added: [...withFlags(added4, dictionary.get("added.f")), ...withFlags(added6, dictionary.get("added6.f"))],
        dropped: [...dropped4, ...dropped6]
      })
    )
  )
