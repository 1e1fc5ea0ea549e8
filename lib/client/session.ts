/**
 * One client session (docs/protocol.md): agree a key with a responder through the broker, have
 * it transform a text, return the answer. Every runtime failure is a {@linkcode ClientError}
 * with a one-line reason; lines go to the given logger, and nothing here prints or exits.
 *
 * @module
 */

import type { MqttClient } from "mqtt";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  connected,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
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
import { AckHold } from "./ack_hold.ts";
import { Deadline } from "./deadline.ts";
import { Inbox } from "./inbox.ts";
import { MAX_ANSWER_PAYLOAD_BYTES } from "../protocol/limits.ts";
import {
  actionProblem,
  clientIdProblem,
  messageProblem,
  netidProblem,
  timeoutProblem,
} from "./options.ts";

/**
 * What one session needs. {@linkcode requestTransform} refuses a value the command line would
 * refuse, with a {@linkcode ClientOptionError} in the same words (./options.ts).
 */
export interface ClientOptions {
  broker: BrokerOptions;
  /** One MQTT topic level: no `/`, `+`, `#` or NUL, at most `MAX_NETID_BYTES`. */
  netid: string;
  /** One of `ACTIONS`. */
  action: string;
  /** At most `MAX_MESSAGE_BYTES` of UTF-8. */
  message: string;
  /** The MQTT client ID; default the netid, as the lab requires (brokers' ACLs rely on it). */
  clientId?: string;
  /** The deadline of the whole session, from connect to verified answer: 1 ms to a day. */
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
 * An option {@linkcode requestTransform} cannot use: `option` names it, `problem` says why, in
 * the words of the command line's usage error for it.
 */
export class ClientOptionError extends ClientError {
  override name = "ClientOptionError";
  constructor(readonly option: keyof ClientOptions, readonly problem: string) {
    super(`${option}: ${problem}`);
  }
}

/**
 * Runs the exchange and returns the responder's answer. Options are checked before anything
 * else: a value the command line would refuse is a {@linkcode ClientOptionError}.
 *
 * @example A whole exchange, on the demo's embedded broker
 * ```ts
 * import assert from "node:assert/strict";
 * import { startEmbeddedBroker } from "../embedded_broker.ts";
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
  checkOptions(options);
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

/**
 * The Fernets of the request and of its answer. After an exchange a trusted identity signed,
 * each is bound to its direction, netid and action (docs/protocol.md, "Bound tokens"): our own
 * request copied to the response topic, or a token moved from another action or netid, does
 * not open as the answer. Otherwise the lab protocol's one key serves both.
 */
async function tokenKeys(
  secret: SessionSecret,
  signedBy: string | undefined,
  binding: { netid: string; action: string },
): Promise<{ request: Fernet; response: Fernet }> {
  if (signedBy === undefined) {
    const lab = await secret.labFernet();
    return { request: lab, response: lab };
  }
  const [request, response] = await Promise.all([
    secret.boundFernet({ direction: "request", ...binding }),
    secret.boundFernet({ direction: "response", ...binding }),
  ]);
  return { request, response };
}

function checkOptions(options: ClientOptions): void {
  const check = (option: keyof ClientOptions, problem: string | undefined) => {
    if (problem !== undefined) throw new ClientOptionError(option, problem);
  };
  check("netid", netidProblem(options.netid));
  check("action", actionProblem(options.action));
  check("message", messageProblem(options.message));
  if (options.clientId !== undefined) check("clientId", clientIdProblem(options.clientId));
  check("timeoutMs", timeoutProblem(options.timeoutMs));
}

/**
 * One run of the exchange. Its parts: the {@linkcode Deadline} every wait races, the
 * {@linkcode Inbox} MQTT.js delivers into, the {@linkcode AckHold} on the key exchange topics,
 * and the lost connection, which also ends every wait (a signal the deadline races, so that
 * the many waits of a flooded session leave nothing behind on a promise that lives as long as
 * the session).
 */
class Session {
  readonly #o: ClientOptions;
  readonly #log: Logger;
  readonly #where: string;
  readonly #started = performance.now();
  readonly #deadline: Deadline;
  readonly #topics: { key: string; signature: string; answer: string };
  readonly #inbox: Inbox;
  readonly #mqtt: MqttClient;
  readonly #ackHold: AckHold;
  readonly #clientId: string;
  /** Aborted, with the ClientError that says why, when the connection is lost. */
  readonly #lost = new AbortController();
  #connected = false;

  constructor(options: ClientOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#where = brokerLabel(options.broker);
    this.#deadline = new Deadline(
      options.timeoutMs,
      options.signal ? AbortSignal.any([options.signal, this.#lost.signal]) : this.#lost.signal,
    );
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
      // Nothing we wait for is larger than an answer: a bigger PUBLISH is skipped as it passes,
      // before MQTT.js would buffer it whole (a broker, or anyone publishing on our topics).
      maxPacketBytes: MAX_ANSWER_PAYLOAD_BYTES + 64 * 1024 + 16,
      writeCache: false,
    });
    this.#mqtt.on("message", (topic, payload, packet) => {
      this.#inbox.put(topic, payload, packet.retain);
    });
    this.#ackHold = new AckHold(this.#mqtt, [this.#topics.key, this.#topics.signature]);
    this.#watchConnection();
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
    const subscribed = this.#subscribe(topics);
    // Our key pair is made while the broker answers the SUBSCRIBE.
    const ours = generateKeyPair(group);
    const ourPem = encodePublicKeyPem(group, ours.publicKey);
    await this.#within(subscribed, () => `no SUBACK from ${this.#where} in time`);
    this.#debug(`subscribed to ${topics.join(", ")}, SUBACK received`);

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
    const peer = trusted.size > 0
      ? await this.#authenticatedKey(
        new KeyExchangeVerifier(group, netid, encodePublicKeyDer(group, ours.publicKey), trusted),
        trusted,
      )
      : await this.#labKey();
    const keys = await tokenKeys(SessionSecret.agree(group, ours, peer.y), peer.signedBy, {
      netid,
      action,
    });
    this.#debug(
      `key exchange answered; ${
        peer.signedBy
          ? `authenticated by ${peer.signedBy}, tokens bound to ${netid}/${action}`
          : "not authenticated (no --trust)"
      }`,
    );

    const token = await keys.request.encrypt(this.#o.message);
    this.#inbox.discard(this.#topics.answer);
    const actionRequest = requestTopic(netid, action);
    const sent = this.#publish(actionRequest, token);
    this.#ackHold.releaseOnNextData();
    sent.catch(() => {}); // a loss shows as the lost connection below
    this.#debug(`request sent on ${actionRequest} (${token.length} bytes)`);
    if (this.#log.verbose) {
      // Worked out while the responder works on the request, not before it leaves.
      this.#debug(
        `our public key:  ${await fingerprint(encodePublicKeyDer(group, ours.publicKey))}`,
      );
      this.#debug(`peer public key: ${await fingerprint(peer.der)}`);
    }

    return await this.#answer(keys.response, peer.signedBy !== undefined);
  }

  /** Every way out of the session comes here: nothing of it is left running. */
  async close(): Promise<void> {
    this.#deadline[Symbol.dispose]();
    this.#ackHold[Symbol.dispose]();
    // A polite DISCONNECT only when nothing is left to wait for: end(false) waits for every
    // outstanding PUBACK, which a broker that went away never sends. end(true) fails them
    // (`sent` above is caught) and closes the socket.
    const force = !this.#connected || !this.#mqtt.connected ||
      Object.keys(this.#mqtt.outgoing).length > 0;
    // Its only failure is closing MQTT.js's in-memory stores, which cannot fail; it must not
    // replace the session's own outcome either way.
    await this.#mqtt.endAsync(force).catch(() => {});
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
        () => {
          // Stale signatures are worth naming when no live one came.
          verifier.retained(this.#inbox.retained(this.#topics.key, this.#topics.signature));
          return new UnauthenticatedError(
            `no key exchange on ${this.#topics.key} signed by ${names} within ` +
              `${this.#seconds()}: ${verifier.summary()}`,
            verifier.sawOtherExchangeSigned(),
          );
        },
      );
      const match = message.topic === this.#topics.key
        ? await verifier.offerKey(message.payload)
        : await verifier.offerSignature(message.payload);
      if (match) {
        return match;
      }
      // Not this one: if it is the one held, let the next message in.
      this.#ackHold.release(message.payload);
    }
  }

  async #answer(fernet: Fernet, bound: boolean): Promise<string> {
    let failed = 0;
    // With bound tokens a copy of our own request, or a token moved from another topic, fails
    // here too: name it beside the likelier cause.
    const likely = bound
      ? "another client using this netid at the same time, or a token copied from another topic?"
      : "another client using this netid at the same time?";
    for (;;) {
      const reply = await this.#within(this.#inbox.next(this.#topics.answer), () => {
        const auth = failed === 0 ? "" : `; ${failed} response${failed === 1 ? "" : "s"} on it ` +
          `failed authentication (${likely})`;
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

  /**
   * `p`, unless the deadline passes (then the error `onTimeout` makes) or we are cut off. Every
   * wait of the session comes here, so the deadline is checked before each delivery is taken.
   */
  #within<T>(p: Promise<T>, onTimeout: () => string | ClientError): Promise<T> {
    return this.#deadline.race([p], (reason) => {
      const failure = onTimeout();
      return typeof failure === "string" ? new ClientError(failure, { cause: reason }) : failure;
    });
  }

  #watchConnection(): void {
    let problem: unknown;
    const lost = (error: ClientError) => {
      if (!this.#lost.signal.aborted) this.#lost.abort(error);
    };
    this.#mqtt.on("error", (error) => problem ??= error);
    this.#mqtt.on("close", () => {
      if (!this.#connected) return; // connected() reports a failed connect
      // A reset after the CONNACK is the broker closing the connection, as much as a FIN is:
      // which of the two arrives depends on timing, so both get the one line below.
      const code = (problem as { code?: unknown } | undefined)?.code;
      if (problem !== undefined && code !== "ECONNRESET" && code !== "EPIPE") {
        // The error's own words: toBrokerError's would name the broker a second time.
        const reason = errorLine(problem);
        return lost(new ClientError(`connection to ${this.#where} lost: ${reason}`));
      }
      // MQTT 3.1.1 gives a closed connection no reason. A broker that takes a new connection
      // with our client ID closes ours this way (§3.1.4), and that, the same netid run twice
      // at once, is the likeliest cause while the broker itself stays up.
      lost(
        new ClientError(
          `the broker at ${this.#where} closed the connection: most likely another client ` +
            `connected with the client ID '${this.#clientId}' (the same NetID run twice at ` +
            "once? -i gives this run another client ID), or the broker stopped",
        ),
      );
    });
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

  /** Resolves at the broker's PUBACK. */
  async #publish(topic: string, payload: string): Promise<void> {
    try {
      await this.#mqtt.publishAsync(topic, payload, { qos: 1 });
    } catch (error) {
      throw new ClientError(`publishing on ${topic} failed: ${errorLine(error)}`, {
        cause: error,
      });
    }
  }

  #seconds(): string {
    return `${Number((this.#o.timeoutMs / 1000).toFixed(3))} s`;
  }

  #debug(line: string): void {
    this.#log.debug(`${line} (${(performance.now() - this.#started).toFixed(1)} ms)`);
  }
}
