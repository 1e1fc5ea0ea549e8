/**
 * The responder's queue of pending key exchanges: bounded, first in first out by netid, and
 * coalescing: a repeated request for a netid that is still waiting replaces the waiting one in
 * place (the newest exchange wins, and re-sending does not jump or lose the queue position).
 * So a flood of repeats for one netid costs one slot and one key pair, not one per message.
 *
 * @example
 * ```ts
 * import { CoalescingQueue } from "./kx_queue.ts";
 * const queue = new CoalescingQueue<string>(2);
 * queue.offer("alice", "key 1"); // "queued"
 * queue.offer("alice", "key 2"); // "replaced": one slot, newest value
 * queue.offer("bob", "key 3"); // "queued"
 * queue.offer("carol", "key 4"); // "full": dropped
 * queue.take(); // { key: "alice", value: "key 2", since: ... }
 * ```
 * @module
 */

/**
 * What {@linkcode CoalescingQueue.offer} did with an item.
 *
 * @example
 * ```ts
 * import { CoalescingQueue, type OfferResult } from "./kx_queue.ts";
 * const result: OfferResult = new CoalescingQueue<string>(1).offer("alice", "pem");
 * ```
 */
export type OfferResult = "queued" | "replaced" | "full";

/**
 * One waiting item; `since` is when its current (newest) value arrived.
 *
 * @example
 * ```ts
 * import { CoalescingQueue } from "./kx_queue.ts";
 * const queue = new CoalescingQueue<string>(8);
 * queue.offer("alice", "pem");
 * const item = queue.take(); // { key: "alice", value: "pem", since: <ms> }
 * ```
 */
export interface QueuedItem<T> {
  /** The key it was offered under (a netid). */
  key: string;
  /** The newest value offered for `key`. */
  value: T;
  /** When `value` arrived, on the queue's clock (default `performance.now`). */
  since: number;
}

/**
 * Bounded FIFO keyed by string with newest-wins coalescing. When full, a new key is refused
 * (tail drop): work already waiting is kept, and memory stays at `capacity` items.
 *
 * @example
 * ```ts
 * import { CoalescingQueue } from "./kx_queue.ts";
 * const queue = new CoalescingQueue<number>(100);
 * queue.offer("n1", 1);
 * queue.has("n1"); // true
 * queue.take()?.value; // 1
 * ```
 */
export class CoalescingQueue<T> {
  readonly #items = new Map<string, QueuedItem<T>>();
  readonly #now: () => number;

  /**
   * `capacity`: most distinct keys waiting at once.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * let t = 0;
   * const queue = new CoalescingQueue<string>(1024, () => t); // a test clock for `since`
   * ```
   */
  constructor(readonly capacity: number, now: () => number = () => performance.now()) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`capacity must be a positive integer, not ${capacity}`);
    }
    this.#now = now;
  }

  /**
   * Items waiting.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * const queue = new CoalescingQueue<string>(8);
   * queue.offer("alice", "pem 1");
   * queue.offer("alice", "pem 2");
   * console.log(queue.size); // 1
   * ```
   */
  get size(): number {
    return this.#items.size;
  }

  /**
   * True when `key` is waiting.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * const queue = new CoalescingQueue<string>(8);
   * queue.offer("alice", "pem");
   * queue.has("alice"); // true
   * queue.take();
   * queue.has("alice"); // false
   * ```
   */
  has(key: string): boolean {
    return this.#items.has(key);
  }

  /**
   * Adds or replaces the item for `key`; see {@linkcode OfferResult}.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * const queue = new CoalescingQueue<string>(1);
   * queue.offer("alice", "pem 1"); // "queued"
   * queue.offer("alice", "pem 2"); // "replaced"
   * queue.offer("bob", "pem 3"); // "full"
   * ```
   */
  offer(key: string, value: T): OfferResult {
    const waiting = this.#items.get(key);
    if (waiting !== undefined) {
      // Map keeps the original position: no queue jumping either way.
      waiting.value = value;
      waiting.since = this.#now();
      return "replaced";
    }
    if (this.#items.size >= this.capacity) return "full";
    this.#items.set(key, { key, value, since: this.#now() });
    return "queued";
  }

  /**
   * Removes and returns the oldest item, or `undefined` when empty.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * const queue = new CoalescingQueue<string>(8);
   * queue.offer("alice", "pem 1");
   * queue.offer("bob", "pem 2");
   * queue.offer("alice", "pem 3"); // keeps alice's place at the front
   * queue.take()?.value; // "pem 3"
   * queue.take()?.key; // "bob"
   * queue.take(); // undefined
   * ```
   */
  take(): QueuedItem<T> | undefined {
    for (const item of this.#items.values()) {
      this.#items.delete(item.key);
      return item;
    }
    return undefined;
  }

  /**
   * Empties the queue.
   *
   * @example
   * ```ts
   * import { CoalescingQueue } from "./kx_queue.ts";
   * const queue = new CoalescingQueue<string>(8);
   * queue.offer("alice", "pem");
   * queue.clear();
   * console.log(queue.size); // 0
   * ```
   */
  clear(): void {
    this.#items.clear();
  }
}
