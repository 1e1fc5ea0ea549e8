/** lib/responder/limits.ts: the responder's defaults, and the check of every limit. */

import assert from "node:assert/strict";
import { checkLimits, DEFAULT_LIMITS, type ResponderLimits } from "../../lib/responder/limits.ts";

const NAMES = Object.keys(DEFAULT_LIMITS) as (keyof ResponderLimits)[];
// The limits that count something, and must be whole numbers.
const COUNTS = new Set<keyof ResponderLimits>([
  "maxSessions",
  "maxPendingKeyExchanges",
  "maxRequestsInFlight",
  "maxBytesInFlight",
  "maxRequestsInFlightPerNetid",
  "maxBytesInFlightPerNetid",
  "keepAliveSeconds",
  "logBurst",
]);

function check(overrides: Record<string, unknown>): string | undefined {
  return checkLimits({ ...DEFAULT_LIMITS, ...overrides });
}

Deno.test("the defaults pass their own check, and are frozen", () => {
  assert.equal(checkLimits(DEFAULT_LIMITS), undefined);
  assert.ok(Object.isFrozen(DEFAULT_LIMITS));
  assert.equal(NAMES.length, 15);
});

Deno.test("every limit refuses zero, negatives, NaN, infinity and what is not a number", () => {
  const bad: [unknown, string][] = [
    [0, "0"],
    [-1, "-1"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
    ["5", '"5"'],
    [undefined, "undefined"],
    [null, "null"],
    [5n, "5n"],
    [{}, "object"],
  ];
  for (const name of NAMES) {
    const kind = COUNTS.has(name) ? "a whole number above 0" : "a finite number above 0";
    for (const [value, shown] of bad) {
      assert.equal(check({ [name]: value }), `invalid limit ${name}: ${shown} (${kind})`);
    }
  }
});

Deno.test("a count must be whole; a measure may be a fraction", () => {
  for (const name of NAMES) {
    // With a reconnect minimum of 1 ms, so that a maximum of 1.5 ms is not below it.
    const problem = check({ reconnectMinMs: 1, [name]: 1.5 });
    const expected = COUNTS.has(name)
      ? `invalid limit ${name}: 1.5 (a whole number above 0)`
      : undefined;
    assert.equal(problem, expected, name);
  }
  assert.equal(check({ maxSessions: 1, logBurst: 1, keepAliveSeconds: 1 }), undefined);
});

Deno.test("limits that feed a timer or the MQTT keepalive stay within them", () => {
  const timer = 2 ** 31 - 1;
  assert.equal(check({ reconnectMaxMs: timer }), undefined);
  assert.equal(
    check({ reconnectMaxMs: timer + 1 }),
    `invalid limit reconnectMaxMs: ${timer + 1} (at most ${timer}, the longest a timer can wait)`,
  );
  for (const name of ["reconnectMinMs", "connackTimeoutMs", "subackTimeoutMs"]) {
    assert.equal(check({ [name]: timer, reconnectMaxMs: timer }), undefined, name);
    assert.match(check({ [name]: timer + 1 })!, new RegExp(`^invalid limit ${name}: `));
  }
  assert.equal(check({ keepAliveSeconds: 65_535 }), undefined);
  assert.equal(
    check({ keepAliveSeconds: 65_536 }),
    "invalid limit keepAliveSeconds: 65536 (at most 65535, MQTT's largest keepalive)",
  );
  // Not timers: compared with the clock only, or capped where they set one.
  assert.equal(check({ sessionIdleMs: 1e12, maxKeyExchangeWaitMs: 1e12 }), undefined);
});

Deno.test("reconnectMaxMs may equal reconnectMinMs, not be below it", () => {
  assert.equal(check({ reconnectMinMs: 1000, reconnectMaxMs: 1000 }), undefined);
  assert.equal(
    check({ reconnectMaxMs: 10 }),
    "invalid limits: reconnectMaxMs (10) is below reconnectMinMs (500)",
  );
});

Deno.test("a netid's share may exceed the total: the total binds first", () => {
  assert.equal(check({ maxRequestsInFlight: 4, maxBytesInFlight: 1000 }), undefined);
});

Deno.test("a name that is no limit is refused, and shown safely", () => {
  assert.equal(check({ maxSesions: 5 }), 'unknown limit "maxSesions"');
  assert.equal(check({ "evil\nline": 5 }), 'unknown limit "evil\\nline"');
  assert.equal(checkLimits({ maxSessions: 5 }), "missing limit sessionIdleMs");
  // Only own names: nothing inherited is taken for a limit.
  assert.equal(check({ toString: 5 }), 'unknown limit "toString"');
});

Deno.test("every message is one line", () => {
  for (const name of NAMES) {
    for (const value of [0, 1.5, "x\ny", 2 ** 40]) {
      const problem = check({ [name]: value });
      if (problem !== undefined) assert.ok(!problem.includes("\n"), problem);
    }
  }
});
