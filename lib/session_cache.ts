/**
 * A bounded map for per-netid sessions: at most `maxEntries` live entries, least recently used
 * evicted first, and entries unused for `idleMs` expired. Memory stays bounded however many
 * netids a broker throws at the responder, and keys of clients that went away do not linger.
 *
 * @example
 * ```ts
 * import { SessionCache } from "./session_cache.ts";
 * const cache = new SessionCache<string>({ maxEntries: 2, idleMs: 60_000 });
 * cache.set("alice", "a");
 * cache.set("bob", "b");
 * cache.get("alice"); // "a", and alice is now the most recently used
 * cache.set("carol", "c"); // evicts bob, the least recently used
 * cache.has("bob"); // false
 * ```
 * @module
 */

/**
 * Limits of a {@linkcode SessionCache}; `now` is injectable so tests need not wait.
 *
 * @example
 * ```ts
 * import type { SessionCacheOptions } from "./session_cache.ts";
 * const options: SessionCacheOptions = { maxEntries: 10_000, idleMs: 10 * 60_000 };
 * ```
 */
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
 * LRU map with idle expiry. The JS `Map` keeps insertion order, so re-inserting on every use
 * keeps it ordered from least to most recently used: eviction and expiry both work from the
 * front, in amortised O(1) per operation, with no timer needed for correctness.
 *
 * @example
 * ```ts
 * import { SessionCache } from "./session_cache.ts";
 * let t = 0;
 * const cache = new SessionCache<number>({ maxEntries: 10, idleMs: 100, now: () => t });
 * cache.set("x", 1);
 * t = 101;
 * cache.get("x"); // undefined: idle for too long
 * ```
 */
export class SessionCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #maxEntries: number;
  readonly #idleMs: number;
  readonly #now: () => number;
  #evicted = 0;
  #expired = 0;

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

  /**
   * Live entries (expired ones that no call has swept yet may still be counted).
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
   * cache.set("alice", "a");
   * console.log(cache.size); // 1
   * ```
   */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * How many entries were pushed out by the size cap, and how many expired, so far.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 1, idleMs: 60_000 });
   * cache.set("alice", "a");
   * cache.set("bob", "b"); // evicts alice
   * console.log(cache.counts); // { evicted: 1, expired: 0 }
   * ```
   */
  get counts(): { evicted: number; expired: number } {
    return { evicted: this.#evicted, expired: this.#expired };
  }

  /**
   * The value for `key`, marking it most recently used; `undefined` if absent or expired.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
   * cache.set("alice", "a");
   * cache.get("alice"); // "a"
   * cache.get("bob"); // undefined
   * ```
   */
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

  /**
   * True when `key` has a live entry; does not count as a use.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 2, idleMs: 60_000 });
   * cache.set("alice", "a");
   * cache.set("bob", "b");
   * cache.has("alice"); // true, and alice is still the least recently used
   * cache.set("carol", "c"); // so it is alice that goes
   * cache.has("alice"); // false
   * ```
   */
  has(key: string): boolean {
    this.#sweep(this.#now());
    return this.#entries.has(key);
  }

  /**
   * Stores `value` as the most recently used entry, replacing any previous one for `key`.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
   * cache.set("alice", "old key");
   * cache.set("alice", "new key"); // a new key exchange replaces the session
   * cache.get("alice"); // "new key"
   * ```
   */
  set(key: string, value: V): void {
    const now = this.#now();
    this.#sweep(now);
    this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
      this.#evicted++;
    }
    this.#entries.set(key, { value, lastUsed: now });
  }

  /**
   * Removes `key`; true if it was there.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
   * cache.set("alice", "a");
   * cache.delete("alice"); // true
   * cache.delete("alice"); // false
   * ```
   */
  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /**
   * Drops every expired entry now and returns how many went.
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * let t = 0;
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 100, now: () => t });
   * cache.set("alice", "a");
   * t = 100;
   * cache.sweep(); // 1
   * ```
   */
  sweep(): number {
    return this.#sweep(this.#now());
  }

  /**
   * Drops everything (on shutdown, so key material is not kept reachable).
   *
   * @example
   * ```ts
   * import { SessionCache } from "./session_cache.ts";
   * const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
   * cache.set("alice", "a");
   * cache.clear();
   * console.log(cache.size); // 0
   * ```
   */
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
    this.#expired += dropped;
    return dropped;
  }
}
