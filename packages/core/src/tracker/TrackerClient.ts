/**
 * The TrackerClient service: announce to or scrape any tracker URL, whatever its scheme. The
 * Announcer depends on this service only, so tests and the fault harness can swap in fake
 * trackers without a network.
 */
import { Context, Effect, Layer } from "effect"
import type { InfoHash } from "../metainfo/InfoHash.js"
import { Network } from "../net/Network.js"
import { type AnnounceRequest, type AnnounceResponse, type ScrapeEntry, TrackerError } from "./Announce.js"
import * as HttpTracker from "./HttpTracker.js"
import * as UdpTracker from "./UdpTracker.js"

/** Announces to and scrapes trackers by URL. */
export class TrackerClient extends Context.Tag("bitfiber/TrackerClient")<
  TrackerClient,
  {
    readonly announce: (url: string, request: AnnounceRequest) => Effect.Effect<AnnounceResponse, TrackerError>
    /** Counts keyed by hex info-hash. */
    readonly scrape: (
      url: string,
      infoHashes: ReadonlyArray<InfoHash>
    ) => Effect.Effect<ReadonlyMap<string, ScrapeEntry>, TrackerError>
  }
>() {}

/** Options of the live client, per protocol. */
export interface Options {
  readonly http?: HttpTracker.Options
  readonly udp?: UdpTracker.Options
}

const schemeOf = (url: string) => url.slice(0, Math.max(0, url.indexOf(":"))).toLowerCase()

/** The live client: `http://` and `udp://` over the Network service; other schemes fail with `UnsupportedScheme`. */
export const layer = (options?: Options): Layer.Layer<TrackerClient, never, Network> =>
  Layer.effect(
    TrackerClient,
    Effect.gen(function* () {
      const network = yield* Network
      const udp = yield* UdpTracker.make(options?.udp)
      const unsupported = (url: string) =>
        Effect.fail(new TrackerError({ url, reason: "UnsupportedScheme", message: `unsupported tracker URL ${url}` }))
      return {
        announce: (url, request) => {
          switch (schemeOf(url)) {
            case "http":
              return HttpTracker.announce(url, request, options?.http).pipe(Effect.provideService(Network, network))
            case "udp":
              return udp.announce(url, request).pipe(Effect.provideService(Network, network))
            default:
              return unsupported(url)
          }
        },
        scrape: (url, infoHashes) => {
          switch (schemeOf(url)) {
            case "http":
              return HttpTracker.scrape(url, infoHashes, options?.http).pipe(Effect.provideService(Network, network))
            case "udp":
              return udp.scrape(url, infoHashes).pipe(Effect.provideService(Network, network))
            default:
              return unsupported(url)
          }
        }
      }
    })
  )
