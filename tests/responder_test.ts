/**
 * The responder: its units, interop both ways with the Python reference
 * peers, abuse (a garbage flood, a key-exchange flood, retained requests, a broker restart),
 * and its command line. Integration tests run against a private mosquitto.
 */

import assert, {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  rejects as assertRejects,
} from "node:assert/strict";
import { encodeBitString, encodeInteger, encodeOid, encodeSequence } from "../lib/crypto/der.ts";
import { encodePublicKeyPem, generateKeyPair } from "../lib/crypto/dh.ts";
import type { Fernet } from "../lib/crypto/fernet.ts";
import { pemEncode } from "../lib/crypto/pem.ts";
import { requestTransform } from "../lib/client.ts";
import type { Logger } from "../lib/log.ts";
import { MqttClient, type MqttMessage } from "../lib/mqtt.ts";
import {
  type Action,
  ACTIONS,
  agreeFernet,
  loadLabGroup,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PUBLIC_KEY_PEM_BYTES,
} from "../lib/protocol.ts";
import {
  backoffDelay,
  DEFAULT_LIMITS,
  printable,
  Responder,
  ResponderError,
} from "../lib/responder.ts";
import { type Broker, freePort, mosquittoSkipReason, startMosquitto } from "./support/mosquitto.ts";
import { spawnPeer, spawnTask, startResponderTask } from "./support/processes.ts";
import {
  PYTHON,
  pythonPeersSkipReason,
  runPythonClient,
  startPythonResponder,
} from "./support/python.ts";

const group = loadLabGroup();
const needsBroker = mosquittoSkipReason() !== undefined;
const needsPython = needsBroker || pythonPeersSkipReason() !== undefined;
const SUBSCRIBED = /subscribed to \+\/key-exchange\/request and \+\/\+\/request/;

// ---------------------------------------------------------------------------------------------
// Helpers

/** A logger that keeps its lines, and can wait for one (instead of sleeping). */
function recordingLogger(): Logger & {
  lines: string[];
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
} {
  const lines: string[] = [];
  const waiters = new Set<(line: string) => boolean>();
  const push = (line: string) => {
    lines.push(line);
    for (const w of waiters) if (w(line)) waiters.delete(w);
  };
  return {
    lines,
    debug: (m) => push(`debug: ${m}`),
    info: (m) => push(m),
    warn: (m) => push(`warning: ${m}`),
    waitFor(pattern, timeoutMs = 10_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = (line: string) => {
          if (!pattern.test(line)) return false;
          clearTimeout(timer);
          resolve(line);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no log line matching ${pattern}:\n${lines.join("\n")}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}

/** A test-side MQTT connection whose deliveries on `filters` can be awaited per topic. */
class Tap implements AsyncDisposable {
  #queues = new Map<string, MqttMessage[]>();
  #waiters = new Map<string, (m: MqttMessage) => void>();
  private constructor(readonly mqtt: MqttClient) {}

  static async open(broker: Broker, filters: string[] = []): Promise<Tap> {
    // Clean session: nothing arrives before the SUBSCRIBE below, by which time `box` is set.
    const box: { tap?: Tap } = {};
    const mqtt = await MqttClient.connect({
      host: broker.host,
      port: broker.port,
      clientId: `tap-${crypto.randomUUID()}`,
      maxPacketBytes: 16 * 1024 * 1024,
      onMessage: (m) => {
        if (box.tap) box.tap.#put(m);
      },
    });
    const tap = box.tap = new Tap(mqtt);
    if (filters.length > 0) await mqtt.subscribe(filters, 1);
    return tap;
  }

  #put(m: MqttMessage): void {
    const waiter = this.#waiters.get(m.topic);
    if (waiter) {
      this.#waiters.delete(m.topic);
      return waiter(m);
    }
    const queue = this.#queues.get(m.topic) ?? [];
    queue.push(m);
    this.#queues.set(m.topic, queue);
  }

  /** The next message on `topic`; rejects after `timeoutMs`. */
  next(topic: string, timeoutMs = 10_000): Promise<MqttMessage> {
    const queued = this.#queues.get(topic)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(topic);
        reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(topic, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  publish(topic: string, payload: string | Uint8Array, retain = false): Promise<void> {
    return this.mqtt.publish(topic, payload, { qos: 1, retain });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.mqtt.close();
  }
}

/** Runs a key exchange for `netid` by hand (the tap must watch `+/key-exchange/response`). */
async function handshake(tap: Tap, netid: string): Promise<Fernet> {
  const ours = generateKeyPair(group);
  await tap.publish(`${netid}/key-exchange/request`, encodePublicKeyPem(group, ours.publicKey));
  const reply = await tap.next(`${netid}/key-exchange/response`);
  return await agreeFernet(group, ours, new TextDecoder().decode(reply.payload));
}

/** A PKCS#3 SubjectPublicKeyInfo PEM with any p, g, y (no range checks: for hostile keys). */
function rawPublicKeyPem(p: bigint, g: bigint, y: bigint): string {
  const der = encodeSequence(
    encodeSequence(
      encodeOid("1.2.840.113549.1.3.1"),
      encodeSequence(encodeInteger(p), encodeInteger(g)),
    ),
    encodeBitString(encodeInteger(y)),
  );
  return pemEncode("PUBLIC KEY", der);
}

/** True when `output` is `input` with each character kept 0, 1 or 2 times, in order. */
function isRandomOf(input: string, output: string): boolean {
  const a = Array.from(input);
  const b = Array.from(output);
  const memo = new Map<number, boolean>();
  const can = (i: number, j: number): boolean => {
    if (i === a.length) return j === b.length;
    const key = i * (b.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let ok = can(i + 1, j);
    if (!ok && b[j] === a[i]) ok = can(i + 1, j + 1) || (b[j + 1] === a[i] && can(i + 1, j + 2));
    memo.set(key, ok);
    return ok;
  };
  return can(0, 0);
}

const sorted = (s: string) => Array.from(s).sort().join("");

/** Checks an answer against the action's contract (shuffle and random by their properties). */
function assertAnswer(action: Action, input: string, output: string): void {
  switch (action) {
    case "uppercase":
      return assertEquals(output, input.toUpperCase());
    case "lowercase":
      return assertEquals(output, input.toLowerCase());
    case "reverse":
      return assertEquals(output, Array.from(input).reverse().join(""));
    case "shuffle":
      return assertEquals(sorted(output), sorted(input), `not a permutation: ${output}`);
    case "random":
      return assert(isRandomOf(input, output), `not a drop/duplicate of the input: ${output}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Units: no broker

Deno.test("backoffDelay doubles from the minimum, is capped, and jitters in the upper half", () => {
  const limits = { reconnectMinMs: 500, reconnectMaxMs: 30_000 };
  assertEquals(backoffDelay(0, limits, () => 0), 250);
  assertEquals(backoffDelay(0, limits, () => 1), 500);
  assertEquals(backoffDelay(3, limits, () => 1), 4000);
  assertEquals(backoffDelay(50, limits, () => 1), 30_000);
  assertEquals(backoffDelay(50, limits, () => 0), 15_000);
  const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, limits)));
  assert(spread.size > 1, "no jitter");
});

Deno.test("printable escapes control and bidi characters and truncates", () => {
  assertEquals(
    printable("evil\nsecure_mqtt_responder: answered"),
    "evil\\nsecure_mqtt_responder: answered",
  );
  assertEquals(printable("\x1b[31mred"), "\\u001b[31mred");
  assertEquals(printable("a\u202eb"), "a\\u202eb");
  assertEquals(printable("x".repeat(100), 10), "xxxxxxxxxx…");
});

Deno.test("the README's limits table states the limits in force", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const cell = (limit: string) => {
    const row = readme.split("\n").find((l) => l.startsWith(`| ${limit} `));
    assert(row, `README has no row "${limit}"`);
    return row.split("|")[2].trim();
  };
  const n = (x: number) => x.toLocaleString("en-US");
  assertMatch(cell("live sessions"), new RegExp(`^${n(DEFAULT_LIMITS.maxSessions)},`));
  assertMatch(
    cell("idle expiry of a session"),
    new RegExp(`^${DEFAULT_LIMITS.sessionIdleMs / 60_000} min`),
  );
  const kx = cell("netids waiting for a key exchange");
  assertMatch(kx, new RegExp(`^${n(DEFAULT_LIMITS.maxPendingKeyExchanges)};`));
  assertMatch(kx, new RegExp(`over ${DEFAULT_LIMITS.maxKeyExchangeWaitMs / 1000} s`));
  assertMatch(
    cell("action requests in flight"),
    new RegExp(
      `^${DEFAULT_LIMITS.maxActionsInFlight}, and ${
        DEFAULT_LIMITS.maxActionBytesInFlight / 2 ** 20
      } MiB`,
    ),
  );
  assertMatch(cell("message size"), new RegExp(`^${MAX_MESSAGE_BYTES / 2 ** 20} MiB`));
});

// ---------------------------------------------------------------------------------------------
// Interop with the Python reference peers

Deno.test({
  name: "a Python (pyca + paho) client gets correct answers for every action",
  ignore: needsPython,
  async fn() {
    await using broker = await startMosquitto();
    const log = recordingLogger();
    await using _responder = await Responder.start({ ...broker, group, logger: log });
    const message = "Hello, Wörld! 123 abc";
    const runs = await Promise.all(
      ACTIONS.map((action) => runPythonClient(broker, [`py-${action}`, action, message])),
    );
    ACTIONS.forEach((action, i) => {
      const run = runs[i];
      assertEquals(run.code, 0, `${action}: ${run.stderr}`);
      assertAnswer(action, message, run.stdout.replace(/\n$/, ""));
    });
    assertEquals(log.lines.filter((l) => /^answered py-/.test(l)).length, ACTIONS.length);
    assert(!log.lines.some((l) => l.includes(message)), "plaintext in the log");
  },
});

Deno.test({
  name: "a Python client whose shared secret starts with a zero byte still gets its answer",
  ignore: needsPython,
  async fn() {
    // A zero-led secret takes ~256 exchanges on average (one in 256), ~90 ms each with the
    // Python client (most of it waiting, not computing). Three clients hunt at once and the
    // first to find one must get the right answer: about a third of the wait, same proof.
    await using broker = await startMosquitto();
    await using responder = await Responder.start({ ...broker, group });
    const started = performance.now();
    await using hunters = new AsyncDisposableStack(); // the losers are killed at the end
    const runs = [0, 1, 2].map((i) =>
      hunters.use(spawnPeer(PYTHON, [
        "-u",
        "tests/peers/client.py",
        "--host",
        broker.host,
        "--port",
        String(broker.port),
        "--zero-lead",
        `zero-${i}`,
        "reverse",
        "zero-led Z",
      ]))
    );
    const winner = await Promise.race(runs.map((run) => run.status.then(() => run)));
    assertEquals((await winner.status).code, 0, winner.stderrText());
    assertEquals(winner.stdoutText(), "Z del-orez\n");
    const exchanges = /zero-lead after (\d+) exchanges/.exec(winner.stderrText())?.[1];
    assert(exchanges !== undefined, winner.stderrText());
    console.log(
      `zero-led shared secret after ${exchanges} exchanges by one of 3 clients in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s; the responder made ${responder.stats().keyExchanges} key pairs in all`,
    );
  },
});

Deno.test({
  name: "our client gets correct answers from the Python reference responder",
  ignore: needsPython,
  async fn() {
    await using broker = await startMosquitto();
    await using _py = await startPythonResponder(broker);
    const message = "interop, the other way round";
    const answers = await Promise.all(
      ACTIONS.map((action) =>
        requestTransform({
          ...broker,
          netid: `ts-${action}`,
          action,
          message,
          timeoutMs: 10_000,
          group,
        })
      ),
    );
    ACTIONS.forEach((action, i) => assertAnswer(action, message, answers[i]));
  },
});

// ---------------------------------------------------------------------------------------------
// Sessions

Deno.test({
  name: "many netids at once, and the newest key exchange for a netid wins",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const log = recordingLogger();
    await using responder = await Responder.start({ ...broker, group, logger: log });
    await using tap = await Tap.open(broker, ["+/key-exchange/response", "+/+/response"]);

    const first = await handshake(tap, "same");
    const other = await handshake(tap, "other");
    await tap.publish("same/reverse/request", await first.encrypt("abc"));
    assertEquals(
      new TextDecoder().decode(
        await first.decrypt((await tap.next("same/reverse/response")).payload),
      ),
      "cba",
    );

    const second = await handshake(tap, "same"); // replaces the first session for "same"
    await tap.publish("same/reverse/request", await first.encrypt("old key"));
    await tap.publish("same/uppercase/request", await second.encrypt("new key"));
    await tap.publish("other/lowercase/request", await other.encrypt("UNTOUCHED"));
    const upper = await tap.next("same/uppercase/response");
    assertEquals(new TextDecoder().decode(await second.decrypt(upper.payload)), "NEW KEY");
    const lower = await tap.next("other/lowercase/response");
    assertEquals(new TextDecoder().decode(await other.decrypt(lower.payload)), "untouched");
    // The token under the replaced key was refused (and said so), not answered.
    assert(
      log.lines.some((l) => /reverse request for same dropped: invalid token/.test(l)),
      log.lines.join("\n"),
    );
    assertEquals(responder.stats().sessions, 2);
    assertEquals(responder.stats().keyExchanges, 3);
  },
});

Deno.test({
  name: "a session idle past the limit is forgotten; the cap evicts the least recently used",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const log = recordingLogger();
    await using responder = await Responder.start({
      ...broker,
      group,
      logger: log,
      limits: { maxSessions: 2 },
    });
    await using tap = await Tap.open(broker, ["+/key-exchange/response", "+/+/response"]);
    const a = await handshake(tap, "lru-a");
    await handshake(tap, "lru-b");
    await tap.publish("lru-a/reverse/request", await a.encrypt("a")); // a is now the newest
    await tap.next("lru-a/reverse/response");
    const c = await handshake(tap, "lru-c"); // evicts b
    await tap.publish("lru-b/reverse/request", await c.encrypt("b"));
    await tap.publish("lru-c/reverse/request", await c.encrypt("c"));
    await tap.next("lru-c/reverse/response");
    assert(log.lines.some((l) => /reverse request for lru-b dropped: no session/.test(l)));
    assertEquals(responder.stats().sessions, 2);
  },
});

Deno.test({
  name: "requests beyond the in-flight byte budget are dropped, and it says so once",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const log = recordingLogger();
    await using _responder = await Responder.start({
      ...broker,
      group,
      logger: log,
      limits: { maxActionBytesInFlight: 1000 },
    });
    await using tap = await Tap.open(broker, ["+/key-exchange/response", "+/+/response"]);
    const f = await handshake(tap, "budget");
    await tap.publish("budget/reverse/request", await f.encrypt("x".repeat(2000)));
    await tap.publish("budget/reverse/request", await f.encrypt("x".repeat(3000)));
    await tap.publish("budget/reverse/request", await f.encrypt("small"));
    const reply = await tap.next("budget/reverse/response");
    assertEquals(new TextDecoder().decode(await f.decrypt(reply.payload)), "llams");
    const full = log.lines.filter((l) => /requests \(0 bytes\) being answered: dropping/.test(l));
    assertEquals(full.length, 1, log.lines.join("\n"));
  },
});

// ---------------------------------------------------------------------------------------------
// Abuse

Deno.test({
  name: "a garbage flood is logged once per item and dropped; the next session succeeds",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    await using tap = await Tap.open(broker, ["+/key-exchange/response", "+/+/response"]);
    // Retained before the responder subscribes, so the broker hands them over as retained.
    await tap.publish(
      "g-retained/key-exchange/request",
      encodePublicKeyPem(group, generateKeyPair(group).publicKey),
      true,
    );
    await tap.publish("g-retained/uppercase/request", "stale", true);

    await using responder = await startResponderTask(broker);

    const session = await handshake(tap, "g-session");
    const token = await session.encrypt("a valid request");
    const { p, g } = group;
    const y = generateKeyPair(group).publicKey;
    // [netid, topic suffix, payload, the log line it must cause exactly once]
    const flood: [string, string, string | Uint8Array, RegExp][] = [
      [
        "g-pem",
        "key-exchange",
        "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
        /key exchange for g-pem dropped: peer public key is malformed/,
      ],
      ["g-empty", "key-exchange", "", /key exchange for g-empty dropped/],
      [
        "g-binary",
        "key-exchange",
        new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
        /key exchange for g-binary dropped: not UTF-8/,
      ],
      [
        "g-big-pem",
        "key-exchange",
        "A".repeat(MAX_PUBLIC_KEY_PEM_BYTES + 1),
        /key exchange for g-big-pem dropped: \d+ bytes is over/,
      ],
      [
        "g-other-g",
        "key-exchange",
        rawPublicKeyPem(p, 5n, y),
        /key exchange for g-other-g dropped: .*different DH parameters/,
      ],
      [
        "g-other-p",
        "key-exchange",
        rawPublicKeyPem(p - 2n, g, y),
        /key exchange for g-other-p dropped: .*different DH parameters/,
      ],
      [
        "g-y-one",
        "key-exchange",
        rawPublicKeyPem(p, g, 1n),
        /key exchange for g-y-one dropped: .*out of range/,
      ],
      [
        "g-y-p-1",
        "key-exchange",
        rawPublicKeyPem(p, g, p - 1n),
        /key exchange for g-y-p-1 dropped: .*out of range/,
      ],
      [
        "g-y-p",
        "key-exchange",
        rawPublicKeyPem(p, g, p),
        /key exchange for g-y-p dropped: .*out of range/,
      ],
      ["g-nobody", "uppercase", token, /uppercase request for g-nobody dropped: no session/],
      [
        "g-session",
        "explode",
        token,
        /ignored a request on g-session\/explode\/request: unknown action/,
      ],
      [
        "g-session",
        "lowercase",
        "not a token at all",
        /lowercase request for g-session dropped: invalid token/,
      ],
      [
        "g-session",
        "reverse",
        token.slice(0, 40),
        /reverse request for g-session dropped: invalid token/,
      ],
      [
        "g-session",
        "shuffle",
        await session.encrypt(new Uint8Array([0x68, 0xff, 0xfe])),
        /shuffle request for g-session dropped: message is not UTF-8/,
      ],
      [
        "g-session",
        "random",
        await session.encrypt("a".repeat(MAX_MESSAGE_BYTES + 1)),
        /random request for g-session dropped: message of \d+ bytes is over/,
      ],
      [
        "g-session",
        "uppercase",
        new Uint8Array(MAX_PAYLOAD_BYTES + 1),
        /uppercase request for g-session dropped: \d+ bytes is over the 2097152-byte limit/,
      ],
      [
        "g-session",
        "lowercase",
        new Uint8Array(8 * 1024 * 1024),
        /dropped a message: message on g-session\/lowercase\/request of \d+ bytes exceeds/,
      ],
      // Brokers refuse control characters in topics, but a bidi override gets through: it
      // must not reorder what a terminal shows of the log line.
      [
        "evil\u202egnp.exe",
        "key-exchange",
        "x",
        /key exchange for evil\\u202egnp\.exe dropped/,
      ],
    ];
    for (const [netid, action, payload] of flood) {
      await tap.publish(`${netid}/${action}/request`, payload);
    }
    // Topics with extra levels match neither subscription: the broker must not deliver them.
    await tap.publish("g/x/uppercase/request", token);
    await tap.publish("g-session/uppercase/request/extra", token);

    // [log line, times]: a retained key exchange request matches both subscriptions, and
    // brokers hand a retained message over once per matching filter (live ones only once).
    const expected: [RegExp, number][] = [
      ...flood.map(([, , , line]): [RegExp, number] => [line, 1]),
      [/ignored a retained request on g-retained\/key-exchange\/request/, 2],
      [/ignored a retained request on g-retained\/uppercase\/request/, 1],
    ];
    for (const [line] of expected) await responder.waitForLine(line);

    // Every other session goes on: a normal one now, and the flooded netid's own.
    const answer = await requestTransform({
      ...broker,
      netid: "after-flood",
      action: "uppercase",
      message: "top secret text",
      timeoutMs: 10_000,
      group,
    });
    assertEquals(answer, "TOP SECRET TEXT");
    await tap.publish("g-session/reverse/request", token);
    const reply = await tap.next("g-session/reverse/response");
    assertEquals(new TextDecoder().decode(await session.decrypt(reply.payload)), "tseuqer dilav a");
    await responder.waitForLine(/answered g-session\/reverse/);

    assert(!responder.exited, "the responder died");
    const lines = responder.lines("stderr");
    for (const [line, times] of expected) {
      assertEquals(
        lines.filter((l) => line.test(l)).length,
        times,
        `${line} not logged ${times} time(s):\n${lines.join("\n")}`,
      );
    }
    assert(!responder.stderrText().includes("\u202e"), "a raw bidi override in the log");
    assert(!lines.some((l) => /g\/x\/|request\/extra/.test(l)), "extra-level topic delivered");
    assert(!responder.stderrText().includes("top secret text"), "plaintext in the log");
    assert(!responder.stderrText().includes("a valid request"), "plaintext in the log");
    responder.kill("SIGTERM");
    assertEquals((await responder.status).code, 0);
  },
});

Deno.test({
  name: "a key-exchange flood neither starves action requests nor grows the queue unbounded",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const log = recordingLogger();
    await using responder = await Responder.start({
      ...broker,
      group,
      logger: log,
      limits: { maxPendingKeyExchanges: 150 },
    });
    await using tap = await Tap.open(broker, ["+/key-exchange/response", "+/+/response"]);
    const victim = await handshake(tap, "victim");

    // 200 distinct netids (one valid key is enough: each costs us a fresh key pair) and 100
    // repeats of one netid, which must coalesce into a few exchanges at most.
    const pem = encodePublicKeyPem(group, generateKeyPair(group).publicKey);
    const kxAnswers = new Map<string, number>();
    let kxBeforeVictim: number | undefined;
    const counter = await MqttClient.connect({
      ...broker,
      clientId: "kx-counter",
      onMessage: (m) => {
        kxAnswers.set(m.topic, (kxAnswers.get(m.topic) ?? 0) + 1);
        if (m.topic === "victim/uppercase/response") {
          kxBeforeVictim = [...kxAnswers.values()].reduce((a, b) => a + b) - 2;
        }
      },
    });
    await counter.subscribe(["+/key-exchange/response", "victim/uppercase/response"], 1);
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      publishes.push(tap.publish(`flood-${i}/key-exchange/request`, pem));
      if (i % 2 === 0) publishes.push(tap.publish("repeat/key-exchange/request", pem));
    }
    await Promise.all(publishes);
    const queuedWhenSent = responder.stats().pendingKeyExchanges;
    await tap.publish("victim/uppercase/request", await victim.encrypt("me first"));
    const reply = await tap.next("victim/uppercase/response");
    assertEquals(new TextDecoder().decode(await victim.decrypt(reply.payload)), "ME FIRST");
    assert(queuedWhenSent > 50 && queuedWhenSent <= 150, `${queuedWhenSent} queued`);
    // Answered after a handful of key exchanges, not after the ~100 still queued.
    await log.waitFor(/key exchange queue drained; \d+ request\(s\) were dropped/);
    await counter.close();
    assert(kxBeforeVictim !== undefined && kxBeforeVictim < 30, `waited behind ${kxBeforeVictim}`);
    console.log(
      `${queuedWhenSent} key exchanges queued; the action was answered after ${kxBeforeVictim}`,
    );

    // Bounded: 201 distinct netids against a cap of 150, so some were refused, and it said so.
    assert(log.lines.some((l) => /key exchange queue full \(150 netids waiting\)/.test(l)));
    const stats = responder.stats();
    // Slots freed while the flood was still arriving were refilled, so not exactly 150; but
    // well short of the 200 + victim + repeats that an unbounded queue would have answered.
    assert(stats.keyExchanges < 190, `${stats.keyExchanges} key exchanges for a 150 cap`);
    assert(stats.dropped > 0);
    const repeats = kxAnswers.get("repeat/key-exchange/response") ?? 0;
    assert(repeats >= 1 && repeats <= 3, `${repeats} answers to 100 coalescing repeats`);
  },
});

Deno.test({
  name: "the responder reconnects and resubscribes after the broker restarts",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker);
    const mark = responder.lineCount("stderr");
    await broker.restart();
    await responder.waitForLine(/connection to .* lost|reconnecting in/, { from: mark });
    await responder.waitForLine(SUBSCRIBED, { from: mark });
    const answer = await requestTransform({
      ...broker,
      netid: "after-restart",
      action: "reverse",
      message: "back",
      timeoutMs: 10_000,
      group,
    });
    assertEquals(answer, "kcab");
    responder.kill("SIGINT");
    assertEquals((await responder.status).code, 0);
  },
});

// ---------------------------------------------------------------------------------------------
// Command line

Deno.test("responder --help and --version exit 0", async () => {
  await using help = spawnTask("responder", ["--help"]);
  assertEquals((await help.status).code, 0);
  assertMatch(
    help.stdoutText(),
    /^usage: secure_mqtt_responder \[-h\] \[-p PORT\] \[--host HOST\] \[-v\]/,
  );
  assertMatch(help.stdoutText(), /10000 live sessions/);
  await using version = spawnTask("responder", ["--version"]);
  assertEquals((await version.status).code, 0);
  assertMatch(version.stdoutText(), /^secure_mqtt_responder \d+\.\d+\.\d+\n$/);
});

Deno.test("responder usage errors exit 2 with one line and the usage", async () => {
  const cases: [string[], RegExp][] = [
    [["-p", "99999"], /argument -p\/--port: invalid port '99999'/],
    [["-p", "x"], /invalid port 'x'/],
    [["--bogus"], /unrecognized option --bogus/],
    [["extra"], /unrecognized arguments: extra/],
    [["--host", ""], /argument --host: invalid host/],
    [["--cafile", "/nonexistent/ca.pem"], /argument --cafile: cannot read/],
  ];
  await Promise.all(cases.map(async ([args, pattern]) => {
    await using run = spawnTask("responder", args);
    assertEquals((await run.status).code, 2, `${args.join(" ")}: ${run.stderrText()}`);
    const [first, second] = run.stderrText().split("\n");
    assertMatch(first, /^secure_mqtt_responder: error: /);
    assertMatch(first, pattern);
    assertMatch(second, /^usage: secure_mqtt_responder /);
  }));
});

Deno.test({
  name: "responder exits 0 on SIGTERM, and keeps retrying while the broker is down",
  ignore: needsBroker,
  async fn() {
    // A port nobody listens on: the service retries (it is a service) and still stops cleanly.
    const port = String(freePort());
    await using responder = spawnTask("responder", ["--host", "127.0.0.1", "-p", port]);
    await responder.waitForLine(
      /cannot connect to 127\.0\.0\.1:\d+: connection refused; reconnecting in/,
    );
    responder.kill("SIGTERM");
    assertEquals((await responder.status).code, 0);
    await responder.waitForLine(/SIGTERM: shutting down/);
    await responder.waitForLine(/stopped: 0 key exchange/);
  },
});

Deno.test({
  name: "a refused login is fatal: exit 1 with one line",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto({ config: "allow_anonymous false" });
    await using responder = spawnTask("responder", [
      "--host",
      broker.host,
      "-p",
      String(broker.port),
    ]);
    assertEquals((await responder.status).code, 1);
    assertMatch(
      responder.stderrText(),
      /secure_mqtt_responder: error: broker refused connection: not authorized/,
    );
  },
});

Deno.test({
  name: "Responder.start rejects with a ResponderError when the broker refuses us",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto({ config: "allow_anonymous false" });
    await assertRejects(
      () => Responder.start({ ...broker, group }),
      (e) => e instanceof ResponderError && /not authorized/.test(e.message),
    );
  },
});
