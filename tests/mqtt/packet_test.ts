/**
 * Unit tests of the MQTT 3.1.1 packet codec (lib/mqtt/packet.ts): exact bytes of what we send,
 * strict decoding of what a broker sends, varint bounds, and the bounded oversize skip.
 */

import assert from "node:assert/strict";
import {
  encodeAck,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePublish,
  encodeRemainingLength,
  encodeSubscribe,
  type IncomingPacket,
  MAX_REMAINING_LENGTH,
  PacketDecoder,
  PacketError,
  topicFilterBytes,
  topicNameBytes,
} from "../../lib/mqtt/packet.ts";

const ascii = (text: string) => Array.from(text, (c) => c.charCodeAt(0));

/** Deterministic PRNG (mulberry32) so chunk splits are random-looking but reproducible. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function decodeAll(decoder: PacketDecoder, bytes: Uint8Array, chunkSizes: () => number) {
  const packets: IncomingPacket[] = [];
  for (let offset = 0; offset < bytes.length;) {
    const size = Math.max(1, Math.min(chunkSizes(), bytes.length - offset));
    decoder.push(bytes.slice(offset, offset + size));
    offset += size;
    for (let p = decoder.next(); p !== undefined; p = decoder.next()) packets.push(p);
  }
  return packets;
}

function decodeOne(bytes: number[], max = 1024): IncomingPacket | undefined {
  const decoder = new PacketDecoder(max);
  decoder.push(new Uint8Array(bytes));
  return decoder.next();
}

function assertMalformed(bytes: number[], pattern: RegExp, max = 1024): void {
  assert.throws(() => decodeOne(bytes, max), (error: unknown) => {
    assert.ok(error instanceof PacketError, `expected PacketError, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("remaining length: varint boundaries encode to 1-4 bytes", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [321, [0xc1, 0x02]],
    [16_383, [0xff, 0x7f]],
    [16_384, [0x80, 0x80, 0x01]],
    [2_097_151, [0xff, 0xff, 0x7f]],
    [2_097_152, [0x80, 0x80, 0x80, 0x01]],
    [MAX_REMAINING_LENGTH, [0xff, 0xff, 0xff, 0x7f]],
  ];
  for (const [value, bytes] of cases) {
    assert.deepEqual(Array.from(encodeRemainingLength(value)), bytes, `value ${value}`);
  }
  assert.throws(() => encodeRemainingLength(MAX_REMAINING_LENGTH + 1), RangeError);
  assert.throws(() => encodeRemainingLength(-1), RangeError);
  assert.throws(() => encodeRemainingLength(1.5), RangeError);
});

Deno.test("remaining length: decoder accepts every boundary, split at every byte", () => {
  for (const payloadLength of [0, 120, 121, 122, 16_370, 16_380, 16_381, 2_097_150]) {
    const packet = encodePublish({ topic: "t/x", payload: new Uint8Array(payloadLength), qos: 0 });
    const decoder = new PacketDecoder(4 * 1024 * 1024);
    // Header bytes one at a time, then the rest in one go.
    const [p] = decodeAll(
      decoder,
      packet,
      (() => {
        let calls = 0;
        return () => (calls++ < 6 ? 1 : packet.length);
      })(),
    );
    assert.equal(p?.type, "publish");
    assert.equal(p.type === "publish" && p.payload.length, payloadLength);
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("remaining length: more than 4 bytes or non-minimal is malformed", () => {
  assertMalformed([0x30, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 4 bytes/);
  assertMalformed([0x30, 0x80, 0x80, 0x80, 0x80], /longer than 4 bytes/);
  assertMalformed([0xd0, 0x80, 0x00], /non-minimal/);
  // Incomplete varint: wait for more bytes, no error.
  assert.equal(decodeOne([0x30, 0xff, 0xff]), undefined);
});

Deno.test("CONNECT: exact bytes without and with credentials", () => {
  assert.deepEqual(Array.from(encodeConnect({ clientId: "c1", keepAliveSeconds: 30 })), [
    0x10,
    14,
    ...[0, 4, ...ascii("MQTT"), 4, 0x02, 0, 30],
    ...[0, 2, ...ascii("c1")],
  ]);
  assert.deepEqual(
    Array.from(
      encodeConnect({ clientId: "", keepAliveSeconds: 300, username: "u", password: "pw" }),
    ),
    [
      0x10,
      19,
      ...[0, 4, ...ascii("MQTT"), 4, 0xc2, 0x01, 0x2c],
      ...[0, 0],
      ...[0, 1, ...ascii("u")],
      ...[0, 2, ...ascii("pw")],
    ],
  );
  assert.throws(
    () => encodeConnect({ clientId: "c", keepAliveSeconds: 1, password: "x" }),
    /requires a user name/,
  );
  assert.throws(() => encodeConnect({ clientId: "c", keepAliveSeconds: 65536 }), /keepalive/);
  assert.throws(() => encodeConnect({ clientId: "a\u0000", keepAliveSeconds: 1 }), /control/);
});

Deno.test("SUBSCRIBE: one packet for all filters, flags 0010", () => {
  assert.deepEqual(Array.from(encodeSubscribe(0x0102, ["a/b", "c"], 1)), [
    0x82,
    2 + 6 + 4,
    0x01,
    0x02,
    ...[0, 3, ...ascii("a/b"), 1],
    ...[0, 1, ...ascii("c"), 1],
  ]);
  assert.throws(() => encodeSubscribe(1, [], 1), /at least one topic/);
  assert.throws(() => encodeSubscribe(0, ["a"], 1), /packet id/);
  assert.throws(() => encodeSubscribe(65536, ["a"], 1), /packet id/);
});

Deno.test("PUBLISH: exact bytes for QoS 0 and QoS 1 + retain", () => {
  assert.deepEqual(
    Array.from(encodePublish({ topic: "t", payload: new Uint8Array([0, 255]), qos: 0 })),
    [0x30, 5, 0, 1, ...ascii("t"), 0, 255],
  );
  assert.deepEqual(
    Array.from(
      encodePublish({
        topic: "t",
        payload: new Uint8Array([7]),
        qos: 1,
        retain: true,
        packetId: 9,
      }),
    ),
    [0x33, 6, 0, 1, ...ascii("t"), 0, 9, 7],
  );
  // DUP is never set on QoS 0.
  assert.equal(
    encodePublish({ topic: "t", payload: new Uint8Array(), qos: 0, dup: true })[0],
    0x30,
  );
  assert.throws(
    () => encodePublish({ topic: "t", payload: new Uint8Array(), qos: 1 }),
    /packet id/,
  );
});

Deno.test("acks, PINGREQ, DISCONNECT: exact bytes", () => {
  assert.deepEqual(Array.from(encodeAck("puback", 0x1234)), [0x40, 2, 0x12, 0x34]);
  assert.deepEqual(Array.from(encodeAck("pubrec", 1)), [0x50, 2, 0, 1]);
  assert.deepEqual(Array.from(encodeAck("pubrel", 1)), [0x62, 2, 0, 1]);
  assert.deepEqual(Array.from(encodeAck("pubcomp", 65535)), [0x70, 2, 0xff, 0xff]);
  assert.deepEqual(Array.from(encodePingreq()), [0xc0, 0]);
  assert.deepEqual(Array.from(encodeDisconnect()), [0xe0, 0]);
});

Deno.test("topic names: wildcards, empty, NUL, controls, lone surrogates, length", () => {
  assert.deepEqual(Array.from(topicNameBytes("né/x")), [0x6e, 0xc3, 0xa9, 0x2f, 0x78]);
  for (const bad of ["", "a/+", "a/#", "a\u0000b", "a\nb", "a\u0085b", "a\ud800b"]) {
    assert.throws(() => topicNameBytes(bad), RangeError, JSON.stringify(bad));
  }
  topicNameBytes("x".repeat(65535));
  assert.throws(() => topicNameBytes("x".repeat(65536)), /65535 bytes/);
  assert.throws(() => topicNameBytes("é".repeat(40000)), /65535 bytes/);
});

Deno.test("topic filters: + and # only as whole levels, # last", () => {
  for (const good of ["#", "a/#", "+", "+/b/+", "a//b", "/"]) topicFilterBytes(good);
  for (const bad of ["", "a#", "a/#/b", "#/a", "a+", "a/b+/c", "a\u0000"]) {
    assert.throws(() => topicFilterBytes(bad), RangeError, JSON.stringify(bad));
  }
});

Deno.test("decoder: CONNACK, SUBACK, acks, PINGRESP", () => {
  assert.deepEqual(decodeOne([0x20, 2, 0, 0]), {
    type: "connack",
    sessionPresent: false,
    returnCode: 0,
  });
  assert.deepEqual(decodeOne([0x20, 2, 1, 5]), {
    type: "connack",
    sessionPresent: true,
    returnCode: 5,
  });
  assert.deepEqual(decodeOne([0x90, 5, 0, 7, 1, 0x80, 0]), {
    type: "suback",
    packetId: 7,
    returnCodes: [1, 0x80, 0],
  });
  assert.deepEqual(decodeOne([0x40, 2, 1, 0]), { type: "puback", packetId: 256 });
  assert.deepEqual(decodeOne([0x50, 2, 0, 1]), { type: "pubrec", packetId: 1 });
  assert.deepEqual(decodeOne([0x62, 2, 0, 1]), { type: "pubrel", packetId: 1 });
  assert.deepEqual(decodeOne([0x70, 2, 0, 1]), { type: "pubcomp", packetId: 1 });
  assert.deepEqual(decodeOne([0xb0, 2, 0, 1]), { type: "unsuback", packetId: 1 });
  assert.deepEqual(decodeOne([0xd0, 0]), { type: "pingresp" });
  // Incomplete: nothing yet, no error.
  assert.equal(decodeOne([0x20, 2, 0]), undefined);
  assert.equal(decodeOne([0x20]), undefined);
});

Deno.test("decoder: malformed fixed-size packets and wrong flags", () => {
  assertMalformed([0x20, 3, 0, 0, 0], /CONNACK with remaining length 3/);
  assertMalformed([0x20, 2, 2, 0], /reserved flags/);
  assertMalformed([0x21, 2, 0, 0], /CONNACK with bad flags/);
  assertMalformed([0x40, 2, 0, 0], /packet id 0/);
  assertMalformed([0x40, 1, 0], /PUBACK with remaining length 1/);
  assertMalformed([0x60, 2, 0, 1], /PUBREL with bad flags/);
  assertMalformed([0xd0, 1, 0], /PINGRESP with remaining length 1/);
  assertMalformed([0x90, 2, 0, 1], /SUBACK too short/);
  assertMalformed([0x90, 3, 0, 1, 3], /SUBACK with return code 3/);
  for (const first of [0x00, 0x10, 0x82, 0xa2, 0xc0, 0xe0, 0xf0]) {
    assertMalformed([first, 0], /unexpected packet/);
  }
});

Deno.test("decoder: PUBLISH fields, and malformed PUBLISH", () => {
  const packet = decodeOne([0x3d, 8, 0, 3, ...ascii("a/b"), 0, 42, 0xaa]);
  assert.deepEqual(packet, {
    type: "publish",
    topic: "a/b",
    payload: new Uint8Array([0xaa]),
    qos: 2,
    retain: true,
    dup: true,
    packetId: 42,
  });
  // A BOM is part of the topic, not stripped.
  const bom = decodeOne([0x30, 6, 0, 4, 0xef, 0xbb, 0xbf, 0x78]);
  assert.equal(bom?.type === "publish" && bom.topic, "\ufeffx");
  assertMalformed([0x36, 5, 0, 1, 0x61, 0, 1], /QoS 3/);
  assertMalformed([0x38, 3, 0, 1, 0x61], /QoS 0 with DUP/);
  assertMalformed([0x30, 3, 0, 1, 0xff], /not valid UTF-8/);
  assertMalformed([0x30, 5, 0, 3, 0xed, 0xa0, 0x80], /not valid UTF-8/); // encoded surrogate
  assertMalformed([0x30, 5, 0, 3, 0x61, 0x00, 0x62], /U\+0000/);
  assertMalformed([0x30, 3, 0, 1, 0x23], /wildcard/);
  assertMalformed([0x30, 4, 0, 0, 1, 2], /empty topic/);
  assertMalformed([0x30, 4, 0, 9, 0x61, 0x62], /overruns/);
  assertMalformed([0x32, 4, 0, 1, 0x61, 0], /too short/);
  assertMalformed([0x32, 5, 0, 1, 0x61, 0, 0], /packet id 0/);
});

Deno.test("decoder: random splits of a packet stream give the same packets", () => {
  const random = prng(1);
  const payloads = [0, 1, 200, 70_000, 5, 131_072].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff)
  );
  const stream = concat(
    new Uint8Array([0x20, 2, 0, 0]),
    ...payloads.map((payload, i) =>
      encodePublish({ topic: `t/${i}`, payload, qos: i % 2 === 0 ? 0 : 1, packetId: i + 1 })
    ),
    new Uint8Array([0xd0, 0, 0x90, 3, 0, 1, 1]),
  );
  for (const maxChunk of [1, 7, 1000, 65_536, stream.length]) {
    const decoder = new PacketDecoder(1024 * 1024);
    const packets = decodeAll(decoder, stream, () => 1 + Math.floor(random() * maxChunk));
    assert.deepEqual(
      packets.map((p) => p.type),
      ["connack", ...payloads.map(() => "publish"), "pingresp", "suback"],
    );
    packets.slice(1, -2).forEach((p, i) => {
      assert.ok(p.type === "publish");
      assert.equal(p.topic, `t/${i}`);
      assert.equal(p.qos, i % 2 === 0 ? 0 : 1);
      assert.deepEqual(p.payload, payloads[i]);
    });
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("decoder: oversize PUBLISH is skipped as it streams, never buffered", () => {
  const max = 1000;
  const big = encodePublish({
    topic: "big/one",
    payload: new Uint8Array(200_000).fill(7),
    qos: 1,
    packetId: 77,
    retain: true,
  });
  const after = encodePublish({ topic: "small", payload: new Uint8Array([1, 2]), qos: 0 });
  const stream = concat(big, after);
  const decoder = new PacketDecoder(max);
  const packets: IncomingPacket[] = [];
  let maxBuffered = 0;
  for (let offset = 0; offset < stream.length; offset += 4096) {
    decoder.push(stream.slice(offset, offset + 4096));
    maxBuffered = Math.max(maxBuffered, decoder.buffered);
    for (let p = decoder.next(); p !== undefined; p = decoder.next()) packets.push(p);
    // After each next() drain, only the incomplete tail may remain: never the big payload.
    assert.ok(decoder.buffered < max, `buffered ${decoder.buffered}`);
  }
  assert.ok(maxBuffered <= 4096);
  assert.deepEqual(packets[0], {
    type: "oversize",
    topic: "big/one",
    qos: 1,
    retain: true,
    packetId: 77,
    size: big.length,
  });
  assert.equal(packets[1].type, "publish");
  assert.equal(packets.length, 2);
});

Deno.test("decoder: a packet exactly at the limit is delivered, one byte over is skipped", () => {
  const atLimit = encodePublish({ topic: "t", payload: new Uint8Array(95), qos: 0 });
  assert.equal(atLimit.length, 100);
  assert.equal(decodeOne(Array.from(atLimit), 100)?.type, "publish");
  assert.equal(decodeOne(Array.from(atLimit), 99)?.type, "oversize");
});

Deno.test("decoder: oversize topic prefix is still validated; big SUBACK is an error", () => {
  const bad = [0x30, 0x80, 0x08, 0, 1, 0x23, ...new Array(1021).fill(0)];
  assertMalformed(bad, /wildcard/, 100);
  const suback = [0x90, 0x82, 0x01, 0, 1, ...new Array(128).fill(1)];
  assertMalformed(suback, /SUBACK exceeds maxPacketBytes/, 100);
  assert.throws(() => new PacketDecoder(1), RangeError);
});
