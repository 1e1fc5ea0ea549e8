/**
 * What a failed run of one of our commands must look like (cli/command.ts makes it so), checked
 * the same way by every test: a runtime failure is exit 1, nothing on stdout and exactly one
 * `NAME: error: ...` line on stderr; a usage error is exit 2, nothing on stdout, the reason line
 * and then the usage.
 *
 * @example
 * ```ts
 * import { assertErrorLine, assertUsageError } from "./failures.ts";
 * const refused = { code: 1, stdout: "", stderr: "tool: error: connection refused\n" };
 * assertErrorLine(refused, "tool", /refused$/);
 * const usage = "usage: tool [--help] FILE";
 * const bad = { code: 2, stdout: "", stderr: `tool: error: unrecognized option --x\n${usage}\n` };
 * assertUsageError(bad, "tool", "unrecognized option --x", usage);
 * ```
 * @module
 */

import assert from "node:assert/strict";

/** How a run ended: its exit code and everything it wrote. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Exit 1, nothing on stdout, exactly one line on stderr, `NAME: error: ` and then what
 * `pattern` matches, and no trace of a stack; returns that line. With `secret`, also that the
 * secret (a password) appears in neither stream.
 */
export function assertErrorLine(
  run: Outcome,
  name: string,
  pattern: RegExp,
  options: { secret?: string } = {},
): string {
  assert.equal(run.code, 1, `exit code; stderr:\n${run.stderr}`);
  assert.equal(run.stdout, "", "nothing on stdout");
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0], new RegExp(`^${escapeRegExp(name)}: error: `));
  assert.match(lines[0], pattern);
  assert.doesNotMatch(lines[0], /Stack backtrace|Caused by/);
  if (options.secret !== undefined) assertNoSecret(run, options.secret);
  return lines[0];
}

/**
 * Exit 2, nothing on stdout, then `NAME: error: REASON` and the usage on stderr; returns the
 * reason line. `reason` is the whole reason (a string) or a pattern it must match. Given
 * `usage`, everything after the reason line must be exactly it; without, it must start with
 * `usage: `.
 */
export function assertUsageError(
  run: Outcome,
  name: string,
  reason: string | RegExp,
  usage?: string,
): string {
  assert.equal(run.code, 2, `exit code; stderr:\n${run.stderr}`);
  assert.equal(run.stdout, "", "nothing on stdout");
  const [first, ...rest] = run.stderr.trimEnd().split("\n");
  if (typeof reason === "string") {
    assert.equal(first, `${name}: error: ${reason}`);
  } else {
    assert.match(first, new RegExp(`^${escapeRegExp(name)}: error: `));
    assert.match(first, reason);
  }
  if (usage === undefined) assert.match(rest[0] ?? "", /^usage: /, run.stderr);
  else assert.equal(run.stderr, `${first}\n${usage}\n`);
  return first;
}

/**
 * What starts every line the responder writes while it runs: its time, UTC, ISO 8601 to the
 * millisecond, and a space (cli/logger.ts). A pattern's source, to put in front of another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TIMESTAMP } from "./failures.ts";
 * assert.match("2026-12-02T18:04:05.123Z svc: up", new RegExp(`^${TIMESTAMP}svc: up$`));
 * ```
 */
export const TIMESTAMP = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `;

/** `secret` (a password) appears neither on stdout nor on stderr. */
export function assertNoSecret(run: { stdout: string; stderr: string }, secret: string): void {
  const text = run.stdout + run.stderr;
  assert.ok(!text.includes(secret), `the secret appears in the output:\n${text}`);
}
