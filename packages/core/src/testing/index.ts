/** `@bitfiber/core/testing`: simulated networks, scripted peers and test torrents for in-process swarms. */
export * as MemoryNetwork from "./MemoryNetwork.js"
export * as TestTorrent from "./TestTorrent.js"
export * as ScriptedPeer from "./ScriptedPeer.js"
