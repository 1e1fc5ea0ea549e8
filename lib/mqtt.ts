/**
 * Where the broker is and how we reach it with MQTT.js: the connection options both the client
 * and the responder use, and one-line errors for everything that can go wrong on the way
 * (refused, unknown host, TLS, CONNACK refusals), classified by code, never by message text.
 *
 * @module
 */

import { errorLine } from "./log.ts";
import { guardPacketSize } from "./mqtt_size_guard.ts";
import mqtt, { type IClientOptions, MqttClient } from "mqtt";
import { createConnection, isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect as connectTls } from "node:tls";

/** How MQTT travels: plain TCP, TLS, WebSocket, WebSocket over TLS. */
export type Transport = "mqtt" | "mqtts" | "ws" | "wss";

/** A broker and the credentials for it. */
export interface BrokerOptions {
  transport: Transport;
  host: string;
  port: number;
  /** The HTTP path of a WebSocket broker, e.g. `/mqtt`. */
  path?: string;
  /** PEM certificates of a private CA to trust (TLS transports only). */
  ca?: string[];
  username?: string;
  /** Never logged, never part of an error message. */
  password?: string;
}

/**
 * How a broker is named in messages: `host:port` for MQTT over TCP or TLS (IPv6 in
 * brackets), the URL for WebSocket brokers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brokerLabel } from "./mqtt.ts";
 * assert.equal(brokerLabel({ transport: "mqtt", host: "::1", port: 1884 }), "[::1]:1884");
 * assert.equal(
 *   brokerLabel({ transport: "wss", host: "lab.example", port: 443, path: "/mqtt" }),
 *   "wss://lab.example:443/mqtt",
 * );
 * ```
 */
export function brokerLabel(broker: BrokerOptions): string {
  const host = broker.host.includes(":") ? `[${broker.host}]` : broker.host;
  const address = `${host}:${broker.port}`;
  return broker.transport.startsWith("ws")
    ? `${broker.transport}://${address}${broker.path ?? ""}`
    : address;
}

/**
 * What kind of failure a {@linkcode BrokerError} is; `not-mqtt` is a server that answered,
 * but not with a CONNACK (an HTTP or TLS server on that port, say).
 */
export type BrokerErrorKind = "unreachable" | "tls" | "refused" | "lost" | "not-mqtt";

/**
 * A connection failure, as one line fit for stderr. `permanent` failures (a certificate we do
 * not trust, credentials the broker refuses) will not go away by trying again.
 */
export class BrokerError extends Error {
  override name = "BrokerError";
  constructor(
    readonly kind: BrokerErrorKind,
    message: string,
    readonly permanent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// CONNACK return codes (MQTT 3.1.1 §3.2.2.3) and reason codes (MQTT 5 §3.2.2.2). The ones a
// retry may get past are the broker saying "not now".
const CONNACK_REASONS: Record<number, string> = {
  1: "unsupported protocol version",
  2: "client identifier rejected",
  3: "server unavailable",
  4: "bad user name or password (check --username and MQTT_PASSWORD)",
  5: "not authorized (check --username and MQTT_PASSWORD)",
  128: "unspecified error",
  132: "unsupported protocol version",
  133: "client identifier rejected",
  134: "bad user name or password (check --username and MQTT_PASSWORD)",
  135: "not authorized (check --username and MQTT_PASSWORD)",
  136: "server unavailable",
  137: "server busy",
  138: "banned",
  151: "quota exceeded",
  159: "connection rate exceeded",
};
const TRANSIENT_CONNACK_CODES = new Set([3, 136, 137, 151, 159]);
// "Bad user name or password" and "not authorized", in both versions.
const CREDENTIAL_CONNACK_CODES = new Set([4, 5, 134, 135]);

/** The `code` of the error {@linkcode openMqtt} reports for a server that is not a broker. */
export const NOT_MQTT = "ERR_NOT_MQTT";

const UNTRUSTED_CERTIFICATE_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
]);

/**
 * Maps what MQTT.js (and the sockets under it) report to a {@linkcode BrokerError}: by the
 * error's `code`, which is a string for socket and TLS errors and a number for a CONNACK
 * refusal. Anything else is a lost connection, worth another try.
 */
export function toBrokerError(error: unknown, broker: BrokerOptions): BrokerError {
  if (error instanceof BrokerError) return error;
  const where = brokerLabel(broker);
  const code = (error as { code?: unknown })?.code;
  const detail = errorLine(error);
  const options = { cause: error };
  if (typeof code === "number") {
    const reason =
      (CREDENTIAL_CONNACK_CODES.has(code) ? credentialHint(code, broker) : undefined) ??
        CONNACK_REASONS[code] ?? `reason code ${code}`;
    const message = `broker ${where} refused the connection: ${reason}`;
    return new BrokerError("refused", message, !TRANSIENT_CONNACK_CODES.has(code), options);
  }
  const crossed = crossedTransportHint(broker);
  switch (code) {
    case NOT_MQTT:
      return new BrokerError("not-mqtt", `${where} ${detail}`, false, options);
    case "ECONNREFUSED":
      return new BrokerError(
        "unreachable",
        `cannot connect to ${where}: connection refused`,
        false,
        options,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return new BrokerError(
        "unreachable",
        `cannot connect to ${where}: unknown host`,
        false,
        options,
      );
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new BrokerError(
        "unreachable",
        `cannot connect to ${where}: ${detail}`,
        false,
        options,
      );
    case "ECONNRESET":
    case "EPIPE": {
      const message = `connection to ${where} was closed before the broker answered${crossed}`;
      return new BrokerError("lost", message, false, options);
    }
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return new BrokerError(
        "tls",
        `TLS: the certificate of ${where} is not valid for the name ${broker.host}`,
        true,
        options,
      );
  }
  if (typeof code === "string" && UNTRUSTED_CERTIFICATE_CODES.has(code)) {
    return new BrokerError(
      "tls",
      `TLS: ${where} presented a certificate we do not trust (${detail}); ` +
        "name the CA that signed it with --cafile",
      true,
      options,
    );
  }
  if (typeof code === "string" && /^(ERR_TLS|ERR_SSL|ERR_OSSL)/.test(code)) {
    return new BrokerError("tls", `TLS with ${where} failed: ${detail}`, true, options);
  }
  return new BrokerError("lost", `connection to ${where} failed: ${detail}`, false, options);
}

/**
 * For a connection the server closed before any CONNACK: which way round the transports are
 * likely crossed, as a hint to append.
 */
export function crossedTransportHint(broker: BrokerOptions): string {
  switch (broker.transport) {
    case "mqtt":
      return " (a TLS port? then add --tls)";
    case "mqtts":
      return " (a plain MQTT port? then drop --tls and --cafile)";
    case "ws":
    case "wss":
      return " (an MQTT-over-WebSocket port and path? a plain MQTT port takes mqtt://HOST:PORT)";
  }
}

/**
 * A refusal of our credentials, worded for what we sent: nothing, a user name alone (the
 * password variable unset, the likeliest slip), or both.
 */
function credentialHint(code: number, broker: BrokerOptions): string | undefined {
  const what = CONNACK_REASONS[code].replace(/ \(check .*\)$/, "");
  if (broker.username === undefined) {
    return `${what} (does the broker want a user name? --username, and the password in ` +
      "MQTT_PASSWORD)";
  }
  if (broker.password === undefined) {
    return `${what} for '${broker.username}': MQTT_PASSWORD is not set (export it with the ` +
      "password)";
  }
  return undefined;
}

/** What a connection needs beyond the broker itself. */
export interface ConnectOptions {
  clientId: string;
  keepaliveSeconds?: number;
  /** 4 (MQTT 3.1.1, the default) or 5. */
  protocolVersion?: 4 | 5;
  /** MQTT 5 CONNECT properties. */
  properties?: IClientOptions["properties"];
  /** How long MQTT.js waits for a CONNACK before it gives up on an attempt. */
  connectTimeoutMs?: number;
  /**
   * MQTT.js's cache of encoded packet numbers (default true). Building it costs ~16 ms on the
   * first packet: worth it for a long-running connection, not for one that sends four packets.
   */
  writeCache?: boolean;
  /**
   * The largest packet taken from the broker, fixed header included. A larger one closes the
   * connection as soon as its header arrives, before it is buffered (lib/mqtt_size_guard.ts);
   * over WebSocket, a message over twice this size too. Default: no limit of ours.
   */
  maxPacketBytes?: number;
}

/**
 * Starts connecting with MQTT.js. Never reconnects by itself (a caller that wants it calls
 * `client.reconnect()` on its own schedule) and never resubscribes by itself (the responder
 * subscribes on every `connect`, so that it learns of a refused subscription).
 */
export function openMqtt(broker: BrokerOptions, options: ConnectOptions): MqttClient {
  const opts = {
    protocol: broker.transport,
    host: broker.host,
    port: broker.port,
    path: broker.path,
    ca: broker.ca,
    username: broker.username,
    password: broker.password,
    clientId: options.clientId,
    keepalive: options.keepaliveSeconds ?? 60,
    protocolVersion: options.protocolVersion ?? 4,
    properties: options.properties,
    connectTimeout: options.connectTimeoutMs ?? 30_000,
    writeCache: options.writeCache ?? true,
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
    // The environment is not ours to read: a SOCKS proxy is not a thing these tools use.
    socksProxy: "",
  };
  // MQTT over TCP and TLS: our own sockets. MQTT.js's TLS builder takes any `socksProxy` but
  // undefined (ours is "", so that it never reads MQTTJS_SOCKS_PROXY) as a proxy URL to dial.
  const { host, port } = broker;
  const limit = options.maxPacketBytes;
  const guard = <S extends Duplex>(stream: S) =>
    limit === undefined ? stream : guardPacketSize(stream, limit);
  let client: MqttClient;
  if (broker.transport === "mqtt") {
    client = new MqttClient((c) => guard(expectConnack(c, createConnection({ host, port }))), opts);
  } else if (broker.transport === "mqtts") {
    const servername = isIP(host) === 0 ? host : undefined;
    client = new MqttClient(
      (c) =>
        guard(
          expectConnack(
            c,
            connectTls({ host, port, ca: broker.ca, servername, rejectUnauthorized: true }),
          ),
        ),
      opts,
    );
  } else {
    // MQTT.js's own WebSocket transport, which it loads only when used (~10 ms at start-up).
    // The ws library buffers a whole WebSocket message (up to 100 MiB by default) before
    // anything reads it: a message may hold more than one packet, and twice our largest is room
    // enough. After such an error, ws reads on until the closing handshake ends, taking in (and
    // throwing away) whatever the peer sends for up to 30 s: closeTimeout 0 hangs up at once.
    const wsOptions = limit === undefined ? {} : { maxPayload: 2 * limit, closeTimeout: 0 };
    client = mqtt.connect({ ...opts, wsOptions, manualConnect: true });
    if (limit !== undefined) {
      // connect() makes each connection's stream (reconnect() calls it too): the guard goes on
      // it before a byte can arrive.
      const connect = client.connect.bind(client);
      client.connect = () => {
        connect();
        guard(client.stream as unknown as Duplex);
        return client;
      };
    }
    client.connect();
  }
  // As mqtt.connect does: an "error" with no listener would throw; callers listen as they need.
  client.on("error", () => {});
  // MQTT packets are small and each one is awaited by someone: with Nagle's algorithm on, a
  // PUBLISH right after a PUBACK waits for the broker's delayed TCP ACK (~40 ms). Set on the
  // first socket here, and on each new one a reconnect makes.
  noDelay(client);
  client.on("connect", () => noDelay(client));
  return client;
}

/**
 * A broker's first packet is its CONNACK (MQTT 3.1.1 §3.2; in MQTT 5 an AUTH may come first,
 * but only for an authentication method, which we never ask for), so a first byte other than
 * 0x20 is some other server. This sees the bytes before MQTT.js's parser does (its listener is
 * added after the stream is built), and reports them as {@linkcode NOT_MQTT} instead of the
 * parser's complaint about them.
 */
function expectConnack<S extends Socket>(client: MqttClient, socket: S): S {
  socket.once("data", (chunk: Uint8Array) => {
    if (chunk[0] === 0x20) return;
    const error = new Error(`answered, but not as an MQTT broker${likelyServer(chunk)}`);
    client.emit("error", Object.assign(error, { code: NOT_MQTT }));
    socket.destroy();
  });
  return socket;
}

/** What kind of server sent `bytes` first, as a hint to append, or "". */
function likelyServer(bytes: Uint8Array): string {
  const start = new TextDecoder().decode(bytes.subarray(0, 8));
  if (start.startsWith("HTTP/")) return " (an HTTP server? check the host and port)";
  if (start.startsWith("SSH-")) return " (an SSH server? check the host and port)";
  // A TLS record (alert or handshake) of version 3.x: a TLS port spoken to in plain text.
  if ((bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03) {
    return " (a TLS port? then add --tls)";
  }
  return " (check the host and port)";
}

function noDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined;
  stream?.setNoDelay?.(true);
}

/**
 * Resolves at the client's next CONNACK; rejects with a {@linkcode BrokerError} at its first
 * error, or when the connection closes first.
 */
export function connected(client: MqttClient, broker: BrokerOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      client.off("connect", onConnect);
      client.off("error", onError);
      client.off("close", onClose);
    };
    const onConnect = () => (done(), resolve());
    const onError = (error: Error) => (done(), reject(toBrokerError(error, broker)));
    const onClose = () => {
      done();
      const message = `connection to ${brokerLabel(broker)} closed before the broker ` +
        `answered${crossedTransportHint(broker)}`;
      reject(new BrokerError("lost", message, false));
    };
    client.on("connect", onConnect);
    client.on("error", onError);
    client.on("close", onClose);
  });
}

/** The broker refused filters of a SUBSCRIBE: each with its SUBACK code (0x80 and above). */
export class SubscriptionRefusedError extends Error {
  override name = "SubscriptionRefusedError";
  /** The refused filters, and the broker's code for each. */
  constructor(
    readonly refused: readonly { topic: string; code: number }[],
    options?: ErrorOptions,
  ) {
    const what = refused.map(({ topic, code }) => `${topic} (${SUBACK_REASONS[code] ?? code})`);
    super(`the broker refused the subscription to ${what.join(", ")}`, options);
  }
}

// SUBACK codes that refuse a filter: 0x80 in MQTT 3.1.1 (§3.9.3), the MQTT 5 ones (§3.9.3).
const SUBACK_REASONS: Record<number, string> = {
  0x80: "unspecified error",
  0x83: "implementation specific error",
  0x87: "not authorized",
  0x8f: "topic filter invalid",
  0x91: "packet identifier in use",
  0x97: "quota exceeded",
  0x9e: "shared subscriptions not supported",
  0xa1: "subscription identifiers not supported",
  0xa2: "wildcard subscriptions not supported",
};

/**
 * Subscribes to `topics` at QoS 1, in one SUBSCRIBE, and resolves once the broker has granted
 * every one of them. A filter refused (any SUBACK code from 0x80 on) rejects with a
 * {@linkcode SubscriptionRefusedError} naming each; anything else (the connection went away)
 * rejects with MQTT.js's own error.
 */
export async function subscribeAll(client: MqttClient, topics: readonly string[]): Promise<void> {
  try {
    await client.subscribeAsync([...topics], { qos: 1 });
  } catch (error) {
    // MQTT.js rejects a refusal with the SUBACK packet attached, its codes in our order.
    const granted = (error as { packet?: { granted?: unknown } }).packet?.granted;
    if (!Array.isArray(granted)) throw error;
    const refused = topics
      .map((topic, i) => ({ topic, code: Number(granted[i]) }))
      .filter(({ code }) => code >= 0x80);
    if (refused.length === 0) throw error;
    throw new SubscriptionRefusedError(refused, { cause: error });
  }
}
