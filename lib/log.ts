/**
 * Where the library's lines go. The library never prints: the client and the responder take a
 * {@linkcode Logger}, and the entry points give them one that writes to stderr (cli/logger.ts).
 *
 * @module
 */

/** A sink for one-line messages. */
export interface Logger {
  /** True when `debug` lines are shown, so that a caller can skip the work of making them. */
  readonly verbose?: boolean;
  /** Detail, shown only with `-v`. */
  debug(message: string): void;
  /** One line per event worth an operator's attention. */
  info(message: string): void;
  /** Something went wrong and was dealt with (a message dropped, a connection retried). */
  warn(message: string): void;
}

/** The first line of an error's message (or of the value thrown), for a one-line report. */
export function errorLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** The logger of a caller that wants no lines. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {} };

/**
 * A token bucket for log lines: `burst` lines at once, then `perSecond`. What it holds back is
 * counted, and the count is reported with the next line let through, or by `flush()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineBudget } from "./log.ts";
 * let now = 0;
 * const lines: string[] = [];
 * const budget = new LineBudget(2, 1, () => now);
 * for (let i = 0; i < 5; i++) budget.pass(`line ${i}`, (m) => lines.push(m));
 * now += 1000;
 * budget.pass("later", (m) => lines.push(m));
 * assert.deepEqual(lines, ["line 0", "line 1", "3 similar lines suppressed", "later"]);
 * ```
 */
export class LineBudget {
  #tokens: number;
  #last: number;
  #suppressed = 0;
  #report: ((message: string) => void) | undefined;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Hands `message` to `emit` if the budget allows; otherwise counts it. */
  pass(message: string, emit: (message: string) => void): void {
    const now = this.now();
    this.#tokens = Math.min(
      this.burst,
      this.#tokens + ((now - this.#last) / 1000) * this.perSecond,
    );
    this.#last = now;
    if (this.#tokens < 1) {
      this.#suppressed++;
      this.#report = emit;
      return;
    }
    this.#tokens--;
    this.flush(emit);
    emit(message);
  }

  /** Reports how many lines were held back since the last report, if any. */
  flush(emit: ((message: string) => void) | undefined = this.#report): void {
    if (this.#suppressed === 0 || emit === undefined) return;
    const n = this.#suppressed;
    this.#suppressed = 0;
    emit(`${n} similar line${n === 1 ? "" : "s"} suppressed`);
  }
}
