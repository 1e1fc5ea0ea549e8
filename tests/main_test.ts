/**
 * The client's command line (main.ts), run as a real subprocess with the `client` task's
 * permissions: usage errors (exit 2), help and version (exit 0), and a broker that is down
 * (exit 1). stdout must stay empty on every failure.
 */

import assert from "node:assert/strict";
import { runTask } from "./support/processes.ts";
import denoJson from "../deno.json" with { type: "json" };
import { freePort } from "./support/mosquitto.ts";

const USAGE_LINE =
  /^usage: secure_mqtt_client \[-h\] \[-p PORT\] \[--host HOST\] \[-v\] \[--timeout SECONDS\].* netid action message$/;

async function assertUsageError(args: string[], reason: RegExp) {
  const { code, stdout, stderr } = await runTask("client", args);
  assert.equal(code, 2, `exit code for ${JSON.stringify(args)}; stderr: ${stderr}`);
  assert.equal(stdout, "", "nothing on stdout");
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, `one reason line and the usage line, got:\n${stderr}`);
  assert.match(lines[0], /^secure_mqtt_client: error: /);
  assert.match(lines[0], reason);
  assert.match(lines[1], USAGE_LINE);
}

Deno.test("--help prints usage and option help on stdout and exits 0", async () => {
  for (const flag of ["-h", "--help"]) {
    const { code, stdout, stderr } = await runTask("client", [flag]);
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.match(stdout.split("\n")[0], USAGE_LINE);
    for (const option of ["--port", "--host", "--verbose", "--timeout", "--tls", "--username"]) {
      assert.ok(stdout.includes(option), `help mentions ${option}`);
    }
  }
});

Deno.test("--version prints the version from deno.json", async () => {
  const { code, stdout } = await runTask("client", ["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout, `secure_mqtt_client ${denoJson.version}\n`);
});

Deno.test("missing and extra arguments are usage errors", async () => {
  await assertUsageError([], /required: netid, action, message/);
  await assertUsageError(["alice", "uppercase"], /required: message$/);
  await assertUsageError(["alice", "uppercase", "hi", "extra"], /unrecognized arguments: extra/);
});

Deno.test("unknown options are usage errors", async () => {
  await assertUsageError(["--nope", "alice", "uppercase", "hi"], /unrecognized option --nope/);
  await assertUsageError(["alice", "uppercase", "-x"], /unrecognized option -x/);
  await assertUsageError(["alice", "uppercase", "hi", "--port"], /argument missing/);
});

Deno.test("a bad action is a usage error naming the choices", async () => {
  await assertUsageError(["alice", "capitalize", "hi"], /invalid choice 'capitalize'.*uppercase/);
});

Deno.test("bad ports are usage errors", async () => {
  for (const port of ["0", "65536", "abc", "1.5", "-1", ""]) {
    await assertUsageError(["-p", port, "alice", "uppercase", "hi"], /port|-p needs a value/);
  }
});

Deno.test("a netid that is not one topic level is a usage error", async () => {
  for (const netid of ["a/b", "a+", "#", ""]) {
    await assertUsageError([netid, "uppercase", "hi"], /argument netid: /);
  }
});

Deno.test("a bad timeout is a usage error", async () => {
  for (const t of ["0", "-3", "soon", "", "0x10", "1e3", " 5", "0.0001", "86401"]) {
    await assertUsageError(["--timeout", t, "alice", "uppercase", "hi"], /--timeout/);
  }
});

Deno.test("a broker that is not running fails within a second, naming host:port", async () => {
  const port = freePort(); // nothing listens there
  const { code, stdout, stderr } = await runTask("client", [
    "--host",
    "127.0.0.1",
    "-p",
    String(port),
    "alice",
    "uppercase",
    "hi",
  ]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.equal(stderr.trimEnd().split("\n").length, 1, `one line, got:\n${stderr}`);
  assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*refused`));
  // The failure itself must be fast: no silent reconnect loop. The client's own -v timing
  // would need a connection; the process time (start-up included) is bound generously.
  const again = await runTask("client", [
    "-p",
    String(port),
    "--host",
    "127.0.0.1",
    "n",
    "reverse",
    "x",
  ]);
  assert.ok(again.ms < 2000, `took ${again.ms.toFixed(0)} ms`);
});
