/**
 * `deno task demo`: the whole protocol in one process, with nothing to install: an embedded
 * MQTT broker on a free loopback port, our responder and our client. It shows each message as
 * the broker sees it (topics and ciphertext only), then the answer.
 *
 * `deno task demo --mitm`: the same broker turned attacker. It shows the lab protocol fooled
 * (the broker reads the request and forges the answer), then the authenticated key exchange
 * stopping it.
 *
 * @module
 */

import { ACTIONS } from "./lib/protocol/actions.ts";
import { parseArguments, UsageError } from "./cli/args.ts";
import { printOut, runCommand } from "./cli/command.ts";
import type { BrokerOptions } from "./lib/mqtt.ts";
import { ClientError, requestTransform, UnauthenticatedError } from "./lib/client/session.ts";
import type { DhGroup } from "./lib/crypto/dh.ts";
import { Identity } from "./lib/auth/identity.ts";
import type { Logger } from "./lib/log.ts";
import { loadLabGroup } from "./lib/protocol/key_agreement.ts";
import { actionProblem, messageProblem, netidProblem } from "./lib/client/options.ts";
import { Responder, ResponderError } from "./lib/responder/responder.ts";
import { type Interceptor, startEmbeddedBroker } from "./lib/embedded_broker.ts";
import { manInTheMiddle } from "./demo/mitm.ts";

const NAME = "demo";
const USAGE = `usage: deno task demo [--help] [--mitm] [-a ACTION] [-n NETID] [message]`;
const HELP = `${USAGE}

Runs the whole protocol in one process: an embedded MQTT broker (aedes) on a free loopback
port, the responder and the client. Prints each message as the broker sees it, then the answer.

positional arguments:
  message               the text to transform (default: "Hello, secure MQTT!")

options:
  --help                show this help message and exit
  --mitm                make the broker a man in the middle: first against the lab protocol,
                        then against a client that trusts the responder's identity
  -a, --action ACTION   one of: ${ACTIONS.join(", ")} (default: uppercase)
  -n, --netid NETID     the client's network ID (default: demo)
`;

const OPTIONS = {
  help: { type: "boolean" },
  mitm: { type: "boolean" },
  action: { type: "string", short: "a" },
  netid: { type: "string", short: "n" },
} as const;

const TIMEOUT_MS = 15_000;
// How long the trusting client waits for a signed exchange before it gives up, in part 2.
const TRUSTING_TIMEOUT_MS = 3_000;

interface Request {
  action: string;
  netid: string;
  message: string;
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(args, OPTIONS);
  if (values.help) return printOut(HELP), 0;
  if (positionals.length > 1) {
    throw new UsageError(
      `unrecognized arguments: ${positionals.slice(1).join(" ")} (quote a message with spaces)`,
    );
  }
  const request = {
    action: values.action ?? "uppercase",
    netid: values.netid ?? "demo",
    message: positionals[0] ?? "Hello, secure MQTT!",
  };
  // The client's own checks, so that the demo refuses what the client would, in its words.
  refuseIf("-a/--action", actionProblem(request.action));
  refuseIf("-n/--netid", netidProblem(request.netid));
  refuseIf("message", messageProblem(request.message));
  return values.mitm ? await attack(request) : await show(request);
}

function refuseIf(argument: string, problem: string | undefined): void {
  if (problem !== undefined) throw new UsageError(`argument ${argument}: ${problem}`);
}

async function show(request: Request): Promise<number> {
  let seen = 0;
  const watch: Interceptor = (topic, payload) => {
    say(`  broker sees [${++seen}] ${topic.padEnd(34)} ${preview(payload)}`);
    return undefined;
  };
  await using broker = await startEmbeddedBroker({ interceptor: watch });
  say(`broker: aedes, embedded, listening on ${broker.host}:${broker.port}`);
  const where: BrokerOptions = { transport: "mqtt", host: broker.host, port: broker.port };
  const group = loadLabGroup();
  await using _responder = await Responder.start({
    broker: where,
    group,
    logger: indented("responder"),
  });
  say(`client: ${request.netid} asks for ${request.action} of ${JSON.stringify(request.message)}`);
  const answer = await requestTransform({
    broker: where,
    group,
    ...request,
    timeoutMs: TIMEOUT_MS,
    logger: indented("client"),
  });
  say(`answer: ${answer}`);
  say(
    `the broker relayed ${seen} messages and saw topics, public keys and ciphertext only: ` +
      "never the message, the answer or the shared key",
  );
  return 0;
}

async function attack(request: Request): Promise<number> {
  const group = loadLabGroup();
  const forge = (answer: string) => `${answer} (and the broker says hello)`;

  say("1. The lab protocol, through a broker that is a man in the middle");
  const fooled = await attackOnce(group, request, forge, undefined);
  const wasFooled = fooled.answer !== undefined && fooled.read > 0;
  say(
    wasFooled
      ? `   client: printed ${JSON.stringify(fooled.answer)} and exited 0: fooled, and the ` +
        `broker read the request`
      : `   client: ${fooled.error ?? "no answer"} (the attack did not work as it should)`,
  );

  const { identity } = await Identity.generate();
  say("");
  say(`2. The same, with the responder's identity and --trust ${identity.fingerprint}`);
  const stopped = await attackOnce(group, request, forge, identity);
  const wasStopped = stopped.refusedAsManInTheMiddle && stopped.read === 0;
  say(
    stopped.error
      ? `   client: exited 1: secure_mqtt_client: error: ${stopped.error}`
      : `   client: printed ${JSON.stringify(stopped.answer)} (it should have refused)`,
  );
  say(`   the broker read ${stopped.read} requests: it learned nothing it can use`);
  say("");
  say(
    "What made the difference: the responder signed its key exchange with a key the broker " +
      "does not have, and the client accepted only an exchange signed by the identity it " +
      "trusts, so the broker's substituted keys were refused before any message was sent.",
  );
  return wasFooled && wasStopped ? 0 : 1;
}

async function attackOnce(
  group: DhGroup,
  request: Request,
  forge: (answer: string) => string,
  identity: Identity | undefined,
): Promise<{ answer?: string; error?: string; refusedAsManInTheMiddle?: boolean; read: number }> {
  const mitm = manInTheMiddle(group, (line) => say(`   broker (attacker): ${line}`), forge);
  await using broker = await startEmbeddedBroker({ interceptor: mitm });
  const where: BrokerOptions = { transport: "mqtt", host: broker.host, port: broker.port };
  await using _responder = await Responder.start({
    broker: where,
    group,
    identity,
    logger: quiet,
  });
  try {
    const answer = await requestTransform({
      broker: where,
      group,
      ...request,
      trust: identity ? [identity.fingerprint] : [],
      timeoutMs: identity ? TRUSTING_TIMEOUT_MS : TIMEOUT_MS,
    });
    return { answer, read: mitm.requestsRead() };
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    const refusedAsManInTheMiddle = error instanceof UnauthenticatedError && error.manInTheMiddle;
    return { error: error.message, refusedAsManInTheMiddle, read: mitm.requestsRead() };
  }
}

function say(line: string): void {
  printOut(`${line}\n`);
}

const quiet: Logger = { debug() {}, info() {}, warn() {} };

/** The library's info lines, indented under the demo's own. */
function indented(who: string): Logger {
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

if (import.meta.main) {
  const code = await runCommand(
    { name: NAME, usage: USAGE, failures: [ClientError, ResponderError], main },
    Deno.args,
  );
  // No Deno.exit on success: the process ending by itself shows that the broker, the
  // responder and the client left nothing running.
  if (code !== 0) Deno.exit(code);
}
