/**
 * The BEP 10 extensions a running torrent speaks: our extended handshake, serving ut_metadata
 * (BEP 9) from the info dictionary we have, and ut_pex (BEP 11) messages. Pure: the supervisor
 * decides when to send what.
 */
import { Either } from "effect"
import * as Net from "node:net"
import * as CompactPeer from "../net/CompactPeer.js"
import type { Address } from "../net/Network.js"
import * as Extension from "../wire/Extension.js"
import * as Message from "../wire/Message.js"

/** The ids under which we receive each extension. */
export const OUR_IDS = { [Extension.UT_METADATA]: 1, [Extension.UT_PEX]: 2 } as const

/** Client name sent in `v`. */
export const CLIENT = "bitfiber/0.1.0"

/** Our extended handshake; private torrents (BEP 27) do not offer peer exchange. */
export const handshake = (options: {
  readonly metadataSize: number
  readonly port: number
  readonly requestQueue: number
  readonly private: boolean
  /** The peer's address as we see it, told back as `yourip` so it can learn its public address. */
  readonly peerHost: string
}): Message.Message =>
  Message.Extended(
    Extension.HANDSHAKE_ID,
    Extension.encodeHandshake({
      extensions: new Map(
        Object.entries(OUR_IDS).filter(([name]) => !(options.private && name === Extension.UT_PEX))
      ),
      client: CLIENT,
      ...(options.port > 0 ? { port: options.port } : {}),
      requestQueue: options.requestQueue,
      metadataSize: options.metadataSize,
      ...ipBytes(options.peerHost)
    })
  )

/** `yourip` for an IP literal (IPv4 as 4 bytes, IPv6 as 16): the compact peer form less its port. */
const ipBytes = (host: string): { readonly yourIp?: Uint8Array } => {
  const encoded = Net.isIPv4(host)
    ? CompactPeer.encode4([{ host, port: 0 }])
    : Net.isIPv6(host)
      ? CompactPeer.encode6([{ host, port: 0 }])
      : undefined
  return encoded === undefined || Either.isLeft(encoded) ? {} : { yourIp: encoded.right.subarray(0, encoded.right.length - 2) }
}

/** The answer to a ut_metadata message sent to us: the piece asked for, or a reject. */
export const metadataReply = (
  infoBytes: Uint8Array,
  payload: Uint8Array,
  theirId: number
): Message.Message | undefined => {
  const decoded = Extension.decodeMetadata(payload)
  if (Either.isLeft(decoded) || decoded.right._tag !== "MetadataRequest") return undefined
  const piece = decoded.right.piece
  const begin = piece * Extension.METADATA_PIECE_LENGTH
  if (piece < 0 || begin >= infoBytes.length) {
    return Message.Extended(theirId, Extension.encodeMetadata({ _tag: "MetadataReject", piece }))
  }
  const data = infoBytes.subarray(begin, Math.min(infoBytes.length, begin + Extension.METADATA_PIECE_LENGTH))
  return Message.Extended(
    theirId,
    Extension.encodeMetadata({ _tag: "MetadataData", piece, totalSize: infoBytes.length, data })
  )
}

/** Peers announced to us in a ut_pex message (empty when malformed). */
export const pexPeers = (payload: Uint8Array): ReadonlyArray<Address> =>
  Either.match(Extension.decodePex(payload), {
    onLeft: () => [],
    onRight: (message) => message.added.map((peer) => peer.address)
  })

/** A ut_pex message, or undefined when there is nothing to say. */
export const pexMessage = (
  theirId: number,
  added: ReadonlyArray<Address>,
  dropped: ReadonlyArray<Address>
): Message.Message | undefined => {
  if (added.length === 0 && dropped.length === 0) return undefined
  return Either.match(
    Extension.encodePex({
      added: added.slice(0, Extension.MAX_PEX_PEERS).map((address) => ({ address, flags: 0 })),
      dropped: dropped.slice(0, Extension.MAX_PEX_PEERS)
    }),
    { onLeft: () => undefined, onRight: (payload) => Message.Extended(theirId, payload) }
  )
}
