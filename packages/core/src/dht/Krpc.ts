/**
 * KRPC (BEP 5): the DHT's messages, one bencoded dictionary per UDP datagram. `t` is the
 * transaction id the responder echoes, `y` the kind (`q` query, `r` response, `e` error), `q`
 * and `a` a query's method and arguments, `r` a response's values, `e` an error's code and text.
 *
 * Decoding is bounded (datagram size, nesting, item count, every string length) and strict about
 * the fields BEP 5 defines, and ignores every key it does not know, as the BEP asks. A response
 * does not say which query it answers: it is decoded into one record of optional fields, and the
 * caller who matched its transaction id checks the fields it needs.
 */
import { Data, Either } from "effect"
import * as Bencode from "../bencode/Bencode.js"
import * as InfoHash from "../metainfo/InfoHash.js"
import * as CompactPeer from "../net/CompactPeer.js"
import type { Address } from "../net/Network.js"
import * as NodeId from "./NodeId.js"

/** A node's id and UDP address: BEP 5's "compact node info". */
export interface NodeInfo {
  readonly id: NodeId.NodeId
  readonly address: Address
}

/** A query and its arguments (the `a` dictionary); `id` is the querying node's id. */
export type Query =
  | { readonly _tag: "Ping"; readonly id: NodeId.NodeId }
  | { readonly _tag: "FindNode"; readonly id: NodeId.NodeId; readonly target: NodeId.NodeId }
  | { readonly _tag: "GetPeers"; readonly id: NodeId.NodeId; readonly infoHash: InfoHash.InfoHash }
  | {
    readonly _tag: "AnnouncePeer"
    readonly id: NodeId.NodeId
    readonly infoHash: InfoHash.InfoHash
    /** The announced TCP port; ignored by the receiver when `impliedPort` is set (0 then if absent). */
    readonly port: number
    readonly token: Uint8Array
    /** Use the datagram's source port instead of `port` (for peers behind NAT, uTP). */
    readonly impliedPort: boolean
  }

/** A response's values (the `r` dictionary); which fields are present depends on the query. */
export interface Response {
  /** The responding node's id. */
  readonly id: NodeId.NodeId
  /** Closest IPv4 nodes (find_node, get_peers without peers). */
  readonly nodes?: ReadonlyArray<NodeInfo>
  /** Closest IPv6 nodes (BEP 32). */
  readonly nodes6?: ReadonlyArray<NodeInfo>
  /** Peers of the info-hash (get_peers). */
  readonly values?: ReadonlyArray<Address>
  /** The write token for a later announce_peer (get_peers). */
  readonly token?: Uint8Array
}

/** One KRPC message. */
export type Message =
  | {
    readonly _tag: "Query"
    readonly transactionId: Uint8Array
    readonly query: Query
    /** BEP 43: the sender does not answer queries, so it must not enter routing tables. */
    readonly readOnly?: boolean
  }
  | { readonly _tag: "Response"; readonly transactionId: Uint8Array; readonly response: Response }
  | { readonly _tag: "Error"; readonly transactionId: Uint8Array; readonly code: number; readonly message: string }

/** BEP 5's error codes. */
export const ErrorCode = {
  Generic: 201,
  Server: 202,
  Protocol: 203,
  MethodUnknown: 204
} as const

/** Why a datagram is not a KRPC message we accept (or a message cannot be encoded). */
export class KrpcError extends Data.TaggedError("KrpcError")<{
  readonly reason:
    | "TooLarge"
    | "Bencode"
    | "NotDictionary"
    | "MissingField"
    | "WrongType"
    | "InvalidLength"
    | "UnknownType"
    | "UnknownMethod"
    | "InvalidPort"
    | "Address"
  readonly message: string
  /** The datagram's `t`, when it had a readable one: lets a server answer a bad query with an error. */
  readonly transactionId?: Uint8Array
  /** The datagram's `y`, when readable: a bad query gets an error reply, a bad response does not. */
  readonly kind?: "q" | "r" | "e"
}> {}

/** Largest datagram decoded or encoded; real KRPC messages stay far below it. */
export const MAX_DATAGRAM = 8192

/** Longest transaction id accepted (clients use 2 to 8 bytes). */
export const MAX_TRANSACTION_ID = 32

/** Longest token accepted (clients use 4 to 20 bytes). */
export const MAX_TOKEN = 64

/** Longest error text kept; the rest is cut. */
export const MAX_ERROR_MESSAGE = 256

/** Bytes of one IPv4 compact node info: id, address, port. */
export const NODE_LENGTH = NodeId.LENGTH + CompactPeer.IPV4_LENGTH

/** Bytes of one IPv6 compact node info (BEP 32). */
export const NODE6_LENGTH = NodeId.LENGTH + CompactPeer.IPV6_LENGTH

// A datagram holds at most MAX_DATAGRAM / 3 values; nesting deeper than r -> values -> item is wrong.
const BENCODE_LIMITS: Bencode.Options = { maxLength: MAX_DATAGRAM, maxDepth: 4, maxItems: 2048 }

const METHODS: Record<string, Query["_tag"]> = {
  ping: "Ping",
  find_node: "FindNode",
  get_peers: "GetPeers",
  announce_peer: "AnnouncePeer"
}

interface Context {
  readonly transactionId?: Uint8Array
  readonly kind?: "q" | "r" | "e"
}

const failure = (reason: KrpcError["reason"], message: string, context: Context = {}) =>
  new KrpcError({ reason, message, ...context })

const fieldError = (error: Bencode.BencodeFieldError, context: Context) =>
  failure(error.reason === "Missing" ? "MissingField" : "WrongType", error.message, context)

const bytesOf = (
  dictionary: Bencode.Dictionary,
  key: string,
  context: Context,
  bounds: { readonly min: number; readonly max: number }
): Either.Either<Uint8Array, KrpcError> =>
  Either.flatMap(Either.mapLeft(Bencode.getBytes(dictionary, key), (e) => fieldError(e, context)), (bytes) =>
    bytes.length >= bounds.min && bytes.length <= bounds.max
      ? Either.right(bytes)
      : Either.left(
        failure(
          "InvalidLength",
          `"${key}" is ${bytes.length} bytes, not ${bounds.min === bounds.max ? bounds.min : `${bounds.min}-${bounds.max}`}`,
          context
        )
      ))

const idOf = (dictionary: Bencode.Dictionary, key: string, context: Context) =>
  Either.map(bytesOf(dictionary, key, context, { min: NodeId.LENGTH, max: NodeId.LENGTH }), (bytes) =>
    NodeId.unsafeFromBytes(Uint8Array.from(bytes)))

const integerOf = (dictionary: Bencode.Dictionary, key: string, context: Context) =>
  Either.mapLeft(Bencode.optional(dictionary, key, Bencode.getInteger), (e) => fieldError(e, context))

/** Splits compact node info into nodes; `entry` is 26 (IPv4) or 38 (IPv6) bytes. */
const decodeNodes = (bytes: Uint8Array, entry: number, context: Context): Either.Either<Array<NodeInfo>, KrpcError> => {
  if (bytes.length % entry !== 0) {
    return Either.left(failure("InvalidLength", `compact node info of ${bytes.length} bytes, not a multiple of ${entry}`, context))
  }
  const nodes: Array<NodeInfo> = []
  for (let at = 0; at < bytes.length; at += entry) {
    const peer = bytes.subarray(at + NodeId.LENGTH, at + entry)
    const address = entry === NODE_LENGTH ? CompactPeer.decode4(peer) : CompactPeer.decode6(peer)
    // The slice is exactly one entry long, so decoding cannot fail; the guard keeps the types honest.
    if (Either.isLeft(address)) return Either.left(failure("InvalidLength", address.left.input, context))
    nodes.push({ id: NodeId.unsafeFromBytes(Uint8Array.from(bytes.subarray(at, at + NodeId.LENGTH))), address: address.right[0]! })
  }
  return Either.right(nodes)
}

const decodeValues = (list: ReadonlyArray<Bencode.Value>, context: Context): Either.Either<Array<Address>, KrpcError> => {
  const peers: Array<Address> = []
  for (const item of list) {
    if (!Bencode.isBytes(item)) return Either.left(failure("WrongType", `a "values" entry is not a string`, context))
    const decoded = item.length === CompactPeer.IPV4_LENGTH
      ? CompactPeer.decode4(item)
      : item.length === CompactPeer.IPV6_LENGTH
      ? CompactPeer.decode6(item)
      : undefined
    if (decoded === undefined || Either.isLeft(decoded)) {
      return Either.left(failure("InvalidLength", `a "values" entry of ${item.length} bytes, not 6 or 18`, context))
    }
    peers.push(decoded.right[0]!)
  }
  return Either.right(peers)
}

const decodeQuery = (
  message: Bencode.Dictionary,
  context: Context
): Either.Either<{ readonly query: Query; readonly readOnly: boolean }, KrpcError> =>
  Either.gen(function* () {
    const method = yield* Either.mapLeft(Bencode.getBytes(message, "q"), (e) => fieldError(e, context))
    const args = yield* Either.mapLeft(Bencode.getDictionary(message, "a"), (e) => fieldError(e, context))
    const name = Buffer.from(method.buffer, method.byteOffset, method.length).toString("latin1")
    const tag = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined
    if (tag === undefined) return yield* Either.left(failure("UnknownMethod", `unknown method "${name.slice(0, 32)}"`, context))
    const id = yield* idOf(args, "id", context)
    const ro = yield* integerOf(message, "ro", context)
    const readOnly = ro !== undefined && ro !== 0
    switch (tag) {
      case "Ping":
        return { query: { _tag: "Ping", id }, readOnly }
      case "FindNode":
        return { query: { _tag: "FindNode", id, target: yield* idOf(args, "target", context) }, readOnly }
      case "GetPeers":
        return { query: { _tag: "GetPeers", id, infoHash: InfoHash.unsafeFromBytes(yield* idOf(args, "info_hash", context)) }, readOnly }
      case "AnnouncePeer": {
        const infoHash = InfoHash.unsafeFromBytes(yield* idOf(args, "info_hash", context))
        const token = Uint8Array.from(yield* bytesOf(args, "token", context, { min: 0, max: MAX_TOKEN }))
        const implied = yield* integerOf(args, "implied_port", context)
        const impliedPort = implied !== undefined && implied !== 0
        const port = yield* integerOf(args, "port", context)
        const valid = port !== undefined && Number.isInteger(port) && port >= 1 && port <= 0xffff
        if (!impliedPort && !valid) return yield* Either.left(failure("InvalidPort", `announce_peer port ${port ?? "missing"}`, context))
        return { query: { _tag: "AnnouncePeer", id, infoHash, port: valid ? port : 0, token, impliedPort }, readOnly }
      }
    }
  })

const decodeResponse = (message: Bencode.Dictionary, context: Context): Either.Either<Response, KrpcError> =>
  Either.gen(function* () {
    const r = yield* Either.mapLeft(Bencode.getDictionary(message, "r"), (e) => fieldError(e, context))
    const id = yield* idOf(r, "id", context)
    const nodes = r.has("nodes") ? yield* decodeNodes(yield* bytesOf(r, "nodes", context, { min: 0, max: MAX_DATAGRAM }), NODE_LENGTH, context) : undefined
    const nodes6 = r.has("nodes6") ? yield* decodeNodes(yield* bytesOf(r, "nodes6", context, { min: 0, max: MAX_DATAGRAM }), NODE6_LENGTH, context) : undefined
    const values = r.has("values")
      ? yield* decodeValues(yield* Either.mapLeft(Bencode.getList(r, "values"), (e) => fieldError(e, context)), context)
      : undefined
    const token = r.has("token") ? Uint8Array.from(yield* bytesOf(r, "token", context, { min: 0, max: MAX_TOKEN })) : undefined
    return {
      id,
      ...(nodes === undefined ? {} : { nodes }),
      ...(nodes6 === undefined ? {} : { nodes6 }),
      ...(values === undefined ? {} : { values }),
      ...(token === undefined ? {} : { token })
    }
  })

const decodeError = (
  message: Bencode.Dictionary,
  transactionId: Uint8Array,
  context: Context
): Either.Either<Message, KrpcError> =>
  Either.gen(function* () {
    const e = yield* Either.mapLeft(Bencode.getList(message, "e"), (error) => fieldError(error, context))
    const [code, text] = e
    if (code === undefined || !Bencode.isInteger(code) || text === undefined || !Bencode.isBytes(text)) {
      return yield* Either.left(failure("WrongType", `"e" is not [code, message]`, context))
    }
    return {
      _tag: "Error" as const,
      transactionId,
      code,
      message: Bencode.text(text.subarray(0, MAX_ERROR_MESSAGE))
    }
  })

/** Decodes one datagram. */
export const decode = (bytes: Uint8Array): Either.Either<Message, KrpcError> =>
  Either.gen(function* () {
    if (bytes.length > MAX_DATAGRAM) {
      return yield* Either.left(failure("TooLarge", `datagram of ${bytes.length} bytes over ${MAX_DATAGRAM}`))
    }
    const value = yield* Either.mapLeft(Bencode.decode(bytes, BENCODE_LIMITS), (e) => failure("Bencode", e.message))
    if (!Bencode.isDictionary(value)) return yield* Either.left(failure("NotDictionary", "a KRPC message is a dictionary"))
    const t = value.get("t")
    const transactionId = t !== undefined && Bencode.isBytes(t) && t.length <= MAX_TRANSACTION_ID
      ? Uint8Array.from(t)
      : undefined
    const y = value.get("y")
    const kind = y !== undefined && Bencode.isBytes(y) && y.length === 1 ? String.fromCharCode(y[0]!) : undefined
    const context: Context = {
      ...(transactionId === undefined ? {} : { transactionId }),
      ...(kind === "q" || kind === "r" || kind === "e" ? { kind } : {})
    }
    if (transactionId === undefined) {
      return yield* Either.left(
        failure(t === undefined ? "MissingField" : "InvalidLength", `"t" missing or not a string of at most ${MAX_TRANSACTION_ID} bytes`, context)
      )
    }
    switch (context.kind) {
      case "q": {
        const { query, readOnly } = yield* decodeQuery(value, context)
        return readOnly ? { _tag: "Query", transactionId, query, readOnly } : { _tag: "Query", transactionId, query }
      }
      case "r":
        return { _tag: "Response", transactionId, response: yield* decodeResponse(value, context) }
      case "e":
        return yield* decodeError(value, transactionId, context)
      default:
        return yield* Either.left(failure(y === undefined ? "MissingField" : "UnknownType", `"y" is not "q", "r" or "e"`, context))
    }
  })

const encodeNodes = (nodes: ReadonlyArray<NodeInfo>, ipv6: boolean): Either.Either<Uint8Array, KrpcError> => {
  const entry = ipv6 ? NODE6_LENGTH : NODE_LENGTH
  const out = new Uint8Array(nodes.length * entry)
  for (let i = 0; i < nodes.length; i++) {
    const { address, id } = nodes[i]!
    const compact = ipv6 ? CompactPeer.encode6([address]) : CompactPeer.encode4([address])
    if (Either.isLeft(compact)) return Either.left(failure("Address", `node ${compact.left.input} in "${ipv6 ? "nodes6" : "nodes"}"`))
    out.set(id, i * entry)
    out.set(compact.right, i * entry + NodeId.LENGTH)
  }
  return Either.right(out)
}

const encodeValue = (peer: Address): Either.Either<Uint8Array, KrpcError> =>
  Either.mapLeft(
    peer.host.includes(":") ? CompactPeer.encode6([peer]) : CompactPeer.encode4([peer]),
    (e) => failure("Address", `peer ${e.input} in "values"`)
  )

const encodeQuery = (query: Query): { readonly q: string; readonly a: Bencode.Encodable } => {
  switch (query._tag) {
    case "Ping":
      return { q: "ping", a: { id: query.id } }
    case "FindNode":
      return { q: "find_node", a: { id: query.id, target: query.target } }
    case "GetPeers":
      return { q: "get_peers", a: { id: query.id, info_hash: query.infoHash } }
    case "AnnouncePeer":
      return {
        q: "announce_peer",
        a: {
          id: query.id,
          info_hash: query.infoHash,
          port: query.port,
          token: query.token,
          implied_port: query.impliedPort ? 1 : undefined
        }
      }
  }
}

const encodeResponse = (response: Response): Either.Either<Bencode.Encodable, KrpcError> =>
  Either.gen(function* () {
    return {
      id: response.id,
      nodes: response.nodes === undefined ? undefined : yield* encodeNodes(response.nodes, false),
      nodes6: response.nodes6 === undefined ? undefined : yield* encodeNodes(response.nodes6, true),
      values: response.values === undefined ? undefined : yield* Either.all(response.values.map(encodeValue)),
      token: response.token
    }
  })

/**
 * Encodes a message. Fails on a node or peer whose host is not an IP literal of its field's
 * family, and on a message over `MAX_DATAGRAM` bytes.
 */
export const encode = (message: Message): Either.Either<Uint8Array, KrpcError> =>
  Either.gen(function* () {
    const t = message.transactionId
    let dictionary: Bencode.Encodable
    switch (message._tag) {
      case "Query":
        dictionary = { t, y: "q", ...encodeQuery(message.query), ro: message.readOnly === true ? 1 : undefined }
        break
      case "Response":
        dictionary = { t, y: "r", r: yield* encodeResponse(message.response) }
        break
      case "Error":
        dictionary = { t, y: "e", e: [message.code, message.message] }
        break
    }
    const bytes = Bencode.encode(dictionary)
    return bytes.length > MAX_DATAGRAM
      ? yield* Either.left(failure("TooLarge", `message of ${bytes.length} bytes over ${MAX_DATAGRAM}`))
      : bytes
  })
