/**
 * The 68-byte BitTorrent handshake (BEP 3): pstrlen 19, "BitTorrent protocol", 8 reserved bytes
 * announcing extensions, the info-hash and the sender's peer id.
 */
import { Either } from "effect"
import * as InfoHash from "../metainfo/InfoHash.js"
import * as PeerId from "../peer/PeerId.js"
import { ProtocolError } from "./ProtocolError.js"

/** A decoded or to-be-sent handshake. On encode the three flags win over their bits in `reserved`. */
export interface Handshake {
  /** The 8 reserved bytes as received (unknown bits kept for logging and client detection). */
  readonly reserved: Uint8Array
  /** BEP 10 extension protocol: reserved[5] & 0x10. */
  readonly extensionProtocol: boolean
  /** BEP 6 fast extension: reserved[7] & 0x04. */
  readonly fast: boolean
  /** BEP 5 DHT: reserved[7] & 0x01. */
  readonly dht: boolean
  readonly infoHash: InfoHash.InfoHash
  readonly peerId: PeerId.PeerId
}

/** Length of a handshake in bytes. */
export const LENGTH = 68

/** pstrlen and pstr: the first 20 bytes of every handshake. */
export const PROTOCOL_HEADER: Uint8Array = Buffer.from("\x13BitTorrent protocol", "latin1")

/** A handshake announcing the given extensions, all other reserved bits zero. */
export const make = (options: {
  readonly infoHash: InfoHash.InfoHash
  readonly peerId: PeerId.PeerId
  readonly extensionProtocol?: boolean
  readonly fast?: boolean
  readonly dht?: boolean
}): Handshake => ({
  reserved: new Uint8Array(8),
  extensionProtocol: options.extensionProtocol ?? false,
  fast: options.fast ?? false,
  dht: options.dht ?? false,
  infoHash: options.infoHash,
  peerId: options.peerId
})

/** The 68 bytes of a handshake. */
export const encode = (handshake: Handshake): Uint8Array => {
  const out = new Uint8Array(LENGTH)
  out.set(PROTOCOL_HEADER)
  out.set(handshake.reserved.subarray(0, 8), 20)
  out[25] = handshake.extensionProtocol ? out[25]! | 0x10 : out[25]! & ~0x10
  out[27] = (out[27]! & ~0x05) | (handshake.fast ? 0x04 : 0) | (handshake.dht ? 0x01 : 0)
  out.set(handshake.infoHash, 28)
  out.set(handshake.peerId, 48)
  return out
}

/** Decodes exactly 68 bytes; the result owns copies of its fields, not views of `bytes`. */
export const decode = (bytes: Uint8Array): Either.Either<Handshake, ProtocolError> => {
  if (bytes.length !== LENGTH) return Either.left(new ProtocolError({ reason: "BadHandshake", length: bytes.length }))
  for (let i = 0; i < PROTOCOL_HEADER.length; i++) {
    if (bytes[i] !== PROTOCOL_HEADER[i]) return Either.left(new ProtocolError({ reason: "BadHandshake" }))
  }
  // new Uint8Array(view) copies; Buffer#slice (socket chunks are Buffers) would not.
  const reserved = new Uint8Array(bytes.subarray(20, 28))
  return Either.right({
    reserved,
    extensionProtocol: (reserved[5]! & 0x10) !== 0,
    fast: (reserved[7]! & 0x04) !== 0,
    dht: (reserved[7]! & 0x01) !== 0,
    infoHash: InfoHash.unsafeFromBytes(new Uint8Array(bytes.subarray(28, 48))),
    peerId: PeerId.unsafeFromBytes(new Uint8Array(bytes.subarray(48, 68)))
  })
}
