/**
 * Where the broker is and how we reach it with MQTT.js: the connection options both the client
 * and the responder use, and one-line errors for everything that can go wrong on the way
 * (refused, unknown host, TLS, CONNACK refusals), classified by code, never by message text.
 *
 * @module
 */

import { errorLine } from "./log.ts";
import { guardedTcpConnection, guardPacketSize } from "./mqtt_size_guard.ts";
import mqtt, { type IClientOptions, type IConnackPacket, MqttClient, type Packet } from "mqtt";
import { createConnection, isIP } from "node:net";
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
  129: "malformed packet",
  130: "protocol error",
  131: "implementation specific error",
  132: "unsupported protocol version",
  133: "client identifier rejected",
  134: "bad user name or password (check --username and MQTT_PASSWORD)",
  135: "not authorized (check --username and MQTT_PASSWORD)",
  136: "server unavailable",
  137: "server busy",
  138: "banned",
  140: "bad authentication method",
  144: "topic name invalid",
  149: "packet too large",
  151: "quota exceeded",
  153: "payload format invalid",
  154: "retain not supported",
  155: "QoS not supported",
  156: "use another server",
  157: "server moved",
  159: "connection rate exceeded",
};
const TRANSIENT_CONNACK_CODES = new Set([3, 136, 137, 151, 159]);
// "Bad user name or password" and "not authorized", in both versions.
const CREDENTIAL_CONNACK_CODES = new Set([4, 5, 134, 135]);

// DISCONNECT reason codes a broker may send (MQTT 5 §3.14.2.1).
const DISCONNECT_REASONS: Record<number, string> = {
  0x00: "normal disconnection",
  0x80: "unspecified error",
  0x81: "malformed packet",
  0x82: "protocol error",
  0x83: "implementation specific error",
  0x87: "not authorized",
  0x89: "server busy",
  0x8b: "server shutting down",
  0x8d: "keep alive timeout",
  0x8e: "session taken over",
  0x8f: "topic filter invalid",
  0x90: "topic name invalid",
  0x93: "receive maximum exceeded",
  0x94: "topic alias invalid",
  0x95: "packet too large",
  0x96: "message rate too high",
  0x97: "quota exceeded",
  0x98: "administrative action",
  0x99: "payload format invalid",
  0x9a: "retain not supported",
  0x9b: "QoS not supported",
  0x9c: "use another server",
  0x9d: "server moved",
  0x9e: "shared subscriptions not supported",
  0x9f: "connection rate exceeded",
  0xa0: "maximum connect time",
  0xa1: "subscription identifiers not supported",
  0xa2: "wildcard subscriptions not supported",
};

/**
 * The reason of an MQTT 5 DISCONNECT from the broker by name, with its code in hex.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { disconnectReason } from "./mqtt.ts";
 * assert.equal(disconnectReason(0x8b), "server shutting down (0x8b)");
 * assert.equal(disconnectReason(0x42), "reason code 0x42");
 * ```
 */
export function disconnectReason(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  const name = DISCONNECT_REASONS[code];
  return name === undefined ? `reason code ${hex}` : `${name} (${hex})`;
}

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
 * error's `code`, which is a string for socket and TLS errors and a number for MQTT reason
 * codes. A numeric code is a CONNACK refusal only when it is the code of the CONNACK that came
 * on this connection, `connack` (MQTT.js gives its own protocol errors numeric codes too: 130 for
 * a second CONNACK or an AUTH, 148 for a topic alias); any other is a lost connection, as is
 * anything else not named here: worth another try.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toBrokerError } from "./mqtt.ts";
 * const broker = { transport: "mqtt" as const, host: "lab", port: 1884, username: "u" };
 * const error = Object.assign(new Error("Connection refused: Server unavailable"), { code: 3 });
 * const refused = toBrokerError(error, broker, 3);
 * assert.deepEqual([refused.kind, refused.permanent], ["refused", false]);
 * const duplicate = Object.assign(new Error("Protocol error: duplicate CONNACK"), { code: 130 });
 * assert.equal(toBrokerError(duplicate, broker, 0).kind, "lost");
 * ```
 */
export function toBrokerError(
  error: unknown,
  broker: BrokerOptions,
  connack?: number,
): BrokerError {
  if (error instanceof BrokerError) return error;
  const where = brokerLabel(broker);
  const code = (error as { code?: unknown })?.code;
  const detail = errorLine(error);
  const options = { cause: error };
  if (typeof code === "number" && code !== 0 && code === connack) {
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
   * The largest packet taken from the broker whole, fixed header included, checked before it
   * is buffered (lib/mqtt_size_guard.ts): a larger PUBLISH arrives with its payload replaced by
   * a marker (`skippedPayloadBytes` reads it), any other larger packet closes the connection;
   * over WebSocket, a message over twice this size closes it too. Default: no limit of ours.
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
  const guard = (stream: Duplex): Duplex =>
    limit === undefined ? stream : guardPacketSize(stream, limit, opts.protocolVersion);
  let client: MqttClient;
  if (broker.transport === "mqtt") {
    // Guarded, the socket reads into a buffer of its own: what the guard skips costs nothing.
    const connect = limit === undefined
      ? () => createConnection({ host, port })
      : () => guardedTcpConnection({ host, port }, limit, opts.protocolVersion);
    client = new MqttClient((c) => expectConnack(c, connect()), opts);
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
      // connect() (and so reconnect()) builds each connection's stream with this: the guard
      // goes between it and MQTT.js before a byte can arrive.
      const builds = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
      const build = builds.streamBuilder;
      builds.streamBuilder = (c) => guard(build(c));
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
function expectConnack<S extends Duplex>(client: MqttClient, socket: S): S {
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
    let connack: number | undefined;
    const done = () => {
      client.off("packetreceive", onPacket);
      client.off("connect", onConnect);
      client.off("error", onError);
      client.off("close", onClose);
    };
    const onPacket = (packet: Packet) => {
      if (packet.cmd === "connack") connack ??= connackCode(packet);
    };
    const onConnect = () => (done(), resolve());
    const onError = (error: Error) => (done(), reject(toBrokerError(error, broker, connack)));
    const onClose = () => {
      done();
      const message = `connection to ${brokerLabel(broker)} closed before the broker ` +
        `answered${crossedTransportHint(broker)}`;
      reject(new BrokerError("lost", message, false));
    };
    client.on("packetreceive", onPacket);
    client.on("connect", onConnect);
    client.on("error", onError);
    client.on("close", onClose);
  });
}

/** The return code (MQTT 3.1.1) or reason code (MQTT 5) of a CONNACK: 0 accepts. */
export function connackCode(packet: IConnackPacket): number {
  return packet.reasonCode ?? packet.returnCode ?? 0;
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
