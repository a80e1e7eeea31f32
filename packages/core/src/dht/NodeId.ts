/**
 * DHT node ids (BEP 5): 160-bit numbers in the same space as info-hashes, compared by the XOR
 * metric. Byte arrays are read big-endian, so bit 0 is the top bit of byte 0.
 */
import { Brand, Data, Effect, Either, Random } from "effect"

/** A 20-byte node id (or a lookup target: an info-hash or any other point of the id space). */
export type NodeId = Uint8Array & Brand.Brand<"NodeId">

/** Why bytes or text are not a node id. */
export class NodeIdError extends Data.TaggedError("NodeIdError")<{
  readonly reason: "Length" | "Hex"
  readonly input: string
}> {}

/** Bytes in a node id. */
export const LENGTH = 20

/** Bits in a node id. */
export const BITS = LENGTH * 8

/** Brands 20 bytes as a node id (copying, so later mutation of `bytes` cannot change it). */
export const fromBytes = (bytes: Uint8Array): Either.Either<NodeId, NodeIdError> =>
  bytes.length === LENGTH
    ? Either.right(Uint8Array.from(bytes) as NodeId)
    : Either.left(new NodeIdError({ reason: "Length", input: `${bytes.length} bytes` }))

/** Brands bytes known to be 20 long (an info-hash, a slice of compact node info) without a check or copy. */
export const unsafeFromBytes = (bytes: Uint8Array): NodeId => bytes as NodeId

/** Lower-case hex form, also used as a map key. */
export const toHex = (id: NodeId): string => Buffer.from(id.buffer, id.byteOffset, id.length).toString("hex")

/** Parses 40 hex digits (either case). */
export const fromHex = (hex: string): Either.Either<NodeId, NodeIdError> =>
  /^[0-9a-fA-F]{40}$/.test(hex)
    ? Either.right(Uint8Array.from(Buffer.from(hex, "hex")) as NodeId)
    : Either.left(new NodeIdError({ reason: hex.length === 40 ? "Hex" : "Length", input: hex.slice(0, 64) }))

/** Byte-wise equality. */
export const equals = (a: NodeId, b: NodeId): boolean => {
  for (let i = 0; i < LENGTH; i++) if (a[i] !== b[i]) return false
  return true
}

/** The XOR distance of two ids, as a 20-byte big-endian number. */
export const distance = (a: NodeId, b: NodeId): Uint8Array => {
  const out = new Uint8Array(LENGTH)
  for (let i = 0; i < LENGTH; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/** Orders ids as unsigned big-endian numbers: negative when `a < b`. */
export const compare = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < LENGTH; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

/** Orders `a` and `b` by XOR distance to `target` without allocating: negative when `a` is closer. */
export const compareDistance = (target: NodeId, a: NodeId, b: NodeId): number => {
  for (let i = 0; i < LENGTH; i++) {
    const da = a[i]! ^ target[i]!
    const db = b[i]! ^ target[i]!
    if (da !== db) return da - db
  }
  return 0
}

/** How many leading bits `a` and `b` share (160 when equal): the routing table's bucket of `b` as seen from `a`. */
export const commonPrefixLength = (a: NodeId, b: NodeId): number => {
  for (let i = 0; i < LENGTH; i++) {
    const x = a[i]! ^ b[i]!
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return BITS
}

/**
 * An id whose first `bits` bits are those of `prefix` and whose other bits come from `noise`
 * (20 bytes): a random point of the id range that `prefix`/`bits` describe.
 */
export const withPrefix = (prefix: NodeId, bits: number, noise: Uint8Array): NodeId => {
  const out = new Uint8Array(LENGTH)
  for (let i = 0; i < LENGTH; i++) {
    const kept = Math.min(8, Math.max(0, bits - i * 8))
    const mask = (0xff00 >>> kept) & 0xff
    out[i] = (prefix[i]! & mask) | (noise[i]! & ~mask & 0xff)
  }
  return out as NodeId
}

/** `length` bytes from Effect's `Random` service (seedable in tests, unlike `crypto.randomBytes`). */
export const randomBytes = (length: number): Effect.Effect<Uint8Array> =>
  Effect.map(Effect.all(Array.from({ length }, () => Random.nextIntBetween(0, 256))), (bytes) => Uint8Array.from(bytes))

/** A uniformly random id. */
export const random: Effect.Effect<NodeId> = Effect.map(randomBytes(LENGTH), unsafeFromBytes)
