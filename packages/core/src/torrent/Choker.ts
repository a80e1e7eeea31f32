/**
 * Who we upload to: the classic BitTorrent choker (BEP 3, libtorrent's "fixed slots, rate-based").
 *
 * Every round (the caller runs one every 10 s) the best `regularSlots` interested peers are
 * unchoked: ranked by the rate they give us while we leech (tit-for-tat), by the rate we give
 * them while we seed. One more, optimistic, slot goes to a random interested peer outside that
 * set and is rotated every `optimisticIntervalMs` (30 s, every 3rd round), so newcomers get a
 * chance to prove themselves; newly connected peers are weighted `newPeerWeight` times. Snubbed
 * peers (no block for `snubTimeoutMs` while they should be sending) lose their regular slot.
 *
 * Pure: time is an argument, randomness is in the config, the state is an immutable record. The
 * caller diffs the returned set against the choke/unchoke messages it sent.
 */

/** Tuning of the choker; `make` fills in the classic defaults. */
export interface Config {
  /** Regular (rate-ranked) unchoke slots. */
  readonly regularSlots: number
  /** How long an optimistic unchoke lasts before it rotates. */
  readonly optimisticIntervalMs: number
  /** A peer that owes us blocks and sent none for this long is snubbed. */
  readonly snubTimeoutMs: number
  /** Peers connected for less than this count as new for the optimistic draw. */
  readonly newPeerMs: number
  /** Weight of a new peer in the optimistic draw (1 turns the bias off). */
  readonly newPeerWeight: number
  /** Source of randomness in [0, 1). */
  readonly random: () => number
}

/** The classic values: 4 slots, 30 s optimistic rotation, 60 s snub timeout, new peers x3. */
export const defaultConfig: Config = {
  regularSlots: 4,
  optimisticIntervalMs: 30_000,
  snubTimeoutMs: 60_000,
  newPeerMs: 30_000,
  newPeerWeight: 3,
  random: Math.random
}

/** What the choker is told about one connected peer at a round. */
export interface PeerSnapshot {
  readonly key: string
  /** The peer is interested in us (wants to download). */
  readonly interested: boolean
  /** Bytes per second we receive from it. */
  readonly downloadRate: number
  /** Bytes per second we send to it. */
  readonly uploadRate: number
  readonly connectedAt: number
  /**
   * The last time it sent us a block, or started owing us one (unchoked us while we were
   * interested), in ms; `undefined` when neither happened.
   */
  readonly lastBlockAt: number | undefined
  /** We are interested in it and it does not choke us: it owes us blocks. */
  readonly downloading: boolean
  /** Overrides the choker's own snub test when the caller has a better one. */
  readonly snubbed?: boolean
}

/** The choker's memory between rounds. */
export interface State {
  readonly config: Config
  /** Peers holding a regular slot after the last round. */
  readonly regular: ReadonlySet<string>
  /** The optimistic peer, if any. */
  readonly optimistic: string | undefined
  /** When the optimistic peer was chosen (ms). */
  readonly optimisticSince: number
}

/** The outcome of a round: who is unchoked now, and the state for the next round. */
export interface Round {
  readonly state: State
  /** Every peer to unchoke (regular ∪ optimistic); every other peer is choked. */
  readonly unchoke: ReadonlySet<string>
}

/** A choker with nobody unchoked yet. */
export const make = (config?: Partial<Config>): State => ({
  config: { ...defaultConfig, ...config },
  regular: new Set(),
  optimistic: undefined,
  optimisticSince: -Infinity
})

/** Whether a peer that owes us blocks has sent none for `snubTimeoutMs`. */
export const isSnubbed = (peer: PeerSnapshot, now: number, config: Config): boolean =>
  peer.snubbed ?? (peer.downloading && now - (peer.lastBlockAt ?? peer.connectedAt) >= config.snubTimeoutMs)

/** Runs one choking round at time `now` (ms). */
export const round = (
  state: State,
  input: { readonly peers: ReadonlyArray<PeerSnapshot>; readonly now: number; readonly seeding: boolean }
): Round => {
  const { config } = state
  const { now, peers, seeding } = input
  const rate = (peer: PeerSnapshot): number => (seeding ? peer.uploadRate : peer.downloadRate)
  // Ties keep the peers already unchoked (no needless choke flapping), then fall to chance.
  const ranked = peers
    .filter((peer) => peer.interested && !isSnubbed(peer, now, config))
    .map((peer) => ({ peer, rate: rate(peer), kept: state.regular.has(peer.key) ? 0 : 1, draw: config.random() }))
    .sort((a, b) => b.rate - a.rate || a.kept - b.kept || a.draw - b.draw)
  const regular = new Set(ranked.slice(0, Math.max(0, config.regularSlots)).map(({ peer }) => peer.key))

  const eligible = peers.filter((peer) => peer.interested && !regular.has(peer.key))
  const current = eligible.find((peer) => peer.key === state.optimistic)
  const due = now - state.optimisticSince >= config.optimisticIntervalMs
  let optimistic = current?.key
  let optimisticSince = state.optimisticSince
  if (current === undefined || due) {
    // Rotate to someone else when there is anyone else.
    const others = eligible.filter((peer) => peer.key !== state.optimistic)
    optimistic = draw(others.length > 0 ? others : eligible, now, config)?.key
    optimisticSince = now
  }

  const unchoke = new Set(regular)
  if (optimistic !== undefined) unchoke.add(optimistic)
  return { state: { config, regular, optimistic, optimisticSince }, unchoke }
}

/** A weighted random pick: new peers count `newPeerWeight` times. */
const draw = (peers: ReadonlyArray<PeerSnapshot>, now: number, config: Config): PeerSnapshot | undefined => {
  const weight = (peer: PeerSnapshot): number =>
    now - peer.connectedAt < config.newPeerMs ? Math.max(1, config.newPeerWeight) : 1
  const total = peers.reduce((sum, peer) => sum + weight(peer), 0)
  let ticket = config.random() * total
  for (const peer of peers) {
    ticket -= weight(peer)
    if (ticket < 0) return peer
  }
  return peers[peers.length - 1]
}
