/**
 * The responder (lib/responder/connection.ts, in a Responder) against hostile brokers
 * (support/hostile_broker.ts) at MQTT 3.1.1 and 5: every CONNACK code, refused and missing
 * SUBACKs, an AUTH, a second CONNACK, a topic alias, a DISCONNECT, bytes that are not MQTT, a
 * broker that froze before its CONNACK or after the SUBACK, a broker that hangs up on MQTT 5 or
 * restarts. For each: it reconnects with one warning line naming what happened, or it ends with
 * one line, as docs/security.md says; it falls back to MQTT 3.1.1 only when the broker does not
 * speak 5, and tries 5 again on every later connection. Huge packets, with the responder's
 * memory sampled, are in tests/e2e/mqtt_size_guard_test.ts; the same as a process (timestamps,
 * exit status) at the end of this file.
 *
 * The responder runs in this process with short timings (CONNACK and SUBACK within 1 s,
 * keepalive 1 s, reconnects 50 to 200 ms) so that each case takes a moment; every wait is for a
 * line or an event.
 */

import assert from "node:assert/strict";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { Responder, ResponderError } from "../../lib/responder/responder.ts";
import { TIMESTAMP } from "../../support/failures.ts";
import {
  type HostileBroker,
  type HostileConnection,
  relayRequest,
  type Script,
  serveNormally,
  startHostileBroker,
} from "../../support/hostile_broker.ts";
import { spawnTask } from "../../support/processes.ts";
import { type RecordingLogger, recordingLogger } from "../../support/responder_rig.ts";

const group = loadLabGroup();
const LIMITS = {
  keepAliveSeconds: 1,
  reconnectMinMs: 50,
  reconnectMaxMs: 200,
  connackTimeoutMs: 1000,
  subackTimeoutMs: 1000,
};

/** A responder on `broker`, running; `await using` stops it. */
function responderOn(broker: HostileBroker, limits: Partial<typeof LIMITS> = {}) {
  const log = recordingLogger();
  const responder = new Responder({
    broker: { transport: "mqtt", host: broker.host, port: broker.port },
    group,
    logger: log,
    limits: { ...LIMITS, ...limits },
  });
  const run = responder.run();
  run.catch(() => {});
  return {
    responder,
    log,
    run,
    [Symbol.asyncDispose]: () => responder.stop(),
  };
}

/**
 * `first` for the case's connection, then a broker that works, in MQTT 5 too. For a case in
 * MQTT 3.1.1 (`version` 4), the case's connection is the first that speaks it: each MQTT 5
 * CONNECT before is refused as a broker that does not speak 5 refuses it (CONNACK 132). So
 * what comes after the case shows whether the responder tries MQTT 5 again.
 */
function once(version: 4 | 5, first: (c: HostileConnection) => void | Promise<void>): Script {
  let done = false;
  return async (c) => {
    if (done) return serveNormally(c);
    const connect = await c.connect();
    if (version === 4 && connect.protocolVersion === 5) return c.connack(132), c.close();
    done = true;
    await first(c);
  };
}

/** The case's broker: CONNACK 0, the SUBACK granted, and it serves (PINGRESP, PUBACK). */
async function subscribed(c: HostileConnection): Promise<void> {
  await c.connect();
  c.connack(0);
  c.suback(await c.next("subscribe"));
  c.serve();
}

const NAME = { 4: "MQTT 3.1.1", 5: "MQTT 5" } as const;

/** The MQTT versions of the CONNECTs the broker has seen, in order. */
function versions(broker: HostileBroker): (number | undefined)[] {
  return broker.connections.map((c) => c.protocolVersion);
}

/** The warning lines so far. */
function warnings(log: RecordingLogger): string[] {
  return log.lines.filter((line) => line.startsWith("warning: "));
}

/**
 * Waits for the responder to have reconnected after the case's connection: the one warning that
 * says what happened (matching `reason`; nothing else is warned of but falls back to MQTT 3.1.1,
 * `fallbacks` of them), then its subscription on a new connection, in MQTT 5 again. Returns the
 * warning.
 */
async function assertReconnects(
  log: RecordingLogger,
  broker: HostileBroker,
  reason: RegExp,
  { fallbacks = 0 }: { fallbacks?: number } = {},
): Promise<string> {
  const line = await log.waitFor(new RegExp(`^warning: .*${reason.source}.*; reconnecting in `));
  const subscribed = await log.waitFor(/^subscribed to /, 15_000, log.lines.indexOf(line) + 1);
  assert.match(subscribed, /\(MQTT 5\)$/);
  assert.equal(versions(broker).at(-1), 5, "the new connection speaks MQTT 5");
  const fellBack = warnings(log).filter((w) => /does not speak MQTT 5/.test(w));
  assert.deepEqual(warnings(log).filter((w) => !fellBack.includes(w)), [line], "one warning");
  assert.equal(fellBack.length, fallbacks, `falls back to MQTT 3.1.1: ${fellBack}`);
  return line;
}

/** That the responder ended with one line matching `reason`, and connected no more. */
async function assertEnds(
  run: Promise<void>,
  log: RecordingLogger,
  broker: HostileBroker,
  reason: RegExp,
  connections: number,
) {
  await assert.rejects(run, (error) => {
    assert.ok(error instanceof ResponderError);
    assert.match(error.message, reason);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
  assert.equal(broker.connections.length, connections, "no attempt after the fatal one");
  assert.deepEqual(
    warnings(log).filter((w) => !/does not speak MQTT 5/.test(w)),
    [],
    "no warning before the end",
  );
}

// ---------------------------------------------------------------------------------------------
// What trying again cannot fix: the end, with one line

const FATAL_CONNACKS = [
  [4, 1, /unsupported protocol version$/],
  [4, 2, /client identifier rejected$/],
  [4, 4, /bad user name or password/],
  [4, 5, /not authorized/],
  [5, 128, /unspecified error$/],
  [5, 130, /protocol error$/],
  [5, 133, /client identifier rejected$/],
  [5, 134, /bad user name or password/],
  [5, 135, /not authorized/],
  [5, 138, /banned$/],
  [5, 149, /packet too large$/],
] as const;

for (const [version, code, reason] of FATAL_CONNACKS) {
  Deno.test(`${NAME[version]}: CONNACK ${code} ends the responder with one line`, async () => {
    await using broker = await startHostileBroker({
      script: once(version, async (c) => {
        await c.connect();
        c.connack(code);
      }),
    });
    await using r = responderOn(broker);
    const refused = new RegExp(`refused the connection: ${reason.source}`);
    await assertEnds(r.run, r.log, broker, refused, version === 4 ? 2 : 1);
  });
}

const REFUSED_SUBACKS = [[4, 0x80], [5, 0x80], [5, 0x87], [5, 0x97]] as const;
for (const [version, code] of REFUSED_SUBACKS) {
  Deno.test(`${NAME[version]}: a SUBACK of 0x${code.toString(16)} ends the responder with one line`, async () => {
    await using broker = await startHostileBroker({
      script: once(version, async (c) => {
        await c.connect();
        c.connack(0);
        c.suback(await c.next("subscribe"), [code]);
        c.serve();
      }),
    });
    await using r = responderOn(broker);
    await assertEnds(
      r.run,
      r.log,
      broker,
      /: the broker refused the subscription to \+\/\+\/request \(.+\) \(does the broker's ACL/,
      version === 4 ? 2 : 1,
    );
  });
}

// ---------------------------------------------------------------------------------------------
// What a retry may get past: one warning, and a new connection in MQTT 5

const TRANSIENT_CONNACKS = [
  [4, 3, /server unavailable/],
  [5, 136, /server unavailable/],
  [5, 137, /server busy/],
  [5, 151, /quota exceeded/],
  [5, 159, /connection rate exceeded/],
] as const;

for (const [version, code, reason] of TRANSIENT_CONNACKS) {
  Deno.test(`${NAME[version]}: CONNACK ${code} is retried after a backoff, in MQTT 5`, async () => {
    await using broker = await startHostileBroker({
      script: once(version, async (c) => {
        await c.connect();
        c.connack(code);
      }),
    });
    await using r = responderOn(broker);
    const fallbacks = version === 4 ? 1 : 0;
    await assertReconnects(r.log, broker, new RegExp(`refused the connection: ${reason.source}`), {
      fallbacks,
    });
    assert.deepEqual(versions(broker), version === 4 ? [5, 4, 5] : [5, 5]);
  });
}

/**
 * What a broker may do to a connection the responder subscribed on, or is subscribing on, and
 * the warning it gets: every one a lost connection.
 */
const LOSSES: {
  name: string;
  versions: (4 | 5)[];
  script: (c: HostileConnection) => Promise<void>;
  reason: RegExp;
}[] = [
  {
    name: "a SUBACK withheld",
    versions: [4, 5],
    script: async (c) => {
      await c.connect();
      c.connack(0);
      c.serve({ suback: false });
    },
    reason: /lost: no SUBACK within 1 s/,
  },
  {
    name: "an AUTH before the SUBACK",
    versions: [5],
    script: async (c) => {
      await c.connect();
      c.connack(0);
      await c.next("subscribe");
      c.auth();
      c.serve();
    },
    reason: /lost: the broker sent an AUTH packet we did not ask for/,
  },
  {
    name: "an AUTH after the SUBACK",
    versions: [5],
    script: async (c) => {
      await subscribed(c);
      c.auth();
    },
    reason: /lost: the broker sent an AUTH packet we did not ask for/,
  },
  {
    // MQTT 3.1.1 has no AUTH: mqtt-packet's parser refuses the bytes (MQTT.js would leave the
    // connection open, out of step, and drop the rest of what came with them).
    name: "an AUTH (no such packet in 3.1.1) before the SUBACK",
    versions: [4],
    script: async (c) => {
      await c.connect();
      c.connack(0);
      await c.next("subscribe");
      c.auth();
      c.serve();
    },
    reason: /lost: the broker sent what is not valid MQTT \(.+\)/,
  },
  {
    name: "an AUTH (no such packet in 3.1.1) after the SUBACK",
    versions: [4],
    script: async (c) => {
      await subscribed(c);
      c.auth();
    },
    reason: /lost: the broker sent what is not valid MQTT \(.+\)/,
  },
  {
    name: "a second CONNACK",
    versions: [4, 5],
    script: async (c) => {
      await subscribed(c);
      c.connack(0);
    },
    reason: /lost: the broker sent a second CONNACK/,
  },
  {
    name: "a PUBLISH with a topic alias",
    versions: [5],
    script: async (c) => {
      await subscribed(c);
      c.publish("alice/reverse/request", "x", { qos: 1, properties: { topicAlias: 1 } });
    },
    reason: /lost: the broker sent a PUBLISH with a topic alias, which we did not allow/,
  },
  {
    name: "a DISCONNECT (server shutting down)",
    versions: [5],
    script: async (c) => {
      await subscribed(c);
      c.send({ cmd: "disconnect", reasonCode: 0x8b });
    },
    reason: /lost: the broker disconnected us: server shutting down \(0x8b\)/,
  },
  {
    name: "silence after the CONNECT (frozen)",
    versions: [4, 5],
    script: async (c) => {
      await c.connect();
    },
    reason: /lost: no CONNACK within 1 s/,
  },
  {
    name: "silence after the SUBACK (frozen)",
    versions: [4, 5],
    script: async (c) => {
      await subscribed(c);
      c.freeze();
    },
    reason: /lost: no answer to our keepalive ping/,
  },
  {
    name: "a SUBACK claiming 256 MiB",
    versions: [4, 5],
    script: async (c) => {
      await c.connect();
      c.connack(0);
      await c.next("subscribe");
      void c.streamPacket(0x90, 0x0fff_ffff);
      c.serve();
    },
    reason: /lost: the broker sent a SUBACK of 268435460 bytes, over our \d+-byte limit/,
  },
  {
    name: "a closed connection after the SUBACK (a broker that stopped)",
    versions: [4, 5],
    script: async (c) => {
      await subscribed(c);
      c.close();
    },
    reason: /connection to 127\.0\.0\.1:\d+ closed by the broker/,
  },
];

for (const { name, versions: each, script, reason } of LOSSES) {
  for (const version of each) {
    Deno.test(`${NAME[version]}: ${name} is a lost connection: one warning, then MQTT 5 again`, async () => {
      await using broker = await startHostileBroker({ script: once(version, script) });
      await using r = responderOn(broker);
      await assertReconnects(r.log, broker, reason, { fallbacks: version === 4 ? 1 : 0 });
      // It serves on the new connection: a client's request relayed through it is answered.
      const answer = await relayRequest(broker.connections.at(-1)!, "carol", "uppercase", "ok");
      assert.equal(answer, "OK");
    });
  }
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 or 3.1.1

Deno.test("MQTT 5: a broker that does not speak it (CONNACK 132, CONNACK 1, a hang-up): MQTT 3.1.1 at once, with a warning; MQTT 5 again after a loss", async () => {
  const refusals: [string, (c: HostileConnection) => void, RegExp][] = [
    ["CONNACK 132", (c) => (c.connack(132), c.close()), /\(CONNACK 132, unsupported/],
    // What a broker that knows only 3.1.1 sends: a 3.1.1 CONNACK, return code 1.
    ["CONNACK 1", (c) => (c.write(Uint8Array.of(0x20, 0x02, 0x00, 0x01)), c.close()), /CONNACK 1,/],
    ["a hang-up", (c) => c.close(), /\(it closed the connection on our MQTT 5 CONNECT\)/],
  ];
  for (const [what, refuse, reason] of refusals) {
    await using broker = await startHostileBroker({
      script: async (c, index) => {
        const connect = await c.connect();
        // The first connection in 3.1.1 serves, then goes away; after that the broker takes 5.
        if (index === 0 && connect.protocolVersion === 5) return refuse(c);
        await subscribed(c);
        if (index === 1) c.close();
      },
    });
    await using r = responderOn(broker);
    const fallback = await r.log.waitFor(/^warning: .* does not speak MQTT 5 /);
    assert.match(fallback, reason, what);
    assert.match(fallback, /: trying MQTT 3\.1\.1$/);
    const first = await r.log.waitFor(/^subscribed to /);
    assert.match(first, /\(MQTT 3\.1\.1\)$/, what);
    const lost = await r.log.waitFor(
      /^warning: connection to .* closed by the broker; reconnecting/,
    );
    const again = await r.log.waitFor(/^subscribed to /, 15_000, r.log.lines.indexOf(lost) + 1);
    assert.match(again, /\(MQTT 5\)$/, what);
    assert.deepEqual(versions(broker), [5, 4, 5], what);
    assert.deepEqual(warnings(r.log), [fallback, lost], what);
  }
});

Deno.test("a restarted broker: the responder reconnects, subscribes again, answers again, in MQTT 5", async () => {
  await using broker = await startHostileBroker();
  await using r = responderOn(broker);
  await r.responder.ready;
  assert.equal(await relayRequest(broker.connections[0], "dave", "reverse", "before"), "erofeb");
  await broker.restart();
  await assertReconnects(r.log, broker, /connection to .* closed by the broker/);
  const answer = await relayRequest(broker.connections.at(-1)!, "dave", "reverse", "after");
  assert.equal(answer, "retfa");
  assert.equal(r.responder.stats().connections, 2);
  assert.deepEqual(versions(broker), [5, 5]);
});

Deno.test("a broker that breaks the protocol on every connection gets a longer backoff each time", async () => {
  await using broker = await startHostileBroker({
    script: async (c) => {
      await subscribed(c);
      c.connack(0); // a second CONNACK, each time
    },
  });
  await using r = responderOn(broker, { reconnectMinMs: 400, reconnectMaxMs: 1600 });
  // Backoff ceilings 0.4, 0.8 and 1.6 s: each jittered delay lies in the upper half of its own.
  const delays: number[] = [];
  for (let from = 0; delays.length < 3;) {
    const line = await r.log.waitFor(/^warning: .* second CONNACK; reconnecting in /, 15_000, from);
    from = r.log.lines.indexOf(line) + 1;
    delays.push(Number(/reconnecting in ([\d.]+) s$/.exec(line)![1]));
  }
  assert.ok(delays[0] >= 0.2 && delays[0] <= 0.4, `delays ${delays}`);
  assert.ok(delays[1] >= 0.4 && delays[1] <= 0.8, `delays ${delays}`);
  assert.ok(delays[2] >= 0.8 && delays[2] <= 1.6, `delays ${delays}`);
  assert.equal(r.responder.stats().connections, 3, "each connection subscribed, then was lost");
});

// ---------------------------------------------------------------------------------------------
// Huge packets (memory: tests/e2e/mqtt_size_guard_test.ts)

for (const version of [4, 5] as const) {
  Deno.test(`${NAME[version]}: a PUBLISH over the size limit is dropped with a warning; the connection stays and serves`, async () => {
    await using broker = await startHostileBroker({
      script: once(version, async (c) => {
        await subscribed(c);
        c.publish("alice/reverse/request", new Uint8Array(3 * 1024 * 1024), { qos: 1 });
      }),
    });
    await using r = responderOn(broker);
    const dropped = await r.log.waitFor(/^warning: message on alice\/reverse\/request dropped: /);
    assert.match(dropped, /its 3145728-byte payload is over the size limit/);
    const c = broker.connections.at(-1)!;
    assert.equal((await c.next("puback")).messageId, 1, "acknowledged as any message");
    assert.equal(await relayRequest(c, "erin", "lowercase", "STILL"), "still");
    assert.equal(c.isClosed, false);
    assert.equal(r.responder.stats().dropped, 1);
  });
}

// ---------------------------------------------------------------------------------------------
// As a process: its lines, its exit status

Deno.test("the responder process: a lost connection's warning and a refused subscription's end, every line stamped, exit 1", async () => {
  await using broker = await startHostileBroker({
    script: async (c, index) => {
      await c.connect();
      c.connack(0);
      const subscribe = await c.next("subscribe");
      if (index === 0) return void c.auth(); // a lost connection
      c.suback(subscribe, [0x87]); // then refused for good
    },
  });
  await using responder = spawnTask("responder", ["--host", broker.host, "-p", `${broker.port}`]);
  const status = await responder.status;
  const lines = responder.lines("stderr");
  assert.equal(status.code, 1, lines.join("\n"));
  assert.equal(responder.stdoutText(), "");
  for (const line of lines) {
    assert.match(line, new RegExp(`^${TIMESTAMP}secure_mqtt_responder: `), line);
  }
  const said = lines.map((line) => line.replace(new RegExp(`^${TIMESTAMP}`), ""));
  assert.equal(said.filter((line) => / warning: /.test(line)).length, 1, said.join("\n"));
  assert.match(said.find((l) => / warning: /.test(l))!, /AUTH packet we did not ask for/);
  const errors = said.filter((line) => / error: /.test(line));
  assert.equal(errors.length, 1);
  assert.match(errors[0], /refused the subscription to \+\/\+\/request \(not authorized\)/);
  assert.equal(said.at(-1), errors[0], "the error is the last line");
});
