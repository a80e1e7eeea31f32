/**
 * The Announcer keeps a torrent known to its trackers: one fiber per BEP 12 tier announces
 * `started`, re-announces at the tracker's interval (earlier when the torrent needs peers, never
 * before the min interval), reports `completed` once, and `stopped` when its scope closes. A
 * failing tracker never fails the torrent: errors back off on a Schedule, are logged, and show in
 * the per-tracker status.
 */
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Queue,
  Random,
  Ref,
  Schedule,
  type Scope,
  type Stream,
  SubscriptionRef
} from "effect"
import type { InfoHash } from "../metainfo/InfoHash.js"
import type { Address } from "../net/Network.js"
import type { PeerId } from "../peer/PeerId.js"
import type { AnnounceRequest, AnnounceResponse, Event, TrackerError } from "./Announce.js"
import { TrackerClient } from "./TrackerClient.js"

/** Transfer counters reported in every announce. */
export interface Stats {
  readonly uploaded: number
  readonly downloaded: number
  readonly left: number
}

/** What the Announcer needs from its torrent. */
export interface Options {
  /** BEP 12 tiers of tracker URLs (a single-tracker torrent is one tier of one). */
  readonly tiers: ReadonlyArray<ReadonlyArray<string>>
  readonly infoHash: InfoHash
  readonly peerId: PeerId
  /** The port we accept peer connections on. */
  readonly port: number
  /** Read before every announce. */
  readonly stats: Effect.Effect<Stats>
  /** Receives the peers of every successful announce (never an empty list). */
  readonly onPeers: (peers: ReadonlyArray<Address>) => Effect.Effect<void>
  /** Receives every tracker's status at the start and after each change (cheaper than a fiber reading `changes`). */
  readonly onStatus?: (statuses: ReadonlyArray<TrackerStatus>) => Effect.Effect<void>
  /** Peers asked for per announce (default 50). */
  readonly numwant?: number
  /** Delay after a tier's trackers all failed (default: 15 s doubling up to 30 min). */
  readonly backoff?: Schedule.Schedule<unknown, TrackerError>
  /** Floor for intervals a tracker gives, so a tracker cannot make us spin (default 30 s). */
  readonly minimumInterval?: Duration.DurationInput
  /** How long the `stopped` announce may take when the Announcer closes (default 5 s). */
  readonly stopTimeout?: Duration.DurationInput
}

/** How one tracker is doing, for display. */
export interface TrackerStatus {
  readonly url: string
  /** Index of the tracker's tier. */
  readonly tier: number
  /** `idle`: not tried yet (or another tracker of its tier answered first). */
  readonly status: "idle" | "ok" | "error"
  /** `reason: message` of the last failure, while `status` is `error`. */
  readonly lastError?: string
  /** Peers in the last successful reply. */
  readonly peers: number
  readonly seeders?: number
  readonly leechers?: number
  /** Epoch milliseconds (Clock time) of the next announce this tracker's tier plans. */
  readonly nextAnnounceAt?: number
}

/** A running Announcer, closed with the scope it was made in. */
export interface Announcer {
  /** Current status of every tracker, tier by tier. */
  readonly status: Effect.Effect<ReadonlyArray<TrackerStatus>>
  /** Status changes, starting with the current status. */
  readonly changes: Stream.Stream<ReadonlyArray<TrackerStatus>>
  /** Tells the trackers the download completed (`event=completed`, once; later calls do nothing). */
  readonly complete: Effect.Effect<void>
  /** Asks for peers soon: re-announces as soon as each tracker's min interval allows. */
  readonly needPeers: Effect.Effect<void>
}

/** Default `Options.backoff`: 15 s, 30 s, 60 s, ... capped at 30 minutes. */
export const defaultBackoff: Schedule.Schedule<unknown, TrackerError> = Schedule.exponential("15 seconds", 2).pipe(
  Schedule.union(Schedule.spaced("30 minutes"))
)

const DEFAULT_NUMWANT = 50
const DEFAULT_MINIMUM_INTERVAL = Duration.seconds(30)
const DEFAULT_STOP_TIMEOUT = Duration.seconds(5)
// Without a tracker-given min interval, an early re-announce waits at least this long.
const DEFAULT_MIN_INTERVAL_SECONDS = 300

/** Starts one announce fiber per tier in the current scope; closing the scope announces `stopped`. */
export const make = (options: Options): Effect.Effect<Announcer, never, TrackerClient | Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* TrackerClient
    const key = yield* Random.nextIntBetween(0, 0x1_0000_0000)
    const statuses = yield* SubscriptionRef.make<ReadonlyArray<TrackerStatus>>(
      options.tiers.flatMap((urls, tier) => urls.map((url) => ({ url, tier, status: "idle" as const, peers: 0 })))
    )
    if (options.onStatus !== undefined) yield* Effect.flatMap(SubscriptionRef.get(statuses), options.onStatus)
    const completed = yield* Deferred.make<void>()
    const wakeups = options.tiers.map(() => Queue.sliding<void>(1))
    const queues = yield* Effect.all(wakeups)
    const backoff = options.backoff ?? defaultBackoff
    const floor = Duration.toMillis(options.minimumInterval ?? DEFAULT_MINIMUM_INTERVAL)

    // `onStatus` runs under the ref's lock, so concurrent tiers report in the order they changed it.
    const setStatus = (tier: number, url: string, update: (status: TrackerStatus) => TrackerStatus) =>
      SubscriptionRef.updateEffect(statuses, (all) => {
        const next = all.map((s) => (s.tier === tier && s.url === url ? update(s) : s))
        return options.onStatus === undefined ? Effect.succeed(next) : Effect.as(options.onStatus(next), next)
      })

    const request = (event: Event, trackerId: string | undefined) =>
      Effect.map(
        options.stats,
        (stats): AnnounceRequest => ({
          infoHash: options.infoHash,
          peerId: options.peerId,
          port: options.port,
          ...stats,
          event,
          numwant: event === "stopped" ? 0 : (options.numwant ?? DEFAULT_NUMWANT),
          key,
          ...(trackerId !== undefined ? { trackerId } : {})
        })
      )

    const runTier = (tier: number, urls: ReadonlyArray<string>, wakeup: Queue.Queue<void>) =>
      Effect.gen(function* () {
        // BEP 12: shuffle each tier once, then keep the order, promoting whichever tracker answers.
        const order = yield* Ref.make(Array.from(yield* Random.shuffle(urls)))
        // Trackers that acknowledged our `started` (and will want a `stopped`), with their tracker ids.
        const registered = yield* Ref.make(new Map<string, string | undefined>())
        const completedSent = yield* Ref.make(false)
        const driver = yield* Schedule.driver(backoff)

        const eventFor = (url: string, known: ReadonlyMap<string, string | undefined>, completeNow: boolean): Event =>
          !known.has(url) ? "started" : completeNow ? "completed" : "none"

        /** Tries the tier's trackers in order; the first that answers moves to the front. */
        const announceOnce = Effect.gen(function* () {
          const completeNow = (yield* Deferred.isDone(completed)) && !(yield* Ref.get(completedSent))
          let lastError: TrackerError | undefined
          for (const url of yield* Ref.get(order)) {
            const known = yield* Ref.get(registered)
            const event = eventFor(url, known, completeNow)
            const result = yield* request(event, known.get(url)).pipe(
              Effect.flatMap((req) => client.announce(url, req)),
              Effect.either
            )
            if (Either.isLeft(result)) {
              lastError = result.left
              const reason = `${result.left.reason}: ${result.left.message}`
              yield* Effect.logWarning(`tracker ${url}: ${reason}`)
              yield* setStatus(tier, url, (s) => ({ ...s, status: "error", lastError: reason }))
              continue
            }
            const response = result.right
            yield* Ref.update(registered, (map) => new Map(map).set(url, response.trackerId ?? map.get(url)))
            if (completeNow) yield* Ref.set(completedSent, true)
            yield* Ref.update(order, (all) => [url, ...all.filter((u) => u !== url)])
            if (response.warning !== undefined) yield* Effect.logWarning(`tracker ${url} warns: ${response.warning}`)
            yield* setStatus(tier, url, ({ lastError: _, ...s }) => ({
              ...s,
              status: "ok",
              peers: response.peers.length,
              ...(response.complete !== undefined ? { seeders: response.complete } : {}),
              ...(response.incomplete !== undefined ? { leechers: response.incomplete } : {})
            }))
            if (response.peers.length > 0) yield* options.onPeers(response.peers)
            return Either.right([url, response] as const)
          }
          return Either.left(lastError)
        })

        /** Sleeps until the interval ends, or a wake-up (after the min interval) comes first. */
        const wait = (url: string, response: AnnounceResponse) =>
          Effect.gen(function* () {
            const interval = Math.max(floor, response.interval * 1000)
            const minInterval = Math.min(
              interval,
              Math.max(floor, (response.minInterval ?? DEFAULT_MIN_INTERVAL_SECONDS) * 1000)
            )
            const start = yield* Clock.currentTimeMillis
            yield* setStatus(tier, url, (s) => ({ ...s, nextAnnounceAt: start + interval }))
            // The announce just made answered earlier requests for peers.
            yield* Queue.takeAll(wakeup)
            const completion = Effect.flatMap(Ref.get(completedSent), (sent) =>
              sent ? Effect.never : Deferred.await(completed)
            )
            const early = Effect.raceFirst(Queue.take(wakeup), completion).pipe(
              Effect.zipRight(Clock.currentTimeMillis),
              Effect.flatMap((now) => {
                const at = Math.max(now, start + minInterval)
                return setStatus(tier, url, (s) => ({ ...s, nextAnnounceAt: at })).pipe(
                  Effect.zipRight(Effect.sleep(Duration.millis(at - now)))
                )
              })
            )
            yield* Effect.raceFirst(Effect.sleep(Duration.millis(interval)), early)
          })

        const sendStopped = Effect.gen(function* () {
          const known = yield* Ref.get(registered)
          yield* Effect.forEach(
            known,
            ([url, trackerId]) =>
              request("stopped", trackerId).pipe(
                Effect.flatMap((req) => client.announce(url, req)),
                // Finalizers are uninterruptible; the announce must not be, or the timeout could not cut it.
                Effect.interruptible,
                Effect.timeoutFail({
                  duration: options.stopTimeout ?? DEFAULT_STOP_TIMEOUT,
                  onTimeout: () => `no reply to stopped within the stop timeout`
                }),
                Effect.catchAll((failure) => {
                  const reason = typeof failure === "string" ? failure : failure.message
                  return Effect.logDebug(`tracker ${url}: stopped not acknowledged: ${reason}`)
                })
              ),
            { concurrency: "unbounded", discard: true }
          )
        })
        yield* Effect.addFinalizer(() => sendStopped)

        const loop = Effect.gen(function* () {
          for (;;) {
            const result = yield* announceOnce
            if (Either.isRight(result)) {
              yield* driver.reset
              yield* wait(result.right[0], result.right[1])
            } else if (result.left === undefined) {
              // A tier without trackers has nothing to do.
              return yield* Effect.never
            } else {
              // A backoff schedule that ends keeps waiting at its cap.
              yield* driver.next(result.left).pipe(Effect.orElse(() => Effect.sleep("30 minutes")))
            }
          }
        })
        yield* Effect.forkScoped(loop)
      })

    yield* Effect.forEach(options.tiers, (urls, tier) => runTier(tier, urls, queues[tier]!), { discard: true })

    return {
      status: SubscriptionRef.get(statuses),
      changes: statuses.changes,
      complete: Effect.asVoid(Deferred.succeed(completed, undefined)),
      needPeers: Effect.forEach(queues, (queue) => Queue.offer(queue, undefined), { discard: true })
    }
  })
