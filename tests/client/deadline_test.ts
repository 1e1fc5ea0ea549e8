/** lib/client/deadline.ts: what ends a race, and with which error. */

import assert from "node:assert/strict";
import { Deadline } from "../../lib/client/deadline.ts";

const never = new Promise<never>(() => {});
const AN_HOUR = 3_600_000;

class Late extends Error {}

function late(reason: unknown): Error {
  return new Late("too late", { cause: reason });
}

Deno.test("before the deadline: the race is Promise.race of the promises", async () => {
  using deadline = new Deadline(AN_HOUR);
  assert.equal(await deadline.race([never, Promise.resolve(1)], late), 1);
  const failure = new Error("lost");
  await assert.rejects(deadline.race([never, Promise.reject(failure)], late), (e) => e === failure);
});

Deno.test("the time runs out: the error onTimeout makes, with the timer's TimeoutError", async () => {
  using deadline = new Deadline(1);
  const error = await deadline.race([never], late).catch((e) => e);
  assert.ok(error instanceof Late);
  assert.ok(error.cause instanceof DOMException);
  assert.equal(error.cause.name, "TimeoutError");
  // Every later race ends at once, even against a promise already settled: a session whose
  // next delivery is always there (a flood) must still meet its deadline.
  await assert.rejects(deadline.race([never], late), Late);
  await assert.rejects(deadline.race([Promise.resolve("settled")], late), Late);
  assert.equal(deadline.passed, true);
});

Deno.test("the time is up by the clock, even while the timer has not fired", async () => {
  using deadline = new Deadline(5);
  assert.equal(deadline.passed, false);
  // Busy for longer than the deadline, without once giving the event loop a turn: the timer
  // cannot fire, as under a flood of deliveries.
  const start = performance.now();
  while (performance.now() - start < 10) { /* busy */ }
  assert.equal(deadline.passed, true);
  const error = await deadline.race([Promise.resolve("already here")], late).catch((e) => e);
  assert.ok(error instanceof Late);
  assert.equal((error.cause as DOMException).name, "TimeoutError");
});

Deno.test("a race keeps nothing of itself once it is over", async () => {
  // Each race once per delivery, as a flooded session does, each won by a value of 16 KiB. A
  // race that left a listener or a reaction on something the deadline keeps would keep its
  // value too: 20,000 of them are 320 MiB.
  const caller = new AbortController();
  using deadline = new Deadline(AN_HOUR, caller.signal);
  const before = Deno.memoryUsage();
  for (let i = 0; i < 20_000; i++) {
    await deadline.race([Promise.resolve(new Uint8Array(16 * 1024))], late);
  }
  const grown = Deno.memoryUsage().external - before.external;
  assert.ok(grown < 64 * 1024 * 1024, `${(grown / 1048576).toFixed(0)} MiB still held`);
});

Deno.test("the caller's signal comes last: a promise already settled wins over it", async () => {
  const caller = new AbortController();
  using deadline = new Deadline(AN_HOUR, caller.signal);
  caller.abort(new Error("cancelled"));
  assert.equal(await deadline.race([Promise.resolve("arrived")], late), "arrived");
  await assert.rejects(deadline.race([never], late), /cancelled/);
});

Deno.test("the caller's signal ends the race with its reason; onTimeout is not asked", async () => {
  const caller = new AbortController();
  using deadline = new Deadline(AN_HOUR, caller.signal);
  const reason = new Error("cancelled by the caller");
  const raced = deadline.race([never], () => assert.fail("not a timeout"));
  caller.abort(reason);
  await assert.rejects(raced, (e) => e === reason);
  await assert.rejects(
    deadline.race([never], () => assert.fail("not a timeout")),
    (e) => e === reason,
  );
});

Deno.test("a signal aborted before the session starts ends it at once", async () => {
  const reason = new Error("aborted already");
  using deadline = new Deadline(AN_HOUR, AbortSignal.abort(reason));
  await assert.rejects(deadline.race([never], late), (e) => e === reason);
});

Deno.test("dispose stops the clock: a deadline disposed of never passes", async () => {
  // Its timer cleared, nothing is left to keep a library caller's process alive until the
  // deadline (tests/e2e/client_test.ts runs such a caller).
  const deadline = new Deadline(1);
  deadline[Symbol.dispose]();
  // A timer set later for longer fires after the 1 ms one would have.
  const later = new Promise((resolve) => setTimeout(() => resolve("later"), 5));
  assert.equal(await deadline.race([later], late), "later");
});
