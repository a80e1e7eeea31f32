/**
 * The announce model shared by the HTTP and UDP tracker clients, the Announcer and the tracker
 * server: what a client tells a tracker, what the tracker answers, and why an announce failed.
 */
import { Data } from "effect"
import type { InfoHash } from "../metainfo/InfoHash.js"
import type { Address } from "../net/Network.js"
import type { PeerId } from "../peer/PeerId.js"

/** The lifecycle event an announce reports; `none` is a regular re-announce. */
export type Event = "started" | "completed" | "stopped" | "none"

/** What a client tells a tracker (BEP 3, BEP 15). */
export interface AnnounceRequest {
  readonly infoHash: InfoHash
  readonly peerId: PeerId
  /** The port we accept peer connections on. */
  readonly port: number
  readonly uploaded: number
  readonly downloaded: number
  readonly left: number
  readonly event: Event
  /** How many peers we would like; trackers bound it themselves. */
  readonly numwant: number
  /** A random u32 that identifies us across IP changes; stable for the session. */
  readonly key: number
  /** The `tracker id` a tracker gave us in an earlier reply, echoed back (HTTP only). */
  readonly trackerId?: string
}

/** What a tracker answers to an announce. */
export interface AnnounceResponse {
  /** Seconds until the next regular announce. */
  readonly interval: number
  /** Seconds before which we must not announce again, when the tracker says. */
  readonly minInterval?: number
  readonly peers: ReadonlyArray<Address>
  /** Seeders, when the tracker says. */
  readonly complete?: number
  /** Leechers, when the tracker says. */
  readonly incomplete?: number
  readonly trackerId?: string
  readonly warning?: string
}

/** Per-torrent counts a tracker reports in a scrape (BEP 48 for HTTP, BEP 15 for UDP). */
export interface ScrapeEntry {
  readonly complete: number
  readonly incomplete: number
  readonly downloaded: number
}

/** At most this many peers are taken from one tracker reply; the rest is ignored. */
export const MAX_PEERS = 10_000

/** Why an announce or scrape failed. */
export class TrackerError extends Data.TaggedError("TrackerError")<{
  readonly reason:
    | "InvalidUrl"
    | "InvalidRequest"
    | "UnsupportedScheme"
    | "Unreachable"
    | "Timeout"
    | "HttpStatus"
    | "TooManyRedirects"
    | "TooLarge"
    | "Malformed"
    | "Failure"
    | "TransactionMismatch"
  /** The tracker URL as configured. */
  readonly url: string
  /** A human-readable detail: the tracker's `failure reason` for `Failure`, the status for `HttpStatus`. */
  readonly message: string
  readonly cause?: unknown
}> {}
