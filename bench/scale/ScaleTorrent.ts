/** The torrent both peers scenarios download, and their pace, from the command line. */
import { TestTorrent } from "@bitfiber/core/testing"
import * as Args from "../support/Args.js"

/** `--peers` (200) seeders of a `--torrent-size` (64 MiB) torrent, paced to take about `--seconds` (20). */
export const fromArgs = () => {
  const peerCount = Args.count("peers", 200)
  const size = Args.size("torrent-size", "64MiB")
  const targetSeconds = Args.count("seconds", 20)
  const pieceLength = 256 * 1024
  const test = TestTorrent.make({ files: [{ path: "scale.bin", length: size }], pieceLength })
  return { peerCount, size, targetSeconds, pieceLength, test }
}
