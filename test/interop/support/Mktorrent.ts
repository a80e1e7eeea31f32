/** mktorrent: .torrent files as a common third-party tool makes them (v1, no padding). */
import { Effect } from "effect"
import { type ProcessError, run } from "./Process.js"

/**
 * Creates `out` from the file or directory `path`. `announce` lists tiers: a string is a tier
 * of one tracker, an array a tier of several. `pieceLength` (bytes) must be a power of
 * two from 32 KiB to 256 MiB (mktorrent's limits; libtorrentCreate takes 16 KiB).
 */
export const mktorrent = (options: {
  readonly path: string
  readonly out: string
  readonly announce?: ReadonlyArray<string | ReadonlyArray<string>>
  readonly pieceLength?: number
  readonly private?: boolean
  readonly name?: string
  readonly webSeeds?: ReadonlyArray<string>
}): Effect.Effect<string, ProcessError> =>
  Effect.suspend(() => {
    const log2 = Math.log2(options.pieceLength ?? 262144)
    if (!Number.isInteger(log2) || log2 < 15 || log2 > 28) {
      return Effect.dieMessage(`mktorrent: piece length ${options.pieceLength} is not a power of two from 32 KiB to 256 MiB`)
    }
    const args = [
      ...(options.announce ?? []).flatMap((tier) => ["-a", typeof tier === "string" ? tier : tier.join(",")]),
      ...(options.webSeeds ?? []).flatMap((url) => ["-w", url]),
      ...(options.private === true ? ["-p"] : []),
      ...(options.name === undefined ? [] : ["-n", options.name]),
      "-l", String(log2), "-o", options.out, options.path
    ]
    return Effect.as(run("mktorrent", "mktorrent", args), options.out)
  })
