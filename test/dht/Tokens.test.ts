import { describe, expect, it } from "@effect/vitest"
import * as Tokens from "../../packages/core/src/dht/Tokens.js"

const secret = (byte: number) => new Uint8Array(Tokens.SECRET_LENGTH).fill(byte)

describe("Tokens", () => {
  it("accepts a token from the IP it was issued to, under the current or the previous secret only", () => {
    let secrets = Tokens.make(secret(1))
    const token = Tokens.issue(secrets, "10.0.0.1")
    expect(token).toHaveLength(Tokens.TOKEN_LENGTH)
    expect(Tokens.verify(secrets, "10.0.0.1", token)).toBe(true)
    expect(Tokens.verify(secrets, "10.0.0.2", token)).toBe(false)
    secrets = Tokens.rotate(secrets, secret(2))
    expect(Tokens.verify(secrets, "10.0.0.1", token)).toBe(true)
    expect(Tokens.issue(secrets, "10.0.0.1")).not.toEqual(token)
    secrets = Tokens.rotate(secrets, secret(3))
    expect(Tokens.verify(secrets, "10.0.0.1", token)).toBe(false)
  })

  it("refuses tokens of another length, empty ones included", () => {
    const secrets = Tokens.make(secret(1))
    const token = Tokens.issue(secrets, "10.0.0.1")
    expect(Tokens.verify(secrets, "10.0.0.1", token.subarray(0, 4))).toBe(false)
    expect(Tokens.verify(secrets, "10.0.0.1", new Uint8Array(0))).toBe(false)
    expect(Tokens.verify(secrets, "10.0.0.1", new Uint8Array([...token, 0]))).toBe(false)
  })
})
