/**
 * lib/mqtt_size_guard.ts end to end: MQTT.js with the guard in its stream builder against a
 * hostile broker, over TCP and WebSocket: a PUBLISH over the limit arrives small and the
 * connection lives on, a SUBACK over it ends the connection at its header. Then a responder
 * process (the `responder` task) against a broker that streams a 256 MiB PUBLISH, at MQTT 3.1.1
 * and 5: its resident memory is sampled throughout, it keeps its connection, and it answers a
 * client's request right after.
 */

import assert from "node:assert/strict";
import mqtt, { MqttClient } from "mqtt";
import { streamBuilder as webSocketStreamBuilder } from "mqtt/lib/connect/ws";

import { Buffer } from "node:buffer";
import { type AddressInfo, createConnection } from "node:net";
import { createServer as createTlsServer } from "node:tls";

import { guardPacketSize, skippedPayloadBytes } from "../../lib/mqtt_size_guard.ts";
import { MAX_PAYLOAD_BYTES } from "../../lib/protocol/limits.ts";
import { residentBytes, sampleResident } from "../../support/flood.ts";
import {
  type HostileBroker,
  type HostileConnection,
  MAX_REMAINING_LENGTH,
  relayRequest,
  startHostileBroker,
  varint,
} from "../../support/hostile_broker.ts";
import { spawnTask } from "../../support/processes.ts";
import { makeTlsFixture, opensslSkipReason, type TlsFixture } from "../../support/tls.ts";

const MiB = 1024 * 1024;
const LIMIT = MAX_PAYLOAD_BYTES + 64 * 1024;

/** MQTT.js at `version` over `transport` to `broker`, the guard in its stream builder. */
function guardedClient(broker: HostileBroker, transport: "tcp" | "ws", version: 4 | 5) {
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
        LIMIT,
        version,
      ),
    options,
  );
  client.on("error", () => {});
  return client;
}

for (const transport of ["tcp", "ws"] as const) {
  for (const version of [4, 5] as const) {
    Deno.test(`MQTT.js ${version} over ${transport} with the guard: a 24 MiB PUBLISH arrives as its header, acknowledged; the connection lives on`, async () => {
      const written = Promise.withResolvers<number>();
      const connection = Promise.withResolvers<HostileConnection>();
      await using broker = await startHostileBroker({
        webSocket: transport === "ws",
        script: async (c) => {
          await c.connect();
          c.connack(0);
          c.serve();
          connection.resolve(c);
          await c.next("subscribe");
          // QoS 1, so that the client's PUBACK shows MQTT.js took it as any other message.
          written.resolve(c.streamPublish("a/b", 24 * MiB, 64 * 1024, { qos: 1, messageId: 7 }));
        },
      });
      const client = guardedClient(broker, transport, version);
      const messages: { topic: string; payload: Uint8Array; id?: number }[] = [];
      client.on("message", (topic, payload, packet) => {
        messages.push({ topic, payload, id: packet.messageId });
      });
      await new Promise<void>((resolve) => client.once("connect", () => resolve()));
      await client.subscribeAsync("a/+", { qos: 1 });
      const c = await connection.promise;
      const puback = await c.next("puback");
      assert.equal(puback.messageId, 7);
      assert.equal(messages.length, 1);
      assert.equal(messages[0].topic, "a/b");
      // The payload: the remaining length less the topic, its length, the packet id and (MQTT 5)
      // the property length.
      const header = 2 + 3 + 2 + (version === 5 ? 1 : 0);
      assert.equal(skippedPayloadBytes(messages[0].payload), 24 * MiB - header);
      assert.equal(await written.promise, 1 + 4 + 24 * MiB);
      // Still connected, and still in step with the broker: a publish after it is acknowledged.
      assert.ok(client.connected);
      await client.publishAsync("a/c", "after", { qos: 1 });
      assert.equal(c.isClosed, false);
      await client.endAsync(true);
    });

    Deno.test(`MQTT.js ${version} over ${transport} with the guard: a SUBACK claiming 256 MiB ends the connection at its header`, async () => {
      const written = Promise.withResolvers<number>();
      await using broker = await startHostileBroker({
        webSocket: transport === "ws",
        script: async (c) => {
          await c.connect();
          c.connack(0);
          c.serve();
          await c.next("subscribe");
          written.resolve(c.streamPacket(0x90, MAX_REMAINING_LENGTH));
        },
      });
      const client = guardedClient(broker, transport, version);
      const error = new Promise<Error & { code?: unknown }>((resolve) =>
        client.on("error", resolve)
      );
      await new Promise<void>((resolve) => client.once("connect", () => resolve()));
      const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
      client.subscribe("a/+", { qos: 1 }, () => {});
      assert.equal((await error).code, "ERR_MQTT_PACKET_TOO_LARGE");
      await closed;
      // The broker could write what the kernel's buffers took before the hang-up, no more.
      assert.ok((await written.promise) < 32 * MiB, `${await written.promise} bytes written`);
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
 * library would buffer whole before MQTT.js saw a byte: ws refuses it at its frame header, and
 * that ends the connection). `GROWTH` is how much the responder's resident memory may grow
 * meanwhile: over TCP the guard reads into a buffer of its own, so what it skips costs nothing;
 * over WebSocket each message arrives in buffers the ws library and the runtime allocate, which the
 * guard has the garbage collector take back every 4 MiB (about 30 MiB of them at a time, where
 * 256 MiB skipped held 100 MiB without): far less than the packet, which is never held whole. The
 * same over TLS (250 MiB without), through a TLS front of our own before the hostile broker.
 */
const HUGE_PACKETS = [
  { version: 4, transport: "tcp", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 5, transport: "tcp", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 4, transport: "ws", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
  { version: 5, transport: "ws", how: "one message", packetBytes: 64 * MiB },
  { version: 4, transport: "tls", how: "streamed", packetBytes: MAX_REMAINING_LENGTH + 5 },
] as const;
const GROWTH = { tcp: 24 * MiB, ws: 64 * MiB, tls: 64 * MiB };

const topic = "alice/reverse/request";

for (const { version, transport, how, packetBytes } of HUGE_PACKETS) {
  const outcome = how === "streamed"
    ? "it keeps its connection and answers a client right after"
    : "it reconnects and answers a client";
  const name = `a responder process, MQTT ${version} over ${transport}: a ${
    packetBytes >> 20
  } MiB PUBLISH ${how} is never held; ${outcome}`;
  Deno.test(
    { name, ignore: transport === "tls" && opensslSkipReason() !== undefined },
    async () => {
      const written = Promise.withResolvers<number>();
      const served: HostileConnection[] = [];
      await using broker = await startHostileBroker({
        webSocket: transport === "ws",
        script: async (c) => {
          const connect = await c.connect();
          // For MQTT 3.1.1, refuse MQTT 5 as a broker that does not speak it does.
          if (version === 4 && connect.protocolVersion === 5) return c.connack(132), c.close();
          c.connack(0);
          c.serve();
          served.push(c);
          if (served.length > 1) return;
          await c.next("subscribe");
          if (how === "streamed") return written.resolve(c.streamPublish(topic, packetBytes - 5));
          const packet = new Uint8Array(packetBytes);
          packet.set([0x30, ...varint(packetBytes - 5), 0, topic.length, ...Buffer.from(topic)]);
          c.write(packet); // one WebSocket message
          written.resolve(packetBytes);
        },
      });
      await using stack = new AsyncDisposableStack();
      let where = ["--host", broker.host, "-p", `${broker.port}`];
      if (transport === "ws") where = ["--url", `ws://${broker.host}:${broker.webSocketPort}/mqtt`];
      if (transport === "tls") {
        const pki = stack.use(await makeTlsFixture());
        const front = stack.use(await tlsFront(pki, broker));
        where = ["--host", "127.0.0.1", "-p", `${front.port}`, "--cafile", pki.caFile];
      }
      await using responder = spawnTask("responder", where);
      await responder.waitForLine(/subscribed to/);
      const before = residentBytes(responder.pid)!;
      const rss = sampleResident(responder.pid, 10);
      try {
        if (how === "streamed") {
          const line = await responder.waitForLine(/message on alice\/reverse\/request dropped/);
          // Its payload: the packet less the fixed header, the topic and its length, and (MQTT 5) the
          // property length.
          const payload = packetBytes - 5 - 2 - topic.length - (version === 5 ? 1 : 0);
          assert.match(line, new RegExp(`its ${payload}-byte payload is over the size limit`));
          // The whole packet went through the responder's socket, and nothing of it stayed.
          assert.equal(await written.promise, packetBytes);
        } else {
          const line = await responder.waitForLine(/ lost: .*; reconnecting/);
          assert.match(line, /Max payload size exceeded/); // the ws library's words
          await responder.waitForLine(/subscribed to/, {
            from: responder.lines("stderr").indexOf(line),
          });
        }
        const answer = await relayRequest(served.at(-1)!, "bob", "reverse", "still here?");
        assert.equal(answer, "?ereh llits");
      } finally {
        rss.stop();
      }
      assert.ok(rss.samples.length > 0, "no memory samples");
      const grown = rss.peak - before;
      console.log(
        `MQTT ${version} over ${transport}, ${how}: RSS ${(before / MiB).toFixed(0)} MiB, ` +
          `peak +${(grown / MiB).toFixed(1)} MiB over ${rss.samples.length} samples`,
      );
      const limit = GROWTH[transport];
      assert.ok(grown < limit, `resident memory grew by ${(grown / MiB).toFixed(1)} MiB`);
      assert.equal(served.length, how === "streamed" ? 1 : 2, "connections served");
      assert.equal(responder.exited, false);
    },
  );
}

/** A TLS server on a free port that passes each connection on to `broker`, as a TLS proxy does. */
async function tlsFront(pki: TlsFixture, broker: HostileBroker) {
  const server = createTlsServer(
    { key: await Deno.readTextFile(pki.keyFile), cert: await Deno.readTextFile(pki.certFile) },
    (tls) => {
      const plain = createConnection({ host: broker.host, port: broker.port });
      tls.pipe(plain).pipe(tls);
      for (const end of [tls, plain]) {
        end.on("error", () => {});
        end.on("close", () => (tls.destroy(), plain.destroy()));
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
