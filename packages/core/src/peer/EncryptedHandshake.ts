/**
 * The I/O of message stream encryption (see `wire/Encryption`): `accept` answers a fresh incoming
 * connection that opens with a key exchange instead of the plain handshake, and `initiate` opens
 * one. Both end with the BitTorrent handshake still to be read, and a connection to read it from:
 * the same connection when plaintext was selected (most peers offer it, and it costs nothing
 * after the exchange), one that en- and decrypts every byte when RC4 was.
 */
import { Chunk, Effect, Stream } from "effect"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type Connection, formatAddress, type Outgoing } from "../net/Network.js"
import * as Encryption from "../wire/Encryption.js"
import * as Handshake from "../wire/Handshake.js"
import { ConnectionLost, HandshakeFailed, readFailed } from "./PeerError.js"

/** A connection after the key exchange (or without one), and the bytes read past it. */
export interface Opened {
  /** Where the rest of the connection is read and written: decrypting and encrypting if RC4 was selected. */
  readonly connection: Connection
  /** Bytes already received in the clear (IA and what followed it, decrypted if need be), owned by the caller. */
  readonly received: Uint8Array
  /** The torrent the key exchange named; `undefined` for a plain handshake, which names it itself. */
  readonly infoHash: InfoHash.InfoHash | undefined
}

/** Both methods: what we offer by default, and accept (plaintext preferred). */
export const ANY = Encryption.PLAINTEXT | Encryption.RC4

/** How peer connections use message stream encryption: see `SessionConfig.encryption`. */
export const POLICIES = ["accept", "prefer", "require"] as const
export type Policy = (typeof POLICIES)[number]

/** The methods a policy offers and accepts: "require" leaves plaintext out, and so plain handshakes. */
export const methodsOf = (policy: Policy): number => (policy === "require" ? Encryption.RC4 : ANY)

/** What has been read of a connection and not yet consumed: copies, since reads reuse their buffers. */
const makeInput = (connection: Connection) => {
  const address = formatAddress(connection.remote)
  let pending = Buffer.alloc(0)
  const more = Effect.map(connection.read.pipe(Effect.mapError(readFailed(address, "handshake"))), (chunks) => {
    pending = Buffer.concat([pending, ...Chunk.toReadonlyArray(chunks)])
  })
  const input = {
    get pending(): Buffer {
      return pending
    },
    /** Reads until at least `n` bytes are pending. */
    fill: (n: number) => Effect.whileLoop({ while: () => pending.length < n, body: () => more, step: () => {} }),
    /** The next `n` pending bytes (`fill` them first). */
    take: (n: number): Buffer => {
      const bytes = pending.subarray(0, n)
      pending = pending.subarray(n)
      return bytes
    },
    /**
     * Reads until `pattern` starts at most `within` bytes into the pending bytes, and drops what
     * precedes it; fails once it cannot start there (the padding before it is bounded).
     */
    seek: (pattern: Uint8Array, within: number, step: string) =>
      Effect.gen(function* () {
        while (true) {
          const at = pending.indexOf(pattern)
          if (at >= 0 && at <= within) return void input.take(at)
          if (at > within || pending.length >= within + pattern.length) return yield* failure(address, step)
          yield* more
        }
      })
  }
  return input
}

const failure = (address: string, detail: string) => new HandshakeFailed({ address, reason: "Encryption", detail })

const send = (connection: Connection, data: Outgoing) =>
  connection.write(data).pipe(Effect.mapError((cause) => new ConnectionLost({ address: formatAddress(connection.remote), cause })))

/** A connection whose bytes pass through the RC4 streams of `ciphers` both ways. */
const encrypted = (connection: Connection, ciphers: Encryption.Ciphers): Connection => {
  const read = Effect.map(connection.read, Chunk.map((chunk) => ciphers.decrypt.apply(chunk)))
  return {
    remote: connection.remote,
    local: connection.local,
    close: connection.close,
    read,
    chunks: Stream.repeatEffectChunkOption(read),
    // Encrypted when the write runs, not when it is built, so the keystream follows the order of the writes.
    write: (data) =>
      Effect.suspend(() =>
        connection.write(data instanceof Uint8Array ? ciphers.encrypt.apply(data) : data.map((part) => ciphers.encrypt.apply(part)))
      )
  }
}

const opened = (
  connection: Connection,
  ciphers: Encryption.Ciphers,
  selected: number,
  clear: Uint8Array,
  rest: Uint8Array,
  infoHash: InfoHash.InfoHash
): Opened =>
  selected === Encryption.RC4
    ? { connection: encrypted(connection, ciphers), received: Buffer.concat([clear, ciphers.decrypt.apply(rest)]), infoHash }
    : { connection, received: Buffer.concat([clear, rest]), infoHash }

/**
 * Answers a fresh incoming connection. A plain handshake is left for the caller, with the bytes
 * read so far (unless `methods` leaves out plaintext); a key exchange is answered for whichever
 * of `infoHashes` it names, with one of `methods`.
 */
export const accept = (
  connection: Connection,
  infoHashes: () => Iterable<InfoHash.InfoHash>,
  methods: number = ANY
): Effect.Effect<Opened, HandshakeFailed | ConnectionLost> =>
  Effect.gen(function* () {
    const address = formatAddress(connection.remote)
    const input = makeInput(connection)
    const header = Handshake.PROTOCOL_HEADER
    // A plain handshake shows itself in its first 20 bytes; a public key fills them with anything else.
    while (input.pending.length < header.length) {
      yield* input.fill(input.pending.length + 1)
      if (input.pending.some((byte, i) => i < header.length && byte !== header[i])) break
    }
    if (input.pending.subarray(0, header.length).equals(header)) {
      if ((methods & Encryption.PLAINTEXT) === 0) return yield* failure(address, "plain handshake refused: encryption required")
      return { connection, received: input.take(input.pending.length), infoHash: undefined }
    }

    yield* input.fill(Encryption.KEY_LENGTH)
    const keys = Encryption.keyPair()
    const secret = keys.secret(input.take(Encryption.KEY_LENGTH))
    if (secret === undefined) return yield* failure(address, "invalid public key")
    yield* send(connection, [keys.publicKey, Encryption.padding()])

    yield* input.seek(Encryption.req1(secret), Encryption.MAX_PAD, "no HASH('req1', S) after the padding")
    yield* input.fill(2 * Encryption.HASH_LENGTH + Encryption.PREAMBLE_LENGTH)
    input.take(Encryption.HASH_LENGTH)
    const tag = Encryption.untag(secret, input.take(Encryption.HASH_LENGTH))
    let infoHash: InfoHash.InfoHash | undefined
    for (const candidate of infoHashes()) {
      if (Buffer.from(Encryption.req2(candidate)).equals(tag)) {
        infoHash = candidate
        break
      }
    }
    if (infoHash === undefined) return yield* new HandshakeFailed({ address, reason: "UnknownTorrent" })

    const ciphers = Encryption.ciphers(secret, infoHash, "responder")
    const preamble = Encryption.readPreamble(ciphers.decrypt.apply(input.take(Encryption.PREAMBLE_LENGTH)))
    if (preamble === undefined) return yield* failure(address, "verification constant is not zero")
    if (preamble.padLength > Encryption.MAX_PAD) return yield* failure(address, "PadC is longer than 512 bytes")
    const offered = preamble.methods & methods
    const selected = (offered & Encryption.PLAINTEXT) || (offered & Encryption.RC4)
    if (selected === 0) return yield* failure(address, `no method in common (offered ${preamble.methods})`)
    yield* input.fill(preamble.padLength + 2)
    ciphers.decrypt.apply(input.take(preamble.padLength))
    const iaLength = Buffer.from(ciphers.decrypt.apply(input.take(2))).readUint16BE()
    yield* input.fill(iaLength)
    const ia = ciphers.decrypt.apply(input.take(iaLength))

    yield* send(connection, ciphers.encrypt.apply(Encryption.preamble(selected, 0)))
    return opened(connection, ciphers, selected, ia, input.take(input.pending.length), infoHash)
  })

/**
 * Opens a key exchange on a fresh outgoing connection for `infoHash`, sending `ia` (our
 * handshake) with step 3, and offering `methods`.
 */
export const initiate = (
  connection: Connection,
  infoHash: InfoHash.InfoHash,
  ia: Uint8Array,
  methods: number = ANY
): Effect.Effect<Opened, HandshakeFailed | ConnectionLost> =>
  Effect.gen(function* () {
    const address = formatAddress(connection.remote)
    const input = makeInput(connection)
    const keys = Encryption.keyPair()
    yield* send(connection, [keys.publicKey, Encryption.padding()])
    yield* input.fill(Encryption.KEY_LENGTH)
    const secret = keys.secret(input.take(Encryption.KEY_LENGTH))
    if (secret === undefined) return yield* failure(address, "invalid public key")

    const ciphers = Encryption.ciphers(secret, infoHash, "initiator")
    const iaLength = Buffer.alloc(2)
    iaLength.writeUint16BE(ia.length)
    yield* send(connection, [
      Encryption.req1(secret),
      Encryption.torrentTag(secret, infoHash),
      ciphers.encrypt.apply(Encryption.preamble(methods, 0)),
      ciphers.encrypt.apply(iaLength),
      ciphers.encrypt.apply(ia)
    ])

    // The responder's stream begins with the encrypted VC, after up to 512 bytes of PadB.
    const vc = Encryption.ciphers(secret, infoHash, "initiator").decrypt.apply(new Uint8Array(8))
    yield* input.seek(vc, Encryption.MAX_PAD, "no verification constant after the padding")
    yield* input.fill(Encryption.PREAMBLE_LENGTH)
    const preamble = Encryption.readPreamble(ciphers.decrypt.apply(input.take(Encryption.PREAMBLE_LENGTH)))
    if (preamble === undefined) return yield* failure(address, "verification constant is not zero")
    const selected = preamble.methods
    if ((selected !== Encryption.PLAINTEXT && selected !== Encryption.RC4) || (selected & methods) === 0) {
      return yield* failure(address, `selected a method we did not offer (${selected})`)
    }
    if (preamble.padLength > Encryption.MAX_PAD) return yield* failure(address, "PadD is longer than 512 bytes")
    yield* input.fill(preamble.padLength)
    ciphers.decrypt.apply(input.take(preamble.padLength))
    return opened(connection, ciphers, selected, new Uint8Array(0), input.take(input.pending.length), infoHash)
  })
