/** lib/responder/in_flight.ts: the responder's global and per-netid caps on requests in flight. */

import assert from "node:assert/strict";
import { InFlightBudget, type InFlightLimits, type Ticket } from "../../lib/responder/in_flight.ts";
import { seeded } from "../../support/seeded.ts";

/** Admits, and fails the test on a refusal. */
function admitted(budget: InFlightBudget, netid: string, bytes: number): Ticket {
  const ticket = budget.admit(netid, bytes);
  if (typeof ticket === "string") assert.fail(`${netid} (${bytes} bytes) refused: ${ticket}`);
  assert.deepEqual(ticket, { netid, bytes });
  return ticket;
}

const roomy = {
  requests: 1000,
  bytes: 1_000_000,
  requestsPerNetid: 1000,
  bytesPerNetid: 1_000_000,
};

Deno.test("the global request cap holds across netids", () => {
  const budget = new InFlightBudget({ ...roomy, requests: 3 });
  for (const netid of ["a", "b", "c"]) admitted(budget, netid, 1);
  assert.equal(budget.admit("d", 1), "full");
  assert.equal(budget.admit("a", 0), "full");
  assert.equal(budget.requests, 3);
  assert.equal(budget.bytes, 3);
});

Deno.test("the global byte cap holds, and a request may fill it exactly", () => {
  const budget = new InFlightBudget({ ...roomy, bytes: 100 });
  admitted(budget, "a", 60);
  assert.equal(budget.admit("b", 41), "full");
  admitted(budget, "b", 40);
  assert.equal(budget.admit("c", 1), "full");
  admitted(budget, "c", 0);
  assert.equal(budget.bytes, 100);
});

Deno.test("a request larger than the whole budget is never admitted", () => {
  const budget = new InFlightBudget({ ...roomy, bytes: 100, bytesPerNetid: 10 });
  assert.equal(budget.admit("a", 101), "full");
  assert.equal(budget.requests, 0);
});

Deno.test("one netid gets its share of requests; the others still get in", () => {
  const budget = new InFlightBudget({ ...roomy, requests: 4, requestsPerNetid: 2 });
  admitted(budget, "alice", 1);
  admitted(budget, "alice", 1);
  assert.equal(budget.admit("alice", 1), "share");
  admitted(budget, "bob", 1);
  admitted(budget, "carol", 1);
  assert.equal(budget.admit("bob", 1), "full"); // within bob's share, but the budget is full
  assert.equal(budget.admit("alice", 1), "share"); // over her share: that is the reason given
});

Deno.test("one netid gets its share of bytes; the others still get in", () => {
  const budget = new InFlightBudget({ ...roomy, bytes: 100, bytesPerNetid: 40 });
  admitted(budget, "alice", 30);
  assert.equal(budget.admit("alice", 11), "share");
  admitted(budget, "alice", 10); // exactly her share
  assert.equal(budget.admit("alice", 1), "share");
  admitted(budget, "bob", 40);
  assert.equal(budget.bytes, 80);
});

Deno.test("a request larger than a share is admitted when its netid has nothing in flight", () => {
  const budget = new InFlightBudget({ ...roomy, bytes: 100, bytesPerNetid: 10 });
  const big = admitted(budget, "alice", 50);
  assert.equal(budget.admit("alice", 1), "share"); // but nothing more beside it
  admitted(budget, "bob", 50); // and another netid may do the same
  assert.equal(budget.admit("carol", 1), "full");
  budget.release(big);
  admitted(budget, "alice", 5);
});

Deno.test("resize moves a ticket's bytes in the totals and in its netid's share", () => {
  const budget = new InFlightBudget({ ...roomy, bytes: 100, bytesPerNetid: 50 });
  const ticket = admitted(budget, "alice", 30);
  budget.resize(ticket, 45);
  assert.equal(ticket.bytes, 45);
  assert.equal(budget.bytes, 45);
  assert.equal(budget.admit("alice", 6), "share"); // 45 + 6 is over her 50
  admitted(budget, "alice", 5);
  budget.resize(ticket, 10); // the answer came out smaller than reserved
  assert.equal(budget.bytes, 15);
  admitted(budget, "alice", 35);
  assert.equal(budget.requests, 3);
  // Growing past a cap is allowed: the bytes exist by then, and they are counted.
  budget.resize(ticket, 200);
  assert.equal(budget.bytes, 240);
  assert.equal(budget.admit("bob", 0), "full");
});

Deno.test("release is idempotent, and so is resize after it", () => {
  const budget = new InFlightBudget(roomy);
  const a = admitted(budget, "alice", 10);
  const b = admitted(budget, "alice", 20);
  budget.release(a);
  budget.release(a);
  assert.equal(budget.requests, 1);
  assert.equal(budget.bytes, 20);
  budget.resize(a, 500);
  assert.equal(budget.bytes, 20);
  budget.release(b);
  // alice's entry is gone and made again: an old ticket must not touch the new one.
  const c = admitted(budget, "alice", 7);
  budget.release(a);
  budget.release(b);
  budget.resize(b, 99);
  assert.equal(budget.requests, 1);
  assert.equal(budget.bytes, 7);
  budget.release(c);
  assert.equal(budget.requests, 0);
  assert.equal(budget.bytes, 0);
});

Deno.test("a ticket this budget did not admit changes nothing, even a look-alike", () => {
  const budget = new InFlightBudget(roomy);
  const other = new InFlightBudget(roomy);
  admitted(budget, "alice", 10);
  const foreign = admitted(other, "alice", 10);
  budget.release(foreign);
  budget.release({ netid: "alice", bytes: 10 });
  budget.resize({ netid: "alice", bytes: 10 }, 500);
  assert.equal(budget.requests, 1);
  assert.equal(budget.bytes, 10);
  assert.equal(other.requests, 1);
});

Deno.test("over a seeded run of admits, resizes and releases, the counts stay exact", () => {
  const limits: InFlightLimits = {
    requests: 12,
    bytes: 400,
    requestsPerNetid: 4,
    bytesPerNetid: 100,
  };
  const budget = new InFlightBudget(limits);
  const random = seeded(2024);
  const live: Ticket[] = [];
  const stats = { admitted: 0, full: 0, share: 0 };
  for (let step = 0; step < 5000; step++) {
    const op = random(10);
    if (op < 5) {
      const netid = `n${random(5)}`;
      const bytes = random(150);
      const own = live.filter((t) => t.netid === netid);
      const ownBytes = own.reduce((sum, t) => sum + t.bytes, 0);
      const result = budget.admit(netid, bytes);
      if (typeof result === "string") {
        stats[result]++;
        const overShare = own.length >= limits.requestsPerNetid ||
          (own.length > 0 && ownBytes + bytes > limits.bytesPerNetid);
        assert.equal(result, overShare ? "share" : "full");
        if (result === "full") {
          assert.ok(live.length >= limits.requests || budget.bytes + bytes > limits.bytes);
        }
      } else {
        stats.admitted++;
        assert.ok(own.length < limits.requestsPerNetid);
        assert.ok(own.length === 0 || ownBytes + bytes <= limits.bytesPerNetid);
        live.push(result);
      }
    } else if (op < 7 && live.length > 0) {
      budget.resize(live[random(live.length)], random(150));
    } else if (live.length > 0) {
      const [ticket] = live.splice(random(live.length), 1);
      budget.release(ticket);
      if (random(4) === 0) budget.release(ticket); // a stray second release
    }
    assert.equal(budget.requests, live.length);
    assert.equal(budget.bytes, live.reduce((sum, t) => sum + t.bytes, 0));
  }
  for (const n of Object.values(stats)) {
    assert.ok(n > 100, `too few of each: ${JSON.stringify(stats)}`);
  }
  for (const ticket of live.splice(0)) budget.release(ticket);
  assert.equal(budget.requests, 0);
  assert.equal(budget.bytes, 0);
  // Nothing is left over per netid either: each may take its whole share again.
  for (let i = 0; i < 5; i++) {
    const share = [1, 2, 3, 4].map(() => admitted(budget, `n${i}`, 25));
    assert.equal(budget.admit(`n${i}`, 0), "share");
    for (const ticket of share) budget.release(ticket);
  }
});
