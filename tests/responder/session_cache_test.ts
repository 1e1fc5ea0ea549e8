/** lib/responder/session_cache.ts: the responder's session store, LRU at a cap, with idle expiry. */

import assert from "node:assert/strict";
import { SessionCache } from "../../lib/responder/session_cache.ts";

Deno.test("SessionCache evicts the least recently used and expires idle entries", () => {
  let now = 0;
  const cache = new SessionCache<string>({ maxEntries: 3, idleMs: 100, now: () => now });
  cache.set("a", "A");
  cache.set("b", "B");
  cache.set("c", "C");
  assert.equal(cache.get("a"), "A"); // a is now the most recently used
  cache.set("d", "D"); // evicts b
  assert.deepEqual(["a", "b", "c", "d"].map((k) => cache.has(k)), [true, false, true, true]);
  now = 50;
  cache.get("c");
  now = 120; // a and d idle for 120, c for 70
  assert.equal(cache.sweep(), 2);
  assert.equal(cache.get("c"), "C");
  assert.equal(cache.size, 1);
  now = 500;
  assert.equal(cache.get("c"), undefined);
});

Deno.test("SessionCache keeps at most maxEntries however many keys arrive", () => {
  const cache = new SessionCache<number>({ maxEntries: 100, idleMs: 60_000 });
  for (let i = 0; i < 10_000; i++) cache.set(`n${i}`, i);
  assert.equal(cache.size, 100);
  assert.equal(cache.get("n9999"), 9999);
  assert.equal(cache.get("n0"), undefined);
});

Deno.test("SessionCache: has is not a use, set of a present key replaces without evicting", () => {
  const cache = new SessionCache<string>({ maxEntries: 2, idleMs: 60_000 });
  cache.set("alice", "a");
  cache.set("bob", "old key");
  assert.ok(cache.has("alice")); // not a use: alice stays the least recently used
  cache.set("carol", "c");
  assert.ok(!cache.has("alice"));
  assert.ok(cache.has("bob"));
  cache.set("bob", "new key"); // a new key exchange replaces the session
  assert.equal(cache.get("bob"), "new key");
  assert.equal(cache.get("carol"), "c");
  assert.equal(cache.size, 2);
});

Deno.test("SessionCache: an entry idle for exactly idleMs is gone, and a use restarts the clock", () => {
  let now = 0;
  const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 100, now: () => now });
  cache.set("a", "A");
  cache.set("b", "B");
  now = 99;
  assert.equal(cache.get("a"), "A");
  now = 100;
  assert.ok(!cache.has("b"));
  assert.ok(cache.has("a"));
  now = 198;
  assert.equal(cache.sweep(), 0);
  now = 199;
  assert.equal(cache.sweep(), 1);
  assert.equal(cache.sweep(), 0);
});

Deno.test("SessionCache: clear drops everything", () => {
  const cache = new SessionCache<string>({ maxEntries: 10, idleMs: 60_000 });
  cache.set("a", "A");
  cache.set("b", "B");
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get("a"), undefined);
});

Deno.test("SessionCache refuses bad limits", () => {
  for (const maxEntries of [0, -1, 1.5, NaN]) {
    assert.throws(() => new SessionCache({ maxEntries, idleMs: 1 }), RangeError);
  }
  for (const idleMs of [0, -1, NaN]) {
    assert.throws(() => new SessionCache({ maxEntries: 1, idleMs }), RangeError);
  }
});
