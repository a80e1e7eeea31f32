/** Why a peer connection ended. A peer's failure never fails its torrent: the supervisor records it. */
import { Data, Option } from "effect"
import type { NetworkError } from "../net/Network.js"
import type { ProtocolError } from "../wire/ProtocolError.js"

/** The connection could not be opened (refused, timed out, unreachable). */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly address: string
  readonly cause: NetworkError
}> {}

/** The handshake did not arrive in time, was malformed, or named another torrent or ourselves. */
export class HandshakeFailed extends Data.TaggedError("HandshakeFailed")<{
  readonly address: string
  readonly reason: "Timeout" | "Malformed" | "InfoHashMismatch" | "SelfConnection" | "UnknownTorrent" | "Closed" | "Encryption"
  /** What was wrong, where the reason alone does not say (which step of the encrypted handshake). */
  readonly detail?: string
}> {}

/** The peer broke the wire protocol (bad frame, bad bitfield, out-of-range index, unrequested flood...). */
export class ProtocolViolation extends Data.TaggedError("ProtocolViolation")<{
  readonly address: string
  readonly reason:
    | "Frame"
    | "Bitfield"
    | "HaveOutOfRange"
    | "BadRequest"
    | "RequestFlood"
    | "UnexpectedMessage"
  readonly detail?: string
  readonly cause?: ProtocolError
}> {}

/** Nothing arrived from the peer for too long. */
export class IdleTimeout extends Data.TaggedError("IdleTimeout")<{
  readonly address: string
}> {}

/** The connection closed or broke under us. */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly address: string
  readonly cause?: NetworkError
}> {}

/** We closed the connection on purpose (banned, not useful, duplicate, torrent stopping...). */
export class Dropped extends Data.TaggedError("Dropped")<{
  readonly address: string
  readonly reason: "Banned" | "Duplicate" | "NotUseful" | "Snubbed" | "LimitReached" | "Stopping"
}> {}

/** Every way a peer connection ends. */
export type PeerError = ConnectFailed | HandshakeFailed | ProtocolViolation | IdleTimeout | ConnectionLost | Dropped

/**
 * What a failed read of a connection means: the peer closing it during the handshake is a
 * failed handshake, anything else a lost connection.
 */
export const readFailed =
  (address: string, phase: "handshake" | "wire") =>
  (cause: Option.Option<NetworkError>): HandshakeFailed | ConnectionLost =>
    Option.isNone(cause) && phase === "handshake"
      ? new HandshakeFailed({ address, reason: "Closed" })
      : new ConnectionLost({ address, ...(Option.isSome(cause) ? { cause: cause.value } : {}) })
