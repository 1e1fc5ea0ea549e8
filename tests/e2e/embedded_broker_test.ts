/**
 * demo/embedded_broker.ts, what secure_mqtt_check needs of it: a message of megabytes gets
 * through (under Deno, aedes used to stall on packets over ~200 KB), and a held subscription
 * is granted, SUBACK and all, only when its hold is released.
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { Buffer } from "node:buffer";
import { startEmbeddedBroker } from "../../demo/embedded_broker.ts";

async function connect(port: number) {
  return await mqtt.connectAsync({
    host: "127.0.0.1",
    port,
    clientId: `t-${crypto.randomUUID()}`,
    reconnectPeriod: 0,
    socksProxy: "",
  });
}

Deno.test("a 3 MiB message arrives whole", async () => {
  await using broker = await startEmbeddedBroker();
  const subscriber = await connect(broker.port);
  const publisher = await connect(broker.port);
  try {
    await subscriber.subscribeAsync("big/topic", { qos: 1 });
    const payload = crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024).subarray(0, 65536));
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let at = 0; at < big.length; at += payload.length) big.set(payload, at);
    const received = new Promise<Uint8Array>((resolve) =>
      subscriber.once("message", (_topic, message) => resolve(new Uint8Array(message)))
    );
    await publisher.publishAsync("big/topic", Buffer.from(big), { qos: 1 });
    assert.deepEqual(await received, big);
  } finally {
    await Promise.all([subscriber.endAsync(true), publisher.endAsync(true)]);
  }
});

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
  const client = await connect(broker.port);
  const other = await connect(broker.port);
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
