/**
 * What a responder's answer must be, action by action, judged as the lab's graders judge it:
 * they are Python, so uppercase, lowercase and title-case are `str.upper()`, `str.lower()` and
 * `str.title()` (./../actions.ts mirrors them, and the tests compare it with Python itself),
 * reverse works on code points, shuffle keeps the multiset of code points, and random keeps the
 * characters in order while dropping or repeating them.
 *
 * @module
 */

import { applyAction } from "../protocol/actions.ts";

/**
 * Why `answer` is not a correct `action` of `message`, as "expected …" text, or `undefined`
 * when it is. Unknown actions are not judged (`undefined`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { actionProblem } from "./action_rules.ts";
 * assert.equal(actionProblem("uppercase", "straße", "STRASSE"), undefined);
 * assert.equal(actionProblem("shuffle", "abc", "cab"), undefined);
 * assert.equal(actionProblem("random", "abc", "aacc"), undefined);
 * assert.match(actionProblem("reverse", "abc", "abc")!, /^"cba"/);
 * ```
 */
export function actionProblem(action: string, message: string, answer: string): string | undefined {
  switch (action) {
    case "uppercase":
    case "lowercase":
    case "title-case":
    case "reverse": {
      const expected = applyAction(action, message);
      return answer === expected ? undefined : `${JSON.stringify(expected)}`;
    }
    case "shuffle": {
      if (sorted(answer) !== sorted(message)) {
        return "the same characters as the message, in any order";
      }
      // A message of many distinct characters comes back in its own order once in n! times.
      if (answer === message && new Set(message).size >= 8) {
        return "the characters in another order (the answer is the message itself)";
      }
      return undefined;
    }
    case "random":
      return droppedAndRepeated(message, answer)
        ? undefined
        : "the message's characters in order, each dropped, kept or repeated";
  }
  return undefined;
}

function sorted(text: string): string {
  return Array.from(text).sort().join("");
}

/** Whether `answer` is `c1* c2* … cn*` for the code points `c1 … cn` of `message`. */
function droppedAndRepeated(message: string, answer: string): boolean {
  const m = Array.from(message);
  const a = Array.from(answer);
  // reachable[j]: a[0..j) is matched by the characters of m seen so far.
  let reachable = new Array<boolean>(a.length + 1).fill(false);
  reachable[0] = true;
  for (const c of m) {
    const next = [...reachable];
    for (let j = 1; j <= a.length; j++) {
      if (a[j - 1] === c && next[j - 1]) next[j] = true;
    }
    reachable = next;
  }
  return reachable[a.length];
}
