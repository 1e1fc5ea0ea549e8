/**
 * The entry points' {@linkcode Logger}: lines on stderr, written whole.
 *
 * @module
 */

import type { Logger } from "../lib/log.ts";

/** How {@linkcode stderrLogger} writes its lines, beyond the name and the level. */
export interface StderrLoggerOptions {
  /**
   * The time each line was written, first: UTC, ISO 8601 to the millisecond
   * ({@linkcode timestamp}). For a service, whose log is read long after.
   */
  timestamps?: boolean;
  /** The clock of the timestamps; default `Date.now`. */
  now?: () => number;
}

/**
 * `2026-12-02T18:04:05.123Z `: the time `at` (milliseconds since the epoch, default now) as a
 * line's first word. UTC, so that lines from machines in different zones line up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timestamp } from "./logger.ts";
 * assert.equal(timestamp(Date.UTC(2026, 11, 2, 18, 4, 5, 123)), "2026-12-02T18:04:05.123Z ");
 * ```
 */
export function timestamp(at: number = Date.now()): string {
  return `${new Date(at).toISOString()} `;
}

/**
 * A logger that writes `name: level: message` lines to stderr (with `timestamps`, each after
 * its time), `debug` only when `verbose`. A line that cannot be written is lost, and only it:
 * logging is never what stops a service. Once the reader of stderr has gone away (a broken
 * pipe), nothing more is tried.
 */
export function stderrLogger(
  name: string,
  verbose: boolean,
  options: StderrLoggerOptions = {},
): Logger {
  const encoder = new TextEncoder();
  const now = options.now ?? Date.now;
  const stamp = options.timestamps ? () => timestamp(now()) : () => "";
  let readerGone = false;
  const write = (level: string, message: string) => {
    if (readerGone) return;
    try {
      writeAllSync(Deno.stderr, encoder.encode(`${stamp()}${name}: ${level}${message}\n`));
    } catch (error) {
      // Any other failure may pass (an interrupted write, a full disk): the next line tries.
      if (error instanceof Deno.errors.BrokenPipe) readerGone = true;
    }
  };
  return {
    verbose,
    debug: verbose ? (m) => write("debug: ", m) : () => {},
    info: (m) => write("", m),
    warn: (m) => write("warning: ", m),
  };
}

/** Writes all of `bytes` (`writeSync` may write only part of them). */
export function writeAllSync(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array) {
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
