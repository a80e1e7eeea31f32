/**
 * Message stream encryption (MSE, also "protocol encryption"), the obfuscated handshake that
 * aria2, libtorrent, transmission and others try before the plain one. Its parts, without I/O:
 *
 *   1 A->B: Ya, PadA                       (Diffie-Hellman public key, 96 bytes; 0-512 random bytes)
 *   2 B->A: Yb, PadB
 *   3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
 *   5 A->B: ENCRYPT2(payload)
 *
 * S is the shared secret, SKEY the info-hash, VC eight zero bytes, ENCRYPT RC4 under keys derived
 * from both (first 1024 keystream bytes dropped), and ENCRYPT2 the method B selected: RC4 on, or
 * plaintext. IA is A's first payload (usually its BitTorrent handshake), always under RC4.
 */
import { createDiffieHellman, createHash, randomBytes, randomInt } from "node:crypto"
import * as Rc4 from "./Rc4.js"

/** The 768-bit prime of the key exchange (generator 2). */
const PRIME_HEX =
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563"
const PRIME = Buffer.from(PRIME_HEX, "hex")
const P = BigInt(`0x${PRIME_HEX}`)

/** Length of a public key and of the shared secret. */
export const KEY_LENGTH = 96

/** Longest padding either side may send (PadA to PadD). */
export const MAX_PAD = 512

/** Length of each HASH(...). */
export const HASH_LENGTH = 20

/** crypto_provide / crypto_select bits. */
export const PLAINTEXT = 0x01
export const RC4 = 0x02

/** VC, crypto_provide and len(PadC) (or VC, crypto_select and len(PadD)): what starts step 3's and 4's encrypted part. */
export const PREAMBLE_LENGTH = 8 + 4 + 2

/** One side's Diffie-Hellman key pair. */
export interface KeyPair {
  /** Our public key, 96 bytes. */
  readonly publicKey: Uint8Array
  /** S from the other side's public key; `undefined` if that key is not a valid one (0, 1, p-1 or above p). */
  readonly secret: (theirs: Uint8Array) => Uint8Array | undefined
}

/** Left-pads a big-endian number to the key length. */
const toKeyLength = (bytes: Uint8Array): Uint8Array => {
  if (bytes.length === KEY_LENGTH) return Uint8Array.from(bytes)
  const padded = new Uint8Array(KEY_LENGTH)
  padded.set(bytes, KEY_LENGTH - bytes.length)
  return padded
}

/** A fresh key pair. */
export const keyPair = (): KeyPair => {
  const dh = createDiffieHellman(PRIME, 2)
  const publicKey = toKeyLength(dh.generateKeys())
  const secret = (theirs: Uint8Array) => {
    const key = Buffer.from(theirs)
    const y = BigInt(`0x${key.toString("hex")}`)
    // 0, 1 and p-1 give a secret an eavesdropper knows; p and above are not keys at all.
    if (y <= 1n || y >= P - 1n) return undefined
    try {
      return toKeyLength(dh.computeSecret(key))
    } catch {
      return undefined
    }
  }
  return { publicKey, secret }
}

const hash = (...parts: ReadonlyArray<string | Uint8Array>): Uint8Array => {
  const h = createHash("sha1")
  for (const part of parts) h.update(part)
  return Uint8Array.from(h.digest())
}

/** HASH('req1', S): what B finds in A's stream to know where PadA ends. */
export const req1 = (secret: Uint8Array): Uint8Array => hash("req1", secret)

/** HASH('req2', SKEY) xor HASH('req3', S): names the torrent without sending its info-hash. */
export const torrentTag = (secret: Uint8Array, infoHash: Uint8Array): Uint8Array => xor(req2(infoHash), hash("req3", secret))

/** HASH('req2', SKEY) from the tag A sent: compare with `req2` of each torrent to find A's. */
export const untag = (secret: Uint8Array, tag: Uint8Array): Uint8Array => xor(tag, hash("req3", secret))

/** HASH('req2', SKEY) of one torrent. */
export const req2 = (infoHash: Uint8Array): Uint8Array => hash("req2", infoHash)

const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((byte, i) => byte ^ b[i]!)

/** Both directions' RC4 streams of one side of a connection. */
export interface Ciphers {
  /** What we send. */
  readonly encrypt: Rc4.Rc4
  /** What we receive. */
  readonly decrypt: Rc4.Rc4
}

/** The RC4 streams for our side: A sends under HASH('keyA', S, SKEY), B under HASH('keyB', S, SKEY). */
export const ciphers = (secret: Uint8Array, infoHash: Uint8Array, side: "initiator" | "responder"): Ciphers => {
  const a = Rc4.make(hash("keyA", secret, infoHash), 1024)
  const b = Rc4.make(hash("keyB", secret, infoHash), 1024)
  return side === "initiator" ? { encrypt: a, decrypt: b } : { encrypt: b, decrypt: a }
}

/** Random padding of 0 to `MAX_PAD` bytes. */
export const padding = (): Uint8Array => randomBytes(randomInt(MAX_PAD + 1))

/** VC, a 4-byte method field and a 2-byte padding length, big-endian (before encryption). */
export const preamble = (methods: number, padLength: number): Uint8Array => {
  const bytes = new Uint8Array(PREAMBLE_LENGTH)
  const view = new DataView(bytes.buffer)
  view.setUint32(8, methods)
  view.setUint16(12, padLength)
  return bytes
}

/** The method field and padding length of a decrypted preamble, or `undefined` if its VC is not zero. */
export const readPreamble = (bytes: Uint8Array): { readonly methods: number; readonly padLength: number } | undefined => {
  for (let i = 0; i < 8; i++) if (bytes[i] !== 0) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, PREAMBLE_LENGTH)
  return { methods: view.getUint32(8), padLength: view.getUint16(12) }
}
