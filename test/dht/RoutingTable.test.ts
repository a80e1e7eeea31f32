import { NodeId, RoutingTable } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const MINUTE = 60_000
const K = RoutingTable.K

const bytes20 = fc.uint8Array({ minLength: 20, maxLength: 20 })
const own = bytes20.map(NodeId.unsafeFromBytes)
/** Ids sharing a random number of leading bits with `ownId`, so deep buckets get exercised. */
const near = (ownId: NodeId.NodeId) =>
  fc.tuple(fc.integer({ min: 0, max: 24 }), bytes20).map(([bits, noise]) => NodeId.withPrefix(ownId, bits, noise))
const addressOf = (n: number) => ({ host: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port: 6881 })
/** An id in bucket `cpl` exactly: shares `cpl` bits with ours, then differs; `seed` sets its last byte. */
const atDistance = (ownId: NodeId.NodeId, cpl: number, seed: number) => {
  const id = Uint8Array.from(ownId)
  id[cpl >>> 3] = id[cpl >>> 3]! ^ (0x80 >>> (cpl & 7))
  id[19] = seed & 255
  return NodeId.unsafeFromBytes(id)
}

/** Checks every structural invariant of a table. */
const checkInvariants = (table: RoutingTable.RoutingTable) => {
  const ids = new Set<string>()
  const addresses = new Set<string>()
  let total = 0
  const last = table.bucketCount - 1
  expect(table.bucketCount).toBeGreaterThanOrEqual(1)
  expect(table.bucketCount).toBeLessThanOrEqual(NodeId.BITS)
  for (let index = 0; index <= last; index++) {
    const bucket = table.bucket(index)
    expect(bucket.length).toBeLessThanOrEqual(table.k)
    for (const entry of bucket) {
      const cpl = NodeId.commonPrefixLength(table.ownId, entry.id)
      // Only our own (last) bucket ever split: bucket i < last holds exactly the ids sharing i bits with ours.
      if (index < last) expect(cpl).toBe(index)
      else expect(cpl).toBeGreaterThanOrEqual(last)
      expect(cpl).toBeLessThan(NodeId.BITS)
      ids.add(NodeId.toHex(entry.id))
      addresses.add(`${entry.address.host}:${entry.address.port}`)
      total++
    }
  }
  expect(ids.size).toBe(total)
  expect(addresses.size).toBe(total)
  expect(table.size).toBe(total)
}

type Op =
  | { readonly type: "respond"; readonly id: NodeId.NodeId; readonly address: number }
  | { readonly type: "fail"; readonly pick: number }
  | { readonly type: "query"; readonly pick: number }
  | { readonly type: "wait"; readonly minutes: number }

const ops = (ownId: NodeId.NodeId) =>
  fc.array(
    fc.oneof(
      { weight: 8, arbitrary: fc.record({ type: fc.constant("respond" as const), id: near(ownId), address: fc.nat({ max: 400 }) }) },
      { weight: 2, arbitrary: fc.record({ type: fc.constant("fail" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant("query" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant("wait" as const), minutes: fc.integer({ min: 1, max: 20 }) }) }
    ),
    { maxLength: 300 }
  )

const run = (ownId: NodeId.NodeId, script: ReadonlyArray<Op>) => {
  let now = 0
  const table = RoutingTable.make(ownId, now)
  for (const op of script) {
    const entries = table.entries()
    switch (op.type) {
      case "respond":
        table.responded({ id: op.id, address: addressOf(op.address) }, now)
        break
      case "fail":
        if (entries.length > 0) table.failed(entries[op.pick % entries.length]!.id, now)
        break
      case "query":
        if (entries.length > 0) table.queried(entries[op.pick % entries.length]!.id, now)
        break
      case "wait":
        now += op.minutes * MINUTE
    }
  }
  return { table, now }
}

const scenario = own.chain((ownId) => fc.tuple(fc.constant(ownId), ops(ownId)))

describe("RoutingTable: properties", () => {
  it.prop("keeps its bucket invariants through any sequence of answers, failures, queries and time", [scenario], ([[ownId, script]]) => {
    checkInvariants(run(ownId, script).table)
  })

  it.prop("closest(target, n) is the n live nodes nearest by XOR, in order", [scenario, bytes20, fc.integer({ min: 0, max: 20 })], ([[ownId, script], target, n]) => {
    const { now, table } = run(ownId, script)
    const t = NodeId.unsafeFromBytes(target)
    const expected = table
      .entries()
      .filter((entry) => table.stateOf(entry, now) !== "bad")
      .map((entry) => NodeId.toHex(entry.id))
      .sort((a, b) => {
        const da = Buffer.from(NodeId.distance(t, NodeId.unsafeFromBytes(Buffer.from(a, "hex"))))
        const db = Buffer.from(NodeId.distance(t, NodeId.unsafeFromBytes(Buffer.from(b, "hex"))))
        return Buffer.compare(da, db)
      })
      .slice(0, n)
    expect(table.closest(t, n, now).map((node) => NodeId.toHex(node.id))).toEqual(expected)
  })

  it.prop("serialize then restore gives the same id and the same live nodes, all questionable", [scenario], ([[ownId, script]]) => {
    const { now, table } = run(ownId, script)
    const serialized = table.serialize(now)
    const json = JSON.parse(JSON.stringify(serialized))
    const reloaded = Either.getOrThrow(RoutingTable.restore(Either.getOrThrow(RoutingTable.decode(json)), now))
    checkInvariants(reloaded)
    expect(NodeId.toHex(reloaded.ownId)).toBe(NodeId.toHex(ownId))
    const key = (n: { readonly id: NodeId.NodeId; readonly address: { readonly host: string; readonly port: number } }) =>
      `${NodeId.toHex(n.id)}@${n.address.host}:${n.address.port}`
    const live = table.entries().filter((entry) => table.stateOf(entry, now) !== "bad").map(key).sort()
    expect(reloaded.entries().map(key).sort()).toEqual(live)
    for (const entry of reloaded.entries()) expect(reloaded.stateOf(entry, now)).toBe("questionable")
  })

  it.prop("refreshTarget(i) lies in bucket i", [scenario, bytes20], ([[ownId, script], noise]) => {
    const { table } = run(ownId, script)
    for (let index = 0; index < table.bucketCount; index++) {
      expect(table.bucketIndex(table.refreshTarget(index, noise))).toBe(index)
    }
  })
})

describe("RoutingTable: BEP 5 rules", () => {
  const ownId = NodeId.unsafeFromBytes(new Uint8Array(20).fill(0x55))

  it("splits only the bucket holding our own id: a full far bucket stays full", () => {
    const table = RoutingTable.make(ownId, 0)
    for (let i = 0; i < K; i++) expect(table.responded({ id: atDistance(ownId, 0, i), address: addressOf(i) }, 0)._tag).toBe("Added")
    expect(table.bucketCount).toBe(1)
    // The ninth far node fills the one bucket, which holds our id: it splits, the far half stays full.
    expect(table.responded({ id: atDistance(ownId, 0, K), address: addressOf(K) }, 0)._tag).toBe("Waiting")
    expect(table.bucketCount).toBe(2)
    expect(table.bucket(0)).toHaveLength(K)
    expect(table.responded({ id: atDistance(ownId, 0, K + 1), address: addressOf(K + 1) }, 0)._tag).toBe("Waiting")
    expect(table.bucketCount).toBe(2)
    // A node near us still gets in: our own bucket has room.
    expect(table.responded({ id: atDistance(ownId, 30, 1), address: addressOf(100) }, 0)._tag).toBe("Added")
    checkInvariants(table)
  })

  it("grades nodes good, questionable after 15 quiet minutes, good again when they query us, bad after failures", () => {
    const table = RoutingTable.make(ownId, 0)
    const node = { id: atDistance(ownId, 3, 1), address: addressOf(1) }
    table.responded(node, 0)
    const entry = () => table.get(node.id)!
    expect(table.stateOf(entry(), 15 * MINUTE - 1)).toBe("good")
    expect(table.stateOf(entry(), 15 * MINUTE)).toBe("questionable")
    table.queried(node.id, 20 * MINUTE)
    expect(table.stateOf(entry(), 21 * MINUTE)).toBe("good")
    table.failed(node.id, 21 * MINUTE)
    expect(table.stateOf(entry(), 21 * MINUTE)).toBe("good")
    table.failed(node.id, 21 * MINUTE)
    expect(table.stateOf(entry(), 21 * MINUTE)).toBe("bad")
    expect(table.closest(node.id, 8, 21 * MINUTE)).toEqual([])
    // An answer clears the failures.
    table.responded(node, 22 * MINUTE)
    expect(table.stateOf(entry(), 22 * MINUTE)).toBe("good")
  })

  it("replaces a bad node with a newcomer, and a failing node with the freshest replacement", () => {
    const table = RoutingTable.make(ownId, 0)
    const far = (i: number) => ({ id: atDistance(ownId, 0, i), address: addressOf(i) })
    for (let i = 0; i <= K; i++) table.responded(far(i), 0) // splits once; bucket 0 full
    for (let i = 0; i < 2; i++) table.failed(far(0).id, 0)
    expect(table.get(far(0).id)).toBeUndefined() // far(K) waited as a replacement and took its place
    expect(table.get(far(K).id)).toBeDefined()
    for (let i = 0; i < 2; i++) table.failed(far(1).id, 0)
    expect(table.stateOf(table.get(far(1).id)!, 0)).toBe("bad") // no replacement left: it stays until a newcomer
    expect(table.responded(far(K + 1), 0)._tag).toBe("Added")
    expect(table.get(far(1).id)).toBeUndefined()
    checkInvariants(table)
  })

  it("asks the caller to ping the least recently seen questionable node of a full bucket", () => {
    const table = RoutingTable.make(ownId, 0)
    const far = (i: number) => ({ id: atDistance(ownId, 0, i), address: addressOf(i) })
    for (let i = 0; i <= K; i++) table.responded(far(i), i) // bucket 0 full, far(0) seen first
    const later = 16 * MINUTE
    const outcome = table.responded(far(K + 1), later)
    expect(outcome).toEqual({ _tag: "Waiting", ping: far(0) })
  })

  it("rejects our own id, and a second id at an address a live node holds", () => {
    const table = RoutingTable.make(ownId, 0)
    expect(table.responded({ id: ownId, address: addressOf(1) }, 0)._tag).toBe("Rejected")
    table.responded({ id: atDistance(ownId, 2, 1), address: addressOf(1) }, 0)
    expect(table.responded({ id: atDistance(ownId, 2, 2), address: addressOf(1) }, 0)._tag).toBe("Rejected")
    expect(table.size).toBe(1)
  })

  it("wants a stranger only when its bucket has room, can split, or holds a bad node", () => {
    const table = RoutingTable.make(ownId, 0)
    const far = (i: number) => ({ id: atDistance(ownId, 0, i), address: addressOf(i) })
    expect(table.wouldAccept(far(0).id, 0)).toBe(true)
    for (let i = 0; i <= K; i++) table.responded(far(i), 0)
    expect(table.wouldAccept(far(50).id, 0)).toBe(false)
    expect(table.wouldAccept(atDistance(ownId, 40, 1), 0)).toBe(true)
    table.failed(far(1).id, 0)
    table.failed(far(1).id, 0) // bad, but far(K) replaced it at once
    expect(table.wouldAccept(far(50).id, 0)).toBe(false)
  })

  it("reports a bucket for refresh after 15 minutes without change, and not once refreshed", () => {
    const table = RoutingTable.make(ownId, 0)
    table.responded({ id: atDistance(ownId, 1, 1), address: addressOf(1) }, 0)
    expect(table.refreshDue(15 * MINUTE - 1)).toEqual([])
    expect(table.refreshDue(15 * MINUTE)).toEqual([0])
    table.refreshed(0, 15 * MINUTE)
    expect(table.refreshDue(16 * MINUTE)).toEqual([])
  })

  it("rejects a persisted table with a bad id or too many nodes", () => {
    expect(Either.isLeft(RoutingTable.decode({ id: "xx", nodes: "no" }))).toBe(true)
    const tooMany = { id: "00".repeat(20), nodes: Array.from({ length: RoutingTable.MAX_SERIALIZED_NODES + 1 }, (_, i) => ({ id: "11".repeat(20), host: "10.0.0.1", port: i + 1 })) }
    expect(Either.isLeft(RoutingTable.decode(tooMany))).toBe(true)
    const badNode = Either.getOrThrow(RoutingTable.decode({ id: "00".repeat(20), nodes: [{ id: "zz", host: "10.0.0.1", port: 1 }] }))
    expect(Either.isLeft(RoutingTable.restore(badNode, 0))).toBe(true)
  })
})
