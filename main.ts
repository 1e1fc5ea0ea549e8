/**
 * `secure_mqtt_client`: ask a responding client, through an MQTT broker it does not trust, to
 * transform a text, end-to-end encrypted. Parses the command line, calls
 * {@linkcode requestTransform}, prints the answer.
 *
 * @module
 */

import { type Action, ACTIONS, isAction } from "./lib/actions.ts";
import { parseArguments, UsageError } from "./lib/cli/args.ts";
import { BROKER_OPTIONS, BROKER_OPTIONS_HELP, brokerFromArgs } from "./lib/cli/broker_args.ts";
import { printOut, runCommand } from "./lib/cli/command.ts";
import { ClientError, requestTransform } from "./lib/client.ts";
import { FingerprintError, parseFingerprint } from "./lib/identity.ts";
import { stderrLogger } from "./lib/log.ts";
import { loadLabGroup, MAX_MESSAGE_BYTES, topicLevelProblem } from "./lib/protocol.ts";
import { decodeUtf8 } from "./lib/utf8.ts";
import denoJson from "./deno.json" with { type: "json" };

const NAME = "secure_mqtt_client";
const USAGE = `usage: ${NAME} [-h] [-p PORT] [--host HOST] [-v] [--timeout SECONDS] [--url URL] ` +
  `[--tls] [--cafile FILE] [--username USER] [--trust FINGERPRINT] [--version] ` +
  `netid action message`;
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
  --trust FINGERPRINT   accept only a key exchange signed by the responder identity with
                        this fingerprint (SHA256:<64 hex digits>, as the responder's operator
                        publishes it); may be given more than once

exit status: 0 answer printed, 1 runtime failure (reason on stderr), 2 usage error
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  timeout: { type: "string" },
  trust: { type: "string", multiple: true },
} as const;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(
    args,
    OPTIONS,
    "to pass a message that starts with '-', put -- before it",
  );
  if (values.help) return printOut(HELP), 0;
  if (values.version) return printOut(`${NAME} ${denoJson.version}\n`), 0;

  const names = ["netid", "action", "message"];
  if (positionals.length < names.length) {
    const missing = names.slice(positionals.length).join(", ");
    throw new UsageError(`the following arguments are required: ${missing}`);
  }
  if (positionals.length > names.length) {
    throw new UsageError(`unrecognized arguments: ${positionals.slice(names.length).join(" ")}`);
  }
  const [netid, action, text] = positionals;
  const netidProblem = topicLevelProblem(netid);
  if (netidProblem) throw new UsageError(`argument netid: ${netidProblem}`);
  if (!isAction(action)) {
    throw new UsageError(
      `argument action: invalid choice '${action}' (choose from ${ACTIONS.join(", ")})`,
    );
  }
  const timeoutMs = parseTimeout(values.timeout) * 1000;
  const trust = (values.trust ?? []).map(parseTrust);
  const broker = brokerFromArgs(values);
  const message = text === "-" ? await readStdin() : text;
  const size = new TextEncoder().encode(message).length;
  if (size > MAX_MESSAGE_BYTES) {
    throw new UsageError(
      `argument message: ${size} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
  }

  const answer = await requestTransform({
    broker,
    netid,
    action: action satisfies Action,
    message,
    timeoutMs,
    trust,
    group: loadLabGroup(),
    logger: stderrLogger(NAME, values.verbose === true),
  });
  printOut(`${answer}\n`);
  return 0;
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

function parseTrust(text: string): string {
  try {
    return parseFingerprint(text);
  } catch (error) {
    if (!(error instanceof FingerprintError)) throw error;
    throw new UsageError(`argument --trust: ${error.message}`, { cause: error });
  }
}

/** All of stdin as UTF-8, kept exact (a trailing newline too, as mosquitto_pub -s sends it). */
async function readStdin(): Promise<string> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
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
  const message = decodeUtf8(await new Blob(chunks).bytes());
  if (message === undefined) {
    throw new UsageError("argument message: standard input is not valid UTF-8");
  }
  return message;
}

if (import.meta.main) {
  Deno.exit(
    await runCommand({ name: NAME, usage: USAGE, failures: [ClientError], main }, Deno.args),
  );
}
