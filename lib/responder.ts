/**
 * The responding client: a long-running service that answers key exchanges and encrypted
 * action requests for any number of netids at once (docs/protocol.md, steps 2, 2b and 4). It
 * never prints (lines go to the given {@linkcode Logger}) and never exits; it throws
 * {@linkcode ResponderError} only for failures that trying again cannot fix.
 *
 * How it holds up under abuse (docs/security.md): every bad message is dropped with a
 * rate-limited warning; sessions live in a bounded LRU with idle expiry; key exchanges (the
 * only costly work) wait in a bounded, coalescing queue served one per event-loop turn;
 * requests in flight, up to the broker's acknowledgement of their answers, are bounded in
 * count and bytes, in all and per netid; a lost broker is retried with capped, jittered
 * backoff and the subscriptions are renewed on every connection.
 *
 * @module
 */

import type { IPublishPacket, MqttClient } from "mqtt";
import { applyAction, isResponderAction, type ResponderAction } from "./actions.ts";
import { signKeyExchange } from "./auth.ts";
import { BrokerError, brokerLabel, type BrokerOptions, openMqtt, toBrokerError } from "./broker.ts";
import {
  type DhGroup,
  DhPrecomputation,
  encodePublicKeyDer,
  generateKeyPair,
  PRIVATE_KEY_BITS,
} from "./crypto/dh.ts";
import { type Fernet, InvalidToken } from "./crypto/fernet.ts";
import { pemEncode } from "./crypto/pem.ts";
import type { Identity } from "./identity.ts";
import { InFlightBudget, type Ticket } from "./in_flight.ts";
import { CoalescingQueue } from "./kx_queue.ts";
import { errorLine, LineBudget, type Logger, silentLogger } from "./log.ts";
import {
  fernetFor,
  KEY_EXCHANGE,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  parseRequestTopic,
  readPeerPublicKey,
  responseTopic,
  signatureTopic,
} from "./protocol.ts";
import { SessionCache } from "./session_cache.ts";
import { decodeUtf8 } from "./utf8.ts";

/**
 * The one subscription (QoS 1): every netid's key exchanges and action requests. Not a second
 * filter for `+/key-exchange/request` beside it: an MQTT 5 broker delivers a message once per
 * matching filter (mosquitto does), and a key exchange answered twice, with two keys, leaves
 * the client holding the key the responder no longer has.
 */
export const REQUEST_FILTERS: readonly string[] = ["+/+/request"];

/** Resource limits and timings; the defaults, and why, are in {@linkcode DEFAULT_LIMITS}. */
export interface ResponderLimits {
  /** Most live sessions (one per netid); the least recently used is evicted beyond it. */
  maxSessions: number;
  /** A session unused for this long is forgotten, and its key with it. */
  sessionIdleMs: number;
  /** Most netids waiting for a key exchange; new ones beyond it are dropped. */
  maxPendingKeyExchanges: number;
  /** A key exchange that waited longer than this is dropped unanswered: its client is gone. */
  maxKeyExchangeWaitMs: number;
  /** Most requests in flight, from admission to the broker's PUBACK of the answer. */
  maxRequestsInFlight: number;
  /** Most bytes in flight (each request counts its own size and its answer's). */
  maxBytesInFlight: number;
  /** Most requests in flight for one netid: its share of {@linkcode maxRequestsInFlight}. */
  maxRequestsInFlightPerNetid: number;
  /** Most bytes in flight for one netid. */
  maxBytesInFlightPerNetid: number;
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs: number;
  /** Cap of the reconnect delay. */
  reconnectMaxMs: number;
  /** MQTT keepalive: how soon a silently dead broker connection is noticed (~1.5x this). */
  keepAliveSeconds: number;
  /** Log lines of one kind allowed in a burst before rate limiting starts. */
  logBurst: number;
  /** Log lines of one kind per second after a burst. */
  logLinesPerSecond: number;
}

/**
 * The defaults (docs/security.md explains each):
 * - 2,000 sessions, each forgotten after 10 minutes idle;
 * - 1,024 netids waiting for a key exchange, each dropped after 30 s;
 * - 256 requests and 32 MiB in flight, 16 requests and 4 MiB per netid;
 * - reconnect after 0.5 s, doubling to 30 s, with jitter; keepalive 30 s;
 * - log lines of each kind: bursts of 20, then 2 per second.
 */
export const DEFAULT_LIMITS: Readonly<ResponderLimits> = Object.freeze({
  maxSessions: 2_000,
  sessionIdleMs: 10 * 60_000,
  maxPendingKeyExchanges: 1024,
  maxKeyExchangeWaitMs: 30_000,
  maxRequestsInFlight: 256,
  maxBytesInFlight: 32 * 1024 * 1024,
  maxRequestsInFlightPerNetid: 16,
  maxBytesInFlightPerNetid: 4 * 1024 * 1024,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  keepAliveSeconds: 30,
  logBurst: 20,
  logLinesPerSecond: 2,
});

/** What a {@linkcode Responder} needs. */
export interface ResponderOptions {
  broker: BrokerOptions;
  /** The DH group of the key exchanges: the lab's, from `loadLabGroup()`. */
  group: DhGroup;
  /** A long-term identity: given one, every key exchange is signed (step 2b). */
  identity?: Identity;
  /** Where the service's lines go; default silent. */
  logger?: Logger;
  /** Overrides of {@linkcode DEFAULT_LIMITS}. */
  limits?: Partial<ResponderLimits>;
  /** MQTT client id; default `responder-<random hex>`. */
  clientId?: string;
}

/**
 * A failure that trying again cannot fix: bad options, credentials or a certificate the broker
 * or we refuse, a refused subscription. `message` is one line fit for stderr.
 */
export class ResponderError extends Error {
  override name = "ResponderError";
}

/** Counters, for logs and tests. */
export interface ResponderStats {
  /** Live sessions now. */
  sessions: number;
  /** Key exchanges waiting now. */
  pendingKeyExchanges: number;
  /** Requests in flight now, and their bytes. */
  requestsInFlight: number;
  bytesInFlight: number;
  /** Key exchanges completed (sessions created). */
  keyExchanges: number;
  /** Action requests answered. */
  answered: number;
  /** Messages dropped (bad input, limits). */
  dropped: number;
  /** Successful connections (1 + reconnects). */
  connections: number;
}

interface Session {
  fernet: Fernet;
  createdAt: number;
}

interface PendingKeyExchange {
  /** The client's public value, checked on arrival. */
  y: bigint;
  /** Its DER, as received: what the signature of step 2b covers. */
  der: Uint8Array;
}

// The largest packet worth receiving: a maximal payload plus a maximal topic and header.
// Offered to MQTT 5 brokers, which then drop larger messages instead of sending them to us.
const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024 + 16;
// MQTT 3.1.1 CONNACK 1 and MQTT 5 reason 132: the broker does not speak MQTT 5.
const UNSUPPORTED_PROTOCOL_VERSION = new Set([1, 132]);

/**
 * The service. `await Responder.start(options)` connects and subscribes; `run()` resolves when
 * `stop()` ends it, or rejects with a {@linkcode ResponderError} on a fatal failure. The example
 * of `requestTransform` in ./client.ts runs one with a client.
 */
export class Responder implements AsyncDisposable {
  /** Resolves once the first connection's subscriptions are acknowledged. */
  readonly ready: Promise<void>;

  readonly #o: ResponderOptions;
  readonly #limits: ResponderLimits;
  readonly #log: Logger;
  readonly #where: string;
  readonly #clientId: string;
  readonly #sessions: SessionCache<Session>;
  readonly #kxQueue: CoalescingQueue<PendingKeyExchange>;
  readonly #inFlight: InFlightBudget;
  readonly #precomputation: DhPrecomputation;
  readonly #lineBudgets = new Map<string, LineBudget>();
  readonly #readiness = Promise.withResolvers<void>();
  readonly #finished = Promise.withResolvers<void>();
  readonly #work = new Set<Promise<void>>();
  #protocolVersion: 4 | 5 = 5;
  #mqtt: MqttClient | undefined;
  #running = false;
  #stopping = false;
  #failures = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #kxTimer: ReturnType<typeof setTimeout> | undefined;
  #kxBusy: Promise<void> | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #stats = { keyExchanges: 0, answered: 0, dropped: 0, connections: 0 };

  /** Checks the options; throws {@linkcode ResponderError} for bad ones. */
  constructor(options: ResponderOptions) {
    this.#o = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!(typeof value === "number" && value > 0 && Number.isFinite(value))) {
        throw new ResponderError(`invalid limit ${name}: ${value}`);
      }
    }
    if (this.#limits.reconnectMaxMs < this.#limits.reconnectMinMs) {
      throw new ResponderError("invalid limits: reconnectMaxMs < reconnectMinMs");
    }
    this.#log = options.logger ?? silentLogger;
    this.#where = brokerLabel(options.broker);
    this.#clientId = options.clientId ??
      `responder-${crypto.getRandomValues(new Uint8Array(6)).toHex()}`;
    this.#sessions = new SessionCache({
      maxEntries: this.#limits.maxSessions,
      idleMs: this.#limits.sessionIdleMs,
    });
    this.#kxQueue = new CoalescingQueue(this.#limits.maxPendingKeyExchanges);
    this.#precomputation = new DhPrecomputation(options.group);
    this.#inFlight = new InFlightBudget({
      requests: this.#limits.maxRequestsInFlight,
      bytes: this.#limits.maxBytesInFlight,
      requestsPerNetid: this.#limits.maxRequestsInFlightPerNetid,
      bytesPerNetid: this.#limits.maxBytesInFlightPerNetid,
    });
    this.ready = this.#readiness.promise;
    this.ready.catch(() => {}); // run() reports the same failure
  }

  /**
   * Creates a responder, runs it, and resolves once it is subscribed. Rejects with
   * {@linkcode ResponderError} on a fatal failure before that; a broker that is not up yet is
   * retried, and this waits until it is.
   */
  static async start(options: ResponderOptions): Promise<Responder> {
    const responder = new Responder(options);
    const running = responder.run();
    running.catch(() => {}); // reported through ready, or to whoever awaits run()
    try {
      await Promise.race([responder.ready, running.then(() => responder.ready)]);
    } catch (error) {
      await responder.stop();
      throw error;
    }
    return responder;
  }

  /** Counters and sizes right now. */
  stats(): ResponderStats {
    return {
      ...this.#stats,
      sessions: this.#sessions.size,
      pendingKeyExchanges: this.#kxQueue.size,
      requestsInFlight: this.#inFlight.requests,
      bytesInFlight: this.#inFlight.bytes,
    };
  }

  /**
   * Serves until {@linkcode stop} (then resolves) or a fatal failure (then rejects with
   * {@linkcode ResponderError}). Calling it again returns the same promise.
   */
  run(): Promise<void> {
    if (!this.#running) {
      this.#running = true;
      this.#log.info(`connecting to ${this.#where}`);
      if (this.#o.identity) {
        this.#log.info(
          `identity ${this.#o.identity.fingerprint}: clients check it with ` +
            `--trust ${this.#o.identity.fingerprint}`,
        );
      }
      const sweepEvery = Math.min(60_000, this.#limits.sessionIdleMs);
      this.#sweepTimer = setInterval(() => {
        const expired = this.#sessions.sweep();
        if (expired > 0) this.#log.debug(`${expired} idle session(s) expired`);
      }, sweepEvery);
      Deno.unrefTimer(this.#sweepTimer);
      this.#connect();
    }
    return this.#finished.promise;
  }

  /**
   * Stops serving: closes the connection, stops the key-exchange queue, waits for the requests
   * being answered, forgets every session. Idempotent; never rejects.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#readiness.reject(new ResponderError("stopped before it was subscribed"));
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#kxTimer);
    clearInterval(this.#sweepTimer);
    this.#kxQueue.clear();
    const mqtt = this.#mqtt;
    this.#mqtt = undefined;
    if (mqtt) await new Promise<void>((resolve) => mqtt.end(true, {}, () => resolve()));
    await this.#kxBusy;
    await Promise.allSettled([...this.#work]);
    this.#sessions.clear();
    for (const budget of this.#lineBudgets.values()) budget.flush();
    this.#finished.resolve();
  }

  /** {@linkcode stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ------------------------------------------------------------------------------------------
  // The connection

  #connect(): void {
    if (this.#stopping) return;
    const v5 = this.#protocolVersion === 5;
    const mqtt = openMqtt(this.#o.broker, {
      clientId: this.#clientId,
      keepaliveSeconds: this.#limits.keepAliveSeconds,
      protocolVersion: this.#protocolVersion,
      properties: v5 ? { maximumPacketSize: MAX_PACKET_BYTES } : undefined,
      // At any protocol version: a broker may send what we did not allow, or not know to ask.
      maxPacketBytes: MAX_PACKET_BYTES,
      connectTimeoutMs: 10_000,
    });
    this.#mqtt = mqtt;
    // Answer what MQTT.js asks at once: the PUBACK goes out now, and the request is ours.
    mqtt.handleMessage = (packet, done) => {
      this.#onMessage(packet);
      done();
    };
    let problem: BrokerError | undefined;
    let answered = false; // a CONNACK came on this attempt
    mqtt.on("connect", () => {
      answered = true;
      this.#onConnect(mqtt);
    });
    mqtt.on("error", (error) => {
      problem ??= toBrokerError(error, this.#o.broker);
      const code = (error as { code?: unknown }).code;
      if (v5 && typeof code === "number" && UNSUPPORTED_PROTOCOL_VERSION.has(code)) {
        problem = undefined;
        this.#protocolVersion = 4;
      }
    });
    mqtt.on("close", () => {
      if (this.#stopping || this.#mqtt !== mqtt) return;
      const reason = problem;
      problem = undefined;
      if (reason?.permanent) return this.#fail(new ResponderError(reason.message));
      // A broker that knows only MQTT 3.1.1 refuses a version 5 CONNECT (CONNACK 1), or, less
      // politely, hangs up on it: either way, the next attempt speaks 3.1.1.
      if (v5 && !answered && reason?.kind !== "unreachable") this.#protocolVersion = 4;
      if (v5 && this.#protocolVersion === 4) {
        this.#log.debug(`${this.#where} did not take MQTT 5: speaking MQTT 3.1.1`);
        mqtt.end(true);
        return this.#connect();
      }
      answered = false;
      const delay = backoffDelay(this.#failures++, this.#limits);
      const what = reason?.message ?? `connection to ${this.#where} lost`;
      this.#log.warn(`${what}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
      this.#reconnectTimer = setTimeout(() => {
        if (!this.#stopping) mqtt.reconnect();
      }, delay);
    });
  }

  #onConnect(mqtt: MqttClient): void {
    mqtt.subscribe([...REQUEST_FILTERS], { qos: 1 }, (error, granted) => {
      if (this.#stopping || this.#mqtt !== mqtt) return;
      if (error) return; // the connection went away meanwhile: "close" handles it
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) {
        return this.#fail(
          new ResponderError(
            `${this.#where} refused the subscription to ${refused.join(" and ")} ` +
              "(does the broker's ACL allow this user to read them?)",
          ),
        );
      }
      this.#failures = 0;
      this.#stats.connections++;
      this.#log.info(`subscribed to ${REQUEST_FILTERS.join(" and ")} on ${this.#where}`);
      this.#readiness.resolve();
    });
  }

  #fail(error: ResponderError): void {
    this.#readiness.reject(error);
    this.#finished.reject(error);
    void this.stop();
  }

  // ------------------------------------------------------------------------------------------
  // Incoming messages: cheap checks only, synchronously, before MQTT.js takes the next packet

  #onMessage(packet: IPublishPacket): void {
    if (this.#stopping) return;
    const payload = packet.payload as Uint8Array;
    const where = printable(packet.topic);
    if (packet.retain) {
      // Published before we subscribed: its client is long gone, or it is replayed junk.
      return this.#drop("retained", `ignored a retained request on ${where}`);
    }
    const request = parseRequestTopic(packet.topic);
    if (request === undefined) {
      return this.#drop("topic", `ignored a message on ${where}: not a request`);
    }
    if (request.kind === "key-exchange") return this.#onKeyExchange(request.netid, payload);
    if (!isResponderAction(request.action)) {
      return this.#drop("action", `ignored a request on ${where}: unknown action`);
    }
    this.#onAction(request.netid, request.action, payload);
  }

  #onKeyExchange(netid: string, payload: Uint8Array): void {
    const who = printable(netid);
    let pending: PendingKeyExchange;
    try {
      // Checked now (cheap: no exponentiation), so the queue holds only keys worth the work.
      pending = readPeerPublicKey(this.#o.group, payload);
    } catch (error) {
      return this.#drop("key", `key exchange for ${who} dropped: ${oneLine(error)}`);
    }
    const result = this.#kxQueue.offer(netid, pending);
    if (result === "full") {
      return this.#drop(
        "queue",
        `key exchange queue full (${this.#kxQueue.capacity} netids waiting): dropped ${who}`,
      );
    }
    if (result === "replaced") {
      this.#line("debug", "kx", `key exchange for ${who} replaced a queued one`);
    }
    this.#scheduleKeyExchange();
  }

  /**
   * One key exchange per event-loop turn (a macrotask), so that action requests get the loop
   * between two exponentiations instead of waiting for a whole backlog.
   */
  #scheduleKeyExchange(): void {
    if (this.#kxTimer !== undefined || this.#kxBusy || this.#stopping) return;
    if (this.#kxQueue.size === 0) return;
    this.#kxTimer = setTimeout(() => {
      this.#kxTimer = undefined;
      this.#kxBusy = this.#keyExchange().catch((error) => {
        this.#drop("bug", `key exchange failed: ${oneLine(error)}`);
      }).finally(() => {
        this.#kxBusy = undefined;
        this.#scheduleKeyExchange();
      });
    }, 0);
  }

  async #keyExchange(): Promise<void> {
    const item = this.#kxQueue.take();
    if (item === undefined || this.#stopping) return;
    const netid = item.key;
    const who = printable(netid);
    const waited = performance.now() - item.since;
    if (waited > this.#limits.maxKeyExchangeWaitMs) {
      return this.#drop("stale", `key exchange for ${who} dropped: queued for ${ms(waited)}`);
    }
    const started = performance.now();
    const { group, identity } = this.#o;
    const dh = { precomputation: this.#precomputation };
    const ours = generateKeyPair(group, PRIVATE_KEY_BITS, dh);
    const fernet = await fernetFor(group, ours, item.value.y, dh);
    const ourDer = encodePublicKeyDer(group, ours.publicKey);
    const signature = identity
      ? await signKeyExchange(identity, netid, item.value.der, ourDer)
      : undefined;
    if (this.#stopping) return;
    // Stored before the answer goes out: the client's request can only follow it.
    this.#sessions.set(netid, { fernet, createdAt: performance.now() });
    this.#stats.keyExchanges++;
    this.#publish(responseTopic(netid, KEY_EXCHANGE), pemEncode("PUBLIC KEY", ourDer));
    if (signature) this.#publish(signatureTopic(netid), new TextDecoder().decode(signature));
    this.#line(
      "info",
      "session",
      `session for ${who} ready${signature ? " (signed)" : ""} in ` +
        `${ms(performance.now() - started)} (queued ${ms(started - item.since)})`,
    );
  }

  #onAction(netid: string, action: ResponderAction, payload: Uint8Array): void {
    const who = printable(netid);
    const size = payload.length;
    if (size > MAX_PAYLOAD_BYTES) {
      return this.#drop(
        "size",
        `${action} request for ${who} dropped: ${size} bytes is over the ` +
          `${MAX_PAYLOAD_BYTES}-byte limit`,
      );
    }
    // The session is looked up now: a client can only encrypt under a key already published,
    // so the current session is the only one that can open this token.
    const session = this.#sessions.get(netid);
    if (session === undefined) {
      const note = this.#kxQueue.has(netid) ? " (its key exchange is still queued)" : "";
      return this.#drop("session", `${action} request for ${who} dropped: no session${note}`);
    }
    // The answer is about the size of the request (twice it at most, for random): reserve both.
    const ticket = this.#inFlight.admit(netid, 3 * size);
    if (typeof ticket === "string") {
      const held = ticket === "share"
        ? `${who} already has requests being answered up to its share (` +
          `${this.#limits.maxRequestsInFlightPerNetid} requests, ` +
          `${this.#limits.maxBytesInFlightPerNetid} bytes)`
        : `no room in the in-flight budget (${this.#inFlight.requests} requests, ` +
          `${this.#inFlight.bytes} of ${this.#limits.maxBytesInFlight} bytes in flight)`;
      return this.#drop(ticket, `${action} request for ${who} dropped: ${held}`);
    }
    const work = this.#answer(netid, who, action, session, payload, ticket).catch((error) => {
      this.#inFlight.release(ticket);
      this.#drop("bug", `${action} request for ${who} failed: ${oneLine(error)}`);
    }).finally(() => this.#work.delete(work));
    this.#work.add(work);
  }

  async #answer(
    netid: string,
    who: string,
    action: ResponderAction,
    session: Session,
    token: Uint8Array,
    ticket: Ticket,
  ): Promise<void> {
    const started = performance.now();
    let plain: Uint8Array;
    try {
      plain = await session.fernet.decrypt(token);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      this.#inFlight.release(ticket);
      return this.#drop("token", `${action} request for ${who} dropped: invalid token`);
    }
    const text = plain.length > MAX_MESSAGE_BYTES ? undefined : decodeUtf8(plain);
    if (text === undefined) {
      this.#inFlight.release(ticket);
      return this.#drop(
        "text",
        `${action} request for ${who} dropped: the message is ${
          plain.length > MAX_MESSAGE_BYTES ? "over the size limit" : "not UTF-8"
        }`,
      );
    }
    const answer = await session.fernet.encrypt(applyAction(action, text));
    this.#inFlight.resize(ticket, token.length + answer.length);
    if (this.#stopping) return this.#inFlight.release(ticket);
    // Published first, logged after: a log line never costs an answer.
    this.#publish(responseTopic(netid, action), answer, () => this.#inFlight.release(ticket));
    this.#stats.answered++;
    this.#line(
      "info",
      "answer",
      `answered ${who}/${action} (${plain.length} bytes) in ${ms(performance.now() - started)}`,
    );
  }

  /**
   * A QoS 1 publish on the current connection. `done` runs when the broker has acknowledged
   * it, or it can no longer be delivered. A loss is only logged: the client will time out.
   */
  #publish(topic: string, payload: string, done: () => void = () => {}): void {
    const mqtt = this.#mqtt;
    if (mqtt === undefined || !mqtt.connected) {
      this.#line("debug", "lost", `answer on ${printable(topic)} lost: not connected`);
      return done();
    }
    mqtt.publish(topic, payload, { qos: 1 }, (error) => {
      done();
      if (error) {
        this.#line("debug", "lost", `answer on ${printable(topic)} may be lost: ${oneLine(error)}`);
      }
    });
  }

  #drop(kind: string, message: string): void {
    this.#stats.dropped++;
    this.#line("warn", kind, message);
  }

  /** A log line through the budget of its kind, so that no flood becomes a flood of lines. */
  #line(level: "debug" | "info" | "warn", kind: string, message: string): void {
    const key = `${level}:${kind}`;
    let budget = this.#lineBudgets.get(key);
    if (budget === undefined) {
      budget = new LineBudget(this.#limits.logBurst, this.#limits.logLinesPerSecond);
      this.#lineBudgets.set(key, budget);
    }
    budget.pass(message, (line) => this.#log[level](line));
  }
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from `reconnectMinMs`,
 * capped at `reconnectMaxMs`, with "equal jitter" (a random point in the upper half), so it
 * never collapses to zero, yet responders restarted together spread out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay } from "./responder.ts";
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

/**
 * `text` made safe for one log line: control and bidi characters escaped (a hostile netid
 * must not be able to forge log lines or recolour a terminal), and cut to `max` characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./responder.ts";
 * assert.equal(printable("evil\nresponder: answered"), "evil\\nresponder: answered");
 * ```
 */
export function printable(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => c === "\n" ? "\\n" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

function oneLine(error: unknown): string {
  return printable(errorLine(error), 200);
}
