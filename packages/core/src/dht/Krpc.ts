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

// Decoding: plain functions returning a value or a KrpcError (no Either per field: this runs
// for every datagram); `decode` wraps the result in an Either.

/** What is known of the datagram so far, carried into every error. */
interface Context {
  readonly transactionId?: Uint8Array
  readonly kind?: "q" | "r" | "e"
}

const failure = (reason: KrpcError["reason"], message: string, context: Context = {}) =>
  new KrpcError({ reason, message, ...context })

const missing = (key: string, context: Context) => failure("MissingField", `missing field "${key}"`, context)

const wrongType = (key: string, expected: string, context: Context) =>
  failure("WrongType", `field "${key}" is not a ${expected}`, context)

const bytesOf = (
  dictionary: Bencode.Dictionary,
  key: string,
  context: Context,
  min: number,
  max: number
): Uint8Array | KrpcError => {
  const value = dictionary.get(key)
  if (value === undefined) return missing(key, context)
  if (!Bencode.isBytes(value)) return wrongType(key, "string", context)
  if (value.length < min || value.length > max) {
    return failure("InvalidLength", `"${key}" is ${value.length} bytes, not ${min === max ? min : `${min}-${max}`}`, context)
  }
  return value
}

const idOf = (dictionary: Bencode.Dictionary, key: string, context: Context): NodeId.NodeId | KrpcError => {
  const bytes = bytesOf(dictionary, key, context, NodeId.LENGTH, NodeId.LENGTH)
  return bytes instanceof KrpcError ? bytes : NodeId.unsafeFromBytes(Uint8Array.from(bytes))
}

/** An optional integer: undefined when absent. */
const integerOf = (dictionary: Bencode.Dictionary, key: string, context: Context): number | undefined | KrpcError => {
  const value = dictionary.get(key)
  if (value === undefined) return undefined
  return Bencode.isInteger(value) ? value : wrongType(key, "integer", context)
}

/** Splits compact node info into nodes; `entry` is 26 (IPv4) or 38 (IPv6) bytes. */
const decodeNodes = (bytes: Uint8Array, entry: number, context: Context): Array<NodeInfo> | KrpcError => {
  if (bytes.length % entry !== 0) {
    return failure("InvalidLength", `compact node info of ${bytes.length} bytes, not a multiple of ${entry}`, context)
  }
  const nodes: Array<NodeInfo> = []
  for (let at = 0; at < bytes.length; at += entry) {
    const peer = bytes.subarray(at + NodeId.LENGTH, at + entry)
    const address = entry === NODE_LENGTH ? CompactPeer.decode4(peer) : CompactPeer.decode6(peer)
    // The slice is exactly one entry long, so decoding cannot fail; the guard keeps the types honest.
    if (Either.isLeft(address)) return failure("InvalidLength", address.left.input, context)
    nodes.push({ id: NodeId.unsafeFromBytes(Uint8Array.from(bytes.subarray(at, at + NodeId.LENGTH))), address: address.right[0]! })
  }
  return nodes
}

const nodesOf = (dictionary: Bencode.Dictionary, key: string, entry: number, context: Context): Array<NodeInfo> | undefined | KrpcError => {
  if (!dictionary.has(key)) return undefined
  const bytes = bytesOf(dictionary, key, context, 0, MAX_DATAGRAM)
  return bytes instanceof KrpcError ? bytes : decodeNodes(bytes, entry, context)
}

const valuesOf = (dictionary: Bencode.Dictionary, context: Context): Array<Address> | undefined | KrpcError => {
  const list = dictionary.get("values")
  if (list === undefined) return undefined
  if (!Bencode.isList(list)) return wrongType("values", "list", context)
  const peers: Array<Address> = []
  for (const item of list) {
    if (!Bencode.isBytes(item)) return failure("WrongType", `a "values" entry is not a string`, context)
    const decoded = item.length === CompactPeer.IPV4_LENGTH
      ? CompactPeer.decode4(item)
      : item.length === CompactPeer.IPV6_LENGTH
      ? CompactPeer.decode6(item)
      : undefined
    if (decoded === undefined || Either.isLeft(decoded)) {
      return failure("InvalidLength", `a "values" entry of ${item.length} bytes, not 6 or 18`, context)
    }
    peers.push(decoded.right[0]!)
  }
  return peers
}

const decodeQuery = (message: Bencode.Dictionary, transactionId: Uint8Array, context: Context): Message | KrpcError => {
  const method = bytesOf(message, "q", context, 0, 64)
  if (method instanceof KrpcError) return method
  const args = message.get("a")
  if (args === undefined) return missing("a", context)
  if (!Bencode.isDictionary(args)) return wrongType("a", "dictionary", context)
  const name = Buffer.from(method.buffer, method.byteOffset, method.length).toString("latin1")
  const tag = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined
  if (tag === undefined) return failure("UnknownMethod", `unknown method "${name.slice(0, 32)}"`, context)
  const id = idOf(args, "id", context)
  if (id instanceof KrpcError) return id
  const ro = integerOf(message, "ro", context)
  if (ro instanceof KrpcError) return ro
  const query = queryArguments(tag, id, args, context)
  if (query instanceof KrpcError) return query
  return ro !== undefined && ro !== 0
    ? { _tag: "Query", transactionId, query, readOnly: true }
    : { _tag: "Query", transactionId, query }
}

const queryArguments = (
  tag: Query["_tag"],
  id: NodeId.NodeId,
  args: Bencode.Dictionary,
  context: Context
): Query | KrpcError => {
  switch (tag) {
    case "Ping":
      return { _tag: "Ping", id }
    case "FindNode": {
      const target = idOf(args, "target", context)
      return target instanceof KrpcError ? target : { _tag: "FindNode", id, target }
    }
    case "GetPeers": {
      const infoHash = idOf(args, "info_hash", context)
      return infoHash instanceof KrpcError ? infoHash : { _tag: "GetPeers", id, infoHash: InfoHash.unsafeFromBytes(infoHash) }
    }
    case "AnnouncePeer": {
      const infoHash = idOf(args, "info_hash", context)
      if (infoHash instanceof KrpcError) return infoHash
      const token = bytesOf(args, "token", context, 0, MAX_TOKEN)
      if (token instanceof KrpcError) return token
      const implied = integerOf(args, "implied_port", context)
      if (implied instanceof KrpcError) return implied
      const port = integerOf(args, "port", context)
      if (port instanceof KrpcError) return port
      const impliedPort = implied !== undefined && implied !== 0
      const valid = port !== undefined && port >= 1 && port <= 0xffff
      if (!impliedPort && !valid) return failure("InvalidPort", `announce_peer port ${port ?? "missing"}`, context)
      return {
        _tag: "AnnouncePeer",
        id,
        infoHash: InfoHash.unsafeFromBytes(infoHash),
        port: valid ? port : 0,
        token: Uint8Array.from(token),
        impliedPort
      }
    }
  }
}

const decodeResponse = (message: Bencode.Dictionary, transactionId: Uint8Array, context: Context): Message | KrpcError => {
  const r = message.get("r")
  if (r === undefined) return missing("r", context)
  if (!Bencode.isDictionary(r)) return wrongType("r", "dictionary", context)
  const id = idOf(r, "id", context)
  if (id instanceof KrpcError) return id
  const nodes = nodesOf(r, "nodes", NODE_LENGTH, context)
  if (nodes instanceof KrpcError) return nodes
  const nodes6 = nodesOf(r, "nodes6", NODE6_LENGTH, context)
  if (nodes6 instanceof KrpcError) return nodes6
  const values = valuesOf(r, context)
  if (values instanceof KrpcError) return values
  const token = r.has("token") ? bytesOf(r, "token", context, 0, MAX_TOKEN) : undefined
  if (token instanceof KrpcError) return token
  return {
    _tag: "Response",
    transactionId,
    response: {
      id,
      ...(nodes === undefined ? {} : { nodes }),
      ...(nodes6 === undefined ? {} : { nodes6 }),
      ...(values === undefined ? {} : { values }),
      ...(token === undefined ? {} : { token: Uint8Array.from(token) })
    }
  }
}

const decodeError = (message: Bencode.Dictionary, transactionId: Uint8Array, context: Context): Message | KrpcError => {
  const e = message.get("e")
  if (e === undefined) return missing("e", context)
  const [code, text] = Bencode.isList(e) ? e : []
  if (code === undefined || !Bencode.isInteger(code) || text === undefined || !Bencode.isBytes(text)) {
    return failure("WrongType", `"e" is not [code, message]`, context)
  }
  return { _tag: "Error", transactionId, code, message: Bencode.text(text.subarray(0, MAX_ERROR_MESSAGE)) }
}

const decodeMessage = (bytes: Uint8Array): Message | KrpcError => {
  if (bytes.length > MAX_DATAGRAM) return failure("TooLarge", `datagram of ${bytes.length} bytes over ${MAX_DATAGRAM}`)
  const decoded = Bencode.decode(bytes, BENCODE_LIMITS)
  if (Either.isLeft(decoded)) return failure("Bencode", decoded.left.message)
  const value = decoded.right
  if (!Bencode.isDictionary(value)) return failure("NotDictionary", "a KRPC message is a dictionary")
  const t = value.get("t")
  const transactionId = t !== undefined && Bencode.isBytes(t) && t.length <= MAX_TRANSACTION_ID ? Uint8Array.from(t) : undefined
  const y = value.get("y")
  const kind = y !== undefined && Bencode.isBytes(y) && y.length === 1 ? String.fromCharCode(y[0]!) : undefined
  const context: Context = {
    ...(transactionId === undefined ? {} : { transactionId }),
    ...(kind === "q" || kind === "r" || kind === "e" ? { kind } : {})
  }
  if (transactionId === undefined) {
    return failure(t === undefined ? "MissingField" : "InvalidLength", `"t" missing or not a string of at most ${MAX_TRANSACTION_ID} bytes`, context)
  }
  switch (context.kind) {
    case "q":
      return decodeQuery(value, transactionId, context)
    case "r":
      return decodeResponse(value, transactionId, context)
    case "e":
      return decodeError(value, transactionId, context)
    default:
      return failure(y === undefined ? "MissingField" : "UnknownType", `"y" is not "q", "r" or "e"`, context)
  }
}

/** Decodes one datagram. */
export const decode = (bytes: Uint8Array): Either.Either<Message, KrpcError> => {
  const result = decodeMessage(bytes)
  return result instanceof KrpcError ? Either.left(result) : Either.right(result)
}

const encodeNodes = (nodes: ReadonlyArray<NodeInfo>, ipv6: boolean): Uint8Array | KrpcError => {
  const entry = ipv6 ? NODE6_LENGTH : NODE_LENGTH
  const out = new Uint8Array(nodes.length * entry)
  for (let i = 0; i < nodes.length; i++) {
    const { address, id } = nodes[i]!
    const compact = ipv6 ? CompactPeer.encode6([address]) : CompactPeer.encode4([address])
    if (Either.isLeft(compact)) return failure("Address", `node ${compact.left.input} in "${ipv6 ? "nodes6" : "nodes"}"`)
    out.set(id, i * entry)
    out.set(compact.right, i * entry + NodeId.LENGTH)
  }
  return out
}

const encodeValues = (peers: ReadonlyArray<Address>): Array<Uint8Array> | KrpcError => {
  const out: Array<Uint8Array> = []
  for (const peer of peers) {
    const compact = peer.host.includes(":") ? CompactPeer.encode6([peer]) : CompactPeer.encode4([peer])
    if (Either.isLeft(compact)) return failure("Address", `peer ${compact.left.input} in "values"`)
    out.push(compact.right)
  }
  return out
}

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

const encodeResponse = (response: Response): Bencode.Encodable | KrpcError => {
  const nodes = response.nodes === undefined ? undefined : encodeNodes(response.nodes, false)
  if (nodes instanceof KrpcError) return nodes
  const nodes6 = response.nodes6 === undefined ? undefined : encodeNodes(response.nodes6, true)
  if (nodes6 instanceof KrpcError) return nodes6
  const values = response.values === undefined ? undefined : encodeValues(response.values)
  if (values instanceof KrpcError) return values
  return { id: response.id, nodes, nodes6, values, token: response.token }
}

const encodeMessage = (message: Message): Bencode.Encodable | KrpcError => {
  const t = message.transactionId
  switch (message._tag) {
    case "Query":
      return { t, y: "q", ...encodeQuery(message.query), ro: message.readOnly === true ? 1 : undefined }
    case "Response": {
      const r = encodeResponse(message.response)
      return r instanceof KrpcError ? r : { t, y: "r", r }
    }
    case "Error":
      return { t, y: "e", e: [message.code, message.message] }
  }
}

/**
 * Encodes a message. Fails on a node or peer whose host is not an IP literal of its field's
 * family, and on a message over `MAX_DATAGRAM` bytes.
 */
export const encode = (message: Message): Either.Either<Uint8Array, KrpcError> => {
  const dictionary = encodeMessage(message)
  if (dictionary instanceof KrpcError) return Either.left(dictionary)
  const bytes = Bencode.encode(dictionary)
  return bytes.length > MAX_DATAGRAM
    ? Either.left(failure("TooLarge", `message of ${bytes.length} bytes over ${MAX_DATAGRAM}`))
    : Either.right(bytes)
}
