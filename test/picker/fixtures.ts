import { Bitfield, PiecePicker } from "@bitfiber/core"
import { Either } from "effect"

/** A deterministic `random` (mulberry32) so picks replay exactly. */
export const seeded = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A bitfield over `size` pieces holding `indices`. */
export const bits = (size: number, indices: Iterable<number>): Bitfield.Bitfield => {
  const field = Bitfield.Bitfield.empty(size)
  for (const index of indices) field.add(index)
  return field
}

/** A picker that has nothing yet (unless told otherwise), with seeded randomness. */
export const picker = (
  pieceCount: number,
  pieceLength: number,
  totalLength: number,
  options?: { have?: Bitfield.Bitfield; wanted?: Bitfield.Bitfield; random?: () => number }
): PiecePicker.PiecePicker =>
  Either.getOrThrow(
    PiecePicker.make({
      pieceCount,
      pieceLength,
      totalLength,
      have: options?.have ?? Bitfield.Bitfield.empty(pieceCount),
      random: options?.random ?? seeded(1),
      ...(options?.wanted === undefined ? {} : { wanted: options.wanted })
    })
  )
