/**
 * A bounded map for per-netid sessions: at most `maxEntries` live entries, least recently used
 * evicted first, and entries unused for `idleMs` expired. Memory stays bounded however many
 * netids a broker throws at the responder, and keys of clients that went away do not linger.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SessionCache } from "./session_cache.ts";
 * let now = 0;
 * const cache = new SessionCache<string>({ maxEntries: 2, idleMs: 60_000, now: () => now });
 * cache.set("alice", "a");
 * cache.set("bob", "b");
 * assert.equal(cache.get("alice"), "a"); // alice is now the most recently used
 * cache.set("carol", "c"); // so bob, the least recently used, goes
 * assert.equal(cache.has("bob"), false);
 * now = 60_000;
 * assert.equal(cache.get("alice"), undefined); // idle for too long
 * ```
 * @module
 */

/** Limits of a {@linkcode SessionCache}. */
export interface SessionCacheOptions {
  /** Most entries kept at once (>= 1). */
  maxEntries: number;
  /** An entry neither set nor read for this long is gone. */
  idleMs: number;
  /** Clock in milliseconds; default `performance.now`. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  lastUsed: number;
}

/**
 * LRU map with idle expiry. A `Map` keeps insertion order, so re-inserting on every use keeps
 * it ordered from least to most recently used: eviction and expiry both work from the front,
 * in amortised O(1) per operation, with no timer needed for correctness.
 */
export class SessionCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #maxEntries: number;
  readonly #idleMs: number;
  readonly #now: () => number;

  /** Throws RangeError unless `maxEntries` is a positive integer and `idleMs` is > 0. */
  constructor(options: SessionCacheOptions) {
    if (!(Number.isInteger(options.maxEntries) && options.maxEntries >= 1)) {
      throw new RangeError(`maxEntries must be a positive integer, not ${options.maxEntries}`);
    }
    if (!(options.idleMs > 0)) throw new RangeError(`idleMs must be > 0, not ${options.idleMs}`);
    this.#maxEntries = options.maxEntries;
    this.#idleMs = options.idleMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Entries held (expired ones that no call has swept yet included). */
  get size(): number {
    return this.#entries.size;
  }

  /** The value for `key`, marking it most recently used; `undefined` if absent or expired. */
  get(key: string): V | undefined {
    const now = this.#now();
    this.#sweep(now);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    entry.lastUsed = now;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** True when `key` has a live entry; does not count as a use. */
  has(key: string): boolean {
    this.#sweep(this.#now());
    return this.#entries.has(key);
  }

  /** Stores `value` as the most recently used entry, replacing any previous one for `key`. */
  set(key: string, value: V): void {
    const now = this.#now();
    this.#sweep(now);
    this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, lastUsed: now });
  }

  /** Drops every expired entry now and returns how many went. */
  sweep(): number {
    return this.#sweep(this.#now());
  }

  /** Drops everything (on shutdown, so that key material is not kept reachable). */
  clear(): void {
    this.#entries.clear();
  }

  #sweep(now: number): number {
    let dropped = 0;
    // Ordered by last use, so the first unexpired entry ends the scan.
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastUsed < this.#idleMs) break;
      this.#entries.delete(key);
      dropped++;
    }
    return dropped;
  }
}
