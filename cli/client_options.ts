/**
 * The client's command line. It starts with the lab's usage pattern, which graders and
 * classmates call it by, `[--help] [-v] [-h HOST] [-p PORT] NETID ACTION MESSAGE`, and our own
 * options follow. {@linkcode parseClientArgs} turns argv into what `requestTransform` needs,
 * or a {@linkcode UsageError}; it reads nothing but `--cafile` and `MQTT_PASSWORD`, so it is
 * tested in-process.
 *
 * @module
 */

import type { BrokerOptions } from "../lib/mqtt.ts";
import { FingerprintError, parseFingerprint } from "../lib/crypto/fingerprint.ts";
import {
  actionProblem,
  clientIdProblem,
  MAX_TIMEOUT_MS,
  messageProblem,
  MIN_TIMEOUT_MS,
  netidProblem,
  timeoutProblem,
} from "../lib/client/options.ts";
import { MAX_MESSAGE_BYTES } from "../lib/protocol/limits.ts";
import { decodeUtf8 } from "../lib/utf8.ts";
import { formatUsage, parseArguments, UsageError } from "./args.ts";
import {
  BROKER_OPTIONS,
  brokerFromArgs,
  LAB_OPTIONS_HELP,
  MORE_BROKER_OPTIONS_HELP,
  VERSION_HELP,
} from "./broker_options.ts";

/** The command's name, the prefix of its stderr lines. */
export const CLIENT_NAME = "secure_mqtt_client";

/** The usage lines, printed after a usage error and at the top of the help. */
export const CLIENT_USAGE: string = formatUsage(CLIENT_NAME, [
  "[--help]",
  "[-v]",
  "[-h HOST]",
  "[-p PORT]",
  "[-i ID]",
  "[--timeout SECONDS]",
  "[--url URL]",
  "[--tls]",
  "[--cafile FILE]",
  "[--username USER]",
  "[--trust FINGERPRINT]",
  "[--version]",
], "NETID ACTION MESSAGE");

/** Seconds the whole exchange may take when `--timeout` is not given. */
export const DEFAULT_TIMEOUT_SECONDS = 10;

/** What `--help` prints. */
export const CLIENT_HELP = `${CLIENT_USAGE}

End-to-end encrypted request/response over MQTT: agrees a key with a responding client by
4096-bit Diffie-Hellman, sends the message as a Fernet token and prints the decrypted answer.
The broker sees topics and ciphertext only.

positional arguments:
  NETID                 your NetID: one MQTT topic level (no '/', '+', '#'); also the
                        MQTT client ID, unless -i gives another
  ACTION                uppercase, lowercase, title-case (as Python's str.title()),
                        reverse or shuffle; also random (characters dropped and repeated
                        at random)
  MESSAGE               the text to send; '-' reads it from standard input, less one
                        trailing newline (LF or CRLF); put -- before a message that
                        starts with '-', and quote one with spaces

options:
${LAB_OPTIONS_HELP}
  -i ID, --id ID        the MQTT client ID (default: the NetID)
  --timeout SECONDS     deadline for the whole exchange (default: ${DEFAULT_TIMEOUT_SECONDS})
${MORE_BROKER_OPTIONS_HELP}
  --trust FINGERPRINT   accept only a key exchange signed by the responder identity with
                        this fingerprint (SHA256:<64 hex digits>, as the responder's operator
                        publishes it); may be given more than once
${VERSION_HELP}

exit status: 0 answer printed, 1 runtime failure (reason on stderr), 2 usage error
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  id: { type: "string", short: "i" },
  timeout: { type: "string" },
  trust: { type: "string", multiple: true },
} as const;

/** The message argument `-`: read the message from standard input. */
export const FROM_STDIN = "-";

/** A request the command line asks for; `message` may be {@linkcode FROM_STDIN}. */
export interface ClientRequest {
  broker: BrokerOptions;
  clientId: string;
  netid: string;
  action: string;
  message: string;
  timeoutMs: number;
  trust: string[];
  verbose: boolean;
}

/** What the command line asks for. */
export type ClientInvocation =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "request"; request: ClientRequest };

/**
 * Parses and checks the client's arguments. Throws {@linkcode UsageError} with one line; its
 * reason for a NETID, ACTION, MESSAGE, -i or --timeout is the one `requestTransform` would
 * give for that value (lib/client/options.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseClientArgs } from "./client_options.ts";
 * const run = parseClientArgs(["-h", "broker.lab", "-p", "1884", "le0nh4rt", "title-case", "hi"]);
 * assert.equal(run.kind, "request");
 * if (run.kind === "request") {
 *   assert.equal(run.request.broker.host, "broker.lab");
 *   assert.equal(run.request.clientId, "le0nh4rt");
 * }
 * assert.deepEqual(parseClientArgs(["--help"]), { kind: "help" });
 * ```
 */
export function parseClientArgs(args: string[]): ClientInvocation {
  const { values, positionals } = parseArguments(
    args,
    OPTIONS,
    "to pass a message that starts with '-', put -- before it",
  );
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  const names = ["NETID", "ACTION", "MESSAGE"];
  if (positionals.length < names.length) {
    const missing = names.slice(positionals.length).join(", ");
    throw new UsageError(`the following arguments are required: ${missing}`);
  }
  if (positionals.length > names.length) {
    const extra = positionals.slice(names.length).join(" ");
    throw new UsageError(`unrecognized arguments: ${extra} (quote a message with spaces)`);
  }
  const [netid, action, message] = positionals;
  refuseIf("NETID", netidProblem(netid));
  refuseIf("ACTION", actionProblem(action));
  if (message !== FROM_STDIN) refuseIf("MESSAGE", messageProblem(message));
  return {
    kind: "request",
    request: {
      clientId: values.id === undefined ? netid : parseClientId(values.id),
      netid,
      action,
      message,
      timeoutMs: parseTimeout(values.timeout),
      trust: (values.trust ?? []).map(parseTrust),
      broker: brokerFromArgs(values),
      verbose: values.verbose === true,
    },
  };
}

/**
 * The message from standard input, as UTF-8, less one trailing newline (LF or CRLF): what
 * `echo hi |` adds is not part of the message. At most `MAX_MESSAGE_BYTES`, read no further.
 */
export async function readMessage(input: ReadableStream<Uint8Array>): Promise<string> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  for await (const chunk of input) {
    chunks.push(chunk as Uint8Array<ArrayBuffer>);
    size += chunk.length;
    // The newline that may follow a maximal message is allowed for.
    if (size > MAX_MESSAGE_BYTES + 2) {
      throw new UsageError(
        `argument MESSAGE: standard input is over the ${MAX_MESSAGE_BYTES}-byte limit`,
      );
    }
  }
  const text = decodeUtf8(await new Blob(chunks).bytes());
  if (text === undefined) {
    throw new UsageError("argument MESSAGE: standard input is not valid UTF-8");
  }
  const message = text.replace(/\r?\n$/, "");
  refuseIf("MESSAGE", messageProblem(message));
  return message;
}

/** A usage error for `argument`, when its check found a problem. */
function refuseIf(argument: string, problem: string | undefined): void {
  if (problem !== undefined) throw new UsageError(`argument ${argument}: ${problem}`);
}

/**
 * Milliseconds, from seconds as plain decimals (no hex, exponents or spaces), in the range
 * `requestTransform` takes (more than 0, at most a day).
 */
function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_SECONDS * 1000;
  const ms = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) * 1000 : NaN;
  if (timeoutProblem(ms) !== undefined) {
    throw new UsageError(
      `argument --timeout: invalid value '${text}' (need seconds, ${MIN_TIMEOUT_MS / 1000} to ` +
        `${MAX_TIMEOUT_MS / 1000})`,
    );
  }
  return ms;
}

/** An MQTT client ID (lib/client/options.ts `clientIdProblem`). */
function parseClientId(text: string): string {
  refuseIf("-i/--id", clientIdProblem(text));
  return text;
}

function parseTrust(text: string): string {
  try {
    return parseFingerprint(text);
  } catch (error) {
    if (!(error instanceof FingerprintError)) throw error;
    throw new UsageError(`argument --trust: ${error.message}`, { cause: error });
  }
}
