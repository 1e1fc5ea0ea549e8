/**
 * What a correct answer to an action looks like, for tests and the benchmark. `shuffle` and
 * `random` are random, so they are checked by their properties, not by a fixed text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertAnswer, isRandomOf } from "./answers.ts";
 * assertAnswer("reverse", "abc", "cba");
 * assertAnswer("shuffle", "abc", "bca");
 * assert.ok(isRandomOf("abc", "aacc")); // a twice, b dropped, c twice
 * assert.throws(() => assertAnswer("random", "abc", "cba")); // out of order
 * ```
 * @module
 */

import assert from "node:assert/strict";
import { applyAction } from "../lib/protocol/actions.ts";

/** True when `output` is `input` with each character kept 0, 1 or 2 times, in order. */
export function isRandomOf(input: string, output: string): boolean {
  const a = Array.from(input);
  const b = Array.from(output);
  const memo = new Map<number, boolean>();
  const can = (i: number, j: number): boolean => {
    if (i === a.length) return j === b.length;
    const key = i * (b.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let ok = can(i + 1, j);
    if (!ok && b[j] === a[i]) ok = can(i + 1, j + 1) || (b[j + 1] === a[i] && can(i + 1, j + 2));
    memo.set(key, ok);
    return ok;
  };
  return can(0, 0);
}

/** The characters of `text`, sorted: equal for two permutations of one text. */
export function sortedChars(text: string): string {
  return Array.from(text).sort().join("");
}

/** Asserts that `output` is a correct answer of `action` to `input`. */
export function assertAnswer(action: string, input: string, output: string): void {
  switch (action) {
    case "uppercase":
      return assert.equal(output, input.toUpperCase());
    case "lowercase":
      return assert.equal(output, input.toLowerCase());
    case "title-case":
      // Python's str.title(): lib/protocol/actions.ts is checked against CPython over every cased code
      // point (tests/protocol/actions_test.ts), so it can stand for it here.
      return assert.equal(output, applyAction("title-case", input));
    case "reverse":
      return assert.equal(output, Array.from(input).reverse().join(""));
    case "shuffle":
      return assert.equal(sortedChars(output), sortedChars(input), `not a permutation: ${output}`);
    case "random":
      return assert.ok(isRandomOf(input, output), `not a drop/duplicate of the input: ${output}`);
    default:
      throw new Error(`no check for action ${action}`);
  }
}
