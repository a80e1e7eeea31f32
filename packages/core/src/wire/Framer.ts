/**
 * Incremental decoding of a peer's byte stream, which TCP splits at arbitrary points: first the
 * handshake (`makeHandshakeReader`), then length-prefixed messages (`make`). Frames that lie
 * inside one chunk are decoded in place (their messages are views of the chunk); only a frame
 * split across chunks is copied, into a buffer of exactly its size, allocated after its length
 * prefix passed the limit. With a `BlockPool`, the blocks of `piece` messages are copies in the
 * pool's buffers instead, and a split block-sized frame is collected in one reused buffer. When
 * the pushed chunks are reused (`chunksReused`), messages that would be views of them are copies.
 */
import { Either, Option } from "effect"
import type { BlockPool } from "./BlockPool.js"
import * as Handshake from "./Handshake.js"
import * as Message from "./Message.js"
import { ProtocolError } from "./ProtocolError.js"

/**
 * Default frame limit: a 1 MiB payload (the bitfield of an 8M-piece torrent) plus the 13-byte
 * piece header; a normal block message is 16 KiB + 13.
 */
export const DEFAULT_MAX_MESSAGE_LENGTH = (1 << 20) + Message.PIECE_HEADER_LENGTH

/** Options of a message framer. */
export interface Options {
  /** Largest accepted length prefix (id + payload); larger fails with `MessageTooLarge` before allocating. */
  readonly maxMessageLength?: number
  /** Fail with `UnknownMessage` on unknown ids instead of skipping those frames (default: skip, as most clients do). */
  readonly failOnUnknown?: boolean
  /** Where the blocks of `piece` messages are copied; without it they are views of the pushed chunks. */
  readonly blocks?: BlockPool
  /** Pushed chunks are overwritten after `push` returns (a network's reused buffer): decoded messages keep no view of them. */
  readonly chunksReused?: boolean
}

/** A stateful message decoder for one connection. Pushed chunks must not be mutated afterwards, unless `chunksReused`. */
export interface Framer {
  /** Decodes every message completed by `chunk`. After a `Left` the stream is unusable: close the connection. */
  readonly push: (chunk: Uint8Array) => Either.Either<ReadonlyArray<Message.Message>, ProtocolError>
}

const NONE: ReadonlyArray<Message.Message> = []

/** A message framer. */
export const make = (options: Options = {}): Framer => {
  const limit = options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH
  const failOnUnknown = options.failOnUnknown ?? false
  const blocks = options.blocks
  const chunksReused = options.chunksReused ?? false
  // A length prefix split across chunks.
  const prefix = new Uint8Array(4)
  let prefixFilled = 0
  // A frame body split across chunks.
  let body: Uint8Array | undefined
  let bodyFilled = 0
  // With a pool: the buffer split frames of up to a block message's size are collected in,
  // reused because nothing decoded from it keeps a view of it (see `decodeInto`).
  let scratch: Uint8Array | undefined
  const scratchLength = blocks === undefined ? 0 : Message.PIECE_HEADER_LENGTH + blocks.blockLength

  // Messages whose payload is a view of their frame; a pooled block is copied below anyway.
  const keepsView = (id: number | undefined) =>
    id === Message.Id.Bitfield || id === Message.Id.Extended || (id === Message.Id.Piece && blocks === undefined)

  // `borrowed`: the frame lies in a buffer that is overwritten later (the scratch buffer, which
  // the next split frame reuses, or a reused chunk), so a message that views it needs a copy.
  const decodeInto = (frame: Uint8Array, borrowed: boolean, out: Array<Message.Message>): ProtocolError | undefined => {
    // A copy, not `slice`: that of a Buffer (what sockets give) is a view.
    const decoded = Message.decode(borrowed && keepsView(frame[0]) ? new Uint8Array(frame) : frame)
    if (Either.isRight(decoded)) {
      const message = decoded.right
      out.push(
        blocks !== undefined && message._tag === "Piece"
          ? Message.Piece(message.index, message.begin, blocks.copy(message.block))
          : message
      )
    } else if (failOnUnknown || decoded.left.reason !== "UnknownMessage") return decoded.left
    return undefined
  }

  const bodyBuffer = (length: number): Uint8Array => {
    if (length <= scratchLength) return (scratch ??= new Uint8Array(scratchLength)).subarray(0, length)
    // Not zero-filled: every byte is overwritten before the frame is decoded.
    const raw = Buffer.allocUnsafe(length)
    return new Uint8Array(raw.buffer, raw.byteOffset, length)
  }

  const push = (chunk: Uint8Array): Either.Either<ReadonlyArray<Message.Message>, ProtocolError> => {
    let out: Array<Message.Message> | undefined
    let at = 0
    while (at < chunk.length) {
      if (body !== undefined) {
        const n = Math.min(body.length - bodyFilled, chunk.length - at)
        body.set(chunk.subarray(at, at + n), bodyFilled)
        bodyFilled += n
        at += n
        if (bodyFilled < body.length) break
        const error = decodeInto(body, body.buffer === scratch?.buffer, (out ??= []))
        body = undefined
        if (error !== undefined) return Either.left(error)
        continue
      }
      let length: number
      if (prefixFilled === 0 && chunk.length - at >= 4) {
        length = ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0
        at += 4
      } else {
        while (prefixFilled < 4 && at < chunk.length) prefix[prefixFilled++] = chunk[at++]!
        if (prefixFilled < 4) break
        prefixFilled = 0
        length = ((prefix[0]! << 24) | (prefix[1]! << 16) | (prefix[2]! << 8) | prefix[3]!) >>> 0
      }
      if (length > limit) return Either.left(new ProtocolError({ reason: "MessageTooLarge", length, limit }))
      if (chunk.length - at >= length) {
        const error = decodeInto(chunk.subarray(at, at + length), chunksReused, (out ??= []))
        if (error !== undefined) return Either.left(error)
        at += length
      } else {
        body = bodyBuffer(length)
        bodyFilled = 0
      }
    }
    return Either.right(out ?? NONE)
  }

  return { push }
}

/** A complete handshake and the bytes that followed it in the same chunk (the first messages). */
export interface HandshakeResult {
  readonly handshake: Handshake.Handshake
  /** Push these into the message framer, or the peer's first messages are lost. */
  readonly rest: Uint8Array
}

/** Collects the 68-byte handshake at the start of a connection. */
export interface HandshakeReader {
  /** `None` until 68 bytes arrived; fails as soon as the protocol header is wrong. */
  readonly push: (chunk: Uint8Array) => Either.Either<Option.Option<HandshakeResult>, ProtocolError>
}

/** A handshake reader; its buffer is fixed at 68 bytes. */
export const makeHandshakeReader = (): HandshakeReader => {
  const buffer = new Uint8Array(Handshake.LENGTH)
  let filled = 0
  const push = (chunk: Uint8Array): Either.Either<Option.Option<HandshakeResult>, ProtocolError> => {
    const n = Math.min(Handshake.LENGTH - filled, chunk.length)
    buffer.set(chunk.subarray(0, n), filled)
    const headerEnd = Math.min(filled + n, Handshake.PROTOCOL_HEADER.length)
    for (let i = filled; i < headerEnd; i++) {
      if (buffer[i] !== Handshake.PROTOCOL_HEADER[i]) return Either.left(new ProtocolError({ reason: "BadHandshake" }))
    }
    filled += n
    if (filled < Handshake.LENGTH) return Either.right(Option.none())
    return Either.map(Handshake.decode(buffer), (handshake) => Option.some({ handshake, rest: chunk.subarray(n) }))
  }
  return { push }
}
