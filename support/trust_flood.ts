/**
 * The flood a `--trust` client must outlast (docs/security.md): a publisher on the same broker
 * that pours valid fake DH keys onto `<netid>/key-exchange/response` and genuine signatures,
 * recorded from earlier exchanges of the trusted responder, onto `<netid>/key-exchange/signature`,
 * as fast as the broker takes them. Nothing in it is signed for the victim's key, so a client
 * that checks honestly can only wait for its deadline; one that does too much work per message,
 * or lets the flood hold off its deadline, runs on. For tests/e2e/ and the bench.
 *
 * @module
 */

import mqtt, { type MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { encodePublicKeyPem, generateKeyPair } from "../lib/crypto/dh.ts";
import { loadLabGroup } from "../lib/protocol/key_agreement.ts";
import { Tap } from "./tap.ts";

const group = loadLabGroup();

/**
 * Signatures by the trusted responder for `netid`, each over an exchange of its own (a fresh A
 * each time): `count` key exchanges run by hand against a responder that signs. The responder
 * must be up; `tap` must be subscribed to `<netid>/key-exchange/signature`.
 */
export async function recordSignatures(tap: Tap, netid: string, count: number): Promise<string[]> {
  const topic = `${netid}/key-exchange/signature`;
  const signatures: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = generateKeyPair(group);
    await tap.publish(`${netid}/key-exchange/request`, encodePublicKeyPem(group, a.publicKey));
    signatures.push(new TextDecoder().decode((await tap.next(topic)).payload));
  }
  return signatures;
}

/**
 * `count` public keys of the lab group that pass every check (PEM, DER, the group, the range)
 * and whose private keys nobody holds: cheap to make, as an attacker would.
 */
export function fakeKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const y = (1n << 4000n) + BigInt(i) * 0x1234567n + 3n;
    return encodePublicKeyPem(group, y);
  });
}

/** How {@linkcode startTrustFlood} floods. */
export interface TrustFloodOptions {
  netid: string;
  /** Step 2 payloads, cycled. */
  keys: string[];
  /** Step 2b payloads, cycled. */
  signatures: string[];
  /** Most messages, both topics together. */
  count: number;
  /** Longest the flood lasts, in milliseconds. */
  maxMs: number;
  /** QoS of the publishes (the victim's subscriptions are QoS 1: it gets the lower). */
  qos: 0 | 1;
}

/** A flood under way. */
export interface TrustFlood extends AsyncDisposable {
  /** Messages published so far. */
  readonly sent: number;
  /** True once the flood has ended, by count or by time. */
  readonly finished: boolean;
  /** Resolves once the broker has taken the first messages (QoS 1: acknowledged them). */
  readonly started: Promise<void>;
  /** Resolves with the messages sent once the flood ends. */
  readonly done: Promise<number>;
  /** Ends the flood now. */
  stop(): void;
}

/**
 * Starts flooding on a connection of its own. QoS 1: up to 64 publishes await their PUBACK at
 * once. QoS 0: written as fast as the socket drains, in bursts of 64.
 */
export async function startTrustFlood(
  broker: { host: string; port: number },
  options: TrustFloodOptions,
): Promise<TrustFlood> {
  const client: MqttClient = await mqtt.connectAsync({
    host: broker.host,
    port: broker.port,
    clientId: `flood-${crypto.randomUUID()}`,
    reconnectPeriod: 0,
    socksProxy: "",
  });
  const keyTopic = `${options.netid}/key-exchange/response`;
  const signatureTopic = `${options.netid}/key-exchange/signature`;
  // Interleaved, a key then a signature, each list cycled.
  const { keys, signatures } = options;
  const payloads = Array.from({ length: Math.max(keys.length, signatures.length) }, (_, i) => [
    [keyTopic, Buffer.from(keys[i % keys.length])] as const,
    [signatureTopic, Buffer.from(signatures[i % signatures.length])] as const,
  ]).flat();
  let sent = 0;
  let finished = false;
  let stopped = false;
  const timer = setTimeout(() => stopped = true, options.maxMs);
  const started = Promise.withResolvers<void>();
  const next = () => payloads[sent++ % payloads.length];
  const more = () => !stopped && sent < options.count;
  const lane = async () => {
    while (more()) {
      const [topic, payload] = next();
      await client.publishAsync(topic, payload, { qos: 1 });
      started.resolve();
    }
  };
  const burst = async () => {
    while (more()) {
      for (let i = 0; i < 64 && more(); i++) {
        const [topic, payload] = next();
        client.publish(topic, payload, { qos: 0 });
      }
      // Let the socket drain (and the timer fire) before the next burst.
      await new Promise<void>((resolve) => {
        if (client.stream.writableNeedDrain) client.stream.once("drain", () => resolve());
        else setTimeout(resolve, 0);
      });
      started.resolve();
    }
  };
  const done = (options.qos === 1 ? Promise.all(Array.from({ length: 64 }, lane)) : burst())
    .finally(() => {
      finished = true;
      clearTimeout(timer);
      started.resolve();
    })
    .then(() => sent);
  done.catch(() => {});
  return {
    get sent() {
      return sent;
    },
    get finished() {
      return finished;
    },
    started: started.promise,
    done,
    stop: () => stopped = true,
    async [Symbol.asyncDispose]() {
      stopped = true;
      await done.catch(() => {});
      await client.endAsync(true);
    },
  };
}
