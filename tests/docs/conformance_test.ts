/**
 * docs/conformance.md: its tables of cases say what lib/check/cases.ts has: every case has a row,
 * with its level, and every row is a case.
 */

import assert from "node:assert/strict";
import { casesOf } from "../../lib/check/cases.ts";

const doc = await Deno.readTextFile(new URL("../../docs/conformance.md", import.meta.url));

/** The `| \`id\` | level | … |` rows of the case tables. */
const rows = new Map(
  doc.split("\n").flatMap((line) => {
    const match = /^\| `((?:client|responder)\.[^`]+)` +\| (\w+) +\|/.exec(line);
    return match ? [[match[1], match[2]] as const] : [];
  }),
);

Deno.test("every case has a row in docs/conformance.md, with its level", () => {
  for (const c of [...casesOf("client"), ...casesOf("responder")]) {
    assert.equal(rows.get(c.id), c.required ? "required" : "advisory", `${c.id}'s row`);
  }
});

Deno.test("every row of docs/conformance.md is a case", () => {
  const ids = new Set([...casesOf("client"), ...casesOf("responder")].map((c) => c.id));
  for (const id of rows.keys()) assert.ok(ids.has(id), `${id} is documented but is no case`);
});
