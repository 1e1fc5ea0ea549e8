/**
 * What the responder does against each thing a hostile broker (support/hostile_broker.ts)
 * can send, at MQTT 3.1.1 and 5: the MQTT.js events its connection emits ("error" with its
 * `code`, "disconnect", "close"), what `toBrokerError` makes of each error, the outcome of its
 * SUBSCRIBE, its log lines, and how it ends: it stops (run() rejects), it reconnects (and at
 * which protocol version), or it stays as it is. A research probe, not a test: it asserts
 * nothing and prints one block per case.
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --ignore-env --no-prompt bench/hostile_probe.ts [case]
 *
 * The responder runs in this process, with short keepalive, reconnect, CONNACK and SUBACK limits
 * so that each case takes seconds.
 *
 * @module
 */

import { MqttClient } from "mqtt";
import { type BrokerOptions, toBrokerError } from "../lib/mqtt.ts";
import { loadLabGroup } from "../lib/protocol/key_agreement.ts";
import { Responder } from "../lib/responder/responder.ts";
import {
  type HostileConnection,
  MAX_REMAINING_LENGTH,
  startHostileBroker,
} from "../support/hostile_broker.ts";

type Scenario = (connection: HostileConnection) => void | Promise<void>;

const group = loadLabGroup();
const filter = Deno.args[0];
const OBSERVE_MS = 4_000;

// Every MQTT.js client in this process reports its events here (the responder's is private).
let events: string[] = [];
let broker: BrokerOptions;
const emit = MqttClient.prototype.emit as (this: MqttClient, ...args: unknown[]) => boolean;
MqttClient.prototype.emit = function (this: MqttClient, event: string, ...args: unknown[]) {
  if (["connect", "error", "disconnect", "close", "offline", "end"].includes(event)) {
    events.push(describeEvent(event, args));
  }
  return emit.call(this, event, ...args);
} as typeof MqttClient.prototype.emit;
const subscribe = MqttClient.prototype.subscribe;
MqttClient.prototype.subscribe = function (this: MqttClient, ...args: unknown[]) {
  const callback = args.at(-1);
  if (typeof callback === "function") {
    args[args.length - 1] = (error: Error | null, granted: unknown) => {
      const suback = (error as { packet?: { granted?: number[] } } | null)?.packet;
      events.push(
        error
          ? `subscribe callback: error "${error.message}" (SUBACK ${suback?.granted ?? "none"})`
          : `subscribe callback: granted ${JSON.stringify(granted)}`,
      );
      callback(error, granted);
    };
  }
  return (subscribe as (...a: unknown[]) => MqttClient).apply(this, args);
} as typeof subscribe;

function describeEvent(event: string, args: unknown[]): string {
  if (event === "error") {
    const error = args[0] as Error & { code?: unknown };
    const mapped = toBrokerError(error, broker);
    return `error "${error.message}" code=${JSON.stringify(error.code)} -> toBrokerError ` +
      `${mapped.kind}${mapped.permanent ? " PERMANENT" : ""}: "${mapped.message}"`;
  }
  if (event === "disconnect") {
    const packet = args[0] as { reasonCode?: number };
    return `disconnect reasonCode=${packet?.reasonCode}`;
  }
  return event;
}

const serve = async (c: HostileConnection) => {
  await c.connect();
  c.connack(0);
  c.serve();
};
const subscribed = async (c: HostileConnection) => {
  await c.connect();
  c.connack(0);
  c.suback(await c.next("subscribe"));
  c.serve();
};
const connackCase = (code: number): Scenario => async (c) => {
  await c.connect();
  c.connack(code);
};
// After what a case injects, the broker works on (PINGRESP, PUBACK): what follows is the
// responder's doing, not a keepalive timeout of a broker that stopped answering.
const subackCase = (code: number | undefined): Scenario => async (c) => {
  await c.connect();
  c.connack(0);
  const s = await c.next("subscribe");
  if (code !== undefined) c.suback(s, [code]);
  c.serve({ suback: false });
};

const CASES: Record<string, { versions: (4 | 5)[]; scenario: Scenario; ms?: number }> = {
  "suback granted (baseline)": { versions: [4, 5], scenario: subscribed },
  ...Object.fromEntries(
    [1, 2, 3, 4, 5].map((
      code,
    ) => [`connack ${code}`, { versions: [4], scenario: connackCase(code) }]),
  ),
  ...Object.fromEntries(
    [128, 130, 133, 134, 135, 136, 137, 138, 149, 151, 159].map((code) => [
      `connack ${code}`,
      { versions: [5], scenario: connackCase(code) },
    ]),
  ),
  "suback 0x80": { versions: [4, 5], scenario: subackCase(0x80) },
  "suback 0x87": { versions: [5], scenario: subackCase(0x87) },
  "suback 0x97": { versions: [5], scenario: subackCase(0x97) },
  "suback withheld": { versions: [4, 5], scenario: subackCase(undefined) },
  "auth before suback": {
    versions: [4, 5],
    scenario: async (c) => {
      await c.connect();
      c.connack(0);
      await c.next("subscribe");
      c.auth();
      c.serve();
    },
  },
  "auth after suback": {
    versions: [4, 5],
    scenario: async (c) => {
      await subscribed(c);
      c.auth();
    },
  },
  "second connack": {
    versions: [4, 5],
    scenario: async (c) => {
      await subscribed(c);
      c.connack(0);
    },
  },
  "publish with topic alias": {
    versions: [5],
    scenario: async (c) => {
      await subscribed(c);
      c.publish("alice/reverse/request", "x", { qos: 1, properties: { topicAlias: 1 } });
    },
  },
  "publish with an empty topic (3.1.1: what an aliased one looks like)": {
    versions: [4],
    scenario: async (c) => {
      await subscribed(c);
      c.publish("", "x", { qos: 1 });
    },
  },
  "publish of 3 MiB, whole (over our maximum packet size)": {
    versions: [4, 5],
    scenario: async (c) => {
      await subscribed(c);
      c.publish("alice/reverse/request", new Uint8Array(3 * 1024 * 1024), { qos: 1 });
    },
  },
  "publish claiming 256 MiB, streamed": {
    versions: [4, 5],
    ms: 20_000,
    scenario: async (c) => {
      await subscribed(c);
      const n = await c.streamPublish("alice/reverse/request", MAX_REMAINING_LENGTH);
      events.push(`(broker wrote ${n} bytes of ${MAX_REMAINING_LENGTH + 5})`);
    },
  },
  "disconnect from the broker (5: reason 0x8b, server shutting down)": {
    versions: [5],
    scenario: async (c) => {
      await subscribed(c);
      c.send({ cmd: "disconnect", reasonCode: 0x8b });
      c.close();
    },
  },
  "freeze before connack": { versions: [4, 5], ms: 6_000, scenario: (c) => void c.connect() },
  "hang up on the CONNECT": {
    versions: [5],
    scenario: async (c) => {
      await c.connect();
      c.close();
    },
  },
  "an MQTT 3.1.1 CONNACK 1 to an MQTT 5 CONNECT (raw bytes)": {
    versions: [5],
    scenario: async (c) => {
      await c.connect();
      c.write(Uint8Array.of(0x20, 0x02, 0x00, 0x01));
      c.close();
    },
  },
  "freeze after suback (keepalive 1 s)": {
    versions: [4, 5],
    scenario: async (c) => {
      await subscribed(c);
      c.freeze();
    },
  },
  "restart after suback": { versions: [4, 5], scenario: subscribed },
};

for (const [name, { versions, scenario, ms }] of Object.entries(CASES)) {
  if (filter !== undefined && !name.includes(filter)) continue;
  for (const version of versions) await probe(name, version, scenario, ms ?? OBSERVE_MS);
}

async function probe(name: string, version: 4 | 5, scenario: Scenario, observeMs: number) {
  events = [];
  const lines: string[] = [];
  const log = (level: string) => (m: string) => lines.push(`${level}${m}`);
  let started = false;
  let caseIndex = -1; // which CONNECT the case answered
  const versions: number[] = [];
  await using hostile = await startHostileBroker({
    script: async (c) => {
      const connect = await c.connect();
      versions.push(connect.protocolVersion!);
      // For a 3.1.1 case, refuse MQTT 5 the polite way first: the responder falls back.
      if (!started && version === 4 && connect.protocolVersion === 5) {
        c.connack(132);
        return c.close();
      }
      if (started) return serve(c);
      started = true;
      caseIndex = versions.length - 1;
      events.push(`--- broker: ${name} (the client speaks ${connect.protocolVersion})`);
      await scenario(c);
    },
  });
  broker = { transport: "mqtt", host: hostile.host, port: hostile.port };
  const responder = new Responder({
    broker,
    group,
    logger: { verbose: true, debug: log("debug: "), info: log(""), warn: log("warning: ") },
    limits: {
      keepAliveSeconds: 1,
      reconnectMinMs: 200,
      reconnectMaxMs: 400,
      connackTimeoutMs: 2000,
      subackTimeoutMs: 2000,
    },
  });
  const t0 = performance.now();
  let outcome = "still running";
  const running = responder.run().then(
    () => outcome = "stopped",
    (error) => outcome = `ENDED: ${error.message}`,
  );
  if (name.startsWith("restart")) {
    await responder.ready;
    events.push("--- broker: restart");
    await hostile.restart();
  }
  // Observe until the responder ends, or a connection after the case's is served, or time out.
  const deadline = performance.now() + observeMs;
  while (performance.now() < deadline && outcome === "still running") {
    if (started && versions.length > caseIndex + 1) {
      // A reconnect: give it a moment to subscribe, then stop looking.
      await new Promise((r) => setTimeout(r, 300));
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const elapsed = performance.now() - t0;
  const stats = responder.stats();
  await responder.stop();
  await running;
  console.log(`\n## ${name} — MQTT ${version === 5 ? "5" : "3.1.1"}`);
  for (const e of events) console.log(`  event: ${e}`);
  for (const l of lines) console.log(`  log:   ${l}`);
  console.log(
    `  CONNECT versions seen: ${
      versions.join(", ")
    }; connections subscribed: ${stats.connections}; ` +
      `outcome after ${(elapsed / 1000).toFixed(1)} s: ${outcome}`,
  );
}
