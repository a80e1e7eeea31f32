import { InfoHash } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { PeerStore } from "../../packages/core/src/dht/PeerStore.js"

const hash = (byte: number) => InfoHash.unsafeFromBytes(new Uint8Array(20).fill(byte))
const peer = (n: number) => ({ host: `10.0.${n >> 8}.${n & 255}`, port: 6881 })

describe("PeerStore", () => {
  it("serves the latest announcements first and forgets them after the TTL unless renewed", () => {
    const store = new PeerStore({ ttlMillis: 1000 })
    store.add(hash(1), peer(1), 0)
    store.add(hash(1), peer(2), 100)
    expect(store.get(hash(1), 100, 10)).toEqual([peer(2), peer(1)])
    store.add(hash(1), peer(1), 900) // renewed: now the latest
    expect(store.get(hash(1), 1050, 10)).toEqual([peer(1), peer(2)])
    expect(store.get(hash(1), 1100, 10)).toEqual([peer(1)])
    expect(store.get(hash(1), 1900, 10)).toEqual([])
    expect(store.size).toBe(0)
    expect(store.infoHashes).toBe(0)
  })

  it("keeps at most maxPerInfoHash peers per torrent, dropping the oldest, and refuses when full overall", () => {
    const store = new PeerStore({ maxPerInfoHash: 3, maxPeers: 5 })
    for (let n = 0; n < 5; n++) expect(store.add(hash(1), peer(n), n)).toBe(true)
    expect(store.get(hash(1), 5, 10)).toEqual([peer(4), peer(3), peer(2)])
    for (let n = 0; n < 2; n++) expect(store.add(hash(2), peer(n), 10)).toBe(true)
    expect(store.size).toBe(5)
    expect(store.add(hash(3), peer(9), 10)).toBe(false)
    expect(store.get(hash(3), 10, 10)).toEqual([])
    expect(store.get(hash(1), 10, 2)).toEqual([peer(4), peer(3)])
    expect(store.get(hash(1), 10, 0)).toEqual([])
  })

  it("makes room overall once announcements expire", () => {
    const store = new PeerStore({ maxPeers: 2, ttlMillis: 100 })
    store.add(hash(1), peer(1), 0)
    store.add(hash(2), peer(2), 0)
    expect(store.add(hash(3), peer(3), 50)).toBe(false)
    expect(store.add(hash(3), peer(3), 100)).toBe(true)
    expect(store.size).toBe(1)
  })
})
