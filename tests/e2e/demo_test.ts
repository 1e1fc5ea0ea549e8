/**
 * `deno task demo` and `deno task demo --mitm`: one command each, no mosquitto (an embedded
 * aedes broker), run with exactly the task's permissions. The plain demo prints the four
 * messages as the broker sees them and the answer; the attack shows the lab protocol fooled and
 * the authenticated key exchange refusing. Each exits by itself, so nothing was left running
 * (a demo that hangs is killed by the runner's timeout, and its status then fails the test).
 */

import assert from "node:assert/strict";
import { type RunResult, runTask } from "../../support/processes.ts";
import { assertUsageError } from "../../support/failures.ts";

/** Runs the demo task to completion with `args`. */
function demo(args: string[]): Promise<RunResult> {
  return runTask("demo", args);
}

/** Deno's own lines (npm download progress, warnings) are not the demo's. */
function demoStderr(run: RunResult): string {
  return run.stderr.replace(/^(Warning|Download|Initialize).*\n(\s+at .*\n)?/gm, "");
}

const FOUR_MESSAGES = [
  /broker sees \[1\] demo\/key-exchange\/request\s.*public key \(PEM\)/,
  /broker sees \[2\] demo\/key-exchange\/response\s.*public key \(PEM\)/,
  /broker sees \[3\] demo\/uppercase\/request\s.*Fernet token gAAAAA/,
  /broker sees \[4\] demo\/uppercase\/response\s.*Fernet token gAAAAA/,
];

Deno.test("deno task demo runs the whole exchange on an embedded broker and exits 0", async () => {
  const run = await demo([]);
  const out = run.stdout;
  assert.equal(run.code, 0, `${out}\n${run.stderr}`);
  assert.match(out, /^broker: aedes, embedded, listening on 127\.0\.0\.1:\d+$/m);
  for (const line of FOUR_MESSAGES) assert.match(out, line);
  assert.doesNotMatch(out, /broker sees \[5\]/);
  assert.match(out, /^answer: HELLO, SECURE MQTT!$/m);
  assert.match(
    out,
    /^the broker relayed 4 messages and saw topics, public keys and ciphertext only/m,
  );
  // What the broker saw is ciphertext: the message appears only where the client states it
  // and in the answer.
  assert.deepEqual(
    out.split("\n").filter((l) => /secure mqtt/i.test(l)),
    [
      `client: demo asks for uppercase of "Hello, secure MQTT!"`,
      "answer: HELLO, SECURE MQTT!",
    ],
  );
  assert.equal(demoStderr(run), "");
});

Deno.test("deno task demo takes a message, an action and a netid", async () => {
  const run = await demo(["--action", "reverse", "-n", "bob", "stressed"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /broker sees \[3\] bob\/reverse\/request/);
  assert.match(run.stdout, /^answer: desserts$/m);
});

Deno.test("deno task demo: bad arguments are usage errors (exit 2)", async () => {
  const cases: [string[], RegExp][] = [
    [["--action", "explode"], /^demo: error: argument -a\/--action: invalid choice 'explode'/m],
    [["-n", "a/b"], /^demo: error: argument -n\/--netid: /m],
    [["--nope"], /^demo: error: unrecognized option --nope$/m],
    [["one", "two"], /^demo: error: unrecognized arguments: two \(quote a message/m],
  ];
  for (const [args, reason] of cases) {
    const run = await demo(args);
    assertUsageError({ ...run, stderr: demoStderr(run) }, "demo", reason);
    assert.match(run.stderr, /^usage: deno task demo /m);
  }
});

Deno.test("deno task demo --mitm: the lab protocol fooled, the authenticated one not", async () => {
  const run = await demo(["--mitm"]);
  const out = run.stdout;
  assert.equal(run.code, 0, `${out}\n${run.stderr}`);
  assert.equal(demoStderr(run), "");

  const part2At = out.indexOf("\n2. ");
  assert.ok(part2At > 0, out);
  const part1 = out.slice(0, part2At);
  const part2 = out.slice(part2At);

  // Part 1: the broker swaps both keys, reads the request, forges the answer; the client
  // prints the forgery and exits 0.
  assert.match(part1, /^1\. The lab protocol, through a broker that is a man in the middle$/m);
  assert.match(part1, /broker \(attacker\): replaced the client's public key/);
  assert.match(part1, /broker \(attacker\): replaced the responder's public key/);
  assert.match(
    part1,
    /broker \(attacker\): READ the request on demo\/uppercase\/request: "Hello, secure MQTT!"/,
  );
  assert.match(
    part1,
    /client: printed "HELLO, SECURE MQTT! \(and the broker says hello\)" and exited 0: fooled, and the broker read the request/,
  );

  // Part 2: the client trusts the responder's identity; the substituted keys are refused as a
  // man in the middle before any request is sent, so there is nothing to read.
  const fingerprint =
    /^2\. The same, with the responder's identity and --trust (SHA256:[0-9a-f]{64})$/m
      .exec(part2)?.[1];
  assert.ok(fingerprint, part2);
  assert.match(part2, /broker \(attacker\): let the signature on demo\/key-exchange\/signature/);
  const refusal = /^ {3}client: exited 1: secure_mqtt_client: error: (.*)$/m.exec(part2)?.[1];
  assert.ok(refusal, part2);
  assert.ok(refusal.includes(`signed by ${fingerprint}`), refusal);
  assert.match(refusal, /did not cover this key exchange: possible man in the middle/);
  assert.doesNotMatch(part2, /READ/);
  assert.match(part2, /^ {3}the broker read 0 requests: it learned nothing it can use$/m);
  assert.match(part2, /^What made the difference: the responder signed its key exchange/m);
  assert.match(part2, /substituted keys were refused before any message was sent\.$/m);
});
