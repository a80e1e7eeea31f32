/** The one error of the peer wire codecs: what a peer sent that we cannot accept. */
import { Data } from "effect"

/** A peer broke the wire protocol; the connection should be closed (or the message ignored for `UnknownMessage`). */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  /**
   * `BadHandshake`: not a BitTorrent handshake; `MessageTooLarge`: a length prefix above the limit;
   * `BadLength`: a payload of the wrong size for its id; `UnknownMessage`: an id we do not know;
   * `BadExtension`: a malformed BEP 10/9/11 payload.
   */
  readonly reason: "BadHandshake" | "MessageTooLarge" | "BadLength" | "UnknownMessage" | "BadExtension"
  readonly messageId?: number
  readonly length?: number
  readonly limit?: number
  readonly cause?: unknown
}> {}
