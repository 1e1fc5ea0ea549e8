/**
 * One client session: agree a key with a responder over MQTT and have it transform a text.
 * Throws {@linkcode ClientError} with a one-line reason on every runtime failure; never prints
 * (lines go to the given logger) and never exits.
 *
 * @example
 * ```ts
 * import { requestTransform } from "./client.ts";
 * import { loadLabGroup } from "./protocol.ts";
 * const answer = await requestTransform({
 *   host: "localhost", port: 1884, netid: "alice", action: "uppercase",
 *   message: "hello", timeoutMs: 10_000, group: loadLabGroup(),
 * });
 * ```
 * @module
 */

import {
  type DhGroup,
  DhKeyError,
  DhParamsError,
  encodePublicKeyPem,
  generateKeyPair,
  publicKeyFingerprint,
  warmUp,
} from "./crypto/dh.ts";
import { type Fernet, InvalidToken } from "./crypto/fernet.ts";
import { type Logger, silentLogger } from "./log.ts";
import { type BrokerOptions, MqttClient, MqttError, type MqttMessage } from "./mqtt.ts";
import { Timer } from "./timer.ts";
import {
  type Action,
  agreeFernet,
  decodeUtf8,
  KEY_EXCHANGE,
  MAX_PUBLIC_KEY_PEM_BYTES,
  requestTopic,
  responseTopic,
} from "./protocol.ts";

/**
 * What one session needs. `group` is the lab's DH group ({@linkcode loadLabGroup}).
 *
 * @example
 * ```ts
 * import type { ClientOptions } from "./client.ts";
 * import { loadLabGroup } from "./protocol.ts";
 * const options: ClientOptions = {
 *   host: "localhost", port: 1884, netid: "alice", action: "reverse",
 *   message: "hello", timeoutMs: 10_000, group: loadLabGroup(),
 * };
 * ```
 */
export interface ClientOptions extends BrokerOptions {
  netid: string;
  action: Action;
  message: string;
  /** Deadline for the whole exchange, from connect to verified answer. */
  timeoutMs: number;
  group: DhGroup;
  logger?: Logger;
}

/**
 * A runtime failure of a session; `message` is one line fit for stderr.
 *
 * @example
 * ```ts
 * import { ClientError } from "./client.ts";
 * throw new ClientError("the responder's answer is not valid UTF-8");
 * ```
 */
export class ClientError extends Error {
  override name = "ClientError";
}

/** Random hex for the MQTT client ID, so two runs with one netid never kick each other off. */
function randomSuffix(): string {
  return crypto.getRandomValues(new Uint8Array(6)).toHex();
}

/**
 * Runs the four-message exchange of PROTOCOL.md and returns the responder's answer.
 *
 * The critical path is kept short: CONNECT and the single SUBSCRIBE for both response topics
 * are written back to back, and the key pair is generated while the broker answers them. The
 * PUBACK of the key exchange response is held back until the broker has acknowledged our
 * request, so that the answer is not stuck behind the broker's Nagle algorithm (see below and
 * {@linkcode MqttClient.holdAcks}). No global `setTimeout` on the way: its first call costs
 * ~12 ms in Deno 2.9 (see lib/timer.ts).
 *
 * @example
 * ```ts
 * import { ClientError, requestTransform } from "./client.ts";
 * import { loadLabGroup } from "./protocol.ts";
 * try {
 *   const answer = await requestTransform({
 *     host: "localhost", port: 1884, netid: "alice", action: "reverse",
 *     message: "hello", timeoutMs: 10_000, group: loadLabGroup(),
 *   }); // "olleh"
 * } catch (e) {
 *   if (e instanceof ClientError) console.error(e.message);
 * }
 * ```
 */
export async function requestTransform(options: ClientOptions): Promise<string> {
  const { netid, action, group } = options;
  const log = options.logger ?? silentLogger;
  const started = performance.now();
  const ms = () => `${(performance.now() - started).toFixed(1)} ms`;
  const where = `${options.host}:${options.port}`;
  const keyTopic = responseTopic(netid, KEY_EXCHANGE);
  const answerTopic = responseTopic(netid, action);

  // Deliveries are queued per topic until the session asks for them; retained ones are stale
  // by definition (published before we asked) and never taken as an answer.
  const inbox = new Inbox([keyTopic, answerTopic], (topic) => {
    log.debug(`ignored a retained message on ${topic}`);
  });

  let mqtt: MqttClient;
  const deadline = new Deadline(options.timeoutMs);
  const opening = MqttClient.open({
    host: options.host,
    port: options.port,
    clientId: `${netid}-${randomSuffix()}`,
    tls: options.tls,
    caCerts: options.caCerts,
    username: options.username,
    password: options.password,
    connectTimeoutMs: Math.min(options.timeoutMs, 5000),
    maxPacketBytes: 4 * 1024 * 1024,
    onMessage: (m) => inbox.put(m),
  });
  try {
    mqtt = await deadline.race(
      opening,
      () => `could not connect to ${where} within ${seconds(options.timeoutMs)}`,
    );
  } catch (error) {
    deadline.clear();
    // A connection that completes after the deadline must not live on (and keep a library
    // caller's process alive): close it whenever it arrives.
    opening.then((late) => late.close(), () => {});
    throw asClientError(error);
  }
  const lost = mqtt.closed.then((error) => {
    throw new ClientError(error?.message ?? `connection to ${where} closed`);
  });
  lost.catch(() => {}); // observed through race() below
  const race = <T>(p: Promise<T>, onTimeout: () => string) =>
    deadline.race(Promise.race([p, lost]), onTimeout);

  try {
    // The answer hop against a broker with Nagle's algorithm on (mosquitto's default): the
    // broker PUBACKs our request, a small segment we have no reason to answer, so our kernel
    // delays its TCP ACK (~40 ms) and the broker's Nagle holds the answer behind it. Holding
    // the PUBACK of the key exchange response until the request's PUBACK has arrived gives us
    // a packet the broker does not answer to carry that ACK: the answer then leaves the broker
    // at once. MQTT sets no deadline for a PUBACK; close() sends any still held.
    mqtt.holdAcks();
    const subscribed = mqtt.subscribe([keyTopic, answerTopic], 1);
    subscribed.catch(() => {}); // awaited below, after the CPU work it overlaps with
    // The SUBSCRIBE is only queued so far (mqtt.ts writes from a promise chain): put it on the
    // wire, so that the broker's round trips really overlap the ~10 ms of key generation below
    // instead of starting after it (strace showed the SUBSCRIBE leaving only once
    // generateKeyPair had returned).
    await mqtt.flushed();
    const ours = generateKeyPair(group);
    const ourPem = encodePublicKeyPem(group, ours.publicKey);

    await race(mqtt.connack, () => `no CONNACK from ${where} within ${seconds(options.timeoutMs)}`);
    log.debug(`connected to ${where} (${ms()})`);
    await race(subscribed, () => `no SUBACK from ${where} in time`);
    log.debug(`subscribed to ${keyTopic} and ${answerTopic}, SUBACK received (${ms()})`);

    // Anything on the response topics before our request leaves is not for us: another
    // client with our netid (PROTOCOL.md), answered before we asked.
    inbox.discard(keyTopic);
    await race(
      mqtt.publish(requestTopic(netid, KEY_EXCHANGE), ourPem, { qos: 1 }),
      () => `broker did not acknowledge the key exchange request in time`,
    );
    log.debug(`key exchange request sent on ${requestTopic(netid, KEY_EXCHANGE)} (${ms()})`);

    // The peer's key is some milliseconds away at best (the responder's DH; ~35 ms more behind
    // a default mosquitto's Nagle): spend them making our own DH warm for it.
    if (!inbox.has(keyTopic)) warmUp(group);
    const peerMessage = await race(
      inbox.next(keyTopic),
      () =>
        `no key exchange response on ${keyTopic} within ${
          seconds(options.timeoutMs)
        } (is a responder running for this broker?)`,
    );
    const peerPem = decodePem(peerMessage.payload);
    const fernet: Fernet = await agreeFernet(group, ours, peerPem);
    log.debug(`key exchange answered (${ms()})`);

    const token = await fernet.encrypt(options.message);
    inbox.discard(answerTopic);
    // Its PUBACK releases the held one from inside mqtt.ts's read loop, the moment it arrives.
    const requestAcked = mqtt.publish(requestTopic(netid, action), token, {
      qos: 1,
      releaseHeldAcks: true,
    });
    await race(requestAcked, () => `broker did not acknowledge the request in time`);
    log.debug(`request sent on ${requestTopic(netid, action)} (${token.length} bytes, ${ms()})`);
    // The fingerprints (PEM decode, DER parse, SHA-256: ~2 ms in a fresh process) are worked
    // out while the responder works on the request, not before it leaves, and not between it
    // and its PUBACK, which must be handled (released) at once.
    log.debug(`our public key:  ${await publicKeyFingerprint(ourPem)}`);
    log.debug(`peer public key: ${await publicKeyFingerprint(peerPem)}`);

    let failed = 0;
    for (;;) {
      const reply = await race(inbox.next(answerTopic), () => {
        const auth = failed === 0
          ? ""
          : `; ${failed} response${failed === 1 ? "" : "s"} on it failed authentication`;
        return `no answer on ${answerTopic} within ${seconds(options.timeoutMs)}${auth}`;
      });
      try {
        const plain = await fernet.decrypt(reply.payload);
        log.debug(`response verified and decrypted (${ms()})`);
        return decodeAnswer(plain);
      } catch (error) {
        if (!(error instanceof InvalidToken)) throw error;
        // Another client with our netid, or a forger: not ours. Keep waiting.
        failed++;
        log.debug(`a response on ${answerTopic} failed authentication; still waiting`);
      }
    }
  } catch (error) {
    throw asClientError(error);
  } finally {
    deadline.clear();
    await mqtt.close();
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Maps lower layers' typed errors to a ClientError with the same one-line message. */
function asClientError(error: unknown): ClientError | Error {
  if (error instanceof ClientError) return error;
  if (error instanceof MqttError) return new ClientError(error.message);
  if (error instanceof DhKeyError || error instanceof DhParamsError) {
    return new ClientError(error.message);
  }
  return error as Error;
}

function decodePem(payload: Uint8Array): string {
  if (payload.length > MAX_PUBLIC_KEY_PEM_BYTES) {
    throw new ClientError(`peer public key is malformed: ${payload.length} bytes is too long`);
  }
  const pem = decodeUtf8(payload);
  if (pem === undefined) throw new ClientError("peer public key is malformed: not UTF-8 text");
  return pem;
}

function decodeAnswer(plain: Uint8Array): string {
  const answer = decodeUtf8(plain);
  if (answer === undefined) throw new ClientError("the responder's answer is not valid UTF-8");
  return answer;
}

/**
 * One timer for the whole session; {@linkcode race} rejects every wait at the deadline. A
 * {@linkcode Timer} (lib/timer.ts), not `setTimeout`, which costs ~12 ms on its first call.
 */
class Deadline {
  static readonly #EXPIRED = Symbol("deadline");
  #timer: Timer;
  #expired: Promise<never>;

  constructor(ms: number) {
    let fire!: () => void;
    this.#expired = new Promise<never>((_, reject) => fire = () => reject(Deadline.#EXPIRED));
    this.#expired.catch(() => {});
    this.#timer = new Timer(ms, fire);
  }

  /** `p`, or a ClientError with the message `onTimeout()` builds once the deadline passes. */
  async race<T>(p: Promise<T>, onTimeout: () => string): Promise<T> {
    try {
      return await Promise.race([p, this.#expired]);
    } catch (error) {
      throw error === Deadline.#EXPIRED ? new ClientError(onTimeout()) : error;
    }
  }

  clear(): void {
    this.#timer.cancel();
  }
}

/**
 * Per-topic queues of live (non-retained) deliveries, taken in arrival order. Bounded, so a
 * flood on our response topics cannot grow memory: past the cap the oldest is dropped.
 */
class Inbox {
  static readonly CAP = 64;
  #queues = new Map<string, MqttMessage[]>();
  #waiters = new Map<string, (m: MqttMessage) => void>();

  constructor(topics: string[], private onRetained: (topic: string) => void) {
    for (const t of topics) this.#queues.set(t, []);
  }

  put(message: MqttMessage): void {
    const queue = this.#queues.get(message.topic);
    if (queue === undefined) return;
    if (message.retain) return this.onRetained(message.topic);
    const waiter = this.#waiters.get(message.topic);
    if (waiter) {
      this.#waiters.delete(message.topic);
      waiter(message);
    } else {
      if (queue.length >= Inbox.CAP) queue.shift();
      queue.push(message);
    }
  }

  /** True when something is queued for `topic`. */
  has(topic: string): boolean {
    return (this.#queues.get(topic)?.length ?? 0) > 0;
  }

  /** Drops what is queued for `topic`. */
  discard(topic: string): void {
    this.#queues.get(topic)?.splice(0);
  }

  next(topic: string): Promise<MqttMessage> {
    const queued = this.#queues.get(topic)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiters.set(topic, resolve));
  }
}
