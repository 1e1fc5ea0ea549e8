/**
 * Runs cases one after another, each under its own deadline, and turns what each one found
 * into a {@linkcode CaseResult}. A case that overruns its deadline is aborted (its programs
 * are ended through the signal it was given) and, if it still does not settle, abandoned with
 * a failure: nothing a program under test does can stall the run.
 *
 * @module
 */

import type { CheckCase } from "./cases.ts";
import { ProgramStartError } from "./process.ts";

/** What a case found. */
export type Outcome =
  | { status: "pass"; note?: string; details?: Record<string, unknown> }
  | { status: "fail"; expected: string; got: string; details?: Record<string, unknown> }
  | { status: "skip"; reason: string; details?: Record<string, unknown> };

/** The case passed; `note` adds what is worth knowing (how long it took, a tolerated quirk). */
export function pass(note?: string): Outcome {
  return note === undefined ? { status: "pass" } : { status: "pass", note };
}

/** The case failed: one line each of what was expected and what happened instead. */
export function fail(expected: string, got: string): Outcome {
  return { status: "fail", expected, got };
}

/** The case could not be judged here (the program does not offer it, a mode it needs). */
export function skip(reason: string): Outcome {
  return { status: "skip", reason };
}

/** A case's verdict, as reported. */
export interface CaseResult {
  id: string;
  title: string;
  required: boolean;
  rule: string;
  status: "pass" | "fail" | "skip";
  /** Failure: "expected …, got …"; skip: why; pass: a note, or "". */
  reason: string;
  ms: number;
  details?: Record<string, unknown>;
}

/** The reason of a case cut short by the run's signal. */
export const INTERRUPTED = "interrupted";

/** How long a case may take after its deadline before it is given up on. */
const ABANDON_AFTER_MS = 5000;

/** Options of {@linkcode runCases}. */
export interface RunCasesOptions {
  /** Each case's deadline. */
  budgetMs(c: CheckCase): number;
  /** Called with each result as soon as it is known (the terminal table prints as it goes). */
  onResult?(result: CaseResult): void;
  /** Ends the whole run early (SIGINT): the running case is aborted, the rest not started. */
  signal?: AbortSignal;
}

/**
 * Runs `body` for each case in order. `body` gets a signal that aborts at the case's deadline
 * and must end what it started when it fires. A {@linkcode ProgramStartError} (the command
 * under test does not exist) ends the run: it is rethrown, as no case could pass.
 */
export async function runCases(
  cases: readonly CheckCase[],
  body: (c: CheckCase, signal: AbortSignal) => Promise<Outcome>,
  options: RunCasesOptions,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    if (options.signal?.aborted) break;
    const started = performance.now();
    let outcome = await runOne(c, body, options);
    // What a case found while it was being interrupted says nothing about the program.
    if (options.signal?.aborted) outcome = skip(INTERRUPTED);
    const result = toResult(c, outcome, performance.now() - started);
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

async function runOne(
  c: CheckCase,
  body: (c: CheckCase, signal: AbortSignal) => Promise<Outcome>,
  options: RunCasesOptions,
): Promise<Outcome> {
  const budget = options.budgetMs(c);
  const deadline = new AbortController();
  const signals = [deadline.signal];
  if (options.signal) signals.push(options.signal);
  const signal = AbortSignal.any(signals);
  const timer = setTimeout(() => deadline.abort(), budget);
  let abandon: ReturnType<typeof setTimeout> | undefined;
  const abandoned = new Promise<Outcome>((resolve) => {
    signal.addEventListener("abort", () => {
      abandon = setTimeout(
        () =>
          resolve(
            fail(
              `the case to finish within ${seconds(budget)}`,
              `it was still running ${seconds(ABANDON_AFTER_MS)} after its deadline`,
            ),
          ),
        ABANDON_AFTER_MS,
      );
    }, { once: true });
  });
  try {
    return await Promise.race([body(c, signal), abandoned]);
  } catch (error) {
    if (error instanceof ProgramStartError) throw error;
    if (options.signal?.aborted) return skip(INTERRUPTED);
    const line = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return fail("the check to run", `the checker failed: ${line.split("\n")[0]}`);
  } finally {
    clearTimeout(timer);
    clearTimeout(abandon);
  }
}

function toResult(c: CheckCase, outcome: Outcome, ms: number): CaseResult {
  const reason = outcome.status === "fail"
    ? `expected ${outcome.expected}, got ${outcome.got}`
    : outcome.status === "skip"
    ? outcome.reason
    : outcome.note ?? "";
  const result: CaseResult = {
    id: c.id,
    title: c.title,
    required: c.required,
    rule: c.rule,
    status: outcome.status,
    reason,
    ms: Math.round(ms),
  };
  if (outcome.details) result.details = outcome.details;
  return result;
}

/** `1.5 s`: a duration as the report writes it. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
