/**
 * The client session (lib/client.ts) end to end: the real entry point as a subprocess, a real
 * mosquitto, and the independent Python responder (pyca/cryptography + paho-mqtt) — honest,
 * and hostile in each way PROTOCOL.md says a client must survive or refuse.
 */

import assert from "node:assert/strict";
import { runTask } from "./support/processes.ts";
import { type Broker, mosquittoSkipReason, startMosquitto } from "./support/mosquitto.ts";
import { pythonPeersSkipReason, startPythonResponder } from "./support/python.ts";

const ignore = mosquittoSkipReason() !== undefined || pythonPeersSkipReason() !== undefined;

/** Runs the client task against `broker` with a private netid. */
function client(broker: Broker, args: string[], options: { stdin?: string } = {}) {
  return runTask("client", ["--host", broker.host, "-p", String(broker.port), ...args], options);
}

function assertOneErrorLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], /^secure_mqtt_client: error: /);
  assert.match(lines[0], pattern);
}

/** Multiset of code points, for checking shuffle without fixing its randomness. */
function sorted(text: string): string {
  return Array.from(text).sort().join("");
}

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
      ["shuffle", (out) => assert.equal(sorted(out), sorted(message))],
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
    let r = await client(broker, ["uni", "reverse", unicode]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, Array.from(unicode).reverse().join("") + "\n");

    const big = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(2000).slice(0, 64 * 1024);
    r = await client(broker, ["big", "uppercase", big]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, big.toUpperCase() + "\n");

    r = await client(broker, ["dash", "uppercase", "--", "-rf --all"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "-RF --ALL\n");
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
        /connected to/,
        /SUBACK/,
        /key exchange request sent/,
        /answered/,
        /request sent/,
        /verified/,
      ]
    ) {
      assert.match(r.stderr, expected);
    }
    const fingerprints = r.stderr.match(/SHA256:[0-9a-f]{64}/g) ?? [];
    assert.equal(fingerprints.length, 2, r.stderr);
    assert.notEqual(fingerprints[0], fingerprints[1]);
    assert.match(r.stderr, /\d+(\.\d+)? ms/);
  },
});

/** Hostile responders that must end the run at once with a clear reason. */
const REFUSED_KEYS: [string, RegExp][] = [
  ["garbage-key", /peer public key is malformed/],
  ["y-one", /out of range/],
  ["y-p-minus-1", /out of range/],
  ["foreign-params", /different DH parameters/],
];

for (const [mode, reason] of REFUSED_KEYS) {
  Deno.test({
    name: `a responder that answers with a bad key (${mode}) ends the run: exit 1`,
    ignore,
    async fn() {
      await using broker = await startMosquitto();
      await using _responder = await startPythonResponder(broker, mode);
      const r = await client(broker, ["--timeout", "20", "victim", "uppercase", "secret"]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assertOneErrorLine(r.stderr, reason);
      assert.ok(r.ms < 10_000, `refused at once, not at the deadline (${r.ms.toFixed(0)} ms)`);
    },
  });
}

Deno.test({
  name: "a tampered token is refused and counted; the deadline error says so",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "tamper-token");
    const r = await client(broker, ["--timeout", "3", "tamper", "uppercase", "secret"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assertOneErrorLine(
      r.stderr,
      /no answer on tamper\/uppercase\/response.*1 response on it failed authentication/,
    );
  },
});

Deno.test({
  name: "a forged token is shrugged off and the genuine answer that follows is taken",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startPythonResponder(broker, "forged-then-ok");
    const r = await client(broker, ["forged", "reverse", "abc"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "cba\n");
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
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assertOneErrorLine(
        r.stderr,
        /no key exchange response on quiet\/key-exchange\/response within 1\.5 s/,
      );
    }
    {
      await using _mute = await startPythonResponder(broker, "silent-action");
      const r = await client(broker, ["--timeout", "1.5", "mute", "uppercase", "x"]);
      assert.equal(r.code, 1);
      assertOneErrorLine(r.stderr, /no answer on mute\/uppercase\/response within 1\.5 s$/);
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
      assert.equal(r.code, 1);
      assertOneErrorLine(r.stderr, /no key exchange response on stale\/key-exchange\/response/);
    }
    {
      // The retained junk is still there; an honest responder now answers live.
      await using _peer = await startPythonResponder(broker, "stale-retained", [
        "--netid",
        "stale",
      ]);
      const r = await client(broker, ["stale", "uppercase", "fresh"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "FRESH\n");
    }
  },
});

Deno.test({
  name: "a broker that goes away mid-session: exit 1 naming the lost connection",
  ignore,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startPythonResponder(broker, "silent-action");
    const run = client(broker, ["--timeout", "20", "lost", "uppercase", "x"]);
    await responder.waitForLine(/^key exchange for lost$/, { stream: "stdout" });
    await broker.stop();
    const r = await run;
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assertOneErrorLine(r.stderr, /lost|closed/);
  },
});
