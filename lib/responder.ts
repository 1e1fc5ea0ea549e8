/**
 * The responding client: a long-running service that answers key exchanges and encrypted
 * action requests for any number of netids at once (PROTOCOL.md, steps 2 and 4). It never
 * prints (lines go to the given {@linkcode Logger}), never exits, and throws
 * {@linkcode ResponderError} only for failures that retrying cannot fix.
 *
 * Robustness, in short: every bad message is logged once (warnings are rate-limited) and
 * dropped; sessions live in a bounded LRU with idle expiry; key exchanges (the only costly
 * work, ~10 ms of CPU each) wait in a bounded, coalescing queue served one per macrotask turn,
 * so action requests interleave with a flood of them; a lost broker is retried with capped,
 * jittered exponential backoff, and the subscriptions are renewed on every connection.
 *
 * @example
 * ```ts
 * import { Responder } from "./responder.ts";
 * import { loadLabGroup } from "./protocol.ts";
 *
 * await using responder = await Responder.start({
 *   host: "localhost",
 *   port: 1884,
 *   group: loadLabGroup(),
 * });
 * // ... serving until the scope ends (or responder.stop())
 * ```
 * @module
 */

import {
  decodePublicKeyPem,
  type DhGroup,
  encodePublicKeyPem,
  generateKeyPair,
} from "./crypto/dh.ts";
import { type Fernet, InvalidToken } from "./crypto/fernet.ts";
import { CoalescingQueue } from "./kx_queue.ts";
import { type Logger, silentLogger } from "./log.ts";
import { type BrokerOptions, MqttClient, MqttError, type MqttMessage } from "./mqtt.ts";
import {
  type Action,
  agreeFernet,
  applyAction,
  decodeUtf8,
  isAction,
  KEY_EXCHANGE,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PUBLIC_KEY_PEM_BYTES,
  parseRequestTopic,
  responseTopic,
} from "./protocol.ts";
import { SessionCache } from "./session_cache.ts";

/**
 * The two subscriptions (QoS 1): every netid's key exchange and action requests. The second
 * also matches key exchanges. MQTT 3.1.1 (§3.3.5) lets a broker deliver one copy per matching
 * filter; mosquitto and aedes deliver a live message once (a retained one once per filter, and
 * retained requests are dropped anyway). A broker that did duplicate live key exchanges would
 * make us answer twice with two keys, and only the first queued copy coalesces away: the
 * protocol names both filters, and telling a duplicate from a client that deliberately repeats
 * its public key is not possible from the payload.
 *
 * @example
 * ```ts
 * import { REQUEST_FILTERS } from "./responder.ts";
 * REQUEST_FILTERS; // ["+/key-exchange/request", "+/+/request"]
 * ```
 */
export const REQUEST_FILTERS: readonly string[] = [`+/${KEY_EXCHANGE}/request`, "+/+/request"];

/**
 * Resource limits and timings. Every field has a default in {@linkcode DEFAULT_LIMITS}; the
 * numbers and the reasons for them are documented there.
 *
 * @example
 * ```ts
 * import type { ResponderLimits } from "./responder.ts";
 * const small: Partial<ResponderLimits> = { maxSessions: 100, sessionIdleMs: 60_000 };
 * ```
 */
export interface ResponderLimits {
  /** Most live sessions (one per netid); the least recently used is evicted beyond it. */
  maxSessions: number;
  /** A session unused for this long is forgotten (its key with it). */
  sessionIdleMs: number;
  /** Most distinct netids waiting for a key exchange; new ones beyond it are dropped. */
  maxPendingKeyExchanges: number;
  /** A key exchange that waited longer than this is dropped unanswered: its client is gone. */
  maxKeyExchangeWaitMs: number;
  /** Most action requests being decrypted/answered at once; beyond it they are dropped. */
  maxActionsInFlight: number;
  /** Most request payload bytes being answered at once; beyond it requests are dropped. */
  maxActionBytesInFlight: number;
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs: number;
  /** Cap of the reconnect delay. */
  reconnectMaxMs: number;
  /** MQTT keepalive: how fast a silently dead broker connection is noticed (~1.5x this). */
  keepAliveSeconds: number;
  /** Warnings allowed in a burst before rate limiting starts. */
  warningBurst: number;
  /** Warnings per second allowed after a burst. */
  warningsPerSecond: number;
}

/**
 * The defaults, and why:
 * - `maxSessions` 10,000: a session is a netid plus a Fernet (two CryptoKeys), well under
 *   1 KiB, so ~10 MiB at most; far more clients than one lab responder serves at once.
 * - `sessionIdleMs` 10 min: a client uses its session within its own deadline (10 s by
 *   default); ten minutes leaves room for slow humans without keeping keys around for long.
 * - `maxPendingKeyExchanges` 1,024: at ~10 ms of CPU each that is ~10 s of work, the default
 *   client deadline; a PEM is ~1.1 KiB, so ~1 MiB of memory.
 * - `maxKeyExchangeWaitMs` 30 s: three times the default client deadline; an answer later than
 *   that reaches nobody, so a backlog is skipped instead of worked through.
 * - `maxActionsInFlight` 256 and `maxActionBytesInFlight` 32 MiB: an action costs micro- to
 *   milliseconds, so these are only reached when requests arrive faster than Web Crypto
 *   answers them; they bound the memory held by requests being answered (16 maximal ones).
 * - reconnect 0.5 s doubling to 30 s, with jitter: quick recovery from a broker restart, and
 *   many responders do not hammer a broker that comes back in lockstep.
 * - keepalive 30 s, the MQTT client's default.
 * - warnings: bursts of 50, then 5 per second, so a garbage flood cannot fill a disk.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "./responder.ts";
 * console.log(DEFAULT_LIMITS.maxSessions); // 10000
 * ```
 */
export const DEFAULT_LIMITS: Readonly<ResponderLimits> = Object.freeze({
  maxSessions: 10_000,
  sessionIdleMs: 10 * 60_000,
  maxPendingKeyExchanges: 1024,
  maxKeyExchangeWaitMs: 30_000,
  maxActionsInFlight: 256,
  maxActionBytesInFlight: 32 * 1024 * 1024,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  keepAliveSeconds: 30,
  warningBurst: 50,
  warningsPerSecond: 5,
});

/** A ref'd Node-style timer: the responder is long-lived, so lib/timer.ts's saving is moot. */
type NodeTimer = ReturnType<typeof setTimeout>;

/** Largest MQTT packet we take in: a maximal payload plus a maximal topic and header. */
const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024 + 16;

/**
 * What a {@linkcode Responder} needs. `group` is the lab's DH group (`loadLabGroup()`).
 *
 * @example
 * ```ts
 * import type { ResponderOptions } from "./responder.ts";
 * import { loadLabGroup } from "./protocol.ts";
 * const options: ResponderOptions = {
 *   host: "broker.example",
 *   port: 8883,
 *   tls: true,
 *   group: loadLabGroup(),
 *   limits: { maxSessions: 1000 },
 * };
 * ```
 */
export interface ResponderOptions extends BrokerOptions {
  /** The DH group of the key exchanges: the lab's, from `loadLabGroup()`. */
  group: DhGroup;
  /** Where the service's lines go; default silent. */
  logger?: Logger;
  /** Overrides of {@linkcode DEFAULT_LIMITS}. */
  limits?: Partial<ResponderLimits>;
  /** MQTT client id; default `responder-<random hex>`. */
  clientId?: string;
}

/**
 * A failure retrying cannot fix: bad options, the broker refusing our credentials, a refused
 * subscription. `message` is one line fit for stderr.
 *
 * @example
 * ```ts
 * import { ResponderError } from "./responder.ts";
 * const e = new ResponderError("broker refused connection: not authorized");
 * console.log(e.name); // "ResponderError"
 * ```
 */
export class ResponderError extends Error {
  /** Always "ResponderError". */
  override name = "ResponderError";
}

/**
 * Counters, for logs and tests.
 *
 * @example
 * ```ts
 * import type { ResponderStats } from "./responder.ts";
 * const show = (s: ResponderStats) => `${s.sessions} sessions, ${s.answered} answered`;
 * ```
 */
export interface ResponderStats {
  /** Live sessions now. */
  sessions: number;
  /** Key exchanges waiting now. */
  pendingKeyExchanges: number;
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

/**
 * The service. Create it, then {@linkcode Responder.run} it, or use
 * {@linkcode Responder.start}, which also waits for the first subscription.
 *
 * @example
 * ```ts
 * import { Responder } from "./responder.ts";
 * import { loadLabGroup } from "./protocol.ts";
 * const responder = new Responder({ host: "localhost", port: 1884, group: loadLabGroup() });
 * const finished = responder.run(); // rejects with ResponderError on a fatal failure
 * await responder.ready; // subscribed
 * await responder.stop();
 * await finished;
 * ```
 */
export class Responder implements AsyncDisposable {
  /** Resolves once the first connection's subscriptions are acknowledged. */
  readonly ready: Promise<void>;

  readonly #options: ResponderOptions;
  readonly #limits: ResponderLimits;
  readonly #log: Logger;
  readonly #warn: (message: string) => void;
  readonly #where: string;
  readonly #sessions: SessionCache<Session>;
  readonly #kxQueue: CoalescingQueue<string>;
  #readyResolvers = Promise.withResolvers<void>();
  #mqtt: MqttClient | undefined;
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #kxTimer: NodeTimer | undefined;
  #kxBusy: Promise<void> | undefined;
  #kxQueueFull = 0;
  #actions = new Set<Promise<void>>();
  #actionBytes = 0;
  #actionsOverLimit = 0;
  #sweepTimer: NodeTimer | undefined;
  #stats = { keyExchanges: 0, answered: 0, dropped: 0, connections: 0 };
  #flushWarnings: () => void;

  /**
   * Checks the options; throws {@linkcode ResponderError} for bad ones.
   *
   * @example
   * ```ts
   * import { Responder, ResponderError } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * const group = loadLabGroup();
   * try {
   *   new Responder({ host: "localhost", port: 1884, group, limits: { maxSessions: 0 } });
   * } catch (error) {
   *   console.log(error instanceof ResponderError); // true: "invalid limit maxSessions: 0"
   * }
   * ```
   */
  constructor(options: ResponderOptions) {
    this.#options = options;
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
    const limited = rateLimited(
      this.#log,
      this.#limits.warningBurst,
      this.#limits.warningsPerSecond,
    );
    this.#warn = limited.warn;
    this.#flushWarnings = limited.flush;
    this.#where = options.host.includes(":")
      ? `[${options.host}]:${options.port}`
      : `${options.host}:${options.port}`;
    this.#sessions = new SessionCache({
      maxEntries: this.#limits.maxSessions,
      idleMs: this.#limits.sessionIdleMs,
    });
    this.#kxQueue = new CoalescingQueue(this.#limits.maxPendingKeyExchanges);
    this.ready = this.#readyResolvers.promise;
    this.ready.catch(() => {}); // run() reports the same failure
  }

  /**
   * Creates a responder, runs it, and resolves once it is subscribed. Rejects with
   * {@linkcode ResponderError} on a fatal failure before that (a transient one, like a broker
   * that is not up yet, is retried: this then waits until it is).
   *
   * @example
   * ```ts
   * import { Responder } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * const group = loadLabGroup();
   * const responder = await Responder.start({ host: "localhost", port: 1884, group });
   * await responder.stop();
   * ```
   */
  static async start(options: ResponderOptions): Promise<Responder> {
    const responder = new Responder(options);
    const running = responder.run();
    running.catch(() => {}); // before ready it rejects below; later, via run() for who awaits it
    try {
      await Promise.race([responder.ready, running.then(() => responder.ready)]);
    } catch (error) {
      await responder.stop();
      throw error;
    }
    return responder;
  }

  /**
   * Counters and sizes right now.
   *
   * @example
   * ```ts
   * import { Responder } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * await using responder = await Responder.start({
   *   host: "localhost",
   *   port: 1884,
   *   group: loadLabGroup(),
   * });
   * const { sessions, answered, dropped } = responder.stats();
   * console.log(`${sessions} sessions, ${answered} answered, ${dropped} dropped`);
   * ```
   */
  stats(): ResponderStats {
    return {
      ...this.#stats,
      sessions: this.#sessions.size,
      pendingKeyExchanges: this.#kxQueue.size,
    };
  }

  /**
   * Serves until {@linkcode stop} (then resolves) or a fatal failure (then rejects with
   * {@linkcode ResponderError}). Connection losses are retried with capped, jittered backoff.
   * Calling it again returns the same promise (so after {@linkcode start}, `run()` is how to
   * learn of a later fatal failure).
   *
   * @example
   * ```ts
   * import { Responder } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * const responder = new Responder({ host: "localhost", port: 1884, group: loadLabGroup() });
   * Deno.addSignalListener("SIGTERM", () => responder.stop());
   * await responder.run();
   * ```
   */
  run(): Promise<void> {
    this.#running ??= this.#serve();
    return this.#running;
  }

  /**
   * Stops serving: closes the connection, stops the key-exchange queue, waits for requests
   * being answered, forgets every session. Idempotent; never rejects.
   *
   * @example
   * ```ts
   * import { Responder } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * const responder = await Responder.start({
   *   host: "localhost",
   *   port: 1884,
   *   group: loadLabGroup(),
   * });
   * await responder.stop(); // sessions, and their keys, are gone
   * await responder.stop(); // a no-op
   * ```
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#readyResolvers.reject(new ResponderError("stopped before it was subscribed"));
    this.#wake?.();
    clearTimeout(this.#kxTimer);
    this.#kxTimer = undefined;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#kxQueue.clear();
    await this.#mqtt?.close();
    await this.#running?.catch(() => {});
    await this.#kxBusy;
    await Promise.allSettled([...this.#actions]);
    this.#sessions.clear();
    this.#flushWarnings();
  }

  /**
   * Same as {@linkcode stop}, for `await using`.
   *
   * @example
   * ```ts
   * import { Responder } from "./responder.ts";
   * import { loadLabGroup } from "./protocol.ts";
   * {
   *   await using responder = await Responder.start({
   *     host: "localhost",
   *     port: 1884,
   *     group: loadLabGroup(),
   *   });
   *   // ... serving
   * } // stopped here, also when the block throws
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #serve(): Promise<void> {
    const sweepEvery = Math.min(60_000, this.#limits.sessionIdleMs);
    const sweeper = setInterval(() => {
      const expired = this.#sessions.sweep();
      if (expired > 0) this.#log.debug(`${expired} idle session(s) expired`);
    }, sweepEvery);
    Deno.unrefTimer(sweeper); // never what keeps a process alive
    this.#sweepTimer = sweeper;
    let failures = 0;
    try {
      while (!this.#stopping) {
        const error = await this.#connectAndServe();
        if (this.#stopping) break;
        if (error === "served") {
          failures = 0; // it was up: start again from the shortest delay
        }
        const delay = backoffDelay(failures++, this.#limits);
        const reason = error === "served" ? "" : `${error.message}; `;
        this.#log.warn(`${reason}reconnecting in ${(delay / 1000).toFixed(1)} s`);
        await this.#sleep(delay);
      }
    } catch (error) {
      this.#readyResolvers.reject(error);
      throw error;
    } finally {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
    }
  }

  /**
   * One connection: connect, subscribe, serve until it ends. Returns "served" after a
   * connection that was up and then lost, or the MqttError of a failed attempt; throws
   * ResponderError when retrying cannot help.
   */
  async #connectAndServe(): Promise<"served" | MqttError> {
    const o = this.#options;
    let mqtt: MqttClient;
    try {
      mqtt = await MqttClient.connect({
        host: o.host,
        port: o.port,
        clientId: o.clientId ?? `responder-${crypto.getRandomValues(new Uint8Array(6)).toHex()}`,
        tls: o.tls,
        caCerts: o.caCerts,
        username: o.username,
        password: o.password,
        keepAliveSeconds: this.#limits.keepAliveSeconds,
        maxPacketBytes: MAX_PACKET_BYTES,
        onMessage: (m) => this.#onMessage(m),
        onDrop: (reason) => this.#drop(`dropped a message: ${reason}`),
      });
    } catch (error) {
      return this.#classify(error);
    }
    this.#mqtt = mqtt;
    try {
      if (this.#stopping) return "served";
      try {
        await mqtt.subscribe([...REQUEST_FILTERS], 1);
      } catch (error) {
        return this.#classify(error);
      }
      this.#stats.connections++;
      this.#log.info(`subscribed to ${REQUEST_FILTERS.join(" and ")} on ${this.#where}`);
      this.#readyResolvers.resolve();
      const lost = await mqtt.closed;
      if (lost !== undefined && !this.#stopping) this.#log.warn(lost.message);
      return "served";
    } finally {
      this.#mqtt = undefined;
      await mqtt.close();
    }
  }

  /** Transient MqttErrors are returned for a retry; everything else is fatal. */
  #classify(error: unknown): MqttError {
    if (!(error instanceof MqttError)) throw error;
    switch (error.kind) {
      case "connect":
      case "timeout":
      case "lost":
      case "protocol":
      case "closed":
        return error;
      case "refused":
        // "server unavailable" is the broker saying "later"; credentials will not fix
        // themselves.
        if (/server unavailable/.test(error.message)) return error;
        throw new ResponderError(error.message);
      default:
        // tls (certificate), invalid (options), subscription (ACL), handler (our bug).
        throw new ResponderError(error.message);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).finally(() => this.#wake = undefined);
  }

  #drop(message: string): void {
    this.#stats.dropped++;
    this.#warn(message);
  }

  /** Synchronous on purpose (MqttClient calls it before acknowledging): cheap checks only. */
  #onMessage(message: MqttMessage): void {
    if (this.#stopping) return;
    const where = printable(message.topic);
    if (message.retain) {
      // Published before we subscribed: its client is long gone, or it is replayed junk.
      return this.#drop(`ignored a retained request on ${where}`);
    }
    const request = parseRequestTopic(message.topic);
    if (request === undefined) return this.#drop(`ignored a message on ${where}: not a request`);
    if (request.kind === "key-exchange") return this.#onKeyExchange(request.netid, message);
    if (!isAction(request.action)) {
      return this.#drop(`ignored a request on ${where}: unknown action`);
    }
    this.#onAction(request.netid, request.action, message);
  }

  #onKeyExchange(netid: string, message: MqttMessage): void {
    const who = printable(netid);
    if (message.payload.length > MAX_PUBLIC_KEY_PEM_BYTES) {
      return this.#drop(
        `key exchange for ${who} dropped: ${message.payload.length} bytes is over the ` +
          `${MAX_PUBLIC_KEY_PEM_BYTES}-byte limit`,
      );
    }
    const pem = decodeUtf8(message.payload);
    if (pem === undefined) return this.#drop(`key exchange for ${who} dropped: not UTF-8 text`);
    try {
      // Checked now (cheap: no exponentiation) so the queue holds only keys worth the work.
      decodePublicKeyPem(this.#options.group, pem);
    } catch (error) {
      return this.#drop(`key exchange for ${who} dropped: ${oneLine(error)}`);
    }
    const result = this.#kxQueue.offer(netid, pem);
    if (result === "full") {
      if (this.#kxQueueFull++ === 0) {
        this.#warn(
          `key exchange queue full (${this.#kxQueue.capacity} netids waiting): ` +
            "dropping new ones until it drains",
        );
      }
      this.#stats.dropped++;
      return;
    }
    if (result === "replaced") this.#log.debug(`key exchange for ${who} replaced a queued one`);
    this.#scheduleKeyExchange();
  }

  /**
   * One key exchange per macrotask turn (setTimeout), so the MQTT reader and action requests
   * get the event loop between two ~10 ms exponentiations instead of waiting for a backlog.
   */
  #scheduleKeyExchange(): void {
    if (this.#kxTimer !== undefined || this.#kxBusy || this.#stopping) return;
    if (this.#kxQueue.size === 0) {
      if (this.#kxQueueFull > 0) {
        this.#log.info(`key exchange queue drained; ${this.#kxQueueFull} request(s) were dropped`);
        this.#kxQueueFull = 0;
      }
      return;
    }
    this.#kxTimer = setTimeout(() => {
      this.#kxTimer = undefined;
      this.#kxBusy = this.#runKeyExchange().catch((error) => {
        this.#drop(`key exchange failed: ${oneLine(error)}`);
      }).finally(() => {
        this.#kxBusy = undefined;
        this.#scheduleKeyExchange();
      });
    }, 0);
  }

  async #runKeyExchange(): Promise<void> {
    const item = this.#kxQueue.take();
    if (item === undefined || this.#stopping) return;
    const who = printable(item.key);
    const waited = performance.now() - item.since;
    if (waited > this.#limits.maxKeyExchangeWaitMs) {
      return this.#drop(`key exchange for ${who} dropped: queued for ${ms(waited)}`);
    }
    const started = performance.now();
    const { group } = this.#options;
    let fernet: Fernet;
    let ourPem: string;
    try {
      const ours = generateKeyPair(group);
      ourPem = encodePublicKeyPem(group, ours.publicKey);
      fernet = await agreeFernet(group, ours, item.value);
    } catch (error) {
      // Checked on arrival already; kept so one bad key can never stop the queue.
      return this.#drop(`key exchange for ${who} failed: ${oneLine(error)}`);
    }
    if (this.#stopping) return;
    // Stored before the answer goes out: the client's action request can only follow it.
    this.#sessions.set(item.key, { fernet, createdAt: performance.now() });
    this.#stats.keyExchanges++;
    this.#log.debug(
      `key exchange for ${who}: session ready in ${ms(performance.now() - started)} ` +
        `(queued ${ms(started - item.since)}; ${this.#sessions.size} live, ` +
        `${this.#kxQueue.size} waiting)`,
    );
    this.#publish(responseTopic(item.key, KEY_EXCHANGE), ourPem, who);
  }

  #onAction(netid: string, action: Action, message: MqttMessage): void {
    const who = printable(netid);
    const size = message.payload.length;
    if (size > MAX_PAYLOAD_BYTES) {
      return this.#drop(
        `${action} request for ${who} dropped: ${size} bytes is over the ` +
          `${MAX_PAYLOAD_BYTES}-byte limit`,
      );
    }
    // The session is looked up now, not after a queued key exchange for this netid: a client
    // can only encrypt under a key we have already published, so the current session is the
    // only one that can open this token. Waiting would let a newer exchange replace the key
    // the token was made with.
    const session = this.#sessions.get(netid);
    if (session === undefined) {
      const note = this.#kxQueue.has(netid) ? " (its key exchange is still queued)" : "";
      return this.#drop(`${action} request for ${who} dropped: no session${note}`);
    }
    if (
      this.#actions.size >= this.#limits.maxActionsInFlight ||
      this.#actionBytes + size > this.#limits.maxActionBytesInFlight
    ) {
      if (this.#actionsOverLimit++ === 0) {
        this.#warn(
          `${this.#actions.size} requests (${this.#actionBytes} bytes) being answered: ` +
            "dropping new ones until they are done",
        );
      }
      this.#stats.dropped++;
      return;
    }
    this.#actionsOverLimit = 0;
    this.#actionBytes += size;
    const work = this.#answer(netid, who, action, session, message.payload).catch((error) => {
      // A bug of ours, not the peer's: still one line, and the other sessions go on.
      this.#drop(`${action} request for ${who} failed: ${oneLine(error)}`);
    }).finally(() => {
      this.#actionBytes -= size;
      this.#actions.delete(work);
    });
    this.#actions.add(work);
  }

  async #answer(
    netid: string,
    who: string,
    action: Action,
    session: Session,
    token: Uint8Array,
  ): Promise<void> {
    let plain: Uint8Array;
    try {
      plain = await session.fernet.decrypt(token);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      return this.#drop(`${action} request for ${who} dropped: invalid token`);
    }
    if (plain.length > MAX_MESSAGE_BYTES) {
      return this.#drop(
        `${action} request for ${who} dropped: message of ${plain.length} bytes is over the ` +
          `${MAX_MESSAGE_BYTES}-byte limit`,
      );
    }
    const text = decodeUtf8(plain);
    if (text === undefined) {
      return this.#drop(`${action} request for ${who} dropped: message is not UTF-8`);
    }
    const answer = await session.fernet.encrypt(applyAction(action, text));
    if (this.#stopping) return;
    this.#stats.answered++;
    const age = performance.now() - session.createdAt;
    this.#log.info(`answered ${who}/${action} (session key agreed ${ms(age)} earlier)`);
    this.#log.debug(`${who}/${action}: ${plain.length} bytes in, token of ${answer.length} out`);
    this.#publish(responseTopic(netid, action), answer, who);
  }

  /** Fire-and-forget QoS 1 publish on the current connection; a loss is only logged. */
  #publish(topic: string, payload: string, who: string): void {
    const mqtt = this.#mqtt;
    if (mqtt === undefined) {
      this.#log.debug(`answer for ${who} lost: not connected`);
      return;
    }
    mqtt.publish(topic, payload, { qos: 1 }).catch((error) => {
      this.#log.debug(`answer for ${who} may be lost: ${oneLine(error)}`);
    });
  }
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from `reconnectMinMs`,
 * capped at `reconnectMaxMs`, with "equal jitter" (a random point in the upper half), so it
 * never collapses to zero yet responders restarted together spread out.
 *
 * @example
 * ```ts
 * import { backoffDelay, DEFAULT_LIMITS } from "./responder.ts";
 * backoffDelay(0, DEFAULT_LIMITS); // 250..500
 * backoffDelay(20, DEFAULT_LIMITS); // 15000..30000
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
 * import { printable } from "./responder.ts";
 * printable("evil\nresponder: answered"); // "evil\\nresponder: answered"
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
  const text = error instanceof Error ? error.message : String(error);
  return printable(text.split("\n")[0], 200);
}

/**
 * `warn` through a token bucket: `burst` lines, then `perSecond`; what it holds back is
 * counted and reported with the next line let through (or by `flush`).
 */
function rateLimited(
  log: Logger,
  burst: number,
  perSecond: number,
): { warn: (message: string) => void; flush: () => void } {
  let tokens = burst;
  let last = performance.now();
  let suppressed = 0;
  const flush = () => {
    if (suppressed > 0) log.warn(`${suppressed} similar warning(s) suppressed`);
    suppressed = 0;
  };
  return {
    warn(message) {
      const now = performance.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * perSecond);
      last = now;
      if (tokens < 1) {
        suppressed++;
        return;
      }
      tokens--;
      flush();
      log.warn(message);
    },
    flush,
  };
}
