import { Choker } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { seeded } from "../picker/fixtures.js"

const ROUND = 10_000
/** Long enough ago that nobody counts as newly connected. */
const OLD = -1_000_000

const peer = (key: string, fields: Partial<Choker.PeerSnapshot> = {}): Choker.PeerSnapshot => ({
  key,
  interested: true,
  downloadRate: 0,
  uploadRate: 0,
  connectedAt: OLD,
  lastBlockAt: undefined,
  downloading: false,
  ...fields
})

const sorted = (set: ReadonlySet<string>) => [...set].sort()

describe("Choker", () => {
  describe("regular slots", () => {
    const peers = [
      peer("a", { downloadRate: 10, uploadRate: 60 }),
      peer("b", { downloadRate: 60, uploadRate: 10 }),
      peer("c", { downloadRate: 30, uploadRate: 40 }),
      peer("d", { downloadRate: 50, uploadRate: 20 }),
      peer("e", { downloadRate: 20, uploadRate: 50 }),
      peer("f", { downloadRate: 40, uploadRate: 30 })
    ]

    it("while leeching, unchokes the 4 peers that give us the most", () => {
      const { state, unchoke } = Choker.round(Choker.make({ random: seeded(1) }), { peers, now: 0, seeding: false })
      expect(sorted(state.regular)).toEqual(["b", "c", "d", "f"])
      expect(["a", "e"]).toContain(state.optimistic)
      expect(sorted(unchoke)).toEqual([...sorted(state.regular), state.optimistic!].sort())
    })

    it("while seeding, unchokes the 4 peers we give the most", () => {
      const { state } = Choker.round(Choker.make({ random: seeded(1) }), { peers, now: 0, seeding: true })
      expect(sorted(state.regular)).toEqual(["a", "c", "e", "f"])
      expect(["b", "d"]).toContain(state.optimistic)
    })

    it("has as many regular slots as configured", () => {
      const { state } = Choker.round(Choker.make({ regularSlots: 2, random: seeded(1) }), {
        peers,
        now: 0,
        seeding: false
      })
      expect(sorted(state.regular)).toEqual(["b", "d"])
    })

    it("never gives a slot to a peer that is not interested", () => {
      const uninterested = peers.map((p) => (p.key === "b" || p.key === "d" ? { ...p, interested: false } : p))
      const { state, unchoke } = Choker.round(Choker.make({ random: seeded(1) }), {
        peers: uninterested,
        now: 0,
        seeding: false
      })
      expect(sorted(state.regular)).toEqual(["a", "c", "e", "f"])
      expect(unchoke.has("b") || unchoke.has("d")).toBe(false)
      expect(state.optimistic).toBeUndefined() // every interested peer already holds a regular slot
    })

    it("with fewer interested peers than slots, unchokes them all and has no optimistic", () => {
      const { state, unchoke } = Choker.round(Choker.make(), {
        peers: [peer("a"), peer("b", { interested: false }), peer("c", { downloadRate: 5 })],
        now: 0,
        seeding: false
      })
      expect(sorted(unchoke)).toEqual(["a", "c"])
      expect(state.optimistic).toBeUndefined()
      const empty = Choker.round(state, { peers: [], now: ROUND, seeding: false })
      expect(empty.unchoke.size).toBe(0)
    })

    it("on equal rates keeps the peers already unchoked", () => {
      const tied = ["a", "b", "c", "d", "e", "f"].map((key) => peer(key, { downloadRate: 100 }))
      const first = Choker.round(Choker.make({ random: seeded(3) }), { peers: tied, now: 0, seeding: false })
      expect(first.state.regular.size).toBe(4)
      let state = first.state
      for (let n = 1; n <= 6; n++) {
        state = Choker.round(state, { peers: tied, now: n * ROUND, seeding: false }).state
        expect(sorted(state.regular)).toEqual(sorted(first.state.regular))
      }
      // A strictly faster peer still takes a slot.
      const faster = tied.map((p) => (first.state.regular.has(p.key) ? p : { ...p, downloadRate: 101 }))
      const next = Choker.round(state, { peers: faster, now: 7 * ROUND, seeding: false })
      expect(sorted(next.state.regular)).not.toEqual(sorted(first.state.regular))
    })

    it("breaks first-round ties with the injected randomness, reproducibly", () => {
      const tied = ["a", "b", "c", "d", "e", "f", "g", "h"].map((key) => peer(key))
      const regular = (seed: number) =>
        sorted(Choker.round(Choker.make({ random: seeded(seed) }), { peers: tied, now: 0, seeding: false }).state.regular)
      expect(regular(5)).toEqual(regular(5))
      const distinct = new Set(Array.from({ length: 10 }, (_, seed) => regular(seed).join()))
      expect(distinct.size).toBeGreaterThan(1)
    })
  })

  describe("optimistic unchoke", () => {
    const peers = ["a", "b", "c", "d", "e", "f", "g", "h"].map((key, n) => peer(key, { downloadRate: 100 - n }))

    it("rotates every third round and is never one of the regular peers", () => {
      let state = Choker.make({ random: seeded(11) })
      const optimists: Array<string | undefined> = []
      for (let n = 0; n < 9; n++) {
        const result = Choker.round(state, { peers, now: n * ROUND, seeding: false })
        state = result.state
        expect(sorted(state.regular)).toEqual(["a", "b", "c", "d"])
        expect(state.optimistic).toBeDefined()
        expect(state.regular.has(state.optimistic!)).toBe(false)
        expect(result.unchoke.size).toBe(5)
        optimists.push(state.optimistic)
      }
      expect(optimists[1]).toBe(optimists[0])
      expect(optimists[2]).toBe(optimists[0])
      expect(optimists[3]).not.toBe(optimists[2])
      expect(optimists[4]).toBe(optimists[3])
      expect(optimists[5]).toBe(optimists[3])
      expect(optimists[6]).not.toBe(optimists[5])
      expect(optimists[8]).toBe(optimists[6])
    })

    it("is replaced at once when it leaves, loses interest or earns a regular slot", () => {
      const first = Choker.round(Choker.make({ random: seeded(2) }), { peers, now: 0, seeding: false }).state
      const chosen = first.optimistic!
      const gone = Choker.round(first, { peers: peers.filter((p) => p.key !== chosen), now: ROUND, seeding: false })
      expect(gone.state.optimistic).toBeDefined()
      expect(gone.state.optimistic).not.toBe(chosen)
      expect(gone.state.optimisticSince).toBe(ROUND)

      const bored = peers.map((p) => (p.key === chosen ? { ...p, interested: false } : p))
      const notInterested = Choker.round(first, { peers: bored, now: ROUND, seeding: false })
      expect(notInterested.state.optimistic).not.toBe(chosen)
      expect(notInterested.unchoke.has(chosen)).toBe(false)

      const generous = peers.map((p) => (p.key === chosen ? { ...p, downloadRate: 1000 } : p))
      const promoted = Choker.round(first, { peers: generous, now: ROUND, seeding: false })
      expect(promoted.state.regular.has(chosen)).toBe(true)
      expect(promoted.state.optimistic).toBeDefined()
      expect(promoted.state.optimistic).not.toBe(chosen)
    })

    it("favours newly connected peers three to one", () => {
      // Four candidates for the optimistic slot besides the regulars; "h" is new.
      const withNewcomer = peers.map((p) => (p.key === "h" ? { ...p, connectedAt: -5_000 } : p))
      const share = (newPeerWeight: number) => {
        const random = seeded(99)
        let picked = 0
        for (let trial = 0; trial < 2000; trial++) {
          const { state } = Choker.round(Choker.make({ newPeerWeight, random }), {
            peers: withNewcomer,
            now: 0,
            seeding: false
          })
          if (state.optimistic === "h") picked++
        }
        return picked / 2000
      }
      expect(share(3)).toBeGreaterThan(0.42) // 3 / (3 + 1 + 1 + 1) = 0.5
      expect(share(3)).toBeLessThan(0.58)
      expect(share(1)).toBeGreaterThan(0.18) // 1 / 4
      expect(share(1)).toBeLessThan(0.32)
    })
  })

  describe("anti-snubbing", () => {
    const now = 100_000
    const config = Choker.make().config

    it("a peer that owes us blocks and sent none for 60 s is snubbed", () => {
      const owing = peer("s", { downloading: true, lastBlockAt: now - 60_000 })
      expect(Choker.isSnubbed(owing, now, config)).toBe(true)
      expect(Choker.isSnubbed({ ...owing, lastBlockAt: now - 59_999 }, now, config)).toBe(false)
      // Not owing us anything (we are not interested, or it chokes us): never snubbed.
      expect(Choker.isSnubbed({ ...owing, downloading: false }, now, config)).toBe(false)
      // Never sent a block: counted from when it connected.
      expect(Choker.isSnubbed({ ...owing, lastBlockAt: undefined, connectedAt: now - 61_000 }, now, config)).toBe(true)
      expect(Choker.isSnubbed({ ...owing, snubbed: false }, now, config)).toBe(false)
      expect(Choker.isSnubbed(peer("x", { snubbed: true }), now, config)).toBe(true)
    })

    it("a snubbed peer loses its regular slot but may still be the optimistic one", () => {
      const peers = [
        peer("fast-but-snubbing", { downloadRate: 1000, downloading: true, lastBlockAt: now - 61_000 }),
        peer("a", { downloadRate: 40 }),
        peer("b", { downloadRate: 30 }),
        peer("c", { downloadRate: 20 }),
        peer("d", { downloadRate: 10 })
      ]
      const { state, unchoke } = Choker.round(Choker.make({ random: seeded(4) }), { peers, now, seeding: false })
      expect(sorted(state.regular)).toEqual(["a", "b", "c", "d"])
      // It is the only interested peer left for the optimistic slot.
      expect(state.optimistic).toBe("fast-but-snubbing")
      expect(unchoke.size).toBe(5)

      const recovered = peers.map((p) => (p.key === "fast-but-snubbing" ? { ...p, lastBlockAt: now } : p))
      const next = Choker.round(state, { peers: recovered, now: now + ROUND, seeding: false })
      expect(next.state.regular.has("fast-but-snubbing")).toBe(true)
      expect(next.state.regular.has("d")).toBe(false)
    })
  })

  it.prop(
    "over any rounds: only interested peers, the best non-snubbed ones regular, the optimistic apart",
    {
      seed: fc.integer(),
      rounds: fc.array(
        fc.record({
          seeding: fc.boolean(),
          peers: fc.uniqueArray(
            fc.record({
              key: fc.constantFrom("a", "b", "c", "d", "e", "f", "g"),
              interested: fc.boolean(),
              downloadRate: fc.nat({ max: 5 }),
              uploadRate: fc.nat({ max: 5 }),
              snubbed: fc.boolean()
            }),
            { selector: (p) => p.key, maxLength: 7 }
          )
        }),
        { minLength: 1, maxLength: 12 }
      )
    },
    ({ rounds, seed }) => {
      let state = Choker.make({ random: seeded(seed) })
      rounds.forEach(({ peers: inputs, seeding }, n) => {
        const peers = inputs.map((p) => peer(p.key, p))
        const result = Choker.round(state, { peers, now: n * ROUND, seeding })
        state = result.state
        const byKey = new Map(peers.map((p) => [p.key, p]))
        for (const key of result.unchoke) expect(byKey.get(key)!.interested).toBe(true)
        expect(state.regular.size).toBeLessThanOrEqual(4)
        if (state.optimistic !== undefined) expect(state.regular.has(state.optimistic)).toBe(false)
        expect(sorted(result.unchoke)).toEqual(
          sorted(new Set([...state.regular, ...(state.optimistic === undefined ? [] : [state.optimistic])]))
        )
        const rate = (p: Choker.PeerSnapshot) => (seeding ? p.uploadRate : p.downloadRate)
        const candidates = peers.filter((p) => p.interested && p.snubbed !== true)
        expect(state.regular.size).toBe(Math.min(4, candidates.length))
        const slowestRegular = Math.min(...[...state.regular].map((key) => rate(byKey.get(key)!)))
        for (const p of candidates) if (!state.regular.has(p.key)) expect(rate(p)).toBeLessThanOrEqual(slowestRegular)
        if (peers.some((p) => p.interested && !state.regular.has(p.key))) expect(state.optimistic).toBeDefined()
      })
    }
  )
})
