/**
 * The client's command line. It starts with the lab's usage pattern, which graders and
 * classmates call it by, `[--help] [-v] [-h HOST] [-p PORT] NETID ACTION MESSAGE`, and our own
 * options follow. {@linkcode parseClientArgs} turns argv into what `requestTransform` needs,
 * or a {@linkcode UsageError}; it reads nothing but `--cafile` and `MQTT_PASSWORD`, so it is
 * tested in-process.
 *
 * @module
 */

import { ACTIONS, isAction } from "../lib/protocol/actions.ts";
import type { BrokerOptions } from "../lib/mqtt.ts";
import { FingerprintError, parseFingerprint } from "../lib/crypto/fingerprint.ts";
import { MAX_MESSAGE_BYTES } from "../lib/protocol/limits.ts";
import { topicLevelProblem } from "../lib/protocol/topics.ts";
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
 * Parses and checks the client's arguments. Throws {@linkcode UsageError} with one line.
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
  const netidProblem = topicLevelProblem(netid);
  if (netidProblem) throw new UsageError(`argument NETID: ${netidProblem}`);
  if (!isAction(action)) {
    throw new UsageError(
      `argument ACTION: invalid choice '${action}' (choose from ${ACTIONS.join(", ")})`,
    );
  }
  if (message !== FROM_STDIN) checkMessageSize(new TextEncoder().encode(message).length);
  return {
    kind: "request",
    request: {
      clientId: values.id === undefined ? netid : parseClientId(values.id),
      netid,
      action,
      message,
      timeoutMs: parseTimeout(values.timeout) * 1000,
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
  checkMessageSize(new TextEncoder().encode(message).length);
  return message;
}

function checkMessageSize(size: number): void {
  if (size > MAX_MESSAGE_BYTES) {
    throw new UsageError(
      `argument MESSAGE: ${size} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
  }
}

/** Seconds as plain decimals (no hex, exponents or spaces), more than 0 and at most a day. */
function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const seconds = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0.001 && seconds <= 86_400)) {
    throw new UsageError(
      `argument --timeout: invalid value '${text}' (need seconds, 0.001 to 86400)`,
    );
  }
  return seconds;
}

/** An MQTT client ID: a non-empty MQTT string (UTF-8, no NUL, at most 65535 bytes). */
function parseClientId(text: string): string {
  const problem = text === ""
    ? "must not be empty"
    : text.includes("\0")
    ? "must not contain NUL"
    : !text.isWellFormed()
    ? "is not valid Unicode"
    : new TextEncoder().encode(text).length > 0xffff
    ? "is longer than 65535 bytes"
    : undefined;
  if (problem) throw new UsageError(`argument -i/--id: ${problem}`);
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
