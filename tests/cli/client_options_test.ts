/**
 * cli/client_options.ts, in-process: the lab's usage pattern (`-h` is the host, `--help` the
 * only help, title-case an action, the NetID the client ID), our options after it, and every
 * refusal as one UsageError line. tests/e2e/main_test.ts runs the real process for the few things
 * only a process shows (exit status, stdout and stderr, stdin).
 */

import assert from "node:assert/strict";
import { ACTIONS, LAB_ACTIONS } from "../../lib/protocol/actions.ts";
import { UsageError } from "../../cli/args.ts";
import {
  CLIENT_HELP,
  CLIENT_USAGE,
  type ClientRequest,
  DEFAULT_TIMEOUT_SECONDS,
  parseClientArgs,
  readMessage,
} from "../../cli/client_options.ts";
import { MAX_MESSAGE_BYTES } from "../../lib/protocol/limits.ts";
import {
  actionProblem,
  clientIdProblem,
  messageProblem,
  netidProblem,
} from "../../lib/client/options.ts";

const FINGERPRINT = `SHA256:${"ab".repeat(32)}`;

function request(args: string[]): ClientRequest {
  const invocation = parseClientArgs(args);
  assert.equal(invocation.kind, "request", JSON.stringify(args));
  return (invocation as { request: ClientRequest }).request;
}

/** The one-line message of the UsageError that `args` get. */
function refusal(args: string[]): string {
  try {
    parseClientArgs(args);
  } catch (error) {
    assert.ok(error instanceof UsageError, `a UsageError for ${JSON.stringify(args)}: ${error}`);
    assert.ok(!error.message.includes("\n"), "one line");
    return error.message;
  }
  assert.fail(`${JSON.stringify(args)} was accepted`);
}

function refused(args: string[], reason: RegExp): string {
  const line = refusal(args);
  assert.match(line, reason, JSON.stringify(args));
  return line;
}

Deno.test("the lab's way: -h HOST -p PORT NETID ACTION MESSAGE, for each of its actions", () => {
  for (const action of LAB_ACTIONS) {
    const r = request(["-h", "broker.lab", "-p", "1884", "le0nh4rt", action, "hello world"]);
    assert.deepEqual(r, {
      broker: { transport: "mqtt", host: "broker.lab", port: 1884 },
      clientId: "le0nh4rt",
      netid: "le0nh4rt",
      action,
      message: "hello world",
      timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
      trust: [],
      verbose: false,
    });
  }
  assert.equal(request(["le0nh4rt", "random", "hi"]).action, "random");
});

Deno.test("long forms, -v, options after the positionals, defaults", () => {
  const r = request([
    "le0nh4rt",
    "reverse",
    "hi",
    "--host",
    "10.0.0.2",
    "--port=1999",
    "--verbose",
  ]);
  assert.deepEqual(r.broker, { transport: "mqtt", host: "10.0.0.2", port: 1999 });
  assert.equal(r.verbose, true);
  assert.equal(request(["-v", "le0nh4rt", "reverse", "hi"]).verbose, true);
  assert.deepEqual(request(["le0nh4rt", "reverse", "hi"]).broker, {
    transport: "mqtt",
    host: "localhost",
    port: 1884,
  });
  const more = request([
    ...["-i", "le0nh4rt-laptop", "--timeout", "2.5", "--trust", FINGERPRINT.toUpperCase()],
    ...["le0nh4rt", "shuffle", "-"],
  ]);
  assert.equal(more.clientId, "le0nh4rt-laptop");
  assert.equal(more.timeoutMs, 2500);
  assert.deepEqual(more.trust, [FINGERPRINT]);
  assert.equal(more.message, "-", "read from stdin by the caller");
  assert.equal(request(["--id=x", "le0nh4rt", "shuffle", "hi"]).clientId, "x");
});

Deno.test("--help is the only help, and wins over anything missing; -h needs a value", () => {
  assert.deepEqual(parseClientArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseClientArgs(["le0nh4rt", "--help"]), { kind: "help" });
  assert.deepEqual(parseClientArgs(["--version"]), { kind: "version" });
  refused(["-h"], /^option -h needs a value$/);
  refused(["le0nh4rt", "uppercase", "hi", "-h"], /^option -h needs a value$/);
  refused(["-h", "--help"], /^option -h needs a value \(write --host=VALUE/);
  refused(["--help=yes"], /^option --help takes no value$/);
});

Deno.test("the usage line starts with the lab's pattern; --help lists its options first", () => {
  const usage = CLIENT_USAGE.replace(/\s+/g, " ");
  assert.match(usage, /^usage: secure_mqtt_client \[--help\] \[-v\] \[-h HOST\] \[-p PORT\] /);
  assert.match(usage, / NETID ACTION MESSAGE$/);
  for (const line of CLIENT_USAGE.split("\n")) assert.ok(line.length <= 80, line);
  assert.ok(CLIENT_HELP.startsWith(`${CLIENT_USAGE}\n`));
  const options = CLIENT_HELP.slice(CLIENT_HELP.indexOf("\noptions:\n"));
  const at = (text: string) => {
    const index = options.indexOf(`\n  ${text} `);
    assert.ok(index > 0, `--help lists ${text}`);
    return index;
  };
  const lab = ["--help", "-v, --verbose", "-h HOST, --host HOST", "-p PORT, --port PORT"].map(at);
  assert.deepEqual(lab, [...lab].sort((a, b) => a - b), "in the lab's order");
  for (const ours of ["-i ID, --id ID", "--timeout", "--url", "--trust", "--version"]) {
    assert.ok(at(ours) > lab[3], `${ours} after the lab's options`);
  }
  for (const action of ACTIONS) assert.ok(CLIENT_HELP.includes(action), action);
  // Each --url scheme's default port, and what '-' does to a trailing newline.
  for (
    const scheme of ["mqtt:// *HOST\\[:PORT\\] \\(1883\\)", "\\(8883\\)", "\\(80\\)", "\\(443\\)"]
  ) {
    assert.match(CLIENT_HELP.replace(/\s+/g, " "), new RegExp(scheme));
  }
  assert.match(CLIENT_HELP.replace(/\s+/g, " "), /less one trailing newline \(LF or CRLF\)/);
});

Deno.test("missing and extra arguments; several unquoted words get a hint", () => {
  refused([], /^the following arguments are required: NETID, ACTION, MESSAGE$/);
  refused(["le0nh4rt", "uppercase"], /^the following arguments are required: MESSAGE$/);
  refused(
    ["le0nh4rt", "uppercase", "hello", "big", "world"],
    /^unrecognized arguments: big world \(quote a message with spaces\)$/,
  );
});

Deno.test("unknown options, missing values, booleans given one", () => {
  const line = refused(["--nope", "le0nh4rt", "uppercase", "hi"], /^unrecognized option --nope \(/);
  assert.match(line, /put -- before it/);
  refused(["le0nh4rt", "uppercase", "-x"], /unrecognized option -x\b/);
  refused(["le0nh4rt", "uppercase", "hi", "--port"], /^option --port needs a value$/);
  refused(["le0nh4rt", "uppercase", "hi", "-p"], /^option -p needs a value$/);
  refused(["le0nh4rt", "uppercase", "hi", "-i"], /^option -i needs a value$/);
  refused(["--tls=yes", "le0nh4rt", "uppercase", "hi"], /^option --tls takes no value/);
  refused(["--host", "-v", "le0nh4rt", "uppercase", "hi"], /needs a value \(write --host=VALUE/);
  refused(["--constructor", "le0nh4rt", "uppercase", "hi"], /--constructor/);
  // After --, a message may start with '-'.
  assert.equal(request(["le0nh4rt", "uppercase", "--", "-rf"]).message, "-rf");
});

Deno.test("NETID, ACTION, -i, --timeout, --trust: each refusal names its argument", () => {
  for (const netid of ["a/b", "a+", "#", "", "x".repeat(1025)]) {
    refused([netid, "uppercase", "hi"], /^argument NETID: /);
  }
  for (const action of ["capitalize", "Uppercase", "title_case", "key-exchange", ""]) {
    refused(["le0nh4rt", action, "hi"], /^argument ACTION: invalid choice '.*' \(choose from /);
  }
  const choices = refusal(["le0nh4rt", "capitalize", "hi"]);
  for (const action of ACTIONS) assert.ok(choices.includes(action), action);
  for (const id of ["", "a\0b", "\ud800"]) {
    refused(["-i", id, "le0nh4rt", "reverse", "x"], /^argument -i\/--id: /);
  }
  for (const t of ["0", "soon", "", "0x10", "1e3", " 5", "0.0001", "86401"]) {
    refused([`--timeout=${t}`, "le0nh4rt", "uppercase", "hi"], /^argument --timeout: /);
  }
  for (
    const bad of [
      "ab".repeat(32),
      `SHA256:${"ab".repeat(31)}`,
      `SHA256:${"ab".repeat(32)}00`,
      `SHA256:${"zz".repeat(32)}`,
      `SHA512:${"ab".repeat(32)}`,
    ]
  ) {
    const line = refused(
      ["--trust", FINGERPRINT, `--trust=${bad}`, "le0nh4rt", "uppercase", "hi"],
      /^argument --trust: expected "SHA256:" followed by 64 hex digits$/,
    );
    assert.ok(!line.includes(bad), "the bad value is not echoed");
  }
  refused(
    ["le0nh4rt", "uppercase", "x".repeat(MAX_MESSAGE_BYTES + 1)],
    /^argument MESSAGE: 1048577 bytes is over the 1048576-byte limit$/,
  );
});

Deno.test("-h with a port or a URL in it says what to use instead", () => {
  refused(
    ["-h", "broker.lab:1884", "le0nh4rt", "uppercase", "hi"],
    /give it with -p \(-h broker\.lab -p 1884\) or as --url mqtt:\/\/broker\.lab:1884$/,
  );
  refused(["-h", "[::1]:1884", "le0nh4rt", "uppercase", "hi"], /-h ::1 -p 1884/);
  refused(
    ["--host", "mqtt://broker.lab", "le0nh4rt", "uppercase", "hi"],
    /is a URL: pass it with --url instead$/,
  );
  assert.equal(request(["-h", "::1", "le0nh4rt", "uppercase", "hi"]).broker.host, "::1");
  assert.equal(request(["-h", "[fe80::1]", "le0nh4rt", "uppercase", "hi"]).broker.host, "fe80::1");
});

function stream(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(
    chunks.map((c) => typeof c === "string" ? new TextEncoder().encode(c) : c),
  );
}

Deno.test("readMessage: stdin less one trailing newline, LF or CRLF; strict UTF-8; the limit", async () => {
  assert.equal(await readMessage(stream("hi\n")), "hi");
  assert.equal(await readMessage(stream("hi\r\n")), "hi");
  assert.equal(await readMessage(stream("hi\n\n")), "hi\n", "only one");
  assert.equal(await readMessage(stream("two\nlines")), "two\nlines");
  assert.equal(await readMessage(stream("h", "é\n")), "hé");
  assert.equal(await readMessage(stream("\ufeffhi")), "\ufeffhi", "a BOM is part of the text");
  assert.equal(await readMessage(stream()), "");
  const max = "x".repeat(MAX_MESSAGE_BYTES);
  assert.equal(await readMessage(stream(max, "\r\n")), max, "a maximal line with its newline");
  const reject = (input: ReadableStream<Uint8Array>, reason: RegExp) =>
    assert.rejects(readMessage(input), (e) => e instanceof UsageError && reason.test(e.message));
  await reject(
    stream(Uint8Array.of(0xff)),
    /^argument MESSAGE: standard input is not valid UTF-8$/,
  );
  await reject(stream(max, "xx\n"), /over the 1048576-byte limit$/);
  await reject(stream(max, "x"), /over the 1048576-byte limit$/);
});

Deno.test("NETID, ACTION, MESSAGE, -i: the reason is the one requestTransform gives", () => {
  const cases: [string[], string, string | undefined][] = [
    [["a/b", "uppercase", "hi"], "NETID", netidProblem("a/b")],
    [["le0nh4rt", "explode", "hi"], "ACTION", actionProblem("explode")],
    [["-i", "", "le0nh4rt", "reverse", "x"], "-i/--id", clientIdProblem("")],
  ];
  const big = "é".repeat(MAX_MESSAGE_BYTES / 2 + 1);
  cases.push([["le0nh4rt", "uppercase", big], "MESSAGE", messageProblem(big)]);
  for (const [args, argument, problem] of cases) {
    assert.ok(problem !== undefined);
    assert.equal(refusal(args), `argument ${argument}: ${problem}`);
  }
  // --timeout takes seconds as text; its range is requestTransform's, in seconds.
  assert.equal(
    refusal(["--timeout=0.0009", "le0nh4rt", "uppercase", "hi"]),
    "argument --timeout: invalid value '0.0009' (need seconds, 0.001 to 86400)",
  );
  assert.equal(request(["--timeout=0.001", "le0nh4rt", "uppercase", "hi"]).timeoutMs, 1);
  assert.equal(request(["--timeout=86400", "le0nh4rt", "uppercase", "hi"]).timeoutMs, 86_400_000);
});
