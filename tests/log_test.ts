/**
 * cli/logger.ts and lib/log.ts: the stderr logger (its format, `-v`, and that a stderr nobody reads does not
 * stop the process), writeAllSync, and the LineBudget token bucket on a test clock.
 */

import assert from "node:assert/strict";
import { LineBudget, silentLogger } from "../lib/log.ts";
import { stderrLogger, writeAllSync } from "../cli/logger.ts";

const LOG_MODULE = new URL("../cli/logger.ts", import.meta.url).href;

/**
 * Starts a Deno that imports cli/logger.ts as `log` and runs `code`, with every stream piped.
 */
function spawnDeno(code: string): Deno.ChildProcess {
  const script = `import * as log from ${JSON.stringify(LOG_MODULE)};\n${code}`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--no-lock", "--ext=ts", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("stderrLogger writes name: level: message lines, debug only when verbose", async () => {
  const child = spawnDeno(`
for (const verbose of [false, true]) {
  const logger = log.stderrLogger("svc", verbose);
  logger.debug(\`detail \${verbose}\`);
  logger.info(\`event \${verbose}\`);
  logger.warn(\`trouble \${verbose}\`);
}
`);
  await child.stdin.close();
  const { code, stderr } = await child.output();
  assert.equal(code, 0);
  assert.equal(
    new TextDecoder().decode(stderr),
    "svc: event false\nsvc: warning: trouble false\n" +
      "svc: debug: detail true\nsvc: event true\nsvc: warning: trouble true\n",
  );
});

Deno.test("stderrLogger exposes its verbose flag", () => {
  assert.equal(stderrLogger("svc", true).verbose, true);
  assert.equal(stderrLogger("svc", false).verbose, false);
  assert.equal(silentLogger.verbose, undefined);
});

Deno.test("a stderr nobody reads any more does not stop the process", async () => {
  // The child waits for the end of its stdin, which comes only once the parent has closed its
  // end of the stderr pipe; its last line, written directly, shows that stderr was broken.
  const child = spawnDeno(`
await new Response(Deno.stdin.readable).arrayBuffer();
const logger = log.stderrLogger("svc", true);
for (let i = 0; i < 20; i++) {
  logger.info(\`line \${i}\`);
  logger.warn("trouble");
  logger.debug("detail");
}
let error = "none";
try {
  Deno.stderr.writeSync(new TextEncoder().encode("direct\\n"));
} catch (e) {
  error = e instanceof Deno.errors.BrokenPipe ? "BrokenPipe" : String(e);
}
console.log(\`logged; a direct write: \${error}\`);
`);
  await child.stderr.cancel();
  await child.stdin.close();
  const { code, stdout } = await child.output();
  assert.equal(new TextDecoder().decode(stdout), "logged; a direct write: BrokenPipe\n");
  assert.equal(code, 0);
});

/**
 * Replaces `Deno.stderr.writeSync` until disposed with `write`, which sees each call's bytes as
 * text.
 */
function stubStderr(write: (text: string) => number | Error): Disposable {
  const decoder = new TextDecoder();
  const own = Object.getOwnPropertyDescriptor(Deno.stderr, "writeSync");
  Deno.stderr.writeSync = (p: Uint8Array) => {
    const result = write(decoder.decode(p));
    if (result instanceof Error) throw result;
    return result;
  };
  return {
    [Symbol.dispose]() {
      if (own) Object.defineProperty(Deno.stderr, "writeSync", own);
      else delete (Deno.stderr as { writeSync?: unknown }).writeSync;
    },
  };
}

Deno.test("stderrLogger loses only the line whose write failed", () => {
  const written: string[] = [];
  const failures = [new Deno.errors.Interrupted("interrupted"), new Error("disk full")];
  {
    using _ = stubStderr((text) => {
      const failure = failures.shift();
      if (failure !== undefined) return failure;
      written.push(text);
      return text.length;
    });
    const logger = stderrLogger("svc", false);
    logger.info("lost 1");
    logger.warn("lost 2");
    logger.info("kept");
  }
  assert.deepEqual(written, ["svc: kept\n"]);
});

Deno.test("stderrLogger stops writing once the reader of stderr has gone", () => {
  let calls = 0;
  {
    using _ = stubStderr(() => {
      calls++;
      return new Deno.errors.BrokenPipe("broken pipe");
    });
    const logger = stderrLogger("svc", true);
    for (let i = 0; i < 5; i++) logger.info(`line ${i}`);
  }
  assert.equal(calls, 1);
});

Deno.test("writeAllSync writes everything through a stream that takes a few bytes at a time", () => {
  const written: number[] = [];
  let calls = 0;
  const stream = {
    writeSync(p: Uint8Array): number {
      calls++;
      const n = Math.min(3, p.length);
      written.push(...p.subarray(0, n));
      return n;
    },
  };
  const bytes = new TextEncoder().encode("hello, world");
  writeAllSync(stream, bytes);
  assert.deepEqual(Uint8Array.from(written), bytes);
  assert.equal(calls, 4);
  writeAllSync(stream, new Uint8Array());
  assert.equal(calls, 4);
});

/** A LineBudget on a clock the test moves, and the lines it lets out. */
function budgetOnTestClock(burst: number, perSecond: number) {
  const clock = { now: 1000 };
  const lines: string[] = [];
  const budget = new LineBudget(burst, perSecond, () => clock.now);
  const pass = (message: string) => budget.pass(message, (line) => lines.push(line));
  return { clock, lines, budget, pass };
}

Deno.test("LineBudget lets a burst through at once, then holds lines back", () => {
  const { lines, pass } = budgetOnTestClock(3, 1);
  for (let i = 0; i < 10; i++) pass(`line ${i}`);
  assert.deepEqual(lines, ["line 0", "line 1", "line 2"]);
});

Deno.test("LineBudget refills at perSecond, partial tokens included, up to the burst", () => {
  const { clock, lines, pass } = budgetOnTestClock(2, 4); // a line each 250 ms
  pass("a");
  pass("b");
  clock.now += 125;
  pass("held 1"); // half a token
  clock.now += 125;
  pass("c"); // two halves: one token
  clock.now += 125;
  pass("held 2");
  clock.now += 125;
  pass("d");
  clock.now += 60_000; // a long quiet spell refills only up to the burst
  for (let i = 0; i < 5; i++) pass(`after ${i}`);
  assert.deepEqual(lines, [
    "a",
    "b",
    "1 similar line suppressed",
    "c",
    "1 similar line suppressed",
    "d",
    "after 0",
    "after 1",
  ]);
});

Deno.test("LineBudget reports what it held back with the next line, or on flush", () => {
  const { clock, lines, budget, pass } = budgetOnTestClock(1, 1);
  pass("first");
  for (let i = 0; i < 4; i++) pass(`held ${i}`);
  clock.now += 1000;
  pass("second");
  assert.deepEqual(lines, ["first", "4 similar lines suppressed", "second"]);
  pass("held again");
  pass("and again");
  budget.flush(); // to the emit of the last line held back
  assert.deepEqual(lines.slice(3), ["2 similar lines suppressed"]);
  budget.flush(); // nothing held back since: nothing to say
  assert.equal(lines.length, 4);
  clock.now += 1000;
  pass("third"); // the count was reported once, not again
  assert.deepEqual(lines.slice(4), ["third"]);
});

Deno.test("LineBudget.flush can be given where to report", () => {
  const { budget, pass } = budgetOnTestClock(0, 1);
  const elsewhere: string[] = [];
  budget.flush((line) => elsewhere.push(line)); // nothing held back yet
  pass("held");
  budget.flush((line) => elsewhere.push(line));
  assert.deepEqual(elsewhere, ["1 similar line suppressed"]);
});

Deno.test("LineBudget with no burst and no refill lets nothing through", () => {
  const { clock, lines, budget, pass } = budgetOnTestClock(0, 0);
  for (let i = 0; i < 3; i++) pass(`line ${i}`), clock.now += 10_000;
  assert.deepEqual(lines, []);
  budget.flush();
  assert.deepEqual(lines, ["3 similar lines suppressed"]);
});
