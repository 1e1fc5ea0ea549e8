/**
 * MQTT 3.1.1 packet codec: the client-side subset. Encoders for what a client sends, and a
 * strict, bounded, incremental decoder for what a broker sends.
 *
 * The decoder never buffers more than one packet of at most `maxPacketBytes`: an oversized
 * PUBLISH is skipped as it streams in and surfaces as an `oversize` event, so a hostile or
 * misconfigured broker cannot make us allocate unbounded memory.
 *
 * @example
 * ```ts
 * import { encodePublish, PacketDecoder } from "./packet.ts";
 * const decoder = new PacketDecoder(1024);
 * decoder.push(encodePublish({ topic: "a/b", payload: new Uint8Array([1]), qos: 0 }));
 * console.log(decoder.next()); // { type: "publish", topic: "a/b", ... }
 * ```
 * @module
 */

/**
 * Malformed bytes from the peer. The message is a short one-line reason.
 *
 * @example
 * ```ts
 * import { PacketDecoder, PacketError } from "./packet.ts";
 * const decoder = new PacketDecoder(1024);
 * decoder.push(new Uint8Array([0x10, 0])); // CONNECT never goes to a client
 * try {
 *   decoder.next();
 * } catch (e) {
 *   if (e instanceof PacketError) console.log(e.message); // "unexpected packet CONNECT"
 * }
 * ```
 */
export class PacketError extends Error {
  /** Always "PacketError". */
  override name = "PacketError";
}

/**
 * Control packet type numbers (the high nibble of the first byte).
 *
 * @example
 * ```ts
 * import { PacketType } from "./packet.ts";
 * const isPuback = (firstByte: number) => firstByte >> 4 === PacketType.PUBACK;
 * ```
 */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/**
 * Largest value the 4-byte remaining-length varint can hold (256 MiB - 1).
 *
 * @example
 * ```ts
 * import { MAX_REMAINING_LENGTH } from "./packet.ts";
 * const fits = (payloadBytes: number) => payloadBytes < MAX_REMAINING_LENGTH - 65_539;
 * ```
 */
export const MAX_REMAINING_LENGTH = 268_435_455;

/**
 * SUBACK return code for a refused subscription.
 *
 * @example
 * ```ts
 * import { SUBACK_FAILURE } from "./packet.ts";
 * const refused = [1, 0x80].some((code) => code === SUBACK_FAILURE); // true
 * ```
 */
export const SUBACK_FAILURE = 0x80;

/**
 * A packet (or decoder event) received from a broker.
 *
 * @example
 * ```ts
 * import type { IncomingPacket } from "./packet.ts";
 * const describe = (p: IncomingPacket) => p.type === "publish" ? p.topic : p.type;
 * ```
 */
export type IncomingPacket =
  | { type: "connack"; sessionPresent: boolean; returnCode: number }
  | {
    type: "publish";
    topic: string;
    payload: Uint8Array;
    qos: 0 | 1 | 2;
    retain: boolean;
    dup: boolean;
    /** 0 for QoS 0. */
    packetId: number;
  }
  | {
    /** A PUBLISH larger than maxPacketBytes, skipped without buffering its payload. */
    type: "oversize";
    topic: string;
    qos: 0 | 1 | 2;
    retain: boolean;
    packetId: number;
    /** Whole packet size in bytes (fixed header included). */
    size: number;
  }
  | { type: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback"; packetId: number }
  | { type: "suback"; packetId: number; returnCodes: number[] }
  | { type: "pingresp" };

// Created on first use: nothing runs at import time.
let utf8Encoder: TextEncoder | undefined;
let utf8Decoder: TextDecoder | undefined;

function encodeUtf8(text: string): Uint8Array {
  return (utf8Encoder ??= new TextEncoder()).encode(text);
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  // fatal: invalid UTF-8 (including encoded surrogates) is an error, not U+FFFD.
  // ignoreBOM: a leading U+FEFF is part of an MQTT string and must not be stripped.
  utf8Decoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new PacketError(`${what} is not valid UTF-8`);
  }
}

/**
 * Encode a remaining length as the 1–4 byte varint of MQTT 3.1.1 §2.2.3.
 *
 * @example
 * ```ts
 * import { encodeRemainingLength } from "./packet.ts";
 * encodeRemainingLength(321); // Uint8Array [0xc1, 0x02]
 * ```
 */
export function encodeRemainingLength(value: number): Uint8Array {
  const out = new Uint8Array(varintSize(value));
  writeVarint(out, 0, value);
  return out;
}

function varintSize(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_REMAINING_LENGTH) {
    throw new RangeError(`packet too large: ${value} bytes`);
  }
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;
}

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out[offset++] = byte;
  } while (value > 0);
  return offset;
}

/** Allocate one packet buffer (so each packet is one write) and fill in its fixed header. */
function allocatePacket(firstByte: number, remaining: number): { out: Uint8Array; pos: number } {
  const out = new Uint8Array(1 + varintSize(remaining) + remaining);
  out[0] = firstByte;
  return { out, pos: writeVarint(out, 1, remaining) };
}

function writeU16(out: Uint8Array, pos: number, value: number): number {
  out[pos] = value >> 8;
  out[pos + 1] = value & 0xff;
  return pos + 2;
}

function writeBytes16(out: Uint8Array, pos: number, bytes: Uint8Array): number {
  pos = writeU16(out, pos, bytes.length);
  out.set(bytes, pos);
  return pos + bytes.length;
}

function checkPacketId(packetId: number): void {
  if (!Number.isInteger(packetId) || packetId < 1 || packetId > 0xffff) {
    throw new RangeError(`invalid packet id ${packetId}`);
  }
}

/**
 * UTF-8 bytes of an MQTT string we send, after the checks a broker would otherwise answer by
 * dropping the connection: well-formed UTF-16 (no lone surrogates, which TextEncoder would
 * silently turn into U+FFFD), no U+0000, no C0/C1 control characters (mosquitto rejects
 * them), at most 65535 bytes.
 */
function mqttString(text: string, what: string): Uint8Array {
  if (typeof text !== "string") throw new RangeError(`${what} must be a string`);
  if (!text.isWellFormed()) throw new RangeError(`${what} contains a lone surrogate`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) {
    throw new RangeError(`${what} contains a control character`);
  }
  const bytes = encodeUtf8(text);
  if (bytes.length > 0xffff) throw new RangeError(`${what} is longer than 65535 bytes`);
  return bytes;
}

/**
 * Check a topic name we publish to: non-empty, no wildcards, a valid MQTT string.
 * Throws RangeError with a one-line reason.
 *
 * @example
 * ```ts
 * import { topicNameBytes } from "./packet.ts";
 * topicNameBytes("net/uppercase/request"); // ok
 * ```
 */
export function topicNameBytes(topic: string): Uint8Array {
  const bytes = mqttString(topic, `topic ${JSON.stringify(topic)}`);
  if (bytes.length === 0) throw new RangeError("topic must not be empty");
  if (topic.includes("+") || topic.includes("#")) {
    throw new RangeError(`topic ${JSON.stringify(topic)} must not contain wildcards`);
  }
  return bytes;
}

/**
 * Check a topic filter we subscribe to: non-empty; `+` and `#` only as whole levels, `#` last.
 * Throws RangeError with a one-line reason.
 *
 * @example
 * ```ts
 * import { topicFilterBytes } from "./packet.ts";
 * topicFilterBytes("net/+/response"); // ok
 * ```
 */
export function topicFilterBytes(filter: string): Uint8Array {
  const what = `topic filter ${JSON.stringify(filter)}`;
  const bytes = mqttString(filter, what);
  if (bytes.length === 0) throw new RangeError("topic filter must not be empty");
  const levels = filter.split("/");
  levels.forEach((level, index) => {
    if (level.includes("#") && (level !== "#" || index !== levels.length - 1)) {
      throw new RangeError(`${what}: "#" must be a whole last level`);
    }
    if (level.includes("+") && level !== "+") {
      throw new RangeError(`${what}: "+" must be a whole level`);
    }
  });
  return bytes;
}

/**
 * Fields of a CONNECT packet.
 *
 * @example
 * ```ts
 * import type { ConnectFields } from "./packet.ts";
 * const fields: ConnectFields = { clientId: "c", keepAliveSeconds: 30, username: "u" };
 * ```
 */
export interface ConnectFields {
  /** UTF-8, at most 65535 bytes; may be empty with a clean session. */
  clientId: string;
  /** 0..65535; 0 disables keepalive. */
  keepAliveSeconds: number;
  /** Default true. */
  cleanSession?: boolean;
  /** User name, if the broker authenticates. */
  username?: string;
  /** Binary data in MQTT terms; requires `username`. */
  password?: string | Uint8Array;
}

/**
 * Encode CONNECT (protocol name "MQTT", level 4).
 *
 * @example
 * ```ts
 * import { encodeConnect } from "./packet.ts";
 * const bytes = encodeConnect({ clientId: "c1", keepAliveSeconds: 30 });
 * ```
 */
export function encodeConnect(fields: ConnectFields): Uint8Array {
  const { keepAliveSeconds } = fields;
  if (!Number.isInteger(keepAliveSeconds) || keepAliveSeconds < 0 || keepAliveSeconds > 0xffff) {
    throw new RangeError(`invalid keepalive ${keepAliveSeconds}`);
  }
  const clientId = mqttString(fields.clientId, "client id");
  const username = fields.username === undefined
    ? undefined
    : mqttString(fields.username, "user name");
  const password = fields.password === undefined
    ? undefined
    : typeof fields.password === "string"
    ? encodeUtf8(fields.password)
    : fields.password;
  // 3.1.1 §3.1.2.9: a password requires a user name [MQTT-3.1.2-22].
  if (password !== undefined && username === undefined) {
    throw new RangeError("a password requires a user name");
  }
  if (password !== undefined && password.length > 0xffff) {
    throw new RangeError("password is longer than 65535 bytes");
  }
  let flags = fields.cleanSession === false ? 0 : 0x02;
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const remaining = 10 + 2 + clientId.length +
    (username === undefined ? 0 : 2 + username.length) +
    (password === undefined ? 0 : 2 + password.length);
  let { out, pos } = allocatePacket(PacketType.CONNECT << 4, remaining);
  out.set([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags], pos); // "MQTT", level 4
  pos = writeU16(out, pos + 8, keepAliveSeconds);
  pos = writeBytes16(out, pos, clientId);
  if (username !== undefined) pos = writeBytes16(out, pos, username);
  if (password !== undefined) pos = writeBytes16(out, pos, password);
  return out;
}

/**
 * Encode SUBSCRIBE: one packet for all filters, each at `qos`.
 *
 * @example
 * ```ts
 * import { encodeSubscribe } from "./packet.ts";
 * const bytes = encodeSubscribe(1, ["a/response", "b/response"], 1);
 * ```
 */
export function encodeSubscribe(
  packetId: number,
  filters: readonly string[],
  qos: 0 | 1 | 2,
): Uint8Array {
  checkPacketId(packetId);
  if (filters.length === 0) throw new RangeError("subscribe needs at least one topic");
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError(`invalid QoS ${qos}`);
  const encoded = filters.map(topicFilterBytes);
  const remaining = 2 + encoded.reduce((sum, bytes) => sum + 3 + bytes.length, 0);
  let { out, pos } = allocatePacket((PacketType.SUBSCRIBE << 4) | 0x02, remaining);
  pos = writeU16(out, pos, packetId);
  for (const bytes of encoded) {
    pos = writeBytes16(out, pos, bytes);
    out[pos++] = qos;
  }
  return out;
}

/**
 * Fields of an outgoing PUBLISH.
 *
 * @example
 * ```ts
 * import type { PublishFields } from "./packet.ts";
 * const fields: PublishFields = { topic: "t", payload: new Uint8Array([1]), qos: 0 };
 * ```
 */
export interface PublishFields {
  /** Topic name: non-empty, no wildcards. */
  topic: string;
  /** Application bytes, sent as is. */
  payload: Uint8Array;
  /** Delivery QoS. */
  qos: 0 | 1 | 2;
  /** Ask the broker to retain the message. */
  retain?: boolean;
  /** Redelivery flag (QoS > 0 only). */
  dup?: boolean;
  /** Required (1..65535) for QoS > 0, ignored for QoS 0. */
  packetId?: number;
}

/**
 * Encode PUBLISH.
 *
 * @example
 * ```ts
 * import { encodePublish } from "./packet.ts";
 * const bytes = encodePublish({ topic: "t", payload: new Uint8Array(), qos: 1, packetId: 7 });
 * ```
 */
export function encodePublish(fields: PublishFields): Uint8Array {
  const { qos, payload } = fields;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError(`invalid QoS ${qos}`);
  if (!(payload instanceof Uint8Array)) throw new RangeError("payload must be a Uint8Array");
  const topic = topicNameBytes(fields.topic);
  if (qos > 0) checkPacketId(fields.packetId ?? 0);
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + payload.length;
  // DUP only has meaning for QoS > 0 [MQTT-3.3.1-2].
  const firstByte = (PacketType.PUBLISH << 4) | (fields.dup && qos > 0 ? 0x08 : 0) | (qos << 1) |
    (fields.retain ? 0x01 : 0);
  let { out, pos } = allocatePacket(firstByte, remaining);
  pos = writeBytes16(out, pos, topic);
  if (qos > 0) pos = writeU16(out, pos, fields.packetId!);
  out.set(payload, pos);
  return out;
}

/**
 * Encode PUBACK, PUBREC, PUBREL or PUBCOMP.
 *
 * @example
 * ```ts
 * import { encodeAck } from "./packet.ts";
 * encodeAck("puback", 7); // Uint8Array [0x40, 2, 0, 7]
 * ```
 */
export function encodeAck(
  type: "puback" | "pubrec" | "pubrel" | "pubcomp",
  packetId: number,
): Uint8Array {
  checkPacketId(packetId);
  const firstByte = type === "puback"
    ? PacketType.PUBACK << 4
    : type === "pubrec"
    ? PacketType.PUBREC << 4
    : type === "pubrel"
    ? (PacketType.PUBREL << 4) | 0x02 // PUBREL's reserved flags are 0010 [MQTT-3.6.1-1]
    : PacketType.PUBCOMP << 4;
  return new Uint8Array([firstByte, 2, packetId >> 8, packetId & 0xff]);
}

/**
 * Encode PINGREQ.
 *
 * @example
 * ```ts
 * import { encodePingreq } from "./packet.ts";
 * encodePingreq(); // Uint8Array [0xc0, 0]
 * ```
 */
export function encodePingreq(): Uint8Array {
  return new Uint8Array([PacketType.PINGREQ << 4, 0]);
}

/**
 * Encode DISCONNECT.
 *
 * @example
 * ```ts
 * import { encodeDisconnect } from "./packet.ts";
 * encodeDisconnect(); // Uint8Array [0xe0, 0]
 * ```
 */
export function encodeDisconnect(): Uint8Array {
  return new Uint8Array([PacketType.DISCONNECT << 4, 0]);
}

/**
 * Bytes received but not yet parsed, kept as a list of chunks so appending is O(1) and bytes
 * are copied once, when a packet is taken out.
 */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // index of the first live chunk (no Array.shift: it is O(n) per call)
  #offset = 0; // into #chunks[#head]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Byte at `index` from the front; the caller checks `index < length`. */
  peek(index: number): number {
    let i = this.#offset + index;
    for (let c = this.#head; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c];
      if (i < chunk.length) return chunk[i];
      i -= chunk.length;
    }
    throw new RangeError("peek past end");
  }

  /** Remove and return `n` bytes (the caller checks `n <= length`). */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[this.#head];
    if (this.#offset === 0 && first.length === n) {
      // A whole chunk: hand it over without copying.
      this.#consume(n, n, n);
      return first;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[this.#head];
      const available = chunk.length - this.#offset;
      const count = Math.min(available, n - filled);
      out.set(chunk.subarray(this.#offset, this.#offset + count), filled);
      filled += count;
      this.#consume(count, available, count);
    }
    return out;
  }

  /** Discard up to `n` bytes; returns how many were discarded. */
  skip(n: number): number {
    let skipped = 0;
    while (skipped < n && this.#length > 0) {
      const available = this.#chunks[this.#head].length - this.#offset;
      const count = Math.min(available, n - skipped);
      skipped += count;
      this.#consume(count, available, count);
    }
    return skipped;
  }

  /** Drop `count` of the `available` bytes left in the head chunk. */
  #consume(count: number, available: number, removed: number): void {
    this.#length -= removed;
    if (count < available) {
      this.#offset += count;
      return;
    }
    this.#chunks[this.#head++] = EMPTY; // release the chunk now, not at compaction
    this.#offset = 0;
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);

interface FixedHeader {
  type: number;
  flags: number;
  remaining: number;
  size: number; // whole packet
}

interface Skipping {
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  packetId: number;
  size: number;
  left: number;
}

const ACK_TYPES: Record<number, "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback"> = {
  [PacketType.PUBACK]: "puback",
  [PacketType.PUBREC]: "pubrec",
  [PacketType.PUBREL]: "pubrel",
  [PacketType.PUBCOMP]: "pubcomp",
  [PacketType.UNSUBACK]: "unsuback",
};

/**
 * Incremental decoder for broker-to-client packets. Feed it bytes with {@link push}, then call
 * {@link next} until it returns undefined. Throws {@link PacketError} on malformed input;
 * after that the stream is unusable (the connection must be closed).
 *
 * @example
 * ```ts
 * import { PacketDecoder } from "./packet.ts";
 * const decoder = new PacketDecoder(4 * 1024 * 1024);
 * decoder.push(new Uint8Array([0x20, 2, 0, 0])); // CONNACK accepted
 * decoder.next(); // { type: "connack", sessionPresent: false, returnCode: 0 }
 * ```
 */
export class PacketDecoder {
  /** Largest packet (fixed header included) that is decoded rather than skipped. */
  readonly maxPacketBytes: number;
  #queue = new ByteQueue();
  #header: FixedHeader | undefined;
  #skipping: Skipping | undefined;

  /**
   * `maxPacketBytes`: larger PUBLISH packets become `oversize` events; others are errors.
   *
   * @example
   * ```ts
   * import { encodePublish, PacketDecoder } from "./packet.ts";
   * const decoder = new PacketDecoder(16);
   * decoder.push(encodePublish({ topic: "a", payload: new Uint8Array(20), qos: 0 }));
   * decoder.next(); // { type: "oversize", topic: "a", ..., size: 25 }: the payload was skipped
   * ```
   */
  constructor(maxPacketBytes: number) {
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
      throw new RangeError(`invalid maxPacketBytes ${maxPacketBytes}`);
    }
    this.maxPacketBytes = maxPacketBytes;
  }

  /**
   * Bytes held and not yet returned as packets.
   *
   * @example
   * ```ts
   * import { PacketDecoder } from "./packet.ts";
   * const decoder = new PacketDecoder(1024);
   * decoder.push(new Uint8Array([0x20, 2, 0, 0, 0xd0])); // CONNACK, then half a PINGRESP
   * decoder.next(); // { type: "connack", sessionPresent: false, returnCode: 0 }
   * console.log(decoder.buffered); // 1
   * ```
   */
  get buffered(): number {
    return this.#queue.length;
  }

  /**
   * Append received bytes. The decoder keeps a reference: do not reuse the buffer.
   *
   * @example
   * ```ts
   * import { PacketDecoder } from "./packet.ts";
   * const decoder = new PacketDecoder(1024);
   * decoder.push(new Uint8Array([0xd0])); // packets may arrive split anywhere
   * decoder.next(); // undefined
   * decoder.push(new Uint8Array([0]));
   * decoder.next(); // { type: "pingresp" }
   * ```
   */
  push(chunk: Uint8Array): void {
    this.#queue.push(chunk);
  }

  /**
   * The next complete packet or event, or undefined if more bytes are needed.
   *
   * @example
   * ```ts
   * import { PacketDecoder } from "./packet.ts";
   * const decoder = new PacketDecoder(1024);
   * decoder.push(new Uint8Array([0x40, 2, 0, 1, 0x40, 2, 0, 2])); // two PUBACKs in one read
   * for (let packet = decoder.next(); packet !== undefined; packet = decoder.next()) {
   *   console.log(packet); // { type: "puback", packetId: 1 }, then packetId 2
   * }
   * ```
   */
  next(): IncomingPacket | undefined {
    const header = this.#header ??= this.#readHeader();
    if (header === undefined) return undefined;
    if (header.type === PacketType.PUBLISH && header.size > this.maxPacketBytes) {
      return this.#skipOversize(header);
    }
    if (this.#queue.length < header.remaining) return undefined;
    const body = this.#queue.take(header.remaining);
    this.#header = undefined;
    return decodeBody(header, body);
  }

  #readHeader(): FixedHeader | undefined {
    const queue = this.#queue;
    if (queue.length < 2) return undefined;
    const first = queue.peek(0);
    let remaining = 0;
    let multiplier = 1;
    let index = 1;
    while (true) {
      if (index >= queue.length) return undefined;
      const byte = queue.peek(index);
      remaining += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        // A trailing zero continuation byte encodes nothing: only a non-minimal varint has it.
        if (index > 1 && byte === 0) throw new PacketError("non-minimal remaining length");
        break;
      }
      if (index === 4) throw new PacketError("remaining length longer than 4 bytes");
      multiplier *= 128;
      index++;
    }
    const header = {
      type: first >> 4,
      flags: first & 0x0f,
      remaining,
      size: index + 1 + remaining,
    };
    checkHeader(header, this.maxPacketBytes);
    queue.skip(index + 1);
    return header;
  }

  #skipOversize(header: FixedHeader): IncomingPacket | undefined {
    const queue = this.#queue;
    if (this.#skipping === undefined) {
      // Only the topic and packet id are buffered (at most 65539 bytes), never the payload.
      if (queue.length < 2) return undefined;
      const qos = ((header.flags >> 1) & 0x03) as 0 | 1 | 2;
      const prefix = 2 + ((queue.peek(0) << 8) | queue.peek(1)) + (qos > 0 ? 2 : 0);
      if (prefix > header.remaining) throw new PacketError("PUBLISH topic overruns the packet");
      if (queue.length < prefix) return undefined;
      const bytes = queue.take(prefix);
      const { topic, packetId } = readPublishPrefix(bytes, qos);
      this.#skipping = {
        topic,
        qos,
        retain: (header.flags & 0x01) !== 0,
        packetId,
        size: header.size,
        left: header.remaining - prefix,
      };
    }
    const skipping = this.#skipping;
    skipping.left -= queue.skip(skipping.left);
    if (skipping.left > 0) return undefined;
    this.#skipping = undefined;
    this.#header = undefined;
    const { topic, qos, retain, packetId, size } = skipping;
    return { type: "oversize", topic, qos, retain, packetId, size };
  }
}

function checkHeader(header: FixedHeader, maxPacketBytes: number): void {
  const { type, flags, remaining } = header;
  const name = Object.entries(PacketType).find(([, value]) => value === type)?.[0] ??
    `type ${type}`;
  switch (type) {
    case PacketType.PUBLISH: {
      const qos = (flags >> 1) & 0x03;
      if (qos === 3) throw new PacketError("PUBLISH with QoS 3");
      if (qos === 0 && (flags & 0x08) !== 0) throw new PacketError("PUBLISH QoS 0 with DUP set");
      if (remaining < 3 + (qos > 0 ? 2 : 0)) throw new PacketError("PUBLISH too short");
      return; // size limit handled by skipping
    }
    case PacketType.PUBREL:
      if (flags !== 0x02) throw new PacketError("PUBREL with bad flags");
      break;
    case PacketType.CONNACK:
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBCOMP:
    case PacketType.SUBACK:
    case PacketType.UNSUBACK:
    case PacketType.PINGRESP:
      if (flags !== 0) throw new PacketError(`${name} with bad flags`);
      break;
    default:
      // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT and 0/15 never go to a client.
      throw new PacketError(`unexpected packet ${name}`);
  }
  const expected = type === PacketType.PINGRESP ? 0 : type === PacketType.SUBACK ? -1 : 2;
  if (expected >= 0 && remaining !== expected) {
    throw new PacketError(`${name} with remaining length ${remaining}`);
  }
  if (type === PacketType.SUBACK) {
    if (remaining < 3) throw new PacketError("SUBACK too short");
    if (header.size > maxPacketBytes) throw new PacketError("SUBACK exceeds maxPacketBytes");
  }
}

function readU16(bytes: Uint8Array, pos: number): number {
  return (bytes[pos] << 8) | bytes[pos + 1];
}

function readPacketId(bytes: Uint8Array, pos: number, what: string): number {
  const id = readU16(bytes, pos);
  if (id === 0) throw new PacketError(`${what} with packet id 0`);
  return id;
}

/** Topic (and packet id for QoS > 0) from the start of a PUBLISH body. */
function readPublishPrefix(
  bytes: Uint8Array,
  qos: 0 | 1 | 2,
): { topic: string; packetId: number; end: number } {
  const length = readU16(bytes, 0);
  const end = 2 + length + (qos > 0 ? 2 : 0);
  if (end > bytes.length) throw new PacketError("PUBLISH topic overruns the packet");
  if (length === 0) throw new PacketError("PUBLISH with an empty topic");
  const raw = bytes.subarray(2, 2 + length);
  if (raw.includes(0)) throw new PacketError("PUBLISH topic contains U+0000");
  const topic = decodeUtf8(raw, "PUBLISH topic");
  if (topic.includes("+") || topic.includes("#")) {
    throw new PacketError("PUBLISH topic contains a wildcard");
  }
  const packetId = qos > 0 ? readPacketId(bytes, 2 + length, "PUBLISH") : 0;
  return { topic, packetId, end };
}

function decodeBody(header: FixedHeader, body: Uint8Array): IncomingPacket {
  switch (header.type) {
    case PacketType.CONNACK: {
      if ((body[0] & 0xfe) !== 0) throw new PacketError("CONNACK with reserved flags set");
      return { type: "connack", sessionPresent: (body[0] & 0x01) !== 0, returnCode: body[1] };
    }
    case PacketType.PUBLISH: {
      const qos = ((header.flags >> 1) & 0x03) as 0 | 1 | 2;
      const { topic, packetId, end } = readPublishPrefix(body, qos);
      return {
        type: "publish",
        topic,
        payload: body.subarray(end),
        qos,
        retain: (header.flags & 0x01) !== 0,
        dup: (header.flags & 0x08) !== 0,
        packetId,
      };
    }
    case PacketType.SUBACK: {
      const packetId = readPacketId(body, 0, "SUBACK");
      const returnCodes = Array.from(body.subarray(2));
      for (const code of returnCodes) {
        if (code > 2 && code !== SUBACK_FAILURE) {
          throw new PacketError(`SUBACK with return code ${code}`);
        }
      }
      return { type: "suback", packetId, returnCodes };
    }
    case PacketType.PINGRESP:
      return { type: "pingresp" };
    default: {
      const type = ACK_TYPES[header.type];
      return { type, packetId: readPacketId(body, 0, type.toUpperCase()) };
    }
  }
}
