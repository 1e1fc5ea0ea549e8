/**
 * The responding client the checker plays against a client under test: an MQTT.js connection
 * to the checker's broker, subscribed to `+/+/request`, that follows, netid by netid, the
 * script a case gives it. It answers as the lab says, or misbehaves on purpose (a key chosen so
 * that the shared secret starts with a zero byte, a hostile key, a tampered or forged answer,
 * silence), and it writes down what the client did: its public key, the topics, the keys its
 * tokens verify under (the session's, or the one a known bug would make).
 *
 * @module
 */

import type { IPublishPacket, MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { applyAction, isAction } from "../protocol/actions.ts";
import { openMqtt } from "../mqtt.ts";
import {
  computeSharedSecret,
  type DhGroup,
  DhKeyError,
  DhPrecomputation,
  encodePublicKeyPem,
  generateKeyPair,
  PRIVATE_KEY_BITS,
} from "../crypto/dh.ts";
import { Fernet, InvalidToken } from "../crypto/fernet.ts";
import { deriveFernetKey } from "../crypto/hkdf.ts";
import { readPeerPublicKey } from "../protocol/key_agreement.ts";
import { KEY_EXCHANGE, responseTopic } from "../protocol/topics.ts";
import { decodeUtf8 } from "../utf8.ts";
import { secretBytes, stripped } from "./hostile_keys.ts";

/** How the key exchange request is answered. */
export type KeyPlan =
  | { kind: "normal" }
  /** A key chosen so that the 512-byte shared secret starts with 0x00. */
  | { kind: "zero-lead" }
  | { kind: "silent" }
  /** A key the client must refuse; `secrets`: the `Z`s a client that took it would derive. */
  | { kind: "hostile"; payload: string | Uint8Array; secrets: readonly bigint[] };

/** How an action request under the session key is answered. */
export type AnswerPlan = "normal" | "tampered" | "forged-first" | "silent";

/** What a case wants of one netid's exchange. */
export interface Script {
  key: KeyPlan;
  answer?: AnswerPlan;
  /**
   * The private key of a stale public key left retained on the key exchange response topic: a
   * client that took it encrypts under `A^stale`, which the checker then recognises.
   */
  staleKey?: bigint;
}

/** A key exchange request, as received. */
export interface KeyRequest {
  /** Why the checker could not use the client's key, if it could not. */
  problem?: string;
  retained: boolean;
}

/** An action request, as received. */
export interface ActionRequest {
  action: string;
  bytes: number;
  /**
   * Which key the token verified under: `session`, another one the checker knows (`stale`,
   * `stripped`, `hostile`), or `undefined` for none of them.
   */
  key?: string;
  /** The decrypted message (session key only), `undefined` if not UTF-8. */
  text?: string;
}

/** What the checker answered. */
export interface SentAnswer {
  action: string;
  /** The answer's text, as encrypted. */
  text: string;
  /** What a client that does not check the HMAC would print for a tampered answer. */
  tamperedText?: string;
}

/** Most key exchanges and requests handled per netid: a client that floods gets no more. */
const MAX_KEY_REQUESTS = 8;
const MAX_REQUESTS = 16;
/** The forged token's text: a client must never print it. */
export const FORGED_TEXT = "FORGED BY THE BROKER";

/** One netid's exchange: what the case scripted and what the client did. */
export class Exchange {
  readonly netid: string;
  readonly script: Script;
  readonly keyRequests: KeyRequest[] = [];
  readonly requests: ActionRequest[] = [];
  readonly answers: SentAnswer[] = [];
  /** Key exchange responses published. */
  keysSent = 0;
  /** Requests and key exchanges not handled: over the caps, or after the case. */
  ignored = 0;
  readonly #listeners = new Set<() => void>();
  /** Keys the client's tokens may be under, by label, worked out when its key arrives. */
  readonly keys = new Map<string, Fernet>();

  constructor(netid: string, script: Script) {
    this.netid = netid;
    this.script = script;
  }

  /**
   * Resolves `true` once `test()` holds (checked now and on every change), `false` if
   * `signal` aborts first.
   */
  until(test: () => boolean, signal?: AbortSignal): Promise<boolean> {
    if (test()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const listener = () => {
        if (!test()) return;
        this.#listeners.delete(listener);
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      const onAbort = () => {
        this.#listeners.delete(listener);
        resolve(false);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#listeners.add(listener);
    });
  }

  /** Calls `listener` on every change; returns the remover. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells the waiters of {@linkcode until} that something happened. */
  changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The checker's responding client; `await using` disconnects it. */
export class ScriptedResponder implements AsyncDisposable {
  readonly clientId: string;
  readonly #mqtt: MqttClient;
  readonly #group: DhGroup;
  readonly #dh: { precomputation: DhPrecomputation };
  readonly #exchanges = new Map<string, Exchange>();
  /** Work on one netid's messages in order, one at a time. */
  readonly #queues = new Map<string, Promise<void>>();

  private constructor(mqtt: MqttClient, group: DhGroup, clientId: string) {
    this.#mqtt = mqtt;
    this.#group = group;
    this.clientId = clientId;
    this.#dh = { precomputation: new DhPrecomputation(group) };
    mqtt.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet));
  }

  /** Connects to `broker` and subscribes to every request topic. */
  static async start(broker: { host: string; port: number }, group: DhGroup) {
    const clientId = `secure_mqtt_check-responder-${crypto.randomUUID().slice(0, 8)}`;
    const mqtt = openMqtt({ transport: "mqtt", host: broker.host, port: broker.port }, {
      clientId,
    });
    const responder = new ScriptedResponder(mqtt, group, clientId);
    try {
      await new Promise<void>((resolve, reject) => {
        mqtt.once("connect", () => resolve());
        mqtt.once("error", reject);
      });
      await mqtt.subscribeAsync("+/+/request", { qos: 1 });
    } catch (error) {
      await mqtt.endAsync(true);
      throw error;
    }
    return responder;
  }

  /** From now on, `netid`'s messages follow `script`; returns the record of what happens. */
  expect(netid: string, script: Script): Exchange {
    const exchange = new Exchange(netid, script);
    this.#exchanges.set(netid, exchange);
    return exchange;
  }

  /** Stops handling `netid` (the case is over); its late messages are ignored. */
  forget(netid: string): void {
    this.#exchanges.delete(netid);
  }

  /** Publishes `payload` retained (QoS 1), and resolves at the broker's PUBACK. */
  async retain(topic: string, payload: string | Uint8Array): Promise<void> {
    await this.#mqtt.publishAsync(topic, toBuffer(payload), { qos: 1, retain: true });
  }

  /** Removes the retained message of `topic` (an empty retained payload). */
  async clearRetained(topic: string): Promise<void> {
    await this.#mqtt.publishAsync(topic, "", { qos: 1, retain: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#mqtt.endAsync(true);
  }

  #onMessage(topic: string, payload: Uint8Array, packet: IPublishPacket): void {
    const levels = topic.split("/");
    if (levels.length !== 3 || levels[2] !== "request") return;
    const exchange = this.#exchanges.get(levels[0]);
    if (exchange === undefined) return;
    const bytes = new Uint8Array(payload);
    const previous = this.#queues.get(exchange.netid) ?? Promise.resolve();
    const next = previous.then(() =>
      levels[1] === KEY_EXCHANGE
        ? this.#keyExchange(exchange, bytes, packet.retain)
        : this.#request(exchange, levels[1], bytes)
    ).catch(() => {}).finally(() => exchange.changed());
    this.#queues.set(exchange.netid, next);
  }

  async #keyExchange(exchange: Exchange, payload: Uint8Array, retained: boolean): Promise<void> {
    if (
      exchange.keyRequests.length >= MAX_KEY_REQUESTS ||
      this.#exchanges.get(exchange.netid) !== exchange
    ) {
      exchange.ignored++;
      return;
    }
    const request: KeyRequest = { retained };
    exchange.keyRequests.push(request);
    let a: bigint;
    try {
      a = readPeerPublicKey(this.#group, payload).y;
    } catch (error) {
      if (!(error instanceof DhKeyError)) throw error;
      request.problem = error.message;
      return;
    }
    const { key, staleKey } = exchange.script;
    const group = this.#group;
    exchange.keys.clear();
    if (staleKey !== undefined) {
      const z = computeSharedSecret(group, staleKey, a, this.#dh);
      exchange.keys.set("stale", await fernetOf(z));
    }
    let reply: string | Uint8Array;
    switch (key.kind) {
      case "silent":
        return;
      case "hostile":
        for (const z of key.secrets) {
          const bytes = secretBytes(group, z);
          exchange.keys.set("hostile", await fernetOf(bytes));
          exchange.keys.set("hostile (stripped)", await fernetOf(stripped(bytes)));
        }
        reply = key.payload;
        break;
      case "zero-lead": {
        const { y, z } = zeroLedKey(group, a, this.#dh.precomputation);
        exchange.keys.set("session", await fernetOf(z));
        exchange.keys.set("stripped", await fernetOf(stripped(z)));
        reply = encodePublicKeyPem(group, y);
        break;
      }
      case "normal": {
        // Any other case keeps Z[0] != 0, so that a client that strips zeros fails only the
        // zero-lead case, always, and not 1 case in 256 at random.
        for (;;) {
          const ours = generateKeyPair(group, PRIVATE_KEY_BITS, this.#dh);
          const z = computeSharedSecret(group, ours.privateKey, a, this.#dh);
          if (z[0] === 0) continue;
          exchange.keys.set("session", await fernetOf(z));
          reply = encodePublicKeyPem(group, ours.publicKey);
          break;
        }
        break;
      }
    }
    await this.#mqtt.publishAsync(responseTopic(exchange.netid, KEY_EXCHANGE), toBuffer(reply), {
      qos: 1,
    });
    exchange.keysSent++;
  }

  async #request(exchange: Exchange, action: string, payload: Uint8Array): Promise<void> {
    if (
      exchange.requests.length >= MAX_REQUESTS || this.#exchanges.get(exchange.netid) !== exchange
    ) {
      exchange.ignored++;
      return;
    }
    const request: ActionRequest = { action, bytes: payload.length };
    exchange.requests.push(request);
    let plain: Uint8Array | undefined;
    for (const [label, fernet] of exchange.keys) {
      try {
        plain = await fernet.decrypt(payload);
        request.key = label;
        break;
      } catch (error) {
        if (!(error instanceof InvalidToken)) throw error;
      }
    }
    if (request.key !== "session" || plain === undefined) return;
    request.text = decodeUtf8(plain);
    const plan = exchange.script.answer ?? "normal";
    if (request.text === undefined || !isAction(action) || plan === "silent") return;
    const fernet = exchange.keys.get("session")!;
    const text = applyAction(action, request.text);
    const topic = responseTopic(exchange.netid, action);
    const sent: SentAnswer = { action, text };
    let token = await fernet.encrypt(text);
    if (plan === "forged-first") {
      const forger = await Fernet.fromBase64Key(Fernet.generateKey());
      await this.#mqtt.publishAsync(topic, await forger.encrypt(FORGED_TEXT), { qos: 1 });
    }
    if (plan === "tampered") {
      // One bit of the IV: the HMAC fails, and a client that decrypts without checking it
      // prints the answer with its first byte changed, which the case recognises.
      const raw = Uint8Array.fromBase64(token, { alphabet: "base64url" });
      raw[9] ^= 0x01;
      token = raw.toBase64({ alphabet: "base64url" });
      const first = new TextEncoder().encode(text);
      if (first.length > 0) first[0] ^= 0x01;
      sent.tamperedText = new TextDecoder().decode(first);
    }
    await this.#mqtt.publishAsync(topic, token, { qos: 1 });
    exchange.answers.push(sent);
  }
}

async function fernetOf(z: Uint8Array): Promise<Fernet> {
  return await Fernet.create(await deriveFernetKey(z));
}

/**
 * A public key `y = g^b` for which `A^b`, written in 512 bytes, starts with a zero byte: `b`
 * steps by one, `Z` by a factor of `A`, until `Z < 2^4088` (about 256 steps, one modular
 * multiplication each).
 */
function zeroLedKey(group: DhGroup, a: bigint, precomputation: DhPrecomputation) {
  const limit = 1n << BigInt(group.byteLength * 8 - 8);
  for (;;) {
    const start = generateKeyPair(group, PRIVATE_KEY_BITS, { precomputation }).privateKey;
    let b = start;
    let z = precomputation.pow(a, b);
    for (let step = 0; step < 20_000 && z >= limit; step++) {
      b++;
      z = z * a % group.p;
    }
    if (z >= limit || z < 2n) continue;
    const y = precomputation.pow(group.g, b);
    if (y < 2n || y > group.p - 2n) continue;
    return { y, z: secretBytes(group, z) };
  }
}

function toBuffer(payload: string | Uint8Array): string | Buffer {
  if (typeof payload === "string") return payload;
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length);
}
