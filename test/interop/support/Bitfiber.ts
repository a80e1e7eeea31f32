/**
 * bitfiber itself in interop tests: sessions on 127.0.0.1 over real sockets and files, bounded
 * waits on its torrents, and waits on what a tracker knows, so a test starts a leecher only
 * once its seeders are announced (a tracker is asked again only after its interval).
 */
import { readFile } from "node:fs/promises"
import { type Announce, HttpTracker, InfoHash, NodeNetwork, type Torrent } from "@bitfiber/core"
import { Data, Duration, Effect } from "effect"
import { liveServices, loopbackSession } from "../../engine/fixtures.js"
import { live } from "./Process.js"

export { liveServices as bitfiberServices, loopbackSession as bitfiberSession }

/** A bitfiber torrent that did not get where a test waited for it to get in time; says how far it got. */
export class BitfiberTimeout extends Data.TaggedError("BitfiberTimeout")<{
  readonly what: string
  readonly progress: Torrent.Progress | undefined
}> {
  override get message(): string {
    return `bitfiber: ${this.what}\n--- last progress ---\n${JSON.stringify(this.progress, null, 2)}`
  }
}

/** A .torrent file's bytes, as `Session.add` takes them. */
export const readTorrent = (path: string): Effect.Effect<Uint8Array> =>
  Effect.promise(async () => new Uint8Array(await readFile(path)))

const within = (timeout: Duration.DurationInput) => `within ${Duration.format(Duration.decode(timeout))}`

/** Waits (real clock) until `torrent` has every piece verified and flushed; fails with its progress on timeout. */
export const waitCompleted = (
  torrent: Torrent.Torrent,
  timeout: Duration.DurationInput
): Effect.Effect<void, Torrent.TorrentError | BitfiberTimeout> =>
  live(
    torrent.completed.pipe(
      Effect.timeout(timeout),
      Effect.catchTag("TimeoutException", () =>
        Effect.flatMap(torrent.progress, (progress) =>
          Effect.fail(new BitfiberTimeout({ what: `${torrent.metainfo.info.name} not complete ${within(timeout)}`, progress }))))
    )
  )

/** Polls `check` (real clock) every 100 ms until it holds; fails after `timeout` naming `what`. */
export const waitUntil = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  timeout: Duration.DurationInput = "20 seconds"
): Effect.Effect<void, E | BitfiberTimeout, R> =>
  live(
    Effect.gen(function*() {
      while (!(yield* check)) yield* Effect.sleep("100 millis")
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new BitfiberTimeout({ what: `${what}: not ${within(timeout)}`, progress: undefined })
      })
    )
  )

/** What an HTTP tracker's scrape says of one torrent (zeros while it knows no peer of it). */
export const scrapeCounts = (announceUrl: string, infoHashHex: string): Effect.Effect<Announce.ScrapeEntry, Announce.TrackerError> =>
  Effect.gen(function*() {
    const infoHash = InfoHash.unsafeFromBytes(Buffer.from(infoHashHex, "hex"))
    const counts = yield* HttpTracker.scrape(announceUrl, [infoHash])
    return counts.get(infoHashHex.toLowerCase()) ?? { complete: 0, incomplete: 0, downloaded: 0 }
  }).pipe(Effect.provide(NodeNetwork.layer))

/** Waits until an HTTP tracker lists at least `seeds` seeders of the torrent. */
export const waitForSeeds = (announceUrl: string, infoHashHex: string, seeds: number, timeout: Duration.DurationInput = "20 seconds") =>
  waitUntil(
    `${seeds} seeder(s) at ${announceUrl}`,
    scrapeCounts(announceUrl, infoHashHex).pipe(
      Effect.map((counts) => counts.complete >= seeds),
      Effect.orElseSucceed(() => false)
    ),
    timeout
  )
