/**
 * A DHT node (BEP 5) as an actor: it owns one UDP socket, its routing table, its announce
 * tokens and the peers announced to it, and lives in the scope it was made in.
 *
 * - A receive fiber reads every datagram: queries are answered at once (ping, find_node,
 *   get_peers with a token, announce_peer with the token checked), answers complete the pending
 *   transaction with the same `t` *and* the address it was sent to; anything else is dropped.
 * - Lookups (`findNode`, `getPeers`, `announce`, `bootstrap`) run in the caller's fiber: an
 *   iterative traversal with at most `concurrency` queries in flight, converging on the k nodes
 *   closest to the target. Every query has a timeout; queries in flight over all lookups are
 *   capped by `maxOutstanding`.
 * - A maintenance fiber refreshes buckets unchanged for 15 minutes, bootstraps again while the
 *   table has fewer than k nodes, and expires stored peers; another replaces the token secret
 *   every 5 minutes.
 *
 * The mutable state (table, store, transactions) is touched only in synchronous steps between
 * effects, so the fibers never see it half-updated. All waiting is on Effect's Clock.
 */
import { Clock, Data, Deferred, Duration, Effect, Either, Exit, FiberId, FiberSet, Mailbox, Option, Queue, Random, type Scope, Stream } from "effect"
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import type * as InfoHash from "../metainfo/InfoHash.js"
import { type Address, formatAddress, Network, type NetworkError } from "../net/Network.js"
import * as Krpc from "./Krpc.js"
import * as Lookup from "./Lookup.js"
import * as NodeId from "./NodeId.js"
import { PeerStore } from "./PeerStore.js"
import * as RoutingTable from "./RoutingTable.js"
import * as Tokens from "./Tokens.js"

/** Node settings; only `address` is required. */
export interface Options {
  /**
   * Where to bind the UDP socket (port 0 = any free port). Its family is the DHT's: an IPv4
   * address (or 0.0.0.0) joins the IPv4 DHT, an IPv6 one the IPv6 DHT (BEP 32's `nodes6`).
   */
  readonly address: Address
  /** Our node id; default: the persisted table's, else random. */
  readonly nodeId?: NodeId.NodeId
  /** Nodes to start from while the table has fewer than k nodes. None by default: no public node is ever contacted unless given. */
  readonly bootstrap?: ReadonlyArray<Address>
  /** A table persisted by an earlier run (`Dht.routingTable`); its nodes come back questionable. */
  readonly routingTable?: RoutingTable.Serialized
  /** Queries in flight per lookup (Kademlia's alpha, default 3). */
  readonly concurrency?: number
  /** How long to wait for an answer (default 2 s). */
  readonly queryTimeout?: Duration.DurationInput
  /** Queries in flight over all lookups (default 256, at most 4,096). */
  readonly maxOutstanding?: number
  /** Peers stored per info-hash (default 100). */
  readonly maxPeersPerInfoHash?: number
  /** Peers stored over all info-hashes (default 10,000). */
  readonly maxStoredPeers?: number
  /** How long an announced peer is kept (default 30 min). */
  readonly peerTtl?: Duration.DurationInput
  /** Queries answered per second from one IP; more are dropped (default 50). */
  readonly maxQueriesPerSecond?: number
  /** Distinct peers one get_peers lookup collects at most (default 1,000). */
  readonly maxPeersPerLookup?: number
}

/** What an `announce` did. */
export interface AnnounceResult {
  /** Peers of the info-hash found on the way. */
  readonly peers: ReadonlyArray<Address>
  /** Nodes that accepted our announce_peer. */
  readonly announcedTo: number
}

/** Counters for a status display. */
export interface Stats {
  /** Nodes in the routing table. */
  readonly nodes: number
  /** Of which good (answered or queried us within 15 minutes). */
  readonly goodNodes: number
  /** Buckets of the routing table (more as our own bucket splits). */
  readonly buckets: number
  /** Peers announced to us and still stored. */
  readonly storedPeers: number
  /** Info-hashes with stored peers. */
  readonly storedInfoHashes: number
  /** Our queries waiting for an answer now. */
  readonly outstanding: number
  /** Queries we sent, pings included. */
  readonly queriesSent: number
  /** Valid answers to them. */
  readonly answersReceived: number
  /** Queries of ours that got no answer in time. */
  readonly timeouts: number
  /** Queries from other nodes that we answered. */
  readonly queriesReceived: number
  /** Datagrams dropped: malformed, over the rate limit, or answers nobody waited for. */
  readonly dropped: number
}

/** A running DHT node. */
export interface Dht {
  /** Our node id. */
  readonly nodeId: NodeId.NodeId
  /** The bound UDP address. */
  readonly address: Address
  /** Looks up our own id (from the table, else the bootstrap nodes), which fills our bucket and announces us to our neighbours; returns the table size. */
  readonly bootstrap: Effect.Effect<number>
  /** The k nodes closest to `target` that answered (closest first). */
  readonly findNode: (target: NodeId.NodeId) => Effect.Effect<ReadonlyArray<Krpc.NodeInfo>>
  /** Peers of an info-hash, each once, as the lookup finds them; ends when the lookup converges. */
  readonly getPeers: (infoHash: InfoHash.InfoHash) => Stream.Stream<Address>
  /**
   * Looks up the info-hash and announces `port` (our TCP listen port) to the k closest nodes
   * that gave a token; `impliedPort` asks them to use our UDP source port instead. Re-announce
   * every 15 minutes or so to stay stored.
   */
  readonly announce: (
    infoHash: InfoHash.InfoHash,
    port: number,
    options?: { readonly impliedPort?: boolean }
  ) => Effect.Effect<AnnounceResult>
  /** Pings a node (e.g. from a peer's BEP 5 `port` message); true when it answered (it is then in the table if its bucket had room). */
  readonly addNode: (address: Address) => Effect.Effect<boolean>
  /** The routing table in its persisted form, to save and pass back as `Options.routingTable`. */
  readonly routingTable: Effect.Effect<RoutingTable.Serialized>
  /** Current counters. */
  readonly stats: Effect.Effect<Stats>
}

/** Default `Options.concurrency`. */
export const DEFAULT_CONCURRENCY = 3
/** Default `Options.queryTimeout`. */
export const DEFAULT_QUERY_TIMEOUT = Duration.seconds(2)
/** Default `Options.maxOutstanding`. */
export const DEFAULT_MAX_OUTSTANDING = 256
/** Default `Options.maxQueriesPerSecond`. */
export const DEFAULT_MAX_QUERIES_PER_SECOND = 50
/** Default `Options.maxPeersPerLookup`. */
export const DEFAULT_MAX_PEERS_PER_LOOKUP = 1000
/** How often buckets are checked for a refresh and stored peers for expiry. */
export const MAINTENANCE_EVERY = Duration.minutes(1)

// Peers put in one get_peers answer: 50 IPv6 values still fit a 1,500-byte datagram.
const MAX_VALUES = 50
// Peers a getPeers stream buffers ahead of its consumer; a slow consumer slows the lookup down.
const PEER_BUFFER = 256
// Nodes taken from one answer: honest nodes send k; more would only let a liar flood the shortlist.
const MAX_NODES_PER_ANSWER = 2 * RoutingTable.K
// Upper bound of Options.maxOutstanding: far below the 65,536 two-byte transaction ids.
const MAX_OUTSTANDING = 4096
// Nodes of our table a lookup starts from.
const LOOKUP_SEEDS = 4 * RoutingTable.K
// Pings to strangers and questionable nodes running at once.
const MAX_BACKGROUND_PINGS = 32
// Distinct IPs counted by the rate limiter in one second; beyond that, new IPs are dropped.
const MAX_RATE_ENTRIES = 4096

/** Why one of our queries got no usable answer (internal: lookups go on without it). */
class QueryError extends Data.TaggedError("QueryError")<{
  readonly reason: "Timeout" | "Send" | "Encode" | "Malformed" | "Remote" | "WrongId"
}> {}

/** What completes a query: the response or error with its transaction id, and who sent it. */
interface Answer {
  readonly message: Exclude<Krpc.Message, { readonly _tag: "Query" }>
  readonly from: Address
}

interface Pending {
  /** Whether a datagram from this address may answer the query. */
  readonly accepts: (from: Address) => boolean
  readonly deferred: Deferred.Deferred<Answer, QueryError>
  /** When it times out (ms); every query gets the same timeout, so the map is in deadline order. */
  readonly deadline: number
}

/** Strips the IPv4-mapped prefix a dual-stack socket reports. */
const unmapped = (address: Address): Address =>
  address.host.startsWith("::ffff:") && Net.isIPv4(address.host.slice(7)) ? { host: address.host.slice(7), port: address.port } : address

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")

/** Binds the socket and starts the node's fibers in the current scope. */
export const make = (options: Options): Effect.Effect<Dht, NetworkError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const socket = yield* network.udp(options.address)
    const ipv6 = Net.isIPv6(socket.address.host)
    /** Whether an address is one we can reach and put in compact node info: an IP literal of our family. */
    const usable = (address: Address): boolean =>
      address.port > 0 && address.port <= 0xffff && Net.isIP(address.host) === (ipv6 ? 6 : 4)
    const start = yield* Clock.currentTimeMillis

    // A persisted node of the other address family (or not an IP) could never be put in an answer.
    const persisted = options.routingTable === undefined ? undefined : {
      ...options.routingTable,
      nodes: options.routingTable.nodes.filter((node) => usable({ host: node.host, port: node.port }))
    }
    const restored = persisted === undefined
      ? undefined
      : RoutingTable.restore(persisted, start, options.nodeId === undefined ? undefined : { ownId: options.nodeId })
    if (restored !== undefined && Either.isLeft(restored)) {
      yield* Effect.logWarning(`DHT: ignoring the persisted routing table: ${restored.left.message}`)
    }
    const table = restored !== undefined && Either.isRight(restored)
      ? restored.right
      : RoutingTable.make(options.nodeId ?? (yield* NodeId.random), start)
    const ownId = table.ownId
    const bootstrapNodes = (options.bootstrap ?? []).map(unmapped)
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY)
    const queryTimeoutMillis = Duration.toMillis(Duration.decode(options.queryTimeout ?? DEFAULT_QUERY_TIMEOUT))
    const maxOutstanding = Math.min(MAX_OUTSTANDING, Math.max(1, options.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING))
    const maxQueriesPerSecond = options.maxQueriesPerSecond ?? DEFAULT_MAX_QUERIES_PER_SECOND
    const maxPeersPerLookup = options.maxPeersPerLookup ?? DEFAULT_MAX_PEERS_PER_LOOKUP
    const store = new PeerStore({
      ...(options.maxPeersPerInfoHash === undefined ? {} : { maxPerInfoHash: options.maxPeersPerInfoHash }),
      ...(options.maxStoredPeers === undefined ? {} : { maxPeers: options.maxStoredPeers }),
      ...(options.peerTtl === undefined ? {} : { ttlMillis: Duration.toMillis(Duration.decode(options.peerTtl)) })
    })
    const newSecret = Effect.sync(() => Uint8Array.from(randomBytes(Tokens.SECRET_LENGTH)))
    let secrets = Tokens.make(yield* newSecret)
    const pending = new Map<string, Pending>()
    // The timer fiber's wake-up while no query is pending.
    let idle: Deferred.Deferred<void> | undefined
    const pinging = new Set<string>()
    const rate = { second: -1, counts: new Map<string, number>() }
    const counters = { queriesSent: 0, answersReceived: 0, timeouts: 0, queriesReceived: 0, dropped: 0 }
    const outstanding = yield* Effect.makeSemaphore(maxOutstanding)
    const background = yield* FiberSet.make()

    const nodesField = (nodes: ReadonlyArray<Krpc.NodeInfo>): Pick<Krpc.Response, "nodes" | "nodes6"> =>
      ipv6 ? { nodes6: nodes } : { nodes }

    const send = (message: Krpc.Message, to: Address): Effect.Effect<void, QueryError> =>
      Either.match(Krpc.encode(message), {
        onLeft: (error) =>
          Effect.zipRight(Effect.logDebug(`DHT: cannot encode a message: ${error.message}`), new QueryError({ reason: "Encode" })),
        onRight: (bytes) => Effect.mapError(socket.send(bytes, to), () => new QueryError({ reason: "Send" }))
      })

    // Transaction ids: 2 bytes, as most clients send, counting up from a random start.
    let nextTransaction = yield* Random.nextIntBetween(0, 0x10000)
    const freeTransactionId = (): Uint8Array => {
      // At most maxOutstanding (< 65536) ids are in use, so a free one is found within that many steps.
      for (;;) {
        const t = Uint8Array.of(nextTransaction >>> 8, nextTransaction & 0xff)
        nextTransaction = (nextTransaction + 1) & 0xffff
        if (!pending.has(hex(t))) return t
      }
    }

    /**
     * Sends one query and waits for the answer with its transaction id from `to`. A node given
     * by name (a bootstrap router) answers from an address we never resolved: only its port is
     * checked then.
     */
    const transact = (to: Address, query: Krpc.Query): Effect.Effect<Answer, QueryError> =>
      outstanding.withPermits(1)(
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const t = freeTransactionId()
          const key = hex(t)
          const deferred = Deferred.unsafeMake<Answer, QueryError>(FiberId.none)
          const expected = formatAddress(to)
          const accepts = Net.isIP(to.host) === 0
            ? (from: Address) => from.port === to.port
            : (from: Address) => formatAddress(from) === expected
          pending.set(key, { accepts, deferred, deadline: now + queryTimeoutMillis })
          if (idle !== undefined) Deferred.unsafeDone(idle, Exit.void)
          idle = undefined
          counters.queriesSent++
          return send({ _tag: "Query", transactionId: t, query }, to).pipe(
            Effect.zipRight(Deferred.await(deferred)),
            // The timer or the answer may have removed it already; never remove a successor's entry.
            Effect.ensuring(Effect.sync(() => pending.get(key)?.deferred === deferred && pending.delete(key)))
          )
        })
      )

    /**
     * Queries a node and checks the answer: a response with the id we expected (when we knew
     * one), not ours. A node that answers enters or refreshes the table; one that stays silent,
     * answers garbage or answers as someone else counts a failure there.
     */
    const ask = (to: Address, query: Krpc.Query, expected: NodeId.NodeId | undefined): Effect.Effect<Krpc.Response, QueryError> =>
      Effect.flatMap(Effect.either(transact(to, query)), (result) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (Either.isRight(result) && result.right.message._tag === "Response") {
            const { from, message: { response } } = result.right
            if (!NodeId.equals(response.id, ownId) && (expected === undefined || NodeId.equals(response.id, expected))) {
              counters.answersReceived++
              const insertion = usable(from) ? table.responded({ id: response.id, address: from }, now) : undefined
              return insertion?._tag === "Waiting" && insertion.ping !== undefined
                ? Effect.as(checkAlive(insertion.ping), response)
                : Effect.succeed(response)
            }
          }
          const error = Either.isLeft(result)
            ? result.left
            : new QueryError({ reason: result.right.message._tag === "Error" ? "Remote" : "WrongId" })
          if (error.reason === "Timeout") counters.timeouts++
          // A node that answers with a KRPC error is alive; anything else counts against it.
          if (expected !== undefined && error.reason !== "Remote") table.failed(expected, now)
          return Effect.fail(error)
        }))

    /** Runs a ping in the background, at most one per address and `MAX_BACKGROUND_PINGS` in all. */
    const pingInBackground = (address: Address, ping: Effect.Effect<unknown, QueryError>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const key = formatAddress(address)
        if (pinging.has(key) || pinging.size >= MAX_BACKGROUND_PINGS) return Effect.void
        pinging.add(key)
        return Effect.asVoid(
          FiberSet.run(background, ping.pipe(Effect.ignore, Effect.ensuring(Effect.sync(() => pinging.delete(key)))))
        )
      })

    /** Pings a questionable node until it answers or has failed often enough to be bad (and replaced). */
    const checkAlive = (node: Krpc.NodeInfo): Effect.Effect<void> =>
      pingInBackground(
        node.address,
        Effect.retry(ask(node.address, { _tag: "Ping", id: ownId }, node.id), { times: RoutingTable.BAD_AFTER_FAILURES - 1 })
      )

    /** Whether a query from this IP is within the per-second budget. */
    const withinRate = (host: string, now: number): boolean => {
      const second = Math.floor(now / 1000)
      if (second !== rate.second) {
        rate.second = second
        rate.counts.clear()
      }
      const count = rate.counts.get(host)
      if (count === undefined && rate.counts.size >= MAX_RATE_ENTRIES) return false
      rate.counts.set(host, (count ?? 0) + 1)
      return (count ?? 0) < maxQueriesPerSecond
    }

    const reply = (to: Address, transactionId: Uint8Array, response: Krpc.Response) =>
      Effect.ignore(send({ _tag: "Response", transactionId, response }, to))

    const replyError = (to: Address, transactionId: Uint8Array, code: number, message: string) =>
      Effect.ignore(send({ _tag: "Error", transactionId, code, message }, to))

    /** Answers a query (BEP 5's server side). */
    const answer = (
      from: Address,
      message: Extract<Krpc.Message, { _tag: "Query" }>,
      now: number
    ): Effect.Effect<void> => {
      const { query, transactionId: t } = message
      if (NodeId.equals(query.id, ownId)) return Effect.void
      const known = table.get(query.id)
      const introduce = known !== undefined && formatAddress(known.address) === formatAddress(from)
        ? Effect.sync(() => table.queried(query.id, now))
        : message.readOnly !== true && usable(from) && table.wouldAccept(query.id, now)
        ? pingInBackground(from, ask(from, { _tag: "Ping", id: ownId }, query.id))
        : Effect.void
      // The k closest we know, leaving out the asker: it knows itself.
      const closest = (target: NodeId.NodeId) =>
        nodesField(table.closest(target, RoutingTable.K + 1, now).filter((node) => !NodeId.equals(node.id, query.id)).slice(0, RoutingTable.K))
      const respond = (): Effect.Effect<void> => {
        switch (query._tag) {
          case "Ping":
            return reply(from, t, { id: ownId })
          case "FindNode":
            return reply(from, t, { id: ownId, ...closest(query.target) })
          case "GetPeers": {
            const token = Tokens.issue(secrets, from.host)
            const values = store.get(query.infoHash, now, MAX_VALUES)
            return values.length > 0
              ? reply(from, t, { id: ownId, token, values })
              : reply(from, t, { id: ownId, token, ...closest(NodeId.unsafeFromBytes(query.infoHash)) })
          }
          case "AnnouncePeer": {
            if (!Tokens.verify(secrets, from.host, query.token)) return replyError(from, t, Krpc.ErrorCode.Protocol, "bad token")
            store.add(query.infoHash, { host: from.host, port: query.impliedPort ? from.port : query.port }, now)
            return reply(from, t, { id: ownId })
          }
        }
      }
      return Effect.zipRight(introduce, respond())
    }

    /** Handles one datagram. */
    const receive = (datagram: { readonly bytes: Uint8Array; readonly from: Address }): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const from = unmapped(datagram.from)
        const decoded = Krpc.decode(datagram.bytes)
        if (Either.isLeft(decoded)) {
          const { kind, reason, transactionId } = decoded.left
          if (transactionId !== undefined && kind === "q" && withinRate(from.host, now)) {
            counters.queriesReceived++
            const code = reason === "UnknownMethod" ? Krpc.ErrorCode.MethodUnknown : Krpc.ErrorCode.Protocol
            return replyError(from, transactionId, code, decoded.left.message)
          }
          const waiting = transactionId === undefined ? undefined : pending.get(hex(transactionId))
          counters.dropped++
          return waiting !== undefined && waiting.accepts(from)
            ? Deferred.fail(waiting.deferred, new QueryError({ reason: "Malformed" }))
            : Effect.void
        }
        const message = decoded.right
        if (message._tag === "Query") {
          if (!withinRate(from.host, now)) {
            counters.dropped++
            return Effect.void
          }
          counters.queriesReceived++
          return answer(from, message, now)
        }
        const waiting = pending.get(hex(message.transactionId))
        // An answer from anywhere but where the query went is ignored: the query stays pending.
        if (waiting === undefined || !waiting.accepts(from)) {
          counters.dropped++
          return Effect.void
        }
        pending.delete(hex(message.transactionId))
        return Deferred.succeed(waiting.deferred, { message, from })
      })

    /**
     * One iterative lookup of `target`: find_node, or get_peers passing each answer's new peers
     * to `onPeers`. Returns the k closest nodes that answered, with their tokens.
     */
    const lookup = (
      target: NodeId.NodeId,
      method: "FindNode" | "GetPeers",
      onPeers: (peers: ReadonlyArray<Address>) => Effect.Effect<unknown>
    ): Effect.Effect<Array<Lookup.Answered>> =>
      Effect.scoped(
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const state = Lookup.make(target, { k: RoutingTable.K })
          // More than k: when the closest known nodes turn out dead or lying, the lookup falls back on the next ones.
          state.add(table.closest(target, LOOKUP_SEEDS, now))
          if (table.size < RoutingTable.K) state.add(bootstrapNodes.map((address) => ({ address, id: undefined })))
          const query: Krpc.Query = method === "FindNode"
            ? { _tag: "FindNode", id: ownId, target }
            : { _tag: "GetPeers", id: ownId, infoHash: target as Uint8Array as InfoHash.InfoHash }
          const fibers = yield* FiberSet.make()
          const outcomes = yield* Queue.unbounded<{ readonly candidate: Lookup.Candidate; readonly exit: Exit.Exit<Krpc.Response, QueryError> }>()
          const seen = new Set<string>()
          let inFlight = 0
          while (!state.done) {
            for (const candidate of state.next(concurrency - inFlight)) {
              inFlight++
              yield* FiberSet.run(
                fibers,
                Effect.flatMap(Effect.exit(ask(candidate.address, query, candidate.id)), (exit) => Queue.offer(outcomes, { candidate, exit }))
              )
            }
            if (inFlight === 0) break
            const { candidate, exit } = yield* Queue.take(outcomes)
            inFlight--
            if (Exit.isFailure(exit)) {
              state.failed(candidate.address)
              continue
            }
            const response = exit.value
            state.answered(candidate.address, response.id, response.token)
            const nodes = (ipv6 ? response.nodes6 : response.nodes) ?? []
            state.add(
              nodes.slice(0, MAX_NODES_PER_ANSWER).filter((node) => usable(node.address) && !NodeId.equals(node.id, ownId))
            )
            if (method === "GetPeers" && response.values !== undefined) {
              const fresh: Array<Address> = []
              for (const peer of response.values) {
                const key = formatAddress(peer)
                if (peer.port === 0 || seen.has(key) || seen.size >= maxPeersPerLookup) continue
                seen.add(key)
                fresh.push(peer)
              }
              if (fresh.length > 0) yield* onPeers(fresh)
            }
          }
          return state.closest()
        })
      )

    const findNode = (target: NodeId.NodeId) =>
      Effect.map(lookup(target, "FindNode", () => Effect.void), (answered) => answered.map((a) => a.node))

    /** Looks up a random id in bucket `index`, so the bucket learns its live nodes. */
    const refresh = (index: number) =>
      Effect.gen(function* () {
        const noise = yield* NodeId.randomBytes(NodeId.LENGTH)
        const target = table.refreshTarget(index, noise)
        table.refreshed(index, yield* Clock.currentTimeMillis)
        yield* findNode(target)
      })

    // BEP 5: look up our own id until no closer node turns up; the farther buckets fill from the
    // traffic that follows and from their 15-minute refreshes.
    const bootstrap = Effect.map(findNode(ownId), () => table.size)

    const maintain = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      store.sweep(now)
      // A table with fewer than k nodes joined a network that was small or unreachable then: join again.
      if (table.size < RoutingTable.K) {
        if (table.size > 0 || bootstrapNodes.length > 0) yield* bootstrap
        return
      }
      for (const index of table.refreshDue(now)) yield* refresh(index)
    })

    /**
     * Fails queries past their deadline. One timer for all transactions rather than a timeout per
     * query: one sleep at a time instead of one per query in flight.
     */
    const expire: Effect.Effect<never> = Effect.forever(
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const oldest = pending.values().next()
        if (oldest.done === true) {
          const wake = Deferred.unsafeMake<void>(FiberId.none)
          idle = wake
          return Deferred.await(wake)
        }
        if (oldest.value.deadline > now) return Effect.sleep(oldest.value.deadline - now)
        return Effect.sync(() => {
          for (const [key, entry] of pending) {
            if (entry.deadline > now) break
            pending.delete(key)
            Deferred.unsafeDone(entry.deferred, Exit.fail(new QueryError({ reason: "Timeout" })))
          }
        })
      })
    )

    const rotateSecret = Effect.flatMap(newSecret, (fresh) =>
      Effect.sync(() => {
        secrets = Tokens.rotate(secrets, fresh)
      }))

    yield* Effect.forkScoped(Stream.runForEach(socket.datagrams, receive))
    yield* Effect.forkScoped(expire)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(MAINTENANCE_EVERY), maintain)))
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(Tokens.ROTATE_EVERY), rotateSecret)))

    const dht: Dht = {
      nodeId: ownId,
      address: socket.address,
      bootstrap,
      findNode,
      getPeers: (infoHash) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const mailbox = yield* Mailbox.make<Address>(PEER_BUFFER)
            yield* Effect.forkScoped(
              Mailbox.into(lookup(NodeId.unsafeFromBytes(infoHash), "GetPeers", (peers) => mailbox.offerAll(peers)), mailbox)
            )
            return Mailbox.toStream(mailbox)
          })
        ),
      announce: (infoHash, port, announceOptions) =>
        Effect.gen(function* () {
          const peers: Array<Address> = []
          const closest = yield* lookup(NodeId.unsafeFromBytes(infoHash), "GetPeers", (found) => Effect.sync(() => peers.push(...found)))
          const withToken = closest.flatMap(({ node, token }) => (token === undefined ? [] : [{ node, token }]))
          const acks = yield* Effect.forEach(
            withToken,
            ({ node, token }) =>
              Effect.option(
                ask(node.address, {
                  _tag: "AnnouncePeer",
                  id: ownId,
                  infoHash,
                  port,
                  token,
                  impliedPort: announceOptions?.impliedPort === true
                }, node.id)
              ),
            { concurrency: "unbounded" }
          )
          return { peers, announcedTo: acks.filter(Option.isSome).length }
        }),
      addNode: (address) => Effect.isSuccess(ask(unmapped(address), { _tag: "Ping", id: ownId }, undefined)),
      routingTable: Effect.map(Clock.currentTimeMillis, (now) => table.serialize(now)),
      stats: Effect.map(Clock.currentTimeMillis, (now) => ({
        nodes: table.size,
        goodNodes: table.entries().filter((entry) => table.stateOf(entry, now) === "good").length,
        buckets: table.bucketCount,
        storedPeers: store.size,
        storedInfoHashes: store.infoHashes,
        outstanding: pending.size,
        ...counters
      }))
    }
    return dht
  })
