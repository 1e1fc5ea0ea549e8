/**
 * The responder's queue of pending key exchanges: bounded, first in first out by netid, and
 * coalescing: a repeated request for a netid that is still waiting replaces the waiting one in
 * place (the newest exchange wins, and re-sending neither jumps nor loses the queue position).
 * So a flood of repeats for one netid costs one slot and one key pair, not one per message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoalescingQueue } from "./kx_queue.ts";
 * const queue = new CoalescingQueue<string>(2);
 * assert.equal(queue.offer("alice", "key 1"), "queued");
 * assert.equal(queue.offer("bob", "key 2"), "queued");
 * assert.equal(queue.offer("alice", "key 3"), "replaced"); // one slot, newest value
 * assert.equal(queue.offer("carol", "key 4"), "full"); // dropped
 * assert.equal(queue.take()?.value, "key 3"); // alice kept her place at the front
 * assert.equal(queue.take()?.key, "bob");
 * assert.equal(queue.take(), undefined);
 * ```
 * @module
 */

/** What {@linkcode CoalescingQueue.offer} did with an item. */
export type OfferResult = "queued" | "replaced" | "full";

/** One waiting item. */
export interface QueuedItem<T> {
  /** The key it was offered under (a netid). */
  key: string;
  /** The newest value offered for `key`. */
  value: T;
  /** When `value` arrived, on the queue's clock. */
  since: number;
}

/**
 * Bounded FIFO keyed by string with newest-wins coalescing. When full, a new key is refused
 * (tail drop): work already waiting is kept, and memory stays at `capacity` items.
 */
export class CoalescingQueue<T> {
  readonly #items = new Map<string, QueuedItem<T>>();
  readonly #now: () => number;

  /**
   * `capacity` is the most distinct keys waiting at once (a positive integer, or RangeError);
   * `now` is the clock of {@linkcode QueuedItem.since}, in milliseconds.
   */
  constructor(readonly capacity: number, now: () => number = () => performance.now()) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`capacity must be a positive integer, not ${capacity}`);
    }
    this.#now = now;
  }

  /** Items waiting. */
  get size(): number {
    return this.#items.size;
  }

  /** True when `key` is waiting. */
  has(key: string): boolean {
    return this.#items.has(key);
  }

  /** Adds the item for `key`, or replaces the one waiting; see {@linkcode OfferResult}. */
  offer(key: string, value: T): OfferResult {
    const waiting = this.#items.get(key);
    if (waiting !== undefined) {
      // Updated in place: a Map keeps its insertion order, so the key keeps its position.
      waiting.value = value;
      waiting.since = this.#now();
      return "replaced";
    }
    if (this.#items.size >= this.capacity) return "full";
    this.#items.set(key, { key, value, since: this.#now() });
    return "queued";
  }

  /** Removes and returns the oldest item, or `undefined` when empty. */
  take(): QueuedItem<T> | undefined {
    for (const item of this.#items.values()) {
      this.#items.delete(item.key);
      return item;
    }
    return undefined;
  }

  /** Empties the queue. */
  clear(): void {
    this.#items.clear();
  }
}
