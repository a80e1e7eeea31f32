/**
 * A set of piece indices as the wire carries it: bit 7 of byte 0 is piece 0. Mutable on purpose:
 * it lives inside one actor's state and is updated on every `have`.
 */
import { Data, Either } from "effect"

/** Why bytes from a peer are not a valid bitfield for this torrent. */
export class BitfieldError extends Data.TaggedError("BitfieldError")<{
  readonly reason: "Length" | "SpareBits"
  readonly expectedBytes: number
  readonly actualBytes: number
}> {}

/** A fixed-size set of piece indices. */
export class Bitfield {
  private constructor(
    /** Number of pieces the set ranges over. */
    readonly size: number,
    /** The wire bytes; spare bits after `size` are always zero. */
    readonly bytes: Uint8Array,
    private counted: number
  ) {}

  /** An empty set over `size` pieces. */
  static empty(size: number): Bitfield {
    return new Bitfield(size, new Uint8Array(Math.ceil(size / 8)), 0)
  }

  /** The full set over `size` pieces. */
  static full(size: number): Bitfield {
    const field = Bitfield.empty(size)
    for (let i = 0; i < size; i++) field.add(i)
    return field
  }

  /** Validates a peer's bitfield message: exact byte length and zero spare bits. */
  static fromBytes(bytes: Uint8Array, size: number): Either.Either<Bitfield, BitfieldError> {
    const expectedBytes = Math.ceil(size / 8)
    if (bytes.length !== expectedBytes) {
      return Either.left(new BitfieldError({ reason: "Length", expectedBytes, actualBytes: bytes.length }))
    }
    const spare = expectedBytes * 8 - size
    if (spare > 0 && (bytes[expectedBytes - 1]! & ((1 << spare) - 1)) !== 0) {
      return Either.left(new BitfieldError({ reason: "SpareBits", expectedBytes, actualBytes: bytes.length }))
    }
    const copy = Uint8Array.from(bytes)
    let counted = 0
    for (const byte of copy) counted += popcount(byte)
    return Either.right(new Bitfield(size, copy, counted))
  }

  /** Whether piece `index` is in the set (false when out of range). */
  has(index: number): boolean {
    if (index < 0 || index >= this.size) return false
    return (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0
  }

  /** Adds piece `index`; returns false if it was already present or is out of range. */
  add(index: number): boolean {
    if (index < 0 || index >= this.size || this.has(index)) return false
    this.bytes[index >> 3]! |= 0x80 >> (index & 7)
    this.counted++
    return true
  }

  /** Removes piece `index`; returns false if it was absent. */
  remove(index: number): boolean {
    if (!this.has(index)) return false
    this.bytes[index >> 3]! &= ~(0x80 >> (index & 7))
    this.counted--
    return true
  }

  /** Number of pieces in the set. */
  get count(): number {
    return this.counted
  }

  /** Whether every piece is in the set. */
  get isComplete(): boolean {
    return this.counted === this.size
  }

  /** An independent copy. */
  clone(): Bitfield {
    return new Bitfield(this.size, Uint8Array.from(this.bytes), this.counted)
  }

  /** The indices in the set, ascending. */
  *indices(): IterableIterator<number> {
    // Whole zero bytes are skipped: sparse sets (a new peer's `have`s) iterate fast.
    for (let byte = 0; byte < this.bytes.length; byte++) {
      const bits = this.bytes[byte]!
      if (bits === 0) continue
      for (let bit = 0; bit < 8; bit++) if ((bits & (0x80 >> bit)) !== 0) yield byte * 8 + bit
    }
  }
}

const popcount = (byte: number): number => {
  let n = byte - ((byte >> 1) & 0x55)
  n = (n & 0x33) + ((n >> 2) & 0x33)
  return (n + (n >> 4)) & 0x0f
}
