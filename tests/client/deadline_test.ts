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
  // Every later race ends at once, but a promise already settled still wins, as it would in
  // Promise.race: the deadline comes last.
  await assert.rejects(deadline.race([never], late), Late);
  assert.equal(await deadline.race([Promise.resolve("settled")], late), "settled");
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
