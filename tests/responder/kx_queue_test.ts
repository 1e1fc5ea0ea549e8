/** lib/responder/kx_queue.ts: the responder's key-exchange queue, bounded and coalescing per netid. */

import assert from "node:assert/strict";
import { CoalescingQueue } from "../../lib/responder/kx_queue.ts";

Deno.test("CoalescingQueue coalesces repeats in place, newest value wins, tail-drops when full", () => {
  let now = 0;
  const queue = new CoalescingQueue<string>(2, () => now);
  assert.equal(queue.offer("alice", "a1"), "queued");
  now = 5;
  assert.equal(queue.offer("bob", "b1"), "queued");
  now = 9;
  assert.equal(queue.offer("alice", "a2"), "replaced");
  assert.equal(queue.offer("carol", "c1"), "full");
  assert.equal(queue.size, 2);
  assert.deepEqual(queue.take(), { key: "alice", value: "a2", since: 9 }); // kept its place
  assert.deepEqual(queue.take(), { key: "bob", value: "b1", since: 5 });
  assert.equal(queue.take(), undefined);
  assert.equal(queue.size, 0);
});

Deno.test("CoalescingQueue: a repeat is still coalesced when the queue is full", () => {
  const queue = new CoalescingQueue<number>(1);
  assert.equal(queue.offer("alice", 1), "queued");
  assert.equal(queue.offer("bob", 2), "full");
  assert.equal(queue.offer("alice", 3), "replaced");
  assert.equal(queue.take()?.value, 3);
  assert.equal(queue.offer("bob", 4), "queued"); // a slot is free again
});

Deno.test("CoalescingQueue: a netid taken and offered again goes to the back", () => {
  const queue = new CoalescingQueue<string>(3);
  for (const netid of ["a", "b", "c"]) queue.offer(netid, netid);
  assert.equal(queue.take()?.key, "a");
  assert.equal(queue.offer("a", "again"), "queued");
  assert.deepEqual([1, 2, 3].map(() => queue.take()?.key), ["b", "c", "a"]);
});

Deno.test("CoalescingQueue: has, size and clear", () => {
  const queue = new CoalescingQueue<string>(8);
  queue.offer("alice", "pem");
  queue.offer("bob", "pem");
  assert.ok(queue.has("alice") && queue.has("bob") && !queue.has("carol"));
  queue.take();
  assert.ok(!queue.has("alice"));
  assert.equal(queue.size, 1);
  queue.clear();
  assert.equal(queue.size, 0);
  assert.equal(queue.take(), undefined);
  assert.equal(queue.offer("alice", "pem"), "queued");
});

Deno.test("CoalescingQueue keeps at most capacity netids however many arrive", () => {
  const queue = new CoalescingQueue<number>(100);
  let full = 0;
  for (let i = 0; i < 10_000; i++) if (queue.offer(`n${i}`, i) === "full") full++;
  assert.equal(queue.size, 100);
  assert.equal(full, 9_900);
  assert.equal(queue.take()?.key, "n0"); // the first ones stay: tail drop
});

Deno.test("CoalescingQueue refuses a capacity that is not a positive integer", () => {
  for (const capacity of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => new CoalescingQueue(capacity), RangeError, String(capacity));
  }
});
