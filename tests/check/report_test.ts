/**
 * lib/check/report.ts: the table rows and summary line, the JSON report, and the JUnit XML
 * (only required failures are <failure>; advisory failures and skips are <skipped>; text
 * escaped; counts that agree with the exit status).
 */

import assert from "node:assert/strict";
import {
  type CheckReport,
  statusLabel,
  summaryLine,
  TableFormat,
  tally,
  toJson,
  toJunit,
} from "../../lib/check/report.ts";
import type { CaseResult } from "../../lib/check/runner.ts";

const base = { title: "what it checks", rule: "a rule", ms: 1500 };
const RESULTS: CaseResult[] = [
  { ...base, id: "client.cli.h-host", required: true, status: "pass", reason: "" },
  {
    ...base,
    id: "client.kx.zero-lead",
    required: true,
    status: "fail",
    reason: 'expected <all> & "512" bytes, got\nfewer',
  },
  { ...base, id: "client.silent", required: false, status: "fail", reason: "expected x, got y" },
  { ...base, id: "client.action.random", required: false, status: "skip", reason: "not offered" },
];
const REPORT: CheckReport = {
  tool: "secure_mqtt_check",
  version: "9.9.9",
  mode: "client",
  target: "python3 client.py",
  startedAt: "2026-12-01T00:00:00.000Z",
  ms: 6000,
  results: RESULTS,
};

Deno.test("the counts, and the exit status: 1 when a required case failed, not an advisory one", () => {
  assert.deepEqual(tally(RESULTS), {
    cases: 4,
    passed: 1,
    requiredFailed: 1,
    advisoryFailed: 1,
    skipped: 1,
    exitCode: 1,
  });
  assert.equal(
    tally(RESULTS.filter((r) => r.required === false || r.status === "pass")).exitCode,
    0,
  );
  assert.deepEqual(RESULTS.map(statusLabel), ["PASS", "FAIL", "WARN", "SKIP"]);
});

Deno.test("table rows: result, id, level, and the reason on one line", () => {
  const table = new TableFormat(24);
  assert.match(table.header(), /^result +case +level +details$/);
  const rows = RESULTS.map((r) => table.row(r));
  assert.match(rows[0], /^PASS +client\.cli\.h-host +required +what it checks$/);
  assert.match(
    rows[1],
    /^FAIL +client\.kx\.zero-lead +required +expected <all> & "512" bytes, got fewer$/,
  );
  assert.match(rows[2], /^WARN +client\.silent +advisory +expected x, got y$/);
  for (const row of rows) assert.ok(!row.includes("\n"));
  assert.match(
    summaryLine(RESULTS, 6000),
    /^4 cases: 1 passed, 1 failed \(required\), 1 advisory warning, 1 skipped, in 6 s: FAIL \(1 required case failed\)$/,
  );
});

Deno.test("--json: the whole report and its counts", () => {
  const parsed = JSON.parse(toJson(REPORT));
  assert.equal(parsed.mode, "client");
  assert.equal(parsed.results.length, 4);
  assert.deepEqual(parsed.summary, {
    cases: 4,
    passed: 1,
    requiredFailed: 1,
    advisoryFailed: 1,
    skipped: 1,
  });
});

Deno.test("JUnit: a required failure is a <failure>, an advisory one and a skip are <skipped>", () => {
  const xml = toJunit(REPORT);
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites /);
  assert.match(
    xml,
    /<testsuite name="secure_mqtt_check client" tests="4" failures="1" errors="0" skipped="2" time="6.000"/,
  );
  const testcases = xml.match(/<testcase [^>]*>[\s\S]*?<\/testcase>/g)!;
  assert.equal(testcases.length, 4);
  assert.match(testcases[0], /classname="client.cli" name="client.cli.h-host" time="1.500"/);
  assert.doesNotMatch(testcases[0], /<failure|<skipped/);
  assert.match(
    testcases[1],
    /<failure message="expected &lt;all&gt; &amp; &quot;512&quot; bytes, got fewer" type="required">/,
  );
  assert.match(testcases[2], /<skipped message="advisory, failed: expected x, got y"\/>/);
  assert.doesNotMatch(testcases[2], /<failure/);
  assert.match(testcases[3], /<skipped message="skipped: not offered"\/>/);
  assert.equal((xml.match(/<failure /g) ?? []).length, tally(RESULTS).requiredFailed);
  // Nothing unescaped: every < opens a tag, every & an entity.
  assert.doesNotMatch(xml.replace(/<\/?[a-z?][^<>]*>/g, ""), /[<>]|&(?!amp;|lt;|gt;|quot;)/);
});

Deno.test("JUnit drops the characters XML 1.0 cannot hold", () => {
  const xml = toJunit({
    ...REPORT,
    results: [{ ...RESULTS[1], reason: "expected a, got \u0000\u001b[31mred" }],
  });
  assert.match(xml, /got \[31mred/);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
});
