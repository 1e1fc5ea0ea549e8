/**
 * `secure_mqtt_client`: ask a responding client, through an MQTT broker it does not trust, to
 * transform a text, end-to-end encrypted. Thin entry point: parse the command line, call
 * {@linkcode requestTransform}, map errors to exit codes (2 usage, 1 runtime failure).
 *
 * @example
 * ```sh
 * deno task client alice uppercase "hello world"
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
import { ClientError, requestTransform } from "./lib/client.ts";
import {
  type Action,
  ACTIONS,
  decodeUtf8,
  isAction,
  loadLabGroup,
  MAX_MESSAGE_BYTES,
  topicLevelProblem,
} from "./lib/protocol.ts";

const NAME = "secure_mqtt_client";
const USAGE = `usage: ${NAME} [-h] [-p PORT] [--host HOST] [-v] [--timeout SECONDS] ` +
  `[--tls] [--cafile FILE] [--username USER] [--version] netid action message`;
const HELP = `${USAGE}

End-to-end encrypted request/response over MQTT: agrees a key with a responding client by
4096-bit Diffie-Hellman, sends the message as a Fernet token and prints the decrypted answer.
The broker sees topics and ciphertext only.

positional arguments:
  netid                 your network ID: one MQTT topic level (no '/', '+', '#')
  action                one of: ${ACTIONS.join(", ")}
  message               the text to transform; '-' reads it from standard input;
                        put -- before a message that starts with '-'

options:
${BROKER_OPTIONS_HELP}
  --timeout SECONDS     deadline for the whole exchange (default: 10)

exit status: 0 answer printed, 1 runtime failure (reason on stderr), 2 usage error
`;

const OPTIONS = { ...BROKER_OPTIONS, timeout: { type: "string" } } as const;

async function main(args: string[]): Promise<number> {
  let request;
  try {
    request = await parseRequest(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (request === "help") return writeAll(Deno.stdout, HELP), 0;
  if (request === "version") return writeAll(Deno.stdout, `${NAME} ${VERSION}\n`), 0;

  const logger = stderrLogger(NAME, request.verbose);
  try {
    const answer = await requestTransform({ ...request, group: loadLabGroup(), logger });
    writeAll(Deno.stdout, `${answer}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n`);
    return EXIT_FAILURE;
  }
}

async function parseRequest(args: string[]) {
  const { values, positionals } = parseCommandLine(args, {
    options: OPTIONS,
    unknownOptionHint: "to pass a message that starts with '-', put -- before it",
  });
  if (values.help) return "help" as const;
  if (values.version) return "version" as const;
  const names = ["netid", "action", "message"];
  if (positionals.length < names.length) {
    throw new UsageError(
      `the following arguments are required: ${names.slice(positionals.length).join(", ")}`,
    );
  }
  if (positionals.length > names.length) {
    throw new UsageError(`unrecognized arguments: ${positionals.slice(names.length).join(" ")}`);
  }
  const [netid, action, rawMessage] = positionals;
  const netidProblem = topicLevelProblem(netid);
  if (netidProblem) throw new UsageError(`argument netid: ${netidProblem}`);
  if (!isAction(action)) {
    throw new UsageError(
      `argument action: invalid choice '${action}' (choose from ${ACTIONS.join(", ")})`,
    );
  }
  const timeout = parseTimeout(values.timeout as string | undefined);
  const broker = brokerSettings(values);
  const message = rawMessage === "-" ? await readStdin() : rawMessage;
  const size = new TextEncoder().encode(message).length;
  if (size > MAX_MESSAGE_BYTES) {
    throw new UsageError(
      `argument message: ${size} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
  }
  return {
    ...broker,
    netid,
    action: action as Action,
    message,
    timeoutMs: timeout * 1000,
    verbose: values.verbose === true,
  };
}

/** Seconds as plain decimals (no hex, exponents or spaces), more than 0 and at most a day. */
function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 10;
  const seconds = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0.001 && seconds <= 86_400)) {
    throw new UsageError(
      `argument --timeout: invalid value '${text}' (need seconds, 0.001 to 86400)`,
    );
  }
  return seconds;
}

/** Reads all of stdin as UTF-8, stopping early once it is over the size cap. */
async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES) {
      throw new UsageError(
        `argument message: standard input is over the ${MAX_MESSAGE_BYTES}-byte limit`,
      );
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, at), at += c.length;
  // Kept exact, trailing newline included, as mosquitto_pub -s sends it.
  const message = decodeUtf8(bytes);
  if (message === undefined) {
    throw new UsageError("argument message: standard input is not valid UTF-8");
  }
  return message;
}

if (import.meta.main) Deno.exit(await main(Deno.args).catch((e) => reportInternalError(NAME, e)));
