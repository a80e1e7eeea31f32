/**
 * The peer addresses a torrent knows of: which to dial and when (backing off after each failed
 * attempt), and which it refuses for good (peers banned for bad pieces, our own address). Plain
 * bookkeeping: the supervisor dials and tells it how each connection ended.
 */
import { type Address, formatAddress } from "../net/Network.js"
import type { PeerError } from "../peer/PeerError.js"
import type { SessionConfig } from "../session/SessionConfig.js"
import type { PeerSource } from "./TorrentEvent.js"

/** A peer address we may dial. */
interface Candidate {
  readonly address: Address
  state: "idle" | "connecting" | "connected"
  failures: number
  nextAttemptAt: number
  /** Given by the user: retried at the longest backoff forever, never forgotten. */
  manual: boolean
}

/** The dialable addresses and the bans of one torrent. Mutable: only the supervisor's fiber touches it. */
export interface Candidates {
  /** Addresses known, whatever their state. */
  readonly size: () => number
  /** Adds addresses to dial: not banned ones, nor past `maxCandidates`; `manual` ones are never forgotten. */
  readonly add: (addresses: ReadonlyArray<Address>, source?: PeerSource) => void
  /** Addresses being dialed. */
  readonly connecting: () => number
  /** Up to `slots` idle addresses due for a dial at `now`, marked as being dialed. */
  readonly startDials: (now: number, slots: number) => ReadonlyArray<Address>
  /** Whether an idle address is due for a dial at `now`. */
  readonly anyDue: (now: number) => boolean
  /** When the next dial is due: 0 (now) while an address is being dialed, Infinity with none idle. */
  readonly nextDialAt: () => number
  /** A connection to `key` joined the swarm: its backoff starts over. */
  readonly connected: (key: string) => void
  /** The connection (or attempt) to `key` ended with `error`; `failed`: it never joined the swarm. */
  readonly closed: (key: string, error: PeerError, failed: boolean, now: number) => void
  /** Whether `key` is banned: its connections are dropped and its address is never dialed. */
  readonly isBanned: (key: string) => boolean
  /** Counts a piece that failed its hash against the peers that sent it; returns those now banned. */
  readonly blame: (contributors: ReadonlyArray<string>) => ReadonlyArray<string>
}

/** No candidates and no bans yet. */
export const make = (config: Pick<SessionConfig, "maxCandidates" | "banAfterBadPieces">): Candidates => {
  const candidates = new Map<string, Candidate>()
  const strikes = new Map<string, number>()
  const banned = new Set<string>()

  return {
    size: () => candidates.size,

    add: (addresses, source) => {
      for (const address of addresses) {
        const key = formatAddress(address)
        const known = candidates.get(key)
        if (known !== undefined) known.manual ||= source === "manual"
        if (known !== undefined || banned.has(key) || candidates.size >= config.maxCandidates) continue
        if (address.port === 0) continue
        candidates.set(key, { address, state: "idle", failures: 0, nextAttemptAt: 0, manual: source === "manual" })
      }
    },

    connecting: () => {
      let connecting = 0
      for (const candidate of candidates.values()) if (candidate.state === "connecting") connecting++
      return connecting
    },

    startDials: (now, slots) => {
      const toDial: Array<Address> = []
      for (const candidate of candidates.values()) {
        if (slots <= 0) break
        if (candidate.state !== "idle" || candidate.nextAttemptAt > now) continue
        candidate.state = "connecting"
        toDial.push(candidate.address)
        slots--
      }
      return toDial
    },

    anyDue: (now) => {
      for (const candidate of candidates.values()) {
        if (candidate.state === "idle" && candidate.nextAttemptAt <= now) return true
      }
      return false
    },

    nextDialAt: () => {
      let due = Infinity
      for (const candidate of candidates.values()) {
        if (candidate.state === "connecting") return 0
        if (candidate.state === "idle") due = Math.min(due, candidate.nextAttemptAt)
      }
      return due
    },

    connected: (key) => {
      const candidate = candidates.get(key)
      if (candidate !== undefined) {
        candidate.state = "connected"
        candidate.failures = 0
      }
    },

    closed: (key, error, failed, now) => {
      const candidate = candidates.get(key)
      if (candidate === undefined) return
      candidate.state = "idle"
      candidate.failures = failed ? candidate.failures + 1 : 0
      // Back off exponentially from 5 s up to 10 minutes; forget addresses that never answer.
      candidate.nextAttemptAt = now + Math.min(600_000, 5_000 * 2 ** candidate.failures)
      // Never dial again: a seed we dropped as a seed ourselves, or our own address handed back by a tracker.
      const useless =
        (error._tag === "Dropped" && error.reason === "NotUseful") ||
        (error._tag === "HandshakeFailed" && error.reason === "SelfConnection")
      if (error._tag === "HandshakeFailed" && error.reason === "SelfConnection") banned.add(key)
      if (banned.has(key) || useless || (candidate.failures > 8 && !candidate.manual)) candidates.delete(key)
    },

    isBanned: (key) => banned.has(key),

    blame: (contributors) => {
      const nowBanned: Array<string> = []
      // The sole contributor of a bad piece is surely the liar; shared blame weighs less.
      const weight = contributors.length === 1 ? 2 : 1
      for (const key of contributors) {
        const count = (strikes.get(key) ?? 0) + weight
        strikes.set(key, count)
        if (count >= config.banAfterBadPieces * 2 - 1) {
          banned.add(key)
          nowBanned.push(key)
        }
      }
      return nowBanned
    }
  }
}
