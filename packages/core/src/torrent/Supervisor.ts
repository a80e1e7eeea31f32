/**
 * The mailbox loop of one running torrent: the only fiber that touches its swarm state (piece
 * picker, peer table, choker, candidates). Peer connections, the piece verifier and the ticker
 * post events to its bounded mailbox; it answers by sending messages to peers' outboxes, which
 * never block, so no cycle of waits can form.
 */
import { Effect, FiberSet, Option, Queue, Ref, type Scope } from "effect"
import { type Metainfo, pieceSize } from "../metainfo/Metainfo.js"
import type { Address, Network } from "../net/Network.js"
import type * as PeerConnection from "../peer/PeerConnection.js"
import type { PeerError } from "../peer/PeerError.js"
import type { PeerId } from "../peer/PeerId.js"
import type { PeerLink } from "../peer/PeerLink.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as PiecePicker from "../picker/PiecePicker.js"
import type { SessionConfig } from "../session/SessionConfig.js"
import * as ReadCache from "../storage/ReadCache.js"
import type { StorageError, TorrentStorage } from "../storage/Storage.js"
import * as BlockPool from "../wire/BlockPool.js"
import * as Message from "../wire/Message.js"
import * as Candidates from "./Candidates.js"
import * as Choker from "./Choker.js"
import * as Connections from "./Connections.js"
import * as ExtendedMessages from "./ExtendedMessages.js"
import * as PeerEntry from "./PeerEntry.js"
import * as PeerExtensions from "./PeerExtensions.js"
import * as PieceWriter from "./PieceWriter.js"
import * as Ticker from "./Ticker.js"
import type { TorrentEvent } from "./TorrentEvent.js"

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

/** Block buffers kept for reuse (4 MiB): a burst of reads from a fast peer is up to 2 MiB. */
const MAX_SPARE_BLOCKS = 256
const PEX_INTERVAL_TICKS = 60
const MAX_DHT_NODES_PER_TICK = 8
/** Below this many peers, with nobody left to dial, the trackers are asked for more (every 30 s at most). */
const WANT_PEERS = 10
const NEED_PEERS_MILLIS = 30_000
const CHOKE_ROUND_TICKS = 10
const MAX_ALLOWED_FAST = 32
/**
 * Seconds of a peer's rate we keep requested: enough to cover the round trip and then some. Fewer
 * when the torrent's rate would take more than `maxRequestsPerTorrent` in flight.
 */
const PIPELINE_SECONDS = 2

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
    const peers = new Map<string, PeerEntry.PeerEntry>()
    const candidates = Candidates.make(config)
    const peerIds = new Set<string>()
    // Background reads of the read cache, interrupted with the torrent.
    const runRead = yield* FiberSet.makeRuntime<never>()
    const peerContext: PeerConnection.PeerContext = {
      infoHash: metainfo.infoHash,
      peerId: options.peerId,
      info,
      have,
      pieces: ReadCache.make(storage, config.readCacheBytes, runRead),
      events: mailbox,
      blocks: BlockPool.make(PiecePicker.BLOCK_SIZE, MAX_SPARE_BLOCKS),
      dht: options.dht !== undefined,
      config: {
        connectTimeout: config.connectTimeout,
        handshakeTimeout: config.handshakeTimeout,
        encryption: config.encryption,
        idleTimeout: config.idleTimeout,
        keepAliveInterval: config.keepAliveInterval,
        maxMessageLength: config.maxMessageLength,
        maxPendingUploads: config.maxPendingUploads,
        maxBlockLength: PiecePicker.BLOCK_SIZE
      }
    }
    const connections = yield* Connections.make(peerContext)
    const scope = yield* Effect.scope
    const writer = yield* PieceWriter.make({ info, storage, mailbox, flushEveryBytes: config.flushEveryBytes, scope })
    const ticker = Ticker.make(mailbox, scope)
    let choker = Choker.make({ regularSlots: config.uploadSlots })
    let verifiedBytes = 0
    for (const index of have.indices()) verifiedBytes += pieceSize(info, index)
    let downloaded = 0
    let uploaded = 0
    let downloadRate = 0
    let uploadRate = 0
    let ticks = 0
    // Read synchronously once per batch of events, not as an Effect step.
    const clock = yield* Effect.clock
    let now = clock.unsafeCurrentTimeMillis()
    let completeAnnounced = picker.isComplete
    let needPeersAt = now + NEED_PEERS_MILLIS
    // DHT nodes learnt from `port` messages, pinged off the supervisor's loop.
    const dhtNodes: Array<Address> = []

    // ---- requests -----------------------------------------------------------------------------

    const fill = (entry: PeerEntry.PeerEntry) => {
      if (picker.isComplete || writer.pendingWriteBytes() >= config.maxPendingWriteBytes) return
      if (!entry.amInterested || (entry.peerChoking && entry.allowedFast.size === 0)) return
      const outstanding = picker.outstanding(entry.link.key)
      // The torrent's budget is shared, but a peer always gets its first few requests: fast peers
      // holding all of it must not shut out a new one.
      const room = Math.max(config.maxRequestsPerTorrent - picker.totalOutstanding, PeerEntry.MIN_DEPTH - outstanding)
      const want = Math.min(entry.depth - outstanding, room)
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

    const updateInterest = (entry: PeerEntry.PeerEntry) => {
      const interesting = picker.isInteresting(entry.link.key)
      if (interesting !== entry.amInterested) {
        entry.amInterested = interesting
        entry.link.send([interesting ? Message.Interested : Message.NotInterested])
      }
    }

    // ---- choking ------------------------------------------------------------------------------

    const setChoking = (entry: PeerEntry.PeerEntry, choking: boolean) => {
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
    const unchokeIfFree = (entry: PeerEntry.PeerEntry) => {
      let unchoked = 0
      for (const other of peers.values()) if (!other.link.choking) unchoked++
      if (unchoked < config.uploadSlots + 1) setChoking(entry, false)
    }

    // ---- dialing ------------------------------------------------------------------------------

    // A seed dials too: some leechers (transmission 3.00 with 127.x peers) never dial out themselves.
    const dialMore = Effect.suspend(() => {
      const connecting = candidates.connecting()
      const slots = Math.min(config.maxPeersPerTorrent - peers.size - connecting, config.maxConnecting - connecting)
      return Effect.forEach(candidates.startDials(now, slots), connections.dial, { discard: true })
    })

    // ---- events -------------------------------------------------------------------------------

    const onConnected = (link: PeerLink) => {
      const idHex = Buffer.from(link.handshake.peerId).toString("hex")
      if (candidates.isBanned(link.key)) return link.drop("Banned")
      if (peers.has(link.key) || peerIds.has(idHex)) return link.drop("Duplicate")
      if (peers.size >= config.maxPeersPerTorrent) return link.drop("LimitReached")
      peerIds.add(idHex)
      candidates.connected(link.key)
      peers.set(link.key, PeerEntry.make(link, info.pieceCount, now))
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

    const peerHas = (entry: PeerEntry.PeerEntry, index: number) => {
      if (entry.pieces.add(index)) picker.peerHas(entry.link.key, index)
    }

    const onMessages = (entry: PeerEntry.PeerEntry, messages: ReadonlyArray<Message.Message>) => {
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
            ExtendedMessages.receive(entry, message, metainfo, candidates)
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

    const onBlock = (entry: PeerEntry.PeerEntry, message: Message.Piece) => {
      addBlock(entry, message)
      // Copied into its piece or not wanted: either way, nothing reads the block any more.
      peerContext.blocks.release(message.block)
    }

    const addBlock = (entry: PeerEntry.PeerEntry, message: Message.Piece) => {
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
      writer.addBlock(message.index, message.begin, message.block, key)
    }

    // Verified pieces arrive in batches (a disk thread reply): the requests they make room for are
    // issued once per batch of events (`fillDue`), not once per piece.
    let fillDue = false
    const onVerified = (index: number) => {
      writer.verified(index)
      verifiedBytes += pieceSize(info, index)
      options.have.add(index)
      for (const key of picker.pieceVerified(index)) {
        const entry = peers.get(key)
        if (entry !== undefined) updateInterest(entry)
      }
      for (const entry of peers.values()) {
        if (!entry.pieces.has(index)) entry.link.send([Message.Have(index)])
      }
      fillDue = true
      if (!picker.isComplete || completeAnnounced) return writer.flushIfDue
      completeAnnounced = true
      return Effect.gen(function* () {
        yield* writer.flush
        yield* publish
        yield* options.onComplete
        for (const entry of peers.values()) if (entry.pieces.isComplete) entry.link.drop("NotUseful")
      })
    }

    const onRejected = (index: number, contributors: ReadonlyArray<string>) => {
      writer.rejected(index)
      picker.pieceRejected(index)
      for (const key of candidates.blame(contributors)) peers.get(key)?.link.drop("Banned")
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
        candidates.closed(key, error, entry === undefined, now)
        fillAll()
        yield* dialMore
      })

    /** 0 while the torrent is not quiet (see Ticker); else the next time a tick is due (Infinity: none). */
    const quietDeadline = (): number => {
      if (peers.size > 0 || downloadRate >= 1 || uploadRate >= 1) return 0
      // Asking the trackers for peers (every NEED_PEERS_MILLIS while few are connected) is due too.
      const needPeersDue = options.needPeers === undefined || picker.isComplete ? Infinity : needPeersAt
      const due = Math.min(needPeersDue, candidates.nextDialAt())
      return due > now + Ticker.TICK_MILLIS ? due : 0
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
      }
      downloadRate = downloadRate * 0.6 + downTotal * 0.4
      uploadRate = uploadRate * 0.6 + upTotal * 0.4
      // Each peer's depth is its share of the torrent's budget, by rate, up to PIPELINE_SECONDS of it.
      const horizon = Math.min(PIPELINE_SECONDS, (config.maxRequestsPerTorrent * PiecePicker.BLOCK_SIZE) / Math.max(1, downloadRate))
      for (const entry of peers.values()) {
        entry.depth = Math.max(
          PeerEntry.MIN_DEPTH,
          Math.min(config.maxRequestsPerPeer, Math.ceil((entry.downloadRate * horizon) / PiecePicker.BLOCK_SIZE))
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
      if (ticks % CHOKE_ROUND_TICKS === 0) chokeRound()
      if (ticks % PEX_INTERVAL_TICKS === 0) ExtendedMessages.sendPex(peers, metainfo)
      if (now >= needPeersAt) {
        needPeersAt = now + NEED_PEERS_MILLIS
        if (!picker.isComplete && peers.size < Math.min(config.maxPeersPerTorrent, WANT_PEERS)) {
          if (!candidates.anyDue(now) && options.needPeers !== undefined) yield* options.needPeers
        }
      }
      fillAll()
      yield* dialMore
      ticker.quietUntil = quietDeadline()
      // What is left of the smoothed rates once every peer is gone is noise: a quiet torrent shows 0.
      if (ticker.quietUntil > 0) downloadRate = uploadRate = 0
      yield* publish
      if (options.dht !== undefined && dhtNodes.length > 0) {
        const nodes = dhtNodes.splice(0, MAX_DHT_NODES_PER_TICK)
        dhtNodes.length = 0
        yield* Effect.fork(Effect.forEach(nodes, options.dht.addNode, { discard: true }))
      }
    })

    const publish = Effect.suspend(() => {
      let seeds = 0
      for (const entry of peers.values()) if (entry.pieces.isComplete) seeds++
      return options.onStats({
        verifiedPieces: have.count,
        verifiedBytes,
        downloaded,
        uploaded,
        downloadRate,
        uploadRate,
        peers: peers.size,
        seeds,
        connecting: candidates.connecting(),
        candidates: candidates.size(),
        complete: picker.isComplete
      })
    })

    const handle = (event: TorrentEvent): Effect.Effect<void, SupervisorError, Network> => {
      switch (event._tag) {
        case "PeersFound":
          candidates.add(event.addresses, event.source)
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

    yield* ticker.start
    yield* publish
    yield* Effect.acquireRelease(Ref.set(options.incoming, Option.some(connections.accept)), () =>
      Ref.set(options.incoming, Option.none())
    )

    // A loop, not `Effect.forever`, which yields to the scheduler after every batch: the take
    // suspends when the mailbox is empty, and the runtime yields a busy fiber by itself.
    while (true) {
      const events = yield* Queue.takeBetween(mailbox, 1, 64)
      now = clock.unsafeCurrentTimeMillis()
      for (const event of events) {
        // Any event may start something (a dial, a peer): a quiet torrent ticks again at once.
        if (ticker.quietUntil > 0 && event._tag !== "Tick") yield* ticker.start
        yield* handle(event)
      }
      if (fillDue) {
        fillDue = false
        fillAll()
      }
      if (writer.verifiersDue()) yield* writer.startVerifiers
    }
  })
