/**
 * The responder's command line: the lab's broker options (`--help`, `-v`, `-h HOST`,
 * `-p PORT`) first, then the others and the identity options. {@linkcode parseResponderArgs}
 * turns argv into what `Responder` needs, or a {@linkcode UsageError}.
 *
 * @module
 */

import { ACTIONS } from "../lib/protocol/actions.ts";
import type { BrokerOptions } from "../lib/mqtt.ts";
import { DEFAULT_LIMITS, REQUEST_FILTERS } from "../lib/responder/responder.ts";
import { formatUsage, parseArguments, UsageError } from "./args.ts";
import {
  BROKER_OPTIONS,
  brokerFromArgs,
  LAB_OPTIONS_HELP,
  MORE_BROKER_OPTIONS_HELP,
  VERSION_HELP,
} from "./broker_options.ts";

/** The command's name, the prefix of its stderr lines. */
export const RESPONDER_NAME = "secure_mqtt_responder";

/** The usage lines, printed after a usage error and at the top of the help. */
export const RESPONDER_USAGE: string = formatUsage(RESPONDER_NAME, [
  "[--help]",
  "[-v]",
  "[-h HOST]",
  "[-p PORT]",
  "[--url URL]",
  "[--tls]",
  "[--cafile FILE]",
  "[--username USER]",
  "[--identity FILE [--fingerprint]]",
  "[--new-identity FILE]",
  "[--version]",
]);

const L = DEFAULT_LIMITS;
const MiB = 1024 * 1024;
const idleMinutes = L.sessionIdleMs / 60_000;
const inFlight = `${L.maxRequestsInFlight} requests and ${L.maxBytesInFlight / MiB} MiB`;
const perNetid = `${L.maxRequestsInFlightPerNetid} and ${L.maxBytesInFlightPerNetid / MiB} MiB`;

/** What `--help` prints. */
export const RESPONDER_HELP = `${RESPONDER_USAGE}

Answers secure_mqtt_client requests for any number of netids: subscribes to ${REQUEST_FILTERS[0]},
agrees a key per netid by 4096-bit Diffie-Hellman, and answers each encrypted action request
on <netid>/<action>/response. Runs until SIGINT, SIGTERM or SIGHUP; reconnects (with
backoff) when the broker goes away. Each line on stderr starts with its time (UTC); -v adds
a line per session with both keys' fingerprints.

actions answered: ${ACTIONS.join(", ")}

options:
${LAB_OPTIONS_HELP}
${MORE_BROKER_OPTIONS_HELP}
  --identity FILE       sign every key exchange with this Ed25519 identity (PKCS#8 PEM,
                        from --new-identity or openssl genpkey -algorithm ed25519), a
                        regular file only you can read (chmod 600); its fingerprint is
                        logged at start: clients pass it to --trust
  --fingerprint         with --identity: print the identity's fingerprint and exit, for
                        the course page (no broker needed)
  --new-identity FILE   make a new identity in FILE, created with mode 0600 and never
                        over an existing file; print its fingerprint and exit ('-' writes
                        the key to standard output, unless that is a terminal)
${VERSION_HELP}

limits: ${L.maxSessions} live sessions (the least recently used evicted first), each
forgotten after ${idleMinutes} min idle; ${L.maxPendingKeyExchanges} netids waiting for a key exchange;
${inFlight} in flight, ${perNetid} per netid.

exit status: 0 after SIGINT, SIGTERM or SIGHUP, 1 runtime failure (reason on stderr),
2 usage error
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  identity: { type: "string" },
  fingerprint: { type: "boolean" },
  "new-identity": { type: "string" },
} as const;

/** What the command line asks for. */
export type ResponderInvocation =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "new-identity"; file: string }
  | { kind: "fingerprint"; identityFile: string }
  | { kind: "serve"; broker: BrokerOptions; identityFile?: string; verbose: boolean };

/**
 * Parses and checks the responder's arguments. Throws {@linkcode UsageError} with one line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseResponderArgs } from "./responder_options.ts";
 * const serve = parseResponderArgs(["-h", "broker.lab", "-p", "1884", "-v"]);
 * assert.equal(serve.kind === "serve" && serve.broker.host, "broker.lab");
 * ```
 */
export function parseResponderArgs(args: string[]): ResponderInvocation {
  const { values, positionals } = parseArguments(args, OPTIONS);
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (positionals.length > 0) {
    throw new UsageError(`unrecognized arguments: ${positionals.join(" ")}`);
  }
  const newIdentity = values["new-identity"];
  if (newIdentity !== undefined) {
    for (const other of ["identity", "fingerprint"] as const) {
      if (values[other] !== undefined) {
        throw new UsageError(`argument --new-identity: not allowed with --${other}`);
      }
    }
    return { kind: "new-identity", file: newIdentity };
  }
  if (values.fingerprint) {
    if (values.identity === undefined) {
      throw new UsageError("argument --fingerprint: needs --identity FILE (whose fingerprint)");
    }
    return { kind: "fingerprint", identityFile: values.identity };
  }
  return {
    kind: "serve",
    broker: brokerFromArgs(values),
    identityFile: values.identity,
    verbose: values.verbose === true,
  };
}
