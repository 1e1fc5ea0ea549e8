/**
 * lib/embedded_broker.ts: the aedes broker of the demo and of the checker, and the only WebSocket broker the tests
 * have, carries the protocol's largest messages (1 MiB of text, a 1.4 MiB token) over MQTT over
 * TCP and over WebSocket, both ways: between two plain MQTT.js clients, and from our client to
 * our responder and back. Packets of 200 KiB and more used to stall an aedes connection under
 * Deno for good (see `readsAllAtOnce` there). And a held subscription (secure_mqtt_check's slow
 * SUBACK) is granted only when its hold is released.
 */

import assert from "node:assert/strict";
import { within } from "../../support/processes.ts";
import mqtt, { type MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { startEmbeddedBroker } from "../../lib/embedded_broker.ts";
import type { BrokerOptions } from "../../lib/mqtt.ts";
import { requestTransform } from "../../lib/client/session.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { MAX_MESSAGE_BYTES } from "../../lib/protocol/limits.ts";
import { Responder } from "../../lib/responder/responder.ts";
import { seeded } from "../../support/seeded.ts";

type Embedded = Awaited<ReturnType<typeof startEmbeddedBroker>>;
const TRANSPORTS = ["mqtt", "ws"] as const;
const group = loadLabGroup();

function at(broker: Embedded, transport: "mqtt" | "ws"): BrokerOptions {
  return transport === "mqtt"
    ? { transport, host: broker.host, port: broker.port }
    : { transport, host: broker.host, port: broker.webSocketPort!, path: "/mqtt" };
}

function url(broker: Embedded, transport: "mqtt" | "ws"): string {
  return transport === "mqtt"
    ? `mqtt://${broker.host}:${broker.port}`
    : `ws://${broker.host}:${broker.webSocketPort}/mqtt`;
}

/** `n` bytes from a seeded source: no run of equal bytes that a bug could pass for the data. */
function noise(n: number, seed: number): Buffer {
  const random = seeded(seed);
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = random(256);
  return bytes;
}

/** The next message on `topic`, by event. */
function nextMessage(client: MqttClient, topic: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (got: string, payload: Buffer) => {
      if (got !== topic) return;
      client.off("message", onMessage);
      resolve(payload);
    };
    client.on("message", onMessage);
  });
}

for (const transport of TRANSPORTS) {
  Deno.test(`embedded broker over ${transport}: 1 MiB and more, from each client to the other`, async () => {
    await using broker = await startEmbeddedBroker({ webSocket: true });
    const options = { reconnectPeriod: 0, socksProxy: "" };
    const alice = await mqtt.connectAsync(url(broker, transport), options);
    const bob = await mqtt.connectAsync(url(broker, transport), options);
    try {
      await alice.subscribeAsync("to/alice", { qos: 1 });
      await bob.subscribeAsync("to/bob", { qos: 1 });
      // 1 MiB, the largest request token (1,398,200 bytes), and twice that: well past the
      // 200 KiB where a burst used to stall the connection.
      for (const [i, size] of [1024 * 1024, 1_398_200, 2 * 1_398_200].entries()) {
        const toBob = noise(size, 2 * i + 1);
        const toAlice = noise(size, 2 * i + 2);
        const atBob = nextMessage(bob, "to/bob");
        const atAlice = nextMessage(alice, "to/alice");
        await within(
          Promise.all([
            alice.publishAsync("to/bob", toBob, { qos: 1 }),
            bob.publishAsync("to/alice", toAlice, { qos: 1 }),
          ]),
          `the PUBACKs of ${size} bytes`,
        );
        assert.ok((await within(atBob, `${size} bytes to bob`)).equals(toBob));
        assert.ok((await within(atAlice, `${size} bytes to alice`)).equals(toAlice));
      }
    } finally {
      await alice.endAsync(true);
      await bob.endAsync(true);
    }
  });

  Deno.test(`embedded broker over ${transport}: a 1 MiB request and its answer`, async () => {
    await using broker = await startEmbeddedBroker({ webSocket: true });
    await using _responder = await Responder.start({ broker: at(broker, transport), group });
    // 1 MiB of UTF-8 exactly, with two- and four-byte characters.
    const message = "abcdefghijklmnopqrstuvwxyz🚀é".repeat(32 * 1024);
    assert.equal(new TextEncoder().encode(message).length, MAX_MESSAGE_BYTES);
    const answer = await requestTransform({
      broker: at(broker, transport),
      netid: `big-${transport}`,
      action: "uppercase",
      message,
      timeoutMs: 15_000,
      group,
    });
    assert.equal(answer, message.toUpperCase());
  });
}

Deno.test("holdSubscribe: the SUBACK waits until the hold is released", async () => {
  let release!: () => void;
  let holding!: (filter: string) => void;
  const held = new Promise<string>((resolve) => holding = resolve);
  await using broker = await startEmbeddedBroker({
    holdSubscribe: (_client, filter) => {
      holding(filter);
      return new Promise<void>((resolve) => release = resolve);
    },
  });
  const options = { reconnectPeriod: 0, socksProxy: "" };
  const client = await mqtt.connectAsync(`mqtt://${broker.host}:${broker.port}`, options);
  const other = await mqtt.connectAsync(`mqtt://${broker.host}:${broker.port}`, options);
  try {
    let granted = false;
    const subscribing = client.subscribeAsync("a/b", { qos: 1 }).then((g) => {
      granted = true;
      return g;
    });
    assert.equal(await held, "a/b");
    // A round trip of another client's through the broker: the SUBACK is still held.
    await other.publishAsync("x/y", "meanwhile", { qos: 1 });
    assert.equal(granted, false);
    release();
    assert.deepEqual((await subscribing).map((g) => g.qos), [1]);
  } finally {
    await Promise.all([client.endAsync(true), other.endAsync(true)]);
  }
});
