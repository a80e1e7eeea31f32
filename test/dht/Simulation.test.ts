/**
 * A few hundred DHT nodes on the simulated network under the TestClock: bootstrap from three
 * seeds, lookups converge on the true k closest nodes, an announce is found from far away, and
 * silent or lying nodes do not break any of it.
 */
import { Dht, InfoHash, Krpc, type Network, NodeId, RoutingTable } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Random, Stream } from "effect"
import { createHash } from "node:crypto"
import { drive, rawNode, startNode } from "./support.js"

const K = RoutingTable.K
const hostOf = (i: number) => `10.${1 + (i >> 8)}.${i & 255}.7`
const sha1 = (text: string) => Uint8Array.from(createHash("sha1").update(text).digest())
const idFor = (name: string) => NodeId.unsafeFromBytes(sha1(name))

interface Member {
  readonly host: string
  readonly id: NodeId.NodeId
  readonly dht: Dht.Dht
}

/** Starts `count` nodes with ids from `seed`; the first three are the seeds everyone bootstraps from. */
const startSwarm = (board: MemoryNetwork.Switchboard, count: number, seed: string) =>
  Effect.gen(function* () {
    const seeds = [0, 1, 2].map((i) => ({ host: hostOf(i), port: 6881 }))
    const members: Array<Member> = []
    for (let i = 0; i < count; i++) {
      const host = hostOf(i)
      const id = idFor(`${seed}/${i}`)
      const dht = yield* startNode(board, host, { nodeId: id, bootstrap: seeds.filter((s) => s.host !== host) })
      members.push({ host, id, dht })
    }
    // Seeds first, then the others in waves, each wave finding the nodes of the earlier ones.
    yield* drive(Effect.all(members.slice(0, 3).map((m) => m.dht.bootstrap), { concurrency: "unbounded" }))
    for (let start = 3; start < count; start += 25) {
      yield* drive(Effect.all(members.slice(start, start + 25).map((m) => m.dht.bootstrap), { concurrency: "unbounded" }))
    }
    // One maintenance tick: nodes that joined while the network was too small to fill their table join again.
    yield* drive(Effect.sleep(Dht.MAINTENANCE_EVERY), { step: Dht.MAINTENANCE_EVERY })
    yield* drive(Effect.void)
    return members
  })

/** The `k` ids of `candidates` closest to `target`, as hex. */
const trueClosest = (target: NodeId.NodeId, candidates: ReadonlyArray<NodeId.NodeId>, k = K) =>
  [...candidates]
    .sort((a, b) => NodeId.compareDistance(target, a, b))
    .slice(0, k)
    .map(NodeId.toHex)

const overlap = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.filter((x) => b.includes(x)).length

/** Random lookups from random members: how many found exactly the true k closest, and the mean overlap with them. */
const lookups = (
  members: ReadonlyArray<Member>,
  findable: ReadonlyArray<NodeId.NodeId>,
  rounds: number
) =>
  Effect.gen(function* () {
    let exact = 0
    let total = 0
    for (let round = 0; round < rounds; round++) {
      const from = members[yield* Random.nextIntBetween(0, members.length)]!
      const target = idFor(`target/${round}/${yield* Random.nextInt}`)
      const found = (yield* drive(from.dht.findNode(target), { step: "1 second" })).map((node) => NodeId.toHex(node.id))
      const expected = trueClosest(target, findable.filter((id) => !NodeId.equals(id, from.id)))
      if (overlap(found, expected) === K && found.length === K) exact++
      total += overlap(found, expected)
      // Every node a lookup returns answered it: no invented or unknown ids.
      for (const hex of found) expect(findable.map(NodeId.toHex)).toContain(hex)
    }
    return { exact, meanOverlap: total / rounds }
  })

/** The member whose id is farthest from `target`. */
const farthest = (members: ReadonlyArray<Member>, target: NodeId.NodeId) =>
  [...members].sort((a, b) => NodeId.compareDistance(target, b.id, a.id))[0]!

/** Announces from one member and collects get_peers from the farthest one. */
const announceAndFind = (members: ReadonlyArray<Member>, announcer: Member, infoHash: InfoHash.InfoHash) =>
  Effect.gen(function* () {
    const announced = yield* drive(announcer.dht.announce(infoHash, 7000), { step: "1 second" })
    const seeker = farthest(members, NodeId.unsafeFromBytes(infoHash))
    const peers = Chunk.toReadonlyArray(yield* drive(Stream.runCollect(seeker.dht.getPeers(infoHash)), { step: "1 second" }))
    return { announced, peers }
  })

describe("Dht: a simulated network", () => {
  it.scoped("256 honest nodes: bootstrap, lookups converge on the true k closest, an announce is found from afar", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const members = yield* startSwarm(board, 256, "honest")
      const sizes = yield* Effect.forEach(members, (m) => Effect.map(m.dht.stats, (s) => s.nodes))
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(K)

      const { exact, meanOverlap } = yield* lookups(members, members.map((m) => m.id), 20)
      expect(exact).toBeGreaterThanOrEqual(19)
      expect(meanOverlap).toBeGreaterThanOrEqual(K - 0.1)

      const infoHash = InfoHash.unsafeFromBytes(sha1("a torrent"))
      const { announced, peers } = yield* announceAndFind(members, members[42]!, infoHash)
      expect(announced.announcedTo).toBeGreaterThanOrEqual(K - 1)
      expect(peers).toContainEqual({ host: members[42]!.host, port: 7000 })
      // Nobody timed out: every honest query got its answer.
      const timeouts = yield* Effect.forEach(members, (m) => Effect.map(m.dht.stats, (s) => s.timeouts))
      expect(timeouts.reduce((a, b) => a + b, 0)).toBe(0)
    }).pipe(Effect.withRandom(Random.make("honest"))), 120_000)
})

/** What a lying node does with a find_node or get_peers. */
type Lie = "garbage" | "impostor" | "misleader"

/**
 * A hostile node: answers pings truthfully (so it gets into routing tables), then lies to
 * find_node and get_peers: random bytes, answers under a random id, or invented nodes right
 * next to the target at addresses where nobody listens.
 */
const liar = (board: MemoryNetwork.Switchboard, host: string, id: NodeId.NodeId, lie: Lie, victims: ReadonlyArray<Network.Address>) =>
  Effect.gen(function* () {
    const raw = yield* rawNode(board, host, 6881)
    const answer = (datagram: Network.Datagram) =>
      Effect.gen(function* () {
        const decoded = Krpc.decode(datagram.bytes)
        if (Either.isLeft(decoded) || decoded.right._tag !== "Query") return
        const { query, transactionId } = decoded.right
        const reply = (response: Krpc.Response) => raw.send({ _tag: "Response", transactionId, response }, datagram.from)
        if (query._tag === "Ping" || query._tag === "AnnouncePeer") return yield* reply({ id })
        const target = query._tag === "FindNode" ? query.target : NodeId.unsafeFromBytes(query.infoHash)
        switch (lie) {
          case "garbage":
            return yield* raw.sendBytes(sha1(`${host}/${Buffer.from(transactionId).toString("hex")}`), datagram.from)
          case "impostor":
            return yield* reply({ id: idFor(`impostor/${Buffer.from(transactionId).toString("hex")}`) })
          case "misleader": {
            const invented = Array.from({ length: K }, (_, i) => {
              const near = Uint8Array.from(target)
              near[19] = near[19]! ^ (i + 1)
              return { id: NodeId.unsafeFromBytes(near), address: { host: `10.200.${i}.${near[18]}`, port: 6881 } }
            })
            return yield* reply({ id, nodes: invented, token: sha1("fake token").subarray(0, 8) })
          }
        }
      })
    yield* Effect.forkScoped(Stream.runForEach(raw.socket.datagrams, answer))
    // Query everyone once: each node that has room pings back, and the truthful ping answer gets the liar in.
    for (const victim of victims) yield* raw.send({ _tag: "Query", transactionId: Uint8Array.of(1), query: { _tag: "Ping", id } }, victim)
  })

describe("Dht: silent and lying nodes", () => {
  it.scoped("lookups and announces still converge with 10% silent nodes and 10% liars", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const members = yield* startSwarm(board, 160, "hostile")
      const addresses = members.map((m) => ({ host: m.host, port: 6881 }))
      const lies: ReadonlyArray<Lie> = ["garbage", "impostor", "misleader"]
      const liars = Array.from({ length: 18 }, (_, i) => ({ host: `10.100.${i}.7`, id: idFor(`liar/${i}`), lie: lies[i % 3]! }))
      for (const l of liars) yield* liar(board, l.host, l.id, l.lie, addresses)
      yield* drive(Effect.void)
      const inTables = yield* Effect.forEach(members, (m) => m.dht.routingTable)
      const liarHosts = new Set(liars.map((l) => l.host))
      expect(inTables.flatMap((t) => t.nodes).filter((n) => liarHosts.has(n.host)).length).toBeGreaterThan(160)

      // A tenth of the honest nodes (not the seeds) go silent: every datagram to them is dropped.
      const silent = members.slice(3).filter((_, i) => i % 10 === 5)
      for (const m of silent) yield* board.setLink({ to: m.host }, { blackhole: true })
      const live = members.filter((m) => !silent.includes(m))

      // Misleaders answer find_node under their own id, so they are legitimately findable; the others are not.
      const findable = [...live.map((m) => m.id), ...liars.filter((l) => l.lie === "misleader").map((l) => l.id)]
      const { exact, meanOverlap } = yield* lookups(live, findable, 12)
      expect(exact).toBeGreaterThanOrEqual(10)
      expect(meanOverlap).toBeGreaterThanOrEqual(K - 1)

      const infoHash = InfoHash.unsafeFromBytes(sha1("another torrent"))
      const { announced, peers } = yield* announceAndFind(live, live[17]!, infoHash)
      expect(announced.announcedTo).toBeGreaterThanOrEqual(K / 2)
      expect(peers).toContainEqual({ host: live[17]!.host, port: 7000 })
    }).pipe(Effect.withRandom(Random.make("hostile"))), 120_000)
})
