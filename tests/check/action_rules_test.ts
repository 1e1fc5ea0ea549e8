/**
 * lib/check/action_rules.ts: how a responder's answers are judged, against Python itself (the
 * graders are Python) for the case mappings and code-point reversal, and as rules for shuffle
 * and random.
 */

import assert from "node:assert/strict";
import { actionProblem } from "../../lib/check/action_rules.ts";
import { NON_ASCII } from "../../lib/check/responder_suite.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";

const TEXTS = [
  NON_ASCII,
  "Hello World, they're 42!",
  "they're bill's friends from the UK",
  "ǅemal ǈudevit ᾳ ﬃ İstanbul ΣΑΣ Σ",
];

pycaTest("uppercase, lowercase, title-case and reverse: what Python answers passes", async () => {
  const python = JSON.parse(
    await runPython(
      "import json, sys\n" +
        "texts = json.load(sys.stdin)\n" +
        "print(json.dumps([[t.upper(), t.lower(), t.title(), t[::-1]] for t in texts]))",
      JSON.stringify(TEXTS),
    ),
  ) as string[][];
  for (const [i, text] of TEXTS.entries()) {
    const [upper, lower, title, reversed] = python[i];
    assert.equal(actionProblem("uppercase", text, upper), undefined, `upper ${text}`);
    assert.equal(actionProblem("lowercase", text, lower), undefined, `lower ${text}`);
    assert.equal(actionProblem("title-case", text, title), undefined, `title ${text}`);
    assert.equal(actionProblem("reverse", text, reversed), undefined, `reverse ${text}`);
    // And JavaScript's plain mappings, where they differ from Python's, fail.
    if (text.toUpperCase() !== upper) {
      assert.notEqual(actionProblem("uppercase", text, text.toUpperCase()), undefined);
    }
  }
});

Deno.test("a wrong answer names what was expected", () => {
  assert.equal(actionProblem("uppercase", "abc", "abc"), '"ABC"');
  assert.equal(actionProblem("title-case", "they're", "They're"), '"They\'Re"');
  // Reversing UTF-16 units would split the emoji's surrogate pair.
  assert.equal(actionProblem("reverse", "a🚀b", "b🚀a"), undefined);
  assert.notEqual(actionProblem("reverse", "a🚀b", "b\udc80\ud83da"), undefined);
});

Deno.test("shuffle: the same characters in another order", () => {
  const message = "abcdefghijklmnopqrstuvwxyz";
  assert.equal(actionProblem("shuffle", message, "zyxwvutsrqponmlkjihgfedcba"), undefined);
  assert.match(actionProblem("shuffle", message, message)!, /another order/);
  assert.match(actionProblem("shuffle", message, message.slice(1))!, /same characters/);
  assert.match(actionProblem("shuffle", "aab", "abb")!, /same characters/, "a multiset");
  // A short message may come back as it was.
  assert.equal(actionProblem("shuffle", "ab", "ab"), undefined);
});

Deno.test("random: each character dropped, kept or repeated, in order", () => {
  assert.equal(actionProblem("random", "hello", ""), undefined);
  assert.equal(actionProblem("random", "hello", "hhelllo"), undefined);
  assert.equal(actionProblem("random", "hello", "hlo"), undefined);
  assert.equal(actionProblem("random", "aab", "aaaab"), undefined);
  assert.notEqual(actionProblem("random", "hello", "olleh"), undefined, "out of order");
  assert.notEqual(actionProblem("random", "hello", "help"), undefined, "a character not there");
});

Deno.test("an action the checker does not know is not judged", () => {
  assert.equal(actionProblem("frobnicate", "abc", "xyz"), undefined);
});
