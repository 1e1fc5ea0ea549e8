/**
 * The clients the checker plays against a responder under test: an MQTT.js connection that
 * records every delivery (topic, payload, QoS, retain flag) and hands them out per topic, and
 * the steps of the lab protocol written with the project's crypto, so that a case can follow
 * the protocol exactly or step off it on purpose (a chosen private key, a token under another
 * key, junk).
 *
 * @module
 */

import type { MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { openMqtt } from "../mqtt.ts";
import {
  computeSharedSecret,
  type DhGroup,
  DhKeyError,
  type DhKeyPair,
  type DhPrecomputation,
  encodePublicKeyDer,
  encodePublicKeyPem,
  generateKeyPair,
  PRIVATE_KEY_BITS,
} from "../crypto/dh.ts";
import { Fernet, InvalidToken } from "../crypto/fernet.ts";
import { deriveFernetKey } from "../crypto/hkdf.ts";
import { readPeerPublicKey } from "../protocol/key_agreement.ts";
import { KEY_EXCHANGE, requestTopic, responseTopic } from "../protocol/topics.ts";
import { decodeUtf8 } from "../utf8.ts";

/** A message the checker's client received. */
export interface Delivery {
  topic: string;
  payload: Uint8Array;
  qos: number;
  retain: boolean;
  /** Its place in arrival order, over all topics. */
  seq: number;
}

/** One MQTT connection of the checker's; `await using` disconnects it. */
export class CheckClient implements AsyncDisposable {
  readonly #mqtt: MqttClient;
  readonly #all: Delivery[] = [];
  readonly #taken = new Set<Delivery>();
  readonly #listeners = new Set<() => void>();

  private constructor(mqtt: MqttClient, onDelivery?: (delivery: Delivery) => void) {
    this.#mqtt = mqtt;
    mqtt.on("message", (topic, payload, packet) => {
      const delivery: Delivery = {
        topic,
        payload: new Uint8Array(payload),
        qos: packet.qos,
        retain: packet.retain,
        seq: this.#all.length,
      };
      this.#all.push(delivery);
      onDelivery?.(delivery);
      for (const listener of [...this.#listeners]) listener();
    });
  }

  /** Connects to `broker`; `onDelivery` sees every message as it arrives. */
  static async connect(
    broker: { host: string; port: number },
    onDelivery?: (delivery: Delivery) => void,
  ): Promise<CheckClient> {
    const mqtt = openMqtt({ transport: "mqtt", host: broker.host, port: broker.port }, {
      clientId: `secure_mqtt_check-${crypto.randomUUID().slice(0, 8)}`,
      connectTimeoutMs: 10_000,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        mqtt.once("connect", () => resolve());
        mqtt.once("error", reject);
        mqtt.once("close", () => reject(new Error("the broker closed the connection")));
      });
    } catch (error) {
      mqtt.end(true);
      throw error;
    }
    return new CheckClient(mqtt, onDelivery);
  }

  /** Subscribes to `filters` at QoS 1 and resolves at the SUBACK. */
  async subscribe(filters: string[]): Promise<void> {
    await acked(this.#mqtt.subscribeAsync(filters, { qos: 1 }), "SUBACK");
  }

  /**
   * Subscribes to everything a responder can send for `netids`: each one's response topics and
   * its step 2b signature topic.
   */
  async watch(...netids: string[]): Promise<void> {
    await this.subscribe(
      netids.flatMap((n) => [`${n}/+/response`, `${n}/${KEY_EXCHANGE}/signature`]),
    );
  }

  /** Publishes at QoS 1 and resolves at the PUBACK. */
  async publish(topic: string, payload: string | Uint8Array, retain = false): Promise<void> {
    const message = typeof payload === "string"
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    await acked(this.#mqtt.publishAsync(topic, message, { qos: 1, retain }), "PUBACK");
  }

  /** Every delivery on `topic` so far, taken or not. */
  received(topic: string): Delivery[] {
    return this.#all.filter((d) => d.topic === topic);
  }

  /**
   * The next delivery on `topic` not yet taken (queued or still to come); `undefined` after
   * `timeoutMs`, or once `signal` aborts.
   */
  next(topic: string, timeoutMs: number, signal?: AbortSignal): Promise<Delivery | undefined> {
    const take = () => {
      const found = this.#all.find((d) => d.topic === topic && !this.#taken.has(d));
      if (found) this.#taken.add(found);
      return found;
    };
    const now = take();
    if (now || signal?.aborted) return Promise.resolve(now);
    return new Promise((resolve) => {
      const finish = (delivery: Delivery | undefined) => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
        signal?.removeEventListener("abort", onAbort);
        resolve(delivery);
      };
      const listener = () => {
        const found = take();
        if (found) finish(found);
      };
      const onAbort = () => finish(undefined);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#listeners.add(listener);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#mqtt.endAsync(true);
  }
}

/** How long the broker may take to acknowledge one of the checker's packets. */
const ACK_TIMEOUT_MS = 30_000;

/** `promise`, or a rejection once the broker has not sent its `what` for too long. */
async function acked<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the broker sent no ${what} within ${ACK_TIMEOUT_MS / 1000} s`)),
      ACK_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A session the checker agreed with the responder. */
export interface Session {
  netid: string;
  ours: DhKeyPair;
  /** DER of our public key (step 1) and of the responder's (step 2), as the transcript has them. */
  ourDer: Uint8Array;
  theirDer: Uint8Array;
  theirY: bigint;
  /** The 512-byte shared secret. */
  z: Uint8Array;
  fernet: Fernet;
  /** The step 2 delivery. */
  response: Delivery;
}

/** What the crypto of the checker's clients needs. */
export interface Crypto {
  group: DhGroup;
  dh: { precomputation: DhPrecomputation };
}

/**
 * A key pair whose shared secret with nobody in particular is ordinary: the checker's clients
 * keep `Z[0] != 0` outside the zero-lead case, so a responder that strips zeros fails there
 * only. (The check happens after the exchange; see {@linkcode keyExchange}.)
 */
export function newKeyPair(c: Crypto): DhKeyPair {
  return generateKeyPair(c.group, PRIVATE_KEY_BITS, c.dh);
}

/**
 * Step 1 and 2 for `netid` on `client` (which must {@linkcode CheckClient.watch} it): publishes
 * our key and takes the next response. Returns the session, or a one-line problem. With
 * `ordinary`, an exchange whose `Z` starts with a zero byte is repeated with a new key.
 */
export async function keyExchange(
  client: CheckClient,
  netid: string,
  c: Crypto,
  options: { waitMs: number; signal?: AbortSignal; ours?: DhKeyPair; ordinary?: boolean },
): Promise<Session | string> {
  for (let attempt = 0;; attempt++) {
    const ours = options.ours ?? newKeyPair(c);
    const ourPem = encodePublicKeyPem(c.group, ours.publicKey);
    await client.publish(requestTopic(netid, KEY_EXCHANGE), ourPem);
    const topic = responseTopic(netid, KEY_EXCHANGE);
    const response = await client.next(topic, options.waitMs, options.signal);
    if (response === undefined) {
      return `no key exchange response on ${topic} within ${options.waitMs / 1000} s`;
    }
    let peer;
    try {
      peer = readPeerPublicKey(c.group, response.payload);
    } catch (error) {
      if (!(error instanceof DhKeyError)) throw error;
      return `its key: ${error.message}`;
    }
    const z = computeSharedSecret(c.group, ours.privateKey, peer.y, c.dh);
    if (options.ordinary && z[0] === 0 && attempt < 4 && options.ours === undefined) continue;
    return {
      netid,
      ours,
      ourDer: encodePublicKeyDer(c.group, ours.publicKey),
      theirDer: peer.der,
      theirY: peer.y,
      z,
      fernet: await Fernet.create(await deriveFernetKey(z)),
      response,
    };
  }
}

/** What came back for a request. */
export interface Answer {
  /** The first answer that verified, decrypted; `undefined` when none came in time. */
  text?: string;
  delivery?: Delivery;
  /** Deliveries on the response topic before it that did not verify. */
  noise: number;
}

/**
 * Step 3 and 4: sends `text` for `action` under `fernet` (the session's, unless a case binds
 * another) and waits for the first answer on the response topic that verifies under `answerKey`
 * (default: the same), skipping what does not.
 */
export async function ask(
  client: CheckClient,
  netid: string,
  action: string,
  text: string,
  options: {
    fernet: Fernet;
    answerKey?: Fernet;
    waitMs: number;
    signal?: AbortSignal;
  },
): Promise<Answer> {
  await client.publish(requestTopic(netid, action), await options.fernet.encrypt(text));
  return await awaitAnswer(client, netid, action, options.answerKey ?? options.fernet, options);
}

/** The first delivery on `<netid>/<action>/response` that verifies under `key`. */
export async function awaitAnswer(
  client: CheckClient,
  netid: string,
  action: string,
  key: Fernet,
  options: { waitMs: number; signal?: AbortSignal },
): Promise<Answer> {
  const topic = responseTopic(netid, action);
  const until = performance.now() + options.waitMs;
  let noise = 0;
  for (;;) {
    const left = until - performance.now();
    const delivery = left > 0 ? await client.next(topic, left, options.signal) : undefined;
    if (delivery === undefined) return { noise };
    const plain = await tryDecrypt(key, delivery.payload);
    if (plain === undefined) {
      noise++;
      continue;
    }
    return { text: decodeUtf8(plain) ?? "\ufffd(not UTF-8)", delivery, noise };
  }
}

/** The plaintext of `token` under `key`, or `undefined` if it does not verify. */
export async function tryDecrypt(key: Fernet, token: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    return await key.decrypt(token);
  } catch (error) {
    if (error instanceof InvalidToken) return undefined;
    throw error;
  }
}
