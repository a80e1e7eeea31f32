/**
 * The bookkeeping of one iterative Kademlia lookup (BEP 5's find_node / get_peers traversal):
 * a shortlist of candidates ordered by XOR distance to the target, which of them were asked,
 * answered or failed, and when the lookup has converged: when the `k` closest candidates that
 * did not fail have all answered. The caller sends the queries (`next` hands out at most as
 * many as it has room for, closest first) and reports each outcome.
 *
 * Bounded: at most `maxQueries` queries per lookup, and the shortlist drops its farthest
 * unasked candidates beyond `maxCandidates`, so neither a huge network nor nodes that answer
 * with floods of invented nodes make it grow. Pure: no Effect, no I/O.
 */
import { type Address, formatAddress } from "../net/Network.js"
import type { NodeInfo } from "./Krpc.js"
import * as NodeId from "./NodeId.js"
import { K } from "./RoutingTable.js"

/** A node to ask; bootstrap addresses have no known id until they answer. */
export interface Candidate {
  readonly address: Address
  readonly id: NodeId.NodeId | undefined
}

/** A node that answered, with the token it gave (get_peers). */
export interface Answered {
  readonly node: NodeInfo
  readonly token: Uint8Array | undefined
}

/** Lookup limits. */
export interface Options {
  /** How many closest nodes must answer for the lookup to end (BEP 5's k, default 8). */
  readonly k?: number
  /** Candidates kept (default 128). */
  readonly maxCandidates?: number
  /** Queries sent at most (default 96). */
  readonly maxQueries?: number
}

/** Default `Options.maxCandidates`. */
export const DEFAULT_MAX_CANDIDATES = 128
/** Default `Options.maxQueries`. */
export const DEFAULT_MAX_QUERIES = 96

interface Slot {
  readonly address: Address
  readonly key: string
  id: NodeId.NodeId | undefined
  status: "new" | "pending" | "answered" | "failed"
  token: Uint8Array | undefined
}

/** One lookup's shortlist. */
export class Lookup {
  private slots: Array<Slot> = []
  private readonly byKey = new Map<string, Slot>()
  private sent = 0
  private readonly k: number
  private readonly maxCandidates: number
  private readonly maxQueries: number

  constructor(
    /** The id (or info-hash) looked up. */
    readonly target: NodeId.NodeId,
    options?: Options
  ) {
    this.k = Math.max(1, options?.k ?? K)
    this.maxCandidates = Math.max(this.k, options?.maxCandidates ?? DEFAULT_MAX_CANDIDATES)
    this.maxQueries = Math.max(1, options?.maxQueries ?? DEFAULT_MAX_QUERIES)
  }

  /** Queries handed out so far. */
  get queries(): number {
    return this.sent
  }

  /** Adds candidates not seen before (by address); the farthest unasked ones beyond the bound are dropped. */
  add(candidates: Iterable<Candidate>): void {
    for (const candidate of candidates) {
      const key = formatAddress(candidate.address)
      if (this.byKey.has(key)) continue
      const slot: Slot = { address: candidate.address, key, id: candidate.id, status: "new", token: undefined }
      this.slots.push(slot)
      this.byKey.set(key, slot)
    }
    this.sort()
    for (let i = this.slots.length - 1; i >= 0 && this.slots.length > this.maxCandidates; i--) {
      const slot = this.slots[i]!
      if (slot.status !== "new") continue
      this.slots.splice(i, 1)
      this.byKey.delete(slot.key)
    }
  }

  /** Up to `max` unasked candidates among the `k` closest live ones, now marked as asked. */
  next(max: number): Array<Candidate> {
    const out: Array<Candidate> = []
    for (const slot of this.live()) {
      if (out.length >= max || this.sent >= this.maxQueries) break
      if (slot.status !== "new") continue
      slot.status = "pending"
      this.sent++
      out.push({ address: slot.address, id: slot.id })
    }
    return out
  }

  /** The node at `address` answered as `id`, with a token if it gave one. */
  answered(address: Address, id: NodeId.NodeId, token: Uint8Array | undefined): void {
    const slot = this.byKey.get(formatAddress(address))
    if (slot === undefined) return
    slot.status = "answered"
    slot.id = id
    slot.token = token
    this.sort()
  }

  /** The node at `address` did not answer (or answered wrongly). */
  failed(address: Address): void {
    const slot = this.byKey.get(formatAddress(address))
    if (slot !== undefined) slot.status = "failed"
  }

  /** Converged (the `k` closest live candidates all answered), or out of query budget with no answer pending. */
  get done(): boolean {
    const live = this.live()
    if (live.every((slot) => slot.status === "answered")) return true
    // Otherwise a live candidate is unasked or pending; without pending queries, only the budget can stop us.
    return this.sent >= this.maxQueries && !this.slots.some((slot) => slot.status === "pending")
  }

  /** The `k` closest nodes that answered, closest first, each id once. */
  closest(): Array<Answered> {
    const out: Array<Answered> = []
    const ids = new Set<string>()
    for (const slot of this.slots) {
      if (out.length >= this.k) break
      if (slot.status !== "answered" || slot.id === undefined) continue
      const hex = NodeId.toHex(slot.id)
      if (ids.has(hex)) continue
      ids.add(hex)
      out.push({ node: { id: slot.id, address: slot.address }, token: slot.token })
    }
    return out
  }

  /** The `k` closest candidates that have not failed. */
  private live(): Array<Slot> {
    const out: Array<Slot> = []
    for (const slot of this.slots) {
      if (out.length >= this.k) break
      if (slot.status !== "failed") out.push(slot)
    }
    return out
  }

  // Candidates without an id (bootstrap addresses) go first: they are all we have until they answer.
  private sort(): void {
    const target = this.target
    this.slots.sort((a, b) =>
      a.id === undefined ? (b.id === undefined ? 0 : -1) : b.id === undefined ? 1 : NodeId.compareDistance(target, a.id, b.id)
    )
  }
}

/** Starts a lookup of `target`. */
export const make = (target: NodeId.NodeId, options?: Options): Lookup => new Lookup(target, options)
