/**
 * Tests of lib/timer.ts: a one-shot, cancellable timer on `AbortSignal.timeout`. Besides the
 * timing contract, they pin the runtime behaviour it relies on: it never calls the global
 * `setTimeout` (whose first call costs ~12 ms in Deno 2.9), a pending timer keeps a process
 * alive, and a cancelled one does not.
 *
 * The waits here are on the timers under test, never sleeps to synchronise.
 */

import assert from "node:assert/strict";
import { MAX_TIMER_STEP_MS, Timer } from "../lib/timer.ts";

const TIMER_URL = new URL("../lib/timer.ts", import.meta.url).href;

/** Resolves when a Timer of `ms` fires. */
function after(ms: number): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  new Timer(ms, resolve);
  return promise;
}

Deno.test("fires once, not before its delay", async () => {
  const started = performance.now();
  let calls = 0;
  const fired = Promise.withResolvers<void>();
  const timer = new Timer(30, () => {
    calls++;
    fired.resolve();
  });
  assert.equal(timer.pending, true);
  await fired.promise;
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 29, `fired after ${elapsed} ms`);
  assert.equal(timer.pending, false);
  timer.cancel(); // a no-op once fired
  await after(40);
  assert.equal(calls, 1);
});

Deno.test("cancel() stops it; idempotent; other timers are unaffected", async () => {
  let cancelledCalls = 0;
  const cancelled = new Timer(10, () => cancelledCalls++);
  const kept = after(30);
  cancelled.cancel();
  cancelled.cancel();
  assert.equal(cancelled.pending, false);
  await kept;
  assert.equal(cancelledCalls, 0);
});

Deno.test("a timer cancelled from another timer's callback does not fire", async () => {
  let calls = 0;
  const victim = new Timer(20, () => calls++);
  await after(5).then(() => victim.cancel());
  await after(40);
  assert.equal(calls, 0);
});

Deno.test("delays: negative means 0, fractions round up, NaN and Infinity are refused", async () => {
  const order: string[] = [];
  const done = Promise.withResolvers<void>();
  new Timer(5, () => {
    order.push("5");
    done.resolve();
  });
  new Timer(-100, () => order.push("negative"));
  new Timer(0.2, () => order.push("0.2"));
  await done.promise;
  assert.deepEqual(order, ["negative", "0.2", "5"]);
  assert.throws(() => new Timer(NaN, () => {}), RangeError);
  assert.throws(() => new Timer(Infinity, () => {}), RangeError);
  assert.throws(() => new Timer(10, "x" as unknown as () => void), TypeError);
});

Deno.test("a delay beyond 2^31-1 ms does not fire at once (a bare AbortSignal.timeout would)", async () => {
  let calls = 0;
  const timer = new Timer(MAX_TIMER_STEP_MS + 1000, () => calls++);
  await after(50);
  assert.equal(calls, 0);
  assert.equal(timer.pending, true);
  timer.cancel();
});

/** Runs `code` in a fresh Deno process; returns its stdout and how long it lived. */
async function runDeno(code: string): Promise<{ stdout: string; ms: number }> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `deno eval failed: ${stderr}`);
  return { stdout: new TextDecoder().decode(out.stdout), ms };
}

Deno.test("never calls the global setTimeout; a pending timer keeps the process alive", async () => {
  // setTimeout and friends replaced by throwing stubs: the timer must still work.
  const { stdout } = await runDeno(`
    for (const name of ["setTimeout", "setInterval", "clearTimeout", "clearInterval"]) {
      Object.defineProperty(globalThis, name, { value: () => { throw new Error(name); } });
    }
    const { Timer } = await import(${JSON.stringify(TIMER_URL)});
    new Timer(150, () => console.log("fired"));
    console.log("end of script");
  `);
  assert.equal(stdout, "end of script\nfired\n");
});

Deno.test("a cancelled timer does not keep the process alive", async () => {
  const { stdout, ms } = await runDeno(`
    const { Timer } = await import(${JSON.stringify(TIMER_URL)});
    new Timer(20_000, () => console.log("fired")).cancel();
    console.log("end of script");
  `);
  assert.equal(stdout, "end of script\n");
  assert.ok(ms < 10_000, `the process lived ${ms} ms`);
});
