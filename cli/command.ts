/**
 * How every entry point ends: exit status 0 with the answer on stdout, 2 with one reason line
 * and the usage line for a bad command line, 1 with one line for a runtime failure. An error
 * the command did not expect (a bug, the platform failing) is still one line and exit 1, never
 * a stack trace, which could carry key material.
 *
 * @module
 */

import { errorLine } from "../lib/log.ts";
import { timestamp, writeAllSync } from "./logger.ts";
import { UsageError } from "./args.ts";

/** Exit status of a bad command line (as argparse uses). */
export const EXIT_USAGE = 2;
/** Exit status of a runtime failure. */
export const EXIT_FAILURE = 1;

/** What a command is, for {@linkcode runCommand}. */
export interface Command {
  /** Its name, the prefix of every line it writes to stderr. */
  name: string;
  /** The usage line(s), printed after a usage error. */
  usage: string;
  /** Error classes whose message is a user-facing one-line reason (exit 1). */
  failures: (abstract new (...args: never[]) => Error)[];
  /**
   * The line of a runtime failure starts with its time, as the lines of a service's logger do
   * (cli/logger.ts). A usage error never does: it answers whoever typed the command.
   */
  timestamps?: boolean;
  /** Does the work; returns the exit status. */
  main(args: string[]): Promise<number>;
}

const encoder = new TextEncoder();

/** Writes `text` to stdout, all of it. */
export function printOut(text: string): void {
  writeAllSync(Deno.stdout, encoder.encode(text));
}

/** Writes `text` to stderr, all of it; a closed stderr loses the text, nothing else. */
export function printErr(text: string): void {
  try {
    writeAllSync(Deno.stderr, encoder.encode(text));
  } catch {
    // Nobody reads stderr any more: the exit status is all that is left to say.
  }
}

/**
 * Runs `command.main` and maps how it ends to an exit status, writing the one line a failure
 * deserves. Returns the status; the entry point exits with it.
 */
export async function runCommand(command: Command, args: string[]): Promise<number> {
  try {
    return await command.main(args);
  } catch (error) {
    if (error instanceof UsageError) {
      printErr(`${command.name}: error: ${error.message}\n${command.usage}\n`);
      return EXIT_USAGE;
    }
    const stamp = command.timestamps ? timestamp() : "";
    if (command.failures.some((failure) => error instanceof failure)) {
      printErr(`${stamp}${command.name}: error: ${(error as Error).message}\n`);
      return EXIT_FAILURE;
    }
    const detail = error instanceof Error ? `${error.name}: ${errorLine(error)}` : String(error);
    printErr(`${stamp}${command.name}: internal error: ${detail}\n`);
    return EXIT_FAILURE;
  }
}
