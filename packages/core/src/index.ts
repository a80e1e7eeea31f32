/** bitfiber: a BitTorrent engine on Effect. Each module is a namespace: `Metainfo.parse`, `Handshake.encode`. */
export * as InfoHash from "./metainfo/InfoHash.js"
export * as Metainfo from "./metainfo/Metainfo.js"
export * as PeerId from "./peer/PeerId.js"
export * as Bitfield from "./picker/Bitfield.js"
export * as Network from "./net/Network.js"
export * as CompactPeer from "./net/CompactPeer.js"
export * as NodeNetwork from "./net/NodeNetwork.js"
export * as Bencode from "./bencode/Bencode.js"
