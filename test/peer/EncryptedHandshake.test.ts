import { EncryptedHandshake, Encryption, Handshake, InfoHash, type Network, PeerConnection, PeerId } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit } from "effect"

const SERVER = "10.0.0.1"
const CLIENT = "10.0.0.2"
const infoHash = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(0xab))
const otherHash = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(0xcd))
const handshake = (from: string) =>
  Handshake.encode(Handshake.make({ infoHash, peerId: PeerId.unsafeFromBytes(Buffer.from(`-BF0100-${from}`.padEnd(20, "x"))) }))

/** `n` bytes: `received` first, then reads of `connection`. */
const readBytes = (connection: Network.Connection, received: Uint8Array, n: number) =>
  Effect.gen(function* () {
    let bytes = Buffer.from(received)
    while (bytes.length < n) bytes = Buffer.concat([bytes, ...Chunk.toReadonlyArray(yield* Effect.orDie(connection.read))])
    return bytes.subarray(0, n).toString("latin1")
  })

/**
 * A responder that reads an incoming handshake for `known` torrents, answers "pong" and reports
 * what it read after the handshake (`expect` bytes), or how it failed.
 */
const responder = (
  known: ReadonlyArray<InfoHash.InfoHash>,
  expectBytes: number,
  encryption: EncryptedHandshake.Policy = "accept"
) =>
  Effect.gen(function* () {
    const board = yield* MemoryNetwork.make()
    const result = yield* Deferred.make<{ readonly peer: string; readonly after: string }, PeerConnectionError>()
    const listener = yield* board.network(SERVER).listen({ host: SERVER, port: 6881 }, (connection) =>
      Effect.gen(function* () {
        const wire = yield* PeerConnection.readIncoming(connection, { timeout: "10 seconds", encryption }, () => known)
        yield* Effect.orDie(wire.connection.write(Buffer.from("pong")))
        const after = yield* readBytes(wire.connection, wire.rest, expectBytes)
        return { peer: Buffer.from(wire.handshake.peerId).toString("latin1"), after }
      }).pipe(Effect.exit, Effect.flatMap((exit) => Deferred.done(result, exit)))
    )
    const connection = yield* board.network(CLIENT).connect(listener.address)
    return { connection, result: Deferred.await(result) }
  })
type PeerConnectionError = Effect.Effect.Error<ReturnType<typeof PeerConnection.readIncoming>>

describe("EncryptedHandshake", () => {
  for (const [name, methods] of [
    ["plaintext", Encryption.PLAINTEXT | Encryption.RC4],
    ["RC4", Encryption.RC4]
  ] as const) {
    it.scoped(`an initiator offering ${name} reaches the responder's torrent; bytes pass both ways`, () =>
      Effect.gen(function* () {
        const { connection, result } = yield* responder([otherHash, infoHash], 12)
        // IA carries the handshake and the start of the payload; the rest follows the exchange.
        const ia = Buffer.concat([handshake("client"), Buffer.from("first ")])
        const opened = yield* EncryptedHandshake.initiate(connection, infoHash, ia, methods)
        expect(opened.connection === connection).toBe(name === "plaintext")
        yield* opened.connection.write([Buffer.from("se"), Buffer.from("cond")])
        expect(yield* readBytes(opened.connection, opened.received, 4)).toBe("pong")
        expect(yield* result).toEqual({ peer: "-BF0100-clientxxxxxx", after: "first second" })
      }))
  }

  it.scoped("a plain handshake, even split across writes, is read as before", () =>
    Effect.gen(function* () {
      const { connection, result } = yield* responder([infoHash], 3)
      const bytes = Buffer.concat([handshake("plain"), Buffer.from("abc")])
      for (const [from, to] of [[0, 5], [5, 19], [19, bytes.length]] as const) yield* connection.write(bytes.subarray(from, to))
      expect(yield* result).toEqual({ peer: "-BF0100-plainxxxxxxx", after: "abc" })
      expect(yield* readBytes(connection, new Uint8Array(0), 4)).toBe("pong")
    }))

  const failure = (exit: Exit.Exit<unknown, PeerConnectionError>) =>
    Exit.match(exit, {
      onSuccess: () => "succeeded",
      onFailure: (cause) => {
        const error = cause._tag === "Fail" ? cause.error : undefined
        return error?._tag === "HandshakeFailed" ? `${error.reason}${error.detail ? `: ${error.detail}` : ""}` : String(cause)
      }
    })

  it.scoped("a key exchange naming a torrent we do not have is refused as UnknownTorrent", () =>
    Effect.gen(function* () {
      const { connection, result } = yield* responder([otherHash], 0)
      const initiator = yield* Effect.exit(EncryptedHandshake.initiate(connection, infoHash, handshake("client")))
      expect(failure(yield* Effect.exit(result))).toBe("UnknownTorrent")
      expect(failure(initiator)).toBe("Closed")
    }))

  it.scoped("a public key of zero, or random bytes with no HASH('req1', S), fail as Encryption errors", () =>
    Effect.gen(function* () {
      const zero = yield* responder([infoHash], 0)
      yield* zero.connection.write(new Uint8Array(Encryption.KEY_LENGTH))
      expect(failure(yield* Effect.exit(zero.result))).toBe("Encryption: invalid public key")

      const noise = yield* responder([infoHash], 0)
      const key = Encryption.keyPair().publicKey
      yield* noise.connection.write(key)
      // Far more than the 512 bytes of padding that may precede HASH('req1', S).
      for (let i = 0; i < 4; i++) yield* noise.connection.write(new Uint8Array(300).fill(i + 1))
      expect(failure(yield* Effect.exit(noise.result))).toBe("Encryption: no HASH('req1', S) after the padding")
    }))

  it.scoped("a responder requiring encryption refuses plain handshakes and initiators offering only plaintext", () =>
    Effect.gen(function* () {
      const plain = yield* responder([infoHash], 0, "require")
      yield* plain.connection.write(handshake("plain"))
      expect(failure(yield* Effect.exit(plain.result))).toBe("Encryption: plain handshake refused: encryption required")

      const plaintextOnly = yield* responder([infoHash], 0, "require")
      yield* Effect.exit(EncryptedHandshake.initiate(plaintextOnly.connection, infoHash, handshake("c"), Encryption.PLAINTEXT))
      expect(failure(yield* Effect.exit(plaintextOnly.result))).toBe("Encryption: no method in common (offered 1)")
    }))

  it.scoped("a key exchange followed by a handshake for another torrent is an InfoHashMismatch", () =>
    Effect.gen(function* () {
      const { connection, result } = yield* responder([otherHash, infoHash], 0)
      const other = Handshake.encode(Handshake.make({ infoHash: otherHash, peerId: PeerId.generate() }))
      yield* Effect.exit(EncryptedHandshake.initiate(connection, infoHash, other))
      expect(failure(yield* Effect.exit(result))).toBe("InfoHashMismatch")
    }))
})
