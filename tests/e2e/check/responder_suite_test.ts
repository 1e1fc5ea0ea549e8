/**
 * lib/check/responder_suite.ts on real responders: ours and the Python peer, started on the
 * checker's broker; ours already running on mosquitto; ours and the Python peer with an identity
 * (the signature and bound tokens); and Python responders that misbehave, which must fail the
 * cases that look for it.
 */

import assert from "node:assert/strict";
import { RESPONDER_CASES, selectCases } from "../../../lib/check/cases.ts";
import {
  type ResponderSuiteOptions,
  runResponderSuite,
} from "../../../lib/check/responder_suite.ts";
import type { CaseResult } from "../../../lib/check/runner.ts";
import { mosquittoSkipReason, startMosquitto } from "../../../support/mosquitto.ts";
import { ROOT, startResponderTask, taskCommand } from "../../../support/processes.ts";
import { PYTHON, pythonPeersSkipReason } from "../../../support/python.ts";

const needsPython = pythonPeersSkipReason() !== undefined;

/** Our responder as its task runs it. */
function ourResponder(...args: string[]): string[] {
  const [, ...run] = taskCommand("responder");
  return [Deno.execPath(), ...run.slice(0, -1), `${ROOT}/${run.at(-1)}`, ...args];
}

const pythonResponder = (mode = "normal") => [
  PYTHON,
  "-u",
  `${ROOT}/tests/peers/responder.py`,
  "--mode",
  mode,
];

function options(extra: Partial<ResponderSuiteOptions>): ResponderSuiteOptions {
  return { trust: [], portFlag: "-p", deadlineMs: 30_000, waitMs: 10_000, ...extra };
}

function notPassed(results: CaseResult[]): string {
  return results.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.status}: ${r.reason}`)
    .join("\n");
}

function statuses(results: CaseResult[]): Record<string, string> {
  return Object.fromEntries(results.map((r) => [r.id, r.status]));
}

const AUTH = ["responder.auth.signature", "responder.auth.bound-tokens"];

Deno.test("our responder, started on the checker's broker, passes every case", async () => {
  const results = await runResponderSuite(RESPONDER_CASES, options({ command: ourResponder() }));
  for (const r of results) {
    // Without an identity there is no step 2b to check.
    const expected = AUTH.includes(r.id) ? "skip" : "pass";
    assert.equal(r.status, expected, notPassed(results));
  }
  // The checker's broker speaks MQTT 3.1.1, where a client cannot tell the broker its largest
  // packet, so the oversized payloads reach our responder: it skips them unread and stays.
  assert.equal(results.find((r) => r.id === "responder.hostile.oversize")?.status, "pass");
});

Deno.test("our responder with an identity: its step 2b and bound tokens pass, by the trusted fingerprint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "check-identity-" });
  try {
    const identity = `${dir}/identity.pem`;
    const [program, ...args] = ourResponder("--new-identity", identity);
    const made = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
      .output();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
    const fingerprint = /SHA256:[0-9a-f]{64}/.exec(new TextDecoder().decode(made.stdout))![0];
    const cases = selectCases("responder", {
      only: ["responder.start", "responder.auth.signature"],
    });
    const trusted = await runResponderSuite(
      selectCases("responder", { only: ["responder.start", ...AUTH] }),
      options({ command: ourResponder("--identity", identity), trust: [fingerprint] }),
    );
    assert.deepEqual(statuses(trusted), {
      "responder.start": "pass",
      "responder.auth.signature": "pass",
      "responder.auth.bound-tokens": "pass",
    }, notPassed(trusted));
    const wrong = await runResponderSuite(
      cases,
      options({
        command: ourResponder("--identity", identity),
        trust: [`SHA256:${"00".repeat(32)}`],
      }),
    );
    const signature = wrong.find((r) => r.id === "responder.auth.signature")!;
    assert.equal(signature.status, "fail");
    assert.match(signature.reason, new RegExp(`got one by ${fingerprint}$`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "our responder already running on mosquitto (-h HOST -p PORT) passes every case",
  ignore: mosquittoSkipReason() !== undefined,
  async fn() {
    await using broker = await startMosquitto();
    await using _responder = await startResponderTask(broker);
    const results = await runResponderSuite(
      RESPONDER_CASES,
      options({ broker: { host: broker.host, port: broker.port } }),
    );
    for (const r of results) {
      // Only the checker's own broker can leave requests retained before the responder starts.
      const skipped = [...AUTH, "responder.hostile.retained-requests"].includes(r.id);
      assert.equal(r.status, skipped ? "skip" : "pass", notPassed(results));
    }
  },
});

Deno.test({
  name: "the Python peer (tests/peers/responder.py) passes every required case",
  ignore: needsPython,
  async fn() {
    const results = await runResponderSuite(
      RESPONDER_CASES,
      options({ command: pythonResponder() }),
    );
    const failed = results.filter((r) => r.required && r.status === "fail");
    assert.deepEqual(failed.map((r) => r.id), [], notPassed(results));
  },
});

Deno.test({
  name: "the Python peer with --identity passes the authenticated cases, bound tokens included",
  ignore: needsPython,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "check-py-identity-" });
    try {
      const made = await new Deno.Command(PYTHON, {
        args: [`${ROOT}/tests/peers/auth.py`, "keygen"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(made.success);
      await Deno.writeFile(`${dir}/identity.pem`, made.stdout, { mode: 0o600 });
      const fingerprint = new TextDecoder().decode(made.stderr).trim();
      const results = await runResponderSuite(
        selectCases("responder", { only: ["responder.start", ...AUTH] }),
        options({
          command: [...pythonResponder(), "--identity", `${dir}/identity.pem`],
          trust: [fingerprint],
        }),
      );
      assert.deepEqual(statuses(results), {
        "responder.start": "pass",
        "responder.auth.signature": "pass",
        "responder.auth.bound-tokens": "pass",
      }, notPassed(results));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "responders that misbehave fail the cases that look for it",
  ignore: needsPython,
  async fn(t) {
    const cases = selectCases("responder", {
      only: ["responder.start", "responder.kx.public-key", "responder.action.uppercase"],
    });
    const quick = { waitMs: 1500 };
    await t.step("a key exchange answered with y = 1", async () => {
      const results = await runResponderSuite(
        cases,
        options({ command: pythonResponder("y-one"), ...quick }),
      );
      assert.deepEqual(statuses(results), {
        "responder.start": "pass",
        "responder.kx.public-key": "fail",
        "responder.action.uppercase": "fail",
      });
      assert.match(results[1].reason, /got peer public key is out of range/);
    });
    await t.step("answers whose HMAC does not verify", async () => {
      const results = await runResponderSuite(
        cases,
        options({ command: pythonResponder("tamper-token"), ...quick }),
      );
      assert.deepEqual(statuses(results), {
        "responder.start": "pass",
        "responder.kx.public-key": "pass",
        "responder.action.uppercase": "fail",
      });
      assert.match(results[2].reason, /got none within 1\.5 s \(1 that did not verify\)$/);
    });
    await t.step("a responder that exits at once", async () => {
      const results = await runResponderSuite(
        cases,
        options({ command: [PYTHON, "-c", "import sys; sys.exit('no broker for me')"], ...quick }),
      );
      assert.equal(results[0].status, "fail");
      assert.match(results[0].reason, /exit 1 .*without subscribing; stderr "no broker for me"/);
      assert.deepEqual(results.slice(1).map((r) => r.status), ["skip", "skip"]);
    });
  },
});
