/**
 * The tracker server's memory: which peers announced which torrents, bounded in torrents and in
 * peers per torrent, with peers expiring when they stop re-announcing. Plain synchronous code:
 * each call is atomic for the fibers of the HTTP and UDP front-ends that share one registry.
 */
import type { Address } from "../net/Network.js"
import type { Event, ScrapeEntry } from "./Announce.js"

/** Registry limits. */
export interface Limits {
  readonly maxTorrents: number
  readonly maxPeersPerTorrent: number
  /** A peer that has not announced for this long is forgotten. */
  readonly peerTtlMillis: number
}

/** A peer as the registry knows it. */
export interface Peer {
  readonly address: Address
  readonly peerId: Uint8Array
}

/** One announce, after the front-end validated it. */
export interface Announce {
  /** Hex info-hash. */
  readonly infoHash: string
  readonly peer: Peer
  readonly left: number
  readonly event: Event
  readonly numwant: number
  /** Clock time in milliseconds. */
  readonly now: number
  /** Any number; picks where in the swarm the returned peers start, so replies vary. */
  readonly offset: number
}

/** The reply to an announce, or why it was refused. */
export type AnnounceResult =
  | {
      readonly _tag: "Peers"
      readonly peers: ReadonlyArray<Peer>
      readonly complete: number
      readonly incomplete: number
    }
  | { readonly _tag: "TooManyTorrents" }

interface Entry extends Peer {
  readonly seeding: boolean
  readonly seenAt: number
}

interface Swarm {
  /** Keyed by `host:port`, oldest announce first (a re-announce moves the peer to the end). */
  readonly peers: Map<string, Entry>
  seeders: number
  downloaded: number
}

/** A registry; every call is synchronous. */
export interface SwarmRegistry {
  readonly announce: (announce: Announce) => AnnounceResult
  readonly scrape: (infoHash: string, now: number) => ScrapeEntry
  /** Torrents and peers currently held. */
  readonly size: (now: number) => { readonly torrents: number; readonly peers: number }
}

const keyOf = (address: Address) => `${address.host}:${address.port}`

const remove = (swarm: Swarm, key: string) => {
  const entry = swarm.peers.get(key)
  if (entry === undefined) return
  swarm.peers.delete(key)
  if (entry.seeding) swarm.seeders--
}

/** Drops expired peers; cheap because the oldest announce is always first. */
const expire = (swarm: Swarm, now: number, ttl: number) => {
  for (const [key, entry] of swarm.peers) {
    if (now - entry.seenAt < ttl) break
    remove(swarm, key)
  }
}

/** Makes an empty registry. */
export const make = (limits: Limits): SwarmRegistry => {
  const swarms = new Map<string, Swarm>()

  const sweep = (now: number) => {
    for (const [hash, swarm] of swarms) {
      expire(swarm, now, limits.peerTtlMillis)
      if (swarm.peers.size === 0) swarms.delete(hash)
    }
  }

  const swarmFor = (infoHash: string, now: number): Swarm | undefined => {
    const existing = swarms.get(infoHash)
    if (existing !== undefined) return existing
    // Full: forget torrents nobody announces any more before refusing a new one.
    if (swarms.size >= limits.maxTorrents) sweep(now)
    if (swarms.size >= limits.maxTorrents) return undefined
    const swarm: Swarm = { peers: new Map(), seeders: 0, downloaded: 0 }
    swarms.set(infoHash, swarm)
    return swarm
  }

  const announce = (request: Announce): AnnounceResult => {
    const swarm = swarmFor(request.infoHash, request.now)
    if (swarm === undefined) return { _tag: "TooManyTorrents" }
    expire(swarm, request.now, limits.peerTtlMillis)
    const key = keyOf(request.peer.address)
    remove(swarm, key)
    if (request.event === "completed") swarm.downloaded++
    if (request.event !== "stopped" && swarm.peers.size < limits.maxPeersPerTorrent) {
      const seeding = request.left === 0
      swarm.peers.set(key, { ...request.peer, seeding, seenAt: request.now })
      if (seeding) swarm.seeders++
    }
    const peers: Array<Peer> = []
    const others = Array.from(swarm.peers.values())
    const wanted = Math.min(request.numwant, others.length)
    const start = others.length === 0 ? 0 : Math.abs(Math.trunc(request.offset)) % others.length
    for (let i = 0; i < others.length && peers.length < wanted; i++) {
      const entry = others[(start + i) % others.length]!
      if (keyOf(entry.address) !== key) peers.push({ address: entry.address, peerId: entry.peerId })
    }
    return {
      _tag: "Peers",
      peers,
      complete: swarm.seeders,
      incomplete: swarm.peers.size - swarm.seeders
    }
  }

  const scrape = (infoHash: string, now: number): ScrapeEntry => {
    const swarm = swarms.get(infoHash)
    if (swarm === undefined) return { complete: 0, incomplete: 0, downloaded: 0 }
    expire(swarm, now, limits.peerTtlMillis)
    return { complete: swarm.seeders, incomplete: swarm.peers.size - swarm.seeders, downloaded: swarm.downloaded }
  }

  const size = (now: number) => {
    sweep(now)
    let peers = 0
    for (const swarm of swarms.values()) peers += swarm.peers.size
    return { torrents: swarms.size, peers }
  }

  return { announce, scrape, size }
}
