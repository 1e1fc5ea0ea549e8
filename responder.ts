/**
 * `secure_mqtt_responder`: the responding client, as a long-running service. Parses the
 * command line, runs {@linkcode Responder} until SIGINT or SIGTERM.
 *
 * @module
 */

import { parseArguments, UsageError } from "./lib/cli/args.ts";
import {
  BROKER_OPTIONS,
  BROKER_OPTIONS_HELP,
  brokerFromArgs,
  describeFsError,
} from "./lib/cli/broker_args.ts";
import { EXIT_FAILURE, printErr, printOut, runCommand } from "./lib/cli/command.ts";
import { Identity, IdentityError } from "./lib/identity.ts";
import { stderrLogger } from "./lib/log.ts";
import { loadLabGroup } from "./lib/protocol.ts";
import { DEFAULT_LIMITS, REQUEST_FILTERS, Responder, ResponderError } from "./lib/responder.ts";
import denoJson from "./deno.json" with { type: "json" };

const NAME = "secure_mqtt_responder";
const USAGE_HEAD = `usage: ${NAME} `;
const USAGE =
  `${USAGE_HEAD}[-h] [-p PORT] [--host HOST] [-v] [--url URL] [--tls] [--cafile FILE]\n` +
  `${
    " ".repeat(USAGE_HEAD.length)
  }[--username USER] [--identity FILE] [--new-identity] [--version]`;
const HELP = `${USAGE}

Answers secure_mqtt_client requests for any number of netids: subscribes to
${REQUEST_FILTERS.join(" and ")}, agrees a key per netid by 4096-bit
Diffie-Hellman, and answers each encrypted action request on <netid>/<action>/response.
Runs until SIGINT or SIGTERM; reconnects (with backoff) when the broker goes away.

options:
${BROKER_OPTIONS_HELP}
  --identity FILE       sign every key exchange with this Ed25519 identity (PKCS#8 PEM,
                        e.g. from --new-identity or openssl genpkey -algorithm ed25519);
                        its fingerprint is logged at start: clients pass it to --trust
  --new-identity        print a new identity (PEM) on stdout and its fingerprint on stderr,
                        and exit: secure_mqtt_responder --new-identity > identity.pem

limits: ${DEFAULT_LIMITS.maxSessions} live sessions (the least recently used evicted first), each
forgotten after ${
  DEFAULT_LIMITS.sessionIdleMs / 60_000
} min idle; ${DEFAULT_LIMITS.maxPendingKeyExchanges} netids waiting for a key exchange;
${DEFAULT_LIMITS.maxRequestsInFlight} requests and ${
  DEFAULT_LIMITS.maxBytesInFlight / 1024 / 1024
} MiB in flight, ${DEFAULT_LIMITS.maxRequestsInFlightPerNetid} and ${
  DEFAULT_LIMITS.maxBytesInFlightPerNetid / 1024 / 1024
} MiB per netid.

exit status: 0 after SIGINT/SIGTERM, 1 runtime failure (reason on stderr), 2 usage error
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  identity: { type: "string" },
  "new-identity": { type: "boolean" },
} as const;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(args, OPTIONS);
  if (values.help) return printOut(HELP), 0;
  if (values.version) return printOut(`${NAME} ${denoJson.version}\n`), 0;
  if (positionals.length > 0) {
    throw new UsageError(`unrecognized arguments: ${positionals.join(" ")}`);
  }
  if (values["new-identity"]) {
    const { identity, pem } = await Identity.generate();
    printOut(pem);
    printErr(`${NAME}: new identity ${identity.fingerprint}\n`);
    return 0;
  }
  const broker = brokerFromArgs(values);
  const identity = values.identity === undefined ? undefined : await loadIdentity(values.identity);

  const logger = stderrLogger(NAME, values.verbose === true);
  const responder = new Responder({ broker, group: loadLabGroup(), identity, logger });
  let signalled = false;
  const listeners = onSignals((signal) => {
    // A second signal while shutdown hangs ends the process at once.
    if (signalled) Deno.exit(EXIT_FAILURE);
    signalled = true;
    logger.info(`${signal}: shutting down`);
    void responder.stop();
  });
  try {
    await responder.run();
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  const s = responder.stats();
  logger.info(
    `stopped: ${s.keyExchanges} key exchange(s), ${s.answered} answer(s), ` +
      `${s.dropped} dropped message(s)`,
  );
  return 0;
}

async function loadIdentity(path: string): Promise<Identity> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`argument --identity: cannot read '${path}': ${describeFsError(error)}`, {
      cause: error,
    });
  }
  try {
    return await Identity.fromPem(text);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    throw new UsageError(`argument --identity: ${path} ${error.message}`, { cause: error });
  }
}

function onSignals(handle: (signal: Deno.Signal) => void): [Deno.Signal, () => void][] {
  const added: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => handle(signal);
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // SIGTERM cannot be listened for on Windows; Ctrl-C (SIGINT) still works there.
    }
  }
  return added;
}

if (import.meta.main) {
  Deno.exit(
    await runCommand({ name: NAME, usage: USAGE, failures: [ResponderError], main }, Deno.args),
  );
}
