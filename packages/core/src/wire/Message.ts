/**
 * Peer wire messages (BEP 3, BEP 5 port, BEP 6 fast extension, BEP 10 extended) and their codec.
 * Messages are plain objects tagged by `_tag`, cheap to build and to match on the hot path.
 * On the wire each is `<uint32 length><uint8 id><payload>`; length 0 is a keep-alive.
 */
import { Either } from "effect"
import { ProtocolError } from "./ProtocolError.js"

/** Sent when nothing else was for a while, so the peer does not time us out. */
export interface KeepAlive {
  readonly _tag: "KeepAlive"
}
/** The sender will not serve our requests. */
export interface Choke {
  readonly _tag: "Choke"
}
/** The sender will serve our requests. */
export interface Unchoke {
  readonly _tag: "Unchoke"
}
/** The sender wants pieces we have. */
export interface Interested {
  readonly _tag: "Interested"
}
/** The sender wants nothing we have. */
export interface NotInterested {
  readonly _tag: "NotInterested"
}
/** The sender now has piece `index`. */
export interface Have {
  readonly _tag: "Have"
  readonly index: number
}
/** The sender's pieces, high bit of byte 0 = piece 0 (validate with `Bitfield.fromBytes`). */
export interface Bitfield {
  readonly _tag: "Bitfield"
  readonly bytes: Uint8Array
}
/** Asks for `length` bytes of piece `index` at offset `begin`. */
export interface Request {
  readonly _tag: "Request"
  readonly index: number
  readonly begin: number
  readonly length: number
}
/** A block of piece `index` at offset `begin`; decoded blocks are views of the received bytes. */
export interface Piece {
  readonly _tag: "Piece"
  readonly index: number
  readonly begin: number
  readonly block: Uint8Array
}
/** Withdraws a `Request`. */
export interface Cancel {
  readonly _tag: "Cancel"
  readonly index: number
  readonly begin: number
  readonly length: number
}
/** BEP 5: the sender's DHT port. */
export interface Port {
  readonly _tag: "Port"
  readonly port: number
}
/** BEP 6: the sender suggests we download piece `index`. */
export interface Suggest {
  readonly _tag: "Suggest"
  readonly index: number
}
/** BEP 6: the sender has every piece (instead of a full bitfield). */
export interface HaveAll {
  readonly _tag: "HaveAll"
}
/** BEP 6: the sender has no piece. */
export interface HaveNone {
  readonly _tag: "HaveNone"
}
/** BEP 6: the sender will not serve this request. */
export interface Reject {
  readonly _tag: "Reject"
  readonly index: number
  readonly begin: number
  readonly length: number
}
/** BEP 6: we may request piece `index` even while choked. */
export interface AllowedFast {
  readonly _tag: "AllowedFast"
  readonly index: number
}
/** BEP 10: an extension message; id 0 is the extended handshake, others as negotiated in its `m`. */
export interface Extended {
  readonly _tag: "Extended"
  readonly id: number
  readonly payload: Uint8Array
}

/** Any peer wire message. */
export type Message =
  | KeepAlive
  | Choke
  | Unchoke
  | Interested
  | NotInterested
  | Have
  | Bitfield
  | Request
  | Piece
  | Cancel
  | Port
  | Suggest
  | HaveAll
  | HaveNone
  | Reject
  | AllowedFast
  | Extended

/** The keep-alive message. */
export const KeepAlive: KeepAlive = { _tag: "KeepAlive" }
/** The choke message. */
export const Choke: Choke = { _tag: "Choke" }
/** The unchoke message. */
export const Unchoke: Unchoke = { _tag: "Unchoke" }
/** The interested message. */
export const Interested: Interested = { _tag: "Interested" }
/** The not-interested message. */
export const NotInterested: NotInterested = { _tag: "NotInterested" }
/** The have-all message. */
export const HaveAll: HaveAll = { _tag: "HaveAll" }
/** The have-none message. */
export const HaveNone: HaveNone = { _tag: "HaveNone" }
/** Builds a have message. */
export const Have = (index: number): Have => ({ _tag: "Have", index })
/** Builds a bitfield message. */
export const Bitfield = (bytes: Uint8Array): Bitfield => ({ _tag: "Bitfield", bytes })
/** Builds a request message. */
export const Request = (index: number, begin: number, length: number): Request => ({ _tag: "Request", index, begin, length })
/** Builds a piece message. */
export const Piece = (index: number, begin: number, block: Uint8Array): Piece => ({ _tag: "Piece", index, begin, block })
/** Builds a cancel message. */
export const Cancel = (index: number, begin: number, length: number): Cancel => ({ _tag: "Cancel", index, begin, length })
/** Builds a port message. */
export const Port = (port: number): Port => ({ _tag: "Port", port })
/** Builds a suggest message. */
export const Suggest = (index: number): Suggest => ({ _tag: "Suggest", index })
/** Builds a reject-request message. */
export const Reject = (index: number, begin: number, length: number): Reject => ({ _tag: "Reject", index, begin, length })
/** Builds an allowed-fast message. */
export const AllowedFast = (index: number): AllowedFast => ({ _tag: "AllowedFast", index })
/** Builds an extended message. */
export const Extended = (id: number, payload: Uint8Array): Extended => ({ _tag: "Extended", id, payload })

/** The id byte of each message kind (KeepAlive has none). */
export const Id = {
  Choke: 0,
  Unchoke: 1,
  Interested: 2,
  NotInterested: 3,
  Have: 4,
  Bitfield: 5,
  Request: 6,
  Piece: 7,
  Cancel: 8,
  Port: 9,
  Suggest: 13,
  HaveAll: 14,
  HaveNone: 15,
  Reject: 16,
  AllowedFast: 17,
  Extended: 20
} as const

/** Bytes of the length prefix, id, index and begin that precede a piece's block. */
export const PIECE_HEADER_LENGTH = 13

const readUint32 = (bytes: Uint8Array, at: number): number =>
  ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0

const writeUint32 = (bytes: Uint8Array, at: number, value: number): void => {
  bytes[at] = value >>> 24
  bytes[at + 1] = value >>> 16
  bytes[at + 2] = value >>> 8
  bytes[at + 3] = value
}

/** Bytes after the id byte. */
const payloadLength = (message: Message): number => {
  switch (message._tag) {
    case "KeepAlive":
    case "Choke":
    case "Unchoke":
    case "Interested":
    case "NotInterested":
    case "HaveAll":
    case "HaveNone":
      return 0
    case "Have":
    case "Suggest":
    case "AllowedFast":
      return 4
    case "Bitfield":
      return message.bytes.length
    case "Request":
    case "Cancel":
    case "Reject":
      return 12
    case "Piece":
      return 8 + message.block.length
    case "Port":
      return 2
    case "Extended":
      return 1 + message.payload.length
  }
}

/** Bytes `message` takes on the wire, length prefix included. */
export const encodedLength = (message: Message): number =>
  message._tag === "KeepAlive" ? 4 : 5 + payloadLength(message)

/** Writes `message` (with its length prefix) at `at`; returns the offset after it. */
const encodeInto = (message: Message, out: Uint8Array, at: number): number => {
  if (message._tag === "KeepAlive") {
    writeUint32(out, at, 0)
    return at + 4
  }
  const payload = payloadLength(message)
  writeUint32(out, at, 1 + payload)
  out[at + 4] = Id[message._tag]
  const p = at + 5
  switch (message._tag) {
    case "Have":
    case "Suggest":
    case "AllowedFast":
      writeUint32(out, p, message.index)
      break
    case "Bitfield":
      out.set(message.bytes, p)
      break
    case "Request":
    case "Cancel":
    case "Reject":
      writeUint32(out, p, message.index)
      writeUint32(out, p + 4, message.begin)
      writeUint32(out, p + 8, message.length)
      break
    case "Piece":
      writeUint32(out, p, message.index)
      writeUint32(out, p + 4, message.begin)
      out.set(message.block, p + 8)
      break
    case "Port":
      out[p] = message.port >>> 8
      out[p + 1] = message.port
      break
    case "Extended":
      out[p] = message.id
      out.set(message.payload, p + 1)
      break
  }
  return p + payload
}

/** The wire bytes of one message, length prefix included. */
export const encode = (message: Message): Uint8Array => {
  const out = new Uint8Array(encodedLength(message))
  encodeInto(message, out, 0)
  return out
}

/** The wire bytes of many messages in one buffer, so a writer can send them in one socket write. */
export const encodeAll = (messages: Iterable<Message>): Uint8Array => {
  let total = 0
  for (const message of messages) total += encodedLength(message)
  const out = new Uint8Array(total)
  let at = 0
  for (const message of messages) at = encodeInto(message, out, at)
  return out
}

/** The 13 bytes before a piece's block, so a seeder can write header and block without copying the block. */
export const encodePieceHeader = (index: number, begin: number, blockLength: number): Uint8Array => {
  const out = new Uint8Array(PIECE_HEADER_LENGTH)
  writeUint32(out, 0, 9 + blockLength)
  out[4] = Id.Piece
  writeUint32(out, 5, index)
  writeUint32(out, 9, begin)
  return out
}

const badLength = (messageId: number, length: number) =>
  Either.left(new ProtocolError({ reason: "BadLength", messageId, length }))

/**
 * Decodes one frame body (id and payload, without the length prefix; empty = keep-alive),
 * checking the payload length each id requires. Bitfield, Piece and Extended payloads are views
 * of `frame`, not copies.
 */
export const decode = (frame: Uint8Array): Either.Either<Message, ProtocolError> => {
  if (frame.length === 0) return Either.right(KeepAlive)
  const id = frame[0]!
  const n = frame.length - 1
  switch (id) {
    case Id.Choke:
      return n === 0 ? Either.right(Choke) : badLength(id, n)
    case Id.Unchoke:
      return n === 0 ? Either.right(Unchoke) : badLength(id, n)
    case Id.Interested:
      return n === 0 ? Either.right(Interested) : badLength(id, n)
    case Id.NotInterested:
      return n === 0 ? Either.right(NotInterested) : badLength(id, n)
    case Id.HaveAll:
      return n === 0 ? Either.right(HaveAll) : badLength(id, n)
    case Id.HaveNone:
      return n === 0 ? Either.right(HaveNone) : badLength(id, n)
    case Id.Have:
      return n === 4 ? Either.right(Have(readUint32(frame, 1))) : badLength(id, n)
    case Id.Suggest:
      return n === 4 ? Either.right(Suggest(readUint32(frame, 1))) : badLength(id, n)
    case Id.AllowedFast:
      return n === 4 ? Either.right(AllowedFast(readUint32(frame, 1))) : badLength(id, n)
    case Id.Bitfield:
      return Either.right(Bitfield(frame.subarray(1)))
    case Id.Request:
      return n === 12 ? Either.right(Request(readUint32(frame, 1), readUint32(frame, 5), readUint32(frame, 9))) : badLength(id, n)
    case Id.Cancel:
      return n === 12 ? Either.right(Cancel(readUint32(frame, 1), readUint32(frame, 5), readUint32(frame, 9))) : badLength(id, n)
    case Id.Reject:
      return n === 12 ? Either.right(Reject(readUint32(frame, 1), readUint32(frame, 5), readUint32(frame, 9))) : badLength(id, n)
    case Id.Piece:
      return n >= 8 ? Either.right(Piece(readUint32(frame, 1), readUint32(frame, 5), frame.subarray(9))) : badLength(id, n)
    case Id.Port:
      return n === 2 ? Either.right(Port((frame[1]! << 8) | frame[2]!)) : badLength(id, n)
    case Id.Extended:
      return n >= 1 ? Either.right(Extended(frame[1]!, frame.subarray(2))) : badLength(id, n)
    default:
      return Either.left(new ProtocolError({ reason: "UnknownMessage", messageId: id, length: n }))
  }
}
