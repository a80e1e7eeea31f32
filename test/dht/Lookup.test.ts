import { NodeId, RoutingTable } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Lookup from "../../packages/core/src/dht/Lookup.js"

const K = RoutingTable.K
const bytes20 = fc.uint8Array({ minLength: 20, maxLength: 20 })
const addressOf = (i: number) => ({ host: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 6881 })

/**
 * A network in which every node has a routing table of every other node, and some are dead:
 * the others have noticed (they are bad there), except node `from`, whose lookup must find out.
 */
const network = (ids: ReadonlyArray<NodeId.NodeId>, dead: ReadonlySet<number>, from: number) => {
  const tables = ids.map((id, i) => {
    const table = RoutingTable.make(id, 0)
    ids.forEach((other, j) => table.responded({ id: other, address: addressOf(j) }, 0))
    if (i !== from) {
      for (const d of dead) for (let n = 0; n < RoutingTable.BAD_AFTER_FAILURES; n++) table.failed(ids[d]!, 0)
    }
    return table
  })
  const indexOf = new Map(ids.map((_, i) => [addressOf(i).host, i]))
  return { tables, indexOf, dead }
}

/**
 * Runs a lookup from node `from` to its end, answering synchronously (the dead never answer).
 * The answering nodes leave the asker out, as the Dht does.
 */
const run = (net: ReturnType<typeof network>, from: number, target: NodeId.NodeId, options?: Lookup.Options) => {
  const lookup = Lookup.make(target, options)
  const ownId = net.tables[from]!.ownId
  lookup.add(net.tables[from]!.closest(target, 4 * K, 0))
  for (let round = 0; round < 1000 && !lookup.done; round++) {
    const asked = lookup.next(3)
    if (asked.length === 0) break
    for (const candidate of asked) {
      const index = net.indexOf.get(candidate.address.host)!
      if (net.dead.has(index)) {
        lookup.failed(candidate.address)
        continue
      }
      const table = net.tables[index]!
      lookup.answered(candidate.address, table.ownId, undefined)
      // As a Dht node answers: its k closest, the asker left out.
      lookup.add(table.closest(target, K + 1, 0).filter((node) => !NodeId.equals(node.id, ownId)).slice(0, K))
    }
  }
  return lookup
}

const truth = (ids: ReadonlyArray<NodeId.NodeId>, target: NodeId.NodeId, exclude: ReadonlySet<number>) =>
  ids
    .filter((_, i) => !exclude.has(i))
    .sort((a, b) => NodeId.compareDistance(target, a, b))
    .slice(0, K)
    .map(NodeId.toHex)

describe("Lookup", () => {
  it.prop(
    "converges on exactly the k live nodes closest to the target in a network of Kademlia tables",
    [fc.uniqueArray(bytes20, { minLength: 20, maxLength: 80, selector: (b) => Buffer.from(b).toString("hex") }), bytes20, fc.nat(), fc.array(fc.nat(), { maxLength: 20 })],
    ([raw, rawTarget, pick, deadPicks]) => {
      const ids = raw.map(NodeId.unsafeFromBytes)
      const from = pick % ids.length
      const dead = new Set(deadPicks.map((d) => d % ids.length).filter((d) => d !== from))
      const net = network(ids, dead, from)
      const target = NodeId.unsafeFromBytes(rawTarget)
      const lookup = run(net, from, target)
      expect(lookup.done).toBe(true)
      expect(lookup.closest().map((a) => NodeId.toHex(a.node.id))).toEqual(truth(ids, target, new Set([...dead, from])))
    },
    { fastCheck: { numRuns: 25 } }
  )

  it("asks bootstrap addresses (no id yet) first, and stops at its query budget", () => {
    const target = NodeId.unsafeFromBytes(new Uint8Array(20))
    const lookup = Lookup.make(target, { maxQueries: 4 })
    lookup.add([{ address: addressOf(1), id: NodeId.unsafeFromBytes(new Uint8Array(20).fill(1)) }, { address: addressOf(2), id: undefined }])
    expect(lookup.next(1)).toEqual([{ address: addressOf(2), id: undefined }])
    lookup.answered(addressOf(2), NodeId.unsafeFromBytes(new Uint8Array(20).fill(9)), undefined)
    // Answers that keep inventing nodes cannot make it ask more than its budget.
    for (let i = 10; i < 40; i++) {
      lookup.add([{ address: addressOf(i), id: NodeId.unsafeFromBytes(new Uint8Array(20).fill(i)) }])
      for (const asked of lookup.next(3)) lookup.failed(asked.address)
    }
    expect(lookup.queries).toBe(4)
    expect(lookup.done).toBe(true)
  })

  it("keeps at most maxCandidates unasked candidates, dropping the farthest", () => {
    const target = NodeId.unsafeFromBytes(new Uint8Array(20))
    const lookup = Lookup.make(target, { maxCandidates: 10 })
    lookup.add(Array.from({ length: 50 }, (_, i) => ({ address: addressOf(i), id: NodeId.unsafeFromBytes(new Uint8Array(20).fill(i + 1)) })))
    const asked = lookup.next(100)
    // Only the k closest are ever handed out while they are pending.
    expect(asked.map((c) => c.id![0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    for (const c of asked) lookup.failed(c.address)
    expect(lookup.next(100).map((c) => c.id![0])).toEqual([9, 10])
  })
})
