/** The responder's session store: LRU eviction at a cap, and idle expiry. */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SessionCache } from "../lib/session_cache.ts";

Deno.test("SessionCache evicts the least recently used and expires idle entries", () => {
  let now = 0;
  const cache = new SessionCache<string>({ maxEntries: 3, idleMs: 100, now: () => now });
  cache.set("a", "A");
  cache.set("b", "B");
  cache.set("c", "C");
  assertEquals(cache.get("a"), "A"); // a is now the most recently used
  cache.set("d", "D"); // evicts b
  assertEquals([cache.has("a"), cache.has("b"), cache.has("c"), cache.has("d")], [
    true,
    false,
    true,
    true,
  ]);
  assertEquals(cache.counts.evicted, 1);
  now = 50;
  cache.get("c");
  now = 120; // a and d idle for 120, c for 70
  assertEquals(cache.sweep(), 2);
  assertEquals(cache.get("c"), "C");
  assertEquals(cache.size, 1);
  now = 500;
  assertEquals(cache.get("c"), undefined);
  assertEquals(cache.counts.expired, 3);
});

Deno.test("SessionCache keeps at most maxEntries however many keys arrive", () => {
  const cache = new SessionCache<number>({ maxEntries: 100, idleMs: 60_000 });
  for (let i = 0; i < 10_000; i++) cache.set(`n${i}`, i);
  assertEquals(cache.size, 100);
  assertEquals(cache.get("n9999"), 9999);
  assertEquals(cache.get("n0"), undefined);
});
