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

Deno.test("a race ended by the time leaves no promise of it unhandled", async () => {
  // A connect that fails after the deadline: nobody waits for it any more, and its rejection
  // must not surface as an unhandled one (Deno's test runner fails the test if it does).
  using deadline = new Deadline(0);
  while (!deadline.passed) await new Promise((resolve) => setTimeout(resolve, 1));
  const { promise, reject } = Promise.withResolvers<never>();
  await assert.rejects(deadline.race([promise], late), Late);
  reject(new Error("the connection failed, too late to matter"));
  await new Promise((resolve) => setTimeout(resolve, 0));
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
