/**
 * The responder (lib/responder/responder.ts and responder.ts): interop both ways with the Python
 * peers, sessions, bad input of every kind, a key-exchange flood, a broker restart, the
 * authenticated extension (its identity and signatures), and the command line. Against a private
 * mosquitto; the command line through the `responder` task's own permissions.
 */

import assert from "node:assert/strict";
import { type Action, ACTIONS } from "../../lib/protocol/actions.ts";
import { encodePublicKeyPem, generateKeyPair } from "../../lib/crypto/dh.ts";
import type { BrokerOptions } from "../../lib/mqtt.ts";
import { requestTransform } from "../../lib/client/session.ts";
import { Identity } from "../../lib/auth/identity.ts";
import { RESPONDER_HELP, RESPONDER_USAGE } from "../../cli/responder_options.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import {
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PUBLIC_KEY_PEM_BYTES,
} from "../../lib/protocol/limits.ts";
import { Responder, ResponderError } from "../../lib/responder/responder.ts";
import {
  type Broker,
  freePort,
  mosquittoSkipReason,
  startMosquitto,
} from "../../support/mosquitto.ts";
import { runTask, spawnPeer, spawnTask, startResponderTask } from "../../support/processes.ts";
import {
  PYTHON,
  pythonPeersSkipReason,
  runPythonClient,
  startPythonResponder,
} from "../../support/python.ts";
import { handshake } from "../../support/tap.ts";
import { startEmbeddedBroker } from "../../lib/embedded_broker.ts";
import type { Fernet } from "../../lib/crypto/fernet.ts";
import { startResponderRig, startResponderTaskRig } from "../../support/responder_rig.ts";
import { assertAnswer } from "../../support/answers.ts";
import { dhPublicKeyPem } from "../../support/dh_reference.ts";
import { assertUsageError, TIMESTAMP } from "../../support/failures.ts";
import { startHostileBroker } from "../../support/hostile_broker.ts";

const group = loadLabGroup();
const needsBroker = mosquittoSkipReason() !== undefined;
const needsPython = needsBroker || pythonPeersSkipReason() !== undefined;
const RESPONDER = "secure_mqtt_responder";
const SUBSCRIBED = /subscribed to \+\/\+\/request/;
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const at = ({ host, port }: Broker): BrokerOptions => ({ transport: "mqtt", host, port });

// ---------------------------------------------------------------------------------------------
// Units: no broker

// ---------------------------------------------------------------------------------------------
// Interop with the Python reference peers

Deno.test({
  name: "a Python (pyca + paho) client gets correct answers for every action, title-case too",
  ignore: needsPython,
  async fn() {
    await using rig = await startResponderRig();
    const { broker, log } = rig;
    const message = "Hello, Wörld! they're 123 abc";
    const runs = await Promise.all(
      ACTIONS.map((action) => runPythonClient(broker, [`py-${action}`, action, message])),
    );
    ACTIONS.forEach((action, i) => {
      const run = runs[i];
      assert.equal(run.code, 0, `${action}: ${run.stderr}`);
      assertAnswer(action, message, run.stdout.replace(/\n$/, ""));
    });
    // An action that earlier years' clients send, checked against Python's own str.title().
    const title = await runPythonClient(broker, ["py-title", "title-case", message]);
    assert.equal(title.code, 0, title.stderr);
    const python = await new Deno.Command(PYTHON, {
      args: ["-c", "import sys; print(sys.argv[1].title())", message],
    }).output();
    assert.equal(title.stdout, decode(python.stdout));
    assert.equal(log.lines.filter((l) => /^answered py-/.test(l)).length, ACTIONS.length + 1);
    assert.ok(!log.lines.some((l) => l.includes(message)), "plaintext in the log");
  },
});

Deno.test({
  name: "a Python client whose shared secret starts with a zero byte still gets its answer",
  ignore: needsPython,
  async fn() {
    // A zero-led secret takes ~256 exchanges on average: three clients hunt at once, and the
    // first to find one must get the right answer.
    await using rig = await startResponderRig();
    const { broker } = rig;
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
    assert.equal((await winner.status).code, 0, winner.stderrText());
    assert.equal(winner.stdoutText(), "Z del-orez\n");
    assert.match(winner.stderrText(), /zero-lead after \d+ exchanges/);
  },
});

Deno.test({
  name: "U+FEFF first, in the middle and last survives a round trip, for every action",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await Responder.start({ broker: at(broker), group });
    const BOM = "\ufeff";
    const ask = (netid: string, action: Action, message: string) =>
      requestTransform({ broker: at(broker), netid, action, message, timeoutMs: 10_000, group });
    const message = `${BOM}Héllo ${BOM}wörld${BOM}`;
    const answers = await Promise.all(
      ACTIONS.map((action) => ask(`bom-${action}`, action, message)),
    );
    ACTIONS.forEach((action, i) => {
      if (action === "title-case") assert.equal(answers[i], `${BOM}Héllo ${BOM}Wörld${BOM}`);
      else assertAnswer(action, message, answers[i]);
    });
    assert.equal(await ask("bom-last", "reverse", `hello${BOM}`), `${BOM}olleh`);
    // Three of four code points are U+FEFF: a shuffle puts one first 3 times in 4, so 10 runs
    // all miss that case once in a million.
    const shuffled = await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) => ask(`bom-shuffle-${i}`, "shuffle", `a${BOM}${BOM}${BOM}`),
      ),
    );
    for (const answer of shuffled) assertAnswer("shuffle", `a${BOM}${BOM}${BOM}`, answer);
    // And the client's command line prints it first on stdout, as the bytes EF BB BF.
    const run = await runTask("client", [
      "-p",
      String(broker.port),
      "bom-cli",
      "reverse",
      `hello${BOM}`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${BOM}olleh\n`);
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
          broker: at(broker),
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
// The authenticated extension

Deno.test({
  name: "with --identity: the fingerprint is logged, and a Python --trust client is answered",
  ignore: needsPython,
  async fn() {
    await using broker = await startMosquitto();
    const dir = await Deno.makeTempDir();
    try {
      const made = await runTask("responder", ["--new-identity", `${dir}/identity.pem`]);
      assert.equal(made.code, 0, made.stderr);
      assert.equal(made.stderr, "");
      const fingerprint = /^(SHA256:[0-9a-f]{64})\n$/.exec(made.stdout)?.[1];
      assert.ok(fingerprint, made.stdout);
      const pem = await Deno.readTextFile(`${dir}/identity.pem`);
      assert.equal((await Identity.fromPem(pem)).fingerprint, fingerprint);
      assert.equal((await Deno.stat(`${dir}/identity.pem`)).mode! & 0o777, 0o600);
      const shown = await runTask("responder", [
        "--identity",
        `${dir}/identity.pem`,
        "--fingerprint",
      ]);
      assert.deepEqual([shown.code, shown.stdout, shown.stderr], [0, `${fingerprint}\n`, ""]);

      await using responder = await startResponderTask(broker, [
        "-v",
        "--identity",
        `${dir}/identity.pem`,
      ]);
      assert.match(responder.stderrText(), new RegExp(`identity ${fingerprint}`));
      const trusted = await runPythonClient(broker, [
        "--trust",
        fingerprint.toUpperCase().replace("SHA256:", "sha256:"),
        "signed",
        "reverse",
        "abc",
      ]);
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.equal(trusted.stdout, "cba\n");
      assert.match(trusted.stderr, new RegExp(`authenticated by ${fingerprint}`));
      await responder.waitForLine(/session for signed ready \(signed\)/);
      // Its request opened under the bound key, and the answer went under the response's.
      await responder.waitForLine(/answered signed\/reverse \(3 bytes, bound tokens\) in /);
      // A lab client, which knows nothing of the extension, notices nothing: the lab key.
      const lab = await runPythonClient(broker, ["lab", "uppercase", "abc"]);
      assert.equal(lab.code, 0, lab.stderr);
      assert.equal(lab.stdout, "ABC\n");
      await responder.waitForLine(/answered lab\/uppercase \(3 bytes\) in /);
      // A client that trusts another identity refuses this responder.
      const other = (await Identity.generate()).identity.fingerprint;
      const refused = await runPythonClient(broker, [
        "--timeout",
        "2",
        "--trust",
        other,
        "wary",
        "reverse",
        "abc",
      ]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("--identity: a missing, wrong-kind or garbage key file is a usage error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/garbage.pem`, "not a key at all\n", { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/public.pem`, encodePublicKeyPem(group, 5n), { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/shared.pem`, "any\n", { mode: 0o644 });
    const cases: [string, RegExp][] = [
      [`${dir}/missing.pem`, /cannot read '.*missing\.pem': no such file/],
      [`${dir}/garbage.pem`, /garbage\.pem .*(not a PEM|PEM)/],
      [`${dir}/public.pem`, /public\.pem is a public key/],
      [`${dir}/shared.pem`, /can be accessed by other users \(mode 0644\).*chmod 600/],
      ["/dev/zero", /'\/dev\/zero' is a device/],
    ];
    for (const [file, reason] of cases) {
      const run = await runTask("responder", ["--identity", file]);
      const first = assertUsageError(run, RESPONDER, reason, RESPONDER_USAGE);
      assert.match(first, /^secure_mqtt_responder: error: argument --identity: /);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Sessions

Deno.test({
  name: "many netids at once, and the newest key exchange for a netid wins",
  ignore: needsBroker,
  async fn() {
    await using rig = await startResponderRig();
    const { responder, log, tap } = rig;

    const first = await handshake(tap, "same");
    const other = await handshake(tap, "other");
    await tap.publish("same/reverse/request", await first.encrypt("abc"));
    const reversed = await tap.next("same/reverse/response");
    assert.equal(decode(await first.decrypt(reversed.payload)), "cba");

    const second = await handshake(tap, "same"); // replaces the first session for "same"
    await tap.publish("same/reverse/request", await first.encrypt("old key"));
    await tap.publish("same/uppercase/request", await second.encrypt("new key"));
    await tap.publish("other/lowercase/request", await other.encrypt("UNTOUCHED"));
    const upper = await tap.next("same/uppercase/response");
    assert.equal(decode(await second.decrypt(upper.payload)), "NEW KEY");
    const lower = await tap.next("other/lowercase/response");
    assert.equal(decode(await other.decrypt(lower.payload)), "untouched");
    // The token under the replaced key was refused, and said so.
    await log.waitFor(/reverse request for same dropped: invalid token/);
    assert.equal(responder.stats().sessions, 2);
    assert.equal(responder.stats().keyExchanges, 3);
  },
});

Deno.test({
  name: "the session cap evicts the least recently used",
  ignore: needsBroker,
  async fn() {
    await using rig = await startResponderRig({ limits: { maxSessions: 2 } });
    const { responder, log, tap } = rig;
    const a = await handshake(tap, "lru-a");
    await handshake(tap, "lru-b");
    await tap.publish("lru-a/reverse/request", await a.encrypt("a")); // a is now the newest
    await tap.next("lru-a/reverse/response");
    const c = await handshake(tap, "lru-c"); // evicts b
    await tap.publish("lru-b/reverse/request", await c.encrypt("b"));
    await tap.publish("lru-c/reverse/request", await c.encrypt("c"));
    await tap.next("lru-c/reverse/response");
    await log.waitFor(/reverse request for lru-b dropped: no session/);
    assert.equal(responder.stats().sessions, 2);
  },
});

/**
 * An embedded broker that holds back the answers the responder publishes (not its key
 * exchanges) until `release()`: it neither acknowledges nor delivers them, so the requests stay
 * in flight for as long as the test needs. `taken(topic)` resolves once it holds one on `topic`.
 */
async function startAnswerHoldingBroker() {
  const takenOn = new Map<string, PromiseWithResolvers<void>>();
  const taken = (topic: string) => {
    const known = takenOn.get(topic) ?? Promise.withResolvers<void>();
    takenOn.set(topic, known);
    return known;
  };
  const held: (() => void)[] = [];
  let holding = true;
  const broker = await startEmbeddedBroker({
    interceptor(topic) {
      if (!holding || !/^[^/]+\/[^/]+\/response$/.test(topic)) return undefined;
      if (topic.endsWith("/key-exchange/response")) return undefined;
      const gate = Promise.withResolvers<undefined>();
      held.push(() => gate.resolve(undefined));
      taken(topic).resolve();
      return gate.promise; // the PUBACK follows when it settles
    },
  });
  return {
    broker,
    taken: (topic: string) => taken(topic).promise,
    release() {
      holding = false;
      for (const letGo of held.splice(0)) letGo();
    },
  };
}

Deno.test("requests beyond the in-flight budget, or a netid's share of it, are dropped", async () => {
  const hold = await startAnswerHoldingBroker();
  await using _broker = hold.broker;
  await using rig = await startResponderRig({
    broker: hold.broker,
    // A request reserves three times its size (itself and an answer of up to twice it).
    limits: { maxRequestsInFlight: 2, maxRequestsInFlightPerNetid: 1, maxBytesInFlight: 20_000 },
  });
  const { responder, log, tap } = rig;
  const a = await handshake(tap, "budget");
  const b = await handshake(tap, "budget-2");
  const c = await handshake(tap, "budget-3");
  const answer = async (fernet: Fernet, topic: string) =>
    decode(await fernet.decrypt((await tap.next(topic)).payload));

  // A token over the whole byte budget: refused, with nothing else in flight.
  await tap.publish("budget/reverse/request", await a.encrypt("x".repeat(8000)));
  await log.waitFor(
    /^warning: reverse request for budget dropped: no room in the in-flight budget \(0 requests, 0 of 20000 bytes/,
  );
  // budget's first request is answered, and its answer held: it stays in flight.
  await tap.publish("budget/uppercase/request", await a.encrypt("first"));
  await hold.taken("budget/uppercase/response");
  // Its second is over its share (one request), though the budget has room for one more.
  await tap.publish("budget/lowercase/request", await a.encrypt("SECOND"));
  await log.waitFor(
    /^warning: lowercase request for budget dropped: budget already has requests being answered up to its share \(1 requests, /,
  );
  // Another netid takes that room; a third netid, with nothing in flight, then finds none.
  await tap.publish("budget-2/uppercase/request", await b.encrypt("third"));
  await hold.taken("budget-2/uppercase/response");
  await tap.publish("budget-3/uppercase/request", await c.encrypt("fourth"));
  await log.waitFor(
    /^warning: uppercase request for budget-3 dropped: no room in the in-flight budget \(2 requests, /,
  );
  assert.equal(responder.stats().requestsInFlight, 2);
  assert.equal(responder.stats().dropped, 3);

  // Once the broker acknowledges the held answers, they arrive, and the budget is free again.
  hold.release();
  assert.equal(await answer(a, "budget/uppercase/response"), "FIRST");
  assert.equal(await answer(b, "budget-2/uppercase/response"), "THIRD");
  await tap.publish("budget-3/uppercase/request", await c.encrypt("fourth"));
  assert.equal(await answer(c, "budget-3/uppercase/response"), "FOURTH");
  // A key exchange, which holds nothing in flight, reaches the responder after the broker's
  // PUBACK of that last answer (one connection, in order): by its answer, every ticket is back.
  await handshake(tap, "budget-4");
  assert.equal(responder.stats().requestsInFlight, 0);
});

// ---------------------------------------------------------------------------------------------
// Bad input

Deno.test({
  name: "a garbage flood is logged once per item and dropped; the next session succeeds",
  ignore: needsBroker,
  async fn() {
    await using rig = await startResponderTaskRig({
      // Retained before the responder subscribes, so the broker hands them over as retained.
      async beforeStart(tap) {
        const pem = encodePublicKeyPem(group, generateKeyPair(group).publicKey);
        await tap.publish("g-retained/key-exchange/request", pem, true);
        await tap.publish("g-retained/uppercase/request", "stale", true);
      },
    });
    const { responder, tap } = rig;

    const session = await handshake(tap, "g-session");
    const big = await handshake(tap, "g-big");
    const token = await session.encrypt("a valid request");
    const { p, g } = group;
    const y = generateKeyPair(group).publicKey;
    // [netid, action, payload, the log line it must cause exactly once]
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
        /key exchange for g-binary dropped: .*not UTF-8/,
      ],
      [
        "g-big-pem",
        "key-exchange",
        "A".repeat(MAX_PUBLIC_KEY_PEM_BYTES + 1),
        /key exchange for g-big-pem dropped: .*\d+ bytes is over the 8192-byte limit/,
      ],
      [
        "g-other-g",
        "key-exchange",
        dhPublicKeyPem(p, 5n, y),
        /key exchange for g-other-g dropped: .*different DH parameters/,
      ],
      [
        "g-other-p",
        "key-exchange",
        dhPublicKeyPem(p - 2n, g, y),
        /key exchange for g-other-p dropped: .*different DH parameters/,
      ],
      ["g-y-one", "key-exchange", dhPublicKeyPem(p, g, 1n), /g-y-one dropped: .*out of range/],
      ["g-y-p-1", "key-exchange", dhPublicKeyPem(p, g, p - 1n), /g-y-p-1 dropped: .*range/],
      ["g-y-p", "key-exchange", dhPublicKeyPem(p, g, p), /g-y-p dropped: .*out of range/],
      ["g-nobody", "uppercase", token, /uppercase request for g-nobody dropped: no session/],
      ["g-session", "explode", token, /on g-session\/explode\/request: unknown action/],
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
        /shuffle request for g-session dropped: the message is not UTF-8/,
      ],
      // A netid of its own: a token this large is admitted only when nothing else of its netid
      // is in flight, and g-session's requests above may still be.
      [
        "g-big",
        "random",
        await big.encrypt("a".repeat(MAX_MESSAGE_BYTES + 1)),
        /random request for g-big dropped: the message is over the size limit/,
      ],
      [
        "g-session",
        "uppercase",
        new Uint8Array(MAX_PAYLOAD_BYTES + 1),
        /uppercase request for g-session dropped: \d+ bytes is over the 2097152-byte limit/,
      ],
      // Brokers refuse control characters in topics, but a bidi override gets through: it
      // must not reorder what a terminal shows of the log line.
      ["evil\u202egnp.exe", "key-exchange", "x", /key exchange for evil\\u202egnp\.exe dropped/],
    ];
    for (const [netid, action, payload] of flood) {
      await tap.publish(`${netid}/${action}/request`, payload);
    }
    // Over the packet size the responder offers an MQTT 5 broker: never even delivered.
    await tap.publish("g-session/lowercase/request", new Uint8Array(8 * 1024 * 1024));
    // Topics with extra levels match no subscription: the broker must not deliver them.
    await tap.publish("g/x/uppercase/request", token);
    await tap.publish("g-session/uppercase/request/extra", token);

    const expected: RegExp[] = [
      ...flood.map(([, , , line]) => line),
      /ignored a retained request on g-retained\/key-exchange\/request/,
      /ignored a retained request on g-retained\/uppercase\/request/,
    ];
    for (const line of expected) await responder.waitForLine(line);

    // Every other session goes on: a normal one now, and the flooded netid's own.
    const answer = await requestTransform({
      broker: rig.at,
      netid: "after-flood",
      action: "uppercase",
      message: "top secret text",
      timeoutMs: 10_000,
      group,
    });
    assert.equal(answer, "TOP SECRET TEXT");
    await tap.publish("g-session/reverse/request", token);
    const reply = await tap.next("g-session/reverse/response");
    assert.equal(decode(await session.decrypt(reply.payload)), "tseuqer dilav a");
    await responder.waitForLine(/answered g-session\/reverse/);

    assert.ok(!responder.exited, "the responder died");
    const lines = responder.lines("stderr");
    for (const line of expected) {
      assert.equal(lines.filter((l) => line.test(l)).length, 1, `${line}:\n${lines.join("\n")}`);
    }
    assert.ok(!responder.stderrText().includes("\u202e"), "a raw bidi override in the log");
    assert.ok(!lines.some((l) => /g\/x\/|request\/extra/.test(l)), "extra levels delivered");
    assert.ok(!lines.some((l) => /lowercase request .* \d+ bytes is over/.test(l)), "8 MiB sent");
    assert.ok(!responder.stderrText().includes("top secret text"), "plaintext in the log");
    assert.ok(!responder.stderrText().includes("a valid request"), "plaintext in the log");
    responder.kill("SIGTERM");
    assert.equal((await responder.status).code, 0);
  },
});

Deno.test({
  name: "a key-exchange flood neither starves action requests nor grows the queue unbounded",
  ignore: needsBroker,
  async fn() {
    await using rig = await startResponderRig({ limits: { maxPendingKeyExchanges: 150 } });
    const { responder, log, tap } = rig;
    const victim = await handshake(tap, "victim");

    // 200 distinct netids (one valid key is enough: each costs the responder a key pair) and
    // 100 repeats of one netid, which must coalesce into a few exchanges at most.
    const pem = encodePublicKeyPem(group, generateKeyPair(group).publicKey);
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      publishes.push(tap.publish(`flood-${i}/key-exchange/request`, pem));
      if (i % 2 === 0) publishes.push(tap.publish("repeat/key-exchange/request", pem));
    }
    await Promise.all(publishes);
    const queuedWhenSent = responder.stats().pendingKeyExchanges;
    await tap.publish("victim/uppercase/request", await victim.encrypt("me first"));
    const reply = await tap.next("victim/uppercase/response");
    const answeredBefore = [...tap.counts.entries()]
      .filter(([topic]) => topic.endsWith("/key-exchange/response"))
      .reduce((n, [, count]) => n + count, 0) - 1; // the victim's own
    assert.equal(decode(await victim.decrypt(reply.payload)), "ME FIRST");
    assert.ok(queuedWhenSent > 50 && queuedWhenSent <= 150, `${queuedWhenSent} queued`);
    // Answered after a handful of key exchanges, not after the ~100 still queued.
    assert.ok(answeredBefore < 40, `waited behind ${answeredBefore} key exchanges`);

    await log.waitFor(/key exchange queue full \(150 netids waiting\)/);
    await tap.next("repeat/key-exchange/response");
    const stats = responder.stats();
    // Slots freed while the flood arrived were refilled, so not exactly 150; but well short of
    // the 200 + victim + repeats that an unbounded queue would have answered.
    assert.ok(stats.keyExchanges < 195, `${stats.keyExchanges} key exchanges for a 150 cap`);
    assert.ok(stats.dropped > 0);
    const repeats = tap.counts.get("repeat/key-exchange/response") ?? 0;
    assert.ok(repeats >= 1 && repeats <= 3, `${repeats} answers to 100 coalescing repeats`);
  },
});

// ---------------------------------------------------------------------------------------------
// The connection

Deno.test({
  name: "the responder reconnects and resubscribes after the broker restarts",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker);
    const mark = responder.lineCount("stderr");
    await broker.restart();
    await responder.waitForLine(/reconnecting in/, { from: mark });
    await responder.waitForLine(SUBSCRIBED, { from: mark });
    const answer = await requestTransform({
      broker: at(broker),
      netid: "after-restart",
      action: "reverse",
      message: "back",
      timeoutMs: 10_000,
      group,
    });
    assert.equal(answer, "kcab");
    responder.kill("SIGINT");
    assert.equal((await responder.status).code, 0);
  },
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
    assert.equal((await responder.status).code, 0);
    await responder.waitForLine(/SIGTERM: shutting down/);
    await responder.waitForLine(/stopped: 0 key exchange/);
  },
});

Deno.test("responder: SIGHUP (a terminal that closed) stops it as SIGTERM does, every line stamped", async () => {
  await using broker = await startHostileBroker();
  // In a zone far from UTC: the stamps must be UTC all the same.
  await using responder = spawnTask("responder", ["--host", broker.host, "-p", `${broker.port}`], {
    env: { TZ: "Asia/Kolkata" },
  });
  await responder.waitForLine(SUBSCRIBED);
  responder.kill("SIGHUP");
  const status = await responder.status;
  assert.equal(status.code, 0, responder.stderrText());
  assert.equal(status.signal, null);
  const lines = responder.lines("stderr");
  const stamp = new RegExp(`^${TIMESTAMP}secure_mqtt_responder: `);
  for (const line of lines) assert.match(line, stamp);
  const said = lines.map((line) => line.replace(stamp, ""));
  assert.deepEqual(said.slice(-2), [
    "SIGHUP: shutting down",
    "stopped: 0 key exchange(s), 0 answer(s), 0 dropped message(s)",
  ]);
  // The times are the times: in order, and now in UTC (not 5.5 hours off), give or take the run.
  const times = lines.map((line) => Date.parse(line.split(" ")[0]));
  assert.deepEqual(times, times.toSorted((a, b) => a - b));
  assert.ok(Math.abs(times.at(-1)! - Date.now()) < 10 * 60_000, lines.join("\n"));
});

Deno.test({
  name: "-v: the responder's session line shows the same two key fingerprints as the client's -v",
  ignore: needsBroker,
  async fn() {
    await using rig = await startResponderTaskRig({ args: ["-v"] });
    const { broker, responder } = rig;
    const run = await runTask("client", [
      ...["-v", "-h", broker.host, "-p", String(broker.port)],
      ...["oob", "uppercase", "compare"],
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "COMPARE\n");
    const ours = /our public key: +(SHA256:[0-9a-f]{64})/.exec(run.stderr)?.[1];
    const peer = /peer public key: +(SHA256:[0-9a-f]{64})/.exec(run.stderr)?.[1];
    assert.ok(ours && peer, run.stderr);
    const line = await responder.waitForLine(/debug: session for oob: client key /);
    const shown = new RegExp(
      `session for oob: client key ${ours}, responder key ${peer}; queued [\\d.]+ ms, ` +
        `computed in [\\d.]+ ms, acknowledged by the broker [\\d.]+ ms after$`,
    );
    assert.match(line, shown);
    // The client's own lines carry no time: they are as they were.
    for (const clientLine of run.stderr.trimEnd().split("\n")) {
      assert.match(clientLine, /^secure_mqtt_client: debug: /);
    }
  },
});

Deno.test({
  name: "a refused login is fatal: exit 1 with one line",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto({ config: "allow_anonymous false" });
    const run = await runTask("responder", ["--host", broker.host, "-p", String(broker.port)]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /secure_mqtt_responder: error: broker .* refused the connection: not authorized/,
    );
    assert.equal(run.stderr.split("\n").filter((l) => /error:/.test(l)).length, 1);
  },
});

Deno.test({
  name: "Responder.start rejects with a ResponderError when the broker refuses us",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto({ config: "allow_anonymous false" });
    await assert.rejects(
      () => Responder.start({ broker: at(broker), group }),
      (e) => e instanceof ResponderError && /not authorized/.test(e.message),
    );
  },
});

// ---------------------------------------------------------------------------------------------
// Command line

Deno.test("responder --help on stdout, --version, a usage error: exit 0, 0, 2", async () => {
  const help = await runTask("responder", ["--help"]);
  assert.equal(help.code, 0);
  assert.equal(help.stderr, "");
  assert.equal(help.stdout, RESPONDER_HELP);
  const version = await runTask("responder", ["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^secure_mqtt_responder \d+\.\d+\.\d+\n$/);
  const usage = await runTask("responder", ["-h"]);
  assertUsageError(usage, RESPONDER, "option -h needs a value", RESPONDER_USAGE);
});
