/**
 * The mailbox loop of one running torrent: the only fiber that touches its swarm state (piece
 * picker, peer table, choker, candidates). Peer connections, the piece verifier and the ticker
 * post events to its bounded mailbox; it answers by sending messages to peers' outboxes, which
 * never block, so no cycle of waits can form.
 */
import { Clock, Effect, Either, Fiber, FiberMap, Option, Queue, Ref, type Scope } from "effect"
import { type Metainfo, pieceSize } from "../metainfo/Metainfo.js"
import { type Address, formatAddress, type Network } from "../net/Network.js"
import * as PeerConnection from "../peer/PeerConnection.js"
import type { PeerError } from "../peer/PeerError.js"
import type { PeerId } from "../peer/PeerId.js"
import type { PeerLink } from "../peer/PeerLink.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as PiecePicker from "../picker/PiecePicker.js"
import type { SessionConfig } from "../session/SessionConfig.js"
import * as PieceAssembler from "../storage/PieceAssembler.js"
import * as ReadCache from "../storage/ReadCache.js"
import type { StorageError, TorrentStorage } from "../storage/Storage.js"
import * as BlockPool from "../wire/BlockPool.js"
import * as Extension from "../wire/Extension.js"
import * as Message from "../wire/Message.js"
import * as Choker from "./Choker.js"
import * as PeerExtensions from "./PeerExtensions.js"
import type { PeerSource, TorrentEvent } from "./TorrentEvent.js"

/** Live figures of a running torrent, published every tick. */
export interface SwarmStats {
  readonly verifiedPieces: number
  readonly verifiedBytes: number
  /** Payload bytes received and sent since start. */
  readonly downloaded: number
  readonly uploaded: number
  /** Bytes per second, smoothed. */
  readonly downloadRate: number
  readonly uploadRate: number
  readonly peers: number
  readonly seeds: number
  readonly connecting: number
  readonly candidates: number
  readonly complete: boolean
}

/** What the supervisor needs to run. */
export interface SupervisorOptions {
  readonly metainfo: Metainfo
  readonly peerId: PeerId
  readonly storage: TorrentStorage
  /** Pieces already verified (from the resume check); the supervisor adds each piece it verifies. */
  readonly have: Bitfield
  readonly config: SessionConfig
  readonly mailbox: Queue.Queue<TorrentEvent>
  /** Our listening port (0 when not listening), told to peers in the extended handshake. */
  readonly port: number
  /** Runs once when the last piece is verified and flushed. */
  readonly onComplete: Effect.Effect<void>
  /** Our DHT node, when the session runs one: peers' BEP 5 `port` messages feed its table. */
  readonly dht?: { readonly port: number; readonly addNode: (address: Address) => Effect.Effect<unknown> }
  /** Asks the trackers for peers soon (when few are connected and none are left to dial); none without trackers. */
  readonly needPeers?: Effect.Effect<void>
  /** Receives the live figures every tick. */
  readonly onStats: (stats: SwarmStats) => Effect.Effect<void>
  /** Told why each peer connection (or connection attempt) ended. */
  readonly onPeerClosed: (error: PeerError) => Effect.Effect<void>
  /** Set while the supervisor runs: how an incoming connection for this torrent joins it. */
  readonly incoming: Ref.Ref<Option.Option<AcceptPeer>>
}

/** Runs an incoming, handshaken connection as one of the torrent's peers until it ends. */
export type AcceptPeer = (wire: PeerConnection.OpenedWire) => Effect.Effect<void>

/** One connected peer as the supervisor sees it. */
interface PeerEntry {
  readonly link: PeerLink
  readonly pieces: Bitfield
  readonly allowedFast: Set<number>
  readonly connectedAt: number
  amInterested: boolean
  peerInterested: boolean
  peerChoking: boolean
  depth: number
  lastBlockAt: number | undefined
  snubbed: boolean
  downloadRate: number
  uploadRate: number
  lastDownloaded: number
  lastUploaded: number
  /** BEP 10: the ids the peer wants each extension sent under. */
  extensions: ReadonlyMap<string, number>
  /** The port the peer accepts connections on, if known (its extended handshake's `p`). */
  listenPort: number | undefined
  /** The addresses we last told it about over ut_pex. */
  pexSent: Set<string>
}

/** A peer address we may dial. */
interface Candidate {
  readonly address: Address
  state: "idle" | "connecting" | "connected"
  failures: number
  nextAttemptAt: number
  /** Given by the user: retried at the longest backoff forever, never forgotten. */
  manual: boolean
}

const TICK_MILLIS = 1000
/** Piece buffers kept for reuse. */
const MAX_SPARE_BUFFERS = 16
/** Block buffers kept for reuse (4 MiB): a burst of reads from a fast peer is up to 2 MiB. */
const MAX_SPARE_BLOCKS = 256
/** Pieces hashed or written at once (node's thread pool has 4 threads for file writes). */
const VERIFIERS = 4
const PEX_INTERVAL_TICKS = 60
const MAX_DHT_NODES_PER_TICK = 8
/** Below this many peers, with nobody left to dial, the trackers are asked for more (every 30 s at most). */
const WANT_PEERS = 10
const NEED_PEERS_MILLIS = 30_000
/** Peers listed in one ut_pex message at most (BEP 11 asks for no more than 50 added). */
const PEX_MAX_ADDED = 50
const CHOKE_ROUND_TICKS = 10
const MAX_ALLOWED_FAST = 32
/**
 * Requests in flight at a new or slow peer. Slow start (one more per block received) takes a fast
 * peer to its rate's depth in a few round trips; a deep start would have every one of many slow
 * peers open pieces of its own and hold their buffers for the whole download.
 */
const MIN_DEPTH = 4
/** Seconds of a peer's rate we keep requested: enough to cover the round trip and then some. */
const PIPELINE_SECONDS = 2

/** The address back from its `host:port` key. */
const parseKey = (key: string): Address | undefined => {
  const colon = key.lastIndexOf(":")
  const host = key.slice(0, colon).replace(/^\[|\]$/g, "")
  const port = Number(key.slice(colon + 1))
  return colon > 0 && port > 0 ? { host, port } : undefined
}

/** The exit reason of the supervisor: only storage failures stop a torrent. */
export type SupervisorError = StorageError

/** Runs the supervisor until interrupted or a storage failure. */
export const run = (options: SupervisorOptions): Effect.Effect<never, SupervisorError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const { config, mailbox, metainfo, storage } = options
    const info = metainfo.info
    const picker = yield* PiecePicker.make({
      pieceCount: info.pieceCount,
      pieceLength: info.pieceLength,
      totalLength: info.totalLength,
      have: options.have
    }).pipe(Effect.orDie)
    const have = picker.have
    const peers = new Map<string, PeerEntry>()
    const candidates = new Map<string, Candidate>()
    const assemblers = new Map<number, PieceAssembler.PieceAssembler>()
    const strikes = new Map<string, number>()
    const banned = new Set<string>()
    const peerIds = new Set<string>()
    const connections = yield* FiberMap.make<string>()
    const verifyQueue = yield* Queue.unbounded<PieceAssembler.CompletePiece>()
    // Piece buffers handed back by the verifier once written, reused by the next pieces.
    const spareBuffers: Array<Buffer> = []
    let choker = Choker.make({ regularSlots: config.uploadSlots })
    let pendingWriteBytes = 0
    let verifiedBytes = 0
    for (const index of have.indices()) verifiedBytes += pieceSize(info, index)
    let downloaded = 0
    let uploaded = 0
    let downloadRate = 0
    let uploadRate = 0
    let ticks = 0
    let now = yield* Clock.currentTimeMillis
    let completeAnnounced = picker.isComplete

    const peerContext: PeerConnection.PeerContext = {
      infoHash: metainfo.infoHash,
      peerId: options.peerId,
      info,
      have,
      readBlock: ReadCache.make(storage, config.readCacheBytes),
      events: mailbox,
      blocks: BlockPool.make(PiecePicker.BLOCK_SIZE, MAX_SPARE_BLOCKS),
      dht: options.dht !== undefined,
      config: {
        connectTimeout: config.connectTimeout,
        handshakeTimeout: config.handshakeTimeout,
        idleTimeout: config.idleTimeout,
        keepAliveInterval: config.keepAliveInterval,
        maxMessageLength: config.maxMessageLength,
        maxPendingUploads: config.maxPendingUploads,
        maxBlockLength: PiecePicker.BLOCK_SIZE
      }
    }

    // ---- requests -----------------------------------------------------------------------------

    const fill = (entry: PeerEntry) => {
      if (picker.isComplete || pendingWriteBytes >= config.maxPendingWriteBytes) return
      if (!entry.amInterested || (entry.peerChoking && entry.allowedFast.size === 0)) return
      const want = entry.depth - picker.outstanding(entry.link.key)
      if (want <= 0) return
      const requests = picker.nextRequests(entry.link.key, want, {
        choked: entry.peerChoking,
        allowedFast: entry.allowedFast
      })
      if (requests.length > 0) {
        entry.link.send(requests.map((r) => Message.Request(r.index, r.begin, r.length)))
      }
    }

    const fillAll = () => {
      for (const entry of peers.values()) fill(entry)
    }

    const updateInterest = (entry: PeerEntry) => {
      const interesting = picker.isInteresting(entry.link.key)
      if (interesting !== entry.amInterested) {
        entry.amInterested = interesting
        entry.link.send([interesting ? Message.Interested : Message.NotInterested])
      }
    }

    // ---- choking ------------------------------------------------------------------------------

    const setChoking = (entry: PeerEntry, choking: boolean) => {
      if (entry.link.choking === choking) return
      entry.link.choking = choking
      entry.link.send([choking ? Message.Choke : Message.Unchoke])
    }

    const chokeRound = () => {
      const result = Choker.round(choker, {
        now,
        seeding: picker.isComplete,
        peers: [...peers.values()].map((entry) => ({
          key: entry.link.key,
          interested: entry.peerInterested,
          downloadRate: entry.downloadRate,
          uploadRate: entry.uploadRate,
          connectedAt: entry.connectedAt,
          lastBlockAt: entry.lastBlockAt,
          downloading: entry.amInterested && !entry.peerChoking,
          snubbed: entry.snubbed
        }))
      })
      choker = result.state
      for (const entry of peers.values()) setChoking(entry, !result.unchoke.has(entry.link.key))
    }

    /** A newly interested peer gets a slot at once while slots are free, instead of waiting a round. */
    const unchokeIfFree = (entry: PeerEntry) => {
      let unchoked = 0
      for (const other of peers.values()) if (!other.link.choking) unchoked++
      if (unchoked < config.uploadSlots + 1) setChoking(entry, false)
    }

    // ---- dialing ------------------------------------------------------------------------------

    const dial = (candidate: Candidate) => {
      const key = formatAddress(candidate.address)
      candidate.state = "connecting"
      return FiberMap.run(
        connections,
        key,
        PeerConnection.dial(peerContext, candidate.address).pipe(
          Effect.catchAll((error: PeerError) => Queue.offer(mailbox, { _tag: "PeerClosed", key, error }))
        )
      )
    }

    // A seed dials too: some leechers (transmission 3.00 with 127.x peers) never dial out themselves.
    const dialMore = Effect.suspend(() => {
      let connecting = 0
      for (const candidate of candidates.values()) if (candidate.state === "connecting") connecting++
      let slots = Math.min(config.maxPeersPerTorrent - peers.size - connecting, config.maxConnecting - connecting)
      const toDial: Array<Candidate> = []
      for (const candidate of candidates.values()) {
        if (slots <= 0) break
        if (candidate.state !== "idle" || candidate.nextAttemptAt > now) continue
        toDial.push(candidate)
        slots--
      }
      return Effect.forEach(toDial, dial, { discard: true })
    })

    const addCandidates = (addresses: ReadonlyArray<Address>, source?: PeerSource) => {
      for (const address of addresses) {
        const key = formatAddress(address)
        const known = candidates.get(key)
        if (known !== undefined) known.manual ||= source === "manual"
        if (known !== undefined || banned.has(key) || candidates.size >= config.maxCandidates) continue
        if (address.port === 0) continue
        candidates.set(key, { address, state: "idle", failures: 0, nextAttemptAt: 0, manual: source === "manual" })
      }
    }

    // ---- events -------------------------------------------------------------------------------

    const onConnected = (link: PeerLink) => {
      const idHex = Buffer.from(link.handshake.peerId).toString("hex")
      if (banned.has(link.key)) return link.drop("Banned")
      if (peers.has(link.key) || peerIds.has(idHex)) return link.drop("Duplicate")
      if (peers.size >= config.maxPeersPerTorrent) return link.drop("LimitReached")
      peerIds.add(idHex)
      const candidate = candidates.get(link.key)
      if (candidate !== undefined) {
        candidate.state = "connected"
        candidate.failures = 0
      }
      const entry: PeerEntry = {
        link,
        pieces: Bitfield.empty(info.pieceCount),
        allowedFast: new Set(),
        connectedAt: now,
        amInterested: false,
        peerInterested: false,
        peerChoking: true,
        depth: MIN_DEPTH,
        lastBlockAt: undefined,
        snubbed: false,
        downloadRate: 0,
        uploadRate: 0,
        lastDownloaded: 0,
        lastUploaded: 0,
        extensions: new Map(),
        listenPort: link.direction === "outgoing" ? link.address.port : undefined,
        pexSent: new Set()
      }
      peers.set(link.key, entry)
      if (options.dht !== undefined && link.handshake.dht) link.send([Message.Port(options.dht.port)])
      if (link.handshake.extensionProtocol) {
        link.send([
          PeerExtensions.handshake({
            metadataSize: metainfo.infoBytes.length,
            port: options.port,
            requestQueue: config.maxPendingUploads,
            private: info.private,
            peerHost: link.address.host
          })
        ])
      }
      picker.addPeer(link.key, Bitfield.empty(info.pieceCount))
      const fast = link.handshake.fast
      if (fast && have.isComplete) link.send([Message.HaveAll])
      else if (fast && have.count === 0) link.send([Message.HaveNone])
      else if (have.count > 0) link.send([Message.Bitfield(Uint8Array.from(have.bytes))])
    }

    const peerHas = (entry: PeerEntry, index: number) => {
      if (entry.pieces.add(index)) picker.peerHas(entry.link.key, index)
    }

    const onMessages = (entry: PeerEntry, messages: ReadonlyArray<Message.Message>) => {
      const key = entry.link.key
      let availabilityChanged = false
      for (const message of messages) {
        switch (message._tag) {
          case "Choke":
            entry.peerChoking = true
            picker.peerChoked(key, entry.allowedFast)
            break
          case "Unchoke":
            entry.peerChoking = false
            if (entry.amInterested) entry.lastBlockAt ??= now
            break
          case "Interested":
            entry.peerInterested = true
            unchokeIfFree(entry)
            break
          case "NotInterested":
            entry.peerInterested = false
            break
          case "Have":
            peerHas(entry, message.index)
            availabilityChanged = true
            break
          case "Bitfield": {
            for (let index = 0; index < info.pieceCount; index++) {
              if ((message.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0) peerHas(entry, index)
            }
            availabilityChanged = true
            break
          }
          case "HaveAll":
            for (let index = 0; index < info.pieceCount; index++) entry.pieces.add(index)
            picker.peerHasAll(key)
            availabilityChanged = true
            break
          case "HaveNone":
            break
          case "AllowedFast":
            if (entry.allowedFast.size < MAX_ALLOWED_FAST) entry.allowedFast.add(message.index)
            break
          case "Reject":
            picker.requestRejected(key, message)
            break
          case "Piece":
            onBlock(entry, message)
            break
          case "Extended":
            onExtended(entry, message)
            break
          case "Port":
            if (options.dht !== undefined && message.port > 0) {
              dhtNodes.push({ host: entry.link.address.host, port: message.port })
            }
            break
          default:
            // Suggest: we pick rarest-first anyway.
            break
        }
      }
      if (availabilityChanged) {
        if (picker.isComplete && entry.pieces.isComplete) return entry.link.drop("NotUseful")
        updateInterest(entry)
      }
      fill(entry)
    }

    const onExtended = (entry: PeerEntry, message: Message.Extended) => {
      if (message.id === Extension.HANDSHAKE_ID) {
        Either.map(Extension.decodeHandshake(message.payload), (handshake) => {
          entry.extensions = handshake.extensions
          if (handshake.port !== undefined) entry.listenPort = handshake.port
        })
      } else if (message.id === PeerExtensions.OUR_IDS.ut_metadata) {
        const theirId = entry.extensions.get(Extension.UT_METADATA)
        if (theirId === undefined || theirId === 0) return
        const reply = PeerExtensions.metadataReply(metainfo.infoBytes, message.payload, theirId)
        if (reply !== undefined) entry.link.send([reply])
      } else if (message.id === PeerExtensions.OUR_IDS.ut_pex && !info.private) {
        addCandidates(PeerExtensions.pexPeers(message.payload))
      }
    }

    /** The address a peer accepts connections on, as we tell others about it. */
    const dialable = (entry: PeerEntry): Address | undefined =>
      entry.listenPort === undefined ? undefined : { host: entry.link.address.host, port: entry.listenPort }

    const sendPex = () => {
      if (info.private) return
      const current = new Map<string, Address>()
      for (const entry of peers.values()) {
        const address = dialable(entry)
        if (address !== undefined && current.size < PEX_MAX_ADDED * 4) current.set(formatAddress(address), address)
      }
      for (const entry of peers.values()) {
        const theirId = entry.extensions.get(Extension.UT_PEX)
        if (theirId === undefined || theirId === 0) continue
        const own = dialable(entry)
        const ownKey = own === undefined ? undefined : formatAddress(own)
        const added = [...current].filter(([key]) => key !== ownKey && !entry.pexSent.has(key)).slice(0, PEX_MAX_ADDED)
        const dropped = [...entry.pexSent].filter((key) => !current.has(key)).slice(0, PEX_MAX_ADDED)
        for (const [key] of added) entry.pexSent.add(key)
        for (const key of dropped) entry.pexSent.delete(key)
        const message = PeerExtensions.pexMessage(
          theirId,
          added.map(([, address]) => address),
          dropped.flatMap((key) => {
            const address = parseKey(key)
            return address === undefined ? [] : [address]
          })
        )
        if (message !== undefined) entry.link.send([message])
      }
    }

    const onBlock = (entry: PeerEntry, message: Message.Piece) => {
      addBlock(entry, message)
      // Copied into its piece or not wanted: either way, nothing reads the block any more.
      peerContext.blocks.release(message.block)
    }

    const addBlock = (entry: PeerEntry, message: Message.Piece) => {
      const key = entry.link.key
      const outcome = picker.blockReceived(key, message.index, message.begin, message.block.length)
      if (!outcome.accepted) return
      entry.lastBlockAt = now
      entry.snubbed = false
      // Slow start: one more request in flight per block received doubles the depth every round
      // trip, until the rate measured at the next tick sets it.
      if (entry.depth < config.maxRequestsPerPeer) entry.depth++
      downloaded += message.block.length
      for (const { peer, request } of outcome.cancel) {
        peers.get(peer)?.link.send([Message.Cancel(request.index, request.begin, request.length)])
      }
      let assembler = assemblers.get(message.index)
      if (assembler === undefined) {
        assembler = PieceAssembler.PieceAssembler.make(info, message.index, spareBuffers.pop())
        assemblers.set(message.index, assembler)
      }
      const added = assembler.add(message.begin, message.block, key)
      if (added._tag === "Complete") {
        assemblers.delete(message.index)
        pendingWriteBytes += added.piece.data.length
        Queue.unsafeOffer(verifyQueue, added.piece)
      }
    }

    const scope = yield* Effect.scope
    // The last background flush; completion waits for it (it took its files off the dirty set).
    let flushing: Fiber.RuntimeFiber<void> | undefined
    let unflushedBytes = 0
    const flushInBackground = Effect.gen(function* () {
      unflushedBytes = 0
      flushing = yield* Effect.forkIn(
        storage.flush.pipe(Effect.catchAll((error) => Queue.offer(mailbox, { _tag: "StorageFailed", error })), Effect.asVoid),
        scope
      )
    })

    const onVerified = (index: number) =>
      Effect.gen(function* () {
        const size = pieceSize(info, index)
        pendingWriteBytes -= size
        verifiedBytes += size
        unflushedBytes += size
        options.have.add(index)
        for (const key of picker.pieceVerified(index)) {
          const entry = peers.get(key)
          if (entry !== undefined) updateInterest(entry)
        }
        for (const entry of peers.values()) {
          if (!entry.pieces.has(index)) entry.link.send([Message.Have(index)])
        }
        if (picker.isComplete && !completeAnnounced) {
          completeAnnounced = true
          if (flushing !== undefined) yield* Fiber.join(flushing)
          yield* storage.flush
          yield* publish
          yield* options.onComplete
          for (const entry of peers.values()) if (entry.pieces.isComplete) entry.link.drop("NotUseful")
        } else if (unflushedBytes >= config.flushEveryBytes && (flushing === undefined || flushing.unsafePoll() !== null)) {
          yield* flushInBackground
        }
        fillAll()
      })

    const onRejected = (index: number, contributors: ReadonlyArray<string>) => {
      pendingWriteBytes -= pieceSize(info, index)
      picker.pieceRejected(index)
      // The sole contributor of a bad piece is surely the liar; shared blame weighs less.
      const weight = contributors.length === 1 ? 2 : 1
      for (const key of contributors) {
        const count = (strikes.get(key) ?? 0) + weight
        strikes.set(key, count)
        if (count >= config.banAfterBadPieces * 2 - 1) {
          banned.add(key)
          peers.get(key)?.link.drop("Banned")
        }
      }
      fillAll()
    }

    const onClosed = (key: string, error: PeerError) =>
      Effect.gen(function* () {
        yield* Effect.logDebug(`peer ${key} closed: ${error._tag}${"reason" in error ? ` (${error.reason})` : ""}`)
        yield* options.onPeerClosed(error)
        const entry = peers.get(key)
        if (entry !== undefined) {
          // Bytes sent since the last tick would otherwise go uncounted.
          uploaded += entry.link.stats.uploaded - entry.lastUploaded
          peers.delete(key)
          peerIds.delete(Buffer.from(entry.link.handshake.peerId).toString("hex"))
          picker.removePeer(key)
          if (peers.size === 0) peerContext.blocks.clear()
        }
        const candidate = candidates.get(key)
        if (candidate !== undefined) {
          candidate.state = "idle"
          const failed = entry === undefined
          candidate.failures = failed ? candidate.failures + 1 : 0
          // Back off exponentially from 5 s up to 10 minutes; forget addresses that never answer.
          candidate.nextAttemptAt = now + Math.min(600_000, 5_000 * 2 ** candidate.failures)
          // A seed we dropped as a seed ourselves has nothing for us: do not dial it again.
          // Never dial again: a seed we do not need, or our own address handed back by a tracker.
          const useless =
            (error._tag === "Dropped" && error.reason === "NotUseful") ||
            (error._tag === "HandshakeFailed" && error.reason === "SelfConnection")
          if (error._tag === "HandshakeFailed" && error.reason === "SelfConnection") banned.add(key)
          if (banned.has(key) || useless || (candidate.failures > 8 && !candidate.manual)) candidates.delete(key)
        }
        fillAll()
        yield* dialMore
      })

    // A quiet torrent (no peer, nobody being dialed, rates at zero) ticks only when something is
    // due, and its ticker ends while nothing is: the next event starts it again. A thousand idle
    // torrents in a session then cost no timer, no fiber and no garbage between their events.
    /** 0 while the torrent is not quiet; else the next time a tick is due (Infinity: none). */
    let quietUntil = 0
    let needPeersAt = now + NEED_PEERS_MILLIS
    let ticker: Fiber.RuntimeFiber<void> | undefined

    const quietDeadline = (): number => {
      if (peers.size > 0 || downloadRate >= 1 || uploadRate >= 1) return 0
      // Asking the trackers for peers (every NEED_PEERS_MILLIS while few are connected) is due too.
      let due = options.needPeers === undefined || picker.isComplete ? Infinity : needPeersAt
      for (const candidate of candidates.values()) {
        if (candidate.state === "connecting") return 0
        if (candidate.state === "idle") due = Math.min(due, candidate.nextAttemptAt)
      }
      return due > now + TICK_MILLIS ? due : 0
    }

    const onTick = Effect.gen(function* () {
      ticks++
      let downTotal = 0
      let upTotal = 0
      for (const entry of peers.values()) {
        const { stats } = entry.link
        const down = stats.downloaded - entry.lastDownloaded
        const up = stats.uploaded - entry.lastUploaded
        entry.lastDownloaded = stats.downloaded
        entry.lastUploaded = stats.uploaded
        entry.downloadRate = entry.downloadRate * 0.6 + down * 0.4
        entry.uploadRate = entry.uploadRate * 0.6 + up * 0.4
        downTotal += down
        upTotal += up
        uploaded += up
        entry.depth = Math.max(
          MIN_DEPTH,
          Math.min(config.maxRequestsPerPeer, Math.ceil((entry.downloadRate * PIPELINE_SECONDS) / PiecePicker.BLOCK_SIZE))
        )
        const owed = picker.outstanding(entry.link.key) > 0 && !entry.peerChoking
        if (owed && entry.lastBlockAt !== undefined && now - entry.lastBlockAt > config.requestTimeout) {
          // Snubbed: its requests go back to the pool for others; it keeps one slot to recover.
          entry.snubbed = true
          for (const r of picker.peerChoked(entry.link.key)) {
            entry.link.send([Message.Cancel(r.index, r.begin, r.length)])
          }
          entry.depth = 1
          entry.lastBlockAt = now
        }
      }
      downloadRate = downloadRate * 0.6 + downTotal * 0.4
      uploadRate = uploadRate * 0.6 + upTotal * 0.4
      if (ticks % CHOKE_ROUND_TICKS === 0) chokeRound()
      if (ticks % PEX_INTERVAL_TICKS === 0) sendPex()
      if (now >= needPeersAt) {
        needPeersAt = now + NEED_PEERS_MILLIS
        if (!picker.isComplete && peers.size < Math.min(config.maxPeersPerTorrent, WANT_PEERS)) {
          let dialable = 0
          for (const candidate of candidates.values()) if (candidate.state === "idle" && candidate.nextAttemptAt <= now) dialable++
          if (dialable === 0 && options.needPeers !== undefined) yield* options.needPeers
        }
      }
      fillAll()
      yield* dialMore
      quietUntil = quietDeadline()
      // What is left of the smoothed rates once every peer is gone is noise: a quiet torrent shows 0.
      if (quietUntil > 0) downloadRate = uploadRate = 0
      yield* publish
      if (options.dht !== undefined && dhtNodes.length > 0) {
        const nodes = dhtNodes.splice(0, MAX_DHT_NODES_PER_TICK)
        dhtNodes.length = 0
        yield* Effect.fork(Effect.forEach(nodes, options.dht.addNode, { discard: true }))
      }
    })

    const publish = Effect.suspend(() => {
      let seeds = 0
      let connecting = 0
      for (const entry of peers.values()) if (entry.pieces.isComplete) seeds++
      for (const candidate of candidates.values()) if (candidate.state === "connecting") connecting++
      return options.onStats({
        verifiedPieces: have.count,
        verifiedBytes,
        downloaded,
        uploaded,
        downloadRate,
        uploadRate,
        peers: peers.size,
        seeds,
        connecting,
        candidates: candidates.size,
        complete: picker.isComplete
      })
    })

    // DHT nodes learnt from `port` messages, pinged off the supervisor's loop.
    const dhtNodes: Array<Address> = []

    const handle = (event: TorrentEvent): Effect.Effect<void, SupervisorError, Network> => {
      switch (event._tag) {
        case "PeersFound":
          addCandidates(event.addresses, event.source)
          return dialMore
        case "PeerConnected":
          onConnected(event.link)
          // Its dial slot is free: without this, at most maxConnecting (16) new dials a second.
          return dialMore
        case "PeerMessages": {
          const entry = peers.get(event.key)
          if (entry !== undefined) onMessages(entry, event.messages)
          return Effect.void
        }
        case "PeerClosed":
          return onClosed(event.key, event.error)
        case "PieceVerified":
          return onVerified(event.index)
        case "PieceRejected":
          onRejected(event.index, event.peers)
          return Effect.void
        case "StorageFailed":
          return Effect.fail(event.error)
        case "Tick":
          return onTick
      }
    }

    // The verifiers: hash complete pieces and write the good ones, off the supervisor's loop.
    // Several at once, so that one piece is hashed while others are being written.
    const verifier = Effect.forever(
      Effect.gen(function* () {
        const piece = yield* Queue.take(verifyQueue)
        const outcome = yield* PieceAssembler.verifyAndWrite(storage, piece).pipe(
          Effect.catchAll((error) => Effect.succeed({ _tag: "StorageFailed", error } as const))
        )
        // Only whole-piece buffers of our own allocation go back (never a slice of a shared pool).
        if (piece.data.buffer.byteLength === info.pieceLength && spareBuffers.length < MAX_SPARE_BUFFERS) {
          spareBuffers.push(Buffer.from(piece.data.buffer, 0, info.pieceLength))
        }
        yield* Queue.offer(mailbox, outcome)
      })
    )
    // Started with the first complete piece: a torrent that downloads nothing holds no verifier fiber.
    let verifying = false
    const startVerifiers = Effect.suspend(() => {
      verifying = true
      return Effect.forEach(Array.from({ length: VERIFIERS }), () => Effect.forkScoped(verifier), { discard: true })
    })
    // The ticker: a tick now and every second after, until the torrent is quiet (see onTick).
    const startTicker = Effect.gen(function* () {
      if (ticker !== undefined) yield* Fiber.interrupt(ticker)
      ticker = yield* Effect.forkIn(
        Effect.gen(function* () {
          for (;;) {
            yield* Queue.offer(mailbox, { _tag: "Tick" })
            yield* Effect.sleep(TICK_MILLIS)
            if (quietUntil === Infinity) {
              // Nothing is due: the next event starts a new ticker; this one is not kept.
              ticker = undefined
              return
            }
            const quietFor = quietUntil - (yield* Clock.currentTimeMillis)
            if (quietFor > 0) yield* Effect.sleep(quietFor)
          }
        }),
        scope
      )
    })
    yield* startTicker
    yield* publish

    // Incoming peers run in this supervisor's fiber map, so pausing the torrent closes them too;
    // the listener's handler waits for the connection and interrupts it if the listener closes.
    const accept: AcceptPeer = (wire) => {
      const key = formatAddress(wire.connection.remote)
      return FiberMap.run(
        connections,
        key,
        PeerConnection.accept(peerContext, wire).pipe(
          Effect.catchAll((error: PeerError) => Queue.offer(mailbox, { _tag: "PeerClosed", key, error }))
        )
      ).pipe(Effect.flatMap((fiber) => Fiber.await(fiber).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))), Effect.asVoid)
    }
    yield* Effect.acquireRelease(Ref.set(options.incoming, Option.some(accept)), () =>
      Ref.set(options.incoming, Option.none())
    )

    return yield* Effect.forever(
      Effect.gen(function* () {
        const events = yield* Queue.takeBetween(mailbox, 1, 64)
        now = yield* Clock.currentTimeMillis
        for (const event of events) {
          // Any event may start something (a dial, a peer): a quiet torrent ticks again at once.
          if (quietUntil > 0 && event._tag !== "Tick") {
            quietUntil = 0
            yield* startTicker
          }
          yield* handle(event)
        }
        if (!verifying && pendingWriteBytes > 0) yield* startVerifiers
      })
    )
  })
