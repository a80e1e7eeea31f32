/**
 * What the Torrent supervisor holds of one connected peer: a way to send it messages and to drop
 * it, and the counters its connection fibers keep. Only the supervisor writes `choking`; only the
 * connection fibers write `stats`.
 */
import type { Address } from "../net/Network.js"
import type { Handshake } from "../wire/Handshake.js"
import type { Message } from "../wire/Message.js"
import type { Dropped } from "./PeerError.js"

/** Byte counters of one connection (payload bytes of `piece` messages). */
export interface PeerStats {
  downloaded: number
  uploaded: number
}

/** The supervisor's handle on a connected peer. */
export interface PeerLink {
  /** The peer's address as `host:port`: its key in every table. */
  readonly key: string
  readonly address: Address
  readonly handshake: Handshake
  readonly direction: "outgoing" | "incoming"
  /** Queues messages for the writer; never blocks (the supervisor bounds what it sends). */
  readonly send: (messages: ReadonlyArray<Message>) => void
  /** Ends the connection with `Dropped`. */
  readonly drop: (reason: Dropped["reason"]) => void
  /** Whether we refuse to serve this peer's requests; set by the supervisor with each choke/unchoke. */
  choking: boolean
  readonly stats: PeerStats
}
