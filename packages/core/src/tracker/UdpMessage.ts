/**
 * The datagrams of the UDP tracker protocol (BEP 15), both directions, as plain synchronous
 * codecs: requests a client sends and a server reads, responses a server sends and a client reads.
 * All integers are big-endian; connection ids are 64-bit (`bigint`).
 */
import { Data, Either } from "effect"
import * as CompactPeer from "../net/CompactPeer.js"
import type { Address } from "../net/Network.js"
import type { Event } from "./Announce.js"

/** The magic constant a connect request carries in place of a connection id. */
export const PROTOCOL_ID = 0x41727101980n

/** Most info-hashes in one scrape (what fits a 1500-byte datagram's worth of replies). */
export const MAX_SCRAPE = 74

/** Length of an announce request without BEP 41 extensions. */
export const ANNOUNCE_LENGTH = 98

/** Why a datagram is not a valid BEP 15 message. */
export class UdpMessageError extends Data.TaggedError("UdpMessageError")<{
  readonly reason: "Length" | "Action" | "Magic" | "Peers"
  readonly message: string
}> {}

/** Action codes. */
export const Action = { connect: 0, announce: 1, scrape: 2, error: 3 } as const

const EVENTS: ReadonlyArray<Event> = ["none", "completed", "started", "stopped"]

/** A client's request. */
export type Request =
  | { readonly _tag: "Connect"; readonly transactionId: number }
  | {
      readonly _tag: "Announce"
      readonly connectionId: bigint
      readonly transactionId: number
      readonly infoHash: Uint8Array
      readonly peerId: Uint8Array
      readonly downloaded: number
      readonly left: number
      readonly uploaded: number
      readonly event: Event
      /** IPv4 address the client claims, 0 for "the sender's". */
      readonly ip: number
      readonly key: number
      /** -1 asks for the tracker's default. */
      readonly numwant: number
      readonly port: number
    }
  | {
      readonly _tag: "Scrape"
      readonly connectionId: bigint
      readonly transactionId: number
      readonly infoHashes: ReadonlyArray<Uint8Array>
    }

/** One torrent's counts in a scrape response, in BEP 15's order and names. */
export interface ScrapeCounts {
  readonly seeders: number
  readonly completed: number
  readonly leechers: number
}

/** A server's response. `peers` are IPv4 or IPv6 by the family the exchange runs over. */
export type Response =
  | { readonly _tag: "Connect"; readonly transactionId: number; readonly connectionId: bigint }
  | {
      readonly _tag: "Announce"
      readonly transactionId: number
      readonly interval: number
      readonly leechers: number
      readonly seeders: number
      readonly peers: ReadonlyArray<Address>
    }
  | {
      readonly _tag: "Scrape"
      readonly transactionId: number
      readonly entries: ReadonlyArray<ScrapeCounts>
    }
  | { readonly _tag: "Error"; readonly transactionId: number; readonly message: string }

const fail = (reason: UdpMessageError["reason"], message: string) =>
  Either.left(new UdpMessageError({ reason, message }))

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.length)

const u32 = (value: number) => Math.max(0, Math.min(0xffffffff, Math.trunc(value)))

// Counters above 2^53 cannot occur in a number; clamp negatives and fractions so encoding never fails.
const u64 = (value: number) => BigInt(Math.max(0, Math.trunc(value)))

/** Encodes any request. */
export const encodeRequest = (request: Request): Uint8Array => {
  switch (request._tag) {
    case "Connect": {
      const out = new Uint8Array(16)
      const data = view(out)
      data.setBigUint64(0, PROTOCOL_ID)
      data.setUint32(8, Action.connect)
      data.setUint32(12, request.transactionId)
      return out
    }
    case "Announce": {
      const out = new Uint8Array(ANNOUNCE_LENGTH)
      const data = view(out)
      data.setBigUint64(0, request.connectionId)
      data.setUint32(8, Action.announce)
      data.setUint32(12, request.transactionId)
      out.set(request.infoHash.subarray(0, 20), 16)
      out.set(request.peerId.subarray(0, 20), 36)
      data.setBigUint64(56, u64(request.downloaded))
      data.setBigUint64(64, u64(request.left))
      data.setBigUint64(72, u64(request.uploaded))
      data.setUint32(80, EVENTS.indexOf(request.event))
      data.setUint32(84, request.ip)
      data.setUint32(88, request.key)
      data.setInt32(92, Math.max(-1, Math.min(0x7fffffff, Math.trunc(request.numwant))))
      data.setUint16(96, request.port)
      return out
    }
    case "Scrape": {
      const out = new Uint8Array(16 + 20 * request.infoHashes.length)
      const data = view(out)
      data.setBigUint64(0, request.connectionId)
      data.setUint32(8, Action.scrape)
      data.setUint32(12, request.transactionId)
      request.infoHashes.forEach((hash, i) => out.set(hash.subarray(0, 20), 16 + 20 * i))
      return out
    }
  }
}

/** Decodes a request (server side). Announce extensions after byte 98 (BEP 41) are ignored. */
export const decodeRequest = (bytes: Uint8Array): Either.Either<Request, UdpMessageError> => {
  if (bytes.length < 16) return fail("Length", `request of ${bytes.length} bytes`)
  const data = view(bytes)
  const connectionId = data.getBigUint64(0)
  const action = data.getUint32(8)
  const transactionId = data.getUint32(12)
  switch (action) {
    case Action.connect:
      return connectionId === PROTOCOL_ID
        ? Either.right({ _tag: "Connect", transactionId })
        : fail("Magic", "connect without the protocol id")
    case Action.announce: {
      if (bytes.length < ANNOUNCE_LENGTH) return fail("Length", `announce of ${bytes.length} bytes`)
      const event = EVENTS[data.getUint32(80)]
      if (event === undefined) return fail("Action", `unknown event ${data.getUint32(80)}`)
      return Either.right({
        _tag: "Announce",
        connectionId,
        transactionId,
        infoHash: bytes.slice(16, 36),
        peerId: bytes.slice(36, 56),
        downloaded: Number(data.getBigUint64(56)),
        left: Number(data.getBigUint64(64)),
        uploaded: Number(data.getBigUint64(72)),
        event,
        ip: data.getUint32(84),
        key: data.getUint32(88),
        numwant: data.getInt32(92),
        port: data.getUint16(96)
      })
    }
    case Action.scrape: {
      const count = (bytes.length - 16) / 20
      if (!Number.isInteger(count) || count < 1 || count > MAX_SCRAPE) {
        return fail("Length", `scrape of ${bytes.length} bytes`)
      }
      const infoHashes: Array<Uint8Array> = []
      for (let i = 0; i < count; i++) infoHashes.push(bytes.slice(16 + 20 * i, 36 + 20 * i))
      return Either.right({ _tag: "Scrape", connectionId, transactionId, infoHashes })
    }
    default:
      return fail("Action", `unknown action ${action}`)
  }
}

/** Encodes any response; announce peers must all be of the family `ipv6` says. */
export const encodeResponse = (response: Response, ipv6: boolean): Either.Either<Uint8Array, UdpMessageError> => {
  const head = (length: number, action: number) => {
    const out = new Uint8Array(length)
    view(out).setUint32(0, action)
    view(out).setUint32(4, response.transactionId)
    return out
  }
  switch (response._tag) {
    case "Connect": {
      const out = head(16, Action.connect)
      view(out).setBigUint64(8, response.connectionId)
      return Either.right(out)
    }
    case "Announce": {
      const peers = (ipv6 ? CompactPeer.encode6 : CompactPeer.encode4)(response.peers)
      if (Either.isLeft(peers)) return fail("Peers", peers.left.input)
      const out = head(20 + peers.right.length, Action.announce)
      const data = view(out)
      data.setUint32(8, u32(response.interval))
      data.setUint32(12, u32(response.leechers))
      data.setUint32(16, u32(response.seeders))
      out.set(peers.right, 20)
      return Either.right(out)
    }
    case "Scrape": {
      const out = head(8 + 12 * response.entries.length, Action.scrape)
      const data = view(out)
      response.entries.forEach((entry, i) => {
        data.setUint32(8 + 12 * i, u32(entry.seeders))
        data.setUint32(12 + 12 * i, u32(entry.completed))
        data.setUint32(16 + 12 * i, u32(entry.leechers))
      })
      return Either.right(out)
    }
    case "Error": {
      const message = Buffer.from(response.message, "utf8")
      const out = head(8 + message.length, Action.error)
      out.set(message, 8)
      return Either.right(out)
    }
  }
}

/** The transaction id of a response long enough to carry one, to match it before decoding. */
export const responseTransactionId = (bytes: Uint8Array): number | undefined =>
  bytes.length >= 8 ? view(bytes).getUint32(4) : undefined

/** The transaction id of a request long enough to carry one, to answer even a bad request. */
export const requestTransactionId = (bytes: Uint8Array): number | undefined =>
  bytes.length >= 16 ? view(bytes).getUint32(12) : undefined

/** Decodes a response (client side); announce peers are 18-byte entries when `ipv6`. */
export const decodeResponse = (bytes: Uint8Array, ipv6: boolean): Either.Either<Response, UdpMessageError> => {
  if (bytes.length < 8) return fail("Length", `response of ${bytes.length} bytes`)
  const data = view(bytes)
  const action = data.getUint32(0)
  const transactionId = data.getUint32(4)
  switch (action) {
    case Action.connect:
      return bytes.length >= 16
        ? Either.right({ _tag: "Connect", transactionId, connectionId: data.getBigUint64(8) })
        : fail("Length", `connect response of ${bytes.length} bytes`)
    case Action.announce: {
      if (bytes.length < 20) return fail("Length", `announce response of ${bytes.length} bytes`)
      const peers = (ipv6 ? CompactPeer.decode6 : CompactPeer.decode4)(bytes.subarray(20))
      if (Either.isLeft(peers)) return fail("Peers", peers.left.input)
      return Either.right({
        _tag: "Announce",
        transactionId,
        interval: data.getUint32(8),
        leechers: data.getUint32(12),
        seeders: data.getUint32(16),
        peers: peers.right
      })
    }
    case Action.scrape: {
      if ((bytes.length - 8) % 12 !== 0) return fail("Length", `scrape response of ${bytes.length} bytes`)
      const entries: Array<ScrapeCounts> = []
      for (let at = 8; at < bytes.length; at += 12) {
        entries.push({
          seeders: data.getUint32(at),
          completed: data.getUint32(at + 4),
          leechers: data.getUint32(at + 8)
        })
      }
      return Either.right({ _tag: "Scrape", transactionId, entries })
    }
    case Action.error:
      return Either.right({ _tag: "Error", transactionId, message: Buffer.from(bytes.subarray(8)).toString("utf8") })
    default:
      return fail("Action", `unknown action ${action}`)
  }
}
