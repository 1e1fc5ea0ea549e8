/**
 * cli/check_args.ts, in-process: the three shapes of the checker's command line, the options,
 * and every refusal as one UsageError line.
 */

import assert from "node:assert/strict";
import { UsageError } from "../../cli/args.ts";
import { CHECK_HELP, parseCheckArgs } from "../../cli/check_args.ts";

function refused(args: string[], reason: RegExp): void {
  try {
    parseCheckArgs(args);
  } catch (error) {
    assert.ok(error instanceof UsageError, `a UsageError for ${JSON.stringify(args)}: ${error}`);
    assert.ok(!error.message.includes("\n"), "one line");
    assert.match(error.message, reason, JSON.stringify(args));
    return;
  }
  assert.fail(`${JSON.stringify(args)} was accepted`);
}

Deno.test("client -- COMMAND: the command after -- untouched, options before it", () => {
  const parsed = parseCheckArgs([
    "client",
    "--quick",
    "--junit",
    "out.xml",
    "--only",
    "client.kx.*",
    "--only",
    "client.cli.*",
    "--deadline",
    "5",
    "--",
    "python3",
    "client.py",
    "--help",
    "--",
    "-h",
  ]);
  assert.deepEqual(parsed, {
    kind: "client",
    command: ["python3", "client.py", "--help", "--", "-h"],
    options: {
      quick: true,
      json: false,
      junit: "out.xml",
      only: ["client.kx.*", "client.cli.*"],
      deadlineMs: 5000,
      waitMs: 10_000,
      verbose: false,
      hostFlag: undefined,
      portFlag: "-p",
    },
  });
});

Deno.test("responder: -h HOST -p PORT of a running one (default localhost:1884), or -- COMMAND", () => {
  const running = parseCheckArgs(["responder", "-h", "broker.lab", "-p", "1883", "--wait", "2"]);
  assert.equal(running.kind, "responder");
  if (running.kind !== "responder") return;
  assert.deepEqual(running.broker, { host: "broker.lab", port: 1883 });
  assert.equal(running.command, undefined);
  assert.equal(running.options.waitMs, 2000);
  const byDefault = parseCheckArgs(["responder"]);
  assert.deepEqual(byDefault.kind === "responder" && byDefault.broker, {
    host: "localhost",
    port: 1884,
  });
  const started = parseCheckArgs([
    "responder",
    "--host-flag=--host",
    "--trust",
    `sha256:${"AB".repeat(32)}`,
    "--",
    "python3",
    "responder.py",
  ]);
  assert.ok(started.kind === "responder");
  if (started.kind !== "responder") return;
  assert.deepEqual(started.command, ["python3", "responder.py"]);
  assert.equal(started.broker, undefined);
  assert.equal(started.options.hostFlag, "--host");
  assert.deepEqual(started.trust, [`SHA256:${"ab".repeat(32)}`]);
});

Deno.test("--help, --version, --list; -h is the host here too, never help", () => {
  assert.deepEqual(parseCheckArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseCheckArgs(["client", "--help", "--", "x"]), { kind: "help" });
  assert.deepEqual(parseCheckArgs(["--version"]), { kind: "version" });
  assert.deepEqual(parseCheckArgs(["--list"]), { kind: "list" });
  assert.deepEqual(parseCheckArgs(["responder", "--list"]), { kind: "list", mode: "responder" });
  refused(["-h"], /option -h needs a value/);
  assert.match(CHECK_HELP, /^usage: secure_mqtt_check client /);
});

Deno.test("refusals: one line each", () => {
  refused([], /required: mode/);
  refused(["server"], /invalid choice 'server'/);
  refused(["client"], /needs the client's command after --/);
  refused(["client", "--"], /nothing after --/);
  refused(
    ["client", "python3", "client.py"],
    /unrecognized arguments: python3 client\.py .*after --/,
  );
  refused(["client", "-h", "x", "--", "c"], /only for responder mode/);
  refused(["client", "--trust", "x", "--", "c"], /only for responder mode/);
  refused(["responder", "-h", "x", "--", "c"], /either -h\/-p .* or -- COMMAND/);
  refused(["responder", "-p", "0"], /invalid port '0'/);
  refused(["responder", "-p", "1e3"], /invalid port/);
  refused(["responder", "--trust", "SHA256:abc"], /argument --trust: expected "SHA256:"/);
  refused(["responder", "--netid", "a/b"], /argument --netid/);
  refused(["client", "--only", "client.nope", "--", "c"], /'client.nope' matches no client case/);
  refused(["client", "--only", "responder.*", "--", "c"], /matches no client case/);
  refused(["client", "--deadline", "0", "--", "c"], /invalid value '0'/);
  refused(["client", "--wait", "soon", "--", "c"], /argument --wait/);
  refused(["client", "--host-flag", "host", "--", "c"], /not an option/);
  refused(["client", "--junit=", "--", "c"], /--junit: must not be empty/);
  refused(["client", "--bogus", "--", "c"], /unrecognized option --bogus/);
});
