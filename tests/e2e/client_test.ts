/**
 * The client session (lib/client/session.ts) end to end: the real entry point as a subprocess with
 * the `client` task's permissions, a real mosquitto, and the independent Python responder
 * (pyca/cryptography + paho-mqtt): honest, and hostile in each way docs/protocol.md says a client
 * must survive or refuse, in the lab protocol and in the authenticated key exchange (`--trust`)
 * against every signature mode of the Python peer.
 *
 * Where a failure must come "at once", the run is given a deadline of an hour: waiting for it would
 * hang the test until the runner's kill timeout, which fails it.
 */

import assert from "node:assert/strict";
import { ROOT, runPeer, type RunResult, runTask, spawnTask } from "../../support/processes.ts";
import {
  type Broker,
  freePort,
  mosquittoSkipReason,
  startMosquitto,
} from "../../support/mosquitto.ts";
import { PYTHON, pythonPeersSkipReason, startPythonResponder } from "../../support/python.ts";
import { sortedChars } from "../../support/answers.ts";
import { assertErrorLine } from "../../support/failures.ts";

const ignore = mosquittoSkipReason() !== undefined || pythonPeersSkipReason() !== undefined;
const AN_HOUR = "3600";

/** Runs the client task against `broker`. */
function client(broker: Broker, args: string[], options: { stdin?: string } = {}) {
  return runTask("client", ["--host", broker.host, "-p", String(broker.port), ...args], options);
}

/** Exit 1, nothing on stdout, one `secure_mqtt_client: error:` line matching `pattern`. */
const assertOneErrorLine = (run: RunResult, pattern: RegExp) =>
  assertErrorLine(run, "secure_mqtt_client", pattern);

function assertAnswer(run: RunResult, answer: string): void {
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${answer}\n`);
  assert.equal(run.stderr, "");
}

/** A responder identity made by the Python peer (`auth.py keygen`), in a temp file. */
async function pythonIdentity(): Promise<
  { file: string; fingerprint: string } & AsyncDisposable
> {
  const run = await runPeer(PYTHON, [`${ROOT}/tests/peers/auth.py`, "keygen"]);
  assert.equal(run.code, 0, run.stderr);
  const fingerprint = run.stderr.trim();
  assert.match(fingerprint, /^SHA256:[0-9a-f]{64}$/);
  const dir = await Deno.makeTempDir({ prefix: "identity-" });
  const file = `${dir}/identity.pem`;
  await Deno.writeTextFile(file, run.stdout, { mode: 0o600 });
  return {
    file,
    fingerprint,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The lab protocol

Deno.test({
  name: "every action against the Python responder",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    const message = "Hello, Wörld! 123";
    const cases: [string, (out: string) => void][] = [
      ["uppercase", (out) => assert.equal(out, "HELLO, WÖRLD! 123")],
      ["lowercase", (out) => assert.equal(out, "hello, wörld! 123")],
      ["reverse", (out) => assert.equal(out, "321 !dlröW ,olleH")],
      ["shuffle", (out) => assert.equal(sortedChars(out), sortedChars(message))],
      ["random", (out) => {
        // Python's peer drops or repeats each character in place: a subsequence pattern.
        const pattern = Array.from(
          message,
          (c) => `(?:${c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}){0,2}`,
        );
        assert.match(out, new RegExp(`^${pattern.join("")}$`, "u"));
      }],
    ];
    for (const [action, check] of cases) {
      const { code, stdout, stderr } = await client(broker, [`net-${action}`, action, message]);
      assert.equal(code, 0, `${action}: ${stderr}`);
      assert.equal(stderr, "");
      assert.ok(stdout.endsWith("\n"));
      check(stdout.slice(0, -1));
    }
  },
});

Deno.test({
  name: "unicode, a 64 KiB message, and a message that starts with '-'",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    const unicode = "naïve café — 日本語 🚀 Ωmega";
    assertAnswer(
      await client(broker, ["uni", "reverse", unicode]),
      Array.from(unicode).reverse().join(""),
    );

    const big = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(2000).slice(0, 64 * 1024);
    assertAnswer(await client(broker, ["big", "uppercase", big]), big.toUpperCase());

    assertAnswer(await client(broker, ["dash", "uppercase", "--", "-rf --all"]), "-RF --ALL");
  },
});

Deno.test({
  name: "--url mqtt:// reaches the same broker as --host and --port",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    const run = await runTask("client", [
      ...["--url", `mqtt://${broker.host}:${broker.port}`],
      ...["by-url", "reverse", "stressed"],
    ]);
    assertAnswer(run, "desserts");
  },
});

Deno.test({
  name: "a shared secret that starts with a zero byte (kept as 512 bytes) still agrees",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    // The Python peer picks its key so that Z's first byte is 0x00; stripping it would fail.
    await using responder = await startPythonResponder(broker, "zero-lead");
    for (const netid of ["zero1", "zero2"]) {
      const r = await client(broker, [netid, "uppercase", "zero led"]);
      assert.equal(r.code, 0, r.stderr + responder.stdoutText());
      assert.equal(r.stdout, "ZERO LED\n");
    }
  },
});

Deno.test({
  name: "-v: timings, SUBACK, both key fingerprints on stderr; stdout only the answer",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    const r = await client(broker, ["-v", "verbose", "lowercase", "ABC"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "abc\n");
    for (
      const expected of [
        /connected to 127\.0\.0\.1:\d+/,
        /SUBACK/,
        /key exchange request sent/,
        /key exchange answered; not authenticated \(no --trust\)/,
        /request sent/,
        /verified/,
      ]
    ) {
      assert.match(r.stderr, expected);
    }
    for (const line of r.stderr.trimEnd().split("\n")) {
      assert.match(line, /^secure_mqtt_client: debug: .* \(\d+\.\d ms\)$/);
    }
    const fingerprints = r.stderr.match(/SHA256:[0-9a-f]{64}/g) ?? [];
    assert.equal(fingerprints.length, 2, r.stderr);
    assert.notEqual(fingerprints[0], fingerprints[1]);
  },
});

/** Hostile responders whose key must end the run at once, with a clear reason. */
const REFUSED_KEYS: [string, RegExp][] = [
  ["garbage-key", /peer public key is malformed/],
  ["y-one", /out of range/],
  ["y-p-minus-1", /out of range/],
  ["foreign-params", /different DH parameters/],
];

for (const [mode, reason] of REFUSED_KEYS) {
  Deno.test({
    name: `a responder that answers with a bad key (${mode}) ends the run at once: exit 1`,
    ignore,
    async fn() {
      await using broker = await startMosquitto();
      await using _responder = await startPythonResponder(broker, mode);
      const r = await client(broker, ["--timeout", AN_HOUR, "victim", "uppercase", "secret"]);
      assertOneErrorLine(r, reason);
    },
  });
}

Deno.test({
  name: "a tampered token is refused and counted; the deadline error says so",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "tamper-token");
    const r = await client(broker, ["--timeout", "2", "tamper", "uppercase", "secret"]);
    assertOneErrorLine(
      r,
      /no answer on tamper\/uppercase\/response within 2 s; 1 response on it failed authentication/,
    );
  },
});

Deno.test({
  name: "a forged token is shrugged off and the genuine answer that follows is taken",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "forged-then-ok");
    assertAnswer(await client(broker, ["forged", "reverse", "abc"]), "cba");
  },
});

Deno.test({
  name: "silence: the deadline error names the topic that stayed silent",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    {
      await using _silent = await startPythonResponder(broker, "silent-key");
      const r = await client(broker, ["--timeout", "1.5", "quiet", "uppercase", "x"]);
      assertOneErrorLine(
        r,
        /no key exchange response on quiet\/key-exchange\/response within 1\.5 s \(is a responder/,
      );
    }
    {
      await using _mute = await startPythonResponder(broker, "silent-action");
      const r = await client(broker, ["--timeout", "1.5", "mute", "uppercase", "x"]);
      assertOneErrorLine(r, /no answer on mute\/uppercase\/response within 1\.5 s$/);
    }
  },
});

Deno.test({
  name: "a stale retained answer is never taken: neither alone nor before a live one",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    {
      // Retains junk on stale/key-exchange/response and stale/uppercase/response, then is silent.
      await using _peer = await startPythonResponder(broker, "retained-only", ["--netid", "stale"]);
      const r = await client(broker, ["--timeout", "1.5", "stale", "uppercase", "x"]);
      assertOneErrorLine(r, /no key exchange response on stale\/key-exchange\/response/);
    }
    {
      // The retained junk is still there; an honest responder now answers live.
      await using _peer = await startPythonResponder(broker, "stale-retained", [
        "--netid",
        "stale",
      ]);
      assertAnswer(await client(broker, ["stale", "uppercase", "fresh"]), "FRESH");
    }
  },
});

Deno.test({
  name: "the NetID is the client ID (-i another); every SUBSCRIBE and PUBLISH is QoS 1",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    assertAnswer(await client(broker, ["le0nh4rt", "title-case", "hello wORLD"]), "Hello World");
    assertAnswer(await client(broker, ["-i", "lab-pc-7", "le0nh4rt", "reverse", "hi"]), "ih");
    const log = broker.log();
    // "New client connected from 127.0.0.1:PORT as ID (p2, c1, k60)."
    const ids = [...log.matchAll(/New client connected from \S+ as (\S+) \(/g)].map((m) => m[1]);
    assert.ok(ids.includes("le0nh4rt"), ids.join(", "));
    assert.ok(ids.includes("lab-pc-7"), ids.join(", "));
    assert.ok(!ids.some((id) => id.startsWith("le0nh4rt-")), "no suffix on the NetID");
    for (const id of ["le0nh4rt", "lab-pc-7"]) {
      // "Received PUBLISH from ID (d0, q1, r0, m1, 'TOPIC', ... (N bytes))"
      const publishes = [
        ...log.matchAll(new RegExp(`Received PUBLISH from ${id} \\((.*?), '`, "g")),
      ];
      assert.equal(publishes.length, 2, `key exchange and request from ${id}`);
      for (const [, flags] of publishes) assert.match(flags, /^d0, q1, r0, m\d+$/, id);
      // "Received SUBSCRIBE from ID", then a "\tTOPIC (QoS N)" line per filter, then SUBACK.
      const subscribe = new RegExp(`Received SUBSCRIBE from ${id}\\n([\\s\\S]*?)Sending SUBACK`);
      const filters = (subscribe.exec(log)?.[1] ?? "").split("\n").filter((l) => l.includes("\t"));
      assert.equal(filters.length, 2, `both response topics in one SUBSCRIBE from ${id}`);
      for (const filter of filters) assert.match(filter, /\(QoS 1\)$/, filter);
    }
  },
});

Deno.test({
  name: "a second run with the same NetID takes the connection over: the first ends at once",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "silent-key");
    const args = ["--host", broker.host, "-p", String(broker.port), "-v"];
    await using first = spawnTask("client", [...args, "--timeout", AN_HOUR, "dup", "reverse", "1"]);
    await first.waitForLine(/key exchange request sent/);
    const second = await client(broker, ["--timeout", "1", "dup", "reverse", "2"]);
    assertOneErrorLine(second, /no key exchange response/);
    assert.equal((await first.status).code, 1);
    assert.equal(first.stdoutText(), "");
    assert.match(
      first.lines("stderr").at(-1)!,
      new RegExp(
        `^secure_mqtt_client: error: the broker at 127\\.0\\.0\\.1:${broker.port} closed the ` +
          "connection: most likely another client connected with the client ID 'dup' \\(the same " +
          "NetID run twice at once\\? -i gives this run another client ID\\)",
      ),
    );
  },
});

Deno.test({
  name: "a broker that goes away mid-session: exit 1 at once, saying it closed the connection",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startPythonResponder(broker, "silent-action");
    const run = client(broker, ["--timeout", AN_HOUR, "lost", "uppercase", "x"]);
    await responder.waitForLine(/^key exchange for lost$/, { stream: "stdout" });
    await broker.stop();
    assertOneErrorLine(
      await run,
      new RegExp(
        `the broker at 127\\.0\\.0\\.1:${broker.port} closed the connection: .*broker stopped$`,
      ),
    );
  },
});

Deno.test({
  name: "a library caller that does not exit is not kept alive by the session's deadline",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker);
    // A script that runs two sessions with an hour's deadline (one answered, one refused) and
    // then just ends: anything left pending keeps it running until the runner kills it.
    const script = `
      import { requestTransform } from "${ROOT}/lib/client/session.ts";
      import { loadLabGroup } from "${ROOT}/lib/protocol/key_agreement.ts";
      const group = loadLabGroup();
      const session = (port) => requestTransform({
        broker: { transport: "mqtt", host: "127.0.0.1", port },
        netid: "library", action: "uppercase", message: "hi", timeoutMs: 3_600_000, group,
      });
      console.log(await session(${broker.port}));
      console.log(await session(${freePort()}).catch((e) => e.name));
    `;
    const run = await runPeer(Deno.execPath(), ["eval", script], { timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "HI\nClientError\n");
  },
});

// ---------------------------------------------------------------------------------------------
// The authenticated key exchange: --trust against the Python responder with --identity

/** Signature modes of the Python responder in which our client must get its answer. */
const ACCEPTED_MODES = ["normal", "signature-first", "retained-then-signed", "junk-signatures"];

for (const mode of ACCEPTED_MODES) {
  Deno.test({
    name: `--trust: the Python responder's ${mode} key exchange is accepted`,
    ignore,
    async fn() {
      await using identity = await pythonIdentity();
      await using broker = await startMosquitto();
      await using responder = await startPythonResponder(broker, mode, [
        ...["--identity", identity.file, "--netid", "trusting"],
      ]);
      const run = await client(broker, [
        ...["-v", "--trust", identity.fingerprint],
        ...["trusting", "reverse", "signed"],
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "dengis\n");
      assert.match(run.stderr, /SUBACK/);
      assert.ok(
        run.stderr.includes(
          `key exchange answered; authenticated by ${identity.fingerprint}, tokens bound to ` +
            "trusting/reverse",
        ),
        run.stderr,
      );
      // The Python peer opened our request under the bound key, and answered under its own.
      await responder.waitForLine(/^answered trusting\/reverse \(bound\)$/, { stream: "stdout" });
    },
  });
}

/** Signature modes that must fail at the deadline, and what the one line must say. */
const REFUSED_MODES: [string, RegExp][] = [
  ["no-signature", /: no signature arrived$/],
  ["other-identity", /: 1 signature by other identities \(SHA256:[0-9a-f]{64}…\)$/],
  [
    "corrupt-signature",
    /: 1 signature by the trusted identity did not cover this key exchange: possible man in the middle$/,
  ],
  [
    "substitute-a",
    /: 1 signature by the trusted identity did not cover .*possible man in the middle$/,
  ],
  [
    "substitute-b",
    /: 1 signature by the trusted identity did not cover .*possible man in the middle$/,
  ],
  ["retained-signature", /: no signature arrived; 1 retained \(stale\) message ignored$/],
  [
    "junk-only",
    /: \d+ signatures by the trusted identity did not cover this key exchange: possible man in the middle; 1 signature by other identities .*; \d+ malformed signatures; 1 signature of an unsupported version$/,
  ],
  ["version-2", /: 1 signature of an unsupported version$/],
];

for (const [mode, seen] of REFUSED_MODES) {
  Deno.test({
    name: `--trust: the Python responder's ${mode} key exchange is refused at the deadline`,
    ignore,
    async fn() {
      await using identity = await pythonIdentity();
      await using broker = await startMosquitto();
      await using responder = await startPythonResponder(broker, mode, [
        ...["--identity", identity.file, "--netid", "wary"],
      ]);
      const run = await client(broker, [
        ...["--timeout", "1.5", "--trust", identity.fingerprint],
        ...["wary", "uppercase", "secret"],
      ]);
      const line = assertOneErrorLine(run, seen);
      assert.ok(
        line.startsWith(
          "secure_mqtt_client: error: no key exchange on wary/key-exchange/response signed by " +
            `${identity.fingerprint} within 1.5 s: `,
        ),
        line,
      );
      // It never got as far as sending the message.
      assert.doesNotMatch(responder.stdoutText(), /answered|bad request/);
    },
  });
}

Deno.test({
  name: "--trust: several values, in any case; one of them signed is enough",
  ignore,
  async fn() {
    await using identity = await pythonIdentity();
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "normal", [
      ...["--identity", identity.file],
    ]);
    const stranger = `SHA256:${"0f".repeat(32)}`;
    const upper = `SHA256:${identity.fingerprint.slice("SHA256:".length).toUpperCase()}`;
    const run = await client(broker, [
      ...["--trust", stranger, "--trust", upper],
      ...["two", "uppercase", "trusted"],
    ]);
    assertAnswer(run, "TRUSTED");
    // Neither fingerprint is ours to trust: refused, and both are named.
    const refused = await client(broker, [
      ...["--timeout", "1", "--trust", stranger, "--trust", `SHA256:${"1e".repeat(32)}`],
      ...["two", "uppercase", "trusted"],
    ]);
    const line = assertOneErrorLine(refused, /1 signature by other identities/);
    assert.ok(line.includes(`${stranger}, SHA256:${"1e".repeat(32)}`), line);
  },
});

Deno.test({
  name: "compatibility: without --trust, a signing responder is used as the lab protocol says",
  ignore,
  async fn() {
    await using identity = await pythonIdentity();
    await using broker = await startMosquitto();
    for (const mode of ["normal", "no-signature", "corrupt-signature"]) {
      await using responder = await startPythonResponder(broker, mode, [
        ...["--identity", identity.file],
      ]);
      const run = await client(broker, [`compat-${mode}`, "uppercase", "unsigned is fine"]);
      assertAnswer(run, "UNSIGNED IS FINE");
      // Tokens under the lab key, as the lab says: bound tokens come only with --trust.
      await responder.waitForLine(new RegExp(`^answered compat-${mode}/uppercase \\(lab\\)$`), {
        stream: "stdout",
      });
    }
  },
});

Deno.test({
  name: "--trust: a bad key from a signing responder is refused, and counted at the deadline",
  ignore,
  async fn() {
    await using identity = await pythonIdentity();
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "y-one", [
      ...["--identity", identity.file],
    ]);
    const run = await client(broker, [
      ...["--timeout", "1", "--trust", identity.fingerprint],
      ...["bad-key", "uppercase", "x"],
    ]);
    // The key is refused and counted; the signature over it cannot make it acceptable.
    assertOneErrorLine(run, /1 key exchange response refused \(peer public key is out of range/);
  },
});

Deno.test({
  name: "--trust: an answer under the lab key after a signed exchange is refused and counted",
  ignore,
  async fn() {
    // The session's own lab key, which whoever holds Z can make: after a signed exchange only
    // K(response, netid, action) is an answer.
    await using identity = await pythonIdentity();
    await using broker = await startMosquitto();
    await using responder = await startPythonResponder(broker, "lab-answer", [
      ...["--identity", identity.file, "--netid", "old"],
    ]);
    const run = await client(broker, [
      ...["--timeout", "1.5", "--trust", identity.fingerprint],
      ...["old", "uppercase", "bound"],
    ]);
    assertOneErrorLine(
      run,
      /^secure_mqtt_client: error: no answer on old\/uppercase\/response within 1\.5 s; 1 response on it failed authentication \(another client using this netid at the same time, or a token copied from another topic\?\)$/,
    );
    assert.match(responder.stdoutText(), /^answered old\/uppercase under the lab key, unopened$/m);
  },
});
