/** The 20-byte id a client announces to trackers and sends in its handshake. */
import { Brand } from "effect"
import { randomBytes } from "node:crypto"

/** A 20-byte peer id. */
export type PeerId = Uint8Array & Brand.Brand<"PeerId">

/** Azureus-style client prefix: bitfiber 0.1.0. */
export const PREFIX = "-BF0100-"

/** A fresh peer id: our client prefix and 12 random bytes. */
export const generate = (): PeerId => {
  const id = new Uint8Array(20)
  id.set(Buffer.from(PREFIX, "latin1"))
  id.set(randomBytes(12), 8)
  return id as PeerId
}

/** Brands 20 bytes received from the wire or a tracker as a peer id. */
export const unsafeFromBytes = (bytes: Uint8Array): PeerId => bytes as PeerId

/** Printable form for logs: the printable prefix, then hex. */
export const toString = (id: PeerId): string => Buffer.from(id).toString("hex")
