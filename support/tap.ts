/**
 * A bare MQTT connection (MQTT.js) for tests and the benchmark: publish anything, wait for
 * what arrives on a topic (no sleeps), and run a key exchange by hand to get a session key,
 * so that a test can send a responder exactly the bytes it wants.
 *
 * @module
 */

import mqtt, { type MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { encodePublicKeyPem, generateKeyPair } from "../lib/crypto/dh.ts";
import type { Fernet } from "../lib/crypto/fernet.ts";
import { loadLabGroup, readPeerPublicKey, SessionSecret } from "../lib/protocol/key_agreement.ts";

/** A delivery as the tap keeps it. */
export interface Delivery {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
}

const group = loadLabGroup();

/** A test-side MQTT connection whose deliveries can be awaited per topic. */
export class Tap implements AsyncDisposable {
  readonly #queues = new Map<string, Delivery[]>();
  readonly #waiters = new Map<string, (d: Delivery) => void>();
  /** Deliveries per topic so far, including those taken. */
  readonly counts = new Map<string, number>();

  private constructor(readonly mqtt: MqttClient) {
    mqtt.on("message", (topic, payload, packet) => {
      this.counts.set(topic, (this.counts.get(topic) ?? 0) + 1);
      this.#put({ topic, payload: new Uint8Array(payload), retain: packet.retain });
    });
  }

  /** Connects to `broker` and subscribes to `filters` (QoS 1). */
  static async open(
    broker: { host: string; port: number },
    filters: string[] = [],
  ): Promise<Tap> {
    const client = await mqtt.connectAsync({
      host: broker.host,
      port: broker.port,
      clientId: `tap-${crypto.randomUUID()}`,
      reconnectPeriod: 0,
      socksProxy: "",
    });
    const tap = new Tap(client);
    if (filters.length > 0) await client.subscribeAsync(filters, { qos: 1 });
    return tap;
  }

  #put(delivery: Delivery): void {
    const waiter = this.#waiters.get(delivery.topic);
    if (waiter) {
      this.#waiters.delete(delivery.topic);
      return waiter(delivery);
    }
    const queue = this.#queues.get(delivery.topic) ?? [];
    queue.push(delivery);
    this.#queues.set(delivery.topic, queue);
  }

  /** The next delivery on `topic`; rejects after `timeoutMs`. */
  next(topic: string, timeoutMs = 15_000): Promise<Delivery> {
    const queued = this.#queues.get(topic)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(topic);
        reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(topic, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
    });
  }

  /** How many deliveries on `topic` are queued, not yet taken. */
  queued(topic: string): number {
    return this.#queues.get(topic)?.length ?? 0;
  }

  /** QoS 1 publish; resolves at the broker's PUBACK. */
  async publish(topic: string, payload: string | Uint8Array, retain = false): Promise<void> {
    const message = typeof payload === "string"
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    await this.mqtt.publishAsync(topic, message, { qos: 1, retain });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.mqtt.endAsync(true);
  }
}

/**
 * Runs a key exchange for `netid` by hand and returns the session's Fernet. The tap must be
 * subscribed to `<netid>/key-exchange/response` (e.g. `+/key-exchange/response`).
 */
export async function handshake(tap: Tap, netid: string): Promise<Fernet> {
  const ours = generateKeyPair(group);
  await tap.publish(`${netid}/key-exchange/request`, encodePublicKeyPem(group, ours.publicKey));
  const reply = await tap.next(`${netid}/key-exchange/response`);
  return await SessionSecret.agree(group, ours, readPeerPublicKey(group, reply.payload).y)
    .labFernet();
}
