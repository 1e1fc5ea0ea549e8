/**
 * lib/check/client_suite.ts on real clients: our own client and the Python peer pass; a lab
 * client with one typical bug (tests/peers/buggy_client.py --bug NAME) fails exactly the cases
 * that look for that bug, and passes all the others, so that each verdict points at one fault.
 */

import assert from "node:assert/strict";
import { CLIENT_CASES } from "../../../lib/check/cases.ts";
import { runClientSuite } from "../../../lib/check/client_suite.ts";
import type { CaseResult } from "../../../lib/check/runner.ts";
import { PYTHON, pythonPeersSkipReason } from "../../../support/python.ts";
import { ROOT, taskCommand } from "../../../support/processes.ts";

const needsPython = pythonPeersSkipReason() !== undefined;
/**
 * The clients' own deadline: the silent and tampered cases wait it out, so not the default 10 s;
 * with room for a busy machine (the test files run in parallel), as a run that overruns it fails.
 */
const CLIENT_TIMEOUT = ["--timeout", "8"];
/** The checker's: well past the client's. */
const DEADLINE_MS = 16_000;

const HOSTILE = [
  "client.hostile.y-one",
  "client.hostile.y-p-minus-1",
  "client.hostile.other-p",
  "client.hostile.other-g",
  "client.hostile.not-pem",
];

/** Each bug, and the cases that must flag it: those and no others. */
const FLAGGED: Record<string, string[]> = {
  "zero-strip": ["client.kx.zero-lead"],
  "qos0": ["client.mqtt.qos"],
  "early-publish": ["client.mqtt.suback-first"],
  "retained": ["client.retained"],
  "h-help": ["client.cli.h-host"],
  "stdout-debug": ["client.output.answer-only", "client.output.errors-on-stderr"],
  // Every case in which the client must fail: a failure that exits 0 is no failure.
  "exit0": [
    ...HOSTILE,
    "client.hostile.tampered",
    "client.output.errors-on-stderr",
    "client.silent",
  ],
  "no-timeout": ["client.silent"],
};

async function check(command: string[]): Promise<CaseResult[]> {
  return await runClientSuite(CLIENT_CASES, { command, deadlineMs: DEADLINE_MS });
}

function failed(results: CaseResult[]): string[] {
  return results.filter((r) => r.status !== "pass").map((r) => r.id);
}

/** Each result as one line, for assertion messages. */
function lines(results: CaseResult[]): string {
  return results.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.reason}`).join("\n");
}

const buggy = (bug?: string) => [
  PYTHON,
  `${ROOT}/tests/peers/buggy_client.py`,
  ...(bug ? ["--bug", bug] : []),
  ...CLIENT_TIMEOUT,
];

Deno.test("our own client passes every case", async () => {
  const [, ...run] = taskCommand("client");
  const results = await check([
    Deno.execPath(),
    ...run.slice(0, -1),
    `${ROOT}/${run.at(-1)}`,
    ...CLIENT_TIMEOUT,
  ]);
  assert.deepEqual(failed(results), [], lines(results));
});

Deno.test({
  name: "the Python peer (tests/peers/client.py) passes every required case",
  ignore: needsPython,
  async fn() {
    const results = await check([PYTHON, `${ROOT}/tests/peers/client.py`, ...CLIENT_TIMEOUT]);
    const required = results.filter((r) => r.required && r.status !== "pass");
    assert.deepEqual(required.map((r) => r.id), [], lines(results));
  },
});

Deno.test({
  name: "each typical bug is flagged on exactly the cases that look for it, and no bug on none",
  ignore: needsPython,
  async fn(t) {
    // Suites in parallel (each has a broker and responder of its own): they mostly wait.
    // no-timeout first: it waits out the checker's deadline twice, while the others run.
    const bugs = ["no-timeout", "", ...Object.keys(FLAGGED).filter((b) => b !== "no-timeout")];
    const verdicts = new Map<string, CaseResult[]>();
    for (let i = 0; i < bugs.length; i += 5) {
      const batch = bugs.slice(i, i + 5);
      const runs = await Promise.all(batch.map((bug) => check(buggy(bug || undefined))));
      batch.forEach((bug, j) => verdicts.set(bug, runs[j]));
    }
    for (const bug of bugs) {
      await t.step(bug || "no bug", () => {
        const results = verdicts.get(bug)!;
        assert.deepEqual(failed(results).sort(), [...(FLAGGED[bug] ?? [])].sort(), lines(results));
        for (const r of results.filter((r) => r.status === "fail")) {
          assert.match(r.reason, /^expected .+, got .+/);
        }
      });
    }
  },
});
