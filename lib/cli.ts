/**
 * Command-line plumbing shared by the client and responder entry points: option parsing with
 * one-line usage errors, the options every MQTT command takes, and the stderr logger. The
 * entry points stay thin: parse here, call the library, map errors to exit codes.
 *
 * @example
 * ```ts
 * import { parseCommandLine, UsageError } from "./cli.ts";
 * try {
 *   parseCommandLine(["--port", "x"], { options: {} });
 * } catch (e) {
 *   if (e instanceof UsageError) console.error(e.message);
 * }
 * ```
 * @module
 */

import type { Logger } from "./log.ts";
import type { BrokerOptions } from "./mqtt.ts";
import denoJson from "../deno.json" with { type: "json" };

/**
 * The version in `deno.json`, printed by `--version`.
 *
 * @example
 * ```ts
 * import { VERSION } from "./cli.ts";
 * console.log(`secure_mqtt_client ${VERSION}`);
 * ```
 */
export const VERSION: string = denoJson.version;

/**
 * Exit status of a bad command line (as argparse uses).
 *
 * @example
 * ```ts
 * import { EXIT_USAGE, parsePort, UsageError } from "./cli.ts";
 * try {
 *   parsePort("0", 1884);
 * } catch (e) {
 *   if (e instanceof UsageError) Deno.exitCode = EXIT_USAGE;
 * }
 * ```
 */
export const EXIT_USAGE = 2;
/**
 * Exit status of a runtime failure.
 *
 * @example
 * ```ts
 * import { EXIT_FAILURE } from "./cli.ts";
 * import { ClientError } from "./client.ts";
 * const error: unknown = new ClientError("connection to localhost:1884 closed");
 * if (error instanceof ClientError) Deno.exitCode = EXIT_FAILURE;
 * ```
 */
export const EXIT_FAILURE = 1;

/**
 * A bad command line; the message is one line saying what is wrong.
 *
 * @example
 * ```ts
 * import { UsageError } from "./cli.ts";
 * throw new UsageError("argument netid: must not contain '/'");
 * ```
 */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Options for the broker connection, shared by both commands.
 *
 * @example
 * ```ts
 * import { BROKER_OPTIONS, parseCommandLine } from "./cli.ts";
 * const options = { ...BROKER_OPTIONS, timeout: { type: "string" } } as const;
 * const { values } = parseCommandLine(["-p", "8883", "--tls"], { options });
 * // values: { port: "8883", tls: true }
 * ```
 */
export const BROKER_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  port: { type: "string", short: "p" },
  host: { type: "string" },
  verbose: { type: "boolean", short: "v" },
  tls: { type: "boolean" },
  cafile: { type: "string" },
  username: { type: "string" },
} as const satisfies OptionsConfig;

/**
 * Help lines for {@linkcode BROKER_OPTIONS}, aligned for an argparse-style help text.
 *
 * @example
 * ```ts
 * import { BROKER_OPTIONS_HELP } from "./cli.ts";
 * const help = `usage: responder [-h] [-p PORT] [--host HOST]
 *
 * options:
 * ${BROKER_OPTIONS_HELP}
 * `;
 * ```
 */
export const BROKER_OPTIONS_HELP = `  -h, --help            show this help message and exit
  --version             show the version and exit
  -p PORT, --port PORT  broker port, 1-65535 (default: 1884)
  --host HOST           broker host name or address (default: localhost)
  -v, --verbose         debug lines with timings on stderr
  --tls                 connect with MQTT over TLS (brokers usually listen on 8883)
  --cafile FILE         PEM file of the CA that signed the broker's certificate (implies --tls)
  --username USER       user name for the broker; the password is read from the
                        MQTT_PASSWORD environment variable, never from the command line`;

/**
 * One option, as `node:util` `parseArgs` describes it (the subset we use).
 *
 * @example
 * ```ts
 * import type { OptionConfig } from "./cli.ts";
 * const timeout: OptionConfig = { type: "string", short: "t" };
 * ```
 */
export interface OptionConfig {
  type: "boolean" | "string";
  short?: string;
}

/**
 * Options by long name.
 *
 * @example
 * ```ts
 * import type { OptionsConfig } from "./cli.ts";
 * const options = { quiet: { type: "boolean", short: "q" } } as const satisfies OptionsConfig;
 * ```
 */
export type OptionsConfig = Record<string, OptionConfig>;

/**
 * `node:util` `parseArgs` in strict mode with positionals allowed, with node's multi-line
 * messages turned into one line each. `--` ends options, so a message may start with `-`.
 *
 * Our own implementation of exactly those semantics (long, `--name=value`, short, `-pVALUE`,
 * short groups, last one wins, node's errors in node's order): importing `node:util` costs
 * about 15 ms of start-up (its extension scripts load on first use), paid on every run of a
 * command that lives for a few hundred ms.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./cli.ts";
 * const { values, positionals } = parseCommandLine(["-vp1884", "alice"], {
 *   options: {
 *     verbose: { type: "boolean", short: "v" },
 *     port: { type: "string", short: "p" },
 *   },
 * });
 * // values: { verbose: true, port: "1884" }, positionals: ["alice"]
 * ```
 */
export function parseCommandLine<O extends OptionsConfig>(
  args: string[],
  config: {
    options: O;
    /** Appended to "unrecognized option X", e.g. how to pass a positional that starts with -. */
    unknownOptionHint?: string;
  },
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseStrict(args, config.options);
  } catch (error) {
    if (!(error instanceof ParseArgsError)) throw error;
    const e = error;
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const option = /'([^']*)'/.exec(e.message ?? "")?.[1] ?? "";
      const hint = config.unknownOptionHint ? ` (${config.unknownOptionHint})` : "";
      throw new UsageError(`unrecognized option ${option}${hint}`);
    }
    if (/argument is ambiguous/.test(e.message ?? "")) {
      const option = /'([^']*)'/.exec(e.message ?? "")?.[1] ?? "";
      throw new UsageError(
        `option ${option} needs a value (write ${option}=VALUE for one that starts with '-')`,
      );
    }
    const first = (e.message ?? "bad arguments").split("\n")[0].replace(/\.$/, "");
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
}

/** node's ERR_PARSE_ARGS_* errors: the same codes and message texts. */
class ParseArgsError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface OptionToken {
  name: string;
  rawName: string;
  value: string | undefined;
  inlineValue: boolean;
}

/**
 * node's `parseArgs({ args, options, strict: true, allowPositionals: true })`, step for step
 * (lib/internal/util/parse_args/parse_args.js): the arguments are first split into tokens,
 * then each option token is checked and stored in order, so the first bad one is reported.
 */
function parseStrict(
  args: string[],
  options: OptionsConfig,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const own = (name: string): OptionConfig | undefined =>
    Object.hasOwn(options, name) ? options[name] : undefined;
  const longFor = (short: string): string => {
    for (const [name, option] of Object.entries(options)) {
      if (option.short === short) return name;
    }
    return short;
  };
  const isString = (name: string) => own(name)?.type === "string";

  const tokens: (OptionToken | { positional: string })[] = [];
  const remaining = [...args];
  while (remaining.length > 0) {
    const arg = remaining.shift()!;
    if (arg === "--") {
      for (const rest of remaining) tokens.push({ positional: rest });
      break;
    }
    const shortForm = arg.length > 1 && arg[0] === "-" && arg[1] !== "-";
    if (shortForm && arg.length === 2) { // -p, -v
      const name = longFor(arg[1]);
      const value = isString(name) && remaining.length > 0 ? remaining.shift() : undefined;
      tokens.push({ name, rawName: arg, value, inlineValue: false });
    } else if (shortForm && !isString(longFor(arg[1]))) { // group: -vh, -vpVALUE
      const expanded: string[] = [];
      for (let i = 1; i < arg.length; i++) {
        if (!isString(longFor(arg[i])) || i === arg.length - 1) {
          expanded.push(`-${arg[i]}`);
        } else {
          expanded.push(`-${arg.slice(i)}`);
          break;
        }
      }
      remaining.unshift(...expanded);
    } else if (shortForm) { // -pVALUE
      const name = longFor(arg[1]);
      tokens.push({ name, rawName: `-${arg[1]}`, value: arg.slice(2), inlineValue: true });
    } else if (arg.length > 2 && arg.startsWith("--") && !arg.includes("=", 3)) { // --port
      const name = arg.slice(2);
      const value = isString(name) && remaining.length > 0 ? remaining.shift() : undefined;
      tokens.push({ name, rawName: arg, value, inlineValue: false });
    } else if (arg.length > 2 && arg.startsWith("--")) { // --port=VALUE
      const at = arg.indexOf("=");
      const name = arg.slice(2, at);
      tokens.push({ name, rawName: `--${name}`, value: arg.slice(at + 1), inlineValue: true });
    } else {
      tokens.push({ positional: arg });
    }
  }

  const values: Record<string, string | boolean | undefined> = Object.create(null);
  const positionals: string[] = [];
  for (const token of tokens) {
    if ("positional" in token) {
      positionals.push(token.positional);
      continue;
    }
    const option = own(token.name);
    if (option === undefined) {
      throw new ParseArgsError(
        "ERR_PARSE_ARGS_UNKNOWN_OPTION",
        `Unknown option '${token.rawName}'. To specify a positional argument starting with a ` +
          `'-', place it at the end of the command after '--', as in '-- ${
            JSON.stringify(token.rawName)
          }`,
      );
    }
    const shortAndLong = `${option.short ? `-${option.short}, ` : ""}--${token.name}`;
    if (option.type === "string" && typeof token.value !== "string") {
      throw new ParseArgsError(
        "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
        `Option '${shortAndLong} <value>' argument missing`,
      );
    }
    if (option.type === "boolean" && token.value != null) {
      throw new ParseArgsError(
        "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
        `Option '${shortAndLong}' does not take an argument`,
      );
    }
    if (
      !token.inlineValue && token.value !== undefined && token.value.length > 1 &&
      token.value[0] === "-"
    ) {
      const example = token.rawName.startsWith("--")
        ? `'${token.rawName}=-XYZ'`
        : `'--${token.name}=-XYZ' or '${token.rawName}-XYZ'`;
      throw new ParseArgsError(
        "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
        `Option '${token.rawName}' argument is ambiguous.\nDid you forget to specify the ` +
          `option argument for '${token.rawName}'?\nTo specify an option argument starting ` +
          `with a dash use ${example}.`,
      );
    }
    if (token.name !== "__proto__") values[token.name] = token.value ?? true;
  }
  return { values, positionals };
}

/**
 * Parses a port: a whole number 1–65535 written in decimal.
 *
 * @example
 * ```ts
 * import { parsePort } from "./cli.ts";
 * parsePort(undefined, 1884); // 1884
 * parsePort("8883", 1884); // 8883
 * ```
 */
export function parsePort(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new UsageError(`argument -p/--port: invalid port '${text}' (need an integer 1-65535)`);
  }
  return port;
}

/**
 * Validates the broker options and reads what they point at: the CA file, and the password
 * from `MQTT_PASSWORD` (kept off the command line, where `ps` would show it to everyone).
 *
 * @example
 * ```ts
 * import { brokerSettings } from "./cli.ts";
 * brokerSettings({ host: "broker.lab", port: "8883", tls: true });
 * // { host: "broker.lab", port: 8883, tls: true }
 * ```
 */
export function brokerSettings(
  values: Record<string, string | boolean | undefined>,
): BrokerOptions {
  const host = (values.host as string | undefined) ?? "localhost";
  if (host === "" || /\s/.test(host)) {
    throw new UsageError(`argument --host: invalid host '${host}'`);
  }
  const port = parsePort(values.port as string | undefined, 1884);
  const cafile = values.cafile as string | undefined;
  const settings: BrokerOptions = { host, port, tls: values.tls === true || cafile !== undefined };
  if (cafile !== undefined) {
    try {
      settings.caCerts = [Deno.readTextFileSync(cafile)];
    } catch (error) {
      throw new UsageError(`argument --cafile: cannot read '${cafile}': ${describeFsError(error)}`);
    }
  }
  const username = values.username as string | undefined;
  if (username !== undefined) {
    settings.username = username;
    settings.password = readPasswordEnv();
  }
  return settings;
}

function readPasswordEnv(): string | undefined {
  try {
    return Deno.env.get("MQTT_PASSWORD");
  } catch {
    return undefined; // no env permission: connect without a password, as if unset
  }
}

function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return "not allowed (grant it with --allow-read=FILE)";
  }
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}

/**
 * Logger that writes `name: level: message` lines to stderr; `debug` only when verbose.
 *
 * @example
 * ```ts
 * import { stderrLogger } from "./cli.ts";
 * const log = stderrLogger("responder", false);
 * log.warn("dropped a message"); // "responder: warning: dropped a message"
 * log.debug("not shown: verbose is off");
 * ```
 */
export function stderrLogger(name: string, verbose: boolean): Logger {
  const write = (level: string, message: string) => {
    writeAll(Deno.stderr, `${name}: ${level}${message}\n`);
  };
  return {
    debug: verbose ? (m) => write("debug: ", m) : () => {},
    info: (m) => write("", m),
    warn: (m) => write("warning: ", m),
  };
}

/**
 * The last resort of an entry point: an error that is not one of ours (a bug, or the platform
 * failing) still becomes one line on stderr and exit status 1, never a stack trace, which
 * could carry key material.
 *
 * @example
 * ```ts
 * import { reportInternalError } from "./cli.ts";
 * const main = (): Promise<number> => Promise.reject(new TypeError("bug"));
 * const code = await main().catch((e) => reportInternalError("tool", e)); // 1
 * ```
 */
export function reportInternalError(name: string, error: unknown): number {
  const detail = error instanceof Error
    ? `${error.name}: ${error.message.split("\n")[0]}`
    : String(error);
  try {
    writeAll(Deno.stderr, `${name}: internal error: ${detail}\n`);
  } catch {
    // stderr itself is gone: the exit status is all that is left.
  }
  return EXIT_FAILURE;
}

/**
 * Writes a whole string to a stream (`writeSync` may write only part of it).
 *
 * @example
 * ```ts
 * import { writeAll } from "./cli.ts";
 * writeAll(Deno.stdout, "an answer of any length\n");
 * ```
 */
export function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
