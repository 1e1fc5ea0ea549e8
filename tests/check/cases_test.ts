/**
 * lib/check/cases.ts: the case list and its metadata: unique ids, one body per case in each
 * suite, a rule for every case, `--quick` and `--only` selection (tests/docs/conformance_test.ts
 * checks that every case is documented).
 */

import assert from "node:assert/strict";
import { CLIENT_CASES, globPattern, RESPONDER_CASES, selectCases } from "../../lib/check/cases.ts";
import { CLIENT_CASE_IDS } from "../../lib/check/client_suite.ts";
import { RESPONDER_CASE_IDS } from "../../lib/check/responder_suite.ts";

Deno.test("every case has a unique id of its mode, a title and a rule, and a body", () => {
  for (
    const [mode, cases, bodies] of [
      ["client", CLIENT_CASES, CLIENT_CASE_IDS],
      ["responder", RESPONDER_CASES, RESPONDER_CASE_IDS],
    ] as const
  ) {
    const ids = cases.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, `${mode}: duplicate ids`);
    for (const c of cases) {
      assert.match(c.id, new RegExp(`^${mode}\\.[a-z0-9-]+(\\.[a-z0-9-]+)?$`));
      assert.ok(c.title.length > 0 && !c.title.includes("\n"), c.id);
      assert.ok(c.rule.length > 0, `${c.id} names no rule`);
    }
    assert.deepEqual(
      [...bodies].sort(),
      [...ids].sort(),
      `${mode}: ids without a body or bodies without a case`,
    );
  }
});

Deno.test("--quick keeps the quick cases, and leaves out the slow ones", () => {
  const quick = selectCases("client", { quick: true }).map((c) => c.id);
  assert.ok(quick.includes("client.kx.zero-lead"));
  assert.ok(!quick.includes("client.silent"), "waits for the client's own deadline");
  assert.ok(!quick.includes("client.hostile.tampered"), "waits for the client's own deadline");
  assert.ok(
    !selectCases("responder", { quick: true }).some((c) => c.id === "responder.kx.zero-lead"),
  );
  assert.equal(selectCases("client").length, CLIENT_CASES.length);
});

Deno.test("--only patterns: * matches any run of characters, nothing else is special", () => {
  assert.deepEqual(
    selectCases("client", { only: ["client.hostile.y-*"] }).map((c) => c.id),
    ["client.hostile.y-one", "client.hostile.y-p-minus-1"],
  );
  assert.deepEqual(
    selectCases("responder", { only: ["responder.start", "*.zero-lead"] }).map((c) => c.id),
    ["responder.start", "responder.kx.zero-lead"],
  );
  assert.ok(!globPattern("client.kx.zero-lead").test("clientXkx.zero-lead"), ". is literal");
  assert.ok(globPattern("*").test("anything"));
});
