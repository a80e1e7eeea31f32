/**
 * RC4, the stream cipher of message stream encryption. node:crypto's OpenSSL 3 keeps RC4 in its
 * legacy provider, which node does not load, so it is written out here; it only runs for peers
 * that insist on an encrypted payload stream (most accept plaintext after the key exchange).
 */

/** One direction's keystream: `apply` XORs it over bytes, continuing where the last call stopped. */
export interface Rc4 {
  /** `input` XOR the next `input.length` keystream bytes, into `output` (a new buffer by default; may be `input`). */
  readonly apply: (input: Uint8Array, output?: Uint8Array) => Uint8Array
}

/** The keystream of `key` with its first `discard` bytes dropped. */
export const make = (key: Uint8Array, discard = 0): Rc4 => {
  const s = new Uint8Array(256)
  for (let i = 0; i < 256; i++) s[i] = i
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i]! + key[i % key.length]!) & 255
    const t = s[i]!
    s[i] = s[j]!
    s[j] = t
  }
  let i = 0
  let j = 0
  const apply = (input: Uint8Array, output: Uint8Array = new Uint8Array(input.length)): Uint8Array => {
    for (let k = 0; k < input.length; k++) {
      i = (i + 1) & 255
      const si = s[i]!
      j = (j + si) & 255
      const sj = s[j]!
      s[i] = sj
      s[j] = si
      output[k] = input[k]! ^ s[(si + sj) & 255]!
    }
    return output
  }
  if (discard > 0) apply(new Uint8Array(discard))
  return { apply }
}
