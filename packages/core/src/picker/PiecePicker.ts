/**
 * Which block to request from which peer: piece availability, rarest-first, the per-piece block
 * state of pieces in flight, and endgame duplication.
 *
 * A mutable class on purpose: it is owned by the single Torrent supervisor fiber and consulted on
 * every wire message, so it keeps its indexes (availability buckets, open pieces, per-peer
 * requests) up to date incrementally instead of rebuilding or copying them per call. It is pure:
 * no Effect, no I/O, no clock; randomness is injected.
 *
 * Policy of `nextRequests`, in order:
 * 1. blocks of pieces reserved to this peer;
 * 2. blocks of started pieces that nobody holds (their peer left or choked us): finish them first;
 * 3. a new piece, rarest first among those the peer has (random tie-break), reserved to the peer;
 * 4. only when the peer has no new piece to start: unrequested blocks of pieces reserved to others;
 * 5. in endgame (every block some peer can give us is requested), duplicates of outstanding
 *    requests, at most `MAX_HOLDERS` peers per block.
 */
import { Data, Either } from "effect"
import { Bitfield } from "./Bitfield.js"

/** Size of a request: 16 KiB, what every client sends and accepts. */
export const BLOCK_SIZE = 16384

/** At most this many peers hold a request for the same block in endgame (the first + 2 duplicates). */
export const MAX_HOLDERS = 3

/** A `request` (or `cancel`, `reject`) of one block: a byte range of one piece. */
export interface BlockRequest {
  readonly index: number
  readonly begin: number
  readonly length: number
}

/** A request outstanding at a given peer (e.g. an endgame duplicate to cancel there). */
export interface PeerRequest {
  readonly peer: string
  readonly request: BlockRequest
}

/** What `blockReceived` tells the caller: keep the block or drop it, and what to cancel elsewhere. */
export interface BlockOutcome {
  /** False for a block we did not request from this peer or already have: drop it. */
  readonly accepted: boolean
  /** Endgame duplicates of this block at other peers: send them `cancel`. */
  readonly cancel: ReadonlyArray<PeerRequest>
}

/** Everything the picker needs to know about a torrent and what we already have. */
export interface Options {
  readonly pieceCount: number
  readonly pieceLength: number
  readonly totalLength: number
  /** Verified pieces we have (copied). */
  readonly have: Bitfield
  /** Source of randomness in [0, 1) for tie-breaks; defaults to `Math.random`. */
  readonly random?: () => number
  /** Pieces to download (copied); defaults to all. */
  readonly wanted?: Bitfield
}

/** Per-call constraints of `nextRequests`. */
export interface RequestOptions {
  /** BEP 6 allowed-fast pieces of this peer: the only ones we may request while it chokes us. */
  readonly allowedFast?: ReadonlySet<number>
  /** Whether the peer chokes us. */
  readonly choked?: boolean
}

/** Why a picker could not be made: the geometry or a bitfield does not fit the torrent. */
export class PiecePickerError extends Data.TaggedError("PiecePickerError")<{
  readonly reason: "Geometry" | "BitfieldSize"
  readonly message: string
}> {}

/** What the picker knows about one connected peer. */
interface PeerState {
  readonly pieces: Bitfield
  /** Block ids (see `blockId`) outstanding at this peer. */
  readonly requests: Set<number>
  /** Pieces reserved to this peer. */
  readonly owned: Set<number>
  /** Pieces it has that we want and lack: interest without a scan. */
  interesting: number
  /** Pieces it has that nobody has started: lets `nextRequests` skip the rarest-first scan. */
  candidates: number
}

/** Block state of one piece in flight; exists only from its first request until verified or rejected. */
interface Progress {
  readonly index: number
  readonly blockCount: number
  /** 1 for each block received. */
  readonly received: Uint8Array
  /** Per block, the peers it is outstanding at (empty when unrequested or received). */
  readonly holders: Array<Array<string>>
  receivedCount: number
  /** Blocks neither received nor outstanding anywhere. */
  unrequested: number
  /** Every block below it is requested or received: where to resume looking. */
  cursor: number
  /** The peer this piece is reserved to, if any. */
  owner: string | undefined
}

/** The piece picker of one torrent. Make it with `make`. */
export class PiecePicker {
  /** Blocks in a full piece; block ids are `index * blocksPerPiece + block`. */
  private readonly blocksPerPiece: number
  private readonly haveField: Bitfield
  private readonly wantedField: Bitfield
  /*
   * The rarest-first index below exists only while some peer is known or some piece is in flight:
   * an idle torrent (thousands in one session) holds none of it. Without it, every wanted missing
   * piece is implicitly a candidate of availability 0.
   */
  private indexed = false
  /** Number of connected peers that have each piece. */
  private availability: Int32Array = UNINDEXED
  /** `buckets[a]`: the not-yet-started wanted missing pieces ("candidates") with availability `a`. */
  private buckets: Array<Array<number>> = [[]]
  /** Position of a candidate in its bucket, -1 for a piece that is not a candidate. */
  private slot: Int32Array = UNINDEXED
  private candidateCount = 0
  private missing = 0
  private readonly peers = new Map<string, PeerState>()
  /** The sum of the peers' `requests` sizes. */
  private requestCount = 0
  private readonly progress = new Map<number, Progress>()
  /** Pieces in flight that still have unrequested blocks. */
  private readonly open = new Set<number>()

  private constructor(
    readonly pieceCount: number,
    readonly pieceLength: number,
    readonly totalLength: number,
    have: Bitfield,
    wanted: Bitfield,
    private readonly random: () => number
  ) {
    this.blocksPerPiece = Math.ceil(pieceLength / BLOCK_SIZE)
    this.haveField = have.clone()
    this.wantedField = wanted.clone()
    for (let i = 0; i < pieceCount; i++) if (wanted.has(i) && !have.has(i)) this.missing++
  }

  /** A picker for a torrent's geometry, after checking that the geometry and bitfields agree. */
  static make(options: Options): Either.Either<PiecePicker, PiecePickerError> {
    const { have, pieceCount, pieceLength, totalLength, wanted } = options
    const integers = [pieceCount, pieceLength, totalLength].every(Number.isSafeInteger)
    const fits = pieceCount === 0
      ? totalLength === 0
      : totalLength > (pieceCount - 1) * pieceLength && totalLength <= pieceCount * pieceLength
    if (!integers || pieceCount < 0 || pieceLength <= 0 || !fits) {
      return Either.left(
        new PiecePickerError({
          reason: "Geometry",
          message: `${pieceCount} pieces of ${pieceLength} bytes cannot hold ${totalLength} bytes`
        })
      )
    }
    // Checked before allocating anything of `pieceCount` size: the caller's bitfields already are.
    if (have.size !== pieceCount || (wanted !== undefined && wanted.size !== pieceCount)) {
      return Either.left(
        new PiecePickerError({
          reason: "BitfieldSize",
          message: `have has ${have.size} pieces, wanted ${wanted?.size ?? pieceCount}, the torrent ${pieceCount}`
        })
      )
    }
    const all = wanted ?? Bitfield.full(pieceCount)
    return Either.right(new PiecePicker(pieceCount, pieceLength, totalLength, have, all, options.random ?? Math.random))
  }

  // ---- peers -------------------------------------------------------------------------------

  /** Registers a peer's bitfield; for a peer already known, its pieces are added to what it had. */
  addPeer(peer: string, bitfield: Bitfield): void {
    const state = this.peerState(peer)
    for (const index of bitfield.indices()) if (index < this.pieceCount) this.gainPiece(state, index)
  }

  /** A `have` message. Out-of-range indices are ignored (the wire layer rejects them). */
  peerHas(peer: string, index: number): void {
    const state = this.peerState(peer)
    if (Number.isInteger(index) && index >= 0 && index < this.pieceCount) this.gainPiece(state, index)
  }

  /** BEP 6 `have all`. */
  peerHasAll(peer: string): void {
    const state = this.peerState(peer)
    for (let i = 0; i < this.pieceCount; i++) this.gainPiece(state, i)
  }

  /** BEP 6 `have none`: registers the peer with no pieces. */
  peerHasNone(peer: string): void {
    this.peerState(peer)
  }

  /** Forgets a peer; its outstanding requests return to the pool and are returned. */
  removePeer(peer: string): ReadonlyArray<BlockRequest> {
    const state = this.peers.get(peer)
    if (state === undefined) return []
    const released = this.release(peer, state, () => false)
    this.peers.delete(peer)
    for (const index of state.pieces.indices()) this.shiftAvailability(index, -1)
    if (this.peers.size === 0 && this.progress.size === 0) this.dropIndex()
    return released
  }

  /**
   * The peer choked us: its requests return to the pool (returned), except those for pieces in
   * `keep` (BEP 6 allowed-fast pieces, which a fast peer keeps serving or rejects explicitly).
   */
  peerChoked(peer: string, keep?: ReadonlySet<number>): ReadonlyArray<BlockRequest> {
    const state = this.peers.get(peer)
    if (state === undefined) return []
    return this.release(peer, state, (index) => keep?.has(index) ?? false)
  }

  /** BEP 6 `reject request`: the block returns to the pool. False if it was not outstanding there. */
  requestRejected(peer: string, request: BlockRequest): boolean {
    const state = this.peers.get(peer)
    const block = this.blockOf(request.index, request.begin)
    if (state === undefined || block < 0) return false
    const id = request.index * this.blocksPerPiece + block
    if (!state.requests.has(id)) return false
    const progress = this.progress.get(request.index)!
    this.dropHolder(progress, block, peer)
    this.unrequest(state, id)
    if (progress.owner === peer && !progress.holders.some((holders) => holders.includes(peer))) {
      this.disown(progress)
    }
    this.refreshOpen(progress)
    return true
  }

  /** Whether the peer has a piece we want and lack (we should be interested). */
  isInteresting(peer: string): boolean {
    return (this.peers.get(peer)?.interesting ?? 0) > 0
  }

  // ---- requests ----------------------------------------------------------------------------

  /** Up to `max` new requests to send to `peer` (see the module comment for the policy). */
  nextRequests(peer: string, max: number, options?: RequestOptions): ReadonlyArray<BlockRequest> {
    const state = this.peers.get(peer)
    const allowed = options?.choked === true ? (options.allowedFast ?? new Set<number>()) : undefined
    if (state === undefined || max <= 0 || this.missing === 0 || allowed?.size === 0) return []
    const eligible = (index: number): boolean => state.pieces.has(index) && (allowed === undefined || allowed.has(index))
    const out: Array<BlockRequest> = []

    for (const index of state.owned) {
      if (eligible(index)) this.take(peer, state, this.progress.get(index)!, max, out)
      if (out.length >= max) return out
    }
    for (const index of this.open) {
      const progress = this.progress.get(index)!
      if (progress.owner !== undefined || !eligible(index)) continue
      this.own(peer, state, progress)
      this.take(peer, state, progress, max, out)
      if (out.length >= max) return out
    }
    while (out.length < max) {
      const index = this.pickFresh(state, allowed)
      if (index < 0) break
      this.take(peer, state, this.start(peer, state, index), max, out)
    }
    if (out.length >= max) return out
    for (const index of this.open) {
      if (eligible(index)) this.take(peer, state, this.progress.get(index)!, max, out)
      if (out.length >= max) return out
    }
    if (this.inEndgame) this.duplicate(peer, state, eligible, max, out)
    return out
  }

  /**
   * A `piece` message. Accepted only if the block was outstanding at this peer; then it counts as
   * received and its endgame duplicates at other peers are returned for cancelling.
   */
  blockReceived(peer: string, index: number, begin: number, length: number): BlockOutcome {
    const state = this.peers.get(peer)
    const block = this.blockOf(index, begin)
    if (state === undefined || block < 0 || length !== this.blockLength(index, block)) return dropped
    const id = index * this.blocksPerPiece + block
    if (!state.requests.has(id)) return dropped
    const progress = this.progress.get(index)!
    const cancel: Array<PeerRequest> = []
    for (const holder of progress.holders[block]!) {
      this.unrequest(this.peers.get(holder)!, id)
      if (holder !== peer) cancel.push({ peer: holder, request: { index, begin, length } })
    }
    progress.holders[block] = []
    progress.received[block] = 1
    progress.receivedCount++
    if (progress.receivedCount === progress.blockCount) this.disown(progress)
    return { accepted: true, cancel }
  }

  /** Whether every block of the piece has been received: the caller hashes it now. */
  pieceComplete(index: number): boolean {
    const progress = this.progress.get(index)
    return progress !== undefined && progress.receivedCount === progress.blockCount
  }

  /**
   * The piece passed its hash check: we have it. Returns the peers that are no longer interesting
   * (send them `not interested`). Requests still outstanding for it are forgotten.
   */
  pieceVerified(index: number): ReadonlyArray<string> {
    if (!Number.isInteger(index) || index < 0 || index >= this.pieceCount || this.haveField.has(index)) return []
    const progress = this.progress.get(index)
    if (progress !== undefined) this.forget(progress)
    else if (this.slot[index]! >= 0) this.removeCandidate(index)
    this.haveField.add(index)
    if (!this.wantedField.has(index)) return []
    this.missing--
    const uninterested: Array<string> = []
    for (const [key, state] of this.peers) {
      if (state.pieces.has(index) && --state.interesting === 0) uninterested.push(key)
    }
    return uninterested
  }

  /** The piece failed its hash check: all its blocks return to the pool. */
  pieceRejected(index: number): void {
    const progress = this.progress.get(index)
    if (progress === undefined) return
    this.forget(progress)
    this.addCandidate(index)
  }

  // ---- queries -----------------------------------------------------------------------------

  /** Requests outstanding at `peer`. */
  outstanding(peer: string): number {
    return this.peers.get(peer)?.requests.size ?? 0
  }

  /** Requests outstanding at all peers (an endgame duplicate counts at each). */
  get totalOutstanding(): number {
    return this.requestCount
  }

  /** Number of connected peers that have piece `index`. */
  availabilityOf(index: number): number {
    return this.availability[index] ?? 0
  }

  /** Wanted pieces we do not have yet (verified). */
  get missingCount(): number {
    return this.missing
  }

  /** Whether every wanted piece is verified. */
  get isComplete(): boolean {
    return this.missing === 0
  }

  /** The verified pieces (the picker's own set: read it, clone it to keep it). */
  get have(): Bitfield {
    return this.haveField
  }

  /** Whether every missing block that a connected peer can give us is received or requested. */
  get inEndgame(): boolean {
    if (this.missing === 0) return false
    if (this.candidateCount > this.buckets[0]!.length) return false
    for (const index of this.open) if (this.availability[index]! > 0) return false
    return true
  }

  // ---- internals ---------------------------------------------------------------------------

  private peerState(peer: string): PeerState {
    let state = this.peers.get(peer)
    if (state === undefined) {
      this.buildIndex()
      state = {
        pieces: Bitfield.empty(this.pieceCount),
        requests: new Set(),
        owned: new Set(),
        interesting: 0,
        candidates: 0
      }
      this.peers.set(peer, state)
    }
    return state
  }

  /** Every wanted missing piece becomes a candidate of availability 0 (none is in flight yet). */
  private buildIndex(): void {
    if (this.indexed) return
    this.indexed = true
    this.availability = new Int32Array(this.pieceCount)
    this.slot = new Int32Array(this.pieceCount).fill(-1)
    for (let i = 0; i < this.pieceCount; i++) {
      if (this.wantedField.has(i) && !this.haveField.has(i)) this.addCandidate(i)
    }
  }

  /** Frees the index once no peer is left and no piece in flight: it is all zeros and candidates again. */
  private dropIndex(): void {
    this.indexed = false
    this.availability = UNINDEXED
    this.slot = UNINDEXED
    this.buckets = [[]]
    this.candidateCount = 0
  }

  private gainPiece(state: PeerState, index: number): void {
    if (!state.pieces.add(index)) return
    this.shiftAvailability(index, 1)
    if (this.wantedField.has(index) && !this.haveField.has(index)) state.interesting++
    if (this.slot[index]! >= 0) state.candidates++
  }

  private shiftAvailability(index: number, delta: number): void {
    const candidate = this.slot[index]! >= 0
    if (candidate) this.bucketRemove(index)
    this.availability[index] = this.availability[index]! + delta
    if (candidate) this.bucketInsert(index)
  }

  private bucketInsert(index: number): void {
    const level = this.availability[index]!
    while (this.buckets.length <= level) this.buckets.push([])
    const bucket = this.buckets[level]!
    this.slot[index] = bucket.length
    bucket.push(index)
  }

  private bucketRemove(index: number): void {
    const bucket = this.buckets[this.availability[index]!]!
    const position = this.slot[index]!
    const last = bucket.pop()!
    if (last !== index) {
      bucket[position] = last
      this.slot[last] = position
    }
    this.slot[index] = -1
  }

  private addCandidate(index: number): void {
    this.bucketInsert(index)
    this.candidateCount++
    for (const state of this.peers.values()) if (state.pieces.has(index)) state.candidates++
  }

  private removeCandidate(index: number): void {
    this.bucketRemove(index)
    this.candidateCount--
    for (const state of this.peers.values()) if (state.pieces.has(index)) state.candidates--
  }

  /** The rarest candidate the peer has (random among equals), or -1. */
  private pickFresh(state: PeerState, allowed: ReadonlySet<number> | undefined): number {
    if (state.candidates === 0) return -1
    if (allowed !== undefined) {
      // Few allowed-fast pieces: reservoir-sample the rarest among them.
      let best = -1
      let ties = 0
      for (const index of allowed) {
        if (this.slot[index] === undefined || this.slot[index] < 0 || !state.pieces.has(index)) continue
        const level = this.availability[index]!
        const bestLevel = best < 0 ? Infinity : this.availability[best]!
        if (level < bestLevel) {
          best = index
          ties = 1
        } else if (level === bestLevel && this.randomBelow(++ties) === 0) {
          best = index
        }
      }
      return best
    }
    // Bucket 0 holds pieces no peer has; a random start in a bucket breaks ties.
    for (let level = 1; level < this.buckets.length; level++) {
      const bucket = this.buckets[level]!
      const start = this.randomBelow(bucket.length)
      for (let k = 0; k < bucket.length; k++) {
        const index = bucket[(start + k) % bucket.length]!
        if (state.pieces.has(index)) return index
      }
    }
    return -1
  }

  private randomBelow(n: number): number {
    const r = Math.floor(this.random() * n)
    return r >= 0 && r < n ? r : 0
  }

  private start(peer: string, state: PeerState, index: number): Progress {
    this.removeCandidate(index)
    const blockCount = Math.ceil(this.pieceSize(index) / BLOCK_SIZE)
    const progress: Progress = {
      index,
      blockCount,
      received: new Uint8Array(blockCount),
      holders: Array.from({ length: blockCount }, () => []),
      receivedCount: 0,
      unrequested: blockCount,
      cursor: 0,
      owner: undefined
    }
    this.progress.set(index, progress)
    this.own(peer, state, progress)
    this.refreshOpen(progress)
    return progress
  }

  private own(peer: string, state: PeerState, progress: Progress): void {
    progress.owner = peer
    state.owned.add(progress.index)
  }

  private disown(progress: Progress): void {
    if (progress.owner !== undefined) this.peers.get(progress.owner)?.owned.delete(progress.index)
    progress.owner = undefined
  }

  /** Requests the piece's unrequested blocks in order until `out` holds `max`. */
  private take(peer: string, state: PeerState, progress: Progress, max: number, out: Array<BlockRequest>): void {
    let block = progress.cursor
    while (block < progress.blockCount && out.length < max && progress.unrequested > 0) {
      if (progress.received[block] === 0 && progress.holders[block]!.length === 0) {
        this.request(peer, state, progress, block, out)
      }
      block++
    }
    progress.cursor = block
    this.refreshOpen(progress)
  }

  /** Endgame: asks this peer too for blocks held by the fewest other peers. */
  private duplicate(
    peer: string,
    state: PeerState,
    eligible: (index: number) => boolean,
    max: number,
    out: Array<BlockRequest>
  ): void {
    for (let holders = 1; holders < MAX_HOLDERS; holders++) {
      for (const progress of this.progress.values()) {
        if (progress.receivedCount === progress.blockCount || !eligible(progress.index)) continue
        for (let block = 0; block < progress.blockCount; block++) {
          const current = progress.holders[block]!
          if (current.length !== holders || current.includes(peer)) continue
          this.request(peer, state, progress, block, out)
          if (out.length >= max) return
        }
      }
    }
  }

  private request(peer: string, state: PeerState, progress: Progress, block: number, out: Array<BlockRequest>): void {
    const holders = progress.holders[block]!
    if (holders.length === 0) progress.unrequested--
    holders.push(peer)
    state.requests.add(progress.index * this.blocksPerPiece + block)
    this.requestCount++
    out.push({ index: progress.index, begin: block * BLOCK_SIZE, length: this.blockLength(progress.index, block) })
  }

  /** Returns the peer's requests (except for pieces `keep` accepts) to the pool. */
  private release(peer: string, state: PeerState, keep: (index: number) => boolean): ReadonlyArray<BlockRequest> {
    const released: Array<BlockRequest> = []
    const touched = new Set<Progress>()
    for (const id of state.requests) {
      const index = Math.floor(id / this.blocksPerPiece)
      if (keep(index)) continue
      const block = id - index * this.blocksPerPiece
      const progress = this.progress.get(index)!
      this.dropHolder(progress, block, peer)
      this.unrequest(state, id)
      touched.add(progress)
      released.push({ index, begin: block * BLOCK_SIZE, length: this.blockLength(index, block) })
    }
    for (const index of state.owned) if (!keep(index)) this.disown(this.progress.get(index)!)
    for (const progress of touched) this.refreshOpen(progress)
    return released
  }

  private unrequest(state: PeerState, id: number): void {
    if (state.requests.delete(id)) this.requestCount--
  }

  private dropHolder(progress: Progress, block: number, peer: string): void {
    const holders = progress.holders[block]!
    holders.splice(holders.indexOf(peer), 1)
    if (holders.length === 0) {
      progress.unrequested++
      if (block < progress.cursor) progress.cursor = block
    }
  }

  /** Drops a piece's block state and whatever requests for it are still outstanding. */
  private forget(progress: Progress): void {
    for (let block = 0; block < progress.blockCount; block++) {
      const id = progress.index * this.blocksPerPiece + block
      for (const holder of progress.holders[block]!) this.unrequest(this.peers.get(holder)!, id)
    }
    this.disown(progress)
    this.open.delete(progress.index)
    this.progress.delete(progress.index)
  }

  private refreshOpen(progress: Progress): void {
    if (progress.unrequested > 0) this.open.add(progress.index)
    else this.open.delete(progress.index)
  }

  private pieceSize(index: number): number {
    return index === this.pieceCount - 1 ? this.totalLength - index * this.pieceLength : this.pieceLength
  }

  /** The block number of `begin` in a piece in flight, or -1 when it is not a block boundary there. */
  private blockOf(index: number, begin: number): number {
    const progress = this.progress.get(index)
    if (progress === undefined || !Number.isInteger(begin) || begin % BLOCK_SIZE !== 0) return -1
    const block = begin / BLOCK_SIZE
    return block >= 0 && block < progress.blockCount ? block : -1
  }

  private blockLength(index: number, block: number): number {
    return Math.min(BLOCK_SIZE, this.pieceSize(index) - block * BLOCK_SIZE)
  }
}

const dropped: BlockOutcome = { accepted: false, cancel: [] }

/** The availability and slots of a picker without an index: nothing is stored there. */
const UNINDEXED = new Int32Array(0)

/** A picker for a torrent, once its geometry and bitfields agree (the same as `PiecePicker.make`). */
export const make: (options: Options) => Either.Either<PiecePicker, PiecePickerError> = PiecePicker.make
