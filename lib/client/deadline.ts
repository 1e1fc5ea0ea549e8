/**
 * The deadline of one client session: a time limit from the start, and the caller's signal,
 * either of which ends every wait of the session.
 *
 * @module
 */

/**
 * A time limit and an optional caller's signal. {@linkcode Deadline.race} races promises
 * against both; dispose of it when the session ends, so that its timer does not outlive it.
 *
 * The time is checked on the clock at the start of every race, not only by the timer: under a
 * flood of deliveries the event loop may reach the timer late, and a wait whose answer is
 * already there would otherwise win every race, so that the deadline never came.
 *
 * Not `AbortSignal.timeout`: Deno keeps the process alive for that signal's timer while the
 * signal has an "abort" listener, so a library caller that does not exit would linger until
 * the deadline. A plain timer, cleared on dispose, does not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Deadline } from "./deadline.ts";
 *
 * using deadline = new Deadline(10_000);
 * assert.equal(await deadline.race([Promise.resolve(42)], () => new Error("too late")), 42);
 * ```
 */
export class Deadline implements Disposable {
  readonly #timer = new AbortController();
  readonly #handle: ReturnType<typeof setTimeout>;
  readonly #signal: AbortSignal;
  /** When the time is up, on `performance.now()`'s clock; infinite once disposed of. */
  #end: number;

  /** Starts the clock: `ms` milliseconds from now, or sooner if `signal` aborts. */
  constructor(ms: number, signal?: AbortSignal) {
    this.#end = performance.now() + ms;
    this.#handle = setTimeout(() => this.#timeIsUp(), ms);
    this.#signal = signal ? AbortSignal.any([this.#timer.signal, signal]) : this.#timer.signal;
  }

  /** True once the time is up (by the clock, whether or not the timer has fired). */
  get passed(): boolean {
    return this.#timer.signal.aborted || performance.now() >= this.#end;
  }

  /**
   * `Promise.race(promises)`, unless the session ends first: when the time runs out, the error
   * `onTimeout` makes (given the timer's `TimeoutError`, to use as its cause); when the
   * caller's signal aborts, its reason. Once the time is up every race ends at once, even
   * against a promise already settled. The caller's signal is raced as a promise that comes
   * last: a promise already settled wins over it.
   *
   * Each race listens to the signal only while it runs, so a session that races many times
   * (once per delivery, under a flood) keeps nothing of the races done.
   */
  async race<T>(
    promises: readonly Promise<T>[],
    onTimeout: (reason: unknown) => Error,
  ): Promise<T> {
    if (this.passed) {
      // Nobody waits for them now; a rejection of theirs must not surface as an unhandled one.
      for (const promise of promises) promise.catch(() => {});
      throw onTimeout(this.#timeIsUp());
    }
    const { promise: ended, reject } = Promise.withResolvers<never>();
    const onAbort = () => reject(this.#signal.reason);
    if (this.#signal.aborted) onAbort();
    else this.#signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([...promises, ended]);
    } catch (error) {
      // Whichever ended it first: the timer's reason is the signal's only if the timer did.
      if (error === this.#signal.reason && error === this.#timer.signal.reason) {
        throw onTimeout(error);
      }
      throw error;
    } finally {
      this.#signal.removeEventListener("abort", onAbort);
    }
  }

  /** Stops the clock. Waits already begun are left as they are. */
  [Symbol.dispose](): void {
    clearTimeout(this.#handle);
    this.#end = Infinity;
  }

  /** Aborts the timer's signal (once) and returns its reason. */
  #timeIsUp(): unknown {
    if (!this.#timer.signal.aborted) {
      this.#timer.abort(new DOMException("the session's deadline passed", "TimeoutError"));
    }
    return this.#timer.signal.reason;
  }
}
