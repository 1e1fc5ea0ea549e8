/**
 * cli/args.ts: `parseArguments` is `node:util` `parseArgs` (strict, positionals allowed)
 * with every refusal turned into a one-line {@linkcode UsageError} that names the option.
 */

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseArguments, UsageError } from "../../cli/args.ts";

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
  port: { type: "string", short: "p" },
  host: { type: "string" },
  trust: { type: "string", multiple: true },
} as const;
const HINT = "put -- before a message that starts with '-'";

/** The message of the UsageError that parsing `args` throws. */
function problem(args: string[], hint?: string): string {
  try {
    parseArguments(args, OPTIONS, hint);
  } catch (error) {
    assert.ok(error instanceof UsageError, `a UsageError, got ${error}`);
    assert.equal(error.name, "UsageError");
    assert.ok(!error.message.includes("\n"), "one line");
    assert.ok(
      (error.cause as { code?: string })?.code?.startsWith("ERR_PARSE_ARGS_"),
      "node's error is the cause",
    );
    return error.message;
  }
  assert.fail(`${JSON.stringify(args)} was accepted`);
}

Deno.test("parseArguments: values, short groups, multiple values, positionals after --", () => {
  const { values, positionals } = parseArguments(
    ["-vp", "1884", "--host=h", "--trust", "a", "--trust=b", "alice", "--", "-x", "--port"],
    OPTIONS,
  );
  assert.deepEqual({ ...values }, { verbose: true, port: "1884", host: "h", trust: ["a", "b"] });
  assert.deepEqual(positionals, ["alice", "-x", "--port"]);
  // A lone '-' is a positional (stdin), and an option value when one is expected.
  assert.deepEqual(parseArguments(["-"], OPTIONS).positionals, ["-"]);
  assert.equal(parseArguments(["--port", "-"], OPTIONS).values.port, "-");
  // Glued or with '=', a value may start with '-'.
  assert.equal(parseArguments(["--port=-1"], OPTIONS).values.port, "-1");
  assert.equal(parseArguments(["-p-1"], OPTIONS).values.port, "-1");
});

Deno.test("parseArguments: an unknown option is named, with the hint when given", () => {
  assert.equal(problem(["--nope"], HINT), `unrecognized option --nope (${HINT})`);
  assert.equal(problem(["--nope"]), "unrecognized option --nope");
  assert.equal(problem(["a", "-x"], HINT), `unrecognized option -x (${HINT})`);
  // In a group of short options, the unknown one.
  assert.equal(problem(["-vx"]), "unrecognized option -x");
  assert.equal(problem(["--no-verbose"]), "unrecognized option --no-verbose");
});

Deno.test("parseArguments: names of Object.prototype are not options", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    assert.equal(problem([`--${name}`]), `unrecognized option --${name}`);
    assert.equal(problem([`--${name}=1`]), `unrecognized option --${name}`);
  }
});

Deno.test("parseArguments: a string option without its value", () => {
  assert.equal(problem(["--port"]), "option --port needs a value");
  assert.equal(problem(["alice", "-p"]), "option -p needs a value");
  assert.equal(problem(["-vp"]), "option -p needs a value");
});

Deno.test("parseArguments: a value that starts with '-' is taken for an option", () => {
  const hint = "(write --port=VALUE for one that starts with '-')";
  assert.equal(problem(["--port", "-v"]), `option --port needs a value ${hint}`);
  assert.equal(problem(["-p", "-1"]), `option -p needs a value ${hint}`);
  assert.equal(problem(["--port", "--"]), `option --port needs a value ${hint}`);
  assert.equal(
    problem(["--host", "--port", "1"]),
    "option --host needs a value (write --host=VALUE for one that starts with '-')",
  );
});

Deno.test("parseArguments: a boolean option given a value", () => {
  assert.equal(problem(["--verbose=yes"]), "option --verbose takes no value");
  assert.equal(problem(["--help=false"]), "option --help takes no value");
});

Deno.test("parseArguments: only parseArgs's own errors become usage errors", () => {
  // A bad options table is the program's bug, not the user's: it propagates as it is.
  const broken = { port: { type: "number" } } as unknown as typeof OPTIONS;
  assert.throws(() => parseArguments(["--port", "1"], broken), (e) => !(e instanceof UsageError));
});

Deno.test("parseArguments agrees with parseArgs on 3,000 seeded random command lines", () => {
  const words = [
    "-p",
    "--port",
    "--port=7",
    "-v",
    "-vh",
    "-pv",
    "-vp",
    "--host",
    "--host=",
    "--verbose=1",
    "--trust",
    "--",
    "-",
    "alice",
    "-x",
    "--unknown",
    "9",
    "-h",
    "--constructor",
  ];
  let seed = 0x2545f491;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 0x1_0000_0000;
  for (let i = 0; i < 3000; i++) {
    const args = Array.from(
      { length: Math.floor(next() * 6) },
      () => words[Math.floor(next() * words.length)],
    );
    let expected: unknown;
    try {
      const { values, positionals } = parseArgs({
        args,
        options: OPTIONS,
        strict: true,
        allowPositionals: true,
      });
      expected = { values: { ...values }, positionals };
    } catch {
      expected = "refused";
    }
    let actual: unknown;
    try {
      const { values, positionals } = parseArguments(args, OPTIONS);
      actual = { values: { ...values }, positionals };
    } catch (error) {
      assert.ok(error instanceof UsageError, `${JSON.stringify(args)}: ${error}`);
      // Every refusal is explained: the generic fallback means a case describeProblem missed.
      assert.match(error.message, /^(unrecognized option|option) -/, JSON.stringify(args));
      actual = "refused";
    }
    assert.deepEqual(actual, expected, JSON.stringify(args));
  }
});
