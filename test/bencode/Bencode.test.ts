import { Bencode } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))
const decode = (text: string, options?: Bencode.Options) => Bencode.decode(bytes(text), options)
const reasonOf = (text: string, options?: Bencode.Options) => {
  const result = decode(text, options)
  return Either.isLeft(result) ? result.left.reason : "decoded"
}

/** Any value of the model: byte strings, safe integers, lists, dictionaries with latin1 keys. */
const value: fc.Arbitrary<Bencode.Value> = fc.letrec<{ value: Bencode.Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.uint8Array({ maxLength: 24 }),
    fc.maxSafeInteger(),
    fc.array(tie("value"), { maxLength: 5 }),
    fc
      .uniqueArray(fc.tuple(fc.uint8Array({ maxLength: 6 }).map((key) => Buffer.from(key).toString("latin1")), tie("value")), {
        maxLength: 5,
        selector: ([key]) => key
      })
      .map((entries) => new Map(entries))
  )
})).value

describe("Bencode", () => {
  it.prop("decode(encode(v)) is v", [value], ([v]) => {
    expect(Either.getOrThrow(Bencode.decode(Bencode.encode(v)))).toEqual(v)
  })

  it.prop("encoding is canonical: re-encoding a decoded value gives the same bytes", [value], ([v]) => {
    const encoded = Bencode.encode(v)
    expect(Bencode.encode(Either.getOrThrow(Bencode.decode(encoded)))).toEqual(encoded)
  })

  it.prop("random bytes decode to a value or a typed error, never a throw", [fc.uint8Array({ maxLength: 200 })], ([input]) => {
    const result = Bencode.decode(input)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("BencodeError")
  }, { fastCheck: { numRuns: 3000 } })

  it.prop(
    "random bencode-like text decodes or fails with an offset inside the input",
    [fc.array(fc.constantFrom(..."ilde0123456789:-x"), { maxLength: 60 }).map((chars) => chars.join(""))],
    ([text]) => {
      const result = decode(text)
      if (Either.isLeft(result)) {
        expect(result.left.offset).toBeGreaterThanOrEqual(0)
        expect(result.left.offset).toBeLessThanOrEqual(text.length)
      }
    },
    { fastCheck: { numRuns: 3000 } }
  )

  describe("integers", () => {
    it("decodes negative, zero and the largest safe integer", () => {
      expect(decode("i-42e")).toEqual(Either.right(-42))
      expect(decode("i0e")).toEqual(Either.right(0))
      expect(decode(`i${Number.MAX_SAFE_INTEGER}e`)).toEqual(Either.right(Number.MAX_SAFE_INTEGER))
    })

    it("rejects leading zeros, -0, empty and non-digit integers", () => {
      expect(reasonOf("i03e")).toBe("InvalidInteger")
      expect(reasonOf("i-0e")).toBe("InvalidInteger")
      expect(reasonOf("i-03e")).toBe("InvalidInteger")
      expect(reasonOf("ie")).toBe("InvalidInteger")
      expect(reasonOf("i-e")).toBe("InvalidInteger")
      expect(reasonOf("i1.5e")).toBe("InvalidInteger")
      expect(reasonOf("i+1e")).toBe("InvalidInteger")
      expect(reasonOf("i12")).toBe("Truncated")
    })

    it("rejects integers beyond 2^53 - 1", () => {
      expect(reasonOf(`i${Number.MAX_SAFE_INTEGER + 1}e`)).toBe("IntegerRange")
      expect(reasonOf(`i-${"9".repeat(30)}e`)).toBe("IntegerRange")
    })
  })

  describe("byte strings", () => {
    it("decodes byte strings, including the empty one", () => {
      expect(decode("4:spam")).toEqual(Either.right(bytes("spam")))
      expect(decode("0:")).toEqual(Either.right(new Uint8Array()))
    })

    it("fails a 2000000000: prefix in a 1 KB buffer at once, before allocating", () => {
      const input = new Uint8Array(1024).fill(0x61)
      input.set(bytes("2000000000:"))
      const result = Bencode.decode(input)
      expect(Either.isLeft(result) && result.left.reason).toBe("LengthExceedsInput")
      expect(Either.isLeft(result) && result.left.offset).toBe(0)
    })

    it("rejects a length with a leading zero or without a colon, and a short string", () => {
      expect(reasonOf("01:a")).toBe("InvalidLength")
      expect(reasonOf("1x")).toBe("InvalidLength")
      expect(reasonOf("5:abc")).toBe("LengthExceedsInput")
      expect(reasonOf("12")).toBe("LengthExceedsInput")
      expect(reasonOf("0")).toBe("Truncated")
    })
  })

  describe("structure and limits", () => {
    it("fails 100-deep nesting at the default depth of 32", () => {
      const result = decode("l".repeat(100) + "e".repeat(100))
      expect(Either.isLeft(result) && result.left.reason).toBe("TooDeep")
      expect(Either.isLeft(result) && result.left.offset).toBe(32)
      expect(decode("l".repeat(32) + "e".repeat(32))._tag).toBe("Right")
    })

    it("fails a million-deep input without overflowing the stack, even when the caller raises the limit", () => {
      const input = "l".repeat(1_000_000)
      expect(reasonOf(input, { maxDepth: 10_000_000 })).toBe("TooDeep")
    })

    it("enforces maxLength and maxItems", () => {
      expect(reasonOf("4:spam", { maxLength: 5 })).toBe("TooLarge")
      expect(reasonOf("li1ei2ei3ee", { maxItems: 3 })).toBe("TooManyItems")
      expect(decode("li1ei2ee", { maxItems: 3 })._tag).toBe("Right")
    })

    it("accepts unsorted keys but rejects duplicate and non-string keys", () => {
      expect(decode("d1:bi1e1:ai2ee")).toEqual(Either.right(new Map([["b", 1], ["a", 2]])))
      expect(reasonOf("d1:ai1e1:ai2ee")).toBe("DuplicateKey")
      expect(reasonOf("di1ei2ee")).toBe("KeyNotString")
    })

    it("rejects trailing data, truncation and stray bytes", () => {
      expect(reasonOf("i1ei2e")).toBe("TrailingData")
      expect(reasonOf("l4:spam")).toBe("Truncated")
      expect(reasonOf("d1:a")).toBe("Truncated")
      expect(reasonOf("")).toBe("Truncated")
      expect(reasonOf("x")).toBe("UnexpectedByte")
    })

    it("keeps non-UTF-8 keys lossless as latin1", () => {
      const input = Uint8Array.of(...bytes("d2:"), 0xff, 0xfe, ...bytes("i1ee"))
      const decoded = Either.getOrThrow(Bencode.decode(input)) as Bencode.Dictionary
      expect([...decoded.keys()]).toEqual(["\u00ff\u00fe"])
      expect(Bencode.encode(decoded)).toEqual(input)
    })
  })

  describe("spans and prefixes", () => {
    it("gives the exact bytes of each top-level dictionary value", () => {
      const input = bytes("d4:infod1:zi1e1:ai2ee3:foo3:bare")
      const document = Either.getOrThrow(Bencode.decodeDocument(input))
      const info = document.spans.get("info")!
      expect(Buffer.from(input.subarray(info.start, info.end)).toString("latin1")).toBe("d1:zi1e1:ai2ee")
      const foo = document.spans.get("foo")!
      expect(Buffer.from(input.subarray(foo.start, foo.end)).toString("latin1")).toBe("3:bar")
    })

    it("decodePrefix stops after the first value", () => {
      const input = bytes("d8:msg_typei1ee<piece data>")
      const document = Either.getOrThrow(Bencode.decodePrefix(input))
      expect(document.end).toBe(15)
      expect(document.value).toEqual(new Map([["msg_type", 1]]))
    })
  })

  describe("encode", () => {
    it("sorts keys by raw bytes, writes strings as UTF-8 and leaves undefined record entries out", () => {
      const encoded = Bencode.encode({ b: 1, a: "é", c: undefined, B: [1, new Uint8Array([0])] })
      expect(Buffer.from(encoded).toString("latin1")).toBe("d1:Bli1e1:\u0000e1:a2:\u00c3\u00a91:bi1ee")
    })
  })

  describe("field accessors", () => {
    const dictionary = Either.getOrThrow(Bencode.decode(bytes("d4:name4:spam8:intervali1800e5:peerslee"))) as Bencode.Dictionary

    it("get typed fields", () => {
      expect(Bencode.getString(dictionary, "name")).toEqual(Either.right("spam"))
      expect(Bencode.getInteger(dictionary, "interval")).toEqual(Either.right(1800))
      expect(Bencode.getList(dictionary, "peers")).toEqual(Either.right([]))
    })

    it("fail with the field's name and what was expected", () => {
      const missing = Bencode.getInteger(dictionary, "complete")
      expect(Either.isLeft(missing) && missing.left).toMatchObject({ reason: "Missing", field: "complete", expected: "integer" })
      const wrong = Bencode.getDictionary(dictionary, "name")
      expect(Either.isLeft(wrong) && wrong.left).toMatchObject({ reason: "WrongType", field: "name", expected: "dictionary" })
    })

    it("optional returns undefined only for an absent key", () => {
      expect(Bencode.optional(dictionary, "complete", Bencode.getInteger)).toEqual(Either.right(undefined))
      expect(Bencode.optional(dictionary, "interval", Bencode.getInteger)).toEqual(Either.right(1800))
      expect(Either.isLeft(Bencode.optional(dictionary, "name", Bencode.getInteger))).toBe(true)
    })
  })
})
