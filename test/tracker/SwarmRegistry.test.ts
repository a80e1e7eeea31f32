import { SwarmRegistry } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"

const limits = { maxTorrents: 2, maxPeersPerTorrent: 3, peerTtlMillis: 1000 }
const HASH = "aa".repeat(20)

const announce = (
  registry: SwarmRegistry.SwarmRegistry,
  port: number,
  overrides: Partial<SwarmRegistry.Announce> = {}
) =>
  registry.announce({
    infoHash: HASH,
    peer: { address: { host: "127.0.0.1", port }, peerId: new Uint8Array(20).fill(port & 0xff) },
    left: 100,
    event: "started",
    numwant: 50,
    now: 0,
    offset: 0,
    ...overrides
  })

const ports = (result: SwarmRegistry.AnnounceResult) =>
  result._tag === "Peers" ? result.peers.map((peer) => peer.address.port).sort() : result._tag

describe("SwarmRegistry", () => {
  it("returns the other peers, never the asker", () => {
    const registry = SwarmRegistry.make(limits)
    expect(ports(announce(registry, 1))).toEqual([])
    expect(ports(announce(registry, 2))).toEqual([1])
    expect(ports(announce(registry, 1, { event: "none" }))).toEqual([2])
  })

  it("counts seeders and leechers, and completions", () => {
    const registry = SwarmRegistry.make(limits)
    announce(registry, 1)
    announce(registry, 2)
    announce(registry, 2, { event: "completed", left: 0 })
    const result = announce(registry, 3, { left: 0 })
    expect(result).toMatchObject({ complete: 2, incomplete: 1 })
    expect(registry.scrape(HASH, 0)).toEqual({ complete: 2, incomplete: 1, downloaded: 1 })
  })

  it("removes a peer that stopped", () => {
    const registry = SwarmRegistry.make(limits)
    announce(registry, 1)
    announce(registry, 2, { event: "stopped" })
    expect(ports(announce(registry, 3))).toEqual([1])
    expect(registry.scrape(HASH, 0)).toEqual({ complete: 0, incomplete: 2, downloaded: 0 })
  })

  it("forgets peers that have not announced within the TTL", () => {
    const registry = SwarmRegistry.make(limits)
    announce(registry, 1, { now: 0 })
    announce(registry, 2, { now: 500 })
    expect(ports(announce(registry, 3, { now: 999 }))).toEqual([1, 2])
    expect(ports(announce(registry, 3, { now: 1000 }))).toEqual([2])
    expect(registry.size(1600)).toEqual({ torrents: 1, peers: 1 })
    expect(registry.size(2000)).toEqual({ torrents: 0, peers: 0 })
  })

  it("bounds peers per torrent, peers per reply and torrents", () => {
    const registry = SwarmRegistry.make(limits)
    for (let port = 1; port <= 5; port++) announce(registry, port)
    expect(registry.scrape(HASH, 0).incomplete).toBe(3)
    expect(ports(announce(registry, 9, { numwant: 2 }))).toHaveLength(2)
    expect(announce(registry, 1, { infoHash: "bb".repeat(20) })._tag).toBe("Peers")
    expect(announce(registry, 1, { infoHash: "cc".repeat(20) })._tag).toBe("TooManyTorrents")
    // Once a torrent's peers expired, its slot is free again.
    expect(announce(registry, 1, { infoHash: "cc".repeat(20), now: 5000 })._tag).toBe("Peers")
  })

  it("starts the reply at the offset, so replies vary", () => {
    const registry = SwarmRegistry.make({ ...limits, maxPeersPerTorrent: 10 })
    for (let port = 1; port <= 6; port++) announce(registry, port)
    const first = announce(registry, 7, { numwant: 2, offset: 0 })
    const second = announce(registry, 7, { numwant: 2, offset: 3, event: "none" })
    expect(ports(first)).not.toEqual(ports(second))
  })
})
