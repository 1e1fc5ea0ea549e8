/**
 * The client's command line (main.ts), run as a real subprocess with the `client` task's
 * permissions: usage errors (exit 2, one reason line and the usage line), help and version
 * (exit 0), and a broker that is not running (exit 1). stdout stays empty on every failure.
 */

import assert from "node:assert/strict";
import { type RunResult, runTask } from "../support/processes.ts";
import denoJson from "../deno.json" with { type: "json" };
import { freePort } from "../support/mosquitto.ts";

const USAGE_LINE =
  /^usage: secure_mqtt_client \[-h\] \[-p PORT\] \[--host HOST\] \[-v\] \[--timeout SECONDS\].* netid action message$/;
const FINGERPRINT = `SHA256:${"ab".repeat(32)}`;

async function assertUsageError(args: string[], reason: RegExp): Promise<string> {
  const { code, stdout, stderr } = await runTask("client", args, {
    withoutEnv: ["MQTT_PASSWORD"],
  });
  assert.equal(code, 2, `exit code for ${JSON.stringify(args)}; stderr: ${stderr}`);
  assert.equal(stdout, "", "nothing on stdout");
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, `one reason line and the usage line, got:\n${stderr}`);
  assert.match(lines[0], /^secure_mqtt_client: error: /);
  assert.match(lines[0], reason);
  assert.match(lines[1], USAGE_LINE);
  return lines[0];
}

/** Exit 1, nothing on stdout, exactly one `error:` line on stderr matching `reason`. */
function assertOneFailureLine(run: RunResult, reason: RegExp): void {
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, "");
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${run.stderr}`);
  assert.match(lines[0], /^secure_mqtt_client: error: /);
  assert.match(lines[0], reason);
}

Deno.test("--help prints usage and option help on stdout and exits 0", async () => {
  for (const flag of ["-h", "--help"]) {
    const { code, stdout, stderr } = await runTask("client", [flag]);
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.match(stdout.split("\n")[0], USAGE_LINE);
    for (
      const option of [
        "--port",
        "--host",
        "--verbose",
        "--timeout",
        "--url",
        "--tls",
        "--cafile",
        "--username",
        "MQTT_PASSWORD",
        "--trust",
        "--version",
      ]
    ) {
      assert.ok(stdout.includes(option), `help mentions ${option}`);
    }
  }
});

Deno.test("--help wins over the missing positionals; --version prints deno.json's", async () => {
  const help = await runTask("client", ["alice", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout.split("\n")[0], USAGE_LINE);
  const version = await runTask("client", ["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stderr, "");
  assert.equal(version.stdout, `secure_mqtt_client ${denoJson.version}\n`);
});

Deno.test("missing and extra arguments are usage errors", async () => {
  await assertUsageError([], /required: netid, action, message$/);
  await assertUsageError(["alice", "uppercase"], /required: message$/);
  await assertUsageError(["alice", "uppercase", "hi", "extra"], /unrecognized arguments: extra$/);
});

Deno.test("unknown options, a missing value, a boolean given one: usage errors", async () => {
  const line = await assertUsageError(
    ["--nope", "alice", "uppercase", "hi"],
    /unrecognized option --nope \(/,
  );
  // The hint tells how to pass a message that starts with '-'.
  assert.match(line, /put -- before it/);
  await assertUsageError(["alice", "uppercase", "-x"], /unrecognized option -x\b/);
  await assertUsageError(["alice", "uppercase", "hi", "--port"], /option --port needs a value$/);
  await assertUsageError(["alice", "uppercase", "hi", "-p"], /option -p needs a value$/);
  await assertUsageError(["--tls=yes", "alice", "uppercase", "hi"], /option --tls takes no value/);
  await assertUsageError(
    ["--host", "-v", "alice", "uppercase", "hi"],
    /option --host needs a value \(write --host=VALUE/,
  );
  await assertUsageError(["--constructor", "alice", "uppercase", "hi"], /--constructor/);
});

Deno.test("a message that starts with '-' after -- is not an option", async () => {
  // Nothing listens on the port: getting as far as connecting proves the parse succeeded.
  const port = freePort();
  const run = await runTask("client", [
    ...["--host", "127.0.0.1", "-p", String(port)],
    ...["alice", "uppercase", "--", "-rf"],
  ]);
  assertOneFailureLine(run, /refused/);
});

Deno.test("a bad action is a usage error naming the choices", async () => {
  await assertUsageError(["alice", "capitalize", "hi"], /invalid choice 'capitalize'.*uppercase/);
});

Deno.test("bad ports are usage errors", async () => {
  for (const port of ["0", "65536", "abc", "1.5", "0x50", " 80", ""]) {
    await assertUsageError(
      [`--port=${port}`, "alice", "uppercase", "hi"],
      /argument -p\/--port: invalid port/,
    );
  }
  await assertUsageError(["-p", "-1", "alice", "uppercase", "hi"], /option -p needs a value/);
});

Deno.test("a netid that is not one topic level is a usage error", async () => {
  for (const netid of ["a/b", "a+", "#", ""]) {
    await assertUsageError([netid, "uppercase", "hi"], /argument netid: /);
  }
});

Deno.test("a bad timeout is a usage error", async () => {
  for (const t of ["0", "soon", "", "0x10", "1e3", " 5", "0.0001", "86401"]) {
    await assertUsageError([`--timeout=${t}`, "alice", "uppercase", "hi"], /argument --timeout/);
  }
});

Deno.test("a malformed --trust is a usage error that does not echo it", async () => {
  for (
    const bad of [
      "ab".repeat(32), // no SHA256: prefix
      `SHA256:${"ab".repeat(31)}`, // too short
      `SHA256:${"ab".repeat(32)}00`, // too long
      `SHA256:${"zz".repeat(32)}`, // not hex
      `SHA512:${"ab".repeat(32)}`,
      "",
    ]
  ) {
    const line = await assertUsageError(
      [`--trust=${bad}`, "alice", "uppercase", "hi"],
      /argument --trust: expected "SHA256:" followed by 64 hex digits/,
    );
    if (bad !== "") assert.ok(!line.includes(bad), line);
  }
  // One good and one bad: still refused.
  await assertUsageError(
    ["--trust", FINGERPRINT, "--trust", "SHA256:nope", "alice", "uppercase", "hi"],
    /argument --trust/,
  );
});

Deno.test("--url: bad forms and conflicting options are usage errors", async () => {
  const cases: [string[], RegExp][] = [
    [["--url", "mqtt://127.0.0.1", "--host", "h"], /--url: not allowed with --host/],
    [["--url", "mqtt://127.0.0.1", "-p", "1884"], /--url: not allowed with --port/],
    [["--url", "mqtts://127.0.0.1", "--tls"], /--url: not allowed with --tls/],
    [["--url", "http://127.0.0.1"], /unsupported scheme 'http:'/],
    [["--url", "tcp://127.0.0.1:1884"], /unsupported scheme 'tcp:'/],
    [["--url", "127.0.0.1:1884"], /--url: /],
    [["--url", "not a url"], /--url: invalid URL/],
    [["--url", "mqtt://user:pw@127.0.0.1"], /no credentials in the URL/],
    [["--url", "mqtt://user@127.0.0.1"], /no credentials in the URL/],
    [["--url", "mqtt://127.0.0.1/path"], /a path is only for ws:\/\/ and wss:\/\//],
    [["--url", "ws://127.0.0.1/mqtt?x=1"], /no query or fragment/],
    [["--url", "mqtt://127.0.0.1:0"], /--url: invalid port '0'/],
    [["--url", "mqtt://127.0.0.1:65536"], /--url: invalid URL/],
    [["--url", "mqtt://127.0.0.1", "--cafile", "ca.pem"], /--cafile: the URL is not a TLS one/],
    [["--url", "ws://127.0.0.1/mqtt", "--cafile", "ca.pem"], /--cafile: the URL is not a TLS/],
  ];
  for (const [options, reason] of cases) {
    const line = await assertUsageError([...options, "alice", "uppercase", "hi"], reason);
    assert.ok(!line.includes(":pw@"), "a password in a URL is never echoed");
  }
});

Deno.test("--cafile that cannot be read is a usage error naming why", async () => {
  await assertUsageError(
    ["--cafile", "/nonexistent/ca.pem", "alice", "uppercase", "hi"],
    /argument --cafile: cannot read '\/nonexistent\/ca.pem': no such file/,
  );
  await assertUsageError(
    ["--cafile", "/", "alice", "uppercase", "hi"],
    /argument --cafile: cannot read '\/': /,
  );
});

Deno.test("a broker that is not running: exit 1, one line naming host:port and 'refused'", async () => {
  const port = freePort(); // nothing listens there
  for (
    const target of [
      ["--host", "127.0.0.1", "-p", String(port)],
      ["--url", `mqtt://127.0.0.1:${port}`],
    ]
  ) {
    const run = await runTask("client", [...target, "alice", "uppercase", "hi"]);
    assertOneFailureLine(run, new RegExp(`127\\.0\\.0\\.1:${port}: connection refused$`));
  }
  const ws = await runTask("client", ["--url", `ws://127.0.0.1:${port}/mqtt`, "a", "reverse", "x"]);
  assertOneFailureLine(ws, new RegExp(`ws://127\\.0\\.0\\.1:${port}/mqtt: connection refused$`));
});
