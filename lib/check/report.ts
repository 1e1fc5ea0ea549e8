/**
 * What `secure_mqtt_check` reports: a table row per case as it finishes and a summary line for
 * the terminal, the whole report as JSON (`--json`), and JUnit XML (`--junit FILE`), the format
 * CI systems and classroom autograders read. In JUnit only a required case that fails is a
 * `<failure>`, so that the file and the exit status agree; an advisory case that fails is a
 * `<skipped>` whose message starts with "advisory".
 *
 * @module
 */

import type { Mode } from "./cases.ts";
import type { CaseResult } from "./runner.ts";

/** A whole run. */
export interface CheckReport {
  tool: "secure_mqtt_check";
  version: string;
  mode: Mode;
  /** What was checked: the command under test, or the broker of a running responder. */
  target: string;
  startedAt: string;
  ms: number;
  results: CaseResult[];
}

/** The counts of a run, and its exit status: 0 when every required case passed, else 1. */
export function tally(results: readonly CaseResult[]) {
  const count = (test: (r: CaseResult) => boolean) => results.filter(test).length;
  const requiredFailed = count((r) => r.status === "fail" && r.required);
  return {
    cases: results.length,
    passed: count((r) => r.status === "pass"),
    requiredFailed,
    advisoryFailed: count((r) => r.status === "fail" && !r.required),
    skipped: count((r) => r.status === "skip"),
    exitCode: requiredFailed === 0 ? 0 : 1,
  };
}

/** The label of a result in the table: PASS, FAIL, WARN (an advisory failure), SKIP. */
export function statusLabel(result: CaseResult): string {
  if (result.status === "fail") return result.required ? "FAIL" : "WARN";
  return result.status === "pass" ? "PASS" : "SKIP";
}

/** Formats table rows with the id column `idWidth` wide. */
export class TableFormat {
  constructor(readonly idWidth: number) {}

  /** The header line. */
  header(): string {
    return `${"result".padEnd(7)}${"case".padEnd(this.idWidth + 2)}${"level".padEnd(10)}details`;
  }

  /** One case: its result, id, level and reason (or what it checks, when it passed). */
  row(result: CaseResult): string {
    const level = result.required ? "required" : "advisory";
    const text = result.status === "pass"
      ? result.reason === "" ? result.title : `${result.title}: ${result.reason}`
      : result.reason;
    return `${statusLabel(result).padEnd(7)}${result.id.padEnd(this.idWidth + 2)}${
      level.padEnd(10)
    }${oneLine(text)}`;
  }
}

/**
 * The closing line: counts, the time taken and the verdict.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summaryLine } from "./report.ts";
 * const base = { title: "", rule: "", reason: "", ms: 1 };
 * const line = summaryLine([
 *   { ...base, id: "a", required: true, status: "pass" },
 *   { ...base, id: "b", required: true, status: "fail" },
 *   { ...base, id: "c", required: false, status: "fail" },
 * ], 2500);
 * assert.equal(
 *   line,
 *   "3 cases: 1 passed, 1 failed (required), 1 advisory warning, 0 skipped, in 2.5 s: " +
 *     "FAIL (1 required case failed)",
 * );
 * ```
 */
export function summaryLine(results: readonly CaseResult[], ms: number): string {
  const t = tally(results);
  const verdict = t.exitCode === 0
    ? "OK (every required case passed)"
    : `FAIL (${t.requiredFailed} required case${t.requiredFailed === 1 ? "" : "s"} failed)`;
  return `${t.cases} cases: ${t.passed} passed, ${t.requiredFailed} failed (required), ` +
    `${t.advisoryFailed} advisory warning${t.advisoryFailed === 1 ? "" : "s"}, ${t.skipped} ` +
    `skipped, in ${Number((ms / 1000).toFixed(1))} s: ${verdict}`;
}

/** The report as JSON, with its counts. */
export function toJson(report: CheckReport): string {
  const { exitCode: _, ...counts } = tally(report.results);
  return JSON.stringify({ ...report, summary: counts }, null, 2) + "\n";
}

/** The report as a JUnit XML document: one testsuite, one testcase per case. */
export function toJunit(report: CheckReport): string {
  const t = tally(report.results);
  const time = (ms: number) => (ms / 1000).toFixed(3);
  const cases = report.results.map((r) => {
    const open = `    <testcase classname="${xml(groupOf(r.id))}" name="${xml(r.id)}" time="${
      time(r.ms)
    }">`;
    const props = `      <properties><property name="level" value="${
      r.required ? "required" : "advisory"
    }"/><property name="rule" value="${xml(r.rule)}"/></properties>`;
    let body = "";
    if (r.status === "fail" && r.required) {
      body = `      <failure message="${xml(oneLine(r.reason))}" type="required">${
        xml(`${r.title}\nrule: ${r.rule}\n${r.reason}`)
      }</failure>\n`;
    } else if (r.status === "fail") {
      body = `      <skipped message="${xml(`advisory, failed: ${oneLine(r.reason)}`)}"/>\n`;
    } else if (r.status === "skip") {
      body = `      <skipped message="${xml(`skipped: ${oneLine(r.reason)}`)}"/>\n`;
    }
    const out = r.status === "pass" && r.reason !== ""
      ? `      <system-out>${xml(r.reason)}</system-out>\n`
      : "";
    return `${open}\n${props}\n${body}${out}    </testcase>`;
  });
  const name = `secure_mqtt_check ${report.mode}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${xml(name)}" tests="${t.cases}" failures="${t.requiredFailed}" skipped="${
    t.skipped + t.advisoryFailed
  }" time="${time(report.ms)}">
  <testsuite name="${
    xml(name)
  }" tests="${t.cases}" failures="${t.requiredFailed}" errors="0" skipped="${
    t.skipped + t.advisoryFailed
  }" time="${time(report.ms)}" timestamp="${xml(report.startedAt)}">
    <properties><property name="target" value="${
    xml(report.target)
  }"/><property name="version" value="${xml(report.version)}"/></properties>
${cases.join("\n")}
  </testsuite>
</testsuites>
`;
}

/** `client.kx.zero-lead` → `client.kx`. */
function groupOf(id: string): string {
  return id.split(".").slice(0, -1).join(".") || id;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

/** Text escaped for XML attributes and content; characters XML 1.0 cannot hold are dropped. */
function xml(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
