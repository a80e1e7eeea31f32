import { Encryption, InfoHash, Rc4 } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex").toUpperCase()
const rc4 = (key: string, text: string) => hex(Rc4.make(Buffer.from(key)).apply(Buffer.from(text)))

describe("Rc4", () => {
  it("matches the published test vectors", () => {
    expect(rc4("Key", "Plaintext")).toBe("BBF316E8D940AF0AD3")
    expect(rc4("Wiki", "pedia")).toBe("1021BF0420")
    expect(rc4("Secret", "Attack at dawn")).toBe("45A01F645FC35B383552544B9BF5")
  })

  it("continues the keystream across calls, after the discarded bytes, in place if asked", () => {
    const key = Buffer.from("bitfiber")
    const whole = Rc4.make(key).apply(new Uint8Array(1024 + 300)).subarray(1024)
    const stream = Rc4.make(key, 1024)
    const first = stream.apply(new Uint8Array(100))
    const rest = new Uint8Array(200)
    expect(stream.apply(rest, rest)).toBe(rest)
    expect(hex(Buffer.concat([first, rest]))).toBe(hex(whole))
  })
})

describe("Encryption", () => {
  const infoHash = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(7))

  it("two key pairs agree on a 96-byte secret, and derive each other's streams", () => {
    const a = Encryption.keyPair()
    const b = Encryption.keyPair()
    expect(a.publicKey).toHaveLength(Encryption.KEY_LENGTH)
    const secret = a.secret(b.publicKey)!
    expect(secret).toHaveLength(Encryption.KEY_LENGTH)
    expect(hex(secret)).toBe(hex(b.secret(a.publicKey)!))
    const initiator = Encryption.ciphers(secret, infoHash, "initiator")
    const responder = Encryption.ciphers(secret, infoHash, "responder")
    const message = Buffer.from("hello, responder")
    expect(Buffer.from(responder.decrypt.apply(initiator.encrypt.apply(message))).toString()).toBe("hello, responder")
    expect(hex(initiator.encrypt.apply(message))).not.toBe(hex(responder.encrypt.apply(message)))
    expect(hex(Encryption.untag(secret, Encryption.torrentTag(secret, infoHash)))).toBe(hex(Encryption.req2(infoHash)))
  })

  it("refuses public keys whose secret an eavesdropper knows, or that are not below the prime", () => {
    const keys = Encryption.keyPair()
    const number = (n: bigint) => Buffer.from(n.toString(16).padStart(2 * Encryption.KEY_LENGTH, "0"), "hex")
    const p = BigInt(`0x${"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563"}`)
    for (const y of [0n, 1n, p - 1n, p, p + 1n]) expect(keys.secret(number(y))).toBeUndefined()
    expect(keys.secret(number(2n))).toHaveLength(Encryption.KEY_LENGTH)
  })

  it("reads back the preamble it writes, and only with a zero verification constant", () => {
    const bytes = Encryption.preamble(Encryption.PLAINTEXT | Encryption.RC4, 300)
    expect(Encryption.readPreamble(bytes)).toEqual({ methods: 3, padLength: 300 })
    bytes[3] = 1
    expect(Encryption.readPreamble(bytes)).toBeUndefined()
    expect(Encryption.padding().length).toBeLessThanOrEqual(Encryption.MAX_PAD)
  })
})
