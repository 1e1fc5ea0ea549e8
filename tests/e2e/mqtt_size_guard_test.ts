/**
 * lib/mqtt_size_guard.ts end to end: MQTT.js with the guard in its stream builder against a
 * hostile broker that announces 256 MiB, over TCP and WebSocket; then a responder process (the
 * `responder` task) against that broker, its resident memory sampled: it stays near where it
 * was, and the responder reconnects.
 */

import assert from "node:assert/strict";
import mqtt, { MqttClient } from "mqtt";
import { streamBuilder as webSocketStreamBuilder } from "mqtt/lib/connect/ws";

import { Buffer } from "node:buffer";
import { createConnection } from "node:net";

import { guardPacketSize } from "../../lib/mqtt_size_guard.ts";
import { MAX_PAYLOAD_BYTES } from "../../lib/protocol/limits.ts";
import { residentBytes, sampleResident } from "../../support/flood.ts";
import {
  type HostileBroker,
  MAX_REMAINING_LENGTH,
  startHostileBroker,
  varint,
} from "../../support/hostile_broker.ts";
import { spawnTask } from "../../support/processes.ts";

const MiB = 1024 * 1024;

async function announcing256MiB(webSocket = false): Promise<{
  broker: HostileBroker;
  written: Promise<number>;
}> {
  const written = Promise.withResolvers<number>();
  const broker = await startHostileBroker({
    webSocket,
    script: async (c, index) => {
      await c.connect();
      c.connack(0);
      c.serve();
      if (index === 0) {
        written.resolve(c.streamPublish("alice/reverse/request", MAX_REMAINING_LENGTH));
      }
    },
  });
  return { broker, written: written.promise };
}

for (const transport of ["tcp", "ws"] as const) {
  for (const version of [4, 5] as const) {
    Deno.test(`MQTT.js ${version} over ${transport} with the guard: 256 MiB announced, refused at its header`, async () => {
      const { broker, written } = await announcing256MiB(transport === "ws");
      await using _broker = broker;
      const limit = MAX_PAYLOAD_BYTES + 64 * 1024;
      const options = {
        protocol: transport === "ws" ? "ws" as const : "mqtt" as const,
        host: broker.host,
        port: transport === "ws" ? broker.webSocketPort! : broker.port,
        path: "/mqtt",
        protocolVersion: version,
        reconnectPeriod: 0,
        socksProxy: "",
      };
      const client = new MqttClient(
        (c) =>
          guardPacketSize(
            transport === "ws"
              ? webSocketStreamBuilder(c, options)
              : createConnection({ host: broker.host, port: broker.port }),
            limit,
          ),
        options,
      );
      const error = new Promise<Error & { code?: unknown }>((resolve) =>
        client.on("error", resolve)
      );
      const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
      assert.equal((await error).code, "ERR_MQTT_PACKET_TOO_LARGE");
      await closed;
      // The broker could write what the kernel's buffers took before the hang-up, no more.
      assert.ok((await written) < 32 * MiB, `${await written} bytes written`);
      await client.endAsync(true);
    });
  }
}

Deno.test("without the guard, MQTT.js takes a 24 MiB packet whole (what the guard is for)", async () => {
  const written = Promise.withResolvers<number>();
  await using broker = await startHostileBroker({
    script: async (c) => {
      await c.connect();
      c.connack(0);
      c.serve();
      written.resolve(c.streamPublish("a/b", 24 * MiB));
    },
  });
  const client = mqtt.connect({
    host: broker.host,
    port: broker.port,
    reconnectPeriod: 0,
    socksProxy: "",
  });
  client.on("error", () => {});
  // QoS 0 PUBLISH: handed to handleMessage whole, 24 MiB in one buffer, unsubscribed as we are.
  const delivered = new Promise<number>((resolve) =>
    client.on("message", (_topic, payload) => resolve(payload.length))
  );
  assert.equal(await delivered, 24 * MiB - "a/b".length - 2);
  assert.equal(await written.promise, 1 + 4 + 24 * MiB);
  await client.endAsync(true);
});

/**
 * How a responder test's hostile broker sends its huge packet: streamed over TCP or WebSocket
 * (a 256 MiB claim, in 64 KiB writes), or over WebSocket as one message of 64 MiB (which the ws
 * library would buffer whole before MQTT.js saw a byte).
 */
const HUGE_PACKETS = [
  { version: 4, transport: "tcp", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 5, transport: "tcp", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 4, transport: "ws", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 5, transport: "ws", how: "one message", packetBytes: 64 * MiB },
] as const;

for (const { version, transport, how, packetBytes } of HUGE_PACKETS) {
  const name = `a responder process, MQTT ${version} over ${transport}: a ${
    packetBytes >> 20
  } MiB PUBLISH ${how} costs it no memory, and it reconnects`;
  Deno.test(name, async () => {
    let served = 0;
    const written = Promise.withResolvers<number>();
    await using broker = await startHostileBroker({
      webSocket: transport === "ws",
      script: async (c) => {
        const connect = await c.connect();
        // For MQTT 3.1.1, refuse MQTT 5 as a broker that does not speak it does.
        if (version === 4 && connect.protocolVersion === 5) return c.connack(132), c.close();
        c.connack(0);
        c.serve();
        if (served++ > 0) return;
        await c.next("subscribe");
        const topic = "alice/reverse/request";
        if (how === "streamed") return written.resolve(c.streamPublish(topic, packetBytes - 5));
        const packet = new Uint8Array(packetBytes);
        packet.set([0x30, ...varint(packetBytes - 5), 0, topic.length, ...Buffer.from(topic)]);
        c.write(packet); // one WebSocket message
        written.resolve(packetBytes);
      },
    });
    const where = transport === "ws"
      ? ["--url", `ws://${broker.host}:${broker.webSocketPort}/mqtt`]
      : ["--host", broker.host, "-p", `${broker.port}`];
    await using responder = spawnTask("responder", where);
    await responder.waitForLine(/subscribed to/);
    const before = residentBytes(responder.pid)!;
    const rss = sampleResident(responder.pid, 10);
    try {
      const line = await responder.waitForLine(/ failed: .*; reconnecting/);
      assert.match(
        line,
        how === "streamed"
          ? new RegExp(`the broker sent a PUBLISH of ${packetBytes} bytes, over our`)
          : /Max payload size exceeded/, // the ws library's words, at the frame's header
      );
      const from = responder.lines("stderr").indexOf(line);
      await responder.waitForLine(/subscribed to/, { from });
    } finally {
      rss.stop();
    }
    assert.ok(rss.samples.length > 0, "no memory samples");
    const grown = rss.peak - before;
    assert.ok(grown < 24 * MiB, `resident memory grew by ${(grown / MiB).toFixed(1)} MiB`);
    if (how === "streamed") assert.ok((await written.promise) < 32 * MiB);
    assert.equal(responder.exited, false);
  });
}
