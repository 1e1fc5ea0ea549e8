/**
 * Attacks by an ordinary MQTT client on the same mosquitto, with no control of the broker: it
 * only subscribes and publishes on the victim's topics (docs/security.md's table). Against our
 * client and our responder as processes, with bound tokens (`--trust`, `--identity`) and
 * without them.
 *
 * - A *reflecting* publisher copies each request token to the response topic of its action:
 *   the lab protocol's client takes its own request as the answer; with `--trust` the copy does
 *   not open under the response key, is counted, and the genuine answer is still taken.
 * - A *moving* publisher copies the `uppercase` request to `reverse` and carries the answer
 *   back: the lab responder answers it; a responder with an identity does not open it.
 * - A *flooding* publisher pours valid fake keys and genuine signatures recorded from earlier
 *   exchanges onto a `--trust` client's topics, at QoS 0 and 1, as fast as mosquitto takes them:
 *   the client still ends at its deadline (while the flood runs), with its memory bounded, and
 *   a genuine exchange during the flood still wins.
 */

import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { Identity } from "../../lib/auth/identity.ts";
import { mosquittoSkipReason, startMosquitto } from "../../support/mosquitto.ts";
import { sampleResident } from "../../support/flood.ts";
import { type Peer, runTask, spawnTask, startResponderTask } from "../../support/processes.ts";
import { pythonPeersSkipReason, startPythonResponder } from "../../support/python.ts";
import { Tap } from "../../support/tap.ts";
import { fakeKeys, recordSignatures, startTrustFlood } from "../../support/trust_flood.ts";

const ignore = mosquittoSkipReason() !== undefined;
const needsPython = ignore || pythonPeersSkipReason() !== undefined;
const NETID = "victim";
const MESSAGE = "transfer 100 to bob";

/** A responder identity in a private temp file, as `--identity` wants it. */
async function identityFile(): Promise<{ file: string; fingerprint: string } & AsyncDisposable> {
  const { identity, pem } = await Identity.generate();
  const dir = await Deno.makeTempDir({ prefix: "attack-identity-" });
  const file = `${dir}/identity.pem`;
  await Deno.writeTextFile(file, pem, { mode: 0o600 });
  return {
    file,
    fingerprint: identity.fingerprint,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * An attacker that copies what arrives on `from(topic)`'s topics to `to(topic)`; counts the
 * copies by source topic. Subscribed (SUBACK) before it returns.
 */
async function copier(
  broker: { host: string; port: number },
  filters: string[],
  to: (topic: string) => string | undefined,
) {
  const tap = await Tap.open(broker, filters);
  const copied = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  const mqtt: MqttClient = tap.mqtt;
  mqtt.on("message", (topic, payload) => {
    const target = to(topic);
    if (target === undefined) return;
    copied.set(topic, (copied.get(topic) ?? 0) + 1);
    mqtt.publish(target, Buffer.from(payload), { qos: 1 });
    waiting.get(topic)?.();
  });
  return {
    copied,
    /** Resolves once something from `topic` was copied (at once if it was). */
    copiedFrom(topic: string): Promise<void> {
      if (copied.has(topic)) return Promise.resolve();
      return new Promise((resolve) => waiting.set(topic, resolve));
    },
    async [Symbol.asyncDispose]() {
      await tap[Symbol.asyncDispose]();
    },
  };
}

/** Copies each request token of the victim to the response topic of its action. */
function reflector(broker: { host: string; port: number }) {
  return copier(broker, [`${NETID}/+/request`], (topic) => {
    const [, action] = topic.split("/");
    return action === "key-exchange" ? undefined : `${NETID}/${action}/response`;
  });
}

/** Moves the uppercase request to reverse, and carries reverse's answer back to uppercase. */
function mover(broker: { host: string; port: number }) {
  return copier(
    broker,
    [`${NETID}/uppercase/request`, `${NETID}/reverse/response`],
    (topic) =>
      topic === `${NETID}/uppercase/request`
        ? `${NETID}/reverse/request`
        : `${NETID}/uppercase/response`,
  );
}

function client(broker: { host: string; port: number }, args: string[]) {
  return runTask("client", ["-h", broker.host, "-p", String(broker.port), ...args]);
}

// ---------------------------------------------------------------------------------------------
// Reflection

Deno.test({
  name: "reflection: the lab protocol's client takes its own request as the answer",
  ignore: needsPython,
  async fn() {
    // The Python responder makes the session and stays silent on actions, so the copy is the
    // only token on the response topic: the weakness, shown deterministically.
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "silent-action");
    await using attacker = await reflector(broker);
    const run = await client(broker, [NETID, "uppercase", MESSAGE]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${MESSAGE}\n`, "its own message, as the 'uppercase' answer");
    assert.equal(attacker.copied.get(`${NETID}/uppercase/request`), 1);
  },
});

Deno.test({
  name: "reflection: --trust refuses the copy of its own request, and counts it",
  ignore: needsPython,
  async fn() {
    await using identity = await identityFile();
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "silent-action", [
      ...["--identity", identity.file],
    ]);
    await using attacker = await reflector(broker);
    const run = await client(broker, [
      ...["-v", "--timeout", "1.5", "--trust", identity.fingerprint],
      ...[NETID, "uppercase", MESSAGE],
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, "", "the copy is never printed");
    assert.equal(attacker.copied.get(`${NETID}/uppercase/request`), 1);
    assert.match(
      run.stderr,
      /debug: a response on victim\/uppercase\/response failed authentication; still waiting/,
    );
    assert.match(
      run.stderr.trimEnd().split("\n").at(-1)!,
      /^secure_mqtt_client: error: no answer on victim\/uppercase\/response within 1\.5 s; 1 response on it failed authentication/,
    );
  },
});

Deno.test({
  name: "reflection: --trust against our --identity responder takes the genuine answer",
  ignore,
  async fn() {
    await using identity = await identityFile();
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker, ["-v", "--identity", identity.file]);
    await using attacker = await reflector(broker);
    const run = await client(broker, [
      ...["--trust", identity.fingerprint],
      ...[NETID, "uppercase", MESSAGE],
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${MESSAGE.toUpperCase()}\n`);
    assert.equal(run.stderr, "");
    await responder.waitForLine(/answered victim\/uppercase \(19 bytes, bound tokens\)/);
    await attacker.copiedFrom(`${NETID}/uppercase/request`);
    assert.equal(attacker.copied.get(`${NETID}/uppercase/request`), 1);
  },
});

// ---------------------------------------------------------------------------------------------
// Moving a token to another action

Deno.test({
  name: "moving: the lab protocol's responder answers a token moved to another action",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker, ["-v"]);
    await using attacker = await mover(broker);
    const run = await client(broker, [NETID, "uppercase", MESSAGE]);
    assert.equal(run.code, 0, run.stderr);
    // Whichever came first: the genuine answer, or the moved one carried back. Both open.
    assert.ok(
      [`${MESSAGE.toUpperCase()}\n`, `${[...MESSAGE].reverse().join("")}\n`].includes(run.stdout),
      run.stdout,
    );
    // The responder took the moved token as a reverse request of this session, and answered.
    await responder.waitForLine(/answered victim\/reverse \(19 bytes\)/);
    assert.equal(attacker.copied.get(`${NETID}/uppercase/request`), 1);
    await attacker.copiedFrom(`${NETID}/reverse/response`); // and carried it back
  },
});

Deno.test({
  name: "moving: our --identity responder does not open a moved bound token; --trust is answered",
  ignore,
  async fn() {
    await using identity = await identityFile();
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker, ["-v", "--identity", identity.file]);
    await using attacker = await mover(broker);
    const run = await client(broker, [
      ...["--trust", identity.fingerprint],
      ...[NETID, "uppercase", MESSAGE],
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${MESSAGE.toUpperCase()}\n`);
    await responder.waitForLine(/reverse request for victim dropped: invalid token/);
    await responder.waitForLine(/answered victim\/uppercase \(19 bytes, bound tokens\)/);
    assert.doesNotMatch(responder.stderrText(), /answered victim\/reverse/);
    assert.equal(attacker.copied.get(`${NETID}/uppercase/request`), 1);
    assert.equal(attacker.copied.get(`${NETID}/reverse/response`), undefined, "nothing to carry");
  },
});

// ---------------------------------------------------------------------------------------------
// A flood of fake keys and replayed signatures

/** The victim's resident memory must stay under this whatever the flood (the bench has it). */
const FLOODED_RSS_BOUND = 160 * 1024 * 1024;

/**
 * A broker, a responder identity and 16 genuine signatures of it for the victim's netid, each
 * over an exchange of its own (so none covers the victim's); the recording responder is gone
 * unless `keepResponder`.
 */
async function floodRig(options: { keepResponder: boolean; config?: string }) {
  const identity = await identityFile();
  const broker = await startMosquitto({ config: options.config });
  const recorder = await startResponderTask(broker, ["--identity", identity.file]);
  let signatures: string[];
  {
    await using tap = await Tap.open(broker, [`${NETID}/key-exchange/signature`]);
    signatures = await recordSignatures(tap, NETID, 16);
  }
  let responder: Peer | undefined = recorder;
  if (!options.keepResponder) {
    await recorder[Symbol.asyncDispose]();
    responder = undefined;
  }
  return {
    identity,
    broker,
    signatures,
    async [Symbol.asyncDispose]() {
      await responder?.[Symbol.asyncDispose]();
      await broker[Symbol.asyncDispose]();
      await identity[Symbol.asyncDispose]();
    },
  };
}

for (const qos of [0, 1] as const) {
  Deno.test({
    name: `a QoS ${qos} flood of fake keys and replayed signatures: --trust ends at its ` +
      "deadline while the flood runs, its memory bounded",
    ignore,
    async fn() {
      await using rig = await floodRig({ keepResponder: false });
      await using flood = await startTrustFlood(rig.broker, {
        netid: NETID,
        keys: fakeKeys(8),
        signatures: rig.signatures,
        count: 3_000_000,
        maxMs: 60_000,
        qos,
      });
      await flood.started;
      await using victim = spawnTask("client", [
        ...["-h", rig.broker.host, "-p", String(rig.broker.port)],
        ...["--timeout", "2", "--trust", rig.identity.fingerprint, NETID, "uppercase", MESSAGE],
      ]);
      const rss = sampleResident(victim.pid);
      const { code } = await victim.status;
      // The order is the assertion: the victim is done, and the flood is not.
      const floodFinished = flood.finished;
      rss.stop();
      flood.stop();
      assert.equal(floodFinished, false, `the flood ended first (${flood.sent} sent)`);
      assert.equal(code, 1, victim.stderrText());
      assert.equal(victim.stdoutText(), "");
      const lines = victim.stderrText().trimEnd().split("\n");
      assert.equal(lines.length, 1, victim.stderrText());
      assert.match(
        lines[0],
        new RegExp(
          `^secure_mqtt_client: error: no key exchange on ${NETID}/key-exchange/response signed ` +
            `by ${rig.identity.fingerprint} within 2 s: 16 signatures by the trusted identity ` +
            "did not cover this key exchange: possible man in the middle; \\d+ repeated " +
            "messages ignored$",
        ),
      );
      assert.ok(rss.samples.length > 0, "sampled");
      assert.ok(
        rss.peak < FLOODED_RSS_BOUND,
        `peak RSS ${(rss.peak / 1048576).toFixed(0)} MiB, over the bound`,
      );
    },
  });

  Deno.test({
    name: `a QoS ${qos} flood of fake keys and replayed signatures: a genuine exchange during ` +
      "it still wins",
    ignore,
    async fn() {
      // The broker's queue for the victim uncapped: mosquitto drops messages for a full
      // subscriber queue, whoever sent them, the responder's too (docs/security.md).
      await using rig = await floodRig({ keepResponder: true, config: "max_queued_messages 0" });
      await using flood = await startTrustFlood(rig.broker, {
        netid: NETID,
        keys: fakeKeys(8),
        signatures: rig.signatures,
        count: 3_000_000,
        maxMs: 60_000,
        qos,
      });
      await flood.started;
      const run = await client(rig.broker, [
        ...["--timeout", "20", "--trust", rig.identity.fingerprint],
        ...[NETID, "uppercase", MESSAGE],
      ]);
      const floodFinished = flood.finished;
      flood.stop();
      assert.equal(floodFinished, false, "it came during the flood");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `${MESSAGE.toUpperCase()}\n`);
    },
  });
}
