/**
 * lib/log.ts: the silent logger, the LineBudget token bucket and the RateLimitedLog of a budget
 * per kind on a test clock, and the log-safe text of what peers send. The stderr logger of the
 * entry points is cli/logger.ts (tests/cli/logger_test.ts, tests/e2e/logger_test.ts).
 */

import assert from "node:assert/strict";
import {
  LineBudget,
  type Logger,
  ms,
  printable,
  printableError,
  RateLimitedLog,
  silentLogger,
} from "../lib/log.ts";

Deno.test("silentLogger does not say it is verbose", () => {
  assert.equal(silentLogger.verbose, undefined);
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

/** A RateLimitedLog on a clock the test moves, writing to a logger that keeps its lines. */
function rateLimitedOnTestClock(burst: number, perSecond: number) {
  const clock = { now: 1000 };
  const lines: string[] = [];
  const logger: Logger = {
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
  };
  const log = new RateLimitedLog(logger, { burst, perSecond, now: () => clock.now });
  return { clock, lines, log };
}

Deno.test("RateLimitedLog: each kind has a budget of its own, and so does each level", () => {
  const { lines, log } = rateLimitedOnTestClock(2, 1);
  for (let i = 0; i < 5; i++) log.line("warn", "token", `bad token ${i}`);
  log.line("warn", "session", "no session"); // a flood of one kind leaves the others alone
  log.line("debug", "token", "debug of the same kind"); // another level: another budget
  log.line("info", "answer", "answered");
  assert.deepEqual(lines, [
    "warn: bad token 0",
    "warn: bad token 1",
    "warn: no session",
    "debug: debug of the same kind",
    "info: answered",
  ]);
});

Deno.test("RateLimitedLog: a kind refills on the clock, and reports what it held back", () => {
  const { clock, lines, log } = rateLimitedOnTestClock(1, 2); // a line each 500 ms
  log.line("warn", "token", "first");
  log.line("warn", "token", "held");
  log.line("warn", "token", "held");
  clock.now += 499;
  log.line("warn", "token", "held");
  clock.now += 1;
  log.line("warn", "token", "second");
  assert.deepEqual(lines, ["warn: first", "warn: 3 similar lines suppressed", "warn: second"]);
});

Deno.test("RateLimitedLog.flush reports each kind's held-back count at its own level", () => {
  const { lines, log } = rateLimitedOnTestClock(1, 0);
  log.line("warn", "a", "a 1");
  log.line("warn", "a", "a 2");
  log.line("debug", "b", "b 1");
  log.line("debug", "b", "b 2");
  log.line("debug", "b", "b 3");
  log.line("info", "c", "c 1"); // nothing held back: nothing to report
  log.flush();
  assert.deepEqual(lines, [
    "warn: a 1",
    "debug: b 1",
    "info: c 1",
    "warn: 1 similar line suppressed",
    "debug: 2 similar lines suppressed",
  ]);
  log.flush();
  assert.equal(lines.length, 5);
});

Deno.test("printable escapes control and bidi characters and truncates", () => {
  assert.equal(
    printable("evil\nsecure_mqtt_responder: answered"),
    "evil\\nsecure_mqtt_responder: answered",
  );
  assert.equal(
    printable("\x1b[31mred\r\t\x00\x7f\x9b"),
    "\\u001b[31mred\\u000d\\u0009\\u0000\\u007f\\u009b",
  );
  for (const c of ["\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069"]) {
    assert.equal(printable(`a${c}b`), `a\\u${c.charCodeAt(0).toString(16)}b`);
  }
  assert.equal(printable("Wörld, 世界 ✓"), "Wörld, 世界 ✓"); // printable text stays as it is
  assert.equal(printable("x".repeat(100), 10), "xxxxxxxxxx…");
  assert.equal(printable("x".repeat(80)), "x".repeat(80));
  assert.equal(printable("x".repeat(81)), `${"x".repeat(80)}…`);
  // Cut first, then escaped: an escape is never cut in half.
  assert.equal(printable("ab\ncd", 3), "ab\\n…");
});

Deno.test("printableError: the first line of an error, escaped, at most 200 characters", () => {
  assert.equal(printableError(new Error("first\nsecond")), "first");
  assert.equal(printableError("thrown \x1b text"), "thrown \\u001b text");
  assert.equal(printableError(new Error("y".repeat(300))), `${"y".repeat(200)}…`);
});

Deno.test("ms shows a duration to a tenth of a millisecond", () => {
  assert.equal(ms(7.26), "7.3 ms");
  assert.equal(ms(0), "0.0 ms");
  assert.equal(ms(30_000.5), "30000.5 ms");
});
