/**
 * lib/log.ts: the silent logger, and the LineBudget token bucket on a test clock. The stderr
 * logger of the entry points is cli/logger.ts (tests/cli/logger_test.ts, tests/e2e/logger_test.ts).
 */

import assert from "node:assert/strict";
import { LineBudget, silentLogger } from "../lib/log.ts";

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
