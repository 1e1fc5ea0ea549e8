/**
 * cli/command.ts: how an entry point ends. Each case runs a tiny command through
 * `runCommand` in a subprocess, since what is under test is what reaches stdout, stderr and
 * the exit status.
 */

import assert from "node:assert/strict";
import { ROOT, runPeer } from "../../support/processes.ts";

const COMMAND_MODULE = new URL("../../cli/command.ts", import.meta.url).href;
const ARGS_MODULE = new URL("../../cli/args.ts", import.meta.url).href;

/** Runs a command whose `main` body is `body` (it may use UsageError, Failure, printOut). */
function runBody(body: string) {
  const script = `
    import { printOut, runCommand, EXIT_FAILURE, EXIT_USAGE } from ${
    JSON.stringify(COMMAND_MODULE)
  };
    import { UsageError } from ${JSON.stringify(ARGS_MODULE)};
    class Failure extends Error { name = "Failure"; }
    const code = await runCommand({
      name: "tool",
      usage: "usage: tool [-h] thing",
      failures: [Failure],
      async main(args) { ${body} },
    }, ["a"]);
    Deno.exit(code);
  `;
  return runPeer(Deno.execPath(), ["eval", "--no-config", script], { cwd: ROOT });
}

Deno.test("runCommand: the status main returns, and its stdout", async () => {
  const run = await runBody(`printOut("answer\\n"); return 0;`);
  assert.deepEqual([run.code, run.stdout, run.stderr], [0, "answer\n", ""]);
  const three = await runBody(`return 3;`);
  assert.equal(three.code, 3);
});

Deno.test("runCommand: printOut writes all of a large output", async () => {
  const run = await runBody(`printOut("x".repeat(3 * 1024 * 1024)); return 0;`);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.length, 3 * 1024 * 1024);
});

Deno.test("runCommand: a UsageError is exit 2, its line and the usage line", async () => {
  const run = await runBody(`printOut(""); throw new UsageError("argument thing: bad");`);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.equal(run.stderr, "tool: error: argument thing: bad\nusage: tool [-h] thing\n");
});

Deno.test("runCommand: a declared failure is exit 1 and its one line", async () => {
  const run = await runBody(`throw new Failure("cannot connect to h:1: connection refused");`);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, "");
  assert.equal(run.stderr, "tool: error: cannot connect to h:1: connection refused\n");
});

Deno.test("runCommand: anything else is exit 1, one line, never a stack trace", async () => {
  const bug = await runBody(`throw new TypeError("x is undefined\\n    at secret (key.ts:1)");`);
  assert.equal(bug.code, 1);
  assert.equal(bug.stdout, "");
  assert.equal(bug.stderr, "tool: internal error: TypeError: x is undefined\n");
  const thrown = await runBody(`throw "a string";`);
  assert.equal(thrown.code, 1);
  assert.equal(thrown.stderr, "tool: internal error: a string\n");
});
