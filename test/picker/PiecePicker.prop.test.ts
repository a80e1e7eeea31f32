import { PiecePicker } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { bits, picker, seeded } from "./fixtures.js"

const B = PiecePicker.BLOCK_SIZE
type BlockRequest = PiecePicker.BlockRequest

const geometry = fc
  .record({
    pieceCount: fc.integer({ min: 1, max: 24 }),
    pieceLength: fc.constantFrom(1000, B, 20000, 2 * B, 3 * B + 7, 4 * B)
  })
  .chain(({ pieceCount, pieceLength }) =>
    fc.integer({ min: 1, max: pieceLength }).map((last) => ({
      pieceCount,
      pieceLength,
      totalLength: (pieceCount - 1) * pieceLength + last
    }))
  )
type Geometry = typeof geometry extends fc.Arbitrary<infer G> ? G : never

const pieceSize = (g: Geometry, index: number) =>
  index === g.pieceCount - 1 ? g.totalLength - index * g.pieceLength : g.pieceLength
const blockCount = (g: Geometry, index: number) => Math.ceil(pieceSize(g, index) / B)
const totalBlocks = (g: Geometry) => {
  let n = 0
  for (let i = 0; i < g.pieceCount; i++) n += blockCount(g, i)
  return n
}
const key = (r: { index: number; begin: number }) => `${r.index}:${r.begin}`
const sortRequests = (rs: ReadonlyArray<BlockRequest>) => [...rs].map(key).sort()

const peerName = fc.constantFrom("a", "b", "c", "d", "e")
const pieceSet = fc.array(fc.nat({ max: 23 }), { maxLength: 24 })
const event = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant("add" as const), peer: peerName, pieces: pieceSet }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("have" as const), peer: peerName, index: fc.nat({ max: 23 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("hasAll" as const), peer: peerName }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("remove" as const), peer: peerName }) },
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant("request" as const),
      peer: peerName,
      max: fc.integer({ min: 1, max: 6 }),
      choked: fc.constantFrom(false, false, false, true),
      fast: fc.array(fc.nat({ max: 23 }), { maxLength: 3 })
    })
  },
  { weight: 6, arbitrary: fc.record({ type: fc.constant("receive" as const), peer: peerName, pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("stray" as const),
      peer: peerName,
      index: fc.nat({ max: 23 }),
      block: fc.nat({ max: 4 })
    })
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("reject" as const), peer: peerName, pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("choke" as const),
      peer: peerName,
      keep: fc.array(fc.nat({ max: 23 }), { maxLength: 2 })
    })
  },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("hash" as const), pick: fc.nat(), ok: fc.boolean() }) }
)

/** What the picker should know, kept the slow obvious way. */
class Model {
  readonly peers = new Map<string, Set<number>>()
  /** Per peer, its outstanding requests by block key. */
  readonly out = new Map<string, Map<string, BlockRequest>>()
  readonly received = new Set<string>()
  readonly have: Set<number>

  constructor(readonly g: Geometry, have: Iterable<number>, readonly wanted: Set<number>) {
    this.have = new Set(have)
  }

  connect(peer: string): Set<number> {
    let pieces = this.peers.get(peer)
    if (pieces === undefined) {
      pieces = new Set()
      this.peers.set(peer, pieces)
      this.out.set(peer, new Map())
    }
    return pieces
  }

  holders(k: string): Array<string> {
    return [...this.out].filter(([, requests]) => requests.has(k)).map(([peer]) => peer)
  }

  interesting(peer: string): boolean {
    return [...(this.peers.get(peer) ?? [])].some((i) => this.wanted.has(i) && !this.have.has(i))
  }

  pieceReceived(index: number): boolean {
    for (let b = 0; b < blockCount(this.g, index); b++) if (!this.received.has(`${index}:${b * B}`)) return false
    return true
  }

  forgetBlocks(index: number): void {
    for (let b = 0; b < blockCount(this.g, index); b++) this.received.delete(`${index}:${b * B}`)
  }

  /** Every missing block that a connected peer has is received or outstanding. */
  endgame(): boolean {
    let missing = false
    for (let i = 0; i < this.g.pieceCount; i++) {
      if (!this.wanted.has(i) || this.have.has(i)) continue
      missing = true
      if (![...this.peers.values()].some((pieces) => pieces.has(i))) continue
      for (let b = 0; b < blockCount(this.g, i); b++) {
        const k = `${i}:${b * B}`
        if (!this.received.has(k) && this.holders(k).length === 0) return false
      }
    }
    return missing
  }
}

describe("PiecePicker properties", () => {
  it.prop(
    "keeps its bookkeeping right under any sequence of peer events",
    {
      g: geometry,
      have: pieceSet,
      unwanted: pieceSet,
      seed: fc.integer(),
      events: fc.array(event, { minLength: 20, maxLength: 150, size: "max" })
    },
    ({ events, g, have, seed, unwanted }) => {
      const inRange = (xs: ReadonlyArray<number>) => xs.filter((i) => i < g.pieceCount)
      const wanted = new Set([...Array(g.pieceCount).keys()].filter((i) => !unwanted.includes(i) || i % 2 === 0))
      const p = picker(g.pieceCount, g.pieceLength, g.totalLength, {
        have: bits(g.pieceCount, inRange(have)),
        wanted: bits(g.pieceCount, wanted),
        random: seeded(seed)
      })
      const m = new Model(g, inRange(have), wanted)

      for (const e of events) {
        switch (e.type) {
          case "add": {
            p.addPeer(e.peer, bits(g.pieceCount, inRange(e.pieces)))
            const pieces = m.connect(e.peer)
            for (const i of inRange(e.pieces)) pieces.add(i)
            break
          }
          case "have": {
            p.peerHas(e.peer, e.index)
            const pieces = m.connect(e.peer)
            if (e.index < g.pieceCount) pieces.add(e.index)
            break
          }
          case "hasAll": {
            p.peerHasAll(e.peer)
            const pieces = m.connect(e.peer)
            for (let i = 0; i < g.pieceCount; i++) pieces.add(i)
            break
          }
          case "remove": {
            expect(sortRequests(p.removePeer(e.peer))).toEqual([...(m.out.get(e.peer)?.keys() ?? [])].sort())
            m.peers.delete(e.peer)
            m.out.delete(e.peer)
            break
          }
          case "request": {
            const fast = new Set(e.fast)
            const requests = p.nextRequests(e.peer, e.max, { choked: e.choked, allowedFast: fast })
            expect(requests.length).toBeLessThanOrEqual(e.max)
            let duplicated = false
            for (const r of requests) {
              const k = key(r)
              const mine = m.out.get(e.peer)!
              // Only from a peer that has the piece, only allowed-fast pieces while choked.
              expect(m.peers.get(e.peer)!.has(r.index)).toBe(true)
              if (e.choked) expect(fast.has(r.index)).toBe(true)
              expect(m.wanted.has(r.index) && !m.have.has(r.index)).toBe(true)
              // Within the piece, on a block boundary, exactly one block long.
              expect(r.begin % B).toBe(0)
              expect(r.length).toBe(Math.min(B, pieceSize(g, r.index) - r.begin))
              expect(r.length).toBeGreaterThan(0)
              expect(m.received.has(k)).toBe(false)
              // Never twice to the same peer; a duplicate elsewhere only in endgame, bounded.
              expect(mine.has(k)).toBe(false)
              const others = m.holders(k)
              if (others.length > 0) duplicated = true
              expect(others.length).toBeLessThan(PiecePicker.MAX_HOLDERS)
              mine.set(k, r)
            }
            if (duplicated) expect(m.endgame()).toBe(true)
            break
          }
          case "receive": {
            const mine = [...(m.out.get(e.peer)?.values() ?? [])]
            if (mine.length === 0) break
            const r = mine[e.pick % mine.length]!
            const k = key(r)
            const expectedCancels = m.holders(k).filter((peer) => peer !== e.peer).sort()
            const outcome = p.blockReceived(e.peer, r.index, r.begin, r.length)
            expect(outcome.accepted).toBe(true)
            expect(outcome.cancel.map((c) => c.peer).sort()).toEqual(expectedCancels)
            for (const c of outcome.cancel) expect(c.request).toEqual(r)
            for (const requests of m.out.values()) requests.delete(k)
            m.received.add(k)
            expect(p.pieceComplete(r.index)).toBe(m.pieceReceived(r.index))
            break
          }
          case "stray": {
            const length = Math.min(B, pieceSize(g, e.index % g.pieceCount) - e.block * B)
            if (length <= 0) break
            const index = e.index % g.pieceCount
            const k = `${index}:${e.block * B}`
            const expected = m.out.get(e.peer)?.has(k) ?? false
            const outcome = p.blockReceived(e.peer, index, e.block * B, length)
            expect(outcome.accepted).toBe(expected)
            if (expected) {
              for (const requests of m.out.values()) requests.delete(k)
              m.received.add(k)
            }
            break
          }
          case "reject": {
            const mine = [...(m.out.get(e.peer)?.values() ?? [])]
            if (mine.length === 0) {
              expect(p.requestRejected(e.peer, { index: 0, begin: 0, length: B })).toBe(false)
              break
            }
            const r = mine[e.pick % mine.length]!
            expect(p.requestRejected(e.peer, r)).toBe(true)
            m.out.get(e.peer)!.delete(key(r))
            break
          }
          case "choke": {
            const keep = new Set(e.keep)
            const released = p.peerChoked(e.peer, keep)
            const mine = m.out.get(e.peer) ?? new Map<string, BlockRequest>()
            const expected = [...mine].filter(([, r]) => !keep.has(r.index)).map(([k]) => k)
            expect(sortRequests(released)).toEqual(expected.sort())
            for (const k of expected) mine.delete(k)
            break
          }
          case "hash": {
            const complete = [...Array(g.pieceCount).keys()].filter((i) => !m.have.has(i) && m.pieceReceived(i))
            const pieces = [...Array(g.pieceCount).keys()]
            expect(pieces.filter((i) => p.pieceComplete(i))).toEqual(complete)
            if (complete.length === 0) break
            const index = complete[e.pick % complete.length]!
            if (e.ok) {
              const before = [...m.peers.keys()].filter((peer) => m.interesting(peer))
              const lost = p.pieceVerified(index)
              m.have.add(index)
              expect([...lost].sort()).toEqual(before.filter((peer) => !m.interesting(peer)).sort())
            } else {
              p.pieceRejected(index)
              m.forgetBlocks(index)
            }
            break
          }
        }

        // After every event: per-peer counts, interest, completion and endgame agree with the model.
        const peers = [...m.out.keys()]
        const pieces = [...Array(g.pieceCount).keys()]
        const missing = [...m.wanted].filter((i) => !m.have.has(i)).length
        expect({
          outstanding: peers.map((peer) => p.outstanding(peer)),
          totalOutstanding: p.totalOutstanding,
          interesting: peers.map((peer) => p.isInteresting(peer)),
          missing: p.missingCount,
          complete: p.isComplete,
          endgame: p.inEndgame,
          have: pieces.map((i) => p.have.has(i)),
          availability: pieces.map((i) => p.availabilityOf(i))
        }).toEqual({
          outstanding: peers.map((peer) => m.out.get(peer)!.size),
          totalOutstanding: peers.reduce((sum, peer) => sum + m.out.get(peer)!.size, 0),
          interesting: peers.map((peer) => m.interesting(peer)),
          missing,
          complete: missing === 0,
          endgame: m.endgame(),
          have: pieces.map((i) => m.have.has(i)),
          availability: pieces.map((i) => [...m.peers.values()].filter((s) => s.has(i)).length)
        })
      }
    },
    { fastCheck: { numRuns: 150 } }
  )

  it.prop(
    "the first piece picked for a fresh peer is a rarest one it has",
    {
      pieceCount: fc.integer({ min: 1, max: 40 }),
      others: fc.array(fc.array(fc.nat({ max: 39 }), { maxLength: 40 }), { maxLength: 6 }),
      busy: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 6 }),
      fresh: fc.array(fc.nat({ max: 39 }), { minLength: 1, maxLength: 40 }),
      have: fc.array(fc.nat({ max: 39 }), { maxLength: 10 }),
      seed: fc.integer()
    },
    ({ busy, fresh, have, others, pieceCount, seed }) => {
      const inRange = (xs: ReadonlyArray<number>) => xs.filter((i) => i < pieceCount)
      const p = picker(pieceCount, 2 * B, pieceCount * 2 * B, {
        have: bits(pieceCount, inRange(have)),
        random: seeded(seed)
      })
      const started = new Set<number>()
      others.forEach((pieces, n) => p.addPeer(`peer${n}`, bits(pieceCount, inRange(pieces))))
      p.addPeer("fresh", bits(pieceCount, inRange(fresh)))
      // Some other peers start pieces first (and keep them: nothing is abandoned).
      busy.forEach((max, n) => {
        if (n < others.length) for (const r of p.nextRequests(`peer${n}`, max)) started.add(r.index)
      })
      const eligible = inRange(fresh).filter((i) => !have.includes(i) && !started.has(i))
      const [first] = p.nextRequests("fresh", 1)
      if (eligible.length === 0) {
        if (first !== undefined) expect(started.has(first.index)).toBe(true)
        return
      }
      const rarest = Math.min(...eligible.map((i) => p.availabilityOf(i)))
      expect(first).toBeDefined()
      expect(eligible).toContain(first!.index)
      expect(p.availabilityOf(first!.index)).toBe(rarest)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "reaches completion when every peer answers every request",
    {
      g: geometry,
      peerPieces: fc.array(fc.array(fc.nat({ max: 23 }), { maxLength: 24 }), { minLength: 1, maxLength: 5 }),
      depth: fc.integer({ min: 1, max: 8 }),
      failOnce: fc.array(fc.nat({ max: 23 }), { maxLength: 4 }),
      seed: fc.integer()
    },
    ({ depth, failOnce, g, peerPieces, seed }) => {
      const p = picker(g.pieceCount, g.pieceLength, g.totalLength, { random: seeded(seed) })
      const peers = peerPieces.map((_, n) => `peer${n}`)
      // Every piece is somewhere: an uncovered piece goes to one of the peers.
      const sets = peerPieces.map((pieces) => new Set(pieces.filter((i) => i < g.pieceCount)))
      for (let i = 0; i < g.pieceCount; i++) if (!sets.some((s) => s.has(i))) sets[i % sets.length]!.add(i)
      peers.forEach((peer, n) => p.addPeer(peer, bits(g.pieceCount, sets[n]!)))
      const failing = new Set(failOnce)

      // Each round every block becomes requestable again, so each round receives at least one.
      const bound = 2 * totalBlocks(g) + 2
      let rounds = 0
      while (!p.isComplete && rounds < bound) {
        rounds++
        const queues = new Map(peers.map((peer) => [peer, [...p.nextRequests(peer, depth - p.outstanding(peer))]]))
        const cancelled = new Set<string>()
        for (const [peer, queue] of queues) {
          for (const r of queue) {
            if (cancelled.has(`${peer}/${key(r)}`)) continue
            const outcome = p.blockReceived(peer, r.index, r.begin, r.length)
            expect(outcome.accepted).toBe(true)
            for (const c of outcome.cancel) cancelled.add(`${c.peer}/${key(c.request)}`)
            if (!p.pieceComplete(r.index)) continue
            if (failing.delete(r.index)) p.pieceRejected(r.index)
            else p.pieceVerified(r.index)
          }
        }
        for (const peer of peers) expect(p.outstanding(peer)).toBe(0)
      }
      expect(p.isComplete).toBe(true)
      for (let i = 0; i < g.pieceCount; i++) expect(p.have.has(i)).toBe(true)
    },
    { fastCheck: { numRuns: 200 } }
  )
})
