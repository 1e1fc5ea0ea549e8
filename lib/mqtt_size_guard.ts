/**
 * A bound on the size of the MQTT packets a connection takes, applied before a packet is
 * buffered. MQTT.js reads every packet whole before anything looks at its size: its parser
 * (mqtt-packet) collects bytes until the packet's remaining length is there, and its
 * `maximumPacketSize` check (MQTT 5 only) runs on the parsed packet. So a broker that announces a
 * 256 MiB PUBLISH gets 256 MiB of our memory, at any protocol version.
 *
 * This module follows the packets of the broker's byte stream as it passes (the fixed header of
 * each: type byte, then the remaining length, a variable byte integer of at most 4 bytes) and
 * acts as soon as a packet's length is known:
 *
 * - a packet within the limit passes unchanged;
 * - a PUBLISH over it passes with its fixed and variable header (topic, packet id, properties)
 *   and, instead of its payload, a short marker ({@linkcode skippedPayloadBytes} reads it): the
 *   payload itself is counted past, never kept. MQTT.js then handles a small PUBLISH as any
 *   other (it acknowledges it), and its reader drops it as over the limit. A client that
 *   publishes too much through an MQTT 3.1.1 broker (which knows no maximum packet size) so
 *   costs the reader neither memory nor its connection;
 * - any other packet over the limit, or one whose length is not MQTT, ends the stream.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PacketSizeFilter, skippedPayloadBytes } from "./mqtt_size_guard.ts";
 * const filter = new PacketSizeFilter(1024, 4);
 * // PINGRESP, then a PUBLISH on "a/b" claiming 256 MiB (its first payload bytes with it).
 * const { pass, error } = filter.filter(
 *   Uint8Array.of(0xd0, 0x00, 0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x03, 0x61, 0x2f, 0x62, 1, 2),
 * );
 * assert.equal(error, undefined);
 * const bytes = new Uint8Array(pass.flatMap((piece) => [...piece]));
 * assert.deepEqual([...bytes.subarray(0, 2)], [0xd0, 0x00]); // the PINGRESP, as it was
 * const publish = bytes.subarray(2); // the PUBLISH, small now: its topic, and the marker
 * assert.deepEqual([...publish.subarray(2, 7)], [0x00, 0x03, 0x61, 0x2f, 0x62]);
 * assert.equal(skippedPayloadBytes(publish.subarray(7)), 268_435_455 - 5);
 * ```
 * @module
 */

import { Buffer } from "node:buffer";
import { createConnection, type NetConnectOpts } from "node:net";
import { Duplex } from "node:stream";

// Control packet types (MQTT 3.1.1 §2.2.1, MQTT 5 §2.1.2), by the high nibble of byte 1.
const PACKET_TYPES = [
  "reserved",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "AUTH",
];
const PUBLISH = 3;

/**
 * The longest variable header of a PUBLISH over the limit that is kept to pass it on: a topic
 * of MQTT's largest (2 + 65,535 bytes), a packet id, and MQTT 5 properties of up to 64 KiB. A
 * longer one (properties of megabytes) is not worth reading: the packet ends the stream.
 */
const MAX_KEPT_HEADER_BYTES = 2 + 65_535 + 2 + 4 + 65_536;

/**
 * What stands in for the payload of a PUBLISH over the limit: these bytes, then the number of
 * payload bytes skipped, in decimal. It starts with a NUL, which neither a PEM key nor a Fernet
 * token does. A broker can send it as a payload of its own: that only makes the reader drop a
 * message, which a broker can always do.
 */
const SKIPPED_MARK = new TextEncoder().encode("\0mqtt_size_guard: payload skipped, bytes: ");

/**
 * The number of payload bytes skipped, when `payload` is what {@linkcode PacketSizeFilter} put
 * in the place of the payload of a PUBLISH over the limit; `undefined` for any other payload.
 */
export function skippedPayloadBytes(payload: Uint8Array): number | undefined {
  if (payload.length <= SKIPPED_MARK.length || payload.length > SKIPPED_MARK.length + 10) {
    return undefined;
  }
  for (let i = 0; i < SKIPPED_MARK.length; i++) {
    if (payload[i] !== SKIPPED_MARK[i]) return undefined;
  }
  const digits = new TextDecoder().decode(payload.subarray(SKIPPED_MARK.length));
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

/**
 * A packet over the limit that is not a PUBLISH (or a PUBLISH whose header alone is too long to
 * keep). `code` is a string, as socket errors have, so that MQTT.js reports it as an "error" (it
 * passes on stream errors that have a code) and the connection counts as lost.
 */
export class MqttPacketTooLarge extends Error {
  override name = "MqttPacketTooLarge";
  readonly code = "ERR_MQTT_PACKET_TOO_LARGE";
  constructor(
    /** The packet's type, e.g. "SUBACK". */
    readonly packetType: string,
    /** Its whole size as its header states it: fixed header and remaining length. */
    readonly packetBytes: number,
    readonly limit: number,
  ) {
    super(`the broker sent a ${packetType} of ${packetBytes} bytes, over our ${limit}-byte limit`);
  }
}

/**
 * A remaining length of more than 4 bytes (§1.5.5), or a PUBLISH over the limit whose variable
 * header does not fit in its remaining length: not MQTT, and nothing to pass on.
 */
export class MqttMalformedLength extends Error {
  override name = "MqttMalformedLength";
  readonly code = "ERR_MQTT_MALFORMED_LENGTH";
  constructor(readonly packetType: string) {
    super(`the broker sent a ${packetType} whose lengths are not valid MQTT`);
  }
}

/** What {@linkcode PacketSizeFilter.filter} makes of some bytes. */
export interface Filtered {
  /** The bytes to pass on, in order: pieces of the input where it passes unchanged. */
  pass: Buffer[];
  /** Set when the stream must end: what came before it is in `pass`. */
  error?: MqttPacketTooLarge | MqttMalformedLength;
}

const HEADER = 0; // the next byte is a packet's first
const LENGTH = 1; // within the remaining length
const BODY = 2; // within a packet that passes
const KEEP = 3; // within the variable header of a PUBLISH over the limit
const SKIP = 4; // within the payload of a PUBLISH over the limit

/**
 * Follows the packet boundaries of the broker's side of an MQTT connection, fed its bytes in
 * order and in chunks of any size, and says what to pass on (see the module's comment). It
 * copies only the fixed header of a packet split across chunks and the variable header of a
 * PUBLISH over the limit; everything else passes as pieces of the input.
 */
export class PacketSizeFilter {
  /** Packets whose fixed header has been read so far. */
  packets = 0;
  /** PUBLISH packets over the limit passed on without their payload so far. */
  skipped = 0;
  /** Bytes of their payloads counted past so far. */
  skippedBytes = 0;
  readonly #v5: boolean;
  #state = HEADER;
  #head: number[] = []; // the packet's fixed header, while its length is being read
  #length = 0; // its remaining length
  #bodyLeft = 0;
  #kept: number[] = []; // the variable header of a PUBLISH over the limit
  #failed: MqttPacketTooLarge | MqttMalformedLength | undefined;

  /**
   * `maxPacketBytes`: the largest packet passed whole, fixed header included (as MQTT 5 counts
   * it). `protocolVersion`: the version the connection speaks (MQTT 5 PUBLISH packets carry
   * properties).
   */
  constructor(readonly maxPacketBytes: number, protocolVersion: 3 | 4 | 5) {
    if (!(Number.isInteger(maxPacketBytes) && maxPacketBytes >= 2)) {
      throw new RangeError(`invalid maximum packet size ${maxPacketBytes}`);
    }
    this.#v5 = protocolVersion === 5;
  }

  /**
   * Takes the next bytes of the stream; returns what to pass on, and the error of the first
   * packet that ends the stream (the same error, and nothing to pass, for every later call).
   */
  filter(input: Uint8Array): Filtered {
    if (this.#failed) return { pass: [], error: this.#failed };
    const bytes = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const pass: Buffer[] = [];
    let run = 0; // where the bytes passed unchanged start
    const cut = (end: number) => {
      if (end > run) pass.push(bytes.subarray(run, end));
      run = Math.max(run, end);
    };
    // Where the fixed header being read started in this chunk (-1: in an earlier one).
    let headStart = -1;
    let i = 0;
    while (i < bytes.length) {
      if (this.#state === BODY || this.#state === SKIP) {
        const skip = Math.min(this.#bodyLeft, bytes.length - i);
        if (this.#state === SKIP) this.skippedBytes += skip;
        i += skip;
        this.#bodyLeft -= skip;
        if (this.#state === SKIP) run = i;
        if (this.#bodyLeft === 0) this.#state = HEADER;
      } else if (this.#state === HEADER) {
        headStart = i;
        this.#head = [bytes[i++]];
        this.#length = 0;
        this.#state = LENGTH;
      } else if (this.#state === LENGTH) {
        const byte = bytes[i++];
        this.#length += (byte & 0x7f) * 128 ** (this.#head.length - 1);
        this.#head.push(byte);
        if (byte & 0x80) {
          if (this.#head.length < 5) continue;
          cut(headStart < 0 ? run : headStart);
          return this.#fail(pass, new MqttMalformedLength(this.#type));
        }
        this.packets++;
        const size = this.#head.length + this.#length;
        if (size <= this.maxPacketBytes) {
          if (headStart < 0) {
            // Its first bytes came in an earlier chunk and were held back: they go first now.
            pass.push(Buffer.from(this.#head));
            run = i;
          }
          this.#bodyLeft = this.#length;
          this.#state = this.#length === 0 ? HEADER : BODY;
          continue;
        }
        cut(headStart < 0 ? run : headStart);
        run = bytes.length; // nothing of this packet passes as it is
        if (this.#head[0] >> 4 !== PUBLISH) {
          return this.#fail(pass, new MqttPacketTooLarge(this.#type, size, this.maxPacketBytes));
        }
        this.#kept = [];
        this.#state = KEEP;
      } else {
        // KEEP: what it reads is kept, not passed; it passes the PUBLISH that stands for it.
        const at = this.#keep(bytes, i, pass);
        if (typeof at !== "number") return this.#fail(pass, at);
        i = run = at;
      }
    }
    // A fixed header not complete yet is held back (in #head) until its length is known.
    cut(this.#state === LENGTH ? (headStart < 0 ? run : headStart) : bytes.length);
    return { pass };
  }

  /** The packet type being read, by name. */
  get #type(): string {
    return PACKET_TYPES[this.#head[0] >> 4];
  }

  /**
   * Within the variable header of a PUBLISH over the limit: keeps its bytes from `bytes[i]` on,
   * and once it is whole puts the small PUBLISH that stands for the packet in `pass`. Returns
   * where it stopped reading, or why the packet cannot be passed on.
   */
  #keep(
    bytes: Buffer,
    i: number,
    pass: Buffer[],
  ): number | MqttPacketTooLarge | MqttMalformedLength {
    const kept = this.#kept;
    for (;;) {
      const needed = this.#headerBytesNeeded();
      if (needed === undefined || needed > this.#length) return new MqttMalformedLength("PUBLISH");
      if (needed > MAX_KEPT_HEADER_BYTES) {
        return new MqttPacketTooLarge(
          "PUBLISH",
          this.#head.length + this.#length,
          this.maxPacketBytes,
        );
      }
      if (kept.length >= needed) break;
      if (i === bytes.length) return i;
      const end = Math.min(bytes.length, i + needed - kept.length);
      for (; i < end; i++) kept.push(bytes[i]);
    }
    this.#bodyLeft = this.#length - kept.length;
    this.#state = this.#bodyLeft === 0 ? HEADER : SKIP;
    this.skipped++;
    const mark = [...SKIPPED_MARK, ...new TextEncoder().encode(String(this.#bodyLeft))];
    const remaining = variableByteInteger(kept.length + mark.length);
    pass.push(Buffer.from([this.#head[0], ...remaining, ...kept, ...mark]));
    return i;
  }

  /**
   * How long the variable header kept so far says it is, as far as it says yet (a lower bound
   * until it is whole): the topic and its length, the packet id at QoS 1 and 2, at MQTT 5 the
   * properties and their length. `undefined` for a property length that is not MQTT.
   */
  #headerBytesNeeded(): number | undefined {
    const kept = this.#kept;
    if (kept.length < 2) return 2;
    const qos = (this.#head[0] >> 1) & 0x03;
    const topicEnd = 2 + ((kept[0] << 8) | kept[1]) + (qos > 0 ? 2 : 0);
    if (!this.#v5) return topicEnd;
    let length = 0;
    for (let j = 0; j < 4; j++) {
      if (kept.length <= topicEnd + j) return topicEnd + j + 1;
      const byte = kept[topicEnd + j];
      length += (byte & 0x7f) * 128 ** j;
      if ((byte & 0x80) === 0) return topicEnd + j + 1 + length;
    }
    return undefined;
  }

  #fail(pass: Buffer[], error: MqttPacketTooLarge | MqttMalformedLength): Filtered {
    this.#failed = error;
    return { pass, error };
  }
}

/** MQTT's variable byte integer (§1.5.5): 7 bits a byte, low first, high bit "more follows". */
function variableByteInteger(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/**
 * How many skipped bytes between two collections of young garbage. What is skipped still arrives
 * in buffers of the runtime's making (over TLS, over WebSocket), freed only when the garbage
 * collector runs, and nothing else about a stream of bytes makes it run: 256 MiB skipped over TLS
 * raised the resident memory by 250 MiB, and by 34 MiB with a collection every 4 MiB.
 */
const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * A minor collection (a scavenge, about a millisecond), where the runtime offers one: Deno with
 * `--v8-flags=--expose-gc`, as the responder task and binary run. Elsewhere, nothing.
 */
function collectYoungGarbage(): void {
  (globalThis as { gc?: (options: { type: "minor" }) => void }).gc?.({ type: "minor" });
}

/**
 * The stream MQTT.js reads and writes instead of the connection's own: what the broker sends
 * comes through a {@linkcode PacketSizeFilter}, what MQTT.js writes goes straight to the
 * connection. Closing either side closes the other.
 */
class GuardedStream extends Duplex {
  readonly #inner: Duplex;
  readonly #filter: PacketSizeFilter;
  #collectedAt = 0; // skipped bytes at the last collection

  /**
   * `fed`: the connection's bytes come by {@linkcode feed} (a socket reading into a buffer of
   * its own), not as its "data" events.
   */
  constructor(inner: Duplex, filter: PacketSizeFilter, fed = false) {
    super({ allowHalfOpen: false });
    this.#inner = inner;
    this.#filter = filter;
    if (!fed) inner.on("data", (chunk: Uint8Array) => this.feed(chunk, false));
    inner.on("end", () => this.push(null));
    inner.on("error", (error) => this.destroy(error));
    inner.on("close", () => this.destroy());
    // What a socket says of itself: MQTT.js and its callers may listen for it on the stream.
    for (const event of ["connect", "secureConnect"]) {
      inner.on(event, (...args: unknown[]) => this.emit(event, ...args));
    }
  }

  /**
   * The connection's next bytes; `copy` when `bytes` will be reused once this returns. Returns
   * false when the reader wants no more for now (the connection is then paused).
   */
  feed(bytes: Uint8Array, copy: boolean): boolean {
    if (this.destroyed) return false;
    const { pass, error } = this.#filter.filter(bytes);
    let room = true;
    for (const piece of pass) room = this.push(copy ? Buffer.from(piece) : piece);
    if (error) {
      this.destroy(error);
      return false;
    }
    if (this.#filter.skippedBytes - this.#collectedAt >= COLLECT_EVERY_BYTES) {
      this.#collectedAt = this.#filter.skippedBytes;
      collectYoungGarbage();
    }
    if (!room) this.#inner.pause();
    return room;
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Uint8Array, encoding: BufferEncoding, done: (e?: Error) => void): void {
    if (this.#inner.write(chunk, encoding)) return done();
    this.#inner.once("drain", () => done());
  }

  // mqtt-packet writes a packet in pieces between cork() and uncork(): they reach the socket
  // together, as one write, as they would without this stream between.
  override _writev(
    chunks: { chunk: Uint8Array; encoding: BufferEncoding }[],
    done: (e?: Error) => void,
  ): void {
    const inner = this.#inner;
    inner.cork();
    let room = true;
    for (const { chunk, encoding } of chunks) room = inner.write(chunk, encoding);
    inner.uncork();
    if (room) return done();
    inner.once("drain", () => done());
  }

  override _final(done: (e?: Error) => void): void {
    this.#inner.end(() => done());
  }

  override _destroy(error: Error | null, done: (e: Error | null) => void): void {
    this.#inner.destroy();
    done(error);
  }

  /** Passed on to a TCP or TLS socket (Nagle's algorithm); a WebSocket stream has none. */
  setNoDelay(noDelay?: boolean): this {
    (this.#inner as { setNoDelay?: (noDelay?: boolean) => void }).setNoDelay?.(noDelay);
    return this;
  }
}

/**
 * `stream` (the connection to the broker) behind a {@linkcode PacketSizeFilter}: the stream to
 * hand to MQTT.js instead. A packet the filter refuses destroys it with the filter's error;
 * what came before still reaches the reader.
 *
 * Call it in the stream builder given to MQTT.js (`new MqttClient(builder, options)`), before
 * a byte can arrive.
 */
export function guardPacketSize(
  stream: Duplex,
  maxPacketBytes: number,
  protocolVersion: 3 | 4 | 5,
): Duplex {
  return new GuardedStream(stream, new PacketSizeFilter(maxPacketBytes, protocolVersion));
}

/**
 * A TCP connection to `host`:`port` behind a {@linkcode PacketSizeFilter}, as
 * {@linkcode guardPacketSize} makes one, that reads into one buffer of its own: what the filter
 * skips is never allocated at all. (A socket's "data" events bring a new buffer for every read,
 * which the garbage collector takes back only later: a stream of 256 MiB skipped that way
 * raises the resident memory by a few hundred MB for a while.) What passes is copied out.
 */
export function guardedTcpConnection(
  options: { host: string; port: number },
  maxPacketBytes: number,
  protocolVersion: 3 | 4 | 5,
): Duplex {
  const socket = createConnection({
    ...options,
    onread: {
      buffer: Buffer.alloc(64 * 1024),
      // Called only once the socket reads, after `stream` below exists.
      callback: (bytes: number, buffer: Uint8Array) => stream.feed(buffer.subarray(0, bytes), true),
    },
  } as NetConnectOpts);
  const stream = new GuardedStream(
    socket,
    new PacketSizeFilter(maxPacketBytes, protocolVersion),
    true,
  );
  return stream;
}
