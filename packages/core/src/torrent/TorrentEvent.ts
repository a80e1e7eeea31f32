/** What the Torrent supervisor's mailbox carries: every fact that may change a torrent's state. */
import type { Address } from "../net/Network.js"
import type { PeerError } from "../peer/PeerError.js"
import type { PeerLink } from "../peer/PeerLink.js"
import type { StorageError } from "../storage/Storage.js"
import type { Message } from "../wire/Message.js"

/** Where a peer address came from. */
export type PeerSource = "tracker" | "incoming" | "manual" | "pex" | "dht"

/** A mailbox event of one torrent. */
export type TorrentEvent =
  | { readonly _tag: "PeersFound"; readonly addresses: ReadonlyArray<Address>; readonly source: PeerSource }
  | { readonly _tag: "PeerConnected"; readonly link: PeerLink }
  | { readonly _tag: "PeerMessages"; readonly key: string; readonly messages: ReadonlyArray<Message> }
  | { readonly _tag: "PeerClosed"; readonly key: string; readonly error: PeerError }
  | { readonly _tag: "PieceVerified"; readonly index: number }
  | { readonly _tag: "PieceRejected"; readonly index: number; readonly peers: ReadonlyArray<string> }
  | { readonly _tag: "StorageFailed"; readonly error: StorageError }
  | { readonly _tag: "Tick" }
