/**
 * lib/responder/responder.ts without a broker: the options it refuses (every limit, as a
 * ResponderError of one line) and its lifecycle (idle, running, stopping, stopped) against a
 * port nobody listens on. Serving, on real brokers, is tested in tests/e2e/responder_test.ts.
 */

import assert from "node:assert/strict";
import type { Logger } from "../../lib/log.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import {
  DEFAULT_LIMITS,
  Responder,
  ResponderError,
  type ResponderLimits,
} from "../../lib/responder/responder.ts";
import { freePort } from "../../support/mosquitto.ts";

const group = loadLabGroup();
const nowhere = { transport: "mqtt", host: "127.0.0.1", port: 1 } as const;

/** A logger that keeps its lines and resolves `seen(pattern)` once one matches. */
function recordingLogger(): Logger & { lines: string[]; seen(pattern: RegExp): Promise<void> } {
  const lines: string[] = [];
  const waiters: [RegExp, () => void][] = [];
  const push = (line: string) => {
    lines.push(line);
    for (const [pattern, resolve] of waiters) if (pattern.test(line)) resolve();
  };
  return {
    lines,
    debug: (m) => push(`debug: ${m}`),
    info: (m) => push(m),
    warn: (m) => push(`warning: ${m}`),
    seen(pattern) {
      if (lines.some((line) => pattern.test(line))) return Promise.resolve();
      return new Promise((resolve) => waiters.push([pattern, resolve]));
    },
  };
}

Deno.test("a limit that is not a whole number where one is counted is a ResponderError", () => {
  // Before, these escaped from the session cache or the key-exchange queue as a RangeError.
  const counts: (keyof ResponderLimits)[] = [
    "maxSessions",
    "maxPendingKeyExchanges",
    "maxRequestsInFlight",
    "maxBytesInFlight",
    "maxRequestsInFlightPerNetid",
    "maxBytesInFlightPerNetid",
    "keepAliveSeconds",
    "logBurst",
  ];
  for (const name of counts) {
    assert.throws(
      () => new Responder({ broker: nowhere, group, limits: { [name]: 1.5 } }),
      (error) => {
        assert.ok(error instanceof ResponderError, `${name}: ${error}`);
        assert.equal(error.message, `invalid limit ${name}: 1.5 (a whole number above 0)`);
        return true;
      },
    );
  }
});

Deno.test("every limit is checked by the constructor, each with one line", () => {
  for (const name of Object.keys(DEFAULT_LIMITS)) {
    for (const value of [0, -5, NaN, Infinity, "10"]) {
      assert.throws(
        () => new Responder({ broker: nowhere, group, limits: { [name]: value } }),
        (error) =>
          error instanceof ResponderError && error.message.startsWith(`invalid limit ${name}: `) &&
          !error.message.includes("\n"),
      );
    }
  }
  const unknown = { maxSesions: 5 } as Partial<ResponderLimits>;
  assert.throws(
    () => new Responder({ broker: nowhere, group, limits: unknown }),
    new ResponderError('unknown limit "maxSesions"'),
  );
  // Fractions where a measure is meant are fine, and so is nothing at all.
  new Responder({ broker: nowhere, group, limits: { logLinesPerSecond: 0.5 } });
  new Responder({ broker: nowhere, group });
});

Deno.test("lifecycle: idle, running while it retries, stopping, stopped; run() then resolves", async () => {
  const logger = recordingLogger();
  const port = freePort();
  const responder = new Responder({
    broker: { transport: "mqtt", host: "127.0.0.1", port },
    group,
    logger,
  });
  assert.equal(responder.state, "idle");
  const running = responder.run();
  assert.equal(responder.run(), running); // the same promise
  assert.equal(responder.state, "running");
  await logger.seen(/connection refused; reconnecting in/);
  assert.equal(logger.lines[0], `connecting to 127.0.0.1:${port}`);
  const stopping = responder.stop();
  assert.equal(responder.state, "stopping");
  assert.equal(responder.stop(), stopping); // idempotent: the same shutdown
  await stopping;
  assert.equal(responder.state, "stopped");
  await running;
  await assert.rejects(responder.ready, new ResponderError("stopped before it was subscribed"));
  assert.equal(responder.stats().connections, 0);
  // Stopped is the end: run() does not start it again.
  await responder.run();
  assert.equal(responder.state, "stopped");
});

Deno.test("stopped before it ran: run() resolves at once and never connects", async () => {
  const logger = recordingLogger();
  const responder = new Responder({ broker: nowhere, group, logger });
  await responder.stop();
  assert.equal(responder.state, "stopped");
  await responder.run();
  assert.deepEqual(logger.lines, []);
});
