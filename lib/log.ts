/**
 * The logger the library writes through. The library never prints: the entry point decides
 * where lines go (stderr) and how much of them (`-v`).
 *
 * @example
 * ```ts
 * import { silentLogger } from "./log.ts";
 * silentLogger.debug("dropped");
 * ```
 * @module
 */

/** Sink for diagnostic lines. `debug` is for `-v` detail, `info` for one line per event. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** A logger that drops every line. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
};
