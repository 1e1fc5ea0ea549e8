/**
 * The responder's broker connection: connects (MQTT 5 first, MQTT 3.1.1 for a broker that does
 * not speak 5), subscribes on every connection, reconnects with capped, jittered backoff after
 * a loss, hands each incoming PUBLISH over synchronously, and publishes at QoS 1 with a
 * callback for the broker's acknowledgement.
 *
 * Whatever goes wrong on a connection ends it: a refusal, a timeout of ours (no CONNACK, no
 * SUBACK, no answer to a keepalive ping), a packet that breaks the protocol (a second CONNACK,
 * an AUTH we did not ask for, a topic alias we did not allow, bytes that are not MQTT), a
 * DISCONNECT, a packet over our size limit that is no PUBLISH. MQTT.js closes the connection
 * for some of these and leaves it open, out of step with the broker, for others (a parser
 * error): here every one closes it. What follows (give up, MQTT 3.1.1 at once, or MQTT 5 again
 * after a backoff) is decided in one pure function, {@linkcode afterAttempt}, of what the
 * attempt saw ({@linkcode Attempt}).
 *
 * @module
 */

import type { IPublishPacket, MqttClient, Packet } from "mqtt";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  connackCode,
  crossedTransportHint,
  disconnectReason,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
  toBrokerError,
} from "../mqtt.ts";
import { type Logger, printable, printableError, type RateLimitedLog } from "../log.ts";
import { MAX_PAYLOAD_BYTES } from "../protocol/limits.ts";
import type { ResponderLimits } from "./limits.ts";

/**
 * The largest packet taken whole: a maximal payload plus a maximal topic and header. Offered to
 * MQTT 5 brokers, which then drop larger messages instead of sending them to us; a larger
 * PUBLISH that comes all the same (from an MQTT 3.1.1 broker, which has no such limit) reaches
 * us without its payload (lib/mqtt_size_guard.ts), and is dropped.
 */
export const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024 + 16;
// MQTT 3.1.1 CONNACK 1 and MQTT 5 reason 132: the broker does not speak MQTT 5.
const UNSUPPORTED_PROTOCOL_VERSION = new Set([1, 132]);

/** What one connection attempt saw, from CONNECT to the connection's close. */
export interface Attempt {
  /** The MQTT version it spoke: 5, or 4 (3.1.1). */
  readonly version: 4 | 5;
  /** The code of its CONNACK (0: accepted), if one came. */
  connack: number | undefined;
  /** What ended it: the first failure seen on it (each one ends it), if any. */
  problem: BrokerError | undefined;
  /** The broker closed it (an end of stream or a reset) with no failure of ours before. */
  hungUp: boolean;
}

/** What comes after an attempt, as {@linkcode afterAttempt} decides. */
export type AfterAttempt =
  /**
   * Nothing: trying again cannot fix `error` (refused credentials, an untrusted certificate, a
   * refused subscription).
   */
  | { readonly next: "fail"; readonly error: BrokerError }
  /** A new attempt at once, in MQTT 3.1.1: the broker does not speak 5. */
  | { readonly next: "fall back" }
  /** A new attempt after a backoff, in MQTT 5; `problem` says why, if known. */
  | { readonly next: "retry"; readonly problem: BrokerError | undefined };

/**
 * Decides what follows a closed connection attempt. A broker that knows only MQTT 3.1.1
 * refuses a version 5 CONNECT (CONNACK 1, or reason 132 from one that knows 5 but will not
 * speak it), or, less politely, hangs up on it before any CONNACK: then the next attempt, at
 * once, speaks 3.1.1. Nothing else means that: a timeout, a transient refusal ("server busy")
 * or a failure after the CONNACK is retried after a backoff, in MQTT 5 again (a broker can be
 * upgraded, and with MQTT 5 comes its own limit on what it sends us). A permanent failure ends
 * it all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { afterAttempt } from "./connection.ts";
 * assert.deepEqual(
 *   afterAttempt({ version: 5, connack: 132, problem: undefined, hungUp: false }),
 *   { next: "fall back" },
 * );
 * assert.deepEqual(
 *   afterAttempt({ version: 4, connack: 0, problem: undefined, hungUp: true }),
 *   { next: "retry", problem: undefined },
 * );
 * ```
 */
export function afterAttempt(attempt: Readonly<Attempt>): AfterAttempt {
  const { version, connack, problem } = attempt;
  if (version === 5) {
    if (connack !== undefined && UNSUPPORTED_PROTOCOL_VERSION.has(connack)) {
      return { next: "fall back" };
    }
    // A version 5 CONNECT that the broker hung up on, unanswered: a 3.1.1-only broker.
    if (connack === undefined && attempt.hungUp && !problem?.permanent) {
      return { next: "fall back" };
    }
  }
  if (problem?.permanent) return { next: "fail", error: problem };
  return { next: "retry", problem };
}

/**
 * What a packet from the broker says is wrong with the connection, as the end of a line
 * ("connection to … lost: the broker …"), or `undefined` for a packet that may come.
 * `connack` is the code of the CONNACK that came before it, if one did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brokerViolation } from "./connection.ts";
 * const connack = { cmd: "connack", sessionPresent: false, reasonCode: 0 } as const;
 * assert.equal(brokerViolation(connack, 5, undefined), undefined);
 * assert.equal(brokerViolation(connack, 5, 0), "sent a second CONNACK");
 * ```
 */
export function brokerViolation(
  packet: Packet,
  version: 4 | 5,
  connack: number | undefined,
): string | undefined {
  switch (packet.cmd) {
    case "connack":
      return connack === undefined ? undefined : "sent a second CONNACK";
    case "auth":
      return "sent an AUTH packet we did not ask for";
    case "publish":
      return packet.properties?.topicAlias === undefined
        ? undefined
        : "sent a PUBLISH with a topic alias, which we did not allow";
    case "disconnect": {
      if (version !== 5) return "sent a DISCONNECT (a broker may not, in MQTT 3.1.1)";
      const reason = disconnectReason(packet.reasonCode ?? 0);
      const said = packet.properties?.reasonString;
      return `disconnected us: ${reason}${said ? `, "${printable(said)}"` : ""}`;
    }
    case "connect":
    case "subscribe":
    case "unsubscribe":
    case "pingreq":
      return `sent a ${packet.cmd.toUpperCase()}, which only a client may send`;
  }
  return undefined;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from `reconnectMinMs`,
 * capped at `reconnectMaxMs`, with "equal jitter" (a random point in the upper half), so it
 * never collapses to zero, yet responders restarted together spread out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay } from "./connection.ts";
 * const limits = { reconnectMinMs: 500, reconnectMaxMs: 30_000 };
 * assert.equal(backoffDelay(0, limits, () => 0), 250);
 * assert.equal(backoffDelay(3, limits, () => 1), 4000);
 * assert.equal(backoffDelay(20, limits, () => 1), 30_000);
 * ```
 */
export function backoffDelay(
  attempt: number,
  limits: Pick<ResponderLimits, "reconnectMinMs" | "reconnectMaxMs">,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(
    limits.reconnectMaxMs,
    limits.reconnectMinMs * 2 ** Math.min(attempt, 30),
  );
  return ceiling / 2 + random() * (ceiling / 2);
}

/** What a {@linkcode BrokerConnection} needs, and whom it tells what happens. */
export interface ConnectionOptions {
  broker: BrokerOptions;
  clientId: string;
  /** The filters subscribed to (QoS 1) on every connection. */
  filters: readonly string[];
  limits: Pick<
    ResponderLimits,
    | "keepAliveSeconds"
    | "reconnectMinMs"
    | "reconnectMaxMs"
    | "connackTimeoutMs"
    | "subackTimeoutMs"
  >;
  /** Where connects, losses and subscriptions are reported. */
  logger: Logger;
  /** Where lost publishes are reported: there can be many of them. */
  lines: RateLimitedLog;
  /**
   * Each incoming PUBLISH, synchronously: MQTT.js takes the next packet only once this
   * returns, so it must do only cheap work.
   */
  onMessage(packet: IPublishPacket): void;
  /** The subscriptions were granted, on the first connection or a later one. */
  onSubscribed(): void;
  /**
   * A failure trying again cannot fix; the connection has given up. `message` is one line,
   * `cause` what it came from.
   */
  onFatal(message: string, cause: Error): void;
}

/**
 * One broker connection for the life of a responder. `open()` starts connecting and keeps at
 * it until `close()` or a failure it reports to `onFatal`; a connection lost is retried after
 * {@linkcode backoffDelay}, and every new connection subscribes again, so that a refusal is
 * seen there. Each attempt is a new MQTT.js client: nothing of a connection that went wrong
 * (its parser, its state) carries over.
 */
export class BrokerConnection {
  readonly #o: ConnectionOptions;
  readonly #where: string;
  #client: MqttClient | undefined;
  #failures = 0;
  #connections = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: ConnectionOptions) {
    this.#o = options;
    this.#where = brokerLabel(options.broker);
  }

  /** Successful connections so far (1 + reconnects): each counted once subscribed. */
  get connections(): number {
    return this.#connections;
  }

  /** Starts connecting; call it once. */
  open(): void {
    this.#o.logger.info(`connecting to ${this.#where}`);
    this.#connect(5);
  }

  /**
   * A QoS 1 publish on the current connection. `done` runs once the broker has acknowledged
   * it, or it can no longer be delivered (not connected now, or the connection closed). A loss
   * is only logged: whoever waits for the message will time out.
   */
  publish(topic: string, payload: string, done: () => void = () => {}): void {
    const mqtt = this.#client;
    if (mqtt === undefined || !mqtt.connected) {
      this.#o.lines.line("debug", "lost", `answer on ${printable(topic)} lost: not connected`);
      return done();
    }
    mqtt.publish(topic, payload, { qos: 1 }, (error) => {
      done();
      if (error) {
        const why = printableError(error);
        this.#o.lines.line("debug", "lost", `answer on ${printable(topic)} may be lost: ${why}`);
      }
    });
  }

  /**
   * Closes the connection for good: no reconnect, no more messages handed over. Publishes not
   * yet acknowledged have their `done` run. Resolves once the socket is closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    const mqtt = this.#client;
    this.#client = undefined;
    if (mqtt) await new Promise<void>((resolve) => mqtt.end(true, {}, () => resolve()));
  }

  /** One attempt: a new MQTT.js client in `version`, watched until its connection closes. */
  #connect(version: 4 | 5): void {
    if (this.#closed) return;
    const { broker, limits } = this.#o;
    const where = this.#where;
    const mqtt = openMqtt(broker, {
      clientId: this.#o.clientId,
      keepaliveSeconds: limits.keepAliveSeconds,
      protocolVersion: version,
      properties: version === 5 ? { maximumPacketSize: MAX_PACKET_BYTES } : undefined,
      // At any protocol version: a broker may send what we did not allow, or not know to ask.
      maxPacketBytes: MAX_PACKET_BYTES,
      // Our own timer ends a silent connect (below), with our words; MQTT.js's never fires.
      connectTimeoutMs: 2 ** 31 - 1,
    });
    this.#client = mqtt;
    const attempt: Attempt = { version, connack: undefined, problem: undefined, hungUp: false };
    let subscribedAt: number | undefined;
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const after = (ms: number, then: () => void) => {
      const timer = setTimeout(() => (timers.delete(timer), then()), ms);
      timers.add(timer);
      return timer;
    };
    const lost = (why: string, cause?: unknown) =>
      new BrokerError("lost", `connection to ${where} lost: ${why}`, false, { cause });
    // Every failure ends the connection, the first one seen being what ended it.
    const end = (problem: BrokerError) => {
      attempt.problem ??= problem;
      mqtt.stream?.destroy();
    };

    const connackTimer = after(limits.connackTimeoutMs, () => {
      const within = seconds(limits.connackTimeoutMs);
      end(lost(`no CONNACK within ${within} (has the broker stopped answering?)`));
    });
    // Answer what MQTT.js asks at once: the PUBACK goes out now, and the message is ours.
    mqtt.handleMessage = (packet, done) => {
      if (!this.#closed && this.#client === mqtt) this.#o.onMessage(packet);
      done();
    };
    const keepaliveTimeout = mqtt.onKeepaliveTimeout.bind(mqtt);
    mqtt.onKeepaliveTimeout = () => {
      end(lost("no answer to our keepalive ping (has the broker stopped answering?)"));
      keepaliveTimeout();
    };
    // Each packet, before MQTT.js acts on it: what it means for the connection is ours to say.
    mqtt.on("packetreceive", (packet) => {
      const violation = brokerViolation(packet, version, attempt.connack);
      if (violation !== undefined) return end(lost(`the broker ${violation}`));
      if (packet.cmd === "connack") {
        attempt.connack = connackCode(packet);
        clearTimeout(connackTimer);
      }
    });
    mqtt.on("error", (error: Error & { code?: unknown }) => {
      const { code } = error;
      if (code === "ECONNRESET" || code === "EPIPE") {
        if (attempt.problem === undefined) attempt.hungUp = true;
        // After the CONNACK a reset is the broker closing the connection: no hint of TLS.
        if (attempt.connack !== undefined) return end(lost("reset by the broker", error));
      }
      if (code === undefined) {
        // Our timeouts come first with our words (above): what is left without a code is the
        // parser refusing the broker's bytes, or MQTT.js a packet out of its place.
        return end(
          lost(`the broker sent what is not valid MQTT (${printableError(error)})`, error),
        );
      }
      const problem = toBrokerError(error, broker, attempt.connack);
      // After the CONNACK, what is not a refusal is the connection lost, said as such.
      const after = problem.kind === "lost" && attempt.connack !== undefined;
      end(after ? lost(printableError(error), error) : problem);
    });
    mqtt.on("connect", () => {
      const subackTimer = after(limits.subackTimeoutMs, () => {
        end(lost(`no SUBACK within ${seconds(limits.subackTimeoutMs)}`));
      });
      const { filters } = this.#o;
      subscribeAll(mqtt, filters).then(() => {
        clearTimeout(subackTimer);
        if (this.#closed || this.#client !== mqtt || attempt.problem) return;
        subscribedAt = performance.now();
        this.#connections++;
        const spoken = version === 5 ? "MQTT 5" : "MQTT 3.1.1";
        this.#o.logger.info(`subscribed to ${filters.join(" and ")} on ${where} (${spoken})`);
        this.#o.onSubscribed();
      }, (error) => {
        clearTimeout(subackTimer);
        // Anything but a refusal is the connection going away meanwhile: "close" says why.
        if (!(error instanceof SubscriptionRefusedError)) return;
        const message = `${where}: ${error.message} ` +
          "(does the broker's ACL allow this user to read them?)";
        end(new BrokerError("refused", message, true, { cause: error }));
      });
    });
    mqtt.on("close", () => {
      for (const timer of timers) clearTimeout(timer);
      if (this.#closed || this.#client !== mqtt) return;
      if (attempt.problem === undefined) attempt.hungUp = true;
      // A connection that served a while starts the backoff afresh; one that fails as soon as
      // it is up (a broker that breaks the protocol each time) backs off further each time.
      if (subscribedAt !== undefined && performance.now() - subscribedAt >= limits.reconnectMaxMs) {
        this.#failures = 0;
      }
      // Its publishes not acknowledged yet are done with: their callbacks run now.
      mqtt.end(true);
      const next = afterAttempt(attempt);
      switch (next.next) {
        case "fail":
          return this.#o.onFatal(next.error.message, next.error);
        case "fall back": {
          const why = attempt.connack === undefined
            ? "it closed the connection on our MQTT 5 CONNECT"
            : `CONNACK ${attempt.connack}, unsupported protocol version`;
          this.#o.logger.warn(`${where} does not speak MQTT 5 (${why}): trying MQTT 3.1.1`);
          return this.#connect(4);
        }
        case "retry": {
          const delay = backoffDelay(this.#failures++, limits);
          const what = next.problem?.message ??
            (attempt.connack === undefined
              ? `connection to ${where} closed before the broker answered` +
                crossedTransportHint(broker)
              : `connection to ${where} closed by the broker`);
          this.#o.logger.warn(`${what}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
          this.#reconnectTimer = setTimeout(() => this.#connect(5), delay);
        }
      }
    });
  }
}

/** A duration in whole seconds where it is one, as lines say it: "10 s", "0.5 s". */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
