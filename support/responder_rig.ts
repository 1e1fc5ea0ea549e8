/**
 * The setup of most responder tests in one `await using`: a private mosquitto (or a broker the
 * test brings), our responder serving it, and a {@linkcode Tap} that sees every answer. The
 * responder runs in process ({@linkcode startResponderRig}: its stats and its log lines at hand)
 * or as the `responder` task ({@linkcode startResponderTaskRig}: its own process, memory and
 * stderr). Disposing stops the responder, the tap and the broker, in that order.
 *
 * @module
 */

import type { Logger } from "../lib/log.ts";
import type { BrokerOptions } from "../lib/mqtt.ts";
import { loadLabGroup } from "../lib/protocol/key_agreement.ts";
import { Responder, type ResponderLimits } from "../lib/responder/responder.ts";
import { startMosquitto, type StartMosquittoOptions } from "./mosquitto.ts";
import { type Peer, startResponderTask } from "./processes.ts";
import { Tap } from "./tap.ts";

/** What a tap subscribes to so that it sees every answer of a responder. */
export const ANSWER_FILTERS: readonly string[] = ["+/key-exchange/response", "+/+/response"];

/** A logger that keeps its lines, and can wait for one (instead of sleeping). */
export interface RecordingLogger extends Logger {
  /** Every line so far: `debug: ` and `warning: ` prefixed, info lines as they are. */
  readonly lines: string[];
  /**
   * The first line, so far or to come, matching `pattern`, among the lines from index `from` on
   * (default 0); rejects after `timeoutMs`.
   */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
}

/** A verbose {@linkcode RecordingLogger}. */
export function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const waiters = new Set<(line: string) => boolean>();
  const push = (line: string) => {
    lines.push(line);
    for (const w of waiters) if (w(line)) waiters.delete(w);
  };
  return {
    verbose: true,
    lines,
    debug: (m) => push(`debug: ${m}`),
    info: (m) => push(m),
    warn: (m) => push(`warning: ${m}`),
    waitFor(pattern, timeoutMs = 15_000, from = 0) {
      const seen = lines.slice(from).find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = (line: string) => {
          if (!pattern.test(line)) return false;
          clearTimeout(timer);
          resolve(line);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no log line matching ${pattern}:\n${lines.join("\n")}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}

/** Where a rig's broker is: a new mosquitto (with these options), or the test's own broker. */
export interface RigBrokerOptions {
  /** Options of the private mosquitto the rig starts. */
  mosquitto?: StartMosquittoOptions;
  /** A broker the test started (and stops): served instead of a new mosquitto. */
  broker?: { host: string; port: number };
}

/** A broker, a responder on it, and a tap. */
interface Rig extends AsyncDisposable {
  readonly broker: { host: string; port: number };
  /** The broker as the library takes it (plain MQTT over TCP). */
  readonly at: BrokerOptions;
  readonly tap: Tap;
}

/** {@linkcode startResponderRig}'s: the responder in this process. */
export interface ResponderRig extends Rig {
  readonly responder: Responder;
  /** The responder's lines. */
  readonly log: RecordingLogger;
}

/** {@linkcode startResponderTaskRig}'s: the responder as its own process. */
export interface ResponderTaskRig extends Rig {
  readonly responder: Peer;
}

async function brokerAndTap(stack: AsyncDisposableStack, options: RigBrokerOptions) {
  const broker = options.broker ?? stack.use(await startMosquitto(options.mosquitto));
  const at: BrokerOptions = { transport: "mqtt", host: broker.host, port: broker.port };
  const tap = stack.use(await Tap.open(broker, [...ANSWER_FILTERS]));
  return { broker, at, tap };
}

/**
 * Starts a broker (unless given one), opens the tap, then starts a {@linkcode Responder} with
 * `limits` and a recording logger, and resolves once it is subscribed.
 */
export async function startResponderRig(
  options: RigBrokerOptions & { limits?: Partial<ResponderLimits> } = {},
): Promise<ResponderRig> {
  await using stack = new AsyncDisposableStack();
  const { broker, at, tap } = await brokerAndTap(stack, options);
  const log = recordingLogger();
  const responder = await Responder.start({
    broker: at,
    group: loadLabGroup(),
    logger: log,
    limits: options.limits,
  });
  stack.use(responder);
  const owned = stack.move();
  return { broker, at, tap, responder, log, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

/**
 * Starts a broker (unless given one), opens the tap, runs `beforeStart` (e.g. to retain
 * messages the responder must find when it subscribes), then starts the `responder` task with
 * `args` and resolves once it has logged its subscriptions.
 */
export async function startResponderTaskRig(
  options: RigBrokerOptions & { args?: string[]; beforeStart?: (tap: Tap) => Promise<void> } = {},
): Promise<ResponderTaskRig> {
  await using stack = new AsyncDisposableStack();
  const { broker, at, tap } = await brokerAndTap(stack, options);
  await options.beforeStart?.(tap);
  const responder = stack.use(await startResponderTask(broker, options.args));
  const owned = stack.move();
  return { broker, at, tap, responder, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}
