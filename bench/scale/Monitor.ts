/** What a scale scenario measures about its own process: RSS, event-loop delay, CPU, wall time. */
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import * as Report from "../support/Report.js"

/** The process's memory when its RSS peaked: where the peak went (V8 heap, or buffers outside it). */
export interface AtPeak {
  readonly heapUsedMiB: number
  readonly heapTotalMiB: number
  /** Memory of C++ objects bound to JS ones, Buffers and ArrayBuffers included. */
  readonly externalMiB: number
  readonly arrayBuffersMiB: number
}

/** An event-loop stall: a turn of the loop that came late. */
export interface Stall {
  /** Seconds from the start of the phase to the end of the stall. */
  readonly atSeconds: number
  /** How late the loop came. */
  readonly ms: number
  /**
   * CPU time the process (all its threads) used meanwhile: near `ms` or above when it was busy
   * itself, far below when it waited (for a CPU on a loaded machine, or on a blocking call).
   */
  readonly cpuMs: number
}

/** Stalls above this are listed (the scale target: no stall above 50 ms). */
const STALL_MS = 50
/** Stalls listed at the most, the first ones. */
const MAX_STALLS = 50

/** What one phase measured. */
export interface Measured {
  readonly rssBaselineMiB: number
  readonly rssPeakMiB: number
  readonly atPeak: AtPeak
  readonly eventLoopDelayMaxMs: number
  readonly eventLoopDelayP99Ms: number
  /** The probe's stalls above 50 ms. */
  readonly stalls: ReadonlyArray<Stall>
  readonly cpuSeconds: number
  readonly seconds: number
}

const breakdown = (): AtPeak => {
  const usage = process.memoryUsage()
  return {
    heapUsedMiB: Report.mib(usage.heapUsed),
    heapTotalMiB: Report.mib(usage.heapTotal),
    externalMiB: Report.mib(usage.external),
    arrayBuffersMiB: Report.mib(usage.arrayBuffers)
  }
}

/**
 * From now on, samples RSS every 10 ms and the event-loop delay, until `stop`; the baseline is
 * taken after a GC (when node runs with --expose-gc). The delay is the worse of perf_hooks'
 * histogram and a 10 ms probe timer that also counts a stall still going on at `stop`: the
 * histogram drops its first interval and any stall the loop has not come out of, and Effect's
 * scheduler can keep a busy runtime on microtasks for seconds without a turn of the event loop.
 */
export const monitor = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  const baseline = process.memoryUsage.rss()
  let peak = baseline
  let atPeak = breakdown()
  const sample = () => {
    const rss = process.memoryUsage.rss()
    if (rss <= peak) return
    peak = rss
    atPeak = breakdown()
  }
  const cpu = process.cpuUsage()
  const started = performance.now()
  let lastTick = started
  let lastCpu = cpu
  let worstGap = 0
  const stalls: Array<Stall> = []
  const tick = (now: number) => {
    const gap = now - lastTick - 10
    worstGap = Math.max(worstGap, gap)
    const cpuNow = process.cpuUsage()
    if (gap > STALL_MS && stalls.length < MAX_STALLS) {
      const cpuMs = (cpuNow.user - lastCpu.user + cpuNow.system - lastCpu.system) / 1000
      stalls.push({ atSeconds: (now - started) / 1000, ms: gap, cpuMs })
    }
    lastTick = now
    lastCpu = cpuNow
  }
  const probe = setInterval(() => {
    tick(performance.now())
    sample()
  }, 10)
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  return {
    stop: (): Measured => {
      const now = performance.now()
      clearInterval(probe)
      histogram.disable()
      tick(now)
      sample()
      const used = process.cpuUsage(cpu)
      return {
        rssBaselineMiB: Report.mib(baseline),
        rssPeakMiB: Report.mib(peak),
        atPeak,
        eventLoopDelayMaxMs: Math.max(histogram.max / 1e6, worstGap),
        eventLoopDelayP99Ms: histogram.percentile(99) / 1e6,
        stalls,
        cpuSeconds: (used.user + used.system) / 1e6,
        seconds: (now - started) / 1000
      }
    }
  }
}
