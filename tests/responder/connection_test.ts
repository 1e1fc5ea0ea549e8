/**
 * lib/responder/connection.ts, its pure parts: what follows a connection attempt (fail, fall
 * back to MQTT 3.1.1, retry), what a packet from the broker says is wrong, and the reconnect
 * backoff. The connection itself is tested against hostile brokers
 * (tests/e2e/responder_hostile_test.ts) and real ones (tests/e2e/responder_test.ts).
 */

import assert from "node:assert/strict";
import { BrokerError, type BrokerErrorKind } from "../../lib/mqtt.ts";
import {
  afterAttempt,
  type Attempt,
  backoffDelay,
  brokerViolation,
} from "../../lib/responder/connection.ts";

function problem(kind: BrokerErrorKind, permanent = false): BrokerError {
  return new BrokerError(kind, `a ${kind} problem`, permanent);
}

function attempt(overrides: Partial<Attempt>): Attempt {
  return { version: 5, connack: undefined, problem: undefined, hungUp: false, ...overrides };
}

Deno.test("MQTT 5 refused as an unsupported version (CONNACK 1 or reason 132): fall back", () => {
  for (const connack of [1, 132]) {
    // The refusal is a permanent BrokerError too: falling back comes first.
    const refused = problem("refused", true);
    assert.deepEqual(afterAttempt(attempt({ connack, problem: refused })), { next: "fall back" });
    assert.deepEqual(afterAttempt(attempt({ connack })), { next: "fall back" });
  }
});

Deno.test("in MQTT 3.1.1, CONNACK 1 is the end: there is nothing older to fall back to", () => {
  const refused = problem("refused", true);
  assert.deepEqual(
    afterAttempt(attempt({ version: 4, connack: 1, problem: refused })),
    { next: "fail", error: refused },
  );
});

Deno.test("a version 5 CONNECT the broker hung up on, before any CONNACK: fall back", () => {
  // The plain close of a 3.1.1-only broker, or a reset.
  assert.deepEqual(afterAttempt(attempt({ hungUp: true })), { next: "fall back" });
  const reset = problem("lost");
  assert.deepEqual(afterAttempt(attempt({ hungUp: true, problem: reset })), {
    next: "fall back",
  });
});

Deno.test("nothing else falls back: timeouts, transient refusals, violations, losses", () => {
  const cases: Partial<Attempt>[] = [
    { problem: problem("lost") }, // no CONNACK within the limit: a broker that froze
    { problem: problem("not-mqtt") }, // some other server
    { problem: problem("unreachable") },
    { connack: 137, problem: problem("refused") }, // server busy
    { connack: 136, problem: problem("refused") }, // server unavailable
    { connack: 0, problem: problem("lost") }, // a second CONNACK, an AUTH, no SUBACK ...
    { connack: 0, hungUp: true }, // closed after its CONNACK
  ];
  for (const seen of cases) {
    const after = afterAttempt(attempt(seen));
    assert.deepEqual(after, { next: "retry", problem: seen.problem }, JSON.stringify(seen));
  }
});

Deno.test("a retry in MQTT 3.1.1 is a retry: the next attempt is MQTT 5 again", () => {
  const lost = problem("lost");
  for (const seen of [{ hungUp: true }, { problem: lost }, { connack: 0, hungUp: true }]) {
    assert.deepEqual(afterAttempt(attempt({ version: 4, ...seen })), {
      next: "retry",
      problem: seen.problem,
    });
  }
});

Deno.test("a permanent failure is the end, in either version, with or without a CONNACK", () => {
  for (const kind of ["tls", "refused"] as const) {
    const fatal = problem(kind, true);
    for (const version of [4, 5] as const) {
      for (const connack of [undefined, 0, 135]) {
        assert.deepEqual(
          afterAttempt(attempt({ version, connack, problem: fatal })),
          { next: "fail", error: fatal },
        );
      }
    }
  }
});

Deno.test("brokerViolation: what a broker may not send us, named", () => {
  const connack = { cmd: "connack", sessionPresent: false, returnCode: 0 } as const;
  assert.equal(brokerViolation(connack, 4, undefined), undefined);
  assert.equal(brokerViolation(connack, 4, 0), "sent a second CONNACK");
  assert.equal(
    brokerViolation({ cmd: "auth", reasonCode: 0x18 }, 5, 0),
    "sent an AUTH packet we did not ask for",
  );
  const publish = {
    cmd: "publish",
    topic: "a/b/request",
    payload: "x",
    qos: 1,
    dup: false,
    retain: false,
    messageId: 1,
  } as const;
  assert.equal(brokerViolation(publish, 5, 0), undefined);
  assert.equal(
    brokerViolation({ ...publish, properties: { topicAlias: 1 } }, 5, 0),
    "sent a PUBLISH with a topic alias, which we did not allow",
  );
  assert.equal(
    brokerViolation({ cmd: "disconnect", reasonCode: 0x8b }, 5, 0),
    "disconnected us: server shutting down (0x8b)",
  );
  assert.equal(
    brokerViolation(
      {
        cmd: "disconnect",
        reasonCode: 0x98,
        properties: { reasonString: "kicked\nsecure_mqtt_responder: fine" },
      },
      5,
      0,
    ),
    'disconnected us: administrative action (0x98), "kicked\\nsecure_mqtt_responder: fine"',
  );
  assert.match(brokerViolation({ cmd: "disconnect" }, 4, 0)!, /^sent a DISCONNECT/);
  assert.equal(
    brokerViolation({ cmd: "pingreq" }, 4, 0),
    "sent a PINGREQ, which only a client may send",
  );
  for (const cmd of ["suback", "puback", "pingresp", "unsuback"] as const) {
    assert.equal(brokerViolation({ cmd, messageId: 1 } as never, 5, 0), undefined, cmd);
  }
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
