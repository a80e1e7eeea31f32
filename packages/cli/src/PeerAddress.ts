/** Parses the `host:port` peer addresses users type (`--peer`), IPv6 in brackets. */
import type { Network } from "@bitfiber/core"
import { Either } from "effect"

/** `127.0.0.1:6881`, `[::1]:6881` or `example.org:6881` as an address. */
export const parse = (text: string): Either.Either<Network.Address, string> => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim())
  const port = match === null ? NaN : Number(match[3])
  if (match === null || !(port > 0 && port < 65536)) return Either.left(`not a peer address: '${text}'`)
  return Either.right({ host: match[1] ?? match[2]!, port })
}
