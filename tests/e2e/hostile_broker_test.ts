/**
 * support/hostile_broker.ts: each thing a test can script it to do, seen by a small MQTT.js
 * client (or a bare socket, where MQTT.js would hide it), at MQTT 3.1.1 and 5: what it records
 * of the client, CONNACKs and SUBACKs of any code, injected packets, a streamed huge PUBLISH,
 * silence, a restart, and the same over WebSocket.
 */

import assert from "node:assert/strict";
import { within } from "../../support/processes.ts";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { connect as connectTcp } from "node:net";
import {
  type HostileBroker,
  MAX_REMAINING_LENGTH,
  serveNormally,
  startHostileBroker,
  varint,
} from "../../support/hostile_broker.ts";

const VERSIONS = [4, 5] as const;

/** An MQTT.js client of the broker, never reconnecting by itself. */
function client(
  broker: HostileBroker,
  version: 4 | 5,
  options: Partial<IClientOptions> = {},
): MqttClient {
  const c = mqtt.connect({
    host: broker.host,
    port: broker.port,
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: 15_000,
    socksProxy: "",
    ...options,
  });
  c.on("error", () => {});
  return c;
}

/** The client's next "connect", or its first "error" as a rejection. */
function connected(c: MqttClient): Promise<void> {
  return within(
    new Promise((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("error", reject);
    }),
    "connect",
  );
}

/** The client's next "error". */
function nextError(c: MqttClient): Promise<Error & { code?: number | string }> {
  return within(new Promise((resolve) => c.once("error", resolve)), "an error");
}

/** The outcome of a QoS 1 subscription: its granted QoS, or its error's code. */
function subscribe(c: MqttClient, filter: string): Promise<number | string | undefined> {
  return within(
    new Promise((resolve) => {
      c.subscribe(filter, { qos: 1 }, (error, granted) => {
        // MQTT.js 5.16 fails a refused subscription with the SUBACK as `packet`, no `code`.
        const suback = (error as { packet?: { granted?: number[] } } | null)?.packet;
        resolve(error ? suback?.granted?.[0] ?? error.message : granted![0].qos);
      });
    }),
    `the SUBACK of ${filter}`,
  );
}

async function end(c: MqttClient): Promise<void> {
  await c.endAsync(true);
}

Deno.test("varint is MQTT's variable byte integer", () => {
  assert.deepEqual(varint(0), [0x00]);
  assert.deepEqual(varint(127), [0x7f]);
  assert.deepEqual(varint(128), [0x80, 0x01]);
  assert.deepEqual(varint(16_383), [0xff, 0x7f]);
  assert.deepEqual(varint(16_384), [0x80, 0x80, 0x01]);
  assert.deepEqual(varint(MAX_REMAINING_LENGTH), [0xff, 0xff, 0xff, 0x7f]);
});

for (const version of VERSIONS) {
  Deno.test(`MQTT ${version}: records CONNECT, SUBSCRIBE and PUBLISH, and answers them`, async () => {
    await using broker = await startHostileBroker();
    const properties = version === 5 ? { maximumPacketSize: 4096 } : undefined;
    const c = client(broker, version, { clientId: `rec-${version}`, properties });
    try {
      await connected(c);
      const granted = await c.subscribeAsync("a/+/request", { qos: 1 });
      assert.equal(granted[0].qos, 1);
      await c.publishAsync("a/b/request", "payload", { qos: 1 });
      const connection = broker.connections[0];
      assert.equal(connection.protocolVersion, version);
      assert.equal(connection.connectPacket?.clientId, `rec-${version}`);
      assert.deepEqual(connection.connectPacket?.properties, properties);
      const [subscribe] = connection.sent("subscribe");
      assert.deepEqual(subscribe.subscriptions.map((s) => [s.topic, s.qos]), [["a/+/request", 1]]);
      const [publish] = connection.sent("publish");
      assert.equal(publish.topic, "a/b/request");
      assert.equal(Buffer.from(publish.payload).toString(), "payload");
      assert.deepEqual(connection.parseErrors, []);
    } finally {
      await end(c);
    }
    assert.deepEqual(broker.scriptErrors, []);
  });

  Deno.test(`MQTT ${version}: a CONNACK with any code`, async () => {
    const code = version === 5 ? 0x87 : 5; // not authorized
    await using broker = await startHostileBroker({
      script: async (connection) => {
        await connection.connect();
        connection.connack(code);
      },
    });
    const c = client(broker, version);
    const error = await nextError(c);
    assert.equal(error.code, code);
    await end(c);
  });

  const refusals = version === 5 ? [0x80, 0x87, 0x97] : [0x80];
  Deno.test(`MQTT ${version}: a SUBACK granted, refused (${refusals}) or withheld`, async () => {
    const codes = [[1], ...refusals.map((r) => [r])];
    await using broker = await startHostileBroker({
      script: async (connection, index) => {
        await connection.connect();
        connection.connack(0);
        const subscribe = await connection.next("subscribe");
        if (index < codes.length) connection.suback(subscribe, codes[index]);
        else connection.close(); // withheld: the connection ends with no SUBACK
      },
    });
    for (const [expected] of codes) {
      const c = client(broker, version);
      await connected(c);
      // MQTT.js: granted, the QoS; refused, an error that carries the SUBACK's code.
      assert.equal(await subscribe(c, "x/+/request"), expected);
      await end(c);
    }
    const c = client(broker, version);
    await connected(c);
    assert.match(String(await subscribe(c, "x/+/request")), /closed/i);
    await end(c);
    assert.equal(broker.connections.at(-1)!.sent("subscribe").length, 1);
  });

  Deno.test(`MQTT ${version}: an AUTH, before and after the SUBACK`, async () => {
    for (const when of ["before", "after"]) {
      await using broker = await startHostileBroker({
        script: async (connection) => {
          await connection.connect();
          connection.connack(0);
          const subscribe = await connection.next("subscribe");
          if (when === "after") connection.suback(subscribe);
          connection.auth();
        },
      });
      const c = client(broker, version);
      await connected(c);
      const error = nextError(c);
      c.subscribe("x/+/request", { qos: 1 });
      // MQTT.js: a protocol error (130) at MQTT 5; its parser refuses the packet at 3.1.1.
      if (version === 5) assert.equal((await error).code, 130);
      else assert.match((await error).message, /auth packet/i);
      await end(c);
    }
  });

  Deno.test(`MQTT ${version}: a second CONNACK`, async () => {
    await using broker = await startHostileBroker({
      script: async (connection) => {
        await connection.connect();
        connection.connack(0);
        await connection.next("subscribe");
        connection.connack(0);
      },
    });
    const c = client(broker, version);
    await connected(c);
    const error = nextError(c);
    c.subscribe("x/+/request", { qos: 1 });
    assert.equal((await error).code, 130);
    assert.match((await error).message, /duplicate CONNACK/);
    await end(c);
  });

  Deno.test(`MQTT ${version}: a streamed PUBLISH claiming 256 MiB stops when the client hangs up`, async () => {
    let written: Promise<number> | undefined;
    await using broker = await startHostileBroker({
      script: async (connection) => {
        await connection.connect();
        connection.connack(0);
        written = connection.streamPublish("a/b/request", MAX_REMAINING_LENGTH);
      },
    });
    // A bare socket: MQTT.js would buffer the whole packet. It reads the CONNACK and the
    // PUBLISH's fixed header, then hangs up.
    const socket = connectTcp(broker.port, broker.host);
    socket.write(
      mqttConnect(version),
    );
    const header = await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        const connackLength = 2 + got[1];
        if (got.length >= connackLength + 5) {
          socket.destroy();
          resolve(got.subarray(connackLength, connackLength + 5));
        }
      });
    });
    assert.deepEqual([...header], [0x30, 0xff, 0xff, 0xff, 0x7f]);
    const n = await (await broker.connections[0].closed.then(() => written))!;
    assert.ok(n < MAX_REMAINING_LENGTH / 2, `${n} bytes written after the client hung up`);
  });

  Deno.test(`MQTT ${version}: silence after the CONNECT is a CONNACK timeout`, async () => {
    await using broker = await startHostileBroker({ script: () => {} });
    const c = client(broker, version, { connectTimeout: 200 });
    const error = await nextError(c);
    assert.match(error.message, /connack timeout/);
    assert.equal(broker.connections[0].protocolVersion, version);
    await end(c);
  });

  Deno.test(`MQTT ${version}: a restart drops the client, which reconnects to the same port`, async () => {
    await using broker = await startHostileBroker();
    const c = client(broker, version);
    try {
      await connected(c);
      const port = broker.port;
      const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
      await broker.restart();
      await closed;
      assert.ok(broker.connections[0].isClosed);
      const again = connected(c);
      c.reconnect();
      await again;
      assert.equal(broker.port, port);
      assert.equal(broker.connections.length, 2);
    } finally {
      await end(c);
    }
  });
}

Deno.test("MQTT 5: a PUBLISH with a topic alias the client never allowed", async () => {
  await using broker = await startHostileBroker({
    script: async (connection) => {
      await serveNormally(connection);
      await connection.next("subscribe");
      connection.publish("a/b/request", "x", { properties: { topicAlias: 1 } });
    },
  });
  const c = client(broker, 5);
  await connected(c);
  const error = nextError(c);
  c.subscribe("a/+/request", { qos: 1 });
  assert.equal((await error).code, 148);
  await end(c);
});

Deno.test("MQTT 5: a PUBLISH over the client's maximum packet size is refused once whole", async () => {
  let written: Promise<number> | undefined;
  await using broker = await startHostileBroker({
    script: async (connection) => {
      await serveNormally(connection);
      written = connection.streamPublish("a/b/request", 64 * 1024, 1000);
    },
  });
  const c = client(broker, 5, { properties: { maximumPacketSize: 1024 } });
  const error = nextError(c);
  assert.equal((await error).code, 149);
  assert.equal(await written, 1 + 3 + 64 * 1024);
  await end(c);
});

Deno.test("nextConnection hands out each connection once, in order", async () => {
  await using broker = await startHostileBroker();
  const waiting = broker.nextConnection();
  const a = client(broker, 4);
  await connected(a);
  const b = client(broker, 4);
  await connected(b);
  assert.equal(await waiting, broker.connections[0]);
  assert.equal(await broker.nextConnection(), broker.connections[1]);
  await assert.rejects(broker.nextConnection(10), /no new connection/);
  await end(a);
  await end(b);
});

Deno.test("over WebSocket: the same broker, the same script", async () => {
  await using broker = await startHostileBroker({ webSocket: true });
  assert.ok(broker.webSocketPort);
  for (const version of VERSIONS) {
    const c = mqtt.connect(`ws://${broker.host}:${broker.webSocketPort}/mqtt`, {
      protocolVersion: version,
      reconnectPeriod: 0,
      socksProxy: "",
    });
    c.on("error", () => {});
    await connected(c);
    await c.subscribeAsync("w/+/request", { qos: 1 });
    await c.publishAsync("w/x/request", "over websocket", { qos: 1 });
    await end(c);
    const connection = broker.connections.at(-1)!;
    assert.equal(connection.transport, "ws");
    assert.equal(connection.protocolVersion, version);
    assert.equal(Buffer.from(connection.sent("publish")[0].payload).toString(), "over websocket");
  }
});

/** A CONNECT packet, as bytes (clean session, keepalive 60, client id "raw"). */
function mqttConnect(version: 4 | 5): Uint8Array {
  const body = [
    ...[0x00, 0x04, ...Buffer.from("MQTT")],
    version,
    0x02, // clean session
    0x00,
    60,
    ...(version === 5 ? [0x00] : []), // no properties
    ...[0x00, 0x03, ...Buffer.from("raw")],
  ];
  return Uint8Array.from([0x10, body.length, ...body]);
}
