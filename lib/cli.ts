/**
 * Command-line plumbing shared by the client and responder entry points: option parsing with
 * one-line usage errors, the options every MQTT command takes, and the stderr logger. The
 * entry points stay thin: parse here, call the library, map errors to exit codes.
 *
 * @example
 * ```ts
 * import { parseCommandLine, UsageError } from "./cli.ts";
 * try {
 *   parseCommandLine(["--port", "x"], { options: {}, positionals: [] });
 * } catch (e) {
 *   if (e instanceof UsageError) console.error(e.message);
 * }
 * ```
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Logger } from "./log.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The version in `deno.json`, printed by `--version`. */
export const VERSION: string = denoJson.version;

/** Exit status of a bad command line (as argparse uses). */
export const EXIT_USAGE = 2;
/** Exit status of a runtime failure. */
export const EXIT_FAILURE = 1;

/** A bad command line; the message is one line saying what is wrong. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options for the broker connection, shared by both commands. */
export const BROKER_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  port: { type: "string", short: "p" },
  host: { type: "string" },
  verbose: { type: "boolean", short: "v" },
  tls: { type: "boolean" },
  cafile: { type: "string" },
  username: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

/** Help lines for {@linkcode BROKER_OPTIONS}, aligned for an argparse-style help text. */
export const BROKER_OPTIONS_HELP = `  -h, --help            show this help message and exit
  --version             show the version and exit
  -p PORT, --port PORT  broker port, 1-65535 (default: 1884)
  --host HOST           broker host name or address (default: localhost)
  -v, --verbose         debug lines with timings on stderr
  --tls                 connect with MQTT over TLS (brokers usually listen on 8883)
  --cafile FILE         PEM file of the CA that signed the broker's certificate (implies --tls)
  --username USER       user name for the broker; the password is read from the
                        MQTT_PASSWORD environment variable, never from the command line`;

/** Broker connection settings, validated. */
export interface BrokerSettings {
  host: string;
  port: number;
  tls: boolean;
  caCerts?: string[];
  username?: string;
  password?: string;
}

/**
 * `parseArgs` in strict mode, with node's multi-line messages turned into one line each.
 * `--` ends options, so a message may start with `-`.
 */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  config: { options: O; positionals: string[] },
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args,
      options: config.options,
      allowPositionals: true,
      strict: true,
    });
    return {
      values: parsed.values as Record<string, string | boolean | undefined>,
      positionals: parsed.positionals,
    };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const option = /'([^']*)'/.exec(e.message ?? "")?.[1] ?? "";
      throw new UsageError(
        `unrecognized option ${option} (to pass a message that starts with '-', put -- before it)`,
      );
    }
    if (/argument is ambiguous/.test(e.message ?? "")) {
      const option = /'([^']*)'/.exec(e.message ?? "")?.[1] ?? "";
      throw new UsageError(
        `option ${option} needs a value (write ${option}=VALUE for one that starts with '-')`,
      );
    }
    if (typeof e.code === "string" && e.code.startsWith("ERR_PARSE_ARGS")) {
      const first = (e.message ?? "bad arguments").split("\n")[0].replace(/\.$/, "");
      throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
    }
    throw error;
  }
}

/** Parses a port: a whole number 1–65535 written in decimal. */
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
 */
export function brokerSettings(
  values: Record<string, string | boolean | undefined>,
): BrokerSettings {
  const host = (values.host as string | undefined) ?? "localhost";
  if (host === "" || /\s/.test(host)) {
    throw new UsageError(`argument --host: invalid host '${host}'`);
  }
  const port = parsePort(values.port as string | undefined, 1884);
  const cafile = values.cafile as string | undefined;
  const settings: BrokerSettings = { host, port, tls: values.tls === true || cafile !== undefined };
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

/** Logger that writes `name: level: message` lines to stderr; `debug` only when verbose. */
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

/** Writes a whole string to a stream (`writeSync` may write only part of it). */
export function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
