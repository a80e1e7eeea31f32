/**
 * The DHT routing table (BEP 5): k-buckets over the id space, split only where our own id
 * falls, so the table knows many nodes near us and a few far away.
 *
 * Because only the bucket holding our own id ever splits, the buckets form a chain: bucket `i`
 * (all but the last) holds the ids sharing exactly `i` leading bits with ours, the last bucket
 * those sharing at least as many as its index. A node's bucket is therefore
 * `min(commonPrefixLength(ownId, id), lastIndex)`.
 *
 * Only nodes that answered one of our queries are inserted (a stranger that queries us is pinged
 * first, by the caller), so every entry has been seen alive. A node is good while it answered
 * us or queried us within 15 minutes, questionable after that, bad after `BAD_AFTER_FAILURES`
 * unanswered queries in a row. A full bucket replaces a bad node first; otherwise the newcomer
 * waits in the bucket's replacement cache and the caller is told which questionable node to ping.
 *
 * A mutable class on purpose, like the piece picker: it is owned by the DHT actor and consulted
 * on every datagram. It is pure: no Effect, no I/O; the caller passes the time in milliseconds
 * and any randomness.
 */
import { Data, Either, Schema } from "effect"
import { type Address, formatAddress } from "../net/Network.js"
import type { NodeInfo } from "./Krpc.js"
import * as NodeId from "./NodeId.js"

/** Nodes per bucket (BEP 5's k). */
export const K = 8

/** A node neither heard from nor answering for this long is questionable; a bucket this old needs a refresh. */
export const STALE_AFTER_MILLIS = 15 * 60 * 1000

/** Unanswered queries in a row after which a node is bad. */
export const BAD_AFTER_FAILURES = 2

/** Most nodes a serialized table may hold (more than a full table: 160 buckets of k). */
export const MAX_SERIALIZED_NODES = NodeId.BITS * K

/** BEP 5's node states. */
export type NodeState = "good" | "questionable" | "bad"

/** One node of the table and what we know of its liveness. */
export interface Entry extends NodeInfo {
  /** When it last answered one of our queries (ms); `-Infinity` for a node reloaded from disk. */
  readonly lastResponse: number
  /** When it last sent us a query (ms), `-Infinity` if never. */
  readonly lastQuery: number
  /** Our queries it left unanswered since its last answer. */
  readonly failures: number
}

/** What `responded` did with a node. */
export type Insertion =
  | { readonly _tag: "Updated" }
  | { readonly _tag: "Added" }
  /** Its bucket is full: it waits as a replacement; ping `ping` (a questionable node), if any, to find out whether it is gone. */
  | { readonly _tag: "Waiting"; readonly ping: NodeInfo | undefined }
  /** Our own id, or a node whose id or address another live entry holds. */
  | { readonly _tag: "Rejected" }

/** The persisted form of a table: our id and the nodes (hex ids, IP literal hosts). */
export const Serialized = Schema.Struct({
  id: Schema.String,
  nodes: Schema.Array(
    Schema.Struct({
      id: Schema.String,
      host: Schema.String,
      port: Schema.Int.pipe(Schema.between(1, 65535))
    })
  ).pipe(Schema.maxItems(MAX_SERIALIZED_NODES))
})

/** The persisted form of a table. */
export type Serialized = typeof Serialized.Type

/** Why a persisted table cannot be loaded. */
export class RoutingTableError extends Data.TaggedError("RoutingTableError")<{
  readonly reason: "Format" | "Id"
  readonly message: string
}> {}

/** Table settings. */
export interface Options {
  /** Nodes per bucket (default `K`). */
  readonly k?: number
}

interface MutableEntry {
  readonly id: NodeId.NodeId
  address: Address
  lastResponse: number
  lastQuery: number
  failures: number
}

interface Bucket {
  nodes: Array<MutableEntry>
  /** Nodes that answered while the bucket was full, most recent last. */
  replacements: Array<MutableEntry>
  /** When a node was last added, replaced or answered in this bucket (BEP 5's "last changed"). */
  lastChanged: number
}

const keyOf = (address: Address): string => formatAddress(address)

const snapshot = (entry: MutableEntry): NodeInfo => ({ id: entry.id, address: entry.address })

/** A k-bucket routing table around `ownId`. */
export class RoutingTable {
  private readonly buckets: Array<Bucket>
  private readonly byId = new Map<string, MutableEntry>()
  private readonly byAddress = new Map<string, MutableEntry>()

  private constructor(
    /** Our own node id. */
    readonly ownId: NodeId.NodeId,
    /** Nodes per bucket. */
    readonly k: number,
    now: number
  ) {
    this.buckets = [{ nodes: [], replacements: [], lastChanged: now }]
  }

  /** An empty table (one bucket covering the whole id space). */
  static make(ownId: NodeId.NodeId, now: number, options?: Options): RoutingTable {
    return new RoutingTable(ownId, Math.max(1, options?.k ?? K), now)
  }

  /**
   * Reloads a persisted table: its nodes come back questionable (seen alive in an earlier run,
   * not yet in this one). `ownId` overrides the persisted id (the nodes are re-bucketed).
   */
  static restore(
    serialized: Serialized,
    now: number,
    options?: Options & { readonly ownId?: NodeId.NodeId }
  ): Either.Either<RoutingTable, RoutingTableError> {
    const persisted = NodeId.fromHex(serialized.id)
    const ownId = options?.ownId ?? (Either.isRight(persisted) ? persisted.right : undefined)
    if (ownId === undefined) return Either.left(new RoutingTableError({ reason: "Id", message: `bad own id "${serialized.id.slice(0, 64)}"` }))
    const table = RoutingTable.make(ownId, now, options)
    for (const node of serialized.nodes) {
      const id = NodeId.fromHex(node.id)
      if (Either.isLeft(id)) return Either.left(new RoutingTableError({ reason: "Id", message: `bad node id "${node.id.slice(0, 64)}"` }))
      table.insert({ id: id.right, address: { host: node.host, port: node.port } }, now, Number.NEGATIVE_INFINITY)
    }
    return Either.right(table)
  }

  /** Number of nodes in the buckets (replacements not counted). */
  get size(): number {
    return this.byId.size
  }

  /** Number of buckets (1 to 160). */
  get bucketCount(): number {
    return this.buckets.length
  }

  /** The index of the bucket that holds (or would hold) `id`. */
  bucketIndex(id: NodeId.NodeId): number {
    return Math.min(NodeId.commonPrefixLength(this.ownId, id), this.buckets.length - 1)
  }

  /** The nodes of bucket `index`, in insertion order. */
  bucket(index: number): ReadonlyArray<Entry> {
    return this.buckets[index]?.nodes ?? []
  }

  /** Every node of the table. */
  entries(): ReadonlyArray<Entry> {
    return [...this.byId.values()]
  }

  /** The entry of `id`, if in the table. */
  get(id: NodeId.NodeId): Entry | undefined {
    return this.byId.get(NodeId.toHex(id))
  }

  /** BEP 5's state of an entry at `now`. */
  stateOf(entry: Entry, now: number): NodeState {
    if (entry.failures >= BAD_AFTER_FAILURES) return "bad"
    return now - Math.max(entry.lastResponse, entry.lastQuery) < STALE_AFTER_MILLIS ? "good" : "questionable"
  }

  /**
   * A node answered one of our queries: refresh it, or insert it (splitting our own bucket,
   * replacing a bad node) when its bucket has room.
   */
  responded(node: NodeInfo, now: number): Insertion {
    return this.insert(node, now, now)
  }

  /** A node in the table sent us a query (strangers are not inserted: ping them first). */
  queried(id: NodeId.NodeId, now: number): void {
    const entry = this.byId.get(NodeId.toHex(id))
    if (entry !== undefined) entry.lastQuery = now
  }

  /** A query to `id` went unanswered; a node that turns bad gives way to the freshest replacement. */
  failed(id: NodeId.NodeId, now: number): void {
    const entry = this.byId.get(NodeId.toHex(id))
    if (entry === undefined) return
    entry.failures++
    if (this.stateOf(entry, now) !== "bad") return
    const bucket = this.buckets[this.bucketIndex(id)]!
    for (let replacement = bucket.replacements.pop(); replacement !== undefined; replacement = bucket.replacements.pop()) {
      // A waiting node may have entered the table elsewhere under its address since.
      const holder = this.byAddress.get(keyOf(replacement.address))
      if (holder !== undefined && holder !== entry) continue
      this.remove(entry)
      this.add(bucket, replacement, now)
      return
    }
  }

  /** Whether `responded` would insert this stranger now: worth pinging a node that queried us. */
  wouldAccept(id: NodeId.NodeId, now: number): boolean {
    if (NodeId.equals(id, this.ownId) || this.byId.has(NodeId.toHex(id))) return false
    const index = this.bucketIndex(id)
    const bucket = this.buckets[index]!
    return bucket.nodes.length < this.k ||
      index === this.buckets.length - 1 && this.buckets.length < NodeId.BITS ||
      bucket.nodes.some((entry) => this.stateOf(entry, now) === "bad")
  }

  /** The `n` non-bad nodes closest to `target` by XOR distance, closest first. */
  closest(target: NodeId.NodeId, n: number, now: number): Array<NodeInfo> {
    const live: Array<MutableEntry> = []
    for (const entry of this.byId.values()) if (this.stateOf(entry, now) !== "bad") live.push(entry)
    live.sort((a, b) => NodeId.compareDistance(target, a.id, b.id))
    return live.slice(0, Math.max(0, n)).map(snapshot)
  }

  /** Indexes of buckets unchanged for 15 minutes: look up a random id in each. */
  refreshDue(now: number): Array<number> {
    const due: Array<number> = []
    this.buckets.forEach((bucket, index) => {
      if (now - bucket.lastChanged >= STALE_AFTER_MILLIS) due.push(index)
    })
    return due
  }

  /** Marks a bucket as just refreshed, so an empty far bucket is looked up once per period, not on every check. */
  refreshed(index: number, now: number): void {
    const bucket = this.buckets[index]
    if (bucket !== undefined) bucket.lastChanged = now
  }

  /** A random id in the range of bucket `index`, from 20 bytes of `noise`. */
  refreshTarget(index: number, noise: Uint8Array): NodeId.NodeId {
    const last = index >= this.buckets.length - 1
    const prefix = Uint8Array.from(this.ownId)
    // Bucket i < last holds ids that differ from ours first at bit i: flip it and keep the bits before.
    if (!last) prefix[index >>> 3] = prefix[index >>> 3]! ^ (0x80 >>> (index & 7))
    return NodeId.withPrefix(NodeId.unsafeFromBytes(prefix), last ? this.buckets.length - 1 : index + 1, noise)
  }

  /** The persisted form: our id and every node that is not bad. */
  serialize(now: number): Serialized {
    const nodes: Array<Serialized["nodes"][number]> = []
    for (const entry of this.byId.values()) {
      if (this.stateOf(entry, now) !== "bad") {
        nodes.push({ id: NodeId.toHex(entry.id), host: entry.address.host, port: entry.address.port })
      }
    }
    return { id: NodeId.toHex(this.ownId), nodes }
  }

  private insert(node: NodeInfo, now: number, lastResponse: number): Insertion {
    if (NodeId.equals(node.id, this.ownId)) return { _tag: "Rejected" }
    const known = this.byId.get(NodeId.toHex(node.id))
    const holder = this.byAddress.get(keyOf(node.address))
    if (known !== undefined) {
      if (holder !== known) {
        // The id moved to another address: believe it only once the old address stopped answering.
        if (this.stateOf(known, now) !== "bad" || holder !== undefined) return { _tag: "Rejected" }
        this.byAddress.delete(keyOf(known.address))
        known.address = node.address
        this.byAddress.set(keyOf(node.address), known)
      }
      known.lastResponse = Math.max(known.lastResponse, lastResponse)
      known.failures = 0
      this.buckets[this.bucketIndex(node.id)]!.lastChanged = now
      return { _tag: "Updated" }
    }
    if (holder !== undefined) {
      // Another id at this address (a restarted node): it replaces the old one once that is bad.
      if (this.stateOf(holder, now) !== "bad") return { _tag: "Rejected" }
      this.remove(holder)
    }
    const entry: MutableEntry = { id: node.id, address: node.address, lastResponse, lastQuery: Number.NEGATIVE_INFINITY, failures: 0 }
    for (;;) {
      const index = this.bucketIndex(node.id)
      const bucket = this.buckets[index]!
      if (bucket.nodes.length < this.k) {
        this.add(bucket, entry, now)
        return { _tag: "Added" }
      }
      const bad = bucket.nodes.find((candidate) => this.stateOf(candidate, now) === "bad")
      if (bad !== undefined) {
        this.remove(bad)
        this.add(bucket, entry, now)
        return { _tag: "Added" }
      }
      if (index === this.buckets.length - 1 && this.buckets.length < NodeId.BITS) {
        this.split(now)
        continue
      }
      const address = keyOf(entry.address)
      bucket.replacements = bucket.replacements.filter((r) => !NodeId.equals(r.id, entry.id) && keyOf(r.address) !== address)
      bucket.replacements.push(entry)
      if (bucket.replacements.length > this.k) bucket.replacements.shift()
      let ping: MutableEntry | undefined
      for (const candidate of bucket.nodes) {
        if (this.stateOf(candidate, now) === "questionable" && (ping === undefined || candidate.lastResponse < ping.lastResponse)) ping = candidate
      }
      return { _tag: "Waiting", ping: ping === undefined ? undefined : snapshot(ping) }
    }
  }

  /** Splits the last bucket (ours): the ids sharing one more bit with our id move to a new last bucket. */
  private split(now: number): void {
    const index = this.buckets.length - 1
    const old = this.buckets[index]!
    const near = (entry: MutableEntry) => NodeId.commonPrefixLength(this.ownId, entry.id) > index
    this.buckets.push({
      nodes: old.nodes.filter(near),
      replacements: old.replacements.filter(near),
      lastChanged: now
    })
    old.nodes = old.nodes.filter((entry) => !near(entry))
    old.replacements = old.replacements.filter((entry) => !near(entry))
  }

  private add(bucket: Bucket, entry: MutableEntry, now: number): void {
    const address = keyOf(entry.address)
    bucket.replacements = bucket.replacements.filter((r) => !NodeId.equals(r.id, entry.id) && keyOf(r.address) !== address)
    bucket.nodes.push(entry)
    bucket.lastChanged = now
    this.byId.set(NodeId.toHex(entry.id), entry)
    this.byAddress.set(keyOf(entry.address), entry)
  }

  private remove(entry: MutableEntry): void {
    const bucket = this.buckets[this.bucketIndex(entry.id)]!
    bucket.nodes = bucket.nodes.filter((candidate) => candidate !== entry)
    this.byId.delete(NodeId.toHex(entry.id))
    this.byAddress.delete(keyOf(entry.address))
  }
}

/** Makes an empty table around `ownId`. */
export const make: (ownId: NodeId.NodeId, now: number, options?: Options) => RoutingTable = RoutingTable.make

/** Reloads a persisted table (see `RoutingTable.restore`). */
export const restore: (
  serialized: Serialized,
  now: number,
  options?: Options & { readonly ownId?: NodeId.NodeId }
) => Either.Either<RoutingTable, RoutingTableError> = RoutingTable.restore

/** Validates untrusted input (e.g. parsed JSON from disk) as a persisted table. */
export const decode = (input: unknown): Either.Either<Serialized, RoutingTableError> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(Serialized)(input),
    (error) => new RoutingTableError({ reason: "Format", message: error.message.slice(0, 512) })
  )
