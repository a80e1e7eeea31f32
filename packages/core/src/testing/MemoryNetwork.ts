/**
 * An in-memory `Network`: a switchboard of simulated hosts, each seeing the network through its
 * own `Network` view, with per-link latency, bandwidth and faults, all on Effect's Clock so whole
 * swarms run deterministically under `TestClock`.
 *
 * A connection is a pair of byte pipes with TCP-like flow control: bytes in flight plus bytes not
 * yet read count against a window, and a `write` that leaves more than the window outstanding
 * waits until the reader catches up — so a peer that stops reading blocks its writer.
 *
 * Every random choice (jitter, UDP loss, duplication, reordering, `corrupt` functions given the
 * generator) draws from one generator seeded by `Options.seed`, so a run replays from its seed.
 */
import { Chunk, Clock, type Context, Duration, Effect, FiberSet, Layer, Option, Stream } from "effect"
import { type Address, type Connection, type Datagram, formatAddress, Network, NetworkError, type Outgoing } from "../net/Network.js"
import { DelayQueue } from "./internal/DelayQueue.js"
import { Prng } from "./Seed.js"

/** The `Network` service as seen from one host. */
export type NetworkView = Context.Tag.Service<Network>

/**
 * How traffic from one host to another behaves. Each field applies to its direction only
 * (`from` -> `to`); set both directions for a symmetric link.
 */
export interface Link {
  /** One-way delay of every chunk or datagram; a connect takes a round trip. */
  readonly latency?: Duration.DurationInput
  /** Extra delay drawn uniformly from [0, jitter] per chunk or datagram; a byte stream keeps its order. */
  readonly jitter?: Duration.DurationInput
  /** Bytes per second each connection's writer can push onto the link (TCP only): a throttle. */
  readonly bandwidth?: number
  /** `connect` fails with `Refused` at once, as if nothing listened. */
  readonly refuse?: boolean
  /** `connect` never answers (it fails only by its timeout); datagrams are dropped. */
  readonly blackhole?: boolean
  /** Each connection is reset once this many bytes have passed in this direction. */
  readonly cutAfterBytes?: number
  /**
   * Rewrites every chunk or datagram in transit (bytes are the sender's copy; may be changed in
   * place), drawing any randomness from `random`, the switchboard's seeded generator.
   */
  readonly corrupt?: (bytes: Uint8Array, random: Prng) => Uint8Array
  /**
   * Nothing is delivered while set (TCP): bytes wait in the link and count against the window,
   * so the writer blocks as if the reader had stopped reading. Clearing it delivers them in order.
   */
  readonly stall?: boolean
  /** UDP: probability in [0, 1] that a datagram is lost. */
  readonly drop?: number
  /** UDP: probability in [0, 1] that a datagram arrives twice. */
  readonly duplicate?: number
  /** UDP: probability in [0, 1] that a datagram is held back by `reorderDelay`, so later ones overtake it. */
  readonly reorder?: number
  /** UDP: how long a reordered datagram is held back (default 100 ms). */
  readonly reorderDelay?: Duration.DurationInput
}

/** Which traffic a `Link` applies to: by sending and receiving host, either absent = any. */
export interface LinkMatch {
  readonly from?: string
  readonly to?: string
}

/** Switchboard settings. */
export interface Options {
  /** Bytes a connection direction may have outstanding before writes wait (default 256 KiB). */
  readonly window?: number
  /** Datagrams queued per UDP socket before new ones are dropped (default 1024). */
  readonly udpBuffer?: number
  /** Seed of the generator behind jitter, UDP faults and `corrupt` (default 0). */
  readonly seed?: number
}

/** The shared state of one simulated network. */
export interface Switchboard {
  /**
   * The `Network` as seen from `host`: binding the wildcard (`0.0.0.0`, `::`) binds `host`, and its
   * connections and datagrams come from `host`. Hosts are plain names (every string works, loopback included),
   * is one shared host of this switchboard.
   */
  readonly network: (host: string) => NetworkView
  /**
   * Sets the link settings for traffic matching `match`, replacing an earlier rule with the
   * same match. Rules apply in the order first set, later ones overriding fields of earlier ones.
   * Evaluated on every connect, write and send, so changes apply to open connections too.
   */
  readonly setLink: (match: LinkMatch, link: Link) => Effect.Effect<void>
  /**
   * Adds a rule on top of the others (never replacing one) and returns the effect that removes
   * it again: a fault that comes and goes, as `FaultPlan` schedules them.
   */
  readonly addLink: (match: LinkMatch, link: Link) => Effect.Effect<Effect.Effect<void>>
  /** Removes every link rule. */
  readonly clearLinks: Effect.Effect<void>
  /** The effective settings for traffic from host `from` to host `to`. */
  readonly link: (from: string, to: string) => Link
  /**
   * Resets every open connection with a direction matching `match` (both ends fail with
   * `Reset`), as a cable cut or a middlebox dropping state would; returns how many were cut.
   */
  readonly cut: (match: LinkMatch) => Effect.Effect<number>
  /** The generator behind the network's random faults. */
  readonly random: Prng
}

/** Default `Options.window`: 256 KiB, a typical TCP receive window. */
export const DEFAULT_WINDOW = 256 * 1024
/** Default `Options.udpBuffer`. */
export const DEFAULT_UDP_BUFFER = 1024
/** The host of a view made without one. */
export const DEFAULT_HOST = "127.0.0.1"

const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(10)
const EPHEMERAL_FIRST = 49152
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST

const isWildcard = (host: string): boolean => host === "0.0.0.0" || host === "::" || host === ""

const millis = (duration: Duration.DurationInput | undefined): number =>
  duration === undefined ? 0 : Duration.toMillis(Duration.decode(duration))

const latencyMillis = (link: Link): number => millis(link.latency)

const DEFAULT_REORDER_DELAY = 100

const matches = (match: LinkMatch, from: string, to: string): boolean =>
  (match.from ?? from) === from && (match.to ?? to) === to

interface HostPorts {
  readonly tcp: Set<number>
  readonly udp: Set<number>
  next: number
}

/** One direction of a connection. */
interface Pipe {
  readonly from: string
  readonly to: string
  readonly queue: DelayQueue<Uint8Array, NetworkError>
  /** Bytes that passed so far, for `cutAfterBytes`. */
  sent: number
  /** When the link finishes serializing what was written so far, for `bandwidth`. */
  busyUntil: number
}

/** Creates an empty network. */
export const make = (options?: Options): Effect.Effect<Switchboard> =>
  Effect.sync(() => {
    const window = options?.window ?? DEFAULT_WINDOW
    const udpBuffer = options?.udpBuffer ?? DEFAULT_UDP_BUFFER
    const random = new Prng(options?.seed ?? 0)
    const rules: Array<{ readonly match: LinkMatch; link: Link }> = []
    const hosts = new Map<string, HostPorts>()
    const listeners = new Map<string, (client: Address) => Connection>()
    const sockets = new Map<string, DelayQueue<Datagram, never>>()
    // Open connections, for `cut`, and their pipes, woken when the rules change (a stall ends).
    const open = new Set<{ readonly up: Pipe; readonly down: Pipe; readonly reset: (now: number) => void }>()

    const link = (from: string, to: string): Link => {
      let merged: Link = {}
      for (const rule of rules) {
        if (matches(rule.match, from, to)) merged = { ...merged, ...rule.link }
      }
      return merged
    }

    const rulesChanged = () => {
      for (const connection of open) {
        connection.up.queue.notify()
        connection.down.queue.notify()
      }
    }

    const jitterMillis = (settings: Link): number => {
      const jitter = Math.floor(millis(settings.jitter))
      return jitter > 0 ? random.int(0, jitter) : 0
    }

    const portsOf = (host: string): HostPorts => {
      let ports = hosts.get(host)
      if (ports === undefined) {
        ports = { tcp: new Set(), udp: new Set(), next: EPHEMERAL_FIRST }
        hosts.set(host, ports)
      }
      return ports
    }

    /** Claims `port` (0 = a free ephemeral one) on a host; undefined when taken or exhausted. */
    const claim = (host: string, kind: "tcp" | "udp", port: number): number | undefined => {
      const ports = portsOf(host)
      const used = ports[kind]
      if (port !== 0) {
        if (used.has(port)) return undefined
        used.add(port)
        return port
      }
      for (let tries = 0; tries < EPHEMERAL_COUNT; tries++) {
        const candidate = ports.next
        ports.next = candidate === 65535 ? EPHEMERAL_FIRST : candidate + 1
        if (!used.has(candidate)) {
          used.add(candidate)
          return candidate
        }
      }
      return undefined
    }

    const release = (address: Address, kind: "tcp" | "udp"): void => {
      hosts.get(address.host)?.[kind].delete(address.port)
    }

    const makePipe = (from: Address, to: Address): Pipe => ({
      from: from.host,
      to: to.host,
      queue: new DelayQueue(() => link(from.host, to.host).stall === true),
      sent: 0,
      busyUntil: 0
    })

    /** The two ends of a fresh connection: [client side, server side]. */
    const makeConnection = (client: Address, server: Address): readonly [Connection, Connection] => {
      const up = makePipe(client, server)
      const down = makePipe(server, client)
      const reset = (now: number) => {
        up.queue.finish(Math.max(now, up.queue.lastAt), Option.some(new NetworkError({ reason: "Reset", address: formatAddress(client) })))
        down.queue.finish(Math.max(now, down.queue.lastAt), Option.some(new NetworkError({ reason: "Reset", address: formatAddress(server) })))
      }
      const entry = { up, down, reset }
      open.add(entry)
      let ends = 2
      const endClosed = () => {
        if (--ends === 0) open.delete(entry)
      }
      const end = (local: Address, remote: Address, incoming: Pipe, outgoing: Pipe, onClose: () => void): Connection => {
        const label = formatAddress(remote)
        let closed = false
        // Why this side can no longer write, if it cannot: closed by either side, or reset.
        const broken = (): NetworkError | undefined =>
          closed || outgoing.queue.isDiscarded
            ? new NetworkError({ reason: "Closed", address: label })
            : outgoing.queue.isFinished
            ? new NetworkError({ reason: "Reset", address: label })
            : undefined
        const write = (data: Outgoing): Effect.Effect<void, NetworkError> =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            // A gathered write travels as one chunk, as TCP would coalesce it. A copy either way
            // (the concatenation is one), so the caller may reuse its buffers once this completes
            // and `corrupt` may change the bytes in place; not Buffer#slice, which is a view.
            const bytes = data instanceof Uint8Array ? new Uint8Array(data) : Buffer.concat(data)
            const error = broken()
            if (error !== undefined) return Effect.fail(error)
            if (bytes.length === 0) return Effect.void
            const settings = link(outgoing.from, outgoing.to)
            const limit = settings.cutAfterBytes
            const cut = limit !== undefined && outgoing.sent + bytes.length >= limit
            const passed = cut ? bytes.subarray(0, Math.max(0, limit - outgoing.sent)) : bytes
            if (passed.length > 0) {
              const payload = settings.corrupt === undefined ? passed : settings.corrupt(passed, random)
              const serialization = settings.bandwidth === undefined ? 0 : (payload.length * 1000) / settings.bandwidth
              outgoing.busyUntil = Math.max(now, outgoing.busyUntil) + serialization
              // Never before earlier chunks: a byte stream keeps its order even if the latency drops.
              const at = Math.max(Math.ceil(outgoing.busyUntil + latencyMillis(settings) + jitterMillis(settings)), outgoing.queue.lastAt)
              outgoing.queue.push(payload, payload.length, at)
              outgoing.sent += passed.length
            }
            if (cut) {
              reset(now)
              return Effect.fail(new NetworkError({ reason: "Reset", address: label }))
            }
            return Effect.zipRight(
              outgoing.queue.waitUntil(() => broken() !== undefined || outgoing.queue.size <= window),
              Effect.suspend(() => {
                const error = broken()
                return error === undefined ? Effect.void : Effect.fail(error)
              })
            )
          })
        return {
          local,
          remote,
          chunks: Stream.repeatEffectOption(incoming.queue.take),
          read: Effect.map(incoming.queue.take, Chunk.of),
          write,
          close: Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              if (closed) return
              closed = true
              outgoing.queue.finish(now + latencyMillis(link(outgoing.from, outgoing.to)), Option.none())
              incoming.queue.discard()
              endClosed()
              onClose()
            })
          )
        }
      }
      return [
        end(client, server, down, up, () => release(client, "tcp")),
        end(server, client, up, down, () => {})
      ]
    }

    const network = (host: string): NetworkView => {
      const bindHost = (address: Address): Address => ({
        host: isWildcard(address.host) ? host : address.host,
        port: address.port
      })

      const connect: NetworkView["connect"] = (address, connectOptions) => {
        const label = formatAddress(address)
        const refused = new NetworkError({ reason: "Refused", address: label })
        const attempt = Effect.gen(function* () {
          const there = link(host, address.host)
          if (there.refuse === true) return yield* Effect.fail(refused)
          if (there.blackhole === true) return yield* Effect.never
          const roundTrip = latencyMillis(there) + latencyMillis(link(address.host, host))
          if (roundTrip > 0) yield* Effect.sleep(Duration.millis(roundTrip))
          // Looking up, claiming a port and handing over the server side happen in one step.
          return yield* Effect.suspend(() => {
            const accept = listeners.get(formatAddress(address))
            if (accept === undefined) return Effect.fail(refused)
            const port = claim(host, "tcp", 0)
            if (port === undefined) return Effect.fail(new NetworkError({ reason: "Bind", address: label }))
            return Effect.succeed(accept({ host, port }))
          })
        }).pipe(
          Effect.timeoutFail({
            duration: connectOptions?.timeout ?? DEFAULT_CONNECT_TIMEOUT,
            onTimeout: () => new NetworkError({ reason: "Timeout", address: label })
          })
        )
        return Effect.uninterruptibleMask((restore) =>
          Effect.tap(restore(attempt), (connection) => Effect.addFinalizer(() => connection.close))
        )
      }

      const listen: NetworkView["listen"] = (address, handler) =>
        Effect.gen(function* () {
          const run = yield* FiberSet.makeRuntime<never>()
          const requested = bindHost(address)
          const bound = yield* Effect.acquireRelease(
            Effect.suspend(() => {
              const port = claim(requested.host, "tcp", requested.port)
              if (port === undefined) {
                return Effect.fail(new NetworkError({ reason: "Listen", address: formatAddress(requested) }))
              }
              const bound = { host: requested.host, port }
              listeners.set(formatAddress(bound), (client) => {
                const [clientSide, serverSide] = makeConnection(client, bound)
                run(Effect.ensuring(handler(serverSide), serverSide.close))
                return clientSide
              })
              return Effect.succeed(bound)
            }),
            (bound) =>
              Effect.sync(() => {
                listeners.delete(formatAddress(bound))
                release(bound, "tcp")
              })
          )
          return { address: bound }
        })

      const udp: NetworkView["udp"] = (address) =>
        Effect.gen(function* () {
          const requested = bindHost(address)
          const [bound, inbox] = yield* Effect.acquireRelease(
            Effect.suspend(() => {
              const port = claim(requested.host, "udp", requested.port)
              if (port === undefined) {
                return Effect.fail(new NetworkError({ reason: "Bind", address: formatAddress(requested) }))
              }
              const bound = { host: requested.host, port }
              const inbox = new DelayQueue<Datagram, never>()
              sockets.set(formatAddress(bound), inbox)
              return Effect.succeed([bound, inbox] as const)
            }),
            ([bound, inbox]) =>
              Effect.sync(() => {
                sockets.delete(formatAddress(bound))
                inbox.discard()
                release(bound, "udp")
              })
          )
          return {
            address: bound,
            send: (bytes: Uint8Array, to: Address) =>
              Effect.flatMap(Clock.currentTimeMillis, (now) => {
                if (inbox.isDiscarded) return Effect.fail(new NetworkError({ reason: "Closed", address: formatAddress(to) }))
                const settings = link(bound.host, to.host)
                const target = sockets.get(formatAddress(to))
                if (target === undefined || settings.blackhole === true || random.chance(settings.drop ?? 0)) return Effect.void
                const copies = random.chance(settings.duplicate ?? 0) ? 2 : 1
                for (let copy = 0; copy < copies && target.count < udpBuffer; copy++) {
                  const fresh = new Uint8Array(bytes)
                  const payload = settings.corrupt === undefined ? fresh : settings.corrupt(fresh, random)
                  const held = random.chance(settings.reorder ?? 0)
                    ? settings.reorderDelay === undefined ? DEFAULT_REORDER_DELAY : millis(settings.reorderDelay)
                    : 0
                  target.push({ bytes: payload, from: bound }, payload.length, Math.ceil(now + latencyMillis(settings) + jitterMillis(settings) + held))
                }
                return Effect.void
              }),
            datagrams: Stream.repeatEffectOption(inbox.take)
          }
        })

      return { connect, listen, udp }
    }

    return {
      network,
      link,
      random,
      setLink: (match, settings) =>
        Effect.sync(() => {
          const existing = rules.find((rule) => rule.match.from === match.from && rule.match.to === match.to)
          if (existing === undefined) rules.push({ match, link: settings })
          else existing.link = settings
          rulesChanged()
        }),
      addLink: (match, settings) =>
        Effect.sync(() => {
          const rule = { match, link: settings }
          rules.push(rule)
          rulesChanged()
          return Effect.sync(() => {
            const index = rules.indexOf(rule)
            if (index >= 0) rules.splice(index, 1)
            rulesChanged()
          })
        }),
      clearLinks: Effect.sync(() => {
        rules.length = 0
        rulesChanged()
      }),
      cut: (match) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          let count = 0
          for (const connection of open) {
            const { down, up } = connection
            if (!matches(match, up.from, up.to) && !matches(match, down.from, down.to)) continue
            if (up.queue.isFinished && down.queue.isFinished) continue
            connection.reset(now)
            count++
          }
          return count
        })
    }
  })

/** The `Network` as seen from `host` (default `127.0.0.1`) of `switchboard`. */
export const layer = (switchboard: Switchboard, options?: { readonly host?: string }): Layer.Layer<Network> =>
  Layer.succeed(Network, switchboard.network(options?.host ?? DEFAULT_HOST))
