/**
 * `secure_mqtt_responder`: the responding client, as a long-running service. Thin entry point:
 * parse the command line, run {@linkcode Responder} until SIGINT/SIGTERM, map errors to exit
 * codes (2 usage, 1 runtime failure, 0 after a signal).
 *
 * @example
 * ```sh
 * deno task responder -p 1884 -v
 * ```
 * @module
 */

import {
  BROKER_OPTIONS,
  BROKER_OPTIONS_HELP,
  brokerSettings,
  EXIT_FAILURE,
  EXIT_USAGE,
  parseCommandLine,
  reportInternalError,
  stderrLogger,
  UsageError,
  VERSION,
  writeAll,
} from "./lib/cli.ts";
import { loadLabGroup } from "./lib/protocol.ts";
import { DEFAULT_LIMITS, REQUEST_FILTERS, Responder, ResponderError } from "./lib/responder.ts";

const NAME = "secure_mqtt_responder";
const USAGE_HEAD = `usage: ${NAME} `;
const USAGE = `${USAGE_HEAD}[-h] [-p PORT] [--host HOST] [-v] [--tls] [--cafile FILE]\n` +
  `${" ".repeat(USAGE_HEAD.length)}[--username USER] [--version]`;
const IDLE_MINUTES = DEFAULT_LIMITS.sessionIdleMs / 60_000;
const HELP = `${USAGE}

Answers secure_mqtt_client requests for any number of netids: subscribes to
${REQUEST_FILTERS.join(" and ")}, agrees a key per netid by 4096-bit
Diffie-Hellman, and answers each encrypted action request on <netid>/<action>/response.
Runs until SIGINT or SIGTERM; reconnects (with backoff) when the broker goes away.

options:
${BROKER_OPTIONS_HELP}

limits: ${DEFAULT_LIMITS.maxSessions} live sessions (the least recently used evicted first), each
forgotten after ${IDLE_MINUTES} min idle; at most ${DEFAULT_LIMITS.maxPendingKeyExchanges} netids waiting for a key exchange.

exit status: 0 after SIGINT/SIGTERM, 1 runtime failure (reason on stderr), 2 usage error
`;

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (parsed === "help") return writeAll(Deno.stdout, HELP), 0;
  if (parsed === "version") return writeAll(Deno.stdout, `${NAME} ${VERSION}\n`), 0;

  const logger = stderrLogger(NAME, parsed.verbose);
  let responder: Responder;
  try {
    responder = new Responder({ ...parsed.broker, group: loadLabGroup(), logger });
  } catch (error) {
    return fail(error);
  }
  let signalled = false;
  const listeners = addSignalListeners((signal) => {
    // A second signal while shutdown hangs ends the process at once.
    if (signalled) Deno.exit(EXIT_FAILURE);
    signalled = true;
    logger.info(`${signal}: shutting down`);
    void responder.stop();
  });
  try {
    await responder.run();
    const s = responder.stats();
    logger.info(
      `stopped: ${s.keyExchanges} key exchange(s), ${s.answered} answer(s), ` +
        `${s.dropped} dropped message(s)`,
    );
    return 0;
  } catch (error) {
    return fail(error);
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

function addSignalListeners(
  onSignal: (signal: Deno.Signal) => void,
): [Deno.Signal, () => void][] {
  const added: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => onSignal(signal);
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // SIGTERM cannot be listened for on Windows; Ctrl-C (SIGINT) still works there.
    }
  }
  return added;
}

function fail(error: unknown): number {
  if (!(error instanceof ResponderError)) return reportInternalError(NAME, error);
  writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n`);
  return EXIT_FAILURE;
}

function parse(args: string[]) {
  const { values, positionals } = parseCommandLine(args, { options: BROKER_OPTIONS });
  if (values.help) return "help" as const;
  if (values.version) return "version" as const;
  if (positionals.length > 0) {
    throw new UsageError(`unrecognized arguments: ${positionals.join(" ")}`);
  }
  return { broker: brokerSettings(values), verbose: values.verbose === true };
}

if (import.meta.main) Deno.exit(await main(Deno.args).catch((e) => reportInternalError(NAME, e)));
