/**
 * A small, strict MQTT 3.1.1 client over `Deno.connect` / TLS, for the secure request/response
 * CLI. Written in-house because importing npm:mqtt costs ~90 ms of start-up.
 *
 * Scope: clean sessions only, QoS 0/1 outgoing, QoS 0/1/2 incoming, no reconnect (the caller
 * decides what to do when a connection ends). Every failure is an {@link MqttError} with a
 * one-line message that never contains the password.
 *
 * @example
 * ```ts
 * import { MqttClient } from "./mqtt.ts";
 * const client = await MqttClient.open({
 *   host: "localhost",
 *   port: 1883,
 *   clientId: "demo",
 *   onMessage: (m) => console.log(m.topic, new TextDecoder().decode(m.payload)),
 * });
 * await client.subscribe(["demo/response"], 1); // pipelined before CONNACK
 * await client.publish("demo/request", "hello", { qos: 1 });
 * await client.close();
 * ```
 * @module
 */

import {
  encodeAck,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePublish,
  encodeSubscribe,
  type IncomingPacket,
  PacketDecoder,
  PacketError,
  SUBACK_FAILURE,
} from "./mqtt/packet.ts";
import { Timer } from "./timer.ts";

/**
 * What kind of failure an {@link MqttError} is, for callers that branch on it (exit codes)
 * without matching message text, e.g. `if (error.kind === "refused") Deno.exit(3)`.
 *
 * - `invalid`: bad argument or option (nothing was sent).
 * - `connect`: TCP connection failed (refused, DNS, unreachable).
 * - `timeout`: connectTimeoutMs elapsed before CONNACK.
 * - `tls`: TLS handshake failed (untrusted certificate, name mismatch...).
 * - `refused`: the broker answered CONNACK with a refusal.
 * - `lost`: the connection ended without our close() (broker closed it, reset, keepalive).
 * - `protocol`: the broker sent something malformed or unexpected.
 * - `subscription`: SUBACK refused a topic.
 * - `handler`: our own onMessage/onDrop callback threw.
 * - `closed`: the operation was cut short by our own close().
 *
 * @example
 * ```ts
 * import type { MqttErrorKind } from "./mqtt.ts";
 * const worthRetrying = (kind: MqttErrorKind) => kind === "connect" || kind === "lost";
 * ```
 */
export type MqttErrorKind =
  | "invalid"
  | "connect"
  | "timeout"
  | "tls"
  | "refused"
  | "lost"
  | "protocol"
  | "subscription"
  | "handler"
  | "closed";

/**
 * Every failure of this client. The message is one line with no secrets, fit to print as is.
 *
 * @example
 * ```ts
 * import { MqttClient, MqttError } from "./mqtt.ts";
 * try {
 *   await MqttClient.connect({ host: "localhost", port: 1, clientId: "x" });
 * } catch (e) {
 *   if (e instanceof MqttError) console.error(e.message, e.kind);
 * }
 * ```
 */
export class MqttError extends Error {
  /** Always "MqttError". */
  override name = "MqttError";
  /** Machine-readable category of the failure. */
  readonly kind: MqttErrorKind;

  /** `message` is squashed to one line. `kind` defaults to "lost". */
  constructor(message: string, kind: MqttErrorKind = "lost") {
    super(oneLine(message));
    this.kind = kind;
  }
}

/**
 * A message received on a subscription.
 *
 * @example
 * ```ts
 * import type { MqttMessage } from "./mqtt.ts";
 * const onMessage = (m: MqttMessage) => {
 *   if (m.retain) return; // stale by definition in our protocol
 * };
 * ```
 */
export interface MqttMessage {
  /** The topic name the broker published on (valid UTF-8, no wildcards). */
  topic: string;
  /**
   * Safe to keep: a view (byteOffset may be non-zero) into a buffer that holds only this
   * packet, which the client never reuses.
   */
  payload: Uint8Array;
  /** True for a retained message sent because we subscribed (not a live publish). */
  retain: boolean;
  /** QoS of this delivery (at most the granted subscription QoS). */
  qos: 0 | 1 | 2;
}

/**
 * Where the broker is and how to log in: what a user configures, shared by the client
 * session, the responder and the command lines.
 *
 * @example
 * ```ts
 * import type { BrokerOptions } from "./mqtt.ts";
 * const lab: BrokerOptions = { host: "broker.lab", port: 8883, tls: true, username: "alice" };
 * ```
 */
export interface BrokerOptions {
  /** Host name or IP address; also the name the TLS certificate must match. */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
  /** Connect with TLS (certificate and host name verified). */
  tls?: boolean;
  /** Extra trusted CA certificates, PEM text. Only with `tls: true`. */
  caCerts?: string[];
  /** User name for the broker's authentication. */
  username?: string;
  /** Requires `username` (MQTT 3.1.1). Never appears in any error message. */
  password?: string;
}

/**
 * Connection options.
 *
 * @example
 * ```ts
 * import type { MqttOptions } from "./mqtt.ts";
 * const options: MqttOptions = {
 *   host: "broker.example",
 *   port: 8883,
 *   clientId: "cli-1",
 *   tls: true,
 *   caCerts: [await Deno.readTextFile("ca.pem")],
 * };
 * ```
 */
export interface MqttOptions extends BrokerOptions {
  /** May be empty: with a clean session the broker then assigns one. */
  clientId: string;
  /** Default 30; 0 disables keepalive. */
  keepAliveSeconds?: number;
  /** Budget for TCP + TLS + CONNACK together. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Largest incoming packet, fixed header included. Default 4 MiB. A larger PUBLISH is skipped
   * as it streams (never buffered), acknowledged, and reported through `onDrop`.
   */
  maxPacketBytes?: number;
  /**
   * Called synchronously for each incoming message, before it is acknowledged. Must not throw:
   * if it does, the connection is closed with an MqttError of kind "handler".
   */
  onMessage?: (message: MqttMessage) => void;
  /** Called with a one-line reason for each incoming message that was dropped. */
  onDrop?: (reason: string) => void;
}

/**
 * Options of {@link MqttClient.publish}.
 *
 * @example
 * ```ts
 * import type { PublishOptions } from "./mqtt.ts";
 * const options: PublishOptions = { qos: 1, retain: false };
 * ```
 */
export interface PublishOptions {
  /** Default 0. */
  qos?: 0 | 1;
  /** Default false. */
  retain?: boolean;
  /**
   * QoS 1 only: when the broker's PUBACK for this message arrives, call
   * {@link MqttClient.releaseAcks} right there, in the read loop, before the returned promise
   * settles. See {@link MqttClient.holdAcks} for why.
   */
  releaseHeldAcks?: boolean;
}

/**
 * Default options, exported for documentation and tests.
 *
 * @example
 * ```ts
 * import { DEFAULTS } from "./mqtt.ts";
 * console.log(DEFAULTS.connectTimeoutMs); // 5000
 * ```
 */
export const DEFAULTS = {
  keepAliveSeconds: 30,
  connectTimeoutMs: 5000,
  maxPacketBytes: 4 * 1024 * 1024,
} as const;

const CONNACK_REASONS: Record<number, string> = {
  1: "unacceptable protocol version",
  2: "identifier rejected",
  3: "server unavailable",
  4: "bad user name or password",
  5: "not authorized",
};

/** How long close() waits for DISCONNECT to be written before closing the socket anyway. */
const DISCONNECT_WRITE_BUDGET_MS = 1000;
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Most PUBACKs {@link MqttClient.holdAcks} keeps back at once. A broker stops sending QoS 1
 * messages to a client that has this many unacknowledged (mosquitto's default
 * `max_inflight_messages` is 20), so past this count the held ones go out at once.
 *
 * @example
 * ```ts
 * import { MAX_HELD_ACKS } from "./mqtt.ts";
 * console.log(MAX_HELD_ACKS); // 16
 * ```
 */
export const MAX_HELD_ACKS = 16;

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** A platform error's message without the " (os error N)" suffix. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return oneLine(message.replace(/\s*\(os error \d+\)\s*$/, "")) || "unknown error";
}

/**
 * Mark a promise as handled and return it. When the connection fails, every pending op rejects
 * with the same error; a caller who awaits only one of them (say `connack`) must not crash on
 * the others as unhandled rejections. Awaiting the returned promise still throws.
 */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

function invalid(message: string): MqttError {
  return new MqttError(message, "invalid");
}

interface Settings {
  host: string;
  port: number;
  where: string;
  tls: boolean;
  caCerts: string[] | undefined;
  keepAliveMs: number;
  connectTimeoutMs: number;
  maxPacketBytes: number;
  onMessage: ((message: MqttMessage) => void) | undefined;
  onDrop: ((reason: string) => void) | undefined;
}

function checkOptions(options: MqttOptions): { settings: Settings; connect: Uint8Array } {
  if (options === null || typeof options !== "object") throw invalid("options are required");
  const { host, port } = options;
  if (typeof host !== "string" || host === "" || /\s/.test(host)) {
    throw invalid("invalid option host: must be a non-empty host name or address");
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`invalid option port: ${port}`);
  }
  const keepAliveSeconds = options.keepAliveSeconds ?? DEFAULTS.keepAliveSeconds;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0) {
    throw invalid(`invalid option connectTimeoutMs: ${connectTimeoutMs}`);
  }
  const maxPacketBytes = options.maxPacketBytes ?? DEFAULTS.maxPacketBytes;
  if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 64) {
    throw invalid(`invalid option maxPacketBytes: ${maxPacketBytes} (minimum 64)`);
  }
  const caCerts = options.caCerts;
  if (caCerts !== undefined) {
    if (!Array.isArray(caCerts) || caCerts.some((pem) => typeof pem !== "string")) {
      throw invalid("invalid option caCerts: must be PEM strings");
    }
    // Trusting a CA but then connecting in clear text is a configuration mistake, not a choice.
    if (caCerts.length > 0 && options.tls !== true) {
      throw invalid("invalid option caCerts: given without tls");
    }
  }
  let connect: Uint8Array;
  try {
    connect = encodeConnect({
      clientId: options.clientId,
      keepAliveSeconds,
      cleanSession: true,
      username: options.username,
      password: options.password,
    });
  } catch (error) {
    throw invalid(`invalid connect options: ${reasonOf(error)}`);
  }
  return {
    connect,
    settings: {
      host,
      port,
      where: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
      tls: options.tls === true,
      caCerts,
      keepAliveMs: keepAliveSeconds * 1000,
      connectTimeoutMs,
      maxPacketBytes,
      onMessage: options.onMessage,
      onDrop: options.onDrop,
    },
  };
}

/**
 * A failed handshake: kind "tls" (permanent: retrying will not fix a certificate) only when
 * the peer's certificate or the TLS dialogue itself was refused; a reset or EOF mid-handshake,
 * as while a broker restarts, is "lost" so that a long-running caller retries it.
 */
function tlsError(where: string, error: unknown): MqttError {
  const kind = error instanceof Deno.errors.InvalidData ||
      (error instanceof Error &&
        /certificate|alert|protocol version/i.test(error.message))
    ? "tls"
    : "lost";
  return new MqttError(`TLS handshake with ${where} failed: ${reasonOf(error)}`, kind);
}

function connectError(where: string, error: unknown): MqttError {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new MqttError(`cannot connect to ${where}: connection refused`, "connect");
  }
  const reason = reasonOf(error);
  if (/lookup address|name or service not known|no such host|nodename nor servname/i.test(reason)) {
    return new MqttError(`cannot connect to ${where}: host not found`, "connect");
  }
  return new MqttError(`cannot connect to ${where}: ${reason}`, "connect");
}

/** Open the TCP (and TLS) transport within `deadline`, mapping failures to MqttError. */
async function openTransport(settings: Settings, deadline: number): Promise<Deno.Conn> {
  const { host, port, where } = settings;
  const timeoutError = (stage: string) =>
    new MqttError(
      `cannot connect to ${where}: timed out after ${settings.connectTimeoutMs} ms (${stage})`,
      "timeout",
    );
  const abort = new AbortController();
  const timer = new Timer(deadline - Date.now(), () => abort.abort());
  try {
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname: host, port, signal: abort.signal });
    } catch (error) {
      throw abort.signal.aborted ? timeoutError("TCP") : connectError(where, error);
    }
    if (abort.signal.aborted) {
      closeQuietly(tcp);
      throw timeoutError("TCP");
    }
    // Each packet is one small write and the protocol is request/response: Nagle's algorithm
    // would hold a packet back until the previous one is acknowledged (~40 ms on Linux).
    tcp.setNoDelay(true);
    if (!settings.tls) return tcp;
    // startTls on our own TCP connection (rather than connectTls) so TCP failures (refused,
    // DNS) stay distinct from TLS failures, and one deadline covers both stages.
    let tls: Deno.TlsConn;
    try {
      tls = await Deno.startTls(tcp, { hostname: host, caCerts: settings.caCerts });
    } catch (error) {
      closeQuietly(tcp);
      throw tlsError(where, error);
    }
    // Closing cancels the handshake. (Deno 2.9 then keeps the socket itself open until the
    // peer answers or hangs up; there is no handle left to force it shut.)
    const onAbort = () => closeQuietly(tls);
    abort.signal.addEventListener("abort", onAbort, { once: true });
    try {
      await tls.handshake();
    } catch (error) {
      closeQuietly(tls);
      throw abort.signal.aborted ? timeoutError("TLS handshake") : tlsError(where, error);
    } finally {
      abort.signal.removeEventListener("abort", onAbort);
    }
    if (abort.signal.aborted) {
      closeQuietly(tls);
      throw timeoutError("TLS handshake");
    }
    return tls;
  } finally {
    timer.cancel();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) out.set(part, at), at += part.length;
  return out;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

interface PendingOp {
  kind: "publish" | "subscribe";
  topics: readonly string[];
  /** A publish whose PUBACK releases the held acks ({@link PublishOptions.releaseHeldAcks}). */
  releaseHeldAcks: boolean;
  resolve: (granted: number[]) => void;
  reject: (error: MqttError) => void;
}

/**
 * One MQTT 3.1.1 connection (clean session). No reconnect: when it ends, `closed` says why.
 *
 * @example
 * ```ts
 * import { MqttClient } from "./mqtt.ts";
 * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
 * const granted = await client.subscribe(["a/response", "b/response"], 1); // [1, 1]
 * await client.publish("a/request", new Uint8Array([1, 2, 3]), { qos: 1 });
 * await client.close();
 * ```
 */
export class MqttClient {
  /**
   * Resolves on an accepted CONNACK; rejects with an MqttError if the broker refuses, the
   * connect deadline passes or the connection ends first. (A rejection nobody awaits is not
   * reported as unhandled.)
   */
  readonly connack: Promise<void>;
  /**
   * Settles exactly once, never rejects, after the socket is closed and all I/O has stopped:
   * undefined after our own close(), otherwise the MqttError that ended the connection.
   */
  readonly closed: Promise<MqttError | undefined>;

  #conn: Deno.Conn;
  #settings: Settings;
  #decoder: PacketDecoder;
  #state: "open" | "closing" | "ended" = "open";
  /** Why later calls fail; set when the state leaves "open". */
  #endError: MqttError | undefined;
  #connackReceived = false;
  #connackResolvers: PromiseWithResolvers<void>;
  #closedResolvers: PromiseWithResolvers<MqttError | undefined>;
  #inflight = new Map<number, PendingOp>();
  /** Incoming QoS 2 ids between PUBLISH and PUBREL: a resent PUBLISH is not delivered twice. */
  #qos2Received = new Set<number>();
  #nextPacketId = 1;
  #writeChain: Promise<void> = Promise.resolve();
  #reading: Promise<void> = Promise.resolve();
  #connackTimer: Timer | undefined;
  #keepAliveTimer: Timer | undefined;
  #lastSentAt = 0;
  #pingSentAt: number | undefined;
  /** Between holdAcks() and releaseAcks(): PUBACKs of incoming QoS 1 messages wait. */
  #holdingAcks = false;
  /** Packet ids of incoming QoS 1 messages whose PUBACK is held, in arrival order. */
  #heldAcks = new Set<number>();

  private constructor(conn: Deno.Conn, settings: Settings, deadline: number) {
    this.#conn = conn;
    this.#settings = settings;
    this.#decoder = new PacketDecoder(settings.maxPacketBytes);
    this.#connackResolvers = Promise.withResolvers<void>();
    this.connack = this.#connackResolvers.promise;
    this.connack.catch(() => {});
    this.#closedResolvers = Promise.withResolvers<MqttError | undefined>();
    this.closed = this.#closedResolvers.promise;
    this.#connackTimer = new Timer(deadline - Date.now(), () => {
      this.#connackTimer = undefined;
      this.#fail(
        new MqttError(
          `cannot connect to ${settings.where}: timed out after ${settings.connectTimeoutMs} ms ` +
            "(no CONNACK)",
          "timeout",
        ),
      );
    });
  }

  /**
   * Connect TCP (and TLS) and write CONNECT, without waiting for CONNACK, so the caller can
   * pipeline SUBSCRIBE/PUBLISH and do CPU work meanwhile. Await `connack` (or any operation)
   * to learn whether the broker accepted. Rejects with MqttError (`cannot connect to
   * HOST:PORT: connection refused`, `TLS handshake with HOST:PORT failed: ...`, timeouts).
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.open({ host: "localhost", port: 1883, clientId: "c" });
   * const subscribed = client.subscribe(["x/response"], 1); // goes out before CONNACK
   * await client.connack;
   * await subscribed;
   * ```
   */
  static async open(options: MqttOptions): Promise<MqttClient> {
    const { settings, connect } = checkOptions(options);
    const deadline = Date.now() + settings.connectTimeoutMs;
    const conn = await openTransport(settings, deadline);
    const client = new MqttClient(conn, settings, deadline);
    client.#reading = client.#readLoop();
    try {
      await client.#send(connect);
    } catch (error) {
      await client.closed;
      throw error;
    }
    client.#startKeepAlive();
    return client;
  }

  /**
   * {@link open} and wait for an accepted CONNACK. On refusal rejects with e.g.
   * `broker refused connection: not authorized`, after the socket is closed.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({
   *   host: "localhost",
   *   port: 1883,
   *   clientId: "c",
   *   username: "alice",
   *   password: "secret",
   * });
   * await client.close();
   * ```
   */
  static async connect(options: MqttOptions): Promise<MqttClient> {
    const client = await MqttClient.open(options);
    try {
      await client.connack;
    } catch (error) {
      await client.closed;
      throw error;
    }
    return client;
  }

  /**
   * Subscribe to all `topics` in ONE SUBSCRIBE packet, each at `qos` (default 0). Resolves
   * with the granted QoS list on SUBACK; rejects with `subscription to TOPIC refused` if the
   * broker refuses any of them.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * const granted = await client.subscribe(["n/key-exchange/response", "n/reverse/response"], 1);
   * ```
   */
  subscribe(topics: string[], qos: 0 | 1 = 0): Promise<number[]> {
    if (this.#endError) return handled(Promise.reject(this.#endError));
    if (!Array.isArray(topics)) {
      return Promise.reject(invalid("subscribe needs an array of topics"));
    }
    if (qos !== 0 && qos !== 1) return Promise.reject(invalid(`invalid QoS ${qos}`));
    return this.#request(
      "subscribe",
      [...topics],
      (packetId) => encodeSubscribe(packetId, topics, qos),
      false,
    );
  }

  /**
   * Publish `payload` (a string is sent as UTF-8). QoS 0 resolves once written to the socket;
   * QoS 1 resolves on PUBACK.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * await client.publish("n/key-exchange/request", "-----BEGIN PUBLIC KEY-----...", { qos: 1 });
   * ```
   */
  publish(
    topic: string,
    payload: Uint8Array | string,
    options: PublishOptions = {},
  ): Promise<void> {
    if (this.#endError) return handled(Promise.reject(this.#endError));
    const qos = options.qos ?? 0;
    if (qos !== 0 && qos !== 1) return Promise.reject(invalid(`invalid QoS ${qos}`));
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    const retain = options.retain === true;
    const releaseHeldAcks = options.releaseHeldAcks === true;
    if (releaseHeldAcks && qos !== 1) {
      return Promise.reject(invalid("releaseHeldAcks needs a QoS 1 publish"));
    }
    if (qos === 0) {
      let packet: Uint8Array;
      try {
        packet = encodePublish({ topic, payload: bytes, qos: 0, retain });
      } catch (error) {
        return Promise.reject(invalid(reasonOf(error)));
      }
      return handled(this.#send(packet));
    }
    return handled(
      this.#request(
        "publish",
        [topic],
        (packetId) => encodePublish({ topic, payload: bytes, qos, retain, packetId }),
        releaseHeldAcks,
      ).then(() => {}),
    );
  }

  /**
   * Hold back the PUBACK of every incoming QoS 1 message from now on, until
   * {@link releaseAcks} (or a publish with `releaseHeldAcks`, or {@link close}) sends them.
   * Messages are still delivered to `onMessage` at once; only their acknowledgement waits.
   * MQTT 3.1.1 sets no deadline for a PUBACK, and the broker keeps every message it sent
   * until acknowledged, so this is legal; it only delays the broker's bookkeeping.
   *
   * Why: a request/response round trip through a broker that leaves Nagle's algorithm on
   * (mosquitto's default, `set_tcp_nodelay false`). The broker answers our QoS 1 request with
   * a PUBACK, a small segment. We have nothing to send back, so our kernel delays its TCP ACK
   * (~40 ms on Linux), and the broker's Nagle holds the response, another small segment,
   * until that ACK arrives: ~40 ms lost on every round trip, on loopback. A held PUBACK is
   * something to send that the broker does not answer: sent once our request's PUBACK has
   * arrived, its segment carries the TCP ACK, so the broker has nothing unacknowledged towards
   * us when the response is ready and sends it at once. (A PINGREQ would not do: its PINGRESP
   * becomes the next unacknowledged segment.)
   *
   * Keep the window short: at most {@link MAX_HELD_ACKS} are held (more go out at once).
   * {@link close} sends the held ones before its DISCONNECT; only a connection that fails
   * drops them, as it drops any packet not yet written. QoS 2 acknowledgements are never
   * held.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * client.holdAcks();
   * // ... a QoS 1 message arrives; our next request carries the TCP ACK for it ...
   * await client.publish("n/reverse/request", "token", { qos: 1, releaseHeldAcks: true });
   * await client.close();
   * ```
   */
  holdAcks(): void {
    if (this.#state === "open") this.#holdingAcks = true;
  }

  /**
   * Stop holding PUBACKs and send the held ones, in one write, oldest first, each exactly
   * once. Resolves once written (at once if none are held, as after the connection has
   * ended); rejects only if that write fails. See {@link holdAcks}.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * client.holdAcks();
   * await client.releaseAcks();
   * await client.close();
   * ```
   */
  releaseAcks(): Promise<void> {
    this.#holdingAcks = false;
    const held = this.#takeHeldAcks();
    return held ? handled(this.#send(held)) : Promise.resolve();
  }

  /**
   * Resolves once every packet queued so far has been handed to the socket (or the connection
   * has ended); never rejects. Operations queue their packet synchronously and write it from a
   * promise chain, so `await client.flushed()` after e.g. `subscribe()` puts the SUBSCRIBE on
   * the wire before a long synchronous computation blocks the event loop.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.open({ host: "localhost", port: 1883, clientId: "c" });
   * const subscribed = client.subscribe(["x/response"], 1);
   * await client.flushed(); // SUBSCRIBE written: the broker works while we compute
   * // ... CPU-bound work ...
   * await subscribed;
   * await client.close();
   * ```
   */
  flushed(): Promise<void> {
    return this.#writeChain;
  }

  /**
   * Send DISCONNECT and close the socket. Pending operations reject with MqttError
   * `connection to HOST:PORT closed by client`; `closed` resolves with undefined (unless the
   * connection had already failed). Idempotent; resolves once all I/O has stopped.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * const client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * await client.close();
   * await client.close(); // no-op
   * ```
   */
  async close(): Promise<void> {
    if (this.#state !== "open") {
      await this.closed;
      return;
    }
    this.#state = "closing";
    this.#endError = new MqttError(
      `connection to ${this.#settings.where} closed by client`,
      "closed",
    );
    // Queued behind writes already accepted (a QoS 0 publish just before close() still goes
    // out), but bounded: a broker that stopped reading must not hang close(). Held PUBACKs
    // go out first, in the same write: every message we took is acknowledged.
    this.#holdingAcks = false;
    const held = this.#takeHeldAcks();
    const farewell = held ? concat([held, encodeDisconnect()]) : encodeDisconnect();
    const disconnect = this.#enqueueWrite(farewell).catch(() => {});
    let timer: Timer | undefined;
    const budget = new Promise<void>((resolve) => {
      timer = new Timer(DISCONNECT_WRITE_BUDGET_MS, resolve);
    });
    await Promise.race([disconnect, budget]);
    timer?.cancel();
    await this.#teardown(undefined);
  }

  /**
   * `await using client = await MqttClient.connect(...)` closes it at the end of the scope.
   *
   * @example
   * ```ts
   * import { MqttClient } from "./mqtt.ts";
   * await using client = await MqttClient.connect({ host: "localhost", port: 1883, clientId: "c" });
   * await client.publish("t", "x");
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Allocate a packet id, register the op, send; resolves/rejects on the matching ack. */
  #request(
    kind: PendingOp["kind"],
    topics: readonly string[],
    encode: (packetId: number) => Uint8Array,
    releaseHeldAcks: boolean,
  ): Promise<number[]> {
    const packetId = this.#allocatePacketId();
    if (packetId === undefined) {
      return Promise.reject(invalid("too many operations in flight (65535)"));
    }
    let packet: Uint8Array;
    try {
      packet = encode(packetId);
    } catch (error) {
      return Promise.reject(invalid(reasonOf(error)));
    }
    const { promise, resolve, reject } = Promise.withResolvers<number[]>();
    this.#inflight.set(packetId, { kind, topics, releaseHeldAcks, resolve, reject });
    // A failed write ends the connection, which rejects this op through #teardown.
    this.#send(packet).catch(() => {});
    return handled(promise);
  }

  /** The held PUBACKs as one buffer (undefined if none), and forget them. */
  #takeHeldAcks(): Uint8Array | undefined {
    if (this.#heldAcks.size === 0) return undefined;
    const acks = concat([...this.#heldAcks].map((id) => encodeAck("puback", id)));
    this.#heldAcks.clear();
    return acks;
  }

  /** Packet ids run 1..65535 and wrap, skipping ids still in flight. */
  #allocatePacketId(): number | undefined {
    for (let tries = 0; tries < 0xffff; tries++) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 0xffff ? 1 : id + 1;
      if (!this.#inflight.has(id)) return id;
    }
    return undefined;
  }

  #send(packet: Uint8Array): Promise<void> {
    if (this.#endError) return handled(Promise.reject(this.#endError));
    return this.#enqueueWrite(packet);
  }

  /** Writes are chained so packets never interleave; each packet is one buffer. */
  #enqueueWrite(packet: Uint8Array): Promise<void> {
    this.#lastSentAt = Date.now();
    const write = this.#writeChain.then(() => this.#writeAll(packet));
    this.#writeChain = write.catch(() => {});
    return write;
  }

  async #writeAll(packet: Uint8Array): Promise<void> {
    if (this.#state === "ended") throw this.#endError!;
    try {
      let written = 0;
      while (written < packet.length) {
        written += await this.#conn.write(packet.subarray(written));
      }
    } catch (error) {
      const lost = new MqttError(
        `connection to ${this.#settings.where} lost: ${reasonOf(error)}`,
        "lost",
      );
      this.#fail(lost);
      throw this.#endError ?? lost;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (this.#state === "open") {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          const when = this.#connackReceived ? "" : " before CONNACK";
          this.#fail(
            new MqttError(
              `connection to ${this.#settings.where} lost: closed by broker${when}`,
              "lost",
            ),
          );
          return;
        }
        if (this.#state !== "open") return;
        // Copy out of the reused read buffer: the decoder keeps chunks until a packet is whole.
        this.#decoder.push(buffer.slice(0, n));
        this.#drain();
      }
    } catch (error) {
      // After our own close the read is interrupted on purpose; #fail ignores that case.
      this.#fail(
        new MqttError(`connection to ${this.#settings.where} lost: ${reasonOf(error)}`, "lost"),
      );
    }
  }

  #drain(): void {
    while (this.#state === "open") {
      let packet: IncomingPacket | undefined;
      try {
        packet = this.#decoder.next();
      } catch (error) {
        const reason = error instanceof PacketError ? error.message : reasonOf(error);
        this.#fail(new MqttError(`protocol error from broker: ${reason}`, "protocol"));
        return;
      }
      if (packet === undefined) return;
      this.#handle(packet);
    }
  }

  #protocolError(reason: string): void {
    this.#fail(new MqttError(`protocol error from broker: ${reason}`, "protocol"));
  }

  #handle(packet: IncomingPacket): void {
    if (!this.#connackReceived && packet.type !== "connack") {
      return this.#protocolError(`${packet.type.toUpperCase()} before CONNACK`);
    }
    switch (packet.type) {
      case "connack":
        return this.#onConnack(packet.returnCode, packet.sessionPresent);
      case "publish":
        return this.#onPublish(packet);
      case "oversize": {
        const { topic, size, qos, packetId } = packet;
        const limit = this.#settings.maxPacketBytes;
        if (
          !this.#callHandler(() =>
            this.#settings.onDrop?.(
              `message on ${topic} of ${size} bytes exceeds the ${limit}-byte limit`,
            )
          )
        ) return;
        return this.#acknowledge(qos, packetId);
      }
      case "puback":
      case "suback": {
        const op = this.#inflight.get(packet.packetId);
        const expected = packet.type === "puback" ? "publish" : "subscribe";
        if (op === undefined || op.kind !== expected) {
          return this.#protocolError(
            `unexpected ${packet.type.toUpperCase()} for packet id ${packet.packetId}`,
          );
        }
        this.#inflight.delete(packet.packetId);
        if (packet.type === "suback") return this.#onSuback(op, packet.returnCodes);
        // Released here, not by whoever awaits the publish: that may be a few turns later.
        if (op.releaseHeldAcks) this.releaseAcks().catch(() => {});
        return op.resolve([]);
      }
      case "pubrel":
        // Complete the incoming QoS 2 handshake (even for an id we do not know: a resent
        // PUBREL after we already answered must still get its PUBCOMP).
        this.#qos2Received.delete(packet.packetId);
        this.#send(encodeAck("pubcomp", packet.packetId)).catch(() => {});
        return;
      case "pingresp":
        this.#pingSentAt = undefined;
        return;
      default:
        // PUBREC/PUBCOMP/UNSUBACK answer things we never send.
        return this.#protocolError(`unexpected ${packet.type.toUpperCase()}`);
    }
  }

  #onConnack(returnCode: number, sessionPresent: boolean): void {
    if (this.#connackReceived) return this.#protocolError("second CONNACK");
    this.#connackReceived = true;
    this.#connackTimer?.cancel();
    this.#connackTimer = undefined;
    if (returnCode !== 0) {
      const reason = CONNACK_REASONS[returnCode] ?? `return code ${returnCode}`;
      return this.#fail(new MqttError(`broker refused connection: ${reason}`, "refused"));
    }
    // [MQTT-3.2.2-1]: a clean session cannot be present.
    if (sessionPresent) return this.#protocolError("CONNACK session present on a clean session");
    this.#connackResolvers.resolve();
  }

  #onPublish(packet: Extract<IncomingPacket, { type: "publish" }>): void {
    const { topic, qos, retain, packetId } = packet;
    const duplicate = qos === 2 && this.#qos2Received.has(packetId);
    if (!duplicate) {
      // No copy: the decoder gave this packet its own buffer, nothing else refers to it.
      const message: MqttMessage = { topic, payload: packet.payload, retain, qos };
      if (!this.#callHandler(() => this.#settings.onMessage?.(message))) return;
    }
    this.#acknowledge(qos, packetId);
  }

  #acknowledge(qos: 0 | 1 | 2, packetId: number): void {
    if (this.#state !== "open") return;
    if (qos === 1 && this.#holdingAcks) {
      // A Set: a broker that resends a message we still hold gets one PUBACK, not two.
      this.#heldAcks.add(packetId);
      if (this.#heldAcks.size >= MAX_HELD_ACKS) {
        this.#send(this.#takeHeldAcks()!).catch(() => {});
      }
    } else if (qos === 1) {
      this.#send(encodeAck("puback", packetId)).catch(() => {});
    } else if (qos === 2) {
      this.#qos2Received.add(packetId);
      this.#send(encodeAck("pubrec", packetId)).catch(() => {});
    }
  }

  /** Run a user callback; if it throws, end the connection loudly instead of losing it. */
  #callHandler(call: () => void): boolean {
    try {
      call();
      return true;
    } catch (error) {
      this.#fail(new MqttError(`message handler threw: ${reasonOf(error)}`, "handler"));
      return false;
    }
  }

  #onSuback(op: PendingOp, returnCodes: number[]): void {
    if (returnCodes.length !== op.topics.length) {
      op.reject(
        new MqttError(
          `protocol error from broker: SUBACK has ${returnCodes.length} codes ` +
            `for ${op.topics.length} topics`,
          "protocol",
        ),
      );
      return this.#protocolError("SUBACK code count mismatch");
    }
    const refused = returnCodes.findIndex((code) => code === SUBACK_FAILURE);
    if (refused >= 0) {
      op.reject(new MqttError(`subscription to ${op.topics[refused]} refused`, "subscription"));
    } else {
      op.resolve(returnCodes);
    }
  }

  /**
   * Keepalive [MQTT-3.1.2-23]: a periodic check, every quarter of keepAlive. After 3/4 of
   * keepAlive with nothing sent it sends PINGREQ (so the broker hears from us within
   * keepAlive); a PINGRESP that has not come within keepAlive means the connection is dead
   * (half-open sockets do not always error on their own). One timer at a time, whatever the
   * traffic: a busy connection does not re-arm anything per packet.
   */
  #startKeepAlive(): void {
    const keepAlive = this.#settings.keepAliveMs;
    if (keepAlive === 0) return;
    const period = keepAlive / 4;
    const tick = () => {
      this.#keepAliveTimer = undefined;
      if (this.#state !== "open") return;
      this.#checkKeepAlive(keepAlive, period);
      if (this.#state === "open") this.#keepAliveTimer = new Timer(period, tick);
    };
    if (this.#state === "open") this.#keepAliveTimer = new Timer(period, tick);
  }

  #checkKeepAlive(keepAlive: number, period: number): void {
    const now = Date.now();
    if (this.#pingSentAt !== undefined) {
      if (now - this.#pingSentAt < keepAlive) return;
      return this.#fail(
        new MqttError(
          `connection to ${this.#settings.where} lost: no PINGRESP within ${keepAlive / 1000} s`,
          "lost",
        ),
      );
    }
    // The next check would come after keepAlive of silence: ping now.
    if (now - this.#lastSentAt < keepAlive - period) return;
    this.#pingSentAt = now;
    this.#send(encodePingreq()).catch(() => {});
  }

  /** The connection failed: record why (first reason wins) and release everything. */
  #fail(error: MqttError): void {
    if (this.#state !== "open") return;
    this.#state = "closing";
    this.#endError = error;
    void this.#teardown(error);
  }

  /**
   * Close the socket, wait until the read loop and pending writes have settled (so no I/O op
   * outlives the client), then reject whatever is pending and settle `closed`.
   */
  async #teardown(result: MqttError | undefined): Promise<void> {
    this.#state = "ended";
    this.#connackTimer?.cancel();
    this.#keepAliveTimer?.cancel();
    this.#connackTimer = this.#keepAliveTimer = undefined;
    // After a failure there is no socket left to send held PUBACKs on (after close() they
    // went out with the DISCONNECT).
    this.#holdingAcks = false;
    this.#heldAcks.clear();
    closeQuietly(this.#conn);
    await this.#reading;
    await this.#writeChain;
    const error = this.#endError!;
    for (const op of this.#inflight.values()) op.reject(error);
    this.#inflight.clear();
    this.#connackResolvers.reject(error);
    this.#closedResolvers.resolve(result);
  }
}
