/**
 * Seeds and the small pseudo-random generator every random choice of the fault kit draws from:
 * the same seed gives the same content, fault schedule and packet fate, so a failing run is
 * replayed by running it again with its seed (`BITFIBER_SEED=<seed>`).
 */

/** The environment variable a seed is read from. */
export const ENV = "BITFIBER_SEED"

/**
 * A mulberry32 generator: 32 bits of state, fine with any seed (0 included), fast enough to
 * fill test torrents. Mutable: give each consumer its own (`fork`) to keep their draws apart.
 */
export class Prng {
  private state: number

  constructor(
    /** The seed it started from, for messages. */
    readonly seed: number
  ) {
    this.state = seed >>> 0
  }

  /** The next 32 random bits, as an unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000
  }

  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p
  }

  /** One element of a non-empty list. */
  pick<A>(items: ReadonlyArray<A>): A {
    return items[Math.floor(this.next() * items.length)]!
  }

  /** A new generator seeded from this one, so a consumer's draws do not shift another's. */
  fork(): Prng {
    return new Prng(this.nextUint32())
  }

  /** Fills `out` with random bytes. */
  fill(out: Uint8Array): Uint8Array {
    for (let i = 0; i < out.length; i += 4) {
      const word = this.nextUint32()
      for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = (word >>> (8 * j)) & 0xff
    }
    return out
  }
}

/** Parses a seed as written in `BITFIBER_SEED` or a message: a decimal or `0x` hex u32. */
export const parse = (text: string): number | undefined => {
  const trimmed = text.trim()
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(trimmed)) return undefined
  const value = Number(trimmed)
  return Number.isSafeInteger(value) && value >= 0 && value <= 0xffff_ffff ? value : undefined
}

/**
 * The seed of this run: `BITFIBER_SEED` from `env` when set and valid, else `fallback` (a
 * fresh random seed when not given), so each run explores a new schedule unless told to replay.
 */
export const fromEnv = (
  env: Readonly<Record<string, string | undefined>> = process.env,
  fallback?: number
): number => {
  const given = env[ENV] === undefined ? undefined : parse(env[ENV])
  return given ?? fallback ?? Math.floor(Math.random() * 0x1_0000_0000)
}

/** The line to print with a failure so the run can be replayed. */
export const replayHint = (seed: number): string => `replay with ${ENV}=${seed}`
