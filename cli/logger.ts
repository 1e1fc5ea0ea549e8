/**
 * The entry points' {@linkcode Logger}: lines on stderr, written whole.
 *
 * @module
 */

import type { Logger } from "../lib/log.ts";

/**
 * A logger that writes `name: level: message` lines to stderr, `debug` only when `verbose`.
 * A line that cannot be written is lost, and only it: logging is never what stops a service.
 * Once the reader of stderr has gone away (a broken pipe), nothing more is tried.
 */
export function stderrLogger(name: string, verbose: boolean): Logger {
  const encoder = new TextEncoder();
  let readerGone = false;
  const write = (level: string, message: string) => {
    if (readerGone) return;
    try {
      writeAllSync(Deno.stderr, encoder.encode(`${name}: ${level}${message}\n`));
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
