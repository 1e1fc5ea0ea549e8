/**
 * lib/responder/connection.ts, its pure parts: what follows a connection attempt (fail, fall
 * back to MQTT 3.1.1, retry), and the reconnect backoff. The connection itself is tested on
 * real brokers (tests/e2e/responder_test.ts, demo and broker options tests on aedes).
 */

import assert from "node:assert/strict";
import { BrokerError, type BrokerErrorKind } from "../../lib/mqtt.ts";
import { afterAttempt, type Attempt, backoffDelay } from "../../lib/responder/connection.ts";

function problem(kind: BrokerErrorKind, permanent = false): BrokerError {
  return new BrokerError(kind, `a ${kind} problem`, permanent);
}

function attempt(overrides: Partial<Attempt>): Attempt {
  return { version: 5, connected: false, refusal: undefined, problem: undefined, ...overrides };
}

Deno.test("MQTT 5 refused as an unsupported version (CONNACK 1 or reason 132): fall back", () => {
  for (const refusal of [1, 132]) {
    // The refusal is a permanent BrokerError too: falling back comes first.
    const refused = problem("refused", true);
    assert.deepEqual(afterAttempt(attempt({ refusal, problem: refused })), { next: "fall back" });
    assert.deepEqual(afterAttempt(attempt({ refusal })), { next: "fall back" });
  }
});

Deno.test("in MQTT 3.1.1, CONNACK 1 is the end: there is nothing older to fall back to", () => {
  const refused = problem("refused", true);
  assert.deepEqual(
    afterAttempt(attempt({ version: 4, refusal: 1, problem: refused })),
    { next: "fail", error: refused },
  );
});

Deno.test("a version 5 CONNECT that no CONNACK answered, on a broker reached: fall back", () => {
  for (const kind of ["lost", "not-mqtt", "refused"] as const) {
    assert.deepEqual(afterAttempt(attempt({ problem: problem(kind) })), { next: "fall back" });
  }
  // Closed with no error at all: the plain hang-up of a 3.1.1-only broker.
  assert.deepEqual(afterAttempt(attempt({})), { next: "fall back" });
});

Deno.test("a broker not reached is retried in the same version", () => {
  const unreachable = problem("unreachable");
  for (const version of [4, 5] as const) {
    assert.deepEqual(
      afterAttempt(attempt({ version, problem: unreachable })),
      { next: "retry", problem: unreachable },
    );
  }
});

Deno.test("a connection lost after its CONNACK is retried in the same version", () => {
  const lost = problem("lost");
  assert.deepEqual(afterAttempt(attempt({ connected: true })), {
    next: "retry",
    problem: undefined,
  });
  assert.deepEqual(afterAttempt(attempt({ connected: true, problem: lost })), {
    next: "retry",
    problem: lost,
  });
  // In 3.1.1 a hang-up before the CONNACK is retried too: there is no older version.
  assert.deepEqual(afterAttempt(attempt({ version: 4, problem: lost })), {
    next: "retry",
    problem: lost,
  });
});

Deno.test("a permanent failure is the end, in either version, connected or not", () => {
  for (const kind of ["tls", "refused"] as const) {
    const fatal = problem(kind, true);
    for (const version of [4, 5] as const) {
      for (const connected of [false, true]) {
        assert.deepEqual(
          afterAttempt(attempt({ version, connected, problem: fatal })),
          { next: "fail", error: fatal },
        );
      }
    }
  }
});

Deno.test("a refusal that is not about the version does not fall back", () => {
  // CONNACK 135 (not authorized) in MQTT 5: permanent, whatever the version.
  const refused = problem("refused", true);
  assert.deepEqual(afterAttempt(attempt({ refusal: 135, problem: refused })), {
    next: "fail",
    error: refused,
  });
});

Deno.test("backoffDelay doubles from the minimum, is capped, and jitters in the upper half", () => {
  const limits = { reconnectMinMs: 500, reconnectMaxMs: 30_000 };
  const low = (attempt: number) => backoffDelay(attempt, limits, () => 0);
  const high = (attempt: number) => backoffDelay(attempt, limits, () => 1);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(high), [500, 1000, 2000, 4000, 8000, 16_000, 30_000]);
  assert.deepEqual([0, 1, 2, 3].map(low), [250, 500, 1000, 2000]);
  assert.equal(backoffDelay(3, limits, () => 0.5), 3000);
  // However many attempts, the cap holds and the delay stays a number.
  for (const attempt of [50, 1000, 2 ** 40]) {
    assert.equal(high(attempt), 30_000);
    assert.equal(low(attempt), 15_000);
  }
  // Jitter is a random point in the upper half of each ceiling: never below half, never above.
  for (let attempt = 0; attempt < 10; attempt++) {
    const ceiling = Math.min(30_000, 500 * 2 ** attempt);
    const delay = backoffDelay(attempt, limits);
    assert.ok(delay >= ceiling / 2 && delay <= ceiling, `${attempt}: ${delay}`);
  }
});
