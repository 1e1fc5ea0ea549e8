/**
 * A cancellable one-shot timer that does not touch the global `setTimeout`.
 *
 * Why it exists: in Deno 2.9 the global `setTimeout` is Node's. Its first call in a process
 * loads `node:timers` and what that pulls in (`async_hooks`, `internal/errors`, `util`...):
 * 10–17 ms measured on the bench VM, on the critical path of a CLI that takes ~150 ms from
 * spawn to exit. `AbortSignal.timeout` runs on Deno's own web timers: its first call costs
 * about 0.5 ms. {@linkcode Timer} is a one-shot timer built on it, with a `cancel()`, which a
 * bare `AbortSignal.timeout` does not have.
 *
 * Liveness, measured on Deno 2.9.6 (and pinned by tests/timer_test.ts): Deno creates the
 * timer of `AbortSignal.timeout` unref'd, refs it while the signal has an "abort" listener and
 * unrefs it again when the last listener is removed. So a pending `Timer` keeps the process
 * alive, as `setTimeout` does, and a cancelled one does not. A bare `AbortSignal.timeout`
 * with no listener would be unref'd: valid only while other I/O (a socket read) keeps the
 * event loop alive. Tests' sanitizers do not report a pending or a cancelled `Timer`.
 *
 * Cost of `cancel()`: the underlying native timer cannot be cleared. It stays queued,
 * unref'd and inert, until its original deadline, holding a few small objects. Fine for
 * deadlines and connect timeouts; do not create and cancel long timers at a high rate (per
 * packet, say): a periodic check is the pattern for that (see the keepalive in lib/mqtt.ts).
 *
 * @example
 * ```ts
 * import { Timer } from "./timer.ts";
 * const timer = new Timer(5000, () => console.error("too slow"));
 * // ... the awaited thing happened in time:
 * timer.cancel();
 * ```
 * @module
 */

/**
 * Longest delay one `AbortSignal.timeout` can take: larger ones fire at once (as with
 * `setTimeout`), so {@linkcode Timer} chains several for longer delays.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_STEP_MS, Timer } from "./timer.ts";
 * // Longer than one AbortSignal.timeout can wait (~24.9 days): the Timer takes two steps.
 * const timer = new Timer(MAX_TIMER_STEP_MS + 1, () => {});
 * timer.cancel();
 * ```
 */
export const MAX_TIMER_STEP_MS = 2 ** 31 - 1;

/**
 * Calls `callback` once, `ms` milliseconds from now, unless {@linkcode Timer.cancel} is called
 * first. While pending it keeps the process alive; once fired or cancelled it does not.
 *
 * @example
 * ```ts
 * import { Timer } from "./timer.ts";
 * const fired = Promise.withResolvers<void>();
 * const timer = new Timer(10, fired.resolve);
 * await fired.promise;
 * console.log(timer.pending); // false
 * ```
 */
export class Timer {
  #signal: AbortSignal | undefined;
  #remainingMs: number;
  #callback: () => void;
  readonly #onAbort = () => this.#step();

  /**
   * `ms` below 0 (or -0) counts as 0, as with `setTimeout`; NaN or an infinite delay is a
   * RangeError. Fractions are rounded up, so the callback never runs early.
   */
  constructor(ms: number, callback: () => void) {
    if (typeof ms !== "number" || !Number.isFinite(ms)) {
      throw new RangeError(`invalid timer delay: ${ms}`);
    }
    if (typeof callback !== "function") throw new TypeError("timer callback is not a function");
    this.#remainingMs = Math.max(0, Math.ceil(ms));
    this.#callback = callback;
    this.#arm();
  }

  /**
   * True until the callback has been called or the timer cancelled.
   *
   * @example
   * ```ts
   * import { Timer } from "./timer.ts";
   * const timer = new Timer(1000, () => {});
   * console.log(timer.pending); // true
   * timer.cancel();
   * console.log(timer.pending); // false
   * ```
   */
  get pending(): boolean {
    return this.#signal !== undefined;
  }

  /**
   * Stop the timer; the callback will not run. Idempotent, and a no-op once fired.
   *
   * @example
   * ```ts
   * import { Timer } from "./timer.ts";
   * const deadline = new Timer(10_000, () => console.error("deadline passed"));
   * try {
   *   await Promise.resolve(); // the awaited work
   * } finally {
   *   deadline.cancel(); // also on failure, so the process can exit
   * }
   * ```
   */
  cancel(): void {
    // Removing the last listener unrefs the native timer: it no longer holds the process.
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
  }

  #arm(): void {
    const step = Math.min(this.#remainingMs, MAX_TIMER_STEP_MS);
    this.#remainingMs -= step;
    // The signal is kept here, so it lives as long as this Timer (and not only through the
    // runtime's timer table).
    this.#signal = AbortSignal.timeout(step);
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  #step(): void {
    if (this.#signal === undefined) return; // cancelled
    if (this.#remainingMs > 0) return this.#arm();
    this.#signal = undefined;
    this.#callback();
  }
}
