/** The one configuration of a session, with documented defaults; validated with Schema. */
import { Effect, Schema } from "effect"
import { POLICIES as ENCRYPTION_POLICIES } from "../peer/EncryptedHandshake.js"

const int = (minimum: number) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(minimum))

/** Every tunable of a session. Durations are in milliseconds. */
export class SessionConfig extends Schema.Class<SessionConfig>("SessionConfig")({
  /** Interface the listening socket binds to. */
  listenHost: Schema.optionalWith(Schema.String, { default: () => "0.0.0.0" }),
  /** Port for incoming peers; 0 picks a free one (reported by `Session.port`). */
  port: Schema.optionalWith(int(0).pipe(Schema.lessThanOrEqualTo(65535)), { default: () => 6881 }),
  /** Whether to accept incoming peer connections at all. */
  listen: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Connected peers per torrent (incoming and outgoing). */
  maxPeersPerTorrent: Schema.optionalWith(int(1), { default: () => 50 }),
  /** Connections across all torrents. */
  maxConnections: Schema.optionalWith(int(1), { default: () => 500 }),
  /** Outgoing connection attempts in flight per torrent. */
  maxConnecting: Schema.optionalWith(int(1), { default: () => 16 }),
  /** Peer addresses remembered per torrent (from trackers, PEX, DHT...). */
  maxCandidates: Schema.optionalWith(int(1), { default: () => 2000 }),
  connectTimeout: Schema.optionalWith(int(1), { default: () => 10_000 }),
  handshakeTimeout: Schema.optionalWith(int(1), { default: () => 10_000 }),
  /** A peer that sends nothing, not even a keep-alive, for this long is dropped. */
  idleTimeout: Schema.optionalWith(int(1), { default: () => 180_000 }),
  keepAliveInterval: Schema.optionalWith(int(1), { default: () => 90_000 }),
  /** A peer that owes us blocks and sends none for this long is snubbed: its requests go elsewhere. */
  requestTimeout: Schema.optionalWith(int(1), { default: () => 30_000 }),
  /** Largest wire message accepted (bitfields of huge torrents are the largest). */
  maxMessageLength: Schema.optionalWith(int(16_397), { default: () => (1 << 20) + 13 }),
  /** Requests kept in flight per peer at the most; the actual depth follows the peer's rate. */
  maxRequestsPerPeer: Schema.optionalWith(int(1), { default: () => 256 }),
  /**
   * Requests kept in flight per torrent, across its peers: the swarm's bandwidth-delay product
   * (8 MiB covers 400 MiB/s at a 20 ms round trip, or 40 MiB/s at 200 ms). Each block in flight
   * holds a share of a piece buffer, so this bounds the memory of many fast peers.
   */
  maxRequestsPerTorrent: Schema.optionalWith(int(1), { default: () => 512 }),
  /** Requests we queue for upload per peer before rejecting more. */
  maxPendingUploads: Schema.optionalWith(int(1), { default: () => 500 }),
  /** Bytes of completed pieces waiting for hashing and writing before we stop requesting more. */
  maxPendingWriteBytes: Schema.optionalWith(int(1), { default: () => 8 * 1024 * 1024 }),
  /**
   * Bytes written between two flushes (fsync) made in the background while downloading: what a
   * crash can lose, and what the flush before completion is announced still has to write back.
   */
  flushEveryBytes: Schema.optionalWith(int(1), { default: () => 64 * 1024 * 1024 }),
  /** Bytes of whole pieces kept in memory per torrent to serve uploads from (read-ahead). */
  readCacheBytes: Schema.optionalWith(int(0), { default: () => 32 * 1024 * 1024 }),
  /** Regular unchoke slots per torrent (plus one optimistic). */
  uploadSlots: Schema.optionalWith(int(0), { default: () => 4 }),
  /** Pieces that failed their hash check with a peer's blocks in them before it is banned. */
  banAfterBadPieces: Schema.optionalWith(int(1), { default: () => 3 }),
  /**
   * Message stream encryption (MSE) of peer connections. "accept": answer peers that open with a
   * key exchange, dial plain (the fastest: most clients try MSE first but take plaintext after
   * it). "prefer": also dial with a key exchange, redialing plain if the peer refuses it.
   * "require": only key exchanges that select RC4, both ways; plain handshakes are refused.
   */
  encryption: Schema.optionalWith(Schema.Literal(...ENCRYPTION_POLICIES), { default: () => "accept" }),
  /** Run a DHT node (BEP 5) on the listening port's number over UDP, to find peers without trackers. */
  dht: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** DHT nodes to bootstrap from, as `host:port` (none by default: no public node is ever contacted unasked). */
  dhtBootstrap: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Tracker announces: peers asked for. */
  numwant: Schema.optionalWith(int(0), { default: () => 50 })
}) {}

/** The encoded (input) form: every field optional. */
export type SessionConfigInput = Schema.Schema.Encoded<typeof SessionConfig>

/** Validates a partial configuration and fills in the defaults. */
export const make = (input: SessionConfigInput = {}) => Schema.decodeUnknown(SessionConfig)(input)

/** The defaults. */
export const defaults: SessionConfig = Effect.runSync(make({}))
