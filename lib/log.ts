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

/**
 * Sink for diagnostic lines. `debug` is for `-v` detail, `info` for one line per event.
 *
 * @example
 * ```ts
 * import type { Logger } from "./log.ts";
 * const stderrLogger: Logger = {
 *   debug: () => {}, // without -v
 *   info: (message) => console.error(message),
 *   warn: (message) => console.error(`warning: ${message}`),
 * };
 * ```
 */
export interface Logger {
  /** Detail, shown only with `-v`. */
  debug(message: string): void;
  /** One line per event. */
  info(message: string): void;
  /** Something went wrong and was dealt with (a message dropped, a connection retried). */
  warn(message: string): void;
}

/**
 * A logger that drops every line.
 *
 * @example
 * ```ts
 * import { type Logger, silentLogger } from "./log.ts";
 * const log: Logger = silentLogger; // e.g. the default when the caller passes none
 * log.warn("nobody sees this");
 * ```
 */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
};
