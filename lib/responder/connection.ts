/**
 * The responder's broker connection: connects (MQTT 5 first, MQTT 3.1.1 for a broker that does
 * not take it), subscribes on every connection, reconnects with capped, jittered backoff after
 * a loss, hands each incoming PUBLISH over synchronously, and publishes at QoS 1 with a
 * callback for the broker's acknowledgement. What happens after an attempt ends (give up, fall
 * back to 3.1.1, or retry) is decided in one pure function, {@linkcode afterAttempt}, of what
 * the attempt saw ({@linkcode Attempt}).
 *
 * @module
 */

import type { IPublishPacket, MqttClient } from "mqtt";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
  toBrokerError,
} from "../mqtt.ts";
import { type Logger, printable, printableError, type RateLimitedLog } from "../log.ts";
import { MAX_PAYLOAD_BYTES } from "../protocol/limits.ts";
import type { ResponderLimits } from "./limits.ts";

// The largest packet worth receiving: a maximal payload plus a maximal topic and header.
// Offered to MQTT 5 brokers, which then drop larger messages instead of sending them to us.
const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024 + 16;
// MQTT 3.1.1 CONNACK 1 and MQTT 5 reason 132: the broker does not speak MQTT 5.
const UNSUPPORTED_PROTOCOL_VERSION = new Set([1, 132]);

/** What one connection attempt saw, from CONNECT to the connection's close. */
export interface Attempt {
  /** The MQTT version it spoke: 5, or 4 (3.1.1). */
  readonly version: 4 | 5;
  /** A CONNACK accepted it. */
  connected: boolean;
  /** The code of the CONNACK that refused it, if one did. */
  refusal: number | undefined;
  /** The first failure reported on it, if any. */
  problem: BrokerError | undefined;
}

/** What comes after an attempt, as {@linkcode afterAttempt} decides. */
export type AfterAttempt =
  /** Nothing: trying again cannot fix `error` (refused credentials, an untrusted certificate). */
  | { readonly next: "fail"; readonly error: BrokerError }
  /** A new attempt at once, and every one after it, in MQTT 3.1.1. */
  | { readonly next: "fall back" }
  /** A new attempt in the same version after a backoff; `problem` says why, if known. */
  | { readonly next: "retry"; readonly problem: BrokerError | undefined };

/**
 * Decides what follows a closed connection attempt. A broker that knows only MQTT 3.1.1
 * refuses a version 5 CONNECT (CONNACK 1, or reason 132 from one that knows 5 but will not
 * speak it), or, less politely, hangs up on it: either way, the next attempt speaks 3.1.1.
 * Otherwise a permanent failure ends it all, and anything else is retried.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { afterAttempt } from "./connection.ts";
 * assert.deepEqual(
 *   afterAttempt({ version: 5, connected: false, refusal: 132, problem: undefined }),
 *   { next: "fall back" },
 * );
 * assert.deepEqual(
 *   afterAttempt({ version: 5, connected: true, refusal: undefined, problem: undefined }),
 *   { next: "retry", problem: undefined },
 * );
 * ```
 */
export function afterAttempt(attempt: Readonly<Attempt>): AfterAttempt {
  const { version, refusal, problem } = attempt;
  if (version === 5 && refusal !== undefined && UNSUPPORTED_PROTOCOL_VERSION.has(refusal)) {
    return { next: "fall back" };
  }
  if (problem?.permanent) return { next: "fail", error: problem };
  // A version 5 CONNECT that no CONNACK answered, on a broker we did reach: the hang-up of one
  // that knows only 3.1.1 (or a server that is no broker: 3.1.1 will fail on it the same).
  if (version === 5 && !attempt.connected && problem?.kind !== "unreachable") {
    return { next: "fall back" };
  }
  return { next: "retry", problem };
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
  limits: Pick<ResponderLimits, "keepAliveSeconds" | "reconnectMinMs" | "reconnectMaxMs">;
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
 * seen there.
 */
export class BrokerConnection {
  readonly #o: ConnectionOptions;
  readonly #where: string;
  #client: MqttClient | undefined;
  // Kept for the life of the connection: once a broker did not take MQTT 5, it is not tried
  // again.
  #version: 4 | 5 = 5;
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
    this.#connect();
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

  /** A new MQTT.js client in the current version; a retry reconnects it, a fallback replaces it. */
  #connect(): void {
    if (this.#closed) return;
    const version = this.#version;
    const mqtt = openMqtt(this.#o.broker, {
      clientId: this.#o.clientId,
      keepaliveSeconds: this.#o.limits.keepAliveSeconds,
      protocolVersion: version,
      properties: version === 5 ? { maximumPacketSize: MAX_PACKET_BYTES } : undefined,
      // At any protocol version: a broker may send what we did not allow, or not know to ask.
      maxPacketBytes: MAX_PACKET_BYTES,
      connectTimeoutMs: 10_000,
    });
    this.#client = mqtt;
    // Answer what MQTT.js asks at once: the PUBACK goes out now, and the message is ours.
    mqtt.handleMessage = (packet, done) => {
      if (!this.#closed) this.#o.onMessage(packet);
      done();
    };
    let attempt: Attempt = { version, connected: false, refusal: undefined, problem: undefined };
    mqtt.on("connect", () => {
      attempt.connected = true;
      this.#subscribe(mqtt);
    });
    mqtt.on("error", (error) => {
      attempt.problem ??= toBrokerError(error, this.#o.broker);
      // MQTT.js reports a CONNACK refusal as an error whose code is the CONNACK's.
      const code = (error as { code?: unknown }).code;
      if (typeof code === "number") attempt.refusal ??= code;
    });
    mqtt.on("close", () => {
      if (this.#closed || this.#client !== mqtt) return;
      const seen = attempt;
      attempt = { version, connected: false, refusal: undefined, problem: undefined };
      const after = afterAttempt(seen);
      switch (after.next) {
        case "fail":
          return this.#o.onFatal(after.error.message, after.error);
        case "fall back":
          this.#version = 4;
          this.#o.logger.debug(`${this.#where} did not take MQTT 5: speaking MQTT 3.1.1`);
          mqtt.end(true);
          return this.#connect();
        case "retry": {
          const delay = backoffDelay(this.#failures++, this.#o.limits);
          const what = after.problem?.message ?? `connection to ${this.#where} lost`;
          this.#o.logger.warn(`${what}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
          this.#reconnectTimer = setTimeout(() => {
            if (!this.#closed) mqtt.reconnect();
          }, delay);
        }
      }
    });
  }

  #subscribe(mqtt: MqttClient): void {
    const { filters } = this.#o;
    subscribeAll(mqtt, filters).then(() => {
      if (this.#closed || this.#client !== mqtt) return;
      this.#failures = 0;
      this.#connections++;
      this.#o.logger.info(`subscribed to ${filters.join(" and ")} on ${this.#where}`);
      this.#o.onSubscribed();
    }, (error) => {
      if (this.#closed || this.#client !== mqtt) return;
      // Anything but a refusal is the connection going away meanwhile: "close" handles it.
      if (!(error instanceof SubscriptionRefusedError)) return;
      this.#o.onFatal(
        `${this.#where}: ${error.message} (does the broker's ACL allow this user to read them?)`,
        error,
      );
    });
  }
}
