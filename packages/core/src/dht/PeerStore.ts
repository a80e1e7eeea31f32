/**
 * The peers other nodes announced to us (BEP 5 announce_peer), served back in get_peers
 * answers. Each peer expires after a TTL unless announced again; the store is bounded per
 * info-hash (the oldest announcement gives way) and overall (new ones are refused when full).
 * Pure: the caller passes the time in milliseconds.
 */
import type * as InfoHash from "../metainfo/InfoHash.js"
import { type Address, formatAddress } from "../net/Network.js"

/** Store limits. */
export interface Options {
  /** Peers kept per info-hash (default 100). */
  readonly maxPerInfoHash?: number
  /** Peers kept over all info-hashes (default 10,000). */
  readonly maxPeers?: number
  /** How long an announcement lasts, in milliseconds (default 30 minutes). */
  readonly ttlMillis?: number
}

/** Default `Options.maxPerInfoHash`. */
export const DEFAULT_MAX_PER_INFO_HASH = 100
/** Default `Options.maxPeers`. */
export const DEFAULT_MAX_PEERS = 10_000
/** Default `Options.ttlMillis`: 30 minutes, twice the usual re-announce interval. */
export const DEFAULT_TTL_MILLIS = 30 * 60 * 1000

interface Stored {
  readonly address: Address
  readonly expiresAt: number
}

const keyOf = (infoHash: InfoHash.InfoHash): string => Buffer.from(infoHash).toString("hex")

/** Announced peers by info-hash. */
export class PeerStore {
  // Per info-hash, peers by address in announcement order: the first entry expires first.
  private readonly swarms = new Map<string, Map<string, Stored>>()
  private count = 0
  private readonly maxPerInfoHash: number
  private readonly maxPeers: number
  private readonly ttl: number

  constructor(options?: Options) {
    this.maxPerInfoHash = Math.max(1, options?.maxPerInfoHash ?? DEFAULT_MAX_PER_INFO_HASH)
    this.maxPeers = Math.max(1, options?.maxPeers ?? DEFAULT_MAX_PEERS)
    this.ttl = options?.ttlMillis ?? DEFAULT_TTL_MILLIS
  }

  /** Peers stored over all info-hashes. */
  get size(): number {
    return this.count
  }

  /** Info-hashes with at least one stored peer. */
  get infoHashes(): number {
    return this.swarms.size
  }

  /** Records an announcement; false when the store is full of other info-hashes' peers. */
  add(infoHash: InfoHash.InfoHash, peer: Address, now: number): boolean {
    const key = keyOf(infoHash)
    let swarm = this.swarms.get(key)
    if (swarm !== undefined) this.expire(key, swarm, now)
    swarm = this.swarms.get(key)
    const address = formatAddress(peer)
    if (swarm?.has(address) === true) {
      // Re-announced: move it to the end, where the latest announcements are.
      swarm.delete(address)
      swarm.set(address, { address: peer, expiresAt: now + this.ttl })
      return true
    }
    if (swarm !== undefined && swarm.size >= this.maxPerInfoHash) {
      const oldest = swarm.keys().next().value!
      swarm.delete(oldest)
      this.count--
    } else if (this.count >= this.maxPeers) {
      this.sweep(now)
      if (this.count >= this.maxPeers) return false
    }
    if (swarm === undefined) {
      swarm = new Map()
      this.swarms.set(key, swarm)
    }
    swarm.set(address, { address: peer, expiresAt: now + this.ttl })
    this.count++
    return true
  }

  /** Up to `max` live peers of an info-hash, the latest announcements first. */
  get(infoHash: InfoHash.InfoHash, now: number, max: number): Array<Address> {
    const key = keyOf(infoHash)
    const swarm = this.swarms.get(key)
    if (swarm === undefined || max <= 0) return []
    this.expire(key, swarm, now)
    return [...swarm.values()].slice(-max).reverse().map((stored) => stored.address)
  }

  /** Drops every expired announcement. */
  sweep(now: number): void {
    for (const [key, swarm] of this.swarms) this.expire(key, swarm, now)
  }

  private expire(key: string, swarm: Map<string, Stored>, now: number): void {
    for (const [address, stored] of swarm) {
      // Entries are in expiry order, so the first live one ends the scan.
      if (stored.expiresAt > now) break
      swarm.delete(address)
      this.count--
    }
    if (swarm.size === 0) this.swarms.delete(key)
  }
}
