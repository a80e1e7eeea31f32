import { Bitfield, PiecePicker } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { bits, picker, seeded } from "./fixtures.js"

const reason = <A>(result: Either.Either<A, PiecePicker.PiecePickerError>) =>
  Either.match(result, { onLeft: (error) => error.reason, onRight: () => "made" })

const B = PiecePicker.BLOCK_SIZE

describe("PiecePicker", () => {
  describe("make", () => {
    it("rejects a geometry whose pieces cannot hold the total length", () => {
      const have = Bitfield.Bitfield.empty(3)
      for (const totalLength of [2 * B, 3 * B + 1, 0]) {
        const result = PiecePicker.make({ pieceCount: 3, pieceLength: B, totalLength, have })
        expect(reason(result)).toBe("Geometry")
      }
      expect(reason(PiecePicker.make({ pieceCount: 3, pieceLength: 0, totalLength: 0, have }))).toBe("Geometry")
      expect(reason(PiecePicker.make({ pieceCount: 3, pieceLength: B, totalLength: 3 * B, have }))).toBe("made")
    })

    it("rejects bitfields of another size", () => {
      const result = PiecePicker.make({ pieceCount: 3, pieceLength: B, totalLength: 3 * B, have: bits(4, []) })
      expect(reason(result)).toBe("BitfieldSize")
      const wanted = PiecePicker.make({
        pieceCount: 3,
        pieceLength: B,
        totalLength: 3 * B,
        have: bits(3, []),
        wanted: bits(2, [])
      })
      expect(reason(wanted)).toBe("BitfieldSize")
    })

    it("starts from what we have and what we want", () => {
      const p = picker(4, B, 4 * B, { have: bits(4, [0]), wanted: bits(4, [0, 1, 2]) })
      expect(p.missingCount).toBe(2)
      expect(p.isComplete).toBe(false)
      expect(p.have.has(0)).toBe(true)
      p.addPeer("seed", Bitfield.Bitfield.full(4))
      const pieces = p.nextRequests("seed", 10).map((r) => r.index).sort()
      expect(pieces).toEqual([1, 2])
    })

    it("an empty torrent is complete and requests nothing", () => {
      const p = picker(0, B, 0)
      p.peerHasAll("seed")
      expect(p.isComplete).toBe(true)
      expect(p.nextRequests("seed", 4)).toEqual([])
    })
  })

  describe("geometry", () => {
    it("cuts the last short block of each piece and the last short piece", () => {
      // Pieces of 3 blocks (the third 1000 bytes); the last piece is B + 5 bytes.
      const pieceLength = 2 * B + 1000
      const p = picker(2, pieceLength, pieceLength + B + 5)
      p.peerHasAll("seed")
      const requests = [...p.nextRequests("seed", 100)].sort((x, y) => x.index - y.index || x.begin - y.begin)
      expect(requests).toEqual([
        { index: 0, begin: 0, length: B },
        { index: 0, begin: B, length: B },
        { index: 0, begin: 2 * B, length: 1000 },
        { index: 1, begin: 0, length: B },
        { index: 1, begin: B, length: 5 }
      ])
      expect(p.blockReceived("seed", 1, B, B).accepted).toBe(false)
      expect(p.blockReceived("seed", 1, B, 5).accepted).toBe(true)
      expect(p.pieceComplete(1)).toBe(false)
      expect(p.blockReceived("seed", 1, 0, B).accepted).toBe(true)
      expect(p.pieceComplete(1)).toBe(true)
      expect(p.pieceComplete(0)).toBe(false)
    })

    it("a piece shorter than a block is one short block", () => {
      const p = picker(3, 1000, 2500)
      p.peerHasAll("seed")
      expect(p.nextRequests("seed", 10)).toHaveLength(3)
      expect(p.blockReceived("seed", 2, 0, 500).accepted).toBe(true)
      expect(p.pieceComplete(2)).toBe(true)
    })

    it("drops misaligned, unrequested and repeated blocks", () => {
      const p = picker(1, 2 * B, 2 * B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      expect(p.blockReceived("a", 0, 0, B).accepted).toBe(false)
      p.nextRequests("a", 1)
      expect(p.blockReceived("b", 0, 0, B).accepted).toBe(false)
      expect(p.blockReceived("a", 0, 1, B).accepted).toBe(false)
      expect(p.blockReceived("a", 0, 0, B).accepted).toBe(true)
      expect(p.blockReceived("a", 0, 0, B).accepted).toBe(false)
      expect(p.blockReceived("a", 5, 0, B).accepted).toBe(false)
    })
  })

  describe("policy", () => {
    it("picks the rarest piece first", () => {
      const p = picker(4, B, 4 * B)
      p.addPeer("a", bits(4, [0, 1, 2, 3]))
      p.addPeer("b", bits(4, [0, 1, 2]))
      p.addPeer("c", bits(4, [0, 1]))
      p.addPeer("d", bits(4, [0]))
      expect(p.nextRequests("b", 1)).toEqual([{ index: 2, begin: 0, length: B }])
      expect(p.nextRequests("a", 1)).toEqual([{ index: 3, begin: 0, length: B }])
      expect(p.nextRequests("c", 1)).toEqual([{ index: 1, begin: 0, length: B }])
      expect(p.nextRequests("d", 1)).toEqual([{ index: 0, begin: 0, length: B }])
    })

    it("breaks availability ties with the injected randomness", () => {
      const first = (seed: number) => {
        const p = picker(64, B, 64 * B, { random: seeded(seed) })
        p.peerHasAll("seed")
        return p.nextRequests("seed", 1)[0]!.index
      }
      const picks = new Set(Array.from({ length: 20 }, (_, seed) => first(seed)))
      expect(picks.size).toBeGreaterThan(1)
      expect(first(7)).toBe(first(7))
    })

    it("reserves a piece to one peer while other pieces are unrequested", () => {
      const p = picker(2, 4 * B, 8 * B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      const [fromA] = p.nextRequests("a", 1)
      const [fromB] = p.nextRequests("b", 1)
      expect(fromA!.index).not.toBe(fromB!.index)
      expect(p.nextRequests("a", 3)).toEqual([1, 2, 3].map((k) => ({ index: fromA!.index, begin: k * B, length: B })))
    })

    it("lets a peer help with another's piece only when it has nothing new to start", () => {
      const p = picker(1, 4 * B, 4 * B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      expect(p.nextRequests("a", 2).map((r) => r.begin)).toEqual([0, B])
      expect(p.inEndgame).toBe(false)
      // b first takes the two unrequested blocks, then (now in endgame) duplicates a's.
      expect(p.nextRequests("b", 4).map((r) => r.begin)).toEqual([2 * B, 3 * B, 0, B])
      expect(p.inEndgame).toBe(true)
    })

    it("finishes a started piece before starting a rarer one", () => {
      const p = picker(3, 2 * B, 6 * B)
      p.addPeer("a", bits(3, [0]))
      p.addPeer("b", bits(3, [0, 1, 2]))
      p.addPeer("c", bits(3, [0, 1]))
      expect(p.nextRequests("a", 1)).toEqual([{ index: 0, begin: 0, length: B }])
      // While a holds piece 0, b starts the rarest piece.
      expect(p.nextRequests("b", 1)).toEqual([{ index: 2, begin: 0, length: B }])
      expect(p.removePeer("a")).toEqual([{ index: 0, begin: 0, length: B }])
      // Piece 0 is started and abandoned: c finishes it before starting piece 1.
      expect(p.nextRequests("c", 2)).toEqual([
        { index: 0, begin: 0, length: B },
        { index: 0, begin: B, length: B }
      ])
    })

    it("never requests from a peer that lacks the piece", () => {
      const p = picker(3, B, 3 * B)
      p.addPeer("a", bits(3, [1]))
      expect(p.nextRequests("a", 10)).toEqual([{ index: 1, begin: 0, length: B }])
      p.peerHas("a", 2)
      expect(p.nextRequests("a", 10)).toEqual([{ index: 2, begin: 0, length: B }])
      p.peerHasNone("b")
      expect(p.nextRequests("b", 10)).toEqual([])
    })
  })

  describe("endgame", () => {
    it("duplicates outstanding blocks to at most two more peers and returns the cancels", () => {
      const p = picker(1, 2 * B, 2 * B)
      for (const peer of ["a", "b", "c", "d"]) p.peerHasAll(peer)
      expect(p.nextRequests("a", 10)).toHaveLength(2)
      expect(p.inEndgame).toBe(true)
      expect(p.nextRequests("a", 10)).toEqual([])
      expect(p.nextRequests("b", 10)).toEqual([
        { index: 0, begin: 0, length: B },
        { index: 0, begin: B, length: B }
      ])
      expect(p.nextRequests("c", 10)).toHaveLength(2)
      expect(p.nextRequests("d", 10)).toEqual([])

      const first = p.blockReceived("a", 0, 0, B)
      expect(first.accepted).toBe(true)
      expect(first.cancel).toEqual([
        { peer: "b", request: { index: 0, begin: 0, length: B } },
        { peer: "c", request: { index: 0, begin: 0, length: B } }
      ])
      expect(p.blockReceived("b", 0, 0, B)).toEqual({ accepted: false, cancel: [] })
      expect([p.outstanding("a"), p.outstanding("b"), p.outstanding("c")]).toEqual([1, 1, 1])

      const second = p.blockReceived("c", 0, B, B)
      expect(second.cancel.map((c) => c.peer)).toEqual(["a", "b"])
      expect(p.pieceComplete(0)).toBe(true)
      expect([p.outstanding("a"), p.outstanding("b"), p.outstanding("c")]).toEqual([0, 0, 0])
      expect(p.pieceVerified(0)).toEqual(["a", "b", "c", "d"])
      expect(p.isComplete).toBe(true)
      expect(p.inEndgame).toBe(false)
    })

    it("prefers blocks held by fewer peers", () => {
      const p = picker(1, 2 * B, 2 * B)
      for (const peer of ["a", "b", "c"]) p.peerHasAll(peer)
      p.nextRequests("a", 2)
      expect(p.nextRequests("b", 1)).toEqual([{ index: 0, begin: 0, length: B }])
      expect(p.nextRequests("c", 1)).toEqual([{ index: 0, begin: B, length: B }])
    })

    it("is not entered while a piece some peer has is unrequested, whatever pieces nobody has", () => {
      const p = picker(3, B, 3 * B)
      p.addPeer("a", bits(3, [0, 1]))
      p.nextRequests("a", 1)
      expect(p.inEndgame).toBe(false)
      p.nextRequests("a", 1)
      // Piece 2 is missing but no peer has it.
      expect(p.inEndgame).toBe(true)
    })
  })

  describe("choking and rejects", () => {
    it("requests only allowed-fast pieces while choked", () => {
      const p = picker(3, B, 3 * B)
      p.peerHasAll("a")
      expect(p.nextRequests("a", 5, { choked: true })).toEqual([])
      expect(p.nextRequests("a", 5, { choked: true, allowedFast: new Set([1, 7]) })).toEqual([
        { index: 1, begin: 0, length: B }
      ])
      expect(p.nextRequests("a", 5).map((r) => r.index).sort()).toEqual([0, 2])
      expect(p.peerChoked("a", new Set([1])).map((r) => r.index).sort()).toEqual([0, 2])
      expect(p.outstanding("a")).toBe(1)
      expect(p.nextRequests("a", 5, { choked: true, allowedFast: new Set([1]) })).toEqual([])
      expect(p.nextRequests("a", 5).map((r) => r.index).sort()).toEqual([0, 2])
    })

    it("a choke without fast returns every request and frees the peer's pieces", () => {
      const p = picker(1, 2 * B, 2 * B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      p.nextRequests("a", 1)
      expect(p.peerChoked("a")).toEqual([{ index: 0, begin: 0, length: B }])
      expect(p.outstanding("a")).toBe(0)
      expect(p.nextRequests("b", 2).map((r) => r.begin)).toEqual([0, B])
    })

    it("a rejected request goes back to the pool", () => {
      const p = picker(1, B, B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      const [request] = p.nextRequests("a", 1)
      expect(p.nextRequests("b", 1)).toEqual([request]) // endgame duplicate
      expect(p.requestRejected("a", request!)).toBe(true)
      expect(p.requestRejected("a", request!)).toBe(false)
      expect(p.outstanding("a")).toBe(0)
      expect(p.blockReceived("a", 0, 0, B).accepted).toBe(false)
      expect(p.requestRejected("b", request!)).toBe(true)
      expect(p.inEndgame).toBe(false)
      expect(p.nextRequests("a", 1)).toEqual([request])
    })

    it("a peer that rejects its last request in a piece gives the piece up", () => {
      const p = picker(2, 2 * B, 4 * B)
      p.peerHasAll("a")
      p.peerHasAll("b")
      const [request] = p.nextRequests("a", 1)
      p.requestRejected("a", request!)
      // The abandoned piece is finished first, by whoever comes next.
      expect(p.nextRequests("b", 1)).toEqual([request])
    })

    it("a removed peer's requests are returned and requestable again", () => {
      const p = picker(2, 2 * B, 4 * B)
      p.peerHasAll("a")
      const mine = p.nextRequests("a", 3)
      expect([...p.removePeer("a")].sort((x, y) => x.index - y.index || x.begin - y.begin)).toEqual(
        [...mine].sort((x, y) => x.index - y.index || x.begin - y.begin)
      )
      expect(p.removePeer("a")).toEqual([])
      expect(p.availabilityOf(0)).toBe(0)
      p.peerHasAll("b")
      expect(p.nextRequests("b", 10)).toHaveLength(4)
    })
  })

  describe("verification", () => {
    it("a hash failure returns every block of the piece to the pool", () => {
      const p = picker(1, 2 * B, 2 * B)
      p.peerHasAll("a")
      p.nextRequests("a", 2)
      p.blockReceived("a", 0, 0, B)
      p.blockReceived("a", 0, B, B)
      expect(p.pieceComplete(0)).toBe(true)
      p.pieceRejected(0)
      expect(p.pieceComplete(0)).toBe(false)
      expect(p.isComplete).toBe(false)
      expect(p.nextRequests("a", 2).map((r) => r.begin)).toEqual([0, B])
    })

    it("tracks interest as pieces arrive and are verified", () => {
      const p = picker(3, B, 3 * B, { have: bits(3, [0]), wanted: bits(3, [0, 1]) })
      p.addPeer("a", bits(3, [0, 2]))
      expect(p.isInteresting("a")).toBe(false) // has only what we have or do not want
      p.peerHas("a", 1)
      p.peerHas("b", 1)
      expect(p.isInteresting("a")).toBe(true)
      expect(p.isInteresting("b")).toBe(true)
      p.nextRequests("a", 1)
      p.blockReceived("a", 1, 0, B)
      expect(p.pieceVerified(1).slice().sort()).toEqual(["a", "b"])
      expect(p.isInteresting("a")).toBe(false)
      expect(p.isComplete).toBe(true)
      expect(p.have.has(1)).toBe(true)
      expect(p.pieceVerified(1)).toEqual([])
    })
  })

  // The rarest-first index exists only while a peer is known or a piece is in flight.
  describe("without peers", () => {
    it("a piece verified before any peer came is never requested", () => {
      const p = picker(4, B, 4 * B)
      expect(p.pieceVerified(2)).toEqual([])
      expect(p.missingCount).toBe(3)
      expect(p.availabilityOf(2)).toBe(0)
      p.peerHasAll("seed")
      expect(p.nextRequests("seed", 10).map((r) => r.index).sort()).toEqual([0, 1, 3])
    })

    it("peers that all left and others that come later find the same pieces, rarest first", () => {
      const p = picker(4, B, 4 * B)
      p.peerHasAll("a")
      p.addPeer("b", bits(4, [1]))
      p.removePeer("a")
      p.removePeer("b")
      expect(p.availabilityOf(1)).toBe(0)
      expect(p.pieceVerified(0)).toEqual([])
      p.peerHasAll("c")
      p.addPeer("d", bits(4, [1, 2]))
      // Piece 3 is the only one that just "c" has: the rarest.
      expect(p.nextRequests("c", 1).map((r) => r.index)).toEqual([3])
      expect(p.availabilityOf(1)).toBe(2)
      expect(p.nextRequests("c", 10).map((r) => r.index).sort()).toEqual([1, 2])
    })

    it("keeps a piece in flight when its peers leave, and finishes it with the next peer", () => {
      const p = picker(2, 2 * B, 4 * B)
      p.peerHasAll("a")
      const [first] = p.nextRequests("a", 1)
      p.blockReceived("a", first!.index, 0, B)
      p.removePeer("a")
      p.peerHasAll("b")
      expect(p.nextRequests("b", 1)).toEqual([{ index: first!.index, begin: B, length: B }])
    })
  })
})
