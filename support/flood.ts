/**
 * Load for tests and the benchmark: publish one payload many times, as fast as the broker takes
 * it, with a bounded number of publishes awaiting their PUBACK at once; and read a process's
 * resident memory, for the bounds a responder must keep under abuse.
 *
 * @module
 */

import type { Tap } from "./tap.ts";

/** How {@linkcode flood} sends. */
export interface FloodOptions {
  /** Most publishes to make. */
  count: number;
  /** Most publishes awaiting their PUBACK at once (default 64). */
  window?: number;
  /** Stops early once this settles. */
  until?: Promise<unknown>;
}

/** Publishes `payload` on `topic` up to `count` times; resolves with how many were sent. */
export async function flood(
  tap: Tap,
  topic: string,
  payload: string | Uint8Array,
  options: FloodOptions,
): Promise<number> {
  let stop = false;
  options.until?.finally(() => stop = true).catch(() => {});
  let sent = 0;
  const lane = async () => {
    while (!stop && sent < options.count) {
      sent++;
      await tap.publish(topic, payload);
    }
  };
  await Promise.all(Array.from({ length: options.window ?? 64 }, lane));
  return sent;
}

/** Resident set size of process `pid` in bytes (Linux /proc), or `undefined` once it is gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/** Samples {@linkcode residentBytes} every `everyMs` until `stop()`; keeps the peak. */
export function sampleResident(pid: number, everyMs = 50) {
  let peak = 0;
  const samples: number[] = [];
  const timer = setInterval(() => {
    const rss = residentBytes(pid);
    if (rss === undefined) return;
    samples.push(rss);
    peak = Math.max(peak, rss);
  }, everyMs);
  return {
    get peak() {
      return peak;
    },
    samples,
    stop: () => clearInterval(timer),
  };
}
