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
 * This module is the lifecycle and the wiring; each part is a module of its own:
 * ./limits.ts (the limits and their check), ./connection.ts (the broker connection),
 * ./key_exchanges.ts (the key-exchange worker), ./requests.ts (action requests),
 * ./session_cache.ts (the sessions), ./session_keys.ts (a session's keys).
 *
 * @module
 */

import type { IPublishPacket } from "mqtt";
import type { Identity } from "../auth/identity.ts";
import type { DhGroup } from "../crypto/dh.ts";
import { type Logger, printable, RateLimitedLog, silentLogger } from "../log.ts";
import type { BrokerOptions } from "../mqtt.ts";
import { isAction } from "../protocol/actions.ts";
import { parseRequestTopic } from "../protocol/topics.ts";
import { skippedPayloadBytes } from "../mqtt_size_guard.ts";
import { BrokerConnection, MAX_PACKET_BYTES } from "./connection.ts";
import { KeyExchanges } from "./key_exchanges.ts";
import { checkLimits, DEFAULT_LIMITS, type ResponderLimits } from "./limits.ts";
import { ActionRequests } from "./requests.ts";
import { SessionCache } from "./session_cache.ts";
import type { SessionKeys } from "./session_keys.ts";

// The limits are part of the options: a caller finds them here, beside Responder.
export { DEFAULT_LIMITS, type ResponderLimits } from "./limits.ts";

/**
 * The one subscription (QoS 1): every netid's key exchanges and action requests. Not a second
 * filter for `+/key-exchange/request` beside it: an MQTT 5 broker delivers a message once per
 * matching filter (mosquitto does), and a key exchange answered twice, with two keys, leaves
 * the client holding the key the responder no longer has.
 */
export const REQUEST_FILTERS: readonly string[] = ["+/+/request"];

/** What a {@linkcode Responder} needs. */
export interface ResponderOptions {
  broker: BrokerOptions;
  /** The DH group of the key exchanges: the lab's, from `loadLabGroup()`. */
  group: DhGroup;
  /** A long-term identity: given one, every key exchange is signed (step 2b). */
  identity?: Identity;
  /** Where the service's lines go; default silent. */
  logger?: Logger;
  /** Overrides of {@linkcode DEFAULT_LIMITS}; each is checked (see `checkLimits`). */
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

/**
 * Where a {@linkcode Responder} is in its life: made, serving (from `run()`), shutting down
 * (from `stop()` or a fatal failure), done (`run()` has settled).
 */
export type ResponderState = "idle" | "running" | "stopping" | "stopped";

/**
 * The service. `await Responder.start(options)` connects and subscribes; `run()` resolves when
 * `stop()` ends it, or rejects with a {@linkcode ResponderError} on a fatal failure. The example
 * of `requestTransform` in ../client/session.ts runs one with a client.
 */
export class Responder implements AsyncDisposable {
  /** Resolves once the first connection's subscriptions are acknowledged. */
  readonly ready: Promise<void>;

  readonly #o: ResponderOptions;
  readonly #limits: ResponderLimits;
  readonly #log: Logger;
  readonly #lines: RateLimitedLog;
  readonly #sessions: SessionCache<SessionKeys>;
  readonly #connection: BrokerConnection;
  readonly #keyExchanges: KeyExchanges;
  readonly #requests: ActionRequests;
  readonly #readiness = Promise.withResolvers<void>();
  readonly #finished = Promise.withResolvers<void>();
  #state: ResponderState = "idle";
  #stopped: Promise<void> | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #dropped = 0;

  /** Checks the options; throws {@linkcode ResponderError} for bad ones. */
  constructor(options: ResponderOptions) {
    this.#o = options;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    const problem = checkLimits(limits);
    if (problem !== undefined) throw new ResponderError(problem);
    this.#limits = limits;
    this.#log = options.logger ?? silentLogger;
    this.#lines = new RateLimitedLog(this.#log, {
      burst: limits.logBurst,
      perSecond: limits.logLinesPerSecond,
    });
    const drop = (kind: string, message: string) => this.#drop(kind, message);
    this.#sessions = new SessionCache({
      maxEntries: limits.maxSessions,
      idleMs: limits.sessionIdleMs,
    });
    this.#connection = new BrokerConnection({
      broker: options.broker,
      clientId: options.clientId ??
        `responder-${crypto.getRandomValues(new Uint8Array(6)).toHex()}`,
      filters: REQUEST_FILTERS,
      limits,
      logger: this.#log,
      lines: this.#lines,
      onMessage: (packet) => this.#dispatch(packet),
      onSubscribed: () => this.#readiness.resolve(),
      onFatal: (message, cause) => this.#fail(new ResponderError(message, { cause })),
    });
    const publish = (topic: string, payload: string, done?: () => void) =>
      this.#connection.publish(topic, payload, done);
    this.#keyExchanges = new KeyExchanges({
      group: options.group,
      identity: options.identity,
      capacity: limits.maxPendingKeyExchanges,
      maxWaitMs: limits.maxKeyExchangeWaitMs,
      sessions: this.#sessions,
      publish,
      lines: this.#lines,
      drop,
    });
    this.#requests = new ActionRequests({
      sessions: this.#sessions,
      keyExchangeQueued: (netid) => this.#keyExchanges.isQueued(netid),
      inFlight: {
        requests: limits.maxRequestsInFlight,
        bytes: limits.maxBytesInFlight,
        requestsPerNetid: limits.maxRequestsInFlightPerNetid,
        bytesPerNetid: limits.maxBytesInFlightPerNetid,
      },
      publish,
      lines: this.#lines,
      drop,
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

  /** Where it is in its life. */
  get state(): ResponderState {
    return this.#state;
  }

  /** Counters and sizes right now. */
  stats(): ResponderStats {
    return {
      sessions: this.#sessions.size,
      pendingKeyExchanges: this.#keyExchanges.pending,
      requestsInFlight: this.#requests.inFlight,
      bytesInFlight: this.#requests.bytesInFlight,
      keyExchanges: this.#keyExchanges.completed,
      answered: this.#requests.answered,
      dropped: this.#dropped,
      connections: this.#connection.connections,
    };
  }

  /**
   * Serves until {@linkcode stop} (then resolves) or a fatal failure (then rejects with
   * {@linkcode ResponderError}). Calling it again, or after `stop()`, returns the same promise.
   */
  run(): Promise<void> {
    if (this.#state === "idle") {
      this.#state = "running";
      this.#connection.open();
      const { identity } = this.#o;
      if (identity) {
        this.#log.info(
          `identity ${identity.fingerprint}: clients check it with --trust ${identity.fingerprint}`,
        );
      }
      // The cache expires sessions as it is used; the sweep forgets keys when it is not.
      const sweepEvery = Math.min(60_000, this.#limits.sessionIdleMs);
      this.#sweepTimer = setInterval(() => {
        const expired = this.#sessions.sweep();
        if (expired > 0) this.#log.debug(`${expired} idle session(s) expired`);
      }, sweepEvery);
      Deno.unrefTimer(this.#sweepTimer);
    }
    return this.#finished.promise;
  }

  /**
   * Stops serving: closes the connection, stops the key-exchange worker, waits for the
   * requests being answered, forgets every session. Idempotent; never rejects.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutDown();
    return this.#stopped;
  }

  /** {@linkcode stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #shutDown(): Promise<void> {
    this.#state = "stopping";
    this.#readiness.reject(new ResponderError("stopped before it was subscribed"));
    clearInterval(this.#sweepTimer);
    // Each part stops taking work now; then the connection closes, which ends the wait of
    // answers already published for their acknowledgement.
    const exchanges = this.#keyExchanges.close();
    const answers = this.#requests.close();
    await this.#connection.close();
    await exchanges;
    await answers;
    this.#sessions.clear();
    this.#lines.flush();
    this.#state = "stopped";
    this.#finished.resolve();
  }

  #fail(error: ResponderError): void {
    this.#readiness.reject(error);
    this.#finished.reject(error);
    void this.stop();
  }

  /**
   * An incoming message, to the part it is for: cheap checks only, synchronously, before
   * MQTT.js takes the next packet.
   */
  #dispatch(packet: IPublishPacket): void {
    const payload = packet.payload as Uint8Array;
    const skipped = skippedPayloadBytes(payload);
    if (skipped !== undefined) {
      // A PUBLISH over our packet size limit: only its header reached us (the size guard).
      return this.#drop(
        "size",
        `message on ${printable(packet.topic)} dropped: its ${skipped}-byte payload is over ` +
          `the size limit (${MAX_PACKET_BYTES} bytes a packet), and was skipped unread`,
      );
    }
    if (packet.retain) {
      // Published before we subscribed: its client is long gone, or it is replayed junk.
      return this.#drop("retained", `ignored a retained request on ${printable(packet.topic)}`);
    }
    const request = parseRequestTopic(packet.topic);
    if (request === undefined) {
      return this.#drop("topic", `ignored a message on ${printable(packet.topic)}: not a request`);
    }
    if (request.kind === "key-exchange") {
      return this.#keyExchanges.offer(request.netid, payload);
    }
    if (!isAction(request.action)) {
      const where = printable(packet.topic);
      return this.#drop("action", `ignored a request on ${where}: unknown action`);
    }
    this.#requests.handle(request.netid, request.action, payload);
  }

  /** A message dropped, by any part: counted, and logged through the budget of its kind. */
  #drop(kind: string, message: string): void {
    this.#dropped++;
    this.#lines.line("warn", kind, message);
  }
}
