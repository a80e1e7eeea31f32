/** A hand-made torrent and magnet link with known contents, and a scratch directory for CLI tests. */
import { Bencode } from "@bitfiber/core"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const info = {
  name: "album",
  "piece length": 16384,
  pieces: new Uint8Array(40).fill(7),
  files: [
    { length: 20000, path: ["cd1", "01 intro.flac"] },
    { length: 5, path: ["notes.txt"] }
  ]
}

/** The fixture torrent's info-hash, computed independently of the code under test. */
export const infoHash = createHash("sha1").update(Bencode.encode(info)).digest("hex")

/** The fixture torrent file's bytes: two tracker tiers, a web seed, a comment and a date. */
export const torrent = Bencode.encode({
  announce: "http://127.0.0.1:6969/announce",
  "announce-list": [["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"], ["http://127.0.0.1:7070/announce"]],
  comment: "test torrent",
  "created by": "hand",
  "creation date": 1_700_000_000,
  info,
  "url-list": ["http://127.0.0.1:8080/"]
})

/** A magnet link for the same torrent, with a tracker and two peers. */
export const magnet = `magnet:?xt=urn:btih:${infoHash}&dn=album&tr=udp%3A%2F%2F127.0.0.1%3A6969&x.pe=127.0.0.1:6881&x.pe=[::1]:6882`

/**
 * Makes a scratch directory holding album.torrent, page.torrent (an HTML page), payload/ (two
 * files to make a torrent of) and taken.torrent (a file not to overwrite); returns its path.
 */
export const scratch = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-cli-"))
  fs.writeFileSync(path.join(dir, "album.torrent"), torrent)
  fs.writeFileSync(path.join(dir, "page.torrent"), "<!DOCTYPE html><html>Not found</html>")
  fs.mkdirSync(path.join(dir, "payload", "sub"), { recursive: true })
  fs.writeFileSync(path.join(dir, "payload", "a.bin"), Buffer.alloc(50_000, 1))
  fs.writeFileSync(path.join(dir, "payload", "sub", "b.txt"), "hello")
  fs.writeFileSync(path.join(dir, "taken.torrent"), "keep me")
  return dir
}
