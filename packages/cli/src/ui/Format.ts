/**
 * Human-readable sizes, rates and durations for terminal output, and the size syntax that
 * flags accept (`256K`, `1MiB`, `2097152`).
 */
import { Either } from "effect"

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const

/** `1536` -> `"1.50 KiB"`: binary units, three significant digits (bytes stay exact). */
export const bytes = (n: number): string => {
  let value = n
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  if (unit === 0) return `${n} B`
  // Rounding may carry to 1024 (1023.99 KiB -> "1024 KiB"): acceptable, and never misleading.
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0
  return `${value.toFixed(digits)} ${UNITS[unit]}`
}

/** `1048576` -> `"1.00 MiB/s"`. */
export const rate = (bytesPerSecond: number): string => `${bytes(Math.round(bytesPerSecond))}/s`

/** `125` -> `"2m 05s"`, `2.25` -> `"2.3s"`: the two most significant units, for elapsed times and ETAs. */
export const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return "--"
  if (seconds < 10) return `${seconds.toFixed(1)}s`
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  const pad = (n: number) => String(n).padStart(2, "0")
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`
}

/** `0.4567` -> `"45.6%"`: rounded down, so 100% means done. */
export const percent = (fraction: number): string =>
  `${(Math.floor(Math.min(Math.max(fraction, 0), 1) * 1000) / 10).toFixed(1)}%`

const MULTIPLIERS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/**
 * Parses a size as flags take it: a byte count (`2097152`) or a number with a binary suffix
 * (`256K`, `256KiB`, `1m`, `1.5G`); the result must be a whole number of bytes.
 */
export const parseSize = (text: string): Either.Either<number, string> => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(text)
  if (match === null) return Either.left(`"${text}" is not a size (examples: 262144, 256K, 1M, 4MiB)`)
  const value = Number(match[1]) * (MULTIPLIERS[(match[2] ?? "").toLowerCase()] ?? 1)
  return Number.isSafeInteger(value)
    ? Either.right(value)
    : Either.left(`"${text}" is not a whole number of bytes`)
}

/**
 * Makes untrusted text (torrent names, comments, file paths) safe to print on a terminal:
 * control characters, which could move the cursor or recolour the screen, become `\xNN`.
 */
export const printable = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) =>
  `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`)
