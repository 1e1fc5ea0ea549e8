/**
 * One-command demo: an embedded MQTT broker (aedes, in-process: no mosquitto needed), our
 * responder and our client, all in this process on a free loopback port. Shows the four
 * messages as the broker sees them (topics and ciphertext only), prints the answer, shuts
 * everything down and exits 0.
 *
 * @example
 * ```sh
 * deno task demo
 * deno task demo --action reverse --netid bob "Hello, broker who cannot read this"
 * ```
 * @module
 */

import { Aedes, type AedesPublishPacket, type Client } from "aedes";
import { createServer, type Server } from "node:net";
import {
  EXIT_FAILURE,
  EXIT_USAGE,
  parseCommandLine,
  reportInternalError,
  UsageError,
  writeAll,
} from "./lib/cli.ts";
import { ClientError, requestTransform } from "./lib/client.ts";
import type { Logger } from "./lib/log.ts";
import {
  type Action,
  ACTIONS,
  isAction,
  loadLabGroup,
  MAX_MESSAGE_BYTES,
  topicLevelProblem,
} from "./lib/protocol.ts";
import { Responder, ResponderError } from "./lib/responder.ts";

const NAME = "demo";
const USAGE = `usage: deno task demo [-h] [-a ACTION] [-n NETID] [message]`;
const HELP = `${USAGE}

Runs the whole protocol in one process: an embedded MQTT broker (aedes) on a free loopback
port, the responder and the client. Prints each message as the broker sees it, then the answer.

positional arguments:
  message               the text to transform (default: "Hello, secure MQTT!")

options:
  -h, --help            show this help message and exit
  -a, --action ACTION   one of: ${ACTIONS.join(", ")} (default: uppercase)
  -n, --netid NETID     the client's network ID (default: demo)
`;

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  action: { type: "string", short: "a" },
  netid: { type: "string", short: "n" },
} as const;

const HOST = "127.0.0.1";
const TIMEOUT_MS = 15_000;

function parse(args: string[]) {
  const { values, positionals } = parseCommandLine(args, { options: OPTIONS });
  if (values.help) return "help" as const;
  if (positionals.length > 1) {
    throw new UsageError(
      `unrecognized arguments: ${positionals.slice(1).join(" ")} (quote a message with spaces)`,
    );
  }
  const action = (values.action as string | undefined) ?? "uppercase";
  if (!isAction(action)) {
    throw new UsageError(
      `argument -a/--action: invalid choice '${action}' (choose from ${ACTIONS.join(", ")})`,
    );
  }
  const netid = (values.netid as string | undefined) ?? "demo";
  const problem = topicLevelProblem(netid);
  if (problem) throw new UsageError(`argument -n/--netid: ${problem}`);
  const message = positionals[0] ?? "Hello, secure MQTT!";
  if (new TextEncoder().encode(message).length > MAX_MESSAGE_BYTES) {
    throw new UsageError(`argument message: over the ${MAX_MESSAGE_BYTES}-byte limit`);
  }
  return { action: action as Action, netid, message };
}

function say(line: string): void {
  writeAll(Deno.stdout, `${line}\n`);
}

/** Info lines of the library, indented under the demo's own. */
function demoLogger(who: string): Logger {
  return {
    debug() {},
    info: (m) => say(`  ${who}: ${m}`),
    warn: (m) => say(`  ${who}: warning: ${m}`),
  };
}

/**
 * A payload as the broker sees it, on one line: size, kind, and the start and end of its
 * base64 (the end of a public key is where `y` sits; its start is the shared `p` and `g`).
 */
function preview(payload: Uint8Array): string {
  const text = new TextDecoder().decode(payload);
  const size = payload.length < 1024
    ? `${payload.length} B`
    : `${(payload.length / 1024).toFixed(1)} KiB`;
  const isKey = text.startsWith("-----BEGIN PUBLIC KEY-----");
  const body = text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  const shown = body.length > 48 ? `${body.slice(0, 16)}…${body.slice(-28)}` : body;
  return `${size.padStart(8)}  ${isKey ? "public key (PEM)" : "Fernet token"} ${shown}`;
}

async function startBroker(): Promise<{ broker: Aedes; server: Server; port: number }> {
  const broker = await Aedes.createBroker();
  // No Nagle on the broker's sockets: with it, a small PUBACK still waiting for its TCP ACK
  // holds back the next PUBLISH to the same client until the peer's delayed ACK (~40 ms).
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port assigned");
  return { broker, server, port: address.port };
}

async function stopBroker(broker: Aedes, server: Server): Promise<void> {
  await new Promise<void>((resolve) => broker.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function main(args: string[]): Promise<number> {
  let request;
  try {
    request = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (request === "help") return say(HELP.trimEnd()), 0;

  const group = loadLabGroup();
  const { broker, server, port } = await startBroker();
  say(`broker: aedes, embedded, listening on ${HOST}:${port}`);
  let seen = 0;
  broker.on("publish", (packet: AedesPublishPacket, client: Client | null) => {
    // Client-less publishes are the broker's own ($SYS heartbeats), not protocol traffic.
    if (client === null || packet.topic.startsWith("$SYS/")) return;
    const payload = typeof packet.payload === "string"
      ? new TextEncoder().encode(packet.payload)
      : new Uint8Array(packet.payload);
    say(`  broker sees [${++seen}] ${packet.topic.padEnd(34)} ${preview(payload)}`);
  });

  let responder: Responder | undefined;
  try {
    responder = await Responder.start({ host: HOST, port, group, logger: demoLogger("responder") });
    say(
      `client: ${request.netid} asks for ${request.action} of ${JSON.stringify(request.message)}`,
    );
    const answer = await requestTransform({
      host: HOST,
      port,
      group,
      netid: request.netid,
      action: request.action,
      message: request.message,
      timeoutMs: TIMEOUT_MS,
      logger: demoLogger("client"),
    });
    say(`answer: ${answer}`);
    say(
      `the broker relayed ${seen} messages and saw topics, public keys and ciphertext only: ` +
        "never the message, the answer or the shared key",
    );
    return 0;
  } catch (error) {
    if (error instanceof ClientError || error instanceof ResponderError) {
      writeAll(Deno.stderr, `${NAME}: error: ${error.message}\n`);
      return EXIT_FAILURE;
    }
    throw error;
  } finally {
    await responder?.stop();
    await stopBroker(broker, server);
  }
}

if (import.meta.main) {
  // No Deno.exit on success: the process ending by itself shows that the broker, the responder
  // and the client left nothing running (the demo test relies on it).
  const code = await main(Deno.args).catch((e) => reportInternalError(NAME, e));
  if (code !== 0) Deno.exit(code);
}
