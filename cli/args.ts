/**
 * Command-line parsing for the entry points: `node:util` `parseArgs` (strict, positionals
 * allowed), with its errors turned into one-line usage errors. `jsr:@std/cli` would be the
 * first choice; JSR is not reachable where this project is built, and `node:util` is.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A bad command line; the message is one line saying what is wrong (exit status 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * `parseArgs({ args, options, strict: true, allowPositionals: true })`, with a failure
 * reported as a {@linkcode UsageError} that names the offending option. `unknownOptionHint` is
 * appended to "unrecognized option X", e.g. how to pass a positional that starts with `-`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArguments, UsageError } from "./args.ts";
 * const options = { port: { type: "string", short: "p" } } as const;
 * const { values, positionals } = parseArguments(["-p", "8883", "alice"], options);
 * assert.equal(values.port, "8883");
 * assert.deepEqual(positionals, ["alice"]);
 * assert.throws(() => parseArguments(["--nope"], options), UsageError);
 * ```
 */
export function parseArguments<T extends ParseArgsOptionsConfig>(
  args: string[],
  options: T,
  unknownOptionHint?: string,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) throw error;
    throw new UsageError(describeProblem(args, options, unknownOptionHint), { cause: error });
  }
}

/**
 * Which option the strict parse refused, and why. The same arguments parsed leniently give the
 * tokens the strict parse saw; they are checked here in node's order (each option token: is it
 * known, has it the value its type wants, is that value an option in disguise).
 */
function describeProblem(
  args: string[],
  options: ParseArgsOptionsConfig,
  unknownOptionHint: string | undefined,
): string {
  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const { rawName, value, inlineValue } = token;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined) {
      return `unrecognized option ${rawName}${unknownOptionHint ? ` (${unknownOptionHint})` : ""}`;
    }
    if (option.type === "boolean" && value !== undefined) return `option ${rawName} takes no value`;
    if (option.type === "string" && value === undefined) return `option ${rawName} needs a value`;
    if (option.type === "string" && !inlineValue && value!.length > 1 && value!.startsWith("-")) {
      return `option ${rawName} needs a value (write --${token.name}=VALUE for one that starts with '-')`;
    }
  }
  return "invalid arguments";
}

/**
 * A usage line as argparse wraps it: `usage: NAME`, the options and the positionals; when
 * that is wider than `width`, the options wrap, indented under the first, and the positionals
 * get a line of their own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatUsage } from "./args.ts";
 * assert.equal(formatUsage("tool", ["[--help]", "[-v]"], "NAME"), "usage: tool [--help] [-v] NAME");
 * assert.equal(
 *   formatUsage("tool", ["[--help]", "[-v]"], "NAME", 25),
 *   "usage: tool [--help] [-v]\n            NAME",
 * );
 * ```
 */
export function formatUsage(
  name: string,
  options: readonly string[],
  positionals = "",
  width = 80,
): string {
  const head = `usage: ${name}`;
  const oneLine = [head, ...options, positionals].filter((part) => part !== "").join(" ");
  if (oneLine.length <= width) return oneLine;
  const indent = " ".repeat(head.length + 1);
  const lines = [head];
  for (const option of options) {
    const last = lines.length - 1;
    if (lines[last].length + 1 + option.length <= width || lines[last] === head) {
      lines[last] += ` ${option}`;
    } else {
      lines.push(indent + option);
    }
  }
  if (positionals !== "") lines.push(indent + positionals);
  return lines.join("\n");
}
