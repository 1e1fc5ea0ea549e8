/**
 * lib/client/deadline.ts in a Deno process of its own, where a GC can be called: what a race
 * keeps once it is over. A session races once per delivery, and under a flood that is tens of
 * thousands of times a second; a race that left a reaction on a promise as long-lived as the
 * deadline kept it, and the value that won it, until the session ended (512 bytes and the
 * delivery, every race, before this was fixed).
 */

import assert from "node:assert/strict";
import { ROOT, runPeer } from "../../support/processes.ts";

const PROBE = `
import { Deadline } from "${new URL("../../lib/client/deadline.ts", import.meta.url).href}";
const gc = globalThis.gc;
const caller = new AbortController();
using deadline = new Deadline(3_600_000, caller.signal);
const late = () => new Error("late");
const race = () => deadline.race([Promise.resolve(new Uint8Array(1024))], late);
for (let i = 0; i < 1_000; i++) await race();
gc(); gc();
const before = Deno.memoryUsage();
const N = 20_000;
for (let i = 0; i < N; i++) await race();
gc(); gc();
const after = Deno.memoryUsage();
console.log(JSON.stringify({
  heap: (after.heapUsed - before.heapUsed) / N,
  external: (after.external - before.external) / N,
}));
`;

Deno.test("a race keeps nothing of itself, nor the value that won it, once it is over", async () => {
  const run = await runPeer(Deno.execPath(), [
    ...["eval", "--v8-flags=--expose-gc", "--ext=ts", PROBE],
  ], { cwd: ROOT });
  assert.equal(run.code, 0, run.stderr);
  const perRace: { heap: number; external: number } = JSON.parse(run.stdout);
  // Kept, each race: nothing (a few bytes either way are the collector's noise). A kept value
  // would be 1,024 bytes of external memory.
  assert.ok(perRace.external < 16, `${perRace.external.toFixed(1)} external bytes a race`);
  assert.ok(perRace.heap < 64, `${perRace.heap.toFixed(1)} heap bytes a race`);
});
