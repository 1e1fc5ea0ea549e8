/**
 * A bound on the size of the MQTT packets a connection takes, checked before a packet is
 * buffered. MQTT.js reads every packet whole before anything looks at its size: its parser
 * (mqtt-packet) collects bytes until the packet's remaining length is there, and its
 * `maximumPacketSize` check (MQTT 5 only) runs on the parsed packet. So a broker that announces a
 * 256 MiB PUBLISH gets 256 MiB of our memory, at any protocol version. This module reads the
 * fixed header of each packet as the bytes stream past (type byte, then the remaining length,
 * a variable byte integer of at most 4 bytes) and refuses a packet over the limit as soon as its
 * length is known, having kept nothing of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MqttPacketTooLarge, PacketSizeScanner } from "./mqtt_size_guard.ts";
 * const scanner = new PacketSizeScanner(1024);
 * assert.equal(scanner.scan(Uint8Array.of(0xd0, 0x00)), undefined); // PINGRESP
 * const error = scanner.scan(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0x7f)); // PUBLISH, 256 MiB
 * assert.ok(error instanceof MqttPacketTooLarge);
 * assert.equal(error.packetBytes, 1 + 4 + 268_435_455);
 * ```
 * @module
 */

import type { Duplex } from "node:stream";

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

/**
 * A packet over the limit. `code` is a string, as socket errors have, so that MQTT.js reports it
 * as an "error" (it passes on stream errors that have a code) and the connection counts as lost.
 */
export class MqttPacketTooLarge extends Error {
  override name = "MqttPacketTooLarge";
  readonly code = "ERR_MQTT_PACKET_TOO_LARGE";
  constructor(
    /** The packet's type, e.g. "PUBLISH". */
    readonly packetType: string,
    /** Its whole size as its header states it: fixed header and remaining length. */
    readonly packetBytes: number,
    readonly limit: number,
  ) {
    super(`the broker sent a ${packetType} of ${packetBytes} bytes, over our ${limit}-byte limit`);
  }
}

/** A remaining length of more than 4 bytes: not MQTT (§1.5.5), and no length to check. */
export class MqttMalformedLength extends Error {
  override name = "MqttMalformedLength";
  readonly code = "ERR_MQTT_MALFORMED_LENGTH";
  constructor(readonly packetType: string) {
    super(`the broker sent a ${packetType} whose remaining length is not a valid MQTT length`);
  }
}

const HEADER = 0;
const LENGTH = 1;
const BODY = 2;

/**
 * Follows the packet boundaries of one direction of an MQTT connection, fed its bytes in order
 * and in chunks of any size. It keeps a few numbers, never bytes: a packet's body is skipped by
 * counting.
 */
export class PacketSizeScanner {
  /** Packets whose fixed header has been read so far. */
  packets = 0;
  #state = HEADER;
  #type = 0;
  #length = 0;
  #lengthBytes = 0;
  #bodyLeft = 0;
  #failed: MqttPacketTooLarge | MqttMalformedLength | undefined;

  /** `maxPacketBytes`: the largest packet taken, fixed header included (as MQTT 5 counts it). */
  constructor(readonly maxPacketBytes: number) {
    if (!(Number.isInteger(maxPacketBytes) && maxPacketBytes >= 2)) {
      throw new RangeError(`invalid maximum packet size ${maxPacketBytes}`);
    }
  }

  /**
   * Takes the next bytes of the stream. Returns the error of the first packet that breaks the
   * rules, as soon as its header shows it (and the same error for every later call), or
   * `undefined` while all is well.
   */
  scan(bytes: Uint8Array): MqttPacketTooLarge | MqttMalformedLength | undefined {
    if (this.#failed) return this.#failed;
    let i = 0;
    while (i < bytes.length) {
      if (this.#state === BODY) {
        const skip = Math.min(this.#bodyLeft, bytes.length - i);
        i += skip;
        this.#bodyLeft -= skip;
        if (this.#bodyLeft === 0) this.#state = HEADER;
      } else if (this.#state === HEADER) {
        this.#type = bytes[i++] >> 4;
        this.#length = 0;
        this.#lengthBytes = 0;
        this.#state = LENGTH;
      } else {
        const byte = bytes[i++];
        this.#length += (byte & 0x7f) * 128 ** this.#lengthBytes++;
        if (byte & 0x80) {
          if (this.#lengthBytes === 4) {
            return this.#failed = new MqttMalformedLength(PACKET_TYPES[this.#type]);
          }
          continue;
        }
        this.packets++;
        const size = 1 + this.#lengthBytes + this.#length;
        if (size > this.maxPacketBytes) {
          return this.#failed = new MqttPacketTooLarge(
            PACKET_TYPES[this.#type],
            size,
            this.maxPacketBytes,
          );
        }
        this.#bodyLeft = this.#length;
        this.#state = this.#length === 0 ? HEADER : BODY;
      }
    }
    return undefined;
  }
}

/**
 * Watches what `stream` delivers (the bytes from the broker) with a {@linkcode PacketSizeScanner}
 * and destroys the stream with its error at the first packet over `maxPacketBytes`: the reader
 * then has at most the chunk that held the packet's header, never the packet. Returns `stream`
 * itself, so that what the caller does with a socket (`setNoDelay`) still works.
 *
 * Call it in the stream builder given to MQTT.js (`new MqttClient(builder, options)`). Its
 * "data" listener is put first, so it sees each chunk before MQTT.js's parser does.
 */
export function guardPacketSize<S extends Duplex>(stream: S, maxPacketBytes: number): S {
  const scanner = new PacketSizeScanner(maxPacketBytes);
  const onData = (chunk: Uint8Array) => {
    const error = scanner.scan(chunk);
    if (error === undefined) return;
    stream.off("data", onData);
    stream.destroy(error);
  };
  stream.prependListener("data", onData);
  return stream;
}
