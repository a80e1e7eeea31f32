/**
 * The supervisor's side of the BEP 10 extensions: what a peer's extended messages change (the
 * ids it wants, the port it listens on, metadata it asks for, peers it tells us of), and the
 * ut_pex rounds that tell each peer which others are in the swarm. The messages themselves are
 * made in `PeerExtensions`.
 */
import { Either } from "effect"
import type { Metainfo } from "../metainfo/Metainfo.js"
import { type Address, formatAddress } from "../net/Network.js"
import * as Extension from "../wire/Extension.js"
import type * as Message from "../wire/Message.js"
import type { Candidates } from "./Candidates.js"
import type { PeerEntry } from "./PeerEntry.js"
import * as PeerExtensions from "./PeerExtensions.js"

/** Peers listed in one ut_pex message at most (BEP 11 asks for no more than 50 added). */
const PEX_MAX_ADDED = 50

/** The address back from its `host:port` key. */
const parseKey = (key: string): Address | undefined => {
  const colon = key.lastIndexOf(":")
  const host = key.slice(0, colon).replace(/^\[|\]$/g, "")
  const port = Number(key.slice(colon + 1))
  return colon > 0 && port > 0 ? { host, port } : undefined
}

/** Handles an extended message from `entry`: its handshake, a metadata request, or peers to dial (ut_pex). */
export const receive = (entry: PeerEntry, message: Message.Extended, metainfo: Metainfo, candidates: Candidates) => {
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
  } else if (message.id === PeerExtensions.OUR_IDS.ut_pex && !metainfo.info.private) {
    candidates.add(PeerExtensions.pexPeers(message.payload))
  }
}

/** The address a peer accepts connections on, as we tell others about it. */
const dialable = (entry: PeerEntry): Address | undefined =>
  entry.listenPort === undefined ? undefined : { host: entry.link.address.host, port: entry.listenPort }

/** Tells every peer that speaks ut_pex which peers joined and left the swarm since its last round. */
export const sendPex = (peers: ReadonlyMap<string, PeerEntry>, metainfo: Metainfo) => {
  if (metainfo.info.private) return
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
