/**
 * `deno task demo`: one command, no mosquitto (an embedded aedes broker), run with exactly the
 * task's permissions. It must print the four messages as the broker sees them and the answer,
 * exit 0 and leave nothing running (the process exiting on its own proves the last part).
 */

import assert from "node:assert/strict";
import { type Peer, spawnTask } from "./support/processes.ts";

/** The exit status; a demo still running after `ms` is killed and the test fails. */
async function exited(demo: Peer, ms = 30_000): Promise<Deno.CommandStatus> {
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    demo.kill("SIGKILL");
  }, ms);
  try {
    const status = await demo.status;
    assert.ok(!hung, `the demo did not exit by itself within ${ms} ms: something kept running`);
    return status;
  } finally {
    clearTimeout(timer);
  }
}

const FOUR_MESSAGES = [
  /broker sees \[1\] demo\/key-exchange\/request\s.*public key \(PEM\)/,
  /broker sees \[2\] demo\/key-exchange\/response\s.*public key \(PEM\)/,
  /broker sees \[3\] demo\/uppercase\/request\s.*Fernet token gAAAAA/,
  /broker sees \[4\] demo\/uppercase\/response\s.*Fernet token gAAAAA/,
];

Deno.test("deno task demo runs the whole exchange on an embedded broker and exits 0", async () => {
  await using demo = spawnTask("demo", []);
  const status = await exited(demo);
  const out = demo.stdoutText();
  assert.strictEqual(status.code, 0, `${out}\n${demo.stderrText()}`);
  for (const line of FOUR_MESSAGES) assert.match(out, line);
  assert.match(out, /^answer: HELLO, SECURE MQTT!$/m);
  // What the broker saw is ciphertext: the message never appears outside the answer line.
  assert.strictEqual(out.split("\n").filter((l) => /secure mqtt/i.test(l)).length, 2);
  assert.strictEqual(demo.stderrText().replace(/^(Warning|Download).*\n(\s+at .*\n)?/gm, ""), "");
});

Deno.test("deno task demo takes a message, an action and a netid", async () => {
  await using demo = spawnTask("demo", ["--action", "reverse", "-n", "bob", "stressed"]);
  assert.strictEqual((await exited(demo)).code, 0, demo.stderrText());
  assert.match(demo.stdoutText(), /broker sees \[3\] bob\/reverse\/request/);
  assert.match(demo.stdoutText(), /^answer: desserts$/m);
});

Deno.test("deno task demo: a bad action is a usage error (exit 2)", async () => {
  await using demo = spawnTask("demo", ["--action", "explode"]);
  assert.strictEqual((await exited(demo)).code, 2);
  assert.match(demo.stderrText(), /^demo: error: argument -a\/--action: invalid choice 'explode'/m);
  assert.match(demo.stderrText(), /^usage: deno task demo /m);
});
