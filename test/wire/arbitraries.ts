/** fast-check arbitraries of wire values shared by the wire tests. */
import { Message } from "@bitfiber/core"
import { FastCheck as fc } from "effect"

/** Any uint32, including values above 2^31 that signed arithmetic would break. */
export const uint32 = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
  .map(([high, low]) => high * 0x10000 + low)

const bytes = (maxLength: number) => fc.uint8Array({ maxLength })

/** Every message kind with random fields. */
export const message: fc.Arbitrary<Message.Message> = fc.oneof(
  fc.constantFrom<Message.Message>(
    Message.KeepAlive,
    Message.Choke,
    Message.Unchoke,
    Message.Interested,
    Message.NotInterested,
    Message.HaveAll,
    Message.HaveNone
  ),
  uint32.map(Message.Have),
  uint32.map(Message.Suggest),
  uint32.map(Message.AllowedFast),
  bytes(64).map(Message.Bitfield),
  fc.tuple(uint32, uint32, uint32).map(([i, b, l]) => Message.Request(i, b, l)),
  fc.tuple(uint32, uint32, uint32).map(([i, b, l]) => Message.Cancel(i, b, l)),
  fc.tuple(uint32, uint32, uint32).map(([i, b, l]) => Message.Reject(i, b, l)),
  fc.tuple(uint32, uint32, bytes(300)).map(([i, b, block]) => Message.Piece(i, b, block)),
  fc.integer({ min: 0, max: 0xffff }).map(Message.Port),
  fc.tuple(fc.integer({ min: 0, max: 255 }), bytes(100)).map(([id, payload]) => Message.Extended(id, payload))
)

/** Splits `bytes` into chunks at the given cut points (any order, duplicates allowed: empty chunks). */
export const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...cuts.map((c) => c % (bytes.length + 1)), bytes.length].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let from = 0
  for (const to of points) {
    chunks.push(bytes.subarray(from, to))
    from = to
  }
  return chunks
}
