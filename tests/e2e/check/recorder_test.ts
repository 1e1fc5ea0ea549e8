/**
 * lib/check/recorder.ts: the relay passes MQTT on and records both directions in wire order,
 * so that a PUBLISH sent before its SUBACK is seen as such even though aedes would serialise
 * it; the second listener on 127.0.0.2; the SUBACK delay only for recorded connections.
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { acknowledgedBefore, RecordingBroker, topicMatches } from "../../../lib/check/recorder.ts";

async function connect(where: { host: string; port: number }, clientId: string) {
  return await mqtt.connectAsync({
    host: where.host,
    port: where.port,
    clientId,
    reconnectPeriod: 0,
    socksProxy: "",
  });
}

Deno.test("CONNECT, SUBSCRIBE, SUBACK and PUBLISH as the program sent them", async () => {
  await using broker = await RecordingBroker.start();
  const client = await connect(broker, "le0nh4rt");
  try {
    await client.subscribeAsync(["le0nh4rt/+/response"], { qos: 1 });
    await client.publishAsync("le0nh4rt/key-exchange/request", "key", { qos: 1 });
    await client.publishAsync("le0nh4rt/x/request", "zero", { qos: 0, retain: true });
  } finally {
    await client.endAsync();
  }
  const packets = broker.packets();
  const connect0 = packets.find((p) => p.cmd === "connect")!;
  assert.equal(connect0.clientId, "le0nh4rt");
  assert.equal(connect0.protocolVersion, 4);
  assert.deepEqual(packets.find((p) => p.cmd === "subscribe")!.subscriptions, [
    { topic: "le0nh4rt/+/response", qos: 1 },
  ]);
  const publishes = packets.filter((p) => p.cmd === "publish" && p.direction === "up");
  assert.deepEqual(publishes.map((p) => [p.topic, p.qos, p.retain, p.payloadBytes]), [
    ["le0nh4rt/key-exchange/request", 1, false, 3],
    ["le0nh4rt/x/request", 0, true, 4],
  ]);
  const [connection] = broker.connections();
  assert.equal(connection.localAddress, "127.0.0.1");
  assert.deepEqual(acknowledgedBefore(packets, publishes[0].seq), ["le0nh4rt/+/response"]);
});

Deno.test("with the SUBACK delayed, a PUBLISH that did not wait for it is recorded before it", async () => {
  await using broker = await RecordingBroker.start();
  broker.subackDelayMs = 300;
  const client = await connect(broker, "early");
  try {
    const subscribed = client.subscribeAsync(["early/+/response"], { qos: 1 });
    await client.publishAsync("early/key-exchange/request", "too soon", { qos: 1 });
    await subscribed;
  } finally {
    await client.endAsync();
  }
  const packets = broker.packets();
  const publish = packets.find((p) => p.cmd === "publish")!;
  const suback = packets.find((p) => p.cmd === "suback")!;
  assert.ok(publish.seq < suback.seq, "the PUBLISH before the SUBACK");
  assert.deepEqual(acknowledgedBefore(packets, publish.seq), []);
});

Deno.test("the SUBACK delay applies to recorded programs, not to the checker's own clients", async () => {
  await using broker = await RecordingBroker.start();
  broker.subackDelayMs = 60_000;
  const own = await connect(broker.direct, "checker");
  try {
    await own.subscribeAsync(["any/+/request"], { qos: 1 }); // would wait a minute if held
  } finally {
    await own.endAsync();
  }
  assert.equal(broker.packets().length, 0, "the direct connection is not recorded");
});

Deno.test({
  name: "a second recorded listener on 127.0.0.2, for telling -h HOST from a default host",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using broker = await RecordingBroker.start();
    assert.ok(broker.alternate, "127.0.0.2 is a loopback address on Linux");
    const client = await connect(broker.alternate, "alt");
    await client.endAsync();
    assert.equal(broker.connections()[0].localAddress, "127.0.0.2");
  },
});

Deno.test("waitFor: a packet already recorded, or the next one, or undefined once aborted", async () => {
  await using broker = await RecordingBroker.start();
  const client = await connect(broker, "w");
  try {
    const connect0 = await broker.waitFor((p) => p.cmd === "connect");
    assert.equal(connect0?.clientId, "w");
    const next = broker.waitFor((p) => p.cmd === "publish");
    await client.publishAsync("w/a/request", "x", { qos: 1 });
    assert.equal((await next)?.topic, "w/a/request");
    const stop = new AbortController();
    const never = broker.waitFor((p) => p.cmd === "unsubscribe", { signal: stop.signal });
    stop.abort();
    assert.equal(await never, undefined);
  } finally {
    await client.endAsync();
  }
});

Deno.test("topicMatches: + one level, # the rest (and the parent level)", () => {
  assert.ok(topicMatches("+/key-exchange/request", "a/key-exchange/request"));
  assert.ok(!topicMatches("+/key-exchange/request", "a/b/key-exchange/request"));
  assert.ok(topicMatches("a/#", "a"));
  assert.ok(topicMatches("#", "a/b/c"));
  assert.ok(!topicMatches("a/+", "a"));
  assert.ok(!topicMatches("a/b", "a/b/c"));
});
