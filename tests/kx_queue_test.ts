/** The responder's key-exchange queue: bounded, coalescing repeats for one netid. */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { CoalescingQueue } from "../lib/kx_queue.ts";

Deno.test("CoalescingQueue coalesces repeats in place, newest value wins, tail-drops when full", () => {
  let now = 0;
  const queue = new CoalescingQueue<string>(2, () => now);
  assertEquals(queue.offer("alice", "a1"), "queued");
  now = 5;
  assertEquals(queue.offer("bob", "b1"), "queued");
  now = 9;
  assertEquals(queue.offer("alice", "a2"), "replaced");
  assertEquals(queue.offer("carol", "c1"), "full");
  assertEquals(queue.size, 2);
  assertEquals(queue.take(), { key: "alice", value: "a2", since: 9 }); // kept its place
  assertEquals(queue.take()?.key, "bob");
  assertEquals(queue.take(), undefined);
});
