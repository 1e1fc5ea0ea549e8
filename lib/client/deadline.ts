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
  /** Rejects with the signal's reason once it aborts; never resolves. */
  readonly #ended: Promise<never>;

  /** Starts the clock: `ms` milliseconds from now, or sooner if `signal` aborts. */
  constructor(ms: number, signal?: AbortSignal) {
    this.#handle = setTimeout(
      () => this.#timer.abort(new DOMException("the session's deadline passed", "TimeoutError")),
      ms,
    );
    this.#signal = signal ? AbortSignal.any([this.#timer.signal, signal]) : this.#timer.signal;
    this.#ended = new Promise<never>((_, reject) => {
      // A signal that is already aborted never fires "abort".
      if (this.#signal.aborted) return reject(this.#signal.reason);
      this.#signal.addEventListener("abort", () => reject(this.#signal.reason), { once: true });
    });
    this.#ended.catch(() => {});
  }

  /**
   * `Promise.race(promises)`, unless the session ends first: when the time runs out, the error
   * `onTimeout` makes (given the timer's `TimeoutError`, to use as its cause); when the
   * caller's signal aborts, its reason. A promise already settled wins over a deadline that
   * passed meanwhile, as in `Promise.race`, the deadline coming last.
   */
  async race<T>(
    promises: readonly Promise<T>[],
    onTimeout: (reason: unknown) => Error,
  ): Promise<T> {
    try {
      return await Promise.race([...promises, this.#ended]);
    } catch (error) {
      // Whichever ended it first: the timer's reason is the signal's only if the timer did.
      if (error === this.#signal.reason && error === this.#timer.signal.reason) {
        throw onTimeout(error);
      }
      throw error;
    }
  }

  /** Stops the clock. Waits already begun are left as they are. */
  [Symbol.dispose](): void {
    clearTimeout(this.#handle);
  }
}
