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

/**
 * `text` made safe for one log line: control and bidi characters escaped (a hostile netid
 * must not be able to forge log lines or recolour a terminal), and cut to `max` characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./log.ts";
 * assert.equal(printable("evil\nresponder: answered"), "evil\\nresponder: answered");
 * ```
 */
export function printable(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => c === "\n" ? "\\n" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * {@linkcode errorLine}, {@linkcode printable} and cut at 200 characters: an error whose text
 * may carry what a peer sent, fit for a log line.
 */
export function printableError(error: unknown): string {
  return printable(errorLine(error), 200);
}

/** A duration in milliseconds as a log line shows it, e.g. `7.3 ms`. */
export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

/** The levels a {@linkcode RateLimitedLog} writes at. */
export type LogLevel = "debug" | "info" | "warn";

/**
 * A {@linkcode Logger} whose lines each go through the {@linkcode LineBudget} of their kind
 * (one per level and kind), so that no flood of messages becomes a flood of lines, and one
 * noisy kind does not silence the others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateLimitedLog } from "./log.ts";
 * const lines: string[] = [];
 * const log = new RateLimitedLog(
 *   { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) },
 *   { burst: 1, perSecond: 0 },
 * );
 * log.line("warn", "token", "bad token from alice");
 * log.line("warn", "token", "bad token from bob"); // over the budget of this kind
 * log.line("info", "answer", "answered carol"); // another kind has its own
 * log.flush();
 * assert.deepEqual(lines, [
 *   "warning: bad token from alice",
 *   "answered carol",
 *   "warning: 1 similar line suppressed",
 * ]);
 * ```
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #burst: number;
  readonly #perSecond: number;
  readonly #now: (() => number) | undefined;
  readonly #budgets = new Map<string, LineBudget>();

  /**
   * `burst` lines of each kind at once, then `perSecond` of it; `now` is the clock of the
   * budgets, in milliseconds (default `performance.now`).
   */
  constructor(
    logger: Logger,
    options: { burst: number; perSecond: number; now?: () => number },
  ) {
    this.#logger = logger;
    this.#burst = options.burst;
    this.#perSecond = options.perSecond;
    this.#now = options.now;
  }

  /** True when its logger shows `debug` lines, so that a caller can skip making them. */
  get verbose(): boolean {
    return this.#logger.verbose === true;
  }

  /** Writes `message` at `level` if the budget of (`level`, `kind`) allows, else counts it. */
  line(level: LogLevel, kind: string, message: string): void {
    const key = `${level}:${kind}`;
    let budget = this.#budgets.get(key);
    if (budget === undefined) {
      budget = new LineBudget(this.#burst, this.#perSecond, this.#now);
      this.#budgets.set(key, budget);
    }
    budget.pass(message, (line) => this.#logger[level](line));
  }

  /** Reports, per kind, the lines held back since its last line (e.g. on shutdown). */
  flush(): void {
    for (const budget of this.#budgets.values()) budget.flush();
  }
}
