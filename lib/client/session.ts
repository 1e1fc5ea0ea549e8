/**
 * One client session (docs/protocol.md): agree a key with a responder through the broker, have
 * it transform a text, return the answer. Every runtime failure is a {@linkcode ClientError}
 * with a one-line reason; lines go to the given logger, and nothing here prints or exits.
 *
 * @module
 */

import type { IPublishPacket, MqttClient } from "mqtt";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  connected,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
  toBrokerError,
} from "../mqtt.ts";
import {
  type DhGroup,
  DhKeyError,
  encodePublicKeyDer,
  encodePublicKeyPem,
  generateKeyPair,
  warmUp,
} from "../crypto/dh.ts";
import { type Fernet, InvalidToken } from "../crypto/fernet.ts";
import { KeyExchangeVerifier } from "../auth/verifier.ts";
import { errorLine, type Logger, silentLogger } from "../log.ts";
import { readPeerPublicKey, SessionSecret } from "../protocol/key_agreement.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { KEY_EXCHANGE, requestTopic, responseTopic, signatureTopic } from "../protocol/topics.ts";
import { decodeUtf8 } from "../utf8.ts";

/** What one session needs. */
export interface ClientOptions {
  broker: BrokerOptions;
  netid: string;
  action: string;
  message: string;
  /** The MQTT client ID; default the netid, as the lab requires (brokers' ACLs rely on it). */
  clientId?: string;
  /** The deadline of the whole session, from connect to verified answer. */
  timeoutMs: number;
  /** Cancels the session; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The lab's DH group (`loadLabGroup()`). */
  group: DhGroup;
  /**
   * Fingerprints of responder identities to trust (`SHA256:` + lowercase hex). Given any, the
   * key exchange must be signed by one of them (the authenticated extension); none, the lab
   * protocol as it is.
   */
  trust?: readonly string[];
  logger?: Logger;
}

/** A runtime failure of a session; `message` is one line fit for stderr. */
export class ClientError extends Error {
  override name = "ClientError";
}

/**
 * No key exchange signed by a trusted identity arrived in time (the authenticated extension).
 * `manInTheMiddle` is true when the trusted identity did sign, but another exchange: what a
 * broker that substitutes keys leaves behind.
 */
export class UnauthenticatedError extends ClientError {
  override name = "UnauthenticatedError";
  constructor(message: string, readonly manInTheMiddle: boolean, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Runs the exchange and returns the responder's answer.
 *
 * @example A whole exchange, on the demo's embedded broker
 * ```ts
 * import assert from "node:assert/strict";
 * import { startEmbeddedBroker } from "../../demo/embedded_broker.ts";
 * import { requestTransform } from "./session.ts";
 * import { loadLabGroup } from "../protocol/key_agreement.ts";
 * import { Responder } from "../responder/responder.ts";
 *
 * await using embedded = await startEmbeddedBroker();
 * const broker = { transport: "mqtt", host: embedded.host, port: embedded.port } as const;
 * const group = loadLabGroup();
 * await using _responder = await Responder.start({ broker, group });
 * const answer = await requestTransform({
 *   broker,
 *   group,
 *   netid: "alice",
 *   action: "reverse",
 *   message: "hello",
 *   timeoutMs: 10_000,
 * });
 * assert.equal(answer, "olleh");
 * ```
 */
export async function requestTransform(options: ClientOptions): Promise<string> {
  const session = new Session(options);
  try {
    return await session.run();
  } catch (error) {
    if (error instanceof BrokerError) throw new ClientError(error.message, { cause: error });
    throw error;
  } finally {
    await session.close();
  }
}

class Session {
  readonly #o: ClientOptions;
  readonly #log: Logger;
  readonly #where: string;
  readonly #started = performance.now();
  readonly #deadline: AbortSignal;
  readonly #deadlineTimer: ReturnType<typeof setTimeout>;
  readonly #expired: Promise<never>;
  readonly #topics: { key: string; signature: string; answer: string };
  readonly #inbox: Inbox;
  readonly #ackHold = new AckHold();
  readonly #mqtt: MqttClient;
  readonly #clientId: string;
  #lost: Promise<never>;
  #connected = false;

  constructor(options: ClientOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#where = brokerLabel(options.broker);
    // Not AbortSignal.timeout: Deno keeps the process alive for its timer while the signal has
    // an "abort" listener, so a caller that does not exit would linger until the deadline.
    const timeout = new AbortController();
    this.#deadlineTimer = setTimeout(
      () => timeout.abort(new DOMException("the session's deadline passed", "TimeoutError")),
      options.timeoutMs,
    );
    const signals = [timeout.signal];
    if (options.signal) signals.push(options.signal);
    this.#deadline = AbortSignal.any(signals);
    this.#expired = new Promise<never>((_, reject) => {
      this.#deadline.addEventListener("abort", () => reject(this.#deadline.reason), { once: true });
    });
    this.#expired.catch(() => {});
    const { netid, action } = options;
    this.#topics = {
      key: responseTopic(netid, KEY_EXCHANGE),
      signature: signatureTopic(netid),
      answer: responseTopic(netid, action),
    };
    this.#inbox = new Inbox(Object.values(this.#topics));

    this.#clientId = options.clientId ?? netid;
    this.#mqtt = openMqtt(options.broker, {
      clientId: this.#clientId,
      // Our own deadline ends a silent connect; MQTT.js's must not fire first.
      connectTimeoutMs: options.timeoutMs + 1000,
      writeCache: false,
    });
    this.#mqtt.on("message", (topic, payload, packet) => this.#inbox.put(topic, payload, packet));
    this.#mqtt.handleMessage = (packet, done) => this.#ackHold.offer(packet, done);
    this.#lost = this.#whenLost();
  }

  async run(): Promise<string> {
    const { netid, action, group } = this.#o;
    // Whether the server took the connection, to tell a silent server from an unreachable one.
    let reached = false;
    const stream = this.#mqtt.stream;
    for (const event of ["connect", "secureConnect"]) stream.once(event, () => reached = true);
    await this.#within(
      connected(this.#mqtt, this.#o.broker),
      () =>
        reached
          ? `${this.#where} took the connection but sent no MQTT answer (CONNACK) within ` +
            `${this.#seconds()} (is it an MQTT broker's port?)`
          : `no answer from the broker at ${this.#where} within ${this.#seconds()}`,
    );
    this.#connected = true;
    this.#debug(`connected to ${this.#where}`);

    const trusted = new Set(this.#o.trust ?? []);
    const topics = [this.#topics.key, this.#topics.answer];
    if (trusted.size > 0) topics.push(this.#topics.signature);
    // The broker sends retained messages right after its SUBACK: a stale signature is worth
    // naming if no live one comes.
    let retained = 0;
    this.#inbox.onRetained = (topic) => {
      if (topic !== this.#topics.answer) retained++;
    };
    const subscribed = this.#subscribe(topics);
    // Our key pair is made while the broker answers the SUBSCRIBE.
    const ours = generateKeyPair(group);
    const ourPem = encodePublicKeyPem(group, ours.publicKey);
    await this.#within(subscribed, () => `no SUBACK from ${this.#where} in time`);
    this.#debug(`subscribed to ${topics.join(", ")}, SUBACK received`);
    const verifier = trusted.size === 0
      ? undefined
      : new KeyExchangeVerifier(group, netid, encodePublicKeyDer(group, ours.publicKey), trusted);
    if (verifier) {
      verifier.retained(retained);
      this.#inbox.onRetained = (topic) => {
        if (topic !== this.#topics.answer) verifier.retained();
      };
    }

    // Nothing on the response topics before our request leaves is for us: another client with
    // our netid, answered before we asked.
    this.#inbox.discard(this.#topics.key, this.#topics.signature);
    const kxRequest = requestTopic(netid, KEY_EXCHANGE);
    await this.#within(
      this.#publish(kxRequest, ourPem),
      () => `the broker did not acknowledge the key exchange request in time`,
    );
    this.#ackHold.arm();
    this.#debug(`key exchange request sent on ${kxRequest}`);

    // The peer's key is some milliseconds away at best: spend them making our DH code warm.
    if (!this.#inbox.has(this.#topics.key)) warmUp(group);
    const peer = verifier ? await this.#authenticatedKey(verifier, trusted) : await this.#labKey();
    const fernet = await SessionSecret.agree(group, ours, peer.y).labFernet();
    this.#debug(
      `key exchange answered; ${
        peer.signedBy ? `authenticated by ${peer.signedBy}` : "not authenticated (no --trust)"
      }`,
    );

    const token = await fernet.encrypt(this.#o.message);
    this.#inbox.discard(this.#topics.answer);
    const actionRequest = requestTopic(netid, action);
    const sent = this.#publish(actionRequest, token);
    this.#ackHold.releaseOnNextData(this.#mqtt);
    sent.catch(() => {}); // a loss shows as the lost connection below
    this.#debug(`request sent on ${actionRequest} (${token.length} bytes)`);
    if (this.#log.verbose) {
      // Worked out while the responder works on the request, not before it leaves.
      this.#debug(
        `our public key:  ${await fingerprint(encodePublicKeyDer(group, ours.publicKey))}`,
      );
      this.#debug(`peer public key: ${await fingerprint(peer.der)}`);
    }

    return await this.#answer(fernet);
  }

  async close(): Promise<void> {
    clearTimeout(this.#deadlineTimer);
    this.#ackHold.release();
    // A polite DISCONNECT only when nothing is left to wait for: end(false) waits for every
    // outstanding PUBACK, which a broker that went away never sends.
    const force = !this.#connected || !this.#mqtt.connected ||
      Object.keys(this.#mqtt.outgoing).length > 0;
    await new Promise<void>((resolve) => this.#mqtt.end(force, {}, () => resolve()));
  }

  /** The lab protocol: the first key exchange response after our request is the peer's key. */
  async #labKey(): Promise<{ y: bigint; der: Uint8Array; signedBy?: string }> {
    const message = await this.#within(
      this.#inbox.next(this.#topics.key),
      () =>
        `no key exchange response on ${this.#topics.key} within ${this.#seconds()} ` +
        "(is a responder running for this broker?)",
    );
    try {
      return readPeerPublicKey(this.#o.group, message.payload);
    } catch (error) {
      if (error instanceof DhKeyError) throw new ClientError(error.message, { cause: error });
      throw error;
    }
  }

  /** The authenticated extension: the first response a trusted identity signed for us. */
  async #authenticatedKey(
    verifier: KeyExchangeVerifier,
    trusted: ReadonlySet<string>,
  ): Promise<{ y: bigint; der: Uint8Array; signedBy: string }> {
    const names = [...trusted].join(", ");
    for (;;) {
      const message = await this.#within(
        this.#inbox.nextOf(this.#topics.key, this.#topics.signature),
        () =>
          new UnauthenticatedError(
            `no key exchange on ${this.#topics.key} signed by ${names} within ` +
              `${this.#seconds()}: ${verifier.summary()}`,
            verifier.sawOtherExchangeSigned(),
          ),
      );
      const match = message.topic === this.#topics.key
        ? await verifier.offerKey(message.payload)
        : await verifier.offerSignature(message.payload);
      if (match) {
        return match;
      }
      this.#ackHold.release(); // not this one: let the next message in
    }
  }

  async #answer(fernet: Fernet): Promise<string> {
    let failed = 0;
    for (;;) {
      const reply = await this.#within(this.#inbox.next(this.#topics.answer), () => {
        const auth = failed === 0 ? "" : `; ${failed} response${failed === 1 ? "" : "s"} on it ` +
          "failed authentication (another client using this netid at the same time?)";
        return `no answer on ${this.#topics.answer} within ${this.#seconds()}${auth}`;
      });
      let plain: Uint8Array;
      try {
        plain = await fernet.decrypt(reply.payload);
      } catch (error) {
        if (!(error instanceof InvalidToken)) throw error;
        // Another client with our netid, or a forger: not ours. Keep waiting.
        failed++;
        this.#debug(`a response on ${this.#topics.answer} failed authentication; still waiting`);
        continue;
      }
      this.#debug("response verified and decrypted");
      const answer = decodeUtf8(plain);
      if (answer === undefined) throw new ClientError("the responder's answer is not valid UTF-8");
      return answer;
    }
  }

  /** `p`, unless the deadline passes (then the error `onTimeout` makes) or we are cut off. */
  async #within<T>(p: Promise<T>, onTimeout: () => string | ClientError): Promise<T> {
    try {
      return await Promise.race([p, this.#lost, this.#expired]);
    } catch (error) {
      if (error === this.#deadline.reason && !this.#o.signal?.aborted) {
        const failure = onTimeout();
        throw typeof failure === "string" ? new ClientError(failure, { cause: error }) : failure;
      }
      throw error;
    }
  }

  #whenLost(): Promise<never> {
    const lost = new Promise<never>((_, reject) => {
      let problem: unknown;
      this.#mqtt.on("error", (error) => problem ??= error);
      this.#mqtt.on("close", () => {
        if (!this.#connected) return; // connected() reports a failed connect
        if (problem !== undefined) {
          const reason = toBrokerError(problem, this.#o.broker).message;
          return reject(new ClientError(`connection to ${this.#where} lost: ${reason}`));
        }
        // MQTT 3.1.1 gives a closed connection no reason. A broker that takes a new connection
        // with our client ID closes ours this way (§3.1.4), and that, the same netid run twice
        // at once, is the likeliest cause while the broker itself stays up.
        reject(
          new ClientError(
            `the broker at ${this.#where} closed the connection: most likely another client ` +
              `connected with the client ID '${this.#clientId}' (the same NetID run twice at ` +
              "once? -i gives this run another client ID), or the broker stopped",
          ),
        );
      });
    });
    lost.catch(() => {});
    return lost;
  }

  async #subscribe(topics: string[]): Promise<void> {
    try {
      await subscribeAll(this.#mqtt, topics);
    } catch (error) {
      if (error instanceof SubscriptionRefusedError) {
        throw new ClientError(error.message, { cause: error });
      }
      throw new ClientError(`subscribing failed: ${errorLine(error)}`, { cause: error });
    }
  }

  #publish(topic: string, payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#mqtt.publish(topic, payload, { qos: 1 }, (error) => {
        if (error) reject(new ClientError(`publishing on ${topic} failed: ${error.message}`));
        else resolve();
      });
    });
  }

  #seconds(): string {
    return `${Number((this.#o.timeoutMs / 1000).toFixed(3))} s`;
  }

  #debug(line: string): void {
    this.#log.debug(`${line} (${(performance.now() - this.#started).toFixed(1)} ms)`);
  }
}

/** A delivery, as the session keeps it; `seq` is its place in arrival order. */
interface Delivery {
  topic: string;
  payload: Uint8Array;
  seq: number;
}

/**
 * Per-topic queues of live deliveries, taken in arrival order. Retained ones are stale by
 * definition (published before we asked) and never queued. Bounded: past the cap the oldest
 * delivery of a topic is dropped, so a flood on our topics cannot grow memory.
 */
class Inbox {
  static readonly CAP = 64;
  readonly #queues = new Map<string, Delivery[]>();
  #seq = 0;
  #waiter: { topics: string[]; resolve: (d: Delivery) => void } | undefined;
  onRetained: (topic: string) => void = () => {};

  constructor(topics: string[]) {
    for (const topic of topics) this.#queues.set(topic, []);
  }

  put(topic: string, payload: Uint8Array, packet: IPublishPacket): void {
    const queue = this.#queues.get(topic);
    if (queue === undefined) return;
    if (packet.retain) return this.onRetained(topic);
    const delivery = { topic, payload, seq: this.#seq++ };
    if (this.#waiter?.topics.includes(topic)) {
      const { resolve } = this.#waiter;
      this.#waiter = undefined;
      return resolve(delivery);
    }
    if (queue.length >= Inbox.CAP) queue.shift();
    queue.push(delivery);
  }

  has(topic: string): boolean {
    return (this.#queues.get(topic)?.length ?? 0) > 0;
  }

  discard(...topics: string[]): void {
    for (const topic of topics) this.#queues.get(topic)?.splice(0);
  }

  next(topic: string): Promise<Delivery> {
    return this.nextOf(topic);
  }

  /** The next delivery on any of `topics`: the earliest queued one, or the next to arrive. */
  nextOf(...topics: string[]): Promise<Delivery> {
    let earliest: Delivery[] | undefined;
    for (const topic of topics) {
      const queue = this.#queues.get(topic)!;
      if (queue.length > 0 && (earliest === undefined || queue[0].seq < earliest[0].seq)) {
        earliest = queue;
      }
    }
    if (earliest) return Promise.resolve(earliest.shift()!);
    return new Promise((resolve) => this.#waiter = { topics, resolve });
  }
}

/**
 * Holds back one PUBACK, to get the answer past the broker's Nagle algorithm.
 *
 * Against a broker with Nagle on (mosquitto's default): the broker acknowledges our request
 * with a PUBACK, a small segment we have no data to answer, so our kernel delays its TCP ACK
 * (~40 ms); the responder's answer, a few milliseconds later, then waits in the broker behind
 * that unacknowledged segment. If the PUBACK of the key exchange response is still ours to
 * send when the request's PUBACK arrives, sending it then carries that TCP ACK at once, and the
 * answer leaves the broker without the stall (measured in docs/performance.md).
 *
 * MQTT.js sends a PUBACK when its `handleMessage(packet, done)` calls `done`, and handles no
 * further packet until then, not even the PUBACK that should release the held one. So the
 * release is the first bytes that arrive on the socket after our request was written: in this
 * exchange, the broker's PUBACK for it. MQTT sets no deadline for a PUBACK, and `release()`
 * on every way out of the session sends any still held.
 */
class AckHold {
  #held: (() => void) | undefined;
  #holding = false;

  /**
   * From now on (our key exchange request is acknowledged), hold the PUBACK of each live
   * delivery on the key exchange topics, until the session releases it.
   */
  arm(): void {
    this.#holding = true;
  }

  /** MQTT.js's `handleMessage`: holds a key exchange delivery's PUBACK while armed. */
  offer(packet: IPublishPacket, done: () => void): void {
    if (this.#holding && packet.qos === 1 && !packet.retain && isKeyExchangeTopic(packet.topic)) {
      this.#held = done;
      return;
    }
    done();
  }

  /**
   * Releases the held PUBACK at the next bytes from the broker, or at once if the socket is
   * paused: after a burst of large messages MQTT.js pauses it until it has handled its backlog,
   * which waits on the held packet, so no bytes would come until the deadline.
   */
  releaseOnNextData(mqtt: MqttClient): void {
    this.#holding = false;
    if (this.#held === undefined) return;
    if (mqtt.stream.readableFlowing !== true) return this.release();
    mqtt.stream.once("data", () => this.release());
  }

  release(): void {
    const done = this.#held;
    this.#held = undefined;
    done?.();
  }
}

function isKeyExchangeTopic(topic: string): boolean {
  const levels = topic.split("/");
  return levels.length === 3 && levels[1] === KEY_EXCHANGE && levels[2] !== "request";
}
