/**
 * cli/logger.ts, in process: the stderr logger's verbose flag, that a failed write loses only its
 * own line and a broken pipe ends the writing, and writeAllSync. What only a process shows (the
 * exact lines on a real stderr, a reader that goes away) is in tests/e2e/logger_test.ts.
 */

import assert from "node:assert/strict";
import { stderrLogger, timestamp, writeAllSync } from "../../cli/logger.ts";

Deno.test("stderrLogger exposes its verbose flag", () => {
  assert.equal(stderrLogger("svc", true).verbose, true);
  assert.equal(stderrLogger("svc", false).verbose, false);
});

/**
 * Replaces `Deno.stderr.writeSync` until disposed with `write`, which sees each call's bytes as
 * text.
 */
function stubStderr(write: (text: string) => number | Error): Disposable {
  const decoder = new TextDecoder();
  const own = Object.getOwnPropertyDescriptor(Deno.stderr, "writeSync");
  Deno.stderr.writeSync = (p: Uint8Array) => {
    const result = write(decoder.decode(p));
    if (result instanceof Error) throw result;
    return result;
  };
  return {
    [Symbol.dispose]() {
      if (own) Object.defineProperty(Deno.stderr, "writeSync", own);
      else delete (Deno.stderr as { writeSync?: unknown }).writeSync;
    },
  };
}

Deno.test("timestamp: UTC, ISO 8601 to the millisecond, and a space", () => {
  assert.equal(timestamp(0), "1970-01-01T00:00:00.000Z ");
  assert.equal(timestamp(Date.UTC(2026, 11, 2, 18, 4, 5, 123)), "2026-12-02T18:04:05.123Z ");
  // Whatever the local zone: the Z is the point.
  assert.match(timestamp(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z $/);
});

Deno.test("stderrLogger with timestamps: each line starts with its time, then name and level", () => {
  const written: string[] = [];
  let now = Date.UTC(2026, 11, 2, 18, 4, 5, 123);
  {
    using _ = stubStderr((text) => (written.push(text), text.length));
    const logger = stderrLogger("svc", true, { timestamps: true, now: () => now });
    logger.info("event");
    now += 1001;
    logger.warn("trouble");
    logger.debug("detail");
    stderrLogger("client", true).info("no time");
  }
  assert.deepEqual(written, [
    "2026-12-02T18:04:05.123Z svc: event\n",
    "2026-12-02T18:04:06.124Z svc: warning: trouble\n",
    "2026-12-02T18:04:06.124Z svc: debug: detail\n",
    "client: no time\n",
  ]);
});

Deno.test("stderrLogger loses only the line whose write failed", () => {
  const written: string[] = [];
  const failures = [new Deno.errors.Interrupted("interrupted"), new Error("disk full")];
  {
    using _ = stubStderr((text) => {
      const failure = failures.shift();
      if (failure !== undefined) return failure;
      written.push(text);
      return text.length;
    });
    const logger = stderrLogger("svc", false);
    logger.info("lost 1");
    logger.warn("lost 2");
    logger.info("kept");
  }
  assert.deepEqual(written, ["svc: kept\n"]);
});

Deno.test("stderrLogger stops writing once the reader of stderr has gone", () => {
  let calls = 0;
  {
    using _ = stubStderr(() => {
      calls++;
      return new Deno.errors.BrokenPipe("broken pipe");
    });
    const logger = stderrLogger("svc", true);
    for (let i = 0; i < 5; i++) logger.info(`line ${i}`);
  }
  assert.equal(calls, 1);
});

Deno.test("writeAllSync writes everything through a stream that takes a few bytes at a time", () => {
  const written: number[] = [];
  let calls = 0;
  const stream = {
    writeSync(p: Uint8Array): number {
      calls++;
      const n = Math.min(3, p.length);
      written.push(...p.subarray(0, n));
      return n;
    },
  };
  const bytes = new TextEncoder().encode("hello, world");
  writeAllSync(stream, bytes);
  assert.deepEqual(Uint8Array.from(written), bytes);
  assert.equal(calls, 4);
  writeAllSync(stream, new Uint8Array());
  assert.equal(calls, 4);
});
