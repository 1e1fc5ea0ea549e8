/**
 * The command line of `secure_mqtt_check`, as a pure function of argv: what to check (a client
 * command, a responder command, or a responder already on a broker), which cases, and how to
 * report. Everything before the first `--` is the checker's; everything after it is the
 * command under test, passed on untouched.
 *
 * @module
 */

import { casesOf, globPattern, type Mode } from "../lib/check/cases.ts";
import { FingerprintError, parseFingerprint } from "../lib/crypto/fingerprint.ts";
import { parseArguments, UsageError } from "./args.ts";

/** What every run takes. */
export interface CheckRunOptions {
  quick: boolean;
  json: boolean;
  /** Where to write JUnit XML, if anywhere. */
  junit?: string;
  /** `--only` patterns: run only the cases whose id matches one. */
  only: string[];
  /** The longest one run of a program under test (client mode), or its start (responder). */
  deadlineMs: number;
  /** The longest the checker waits for one expected message from a responder. */
  waitMs: number;
  verbose: boolean;
  /** The options that pass the broker's host and port to the program under test. */
  hostFlag?: string;
  portFlag: string;
}

/** A parsed command line. */
export type CheckCommand =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "list"; mode?: Mode }
  | { kind: "client"; command: string[]; options: CheckRunOptions }
  | {
    kind: "responder";
    /** The responder to start on the checker's own broker, or... */
    command?: string[];
    /** ...the broker where one is already running. */
    broker?: { host: string; port: number };
    /** Fingerprints its identity must have (the authenticated extension). */
    trust: string[];
    /** The netid it serves, if it serves only one. */
    netid?: string;
    options: CheckRunOptions;
  };

/** The checker's name on the command line. */
export const CHECK_NAME = "secure_mqtt_check";

/** The usage lines. */
export const CHECK_USAGE = `usage: ${CHECK_NAME} client    [options] -- COMMAND [ARGS...]
       ${CHECK_NAME} responder [options] [-h HOST] [-p PORT]
       ${CHECK_NAME} responder [options] -- COMMAND [ARGS...]
       ${CHECK_NAME} [client|responder] --list`;

/** The help text. */
export const CHECK_HELP = `${CHECK_USAGE}

Conformance checks for an implementation of the secure MQTT lab, in any language.

  client      runs COMMAND ARGS... -h HOST -p PORT NETID ACTION MESSAGE once or twice per
              case against the checker's own broker and responder, and judges its exit
              status, stdout, stderr and the packets it sent
  responder   plays clients against a responder: one already on the broker -h HOST -p PORT
              (default localhost:1884), or COMMAND ARGS... -h HOST -p PORT, started on the
              checker's own broker

options:
  --help                show this help message and exit
  --version             show the version and exit
  --list                list the cases (id, level, what each checks) and exit
  --quick               only the quick cases (no zero-lead hunt, no waiting for deadlines)
  --only PATTERN        only the cases whose id matches PATTERN (* is a wildcard, e.g.
                        'client.kx.*'); may be given more than once
  --json                the report as JSON on stdout, instead of the table
  --junit FILE          also write the report as JUnit XML to FILE
  --deadline SECONDS    the longest one run of a client may take, and a responder to
                        start (default: 30); a client still running then "hangs"
  --wait SECONDS        the longest the checker waits for one message from a responder
                        (default: 10)
  --host-flag OPTION    how the program under test takes the broker's host (default: -h;
                        a client that fails with -h but works with --host is run with
                        --host for the other cases)
  --port-flag OPTION    how it takes the broker's port (default: -p)
  -v, --verbose         progress and each command run, on stderr
responder options:
  -h HOST, --host HOST  the broker of a running responder (default: localhost)
  -p PORT, --port PORT  its port (default: 1884)
  --netid NETID         the netid the responder serves, if it serves only one
  --trust FINGERPRINT   the responder's identity (SHA256:<64 hex digits>): its step 2b
                        signature and bound tokens are then required; may be repeated

exit status: 0 every required case passed, 1 a required case failed, 2 usage error
`;

const OPTIONS = {
  help: { type: "boolean" },
  version: { type: "boolean" },
  list: { type: "boolean" },
  quick: { type: "boolean" },
  only: { type: "string", multiple: true },
  json: { type: "boolean" },
  junit: { type: "string" },
  deadline: { type: "string" },
  wait: { type: "string" },
  "host-flag": { type: "string" },
  "port-flag": { type: "string" },
  verbose: { type: "boolean", short: "v" },
  host: { type: "string", short: "h" },
  port: { type: "string", short: "p" },
  netid: { type: "string" },
  trust: { type: "string", multiple: true },
} as const;

const MODES: readonly Mode[] = ["client", "responder"];

/**
 * Parses the checker's command line. Throws {@linkcode UsageError} with a one-line reason.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCheckArgs } from "./check_args.ts";
 * const parsed = parseCheckArgs(["client", "--quick", "--", "python3", "client.py"]);
 * assert.equal(parsed.kind, "client");
 * if (parsed.kind === "client") {
 *   assert.deepEqual(parsed.command, ["python3", "client.py"]);
 *   assert.equal(parsed.options.quick, true);
 * }
 * ```
 */
export function parseCheckArgs(argv: readonly string[]): CheckCommand {
  const split = argv.indexOf("--");
  const ours = split === -1 ? [...argv] : argv.slice(0, split);
  const command = split === -1 ? undefined : argv.slice(split + 1);
  const { values, positionals } = parseArguments(ours, OPTIONS);
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (positionals.length > 1) {
    throw new UsageError(
      `unrecognized arguments: ${positionals.slice(1).join(" ")} (put the command under ` +
        "test after --)",
    );
  }
  const mode = positionals[0];
  if (mode !== undefined && !(MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`argument mode: invalid choice '${mode}' (choose from client, responder)`);
  }
  if (values.list) {
    return mode === undefined ? { kind: "list" } : { kind: "list", mode: mode as Mode };
  }
  if (mode === undefined) {
    throw new UsageError("the following arguments are required: mode (client or responder)");
  }
  if (command !== undefined && command.length === 0) {
    throw new UsageError("nothing after --: give the command to check (e.g. -- python3 client.py)");
  }
  const options: CheckRunOptions = {
    quick: values.quick === true,
    json: values.json === true,
    junit: nonEmpty(values.junit, "--junit"),
    only: onlyPatterns(values.only ?? [], mode as Mode),
    deadlineMs: secondsOf(values.deadline, "--deadline", 30) * 1000,
    waitMs: secondsOf(values.wait, "--wait", 10) * 1000,
    verbose: values.verbose === true,
    hostFlag: flag(values["host-flag"], "--host-flag"),
    portFlag: flag(values["port-flag"], "--port-flag") ?? "-p",
  };
  if (mode === "client") {
    for (const name of ["host", "port", "netid", "trust"] as const) {
      if (values[name] !== undefined) {
        throw new UsageError(
          `argument ${
            name === "host" || name === "port" ? `-${name[0]}/--${name}` : `--${name}`
          }: ` +
            "only for responder mode (the client is given the checker's own broker)",
        );
      }
    }
    if (command === undefined) {
      throw new UsageError(
        "client mode needs the client's command after -- (e.g. -- python3 client.py)",
      );
    }
    return { kind: "client", command, options };
  }
  const trust = (values.trust ?? []).map((text) => {
    try {
      return parseFingerprint(text);
    } catch (error) {
      if (!(error instanceof FingerprintError)) throw error;
      throw new UsageError(`argument --trust: ${error.message}`, { cause: error });
    }
  });
  const netid = values.netid;
  if (netid !== undefined && (netid === "" || /[/+#\0]/.test(netid))) {
    throw new UsageError("argument --netid: must be one topic level (no '/', '+', '#')");
  }
  if (command !== undefined) {
    if (values.host !== undefined || values.port !== undefined) {
      throw new UsageError(
        "give either -h/-p (a responder already running) or -- COMMAND (one to start), not both",
      );
    }
    return { kind: "responder", command, trust, netid, options };
  }
  const host = values.host ?? "localhost";
  if (host === "") throw new UsageError("argument -h/--host: must not be empty");
  return {
    kind: "responder",
    broker: { host, port: portOf(values.port) },
    trust,
    netid,
    options,
  };
}

function portOf(text: string | undefined): number {
  if (text === undefined) return 1884;
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new UsageError(`argument -p/--port: invalid port '${text}' (need 1-65535)`);
  }
  return port;
}

function secondsOf(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(value >= 0.1 && value <= 3600)) {
    throw new UsageError(`argument ${name}: invalid value '${text}' (need seconds, 0.1 to 3600)`);
  }
  return value;
}

function nonEmpty(text: string | undefined, name: string): string | undefined {
  if (text === "") throw new UsageError(`argument ${name}: must not be empty`);
  return text;
}

function flag(text: string | undefined, name: string): string | undefined {
  if (text === undefined) return undefined;
  if (!/^--?[A-Za-z0-9][A-Za-z0-9_-]*$/.test(text)) {
    throw new UsageError(`argument ${name}: '${text}' is not an option (e.g. --host)`);
  }
  return text;
}

function onlyPatterns(patterns: string[], mode: Mode): string[] {
  const ids = casesOf(mode).map((c) => c.id);
  for (const pattern of patterns) {
    const re = globPattern(pattern);
    if (!ids.some((id) => re.test(id))) {
      throw new UsageError(`argument --only: '${pattern}' matches no ${mode} case (see --list)`);
    }
  }
  return patterns;
}
