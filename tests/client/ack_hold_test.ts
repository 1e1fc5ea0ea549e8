/**
 * lib/client/ack_hold.ts against a real MQTT.js client (made by `openMqtt`, as the session
 * makes it) on a real loopback socket, fed real packets by a scripted broker: so what is held
 * is held by MQTT.js's own `handleMessage` contract, and "paused" is its own backpressure.
 *
 * That a PUBACK is held is seen on the wire: the client writes a marker after the delivery
 * reached it, and the broker's side reads the marker before any PUBACK (writes on one socket
 * arrive in order). That nothing after it is handled is seen by the marker's round trip.
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import type { MqttClient } from "mqtt";
import type { IPublishPacket } from "mqtt-packet";
import { connected, openMqtt } from "../../lib/mqtt.ts";
import { AckHold } from "../../lib/client/ack_hold.ts";
import { type ScriptedPeer, startScriptedBroker } from "./scripted_broker.ts";

const KEY = "alice/key-exchange/response";
const SIGNATURE = "alice/key-exchange/signature";
const ANSWER = "alice/reverse/response";
const MARKER = "marker";

/** A connected client, its hold on the key exchange topics, and the broker's side of it. */
async function setup() {
  const scripted = await startScriptedBroker();
  const client = openMqtt(scripted.broker, { clientId: "alice", writeCache: false });
  const hold = new AckHold(client, [KEY, SIGNATURE]);
  const ready = connected(client, scripted.broker);
  const peer = await scripted.connection();
  await peer.accept();
  await ready;
  /** Topics of the deliveries MQTT.js has handed on, in order. */
  const delivered: string[] = [];
  client.on("message", (topic) => delivered.push(topic));
  return {
    client,
    hold,
    peer,
    delivered,
    async [Symbol.asyncDispose]() {
      await client.endAsync(true);
      await scripted[Symbol.asyncDispose]();
    },
  };
}

/** A PUBLISH as a broker sends it; QoS 1 unless told. */
function publish(
  topic: string,
  messageId: number,
  options: { retain?: boolean; qos?: 0 | 1 } = {},
): IPublishPacket {
  const { retain = false, qos = 1 } = options;
  return {
    cmd: "publish",
    topic,
    payload: `payload ${messageId}`,
    qos,
    messageId,
    retain,
    dup: false,
  };
}

/** Resolves once MQTT.js hands on a delivery on `topic` (its `handleMessage` runs next). */
function delivery(client: MqttClient, topic: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (t: string) => {
      if (t !== topic) return;
      client.off("message", on);
      resolve();
    };
    client.on("message", on);
  });
}

/**
 * Asserts that nothing was acknowledged since the last packet the peer read: the client's
 * next packet on the wire is a marker written now.
 */
async function assertNothingAcknowledged(client: MqttClient, peer: ScriptedPeer): Promise<void> {
  client.publish(MARKER, "", { qos: 0 });
  const next = await peer.next();
  assert.equal(next?.cmd, "publish", `the marker, not ${JSON.stringify(next)}`);
  assert.equal(next.topic, MARKER);
}

async function assertAcknowledged(peer: ScriptedPeer, ...messageIds: number[]): Promise<void> {
  for (const messageId of messageIds) {
    const puback = await peer.expect("puback");
    assert.equal(puback.messageId, messageId);
  }
}

/** Asserts that the PUBACK of `messageId` was sent already: it comes before a marker sent now. */
async function assertAcknowledgedAtOnce(
  client: MqttClient,
  peer: ScriptedPeer,
  messageId: number,
): Promise<void> {
  client.publish(MARKER, "", { qos: 0 });
  await assertAcknowledged(peer, messageId);
  const marker = await peer.expect("publish");
  assert.equal(marker.topic, MARKER);
}

/** Sends `packet` and asserts that its PUBACK, if it has one, is not held. */
async function assertNotHeld(
  t: { client: MqttClient; peer: ScriptedPeer },
  packet: IPublishPacket,
): Promise<void> {
  const delivered = delivery(t.client, packet.topic);
  t.peer.send(packet);
  await delivered;
  if (packet.qos === 1) await assertAcknowledgedAtOnce(t.client, t.peer, packet.messageId!);
}

Deno.test("unarmed, every PUBACK goes at once", async () => {
  await using t = await setup();
  for (const [topic, id] of [[KEY, 1], [SIGNATURE, 2], [ANSWER, 3]] as const) {
    await assertNotHeld(t, publish(topic, id));
  }
  assert.deepEqual(t.delivered, [KEY, SIGNATURE, ANSWER]);
});

Deno.test("armed: a key exchange delivery's PUBACK is held, and nothing after it is handled", async () => {
  await using t = await setup();
  t.hold.arm();
  const key = delivery(t.client, KEY);
  t.peer.send(publish(KEY, 1), publish(ANSWER, 2));
  await key;
  await assertNothingAcknowledged(t.client, t.peer);
  assert.deepEqual(t.delivered, [KEY], "the answer behind it waits");

  const answer = delivery(t.client, ANSWER);
  t.hold.release();
  await assertAcknowledgedAtOnce(t.client, t.peer, 1);
  await answer;
  await assertAcknowledgedAtOnce(t.client, t.peer, 2);
  assert.deepEqual(t.delivered, [KEY, ANSWER]);

  // Still armed after a release: the next one (a signature, say) is held too.
  const signature = delivery(t.client, SIGNATURE);
  t.peer.send(publish(SIGNATURE, 3));
  await signature;
  await assertNothingAcknowledged(t.client, t.peer);
  t.hold.release();
  await assertAcknowledgedAtOnce(t.client, t.peer, 3);
});

Deno.test("armed: retained deliveries, QoS 0 and other topics are not held", async () => {
  await using t = await setup();
  t.hold.arm();
  await assertNotHeld(t, publish(KEY, 1, { retain: true }));
  // A QoS 0 delivery has nothing to acknowledge: it lets go if what follows it is handled.
  const follower = delivery(t.client, ANSWER);
  t.peer.send(publish(KEY, 0, { qos: 0 }), publish(ANSWER, 9));
  await follower;
  await assertAcknowledgedAtOnce(t.client, t.peer, 9);
  await assertNotHeld(t, publish(ANSWER, 2));
  await assertNotHeld(t, publish("bob/key-exchange/response", 3));
  assert.deepEqual(t.delivered, [KEY, KEY, ANSWER, ANSWER, "bob/key-exchange/response"]);
});

Deno.test("releaseOnNextData: the held PUBACK goes with the next bytes from the broker", async () => {
  await using t = await setup();
  t.hold.arm();
  const key = delivery(t.client, KEY);
  t.peer.send(publish(KEY, 1));
  await key;

  // Our request leaves while the PUBACK is held; the broker's PUBACK for it releases it.
  const sent = t.client.publishAsync("alice/reverse/request", "token", { qos: 1 });
  t.hold.releaseOnNextData();
  const request = await t.peer.expect("publish");
  assert.equal(request.topic, "alice/reverse/request", "the request, before any PUBACK");
  await assertNothingAcknowledged(t.client, t.peer);
  t.peer.send({ cmd: "puback", messageId: request.messageId });
  await assertAcknowledged(t.peer, 1);
  await sent;

  await assertNotHeld(t, publish(KEY, 2)); // it holds no more
});

Deno.test("releaseOnNextData with nothing held: nothing waits, and it holds no more", async () => {
  await using t = await setup();
  t.hold.arm();
  t.hold.releaseOnNextData();
  await assertNotHeld(t, publish(KEY, 1));
});

Deno.test("releaseOnNextData while MQTT.js has paused the socket: released at once", async () => {
  await using t = await setup();
  t.hold.arm();
  const key = delivery(t.client, KEY);
  t.peer.send(publish(KEY, 1));
  await key;
  // A large message behind the held one: MQTT.js's parser takes no more bytes, its buffer
  // fills, and it pauses the socket, so no further bytes would ever come to release the hold.
  const paused = once(t.client.stream, "pause");
  t.peer.send({ ...publish(ANSWER, 2), payload: "x".repeat(1024 * 1024) });
  await paused;
  assert.equal(t.client.stream.readableFlowing, false);

  t.hold.releaseOnNextData();
  await assertAcknowledgedAtOnce(t.client, t.peer, 1);
  await assertAcknowledged(t.peer, 2);
  assert.deepEqual(t.delivered, [KEY, ANSWER]);
});

Deno.test("dispose: the held PUBACK goes at once, and nothing is held after", async () => {
  await using t = await setup();
  t.hold.arm();
  const key = delivery(t.client, KEY);
  t.peer.send(publish(KEY, 1));
  await key;
  t.hold[Symbol.dispose]();
  await assertAcknowledgedAtOnce(t.client, t.peer, 1);
  await assertNotHeld(t, publish(KEY, 2));
});

Deno.test("dispose while waiting for the next bytes (the session ends first): sent at once", async () => {
  await using t = await setup();
  t.hold.arm();
  const key = delivery(t.client, KEY);
  t.peer.send(publish(KEY, 1));
  await key;
  const listeners = t.client.stream.listenerCount("data");
  t.hold.releaseOnNextData();
  await assertNothingAcknowledged(t.client, t.peer);
  t.hold[Symbol.dispose]();
  assert.equal(t.client.stream.listenerCount("data"), listeners, "its listener is gone");
  await assertAcknowledgedAtOnce(t.client, t.peer, 1);
  // The next bytes find nothing left to release, and nothing more is held.
  await assertNotHeld(t, publish(KEY, 2));
});
