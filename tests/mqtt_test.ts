/**
 * Tests of lib/mqtt.ts: against a real, private mosquitto (skipped with a printed reason when
 * mosquitto is absent, except under CI=true), and against a scripted fake broker for what a
 * real broker will not do on demand (refusals after pipelining, silence, malformed packets,
 * QoS 2, packet id wrap-around).
 *
 * No sleeps: every wait is on an event (a message, an ack, a socket read) or on the client's
 * own timers under test, with short timeouts configured.
 */

import assert from "node:assert/strict";
import {
  MAX_HELD_ACKS,
  MqttClient,
  MqttError,
  type MqttMessage,
  type MqttOptions,
} from "../lib/mqtt.ts";
import { encodePublish, PacketType } from "../lib/mqtt/packet.ts";
import { freePort, mosquittoSkipReason, startMosquitto } from "./support/mosquitto.ts";
import { makeTlsFixture, opensslSkipReason } from "./support/tls.ts";

const ignore = mosquittoSkipReason() !== undefined;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Upper bound on any single wait in these tests, so a regression fails in seconds instead of
 * hanging CI. It bounds waits for events; nothing here sleeps to synchronise.
 */
const WAIT_MS = 10_000;

/** `promise`, or a rejection if it has not settled within WAIT_MS. */
async function within<T>(promise: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${WAIT_MS} ms`)),
      WAIT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects messages; `next()` resolves with the next one (already received or future). */
class Inbox {
  readonly messages: MqttMessage[] = [];
  #waiters: ((m: MqttMessage) => void)[] = [];
  #taken = 0;

  readonly onMessage = (message: MqttMessage): void => {
    this.messages.push(message);
    this.#flush();
  };

  /** The next message not yet returned by next() (in arrival order), within WAIT_MS. */
  next(): Promise<MqttMessage> {
    return within(
      new Promise((resolve) => {
        this.#waiters.push(resolve);
        this.#flush();
      }),
      "message delivery",
    );
  }

  #flush(): void {
    while (this.#waiters.length > 0 && this.#taken < this.messages.length) {
      this.#waiters.shift()!(this.messages[this.#taken++]);
    }
  }
}

function options(broker: { host: string; port: number }, extra: Partial<MqttOptions> = {}) {
  return {
    host: broker.host,
    port: broker.port,
    clientId: `test-${crypto.randomUUID()}`,
    ...extra,
  } satisfies MqttOptions;
}

async function assertMqttError(
  promise: Promise<unknown>,
  pattern: RegExp,
  kind?: MqttError["kind"],
): Promise<MqttError> {
  let caught: unknown;
  try {
    await within(promise);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof MqttError, `expected MqttError, got ${caught}`);
  assert.match(caught.message, pattern);
  assert.doesNotMatch(caught.message, /\n/);
  if (kind !== undefined) assert.equal(caught.kind, kind, caught.message);
  return caught;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// A scripted fake broker: reads raw client packets, writes whatever bytes a test wants.

interface RawPacket {
  type: number;
  flags: number;
  body: Uint8Array;
}

class FakeSession {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(0);
  #offset = 0;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
  }

  /** The next whole packet from the client, or undefined at EOF. */
  async read(): Promise<RawPacket | undefined> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close(); // ends the pending read below
    }, WAIT_MS);
    try {
      return await this.#read(() => timedOut);
    } finally {
      clearTimeout(timer);
    }
  }

  async #read(timedOut: () => boolean): Promise<RawPacket | undefined> {
    while (true) {
      const packet = this.#parse();
      if (packet) return packet;
      const chunk = new Uint8Array(65536);
      let n: number | null;
      try {
        n = await this.#conn.read(chunk);
      } catch {
        n = null;
      }
      if (timedOut()) throw new Error(`fake broker: nothing from the client in ${WAIT_MS} ms`);
      if (n === null) return undefined;
      const rest = this.#buffer.subarray(this.#offset);
      const grown = new Uint8Array(rest.length + n);
      grown.set(rest);
      grown.set(chunk.subarray(0, n), rest.length);
      this.#buffer = grown;
      this.#offset = 0;
    }
  }

  /** Next packet, asserting its type. */
  async expect(type: number): Promise<RawPacket> {
    const packet = await this.read();
    assert.ok(packet, `expected packet type ${type}, got EOF`);
    assert.equal(packet.type, type, `expected packet type ${type}, got ${packet.type}`);
    return packet;
  }

  #parse(): RawPacket | undefined {
    const b = this.#buffer;
    const start = this.#offset;
    let remaining = 0;
    let multiplier = 1;
    let i = start + 1;
    for (;; i++) {
      if (i >= b.length) return undefined;
      remaining += (b[i] & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b[i] & 0x80) === 0) break;
    }
    const end = i + 1 + remaining;
    if (b.length < end) return undefined;
    this.#offset = end;
    return { type: b[start] >> 4, flags: b[start] & 0x0f, body: b.slice(i + 1, end) };
  }

  async write(bytes: Uint8Array | number[]): Promise<void> {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    for (let written = 0; written < data.length;) {
      written += await this.#conn.write(data.subarray(written));
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

class FakeBroker implements Disposable {
  readonly host = "127.0.0.1";
  readonly port: number;
  #listener: Deno.TcpListener;
  #sessions: FakeSession[] = [];

  constructor() {
    this.#listener = Deno.listen({ hostname: this.host, port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
  }

  async accept(): Promise<FakeSession> {
    const session = new FakeSession(await this.#listener.accept());
    this.#sessions.push(session);
    return session;
  }

  /** Accept, read CONNECT, answer CONNACK accepted. */
  async acceptConnected(): Promise<FakeSession> {
    const session = await this.accept();
    await session.expect(PacketType.CONNECT);
    await session.write([0x20, 2, 0, 0]);
    return session;
  }

  [Symbol.dispose](): void {
    for (const session of this.#sessions) session.close();
    this.#listener.close();
  }
}

/** Connect a client to the fake broker, which accepts it (CONNACK 0). */
async function connectFake(
  fake: FakeBroker,
  extra: Partial<MqttOptions> = {},
): Promise<[MqttClient, FakeSession]> {
  const [client, session] = await Promise.all([
    MqttClient.open(options(fake, extra)),
    fake.acceptConnected(),
  ]);
  await within(client.connack);
  return [client, session];
}

const packetId = (packet: RawPacket, offset = 0) =>
  (packet.body[offset] << 8) | packet.body[offset + 1];

// ---------------------------------------------------------------------------------------------
// Against a real mosquitto

Deno.test({
  name: "mosquitto: connect, subscribe two topics in one call, QoS 1 publish of exact bytes",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const inbox = new Inbox();
    const subscriber = await MqttClient.connect(options(broker, { onMessage: inbox.onMessage }));
    const publisher = await MqttClient.connect(options(broker));
    try {
      assert.deepEqual(await subscriber.subscribe(["t/a", "t/b"], 1), [1, 1]);
      const binary = new Uint8Array([0, 1, 0, 255, 0, 0x80, 0x0d, 0x0a, 0]);
      const medium = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 7) & 0xff);
      const large = Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 13 + (i >> 8)) & 0xff);
      await publisher.publish("t/a", binary, { qos: 1 });
      await publisher.publish("t/b", medium, { qos: 1 });
      await publisher.publish("t/a", large, { qos: 1 });
      await publisher.publish("t/b", "text é", { qos: 0 });
      const received = [await inbox.next(), await inbox.next(), await inbox.next()];
      assert.deepEqual(received.map((m) => [m.topic, m.qos, m.retain]), [
        ["t/a", 1, false],
        ["t/b", 1, false],
        ["t/a", 1, false],
      ]);
      assert.deepEqual(received[0].payload, binary);
      assert.deepEqual(received[1].payload, medium);
      assert.deepEqual(received[2].payload, large);
      const text = await inbox.next();
      assert.equal(new TextDecoder().decode(text.payload), "text é");
      assert.equal(text.qos, 0);
    } finally {
      await subscriber.close();
      await publisher.close();
    }
    assert.equal(await within(subscriber.closed), undefined);
    assert.equal(await within(publisher.closed), undefined);
  },
});

Deno.test({
  name: "mosquitto: a retained message reaches a new subscriber with retain=true",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const publisher = await MqttClient.connect(options(broker));
    await publisher.publish("r/x", "stale", { qos: 1, retain: true });
    await publisher.close();

    const inbox = new Inbox();
    const subscriber = await MqttClient.connect(options(broker, { onMessage: inbox.onMessage }));
    assert.deepEqual(await subscriber.subscribe(["r/x"], 0), [0]);
    const message = await inbox.next();
    assert.equal(message.retain, true);
    assert.equal(message.topic, "r/x");
    assert.equal(new TextDecoder().decode(message.payload), "stale");
    await subscriber.close();
  },
});

Deno.test({
  name: "mosquitto: subscribe and publish pipelined before CONNACK",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const inbox = new Inbox();
    const client = await MqttClient.open(options(broker, { onMessage: inbox.onMessage }));
    // Nothing awaited between open() and these calls: they go out right behind CONNECT.
    const subscribed = client.subscribe(["p/response"], 1);
    const published = client.publish("p/response", "echo", { qos: 1 });
    await within(client.connack);
    assert.deepEqual(await within(subscribed), [1]);
    await within(published);
    assert.equal(new TextDecoder().decode((await inbox.next()).payload), "echo");
    await client.close();
  },
});

Deno.test({
  name: "mosquitto: oversize message is skipped, reported, and the connection stays usable",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const inbox = new Inbox();
    const drops: string[] = [];
    const { promise: dropped, resolve: onDropped } = Promise.withResolvers<void>();
    const client = await MqttClient.connect(options(broker, {
      maxPacketBytes: 64 * 1024,
      onMessage: inbox.onMessage,
      onDrop: (reason) => {
        drops.push(reason);
        onDropped();
      },
    }));
    const publisher = await MqttClient.connect(options(broker));
    try {
      await client.subscribe(["big/+"], 1);
      await publisher.publish("big/one", new Uint8Array(1_000_000).fill(1), { qos: 1 });
      await publisher.publish("big/two", "small after", { qos: 1 });
      await within(dropped);
      const size = 1 + 3 + 2 + "big/one".length + 2 + 1_000_000;
      assert.deepEqual(drops, [
        `message on big/one of ${size} bytes exceeds the 65536-byte limit`,
      ]);
      const next = await inbox.next();
      assert.equal(next.topic, "big/two");
      assert.equal(new TextDecoder().decode(next.payload), "small after");
      // Still fully usable in both directions.
      await client.publish("big/three", "x", { qos: 1 });
      assert.equal((await inbox.next()).topic, "big/three");
      assert.equal(inbox.messages.length, 2);
    } finally {
      await client.close();
      await publisher.close();
    }
  },
});

Deno.test({
  name: "mosquitto: broker stopping ends the connection; later calls reject at once",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const client = await MqttClient.connect(options(broker));
    await client.subscribe(["s/x"], 1);
    await broker.stop();
    const error = await within(client.closed);
    assert.ok(error instanceof MqttError);
    assert.equal(error.kind, "lost");
    assert.equal(error.message, `connection to 127.0.0.1:${broker.port} lost: closed by broker`);
    assert.equal(await assertMqttError(client.publish("s/x", "late"), /lost/), error);
    assert.equal(await assertMqttError(client.subscribe(["s/y"]), /lost/), error);
    await client.close(); // idempotent after failure; closed keeps its error
    assert.equal(await within(client.closed), error);
  },
});

Deno.test({
  name: "mosquitto: restart keeps the port and accepts new clients",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    const port = broker.port;
    const before = await MqttClient.connect(options(broker));
    await broker.restart();
    assert.equal(broker.port, port);
    assert.ok((await within(before.closed)) instanceof MqttError);
    const after = await MqttClient.connect(options(broker));
    await after.publish("x", "y", { qos: 1 });
    await after.close();
  },
});

Deno.test({
  name: "mosquitto: password file — bad credentials refused, good ones accepted",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mqtt-auth-" });
    try {
      await run("mosquitto_passwd", ["-b", "-c", `${dir}/passwd`, "alice", "s3cret-pw"]);
      await using broker = await startMosquitto({
        config: `allow_anonymous false\npassword_file ${dir}/passwd`,
      });
      const bad = await assertMqttError(
        MqttClient.connect(options(broker, { username: "alice", password: "wrong-pw" })),
        /^broker refused connection: (bad user name or password|not authorized)$/,
        "refused",
      );
      assert.doesNotMatch(bad.message, /wrong-pw/);
      await assertMqttError(
        MqttClient.connect(options(broker)),
        /^broker refused connection: (bad user name or password|not authorized)$/,
        "refused",
      );
      const good = await MqttClient.connect(
        options(broker, { username: "alice", password: "s3cret-pw" }),
      );
      assert.deepEqual(await good.subscribe(["a/b"], 1), [1]);
      await good.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "mosquitto: TLS with our CA succeeds (IP and host name); another CA fails",
  ignore: ignore || opensslSkipReason() !== undefined,
  async fn() {
    await using pki = await makeTlsFixture();
    await using broker = await startMosquitto({ listenerConfig: pki.mosquittoListenerConfig });
    const ca = await Deno.readTextFile(pki.caFile);
    const other = await Deno.readTextFile(pki.otherCaFile);

    for (const host of ["127.0.0.1", "localhost"]) {
      const inbox = new Inbox();
      const client = await MqttClient.connect(
        options(broker, { host, tls: true, caCerts: [ca], onMessage: inbox.onMessage }),
      );
      await client.subscribe(["tls/x"], 1);
      await client.publish("tls/x", new Uint8Array([0, 1, 2]), { qos: 1 });
      assert.deepEqual((await inbox.next()).payload, new Uint8Array([0, 1, 2]));
      await client.close();
      assert.equal(await within(client.closed), undefined);
    }

    await assertMqttError(
      MqttClient.connect(options(broker, { tls: true, caCerts: [other] })),
      new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${broker.port} failed: \\S`),
      "tls",
    );
    // No extra CA at all: the throwaway CA is not a public root.
    await assertMqttError(
      MqttClient.connect(options(broker, { tls: true })),
      /^TLS handshake with .* failed/,
      "tls",
    );
  },
});

// ---------------------------------------------------------------------------------------------
// Connection failures that need no broker

Deno.test("connection refused on a closed port fails fast with a one-line reason", async () => {
  const port = freePort();
  const started = performance.now();
  await assertMqttError(
    MqttClient.connect({ host: "127.0.0.1", port, clientId: "x" }),
    new RegExp(`^cannot connect to 127\\.0\\.0\\.1:${port}: connection refused$`),
    "connect",
  );
  assert.ok(performance.now() - started < 1000);
});

Deno.test("an unresolvable host name fails with a connect error", async () => {
  await assertMqttError(
    MqttClient.connect({ host: "no-such-host.invalid", port: 1883, clientId: "x" }),
    /^cannot connect to no-such-host\.invalid:1883: /,
    "connect",
  );
});

Deno.test("invalid options and arguments reject without touching the network", async () => {
  await assertMqttError(
    MqttClient.open({ host: "127.0.0.1", port: 0, clientId: "x" }),
    /port/,
    "invalid",
  );
  await assertMqttError(
    MqttClient.open({ host: "127.0.0.1", port: 1, clientId: "x", password: "hunter2" }),
    /requires a user name/,
    "invalid",
  );
  await assertMqttError(
    MqttClient.open({ host: "127.0.0.1", port: 1, clientId: "x", caCerts: ["pem"] }),
    /caCerts: given without tls/,
    "invalid",
  );
  using fake = new FakeBroker();
  const client = await MqttClient.open(options(fake));
  const session = await fake.acceptConnected();
  await within(client.connack);
  await assertMqttError(client.publish("a/+", "x"), /wildcards/, "invalid");
  await assertMqttError(client.subscribe(["a/#/b"], 1), /whole last level/, "invalid");
  await assertMqttError(client.subscribe([], 1), /at least one topic/, "invalid");
  // The connection survived the caller's mistakes.
  const subscribed = client.subscribe(["ok"], 1);
  const sub = await session.expect(PacketType.SUBSCRIBE);
  await session.write([0x90, 3, ...sub.body.subarray(0, 2), 1]);
  assert.deepEqual(await within(subscribed), [1]);
  await client.close();
});

// ---------------------------------------------------------------------------------------------
// Against the scripted fake broker

Deno.test("fake: CONNACK refusal after pipelining rejects every pending op with one error", async () => {
  using fake = new FakeBroker();
  const client = await MqttClient.open(options(fake, { username: "u", password: "p4ss" }));
  const session = await fake.accept();
  const subscribed = client.subscribe(["a", "b"], 1);
  const published = client.publish("a", "x", { qos: 1 });
  const connect = await session.expect(PacketType.CONNECT);
  assert.equal(connect.body[7], 0xc2); // username + password + clean session
  // The ops were pipelined: on the wire before any CONNACK.
  await session.expect(PacketType.SUBSCRIBE);
  await session.expect(PacketType.PUBLISH);
  await session.write([0x20, 2, 0, 4]);
  const error = await assertMqttError(
    client.connack,
    /^broker refused connection: bad user name or password$/,
    "refused",
  );
  assert.equal(await assertMqttError(subscribed, /refused/), error);
  assert.equal(await assertMqttError(published, /refused/), error);
  assert.equal(await within(client.closed), error);
  assert.equal(await assertMqttError(client.publish("a", "y"), /refused/), error);
});

Deno.test("fake: every CONNACK return code maps to its reason", async () => {
  const reasons = [
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
    "return code 6",
  ];
  using fake = new FakeBroker();
  for (const [index, reason] of reasons.entries()) {
    const connecting = MqttClient.connect(options(fake));
    const session = await fake.accept();
    await session.expect(PacketType.CONNECT);
    await session.write([0x20, 2, 0, index + 1]);
    await assertMqttError(connecting, new RegExp(`^broker refused connection: ${reason}$`));
  }
});

Deno.test("fake: no CONNACK within connectTimeoutMs is a timeout", async () => {
  using fake = new FakeBroker();
  const started = performance.now();
  const connecting = MqttClient.connect(options(fake, { connectTimeoutMs: 200 }));
  const session = await fake.accept();
  await session.expect(PacketType.CONNECT);
  await assertMqttError(
    connecting,
    new RegExp(`^cannot connect to 127\\.0\\.0\\.1:${fake.port}: timed out after 200 ms`),
    "timeout",
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 190 && elapsed < 2000, `elapsed ${elapsed}`);
  assert.equal(await session.read(), undefined); // the client closed the socket
});

Deno.test("fake: PINGREQ when idle; a missing PINGRESP ends the connection", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake, { keepAliveSeconds: 1 });
  // First ping is answered: the connection lives on past one keepalive period.
  await session.expect(PacketType.PINGREQ);
  await session.write([0xd0, 0]);
  // Second ping is ignored.
  await session.expect(PacketType.PINGREQ);
  const error = await within(client.closed);
  assert.ok(error instanceof MqttError);
  assert.equal(error.kind, "lost");
  assert.match(error.message, /lost: no PINGRESP within 1 s$/);
});

Deno.test("fake: malformed packet closes the connection with a protocol error", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake);
  const pending = client.publish("a", "x", { qos: 1 });
  await session.expect(PacketType.PUBLISH);
  await session.write([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
  const error = await within(client.closed);
  assert.ok(error instanceof MqttError);
  assert.equal(
    error.message,
    "protocol error from broker: remaining length longer than 4 bytes",
  );
  assert.equal(error.kind, "protocol");
  assert.equal(await assertMqttError(pending, /protocol error/), error);
  assert.equal(await session.read(), undefined);
});

Deno.test("fake: invalid UTF-8 topic and packets before CONNACK are protocol errors", async () => {
  using fake = new FakeBroker();
  const [first, s1] = await connectFake(fake);
  await s1.write([0x30, 4, 0, 2, 0xc3, 0x28]);
  assert.equal(
    (await within(first.closed))?.message,
    "protocol error from broker: PUBLISH topic is not valid UTF-8",
  );

  const second = await MqttClient.open(options(fake));
  const s2 = await fake.accept();
  await s2.expect(PacketType.CONNECT);
  await s2.write([0xd0, 0]);
  await assertMqttError(second.connack, /^protocol error from broker: PINGRESP before CONNACK$/);
  assert.equal((await within(second.closed))?.kind, "protocol");
});

Deno.test("fake: broker closing the socket rejects pending ops with the closed error", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake);
  const pending = client.publish("a", "x", { qos: 1 });
  await session.expect(PacketType.PUBLISH);
  session.close();
  const error = await within(client.closed);
  assert.equal(error?.message, `connection to 127.0.0.1:${fake.port} lost: closed by broker`);
  assert.equal(await assertMqttError(pending, /closed by broker/), error);
});

Deno.test("fake: close() sends DISCONNECT, rejects pending ops, is idempotent", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake);
  const pending = client.publish("a", "never acked", { qos: 1 });
  const fireAndForget = client.publish("b", "qos0 just before close");
  await session.expect(PacketType.PUBLISH);
  const closing = client.close();
  await within(fireAndForget); // accepted before close(): still written
  await session.expect(PacketType.PUBLISH);
  await session.expect(PacketType.DISCONNECT);
  assert.equal(await session.read(), undefined);
  await within(closing);
  await client.close();
  assert.equal(await within(client.closed), undefined);
  await assertMqttError(pending, /^connection to .* closed by client$/, "closed");
  await assertMqttError(client.subscribe(["x"]), /closed by client/, "closed");
  await assertMqttError(client.connack.then(() => client.publish("c", "x")), /closed by client/);
});

Deno.test("fake: SUBACK refusal names the topic; QoS 1 PUBACK resolves the right publish", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake);
  const subscribed = client.subscribe(["ok/1", "denied/2"], 1);
  const sub = await session.expect(PacketType.SUBSCRIBE);
  assert.equal(sub.flags, 0x02);
  await session.write([0x90, 4, ...sub.body.subarray(0, 2), 1, 0x80]);
  await assertMqttError(subscribed, /^subscription to denied\/2 refused$/, "subscription");

  const one = client.publish("t", "1", { qos: 1 });
  const two = client.publish("t", "2", { qos: 1, retain: true });
  const p1 = await session.expect(PacketType.PUBLISH);
  const p2 = await session.expect(PacketType.PUBLISH);
  assert.equal(p1.flags, 0x02);
  assert.equal(p2.flags, 0x03);
  const id1 = packetId(p1, 3);
  const id2 = packetId(p2, 3);
  assert.notEqual(id1, id2);
  let oneDone = false;
  void one.then(() => oneDone = true);
  await session.write([0x40, 2, id2 >> 8, id2 & 0xff]);
  await within(two);
  assert.equal(oneDone, false);
  await session.write([0x40, 2, id1 >> 8, id1 & 0xff]);
  await within(one);
  // An ack for an id not in flight is a protocol error.
  await session.write([0x40, 2, id1 >> 8, id1 & 0xff]);
  assert.match((await within(client.closed))?.message ?? "", /unexpected PUBACK for packet id/);
});

Deno.test("fake: incoming QoS 1 is acked after delivery; QoS 2 handshake, no duplicate", async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const [client, session] = await connectFake(fake, { onMessage: inbox.onMessage });

  await session.write(
    encodePublish({ topic: "q/1", payload: encoder.encode("a"), qos: 1, packetId: 5 }),
  );
  const m1 = await inbox.next();
  assert.deepEqual([m1.topic, m1.qos], ["q/1", 1]);
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 5]);

  const q2 = encodePublish({ topic: "q/2", payload: encoder.encode("b"), qos: 2, packetId: 9 });
  await session.write(q2);
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBREC)).body), [0, 9]);
  await session.write(
    encodePublish({ topic: "q/2", payload: encoder.encode("b"), qos: 2, packetId: 9, dup: true }),
  );
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBREC)).body), [0, 9]);
  await session.write([0x62, 2, 0, 9]);
  const comp = await session.expect(PacketType.PUBCOMP);
  assert.equal(comp.flags, 0);
  assert.deepEqual(Array.from(comp.body), [0, 9]);
  // After PUBREL the id is free again: a new QoS 2 message with it is delivered.
  await session.write(q2);
  await session.expect(PacketType.PUBREC);
  await session.write([0x62, 2, 0, 9]);
  await session.expect(PacketType.PUBCOMP);
  assert.deepEqual(inbox.messages.map((m) => [m.topic, m.qos]), [["q/1", 1], ["q/2", 2], [
    "q/2",
    2,
  ]]);
  await client.close();
});

/** A QoS 1 PUBLISH from the fake broker to the client. */
const qos1 = (topic: string, id: number) =>
  encodePublish({ topic, payload: encoder.encode(topic), qos: 1, packetId: id });

Deno.test("fake: held PUBACK goes out only when our publish is acked, exactly once", async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const [client, session] = await connectFake(fake, { onMessage: inbox.onMessage });
  client.holdAcks();
  await session.write(qos1("kx/response", 7));
  assert.equal((await inbox.next()).topic, "kx/response"); // delivered at once
  const request = client.publish("req", "token", { qos: 1, releaseHeldAcks: true });
  // The next packet is our request, not the PUBACK for id 7: that one is held.
  const publish = await session.expect(PacketType.PUBLISH);
  const id = packetId(publish, 5);
  let acked = false;
  void request.then(() => acked = true);
  await session.write([0x40, 2, id >> 8, id & 0xff]);
  // The held PUBACK follows our request's PUBACK at once, with no further call.
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 7]);
  await within(request);
  assert.equal(acked, true);
  // Released means no longer holding: the next message is acked as usual.
  await session.write(qos1("answer", 8));
  await inbox.next();
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 8]);
  // Exactly once: close() sends only DISCONNECT, no second PUBACK for 7.
  const closing = client.close();
  await session.expect(PacketType.DISCONNECT);
  assert.equal(await session.read(), undefined);
  await within(closing);
});

Deno.test("fake: releaseAcks() sends the held PUBACKs in order, once; a repeat is a no-op", async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const [client, session] = await connectFake(fake, { onMessage: inbox.onMessage });
  client.holdAcks();
  await session.write(qos1("a", 3));
  await session.write(qos1("b", 1));
  await session.write(qos1("a", 3)); // resent while held: still one PUBACK for it
  await inbox.next(), await inbox.next(), await inbox.next();
  // Nothing went out meanwhile: the first packet after a QoS 0 publish is that publish.
  await client.publish("marker", "x");
  assert.equal((await session.expect(PacketType.PUBLISH)).flags, 0);
  await within(client.releaseAcks());
  await within(client.releaseAcks());
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 3]);
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 1]);
  await client.close();
  await session.expect(PacketType.DISCONNECT);
  assert.equal(await session.read(), undefined);
});

Deno.test("fake: close() sends the held PUBACKs before DISCONNECT; failure drops them", async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const [client, session] = await connectFake(fake, { onMessage: inbox.onMessage });
  client.holdAcks();
  await session.write(qos1("a", 11));
  await session.write(qos1("b", 12));
  await inbox.next(), await inbox.next();
  await client.publish("marker", "x"); // nothing went out before it
  assert.equal((await session.expect(PacketType.PUBLISH)).flags, 0);
  const closing = client.close();
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 11]);
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 12]);
  await session.expect(PacketType.DISCONNECT);
  assert.equal(await session.read(), undefined);
  await within(closing);
  assert.equal(await within(client.closed), undefined);
  await within(client.releaseAcks()); // nothing held any more: resolves, sends nothing

  // The broker hangs up while a PUBACK is held: the connection ends cleanly, nothing leaks.
  const inbox2 = new Inbox();
  const [second, s2] = await connectFake(fake, { onMessage: inbox2.onMessage });
  second.holdAcks();
  await s2.write(qos1("a", 1));
  await inbox2.next();
  s2.close();
  assert.equal((await within(second.closed))?.kind, "lost");
  await within(second.releaseAcks()); // dropped with the connection: nothing left to send
});

Deno.test(`fake: at ${MAX_HELD_ACKS} held PUBACKs they go out, so the broker's window never fills`, async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const [client, session] = await connectFake(fake, { onMessage: inbox.onMessage });
  client.holdAcks();
  for (let id = 1; id <= MAX_HELD_ACKS; id++) await session.write(qos1("t", id));
  for (let id = 1; id <= MAX_HELD_ACKS; id++) {
    assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, id]);
  }
  // Still holding: the next one waits for close().
  await session.write(qos1("t", 100));
  while (inbox.messages.length <= MAX_HELD_ACKS) await inbox.next();
  await client.publish("marker", "x");
  assert.equal((await session.expect(PacketType.PUBLISH)).flags, 0);
  const closing = client.close();
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [0, 100]);
  await session.expect(PacketType.DISCONNECT);
  await within(closing);
});

Deno.test("fake: releaseHeldAcks needs QoS 1; flushed() waits for queued writes to be written", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake);
  await assertMqttError(client.publish("t", "x", { releaseHeldAcks: true }), /QoS 1/, "invalid");
  // flushed() settles only after every write queued before it, a large one included.
  const size = 4 * 1024 * 1024;
  let written = false;
  const publishing = client.publish("big", new Uint8Array(size)).then(() => written = true);
  const reading = session.expect(PacketType.PUBLISH);
  await within(client.flushed());
  assert.equal(written, true);
  assert.equal((await reading).body.length, 2 + "big".length + size);
  await publishing;
  await client.close();
  await within(client.flushed()); // never rejects, even once closed
});

Deno.test("fake: oversize QoS 1 PUBLISH is skipped, PUBACKed and reported", async () => {
  using fake = new FakeBroker();
  const inbox = new Inbox();
  const drops: string[] = [];
  const [client, session] = await connectFake(fake, {
    maxPacketBytes: 1024,
    onMessage: inbox.onMessage,
    onDrop: (reason) => drops.push(reason),
  });
  const big = encodePublish({
    topic: "huge",
    payload: new Uint8Array(300_000),
    qos: 1,
    packetId: 300,
  });
  for (let offset = 0; offset < big.length; offset += 10_000) {
    await session.write(big.subarray(offset, offset + 10_000));
  }
  await session.write(encodePublish({ topic: "tiny", payload: new Uint8Array([1]), qos: 0 }));
  assert.deepEqual(Array.from((await session.expect(PacketType.PUBACK)).body), [1, 44]);
  assert.equal((await inbox.next()).topic, "tiny");
  assert.deepEqual(drops, [`message on huge of ${big.length} bytes exceeds the 1024-byte limit`]);
  await client.close();
});

Deno.test("fake: a throwing onMessage ends the connection with a handler error", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake, {
    onMessage: () => {
      throw new Error("boom\nsecond line");
    },
  });
  await session.write(
    encodePublish({ topic: "x", payload: new Uint8Array(), qos: 1, packetId: 1 }),
  );
  const error = await within(client.closed);
  assert.equal(error?.kind, "handler");
  assert.equal(error?.message, "message handler threw: boom second line");
  assert.equal(await session.read(), undefined); // no PUBACK for a message we failed to handle
});

Deno.test("fake: packet ids wrap 65535 -> 1 and skip ids still in flight", async () => {
  using fake = new FakeBroker();
  const [client, session] = await connectFake(fake, { keepAliveSeconds: 0 });
  const held = client.publish("t", "held", { qos: 1 });
  const first = await session.expect(PacketType.PUBLISH);
  const heldId = packetId(first, 3);
  assert.equal(heldId, 1);

  // Ack everything else as it arrives; record the ids.
  const seen: number[] = [];
  const acking = (async () => {
    while (true) {
      const packet = await session.read();
      if (packet === undefined || packet.type !== PacketType.PUBLISH) return packet;
      const id = packetId(packet, 3);
      seen.push(id);
      await session.write([0x40, 2, id >> 8, id & 0xff]);
    }
  })();
  // 65534 publishes use ids 2..65535; the next ones must wrap to 2, skipping the held 1.
  const total = 65_534 + 10;
  for (let sent = 0; sent < total; sent += 1000) {
    const size = Math.min(1000, total - sent);
    await Promise.all(Array.from({ length: size }, () => client.publish("t", "", { qos: 1 })));
  }
  assert.equal(seen.length, total);
  assert.equal(seen[0], 2);
  assert.equal(seen[65_533], 65_535);
  assert.deepEqual(seen.slice(65_534), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.ok(!seen.includes(1));
  await session.write([0x40, 2, 0, heldId]);
  await within(held);
  await client.close();
  assert.equal((await acking)?.type, PacketType.DISCONNECT);
});

Deno.test("fake: TLS — a silent peer times out, a non-TLS peer is a TLS error", async () => {
  using fake = new FakeBroker();
  const silent = MqttClient.connect(options(fake, { tls: true, connectTimeoutMs: 200 }));
  await fake.accept(); // a TCP peer that never speaks TLS
  await assertMqttError(
    silent,
    new RegExp(`^cannot connect to 127\\.0\\.0\\.1:${fake.port}: timed out after 200 ms \\(TLS`),
    "timeout",
  );
  // Not asserted: EOF on s1. Deno 2.9 keeps the socket of a TLS handshake that was cancelled
  // until the peer answers or hangs up (the fake closes it at the end of the test).

  const plain = MqttClient.connect(options(fake, { tls: true }));
  const s2 = await fake.accept();
  await s2.write([0x20, 2, 0, 0]); // an MQTT answer where a TLS ServerHello should be
  await assertMqttError(
    plain,
    new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${fake.port} failed: \\S`),
    "tls",
  );
});

Deno.test("fake: TLS — a peer that hangs up mid-handshake is a lost connection, not a TLS error", async () => {
  // A broker restarting drops handshakes half way; a long-running responder must retry that,
  // while it gives up on a certificate it cannot trust (kind "tls").
  using fake = new FakeBroker();
  const cut = MqttClient.connect(options(fake, { tls: true }));
  const session = await fake.accept();
  session.close();
  await assertMqttError(
    cut,
    new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${fake.port} failed: `),
    "lost",
  );
});
