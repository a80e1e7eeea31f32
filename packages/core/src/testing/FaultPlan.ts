/**
 * Fault schedules for a `MemoryNetwork`: link faults that start at a time and last a while
 * (latency, jitter, a throttle, a stall, refused or unanswered connects, corruption, UDP loss)
 * and cuts of open connections, written by hand or drawn from a seed. Times count from when the
 * plan starts running, on Effect's Clock.
 */
import { Duration, Effect, type Scope } from "effect"
import type { Link, LinkMatch, Switchboard } from "./MemoryNetwork.js"
import type { Prng } from "./Seed.js"

/** A link rule in force from `at` for `duration` (for good when `duration` is undefined). */
export interface LinkFault {
  readonly _tag: "LinkFault"
  readonly at: number
  readonly duration: number | undefined
  readonly match: LinkMatch
  readonly link: Link
  /** What the fault is, for messages (e.g. `stall`, `throttle 20000 B/s`). */
  readonly label: string
}

/** Resets the open connections matching `match` at `at`. */
export interface Cut {
  readonly _tag: "Cut"
  readonly at: number
  readonly match: LinkMatch
}

/** One scheduled fault. */
export type Fault = LinkFault | Cut

/** A fault schedule. */
export type FaultPlan = ReadonlyArray<Fault>

const toMillis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

/** A link fault from `at`, lasting `duration` (omit it for a fault that stays). */
export const link = (options: {
  readonly at?: Duration.DurationInput
  readonly duration?: Duration.DurationInput
  readonly match: LinkMatch
  readonly link: Link
  readonly label?: string
}): LinkFault => ({
  _tag: "LinkFault",
  at: toMillis(options.at ?? 0),
  duration: options.duration === undefined ? undefined : toMillis(options.duration),
  match: options.match,
  link: options.link,
  label: options.label ?? labelOf(options.link)
})

/** A cut of the matching connections at `at`. */
export const cut = (at: Duration.DurationInput, match: LinkMatch): Cut => ({ _tag: "Cut", at: toMillis(at), match })

/** A short name for a link's settings. */
const labelOf = (settings: Link): string =>
  Object.entries(settings)
    .map(([key, value]) => (typeof value === "function" ? key : `${key}=${String(value)}`))
    .join(" ")

/**
 * Applies `plan` to `switchboard` from now on, in a fiber of the current scope: each link fault
 * is added at its time and removed when its duration ends; each cut happens at its time.
 */
export const run = (switchboard: Switchboard, plan: FaultPlan): Effect.Effect<void, never, Scope.Scope> => {
  const steps: Array<{ readonly at: number; readonly apply: Effect.Effect<void> }> = []
  for (const fault of plan) {
    if (fault._tag === "Cut") {
      steps.push({ at: fault.at, apply: Effect.asVoid(switchboard.cut(fault.match)) })
      continue
    }
    let remove: Effect.Effect<void> = Effect.void
    steps.push({ at: fault.at, apply: Effect.map(switchboard.addLink(fault.match, fault.link), (f) => void (remove = f)) })
    if (fault.duration !== undefined) steps.push({ at: fault.at + fault.duration, apply: Effect.suspend(() => remove) })
  }
  // Stable: a fault's end never runs before its start, even for a zero duration.
  steps.sort((a, b) => a.at - b.at)
  const timeline = Effect.gen(function* () {
    let elapsed = 0
    for (const step of steps) {
      if (step.at > elapsed) yield* Effect.sleep(Duration.millis(step.at - elapsed))
      elapsed = Math.max(elapsed, step.at)
      yield* step.apply
    }
  })
  return Effect.asVoid(Effect.forkScoped(timeline))
}

/** The kinds of fault `random` draws from. */
export type Kind = "latency" | "throttle" | "stall" | "cut" | "refuse" | "blackhole" | "corrupt" | "udpLoss"

/** Every kind that leaves the bytes a peer sends intact (no `corrupt`). */
export const HARMLESS_KINDS: ReadonlyArray<Kind> = ["latency", "throttle", "stall", "cut", "refuse", "blackhole", "udpLoss"]

/** What `random` draws over. */
export interface RandomOptions {
  /** The hosts whose links may fail; each fault hits the links between one of them and `target`. */
  readonly hosts: ReadonlyArray<string>
  /** The host every fault is about (the downloader under test). */
  readonly target: string
  /** Faults drawn. */
  readonly count: number
  /** Faults start within this time (default 60 s) and last at most `maxDuration`, so the network heals. */
  readonly horizon?: Duration.DurationInput
  /** Longest fault (default 20 s). */
  readonly maxDuration?: Duration.DurationInput
  /** Kinds to draw from (default `HARMLESS_KINDS`). */
  readonly kinds?: ReadonlyArray<Kind>
}

/** Flips one random bit in each byte with probability `p` (skip-sampled, so cheap for small `p`). */
export const flipBits = (p: number) => (bytes: Uint8Array, random: Prng): Uint8Array => {
  if (p <= 0) return bytes
  const step = () => (p >= 1 ? 1 : 1 + Math.floor(Math.log(1 - random.next()) / Math.log(1 - p)))
  for (let i = step() - 1; i < bytes.length; i += step()) bytes[i]! ^= 1 << random.int(0, 7)
  return bytes
}

/**
 * A random plan: `count` faults of the given kinds on links between `hosts` and `target`, each
 * starting within the horizon and lasting at most `maxDuration` (a cut is instant). The same
 * generator state gives the same plan.
 */
export const random = (prng: Prng, options: RandomOptions): FaultPlan => {
  const horizon = toMillis(options.horizon ?? Duration.seconds(60))
  const maxDuration = toMillis(options.maxDuration ?? Duration.seconds(20))
  const kinds = options.kinds ?? HARMLESS_KINDS
  const faults: Array<Fault> = []
  for (let i = 0; i < options.count; i++) {
    const host = prng.pick(options.hosts)
    const kind = prng.pick(kinds)
    const at = prng.int(0, horizon)
    const duration = prng.int(1000, Math.max(1000, maxDuration))
    // Towards the target for what it receives, from it for what it sends or dials.
    const inbound: LinkMatch = { from: host, to: options.target }
    const outbound: LinkMatch = { from: options.target, to: host }
    const fault = (match: LinkMatch, settings: Link) => link({ at, duration, match, link: settings })
    switch (kind) {
      case "latency":
        faults.push(fault(inbound, { latency: prng.int(1, 500), jitter: prng.int(0, 200) }))
        break
      case "throttle":
        faults.push(fault(inbound, { bandwidth: prng.int(4_000, 200_000) }))
        break
      case "stall":
        faults.push(fault(prng.chance(0.5) ? inbound : outbound, { stall: true }))
        break
      case "cut":
        faults.push(cut(at, inbound))
        break
      case "refuse":
        faults.push(fault(outbound, { refuse: true }))
        break
      case "blackhole":
        faults.push(fault(outbound, { blackhole: true }))
        break
      case "corrupt":
        faults.push(link({ at, duration, match: inbound, link: { corrupt: flipBits(0.001) }, label: "corrupt 0.1%" }))
        break
      case "udpLoss":
        faults.push(fault(inbound, { drop: prng.next() * 0.5, duplicate: prng.next() * 0.3, reorder: prng.next() * 0.5 }))
        break
    }
  }
  return faults
}

/** The plan as lines, for a failure message. */
export const describe = (plan: FaultPlan): string =>
  plan
    .map((fault) => {
      const where = `${fault.match.from ?? "*"} -> ${fault.match.to ?? "*"}`
      return fault._tag === "Cut"
        ? `  ${fault.at} ms: cut ${where}`
        : `  ${fault.at} ms${fault.duration === undefined ? "" : ` for ${fault.duration} ms`}: ${fault.label} on ${where}`
    })
    .join("\n")
