import { Dht, InfoHash, Krpc, NodeId } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import { idOf, rawNode, type RawNode, settle, startNode } from "./support.js"

const NODE = "10.0.0.1"
const NODE_ADDRESS = { host: NODE, port: 6881 }
const OWN_ID = idOf(0x10)
const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))
const infoHash = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(0xab))

/** A node at 10.0.0.1 with a fixed id, on a fresh switchboard. */
const setup = (options?: Omit<Dht.Options, "address">) =>
  Effect.gen(function* () {
    const board = yield* MemoryNetwork.make()
    const dht = yield* startNode(board, NODE, { nodeId: OWN_ID, ...options })
    return { board, dht }
  })

const responseOf = (message: Krpc.Message): Krpc.Response => {
  if (message._tag !== "Response") throw new Error(`expected a response, got ${JSON.stringify(message)}`)
  return message.response
}

/** Sends a query from a raw node to the DHT node and returns the reply (skipping the node's pings of a stranger). */
const ask = (raw: RawNode, query: Krpc.Query, transactionId = bytes("tx")) =>
  Effect.gen(function* () {
    yield* raw.send({ _tag: "Query", transactionId, query }, NODE_ADDRESS)
    for (let datagrams = 0; datagrams < 3; datagrams++) {
      const { from, message } = yield* raw.receive
      expect(from).toEqual(NODE_ADDRESS)
      if (message._tag === "Query") continue
      expect(message.transactionId).toEqual(transactionId)
      return message
    }
    throw new Error("no reply among the datagrams")
  })

/** Lets the DHT node ping a raw node, which answers as `id`: the node then enters its table. */
const introduce = (dht: Dht.Dht, raw: RawNode, id: NodeId.NodeId) =>
  Effect.gen(function* () {
    const added = yield* Effect.fork(dht.addNode(raw.address))
    const { from, message } = yield* raw.receive
    expect(message._tag === "Query" && message.query).toEqual({ _tag: "Ping", id: OWN_ID })
    yield* raw.send({ _tag: "Response", transactionId: message.transactionId, response: { id } }, from)
    expect(yield* Fiber.join(added)).toBe(true)
  })

const getPeers = (id: NodeId.NodeId): Krpc.Query => ({ _tag: "GetPeers", id, infoHash })
const announce = (id: NodeId.NodeId, token: Uint8Array, port = 7777): Krpc.Query => ({
  _tag: "AnnouncePeer",
  id,
  infoHash,
  port,
  token,
  impliedPort: false
})

describe("Dht: answering queries (BEP 5 server side)", () => {
  it.scoped("answers ping with its id, echoing the transaction id", () =>
    Effect.gen(function* () {
      const { board } = yield* setup()
      const peer = yield* rawNode(board, "10.0.0.2")
      const reply = yield* ask(peer, { _tag: "Ping", id: idOf(0x20) }, bytes("p1"))
      expect(responseOf(reply)).toEqual({ id: OWN_ID })
    }))

  it.scoped("answers find_node with the nodes of its table in compact form, leaving out the asker", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const known = yield* rawNode(board, "10.0.0.3")
      yield* introduce(dht, known, idOf(0x30))
      const peer = yield* rawNode(board, "10.0.0.2")
      yield* introduce(dht, peer, idOf(0x20))
      const reply = yield* ask(peer, { _tag: "FindNode", id: idOf(0x20), target: idOf(0x21) })
      expect(responseOf(reply)).toEqual({ id: OWN_ID, nodes: [{ id: idOf(0x30), address: known.address }] })
      expect((yield* dht.stats).nodes).toBe(2)
    }))

  it.scoped("gives a token with get_peers, stores an announce carrying it, and serves the peer as values", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const announcer = yield* rawNode(board, "10.0.0.2", 40000)
      const first = responseOf(yield* ask(announcer, getPeers(idOf(0x20))))
      expect(first.token).toBeDefined()
      expect(first.values).toBeUndefined()
      expect(first.nodes).toEqual([])
      expect(responseOf(yield* ask(announcer, announce(idOf(0x20), first.token!)))).toEqual({ id: OWN_ID })
      // implied_port: the source port of the datagram is stored instead of `port`.
      const implied = { ...announce(idOf(0x20), first.token!, 1), impliedPort: true } as Krpc.Query
      yield* ask(announcer, implied)
      const other = yield* rawNode(board, "10.0.0.9")
      const later = responseOf(yield* ask(other, getPeers(idOf(0x90))))
      expect(later.values).toEqual([{ host: "10.0.0.2", port: 40000 }, { host: "10.0.0.2", port: 7777 }])
      expect(later.nodes).toBeUndefined()
      expect((yield* dht.stats).storedPeers).toBe(2)
    }))

  it.scoped("rejects an announce with a token issued to another IP, or invented, and stores nothing", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const victim = yield* rawNode(board, "10.0.0.2")
      const forger = yield* rawNode(board, "10.0.0.66")
      const token = responseOf(yield* ask(victim, getPeers(idOf(0x20)))).token!
      for (const forged of [token, bytes("aoeusnth"), new Uint8Array(0)]) {
        const reply = yield* ask(forger, announce(idOf(0x66), forged))
        expect(reply).toMatchObject({ _tag: "Error", code: Krpc.ErrorCode.Protocol })
      }
      expect((yield* dht.stats).storedPeers).toBe(0)
    }))

  it.scoped("accepts a token for one secret rotation (5 minutes) and refuses it after two", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const peer = yield* rawNode(board, "10.0.0.2")
      const token = responseOf(yield* ask(peer, getPeers(idOf(0x20)))).token!
      yield* TestClock.adjust("5 minutes")
      yield* settle
      expect((yield* ask(peer, announce(idOf(0x20), token)))._tag).toBe("Response")
      yield* TestClock.adjust("5 minutes")
      yield* settle
      expect(yield* ask(peer, announce(idOf(0x20), token))).toMatchObject({ _tag: "Error", code: Krpc.ErrorCode.Protocol })
      expect((yield* dht.stats).storedPeers).toBe(1)
    }))

  it.scoped("expires a stored peer after the TTL, and bounds peers per info-hash keeping the latest", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup({ maxPeersPerInfoHash: 2, peerTtl: "10 minutes" })
      for (const host of ["10.0.1.1", "10.0.1.2", "10.0.1.3"]) {
        const peer = yield* rawNode(board, host)
        const token = responseOf(yield* ask(peer, getPeers(idOf(0x20)))).token!
        yield* ask(peer, announce(idOf(0x20), token))
      }
      const reader = yield* rawNode(board, "10.0.0.9")
      const values = responseOf(yield* ask(reader, getPeers(idOf(0x90)))).values
      expect(values).toEqual([{ host: "10.0.1.3", port: 7777 }, { host: "10.0.1.2", port: 7777 }])
      yield* TestClock.adjust("10 minutes")
      yield* settle
      expect(responseOf(yield* ask(reader, getPeers(idOf(0x90)))).values).toBeUndefined()
      expect((yield* dht.stats).storedPeers).toBe(0)
    }))

  it.scoped("answers an unknown method with error 204 and a malformed query with 203", () =>
    Effect.gen(function* () {
      const { board } = yield* setup()
      const peer = yield* rawNode(board, "10.0.0.2")
      yield* peer.sendBytes(bytes("d1:ad2:id20:abcdefghij0123456789e1:q8:put_data1:t2:u11:y1:qe"), NODE_ADDRESS)
      expect((yield* peer.receive).message).toMatchObject({ _tag: "Error", code: 204, transactionId: bytes("u1") })
      yield* peer.sendBytes(bytes("d1:ad2:id3:abce1:q4:ping1:t2:u21:y1:qe"), NODE_ADDRESS)
      expect((yield* peer.receive).message).toMatchObject({ _tag: "Error", code: 203, transactionId: bytes("u2") })
      // Garbage and stray answers get nothing back.
      yield* peer.sendBytes(bytes("not bencode at all"), NODE_ADDRESS)
      yield* peer.send({ _tag: "Response", transactionId: bytes("zz"), response: { id: idOf(0x20) } }, NODE_ADDRESS)
      yield* peer.expectSilence
    }))

  it.scoped("drops queries from one IP beyond the per-second limit", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup({ maxQueriesPerSecond: 5 })
      const peer = yield* rawNode(board, "10.0.0.2")
      for (let i = 0; i < 8; i++) {
        yield* peer.send({ _tag: "Query", transactionId: Uint8Array.of(i), query: { _tag: "Ping", id: idOf(0x20) }, readOnly: true }, NODE_ADDRESS)
      }
      for (let i = 0; i < 5; i++) expect((yield* peer.receive).message.transactionId).toEqual(Uint8Array.of(i))
      yield* peer.expectSilence
      expect((yield* dht.stats).dropped).toBe(3)
      // Another IP is not affected, and the next second the budget is back.
      const other = yield* rawNode(board, "10.0.0.3")
      expect((yield* ask(other, { _tag: "Ping", id: idOf(0x30) }))._tag).toBe("Response")
      yield* TestClock.adjust("1 second")
      expect((yield* ask(peer, { _tag: "Ping", id: idOf(0x20) }))._tag).toBe("Response")
    }))

  it.scoped("pings a stranger that queried it and adds it once it answers; a read-only one is left alone", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const stranger = yield* rawNode(board, "10.0.0.2")
      yield* stranger.send({ _tag: "Query", transactionId: bytes("q1"), query: { _tag: "Ping", id: idOf(0x20) } }, NODE_ADDRESS)
      const first = yield* stranger.receive
      const second = yield* stranger.receive
      const [reply, ping] = first.message._tag === "Response" ? [first, second] : [second, first]
      expect(reply.message._tag).toBe("Response")
      expect(ping.message._tag === "Query" && ping.message.query._tag).toBe("Ping")
      yield* stranger.send({ _tag: "Response", transactionId: ping.message.transactionId, response: { id: idOf(0x20) } }, NODE_ADDRESS)
      yield* settle
      expect((yield* dht.routingTable).nodes).toEqual([{ id: NodeId.toHex(idOf(0x20)), host: "10.0.0.2", port: 7000 }])

      const reader = yield* rawNode(board, "10.0.0.3")
      yield* reader.send({ _tag: "Query", transactionId: bytes("q2"), query: { _tag: "Ping", id: idOf(0x30) }, readOnly: true }, NODE_ADDRESS)
      expect((yield* reader.receive).message._tag).toBe("Response")
      yield* reader.expectSilence
    }))
})

describe("Dht: its own queries", () => {
  it.scoped("ignores an answer from an address the query did not go to", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const target = yield* rawNode(board, "10.0.0.2")
      const spoofer = yield* rawNode(board, "10.0.0.66")
      const added = yield* Effect.fork(dht.addNode(target.address))
      const { message } = yield* target.receive
      yield* spoofer.send({ _tag: "Response", transactionId: message.transactionId, response: { id: idOf(0x66) } }, NODE_ADDRESS)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(added))).toBe(true)
      yield* target.send({ _tag: "Response", transactionId: message.transactionId, response: { id: idOf(0x20) } }, NODE_ADDRESS)
      expect(yield* Fiber.join(added)).toBe(true)
      expect((yield* dht.routingTable).nodes.map((node) => node.host)).toEqual(["10.0.0.2"])
    }))

  it.scoped("gives up on a silent node after the query timeout", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup({ queryTimeout: "2 seconds" })
      const silent = yield* rawNode(board, "10.0.0.2")
      const added = yield* Effect.fork(dht.addNode(silent.address))
      yield* silent.receive
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(added))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(added)).toBe(false)
      expect((yield* dht.stats).timeouts).toBe(1)
    }))

  it.scoped("fails a query at once on a malformed answer to it", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const liar = yield* rawNode(board, "10.0.0.2")
      const added = yield* Effect.fork(dht.addNode(liar.address))
      const { message } = yield* liar.receive
      const t = Buffer.from(message.transactionId).toString("latin1")
      yield* liar.sendBytes(bytes(`d1:rd2:id3:abce1:t${t.length}:${t}1:y1:re`), NODE_ADDRESS)
      yield* settle
      expect(yield* Fiber.join(added)).toBe(false)
    }))

  it.scoped("keeps at most maxOutstanding queries in flight", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup({ maxOutstanding: 2 })
      const silent = yield* Effect.all([1, 2, 3].map((i) => rawNode(board, `10.0.0.${i + 1}`)))
      const fibers = yield* Effect.all(silent.map((raw) => Effect.fork(dht.addNode(raw.address))))
      yield* settle
      expect((yield* dht.stats).outstanding).toBe(2)
      yield* silent[0]!.receive
      yield* silent[1]!.receive
      yield* silent[2]!.expectSilence
      yield* TestClock.adjust("2 seconds")
      yield* silent[2]!.receive
      yield* TestClock.adjust("2 seconds")
      for (const fiber of fibers) expect(yield* Fiber.join(fiber)).toBe(false)
    }))

  it.scoped("persists its table and id; a node made from them knows the same nodes", () =>
    Effect.gen(function* () {
      const { board, dht } = yield* setup()
      const known = yield* rawNode(board, "10.0.0.3")
      yield* introduce(dht, known, idOf(0x30))
      const saved = JSON.parse(JSON.stringify(yield* dht.routingTable))
      const reborn = yield* startNode(board, "10.0.0.50", { routingTable: saved })
      expect(NodeId.toHex(reborn.nodeId)).toBe(NodeId.toHex(OWN_ID))
      expect((yield* reborn.stats).nodes).toBe(1)
      expect((yield* reborn.routingTable).nodes).toEqual(saved.nodes)
    }))

  it.scoped("drops persisted nodes it could never answer with: names and the other address family", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const node = (host: string, byte: number) => ({ id: NodeId.toHex(idOf(byte)), host, port: 6881 })
      const saved = { id: NodeId.toHex(OWN_ID), nodes: [node("10.0.0.3", 0x30), node("router.example", 0x31), node("fd00::3", 0x32)] }
      const dht = yield* startNode(board, NODE, { routingTable: saved })
      expect((yield* dht.routingTable).nodes).toEqual([node("10.0.0.3", 0x30)])
      const peer = yield* rawNode(board, "10.0.0.2")
      const reply = yield* ask(peer, { _tag: "FindNode", id: idOf(0x20), target: idOf(0x31) }, bytes("f1"))
      expect(responseOf(reply).nodes).toEqual([{ id: idOf(0x30), address: { host: "10.0.0.3", port: 6881 } }])
    }))

  it.scoped("on an IPv6 address it speaks BEP 32: nodes6 in its answers", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const dht = yield* startNode(board, "fd00::1", { nodeId: OWN_ID })
      const known = yield* rawNode(board, "fd00::3")
      const added = yield* Effect.fork(dht.addNode(known.address))
      const ping = yield* known.receive
      yield* known.send({ _tag: "Response", transactionId: ping.message.transactionId, response: { id: idOf(0x30) } }, ping.from)
      expect(yield* Fiber.join(added)).toBe(true)
      const peer = yield* rawNode(board, "fd00::2")
      yield* peer.send({ _tag: "Query", transactionId: bytes("f6"), query: { _tag: "FindNode", id: idOf(0x20), target: idOf(0x31) }, readOnly: true }, dht.address)
      const { message } = yield* peer.receive
      expect(responseOf(message)).toEqual({ id: OWN_ID, nodes6: [{ id: idOf(0x30), address: { host: "fd00::3", port: 7000 } }] })
    }))
})
