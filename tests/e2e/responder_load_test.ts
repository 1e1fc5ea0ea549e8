/**
 * Load: 200 concurrent client sessions, each with its own netid, against one responder process
 * (the real entry point, so it has a core of its own on a 2-core machine): every answer must be
 * correct and none lost. The clients run in-process through the library's requestTransform
 * (200 subprocesses would measure Deno's start-up, not the responder); a few real runs of the
 * client entry point go alongside.
 */

import assert from "node:assert/strict";
import { requestTransform } from "../../lib/client/session.ts";
import { ACTIONS } from "../../lib/protocol/actions.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { mosquittoSkipReason, startMosquitto } from "../../support/mosquitto.ts";
import { spawnTask, startResponderTask } from "../../support/processes.ts";
import { assertAnswer } from "../../support/answers.ts";

const SESSIONS = 200;
const SUBPROCESS_CLIENTS = 3;

Deno.test({
  name: `${SESSIONS} concurrent sessions with distinct netids: every answer correct, none lost`,
  ignore: mosquittoSkipReason() !== undefined,
  async fn() {
    await using broker = await startMosquitto();
    await using responder = await startResponderTask(broker);
    const group = loadLabGroup();

    const started = performance.now();
    await using processes = new AsyncDisposableStack(); // no client process outlives a failure
    const cliRuns = Array.from(
      { length: SUBPROCESS_CLIENTS },
      (_, i) =>
        processes.use(spawnTask("client", [
          "--host",
          broker.host,
          "-p",
          String(broker.port),
          "--timeout",
          "60",
          `cli-${i}`,
          "reverse",
          `subprocess client ${i}`,
        ])),
    );
    const sessions = Array.from({ length: SESSIONS }, async (_, i) => {
      const action = ACTIONS[i % ACTIONS.length];
      const message = `load message ${i} for ${action}: The Quick Brown Fox`;
      const t0 = performance.now();
      const answer = await requestTransform({
        broker: { transport: "mqtt", host: broker.host, port: broker.port },
        netid: `load-${i}`,
        action,
        message,
        // Generous: the point is that none is lost, not a latency bound on a shared CI box.
        timeoutMs: 60_000,
        group,
      });
      return { i, action, message, answer, ms: performance.now() - t0 };
    });
    const results = await Promise.allSettled(sessions);
    const elapsed = performance.now() - started;

    const failures = results.flatMap((r, i) =>
      r.status === "rejected" ? [`load-${i}: ${(r.reason as Error).message}`] : []
    );
    assert.deepStrictEqual(failures, [], `${failures.length} sessions failed`);
    const done = results.map((r) =>
      (r as PromiseFulfilledResult<Awaited<typeof sessions[0]>>).value
    );
    for (const { action, message, answer } of done) {
      assertAnswer(action, message, answer);
    }
    for (const [i, run] of cliRuns.entries()) {
      const status = await run.status;
      assert.strictEqual(status.code, 0, run.stderrText());
      assert.strictEqual(
        run.stdoutText(),
        `${Array.from(`subprocess client ${i}`).reverse().join("")}\n`,
      );
    }
    const latencies = done.map((d) => d.ms).sort((a, b) => a - b);
    const pct = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    console.log(
      `${SESSIONS} in-process sessions + ${SUBPROCESS_CLIENTS} client processes: ` +
        `${(elapsed / 1000).toFixed(2)} s wall; session latency p50 ${pct(0.5).toFixed(0)} ms, ` +
        `p95 ${pct(0.95).toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms`,
    );

    responder.kill("SIGTERM");
    assert.strictEqual((await responder.status).code, 0);
    const total = SESSIONS + SUBPROCESS_CLIENTS;
    await responder.waitForLine(
      new RegExp(`stopped: ${total} key exchange\\(s\\), ${total} answer\\(s\\), 0 dropped`),
    );
  },
});
