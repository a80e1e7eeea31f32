/**
 * One connected peer as the supervisor sees it: its link, the pieces it has, the state of our
 * requests to it and of its interest in us, its rates, and what its extensions told us.
 * Mutable: only the supervisor's fiber touches it.
 */
import type { PeerLink } from "../peer/PeerLink.js"
import { Bitfield } from "../picker/Bitfield.js"

/** One connected peer as the supervisor sees it. */
export interface PeerEntry {
  readonly link: PeerLink
  readonly pieces: Bitfield
  readonly allowedFast: Set<number>
  readonly connectedAt: number
  amInterested: boolean
  peerInterested: boolean
  peerChoking: boolean
  depth: number
  lastBlockAt: number | undefined
  snubbed: boolean
  downloadRate: number
  uploadRate: number
  lastDownloaded: number
  lastUploaded: number
  /** BEP 10: the ids the peer wants each extension sent under. */
  extensions: ReadonlyMap<string, number>
  /** The port the peer accepts connections on, if known (its extended handshake's `p`). */
  listenPort: number | undefined
  /** The addresses we last told it about over ut_pex. */
  pexSent: Set<string>
}

/**
 * Requests in flight at a new or slow peer. Slow start (one more per block received) takes a fast
 * peer to its rate's depth in a few round trips; a deep start would have every one of many slow
 * peers open pieces of its own and hold their buffers for the whole download.
 */
export const MIN_DEPTH = 4

/** The entry of a peer connected at `now`: it has nothing yet and chokes us; we are not interested. */
export const make = (link: PeerLink, pieceCount: number, now: number): PeerEntry => ({
  link,
  pieces: Bitfield.empty(pieceCount),
  allowedFast: new Set(),
  connectedAt: now,
  amInterested: false,
  peerInterested: false,
  peerChoking: true,
  depth: MIN_DEPTH,
  lastBlockAt: undefined,
  snubbed: false,
  downloadRate: 0,
  uploadRate: 0,
  lastDownloaded: 0,
  lastUploaded: 0,
  extensions: new Map(),
  listenPort: link.direction === "outgoing" ? link.address.port : undefined,
  pexSent: new Set()
})
