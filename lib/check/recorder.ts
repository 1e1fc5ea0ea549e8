/**
 * The checker's broker: the embedded aedes broker behind a recording relay. The program under
 * test connects to the relay, which passes every byte on at once and parses a copy of both
 * directions with mqtt-packet (the parser MQTT.js and aedes use), so the checker knows what was
 * on the wire and in which order: the CONNECT's client ID, each SUBSCRIBE's and PUBLISH's QoS
 * and retain flag, and whether a PUBLISH left before the SUBACK it should have waited for.
 *
 * The relay is needed because aedes reads a client's next packets only once it has handled the
 * previous ones: a PUBLISH sent before the SUBACK would look, from inside aedes, as if it came
 * after. The checker's own MQTT clients connect to the broker directly and are not recorded.
 *
 * @module
 */

import mqttPacket from "mqtt-packet";
import { connect, createServer, type Server, type Socket } from "node:net";
import { type EmbeddedBroker, startEmbeddedBroker } from "../embedded_broker.ts";

/** One MQTT packet seen on a recorded connection. */
export interface WirePacket {
  /** Its place among every packet recorded, from 0. */
  seq: number;
  /** `performance.now()` when the relay saw it. */
  at: number;
  /** Index of its connection in {@linkcode RecordingBroker.connections}. */
  connection: number;
  /** `up`: from the program to the broker; `down`: from the broker to the program. */
  direction: "up" | "down";
  cmd: string;
  qos?: number;
  retain?: boolean;
  topic?: string;
  payloadBytes?: number;
  messageId?: number;
  /** CONNECT only. */
  clientId?: string;
  protocolVersion?: number;
  /** SUBSCRIBE only: the filters and the QoS asked for each. */
  subscriptions?: { topic: string; qos: number }[];
  /** SUBACK only: the QoS granted to each filter (128: refused). */
  granted?: number[];
}

/** One connection the program under test made. */
export interface WireConnection {
  index: number;
  /** The address the program connected to (which listener). */
  localAddress: string;
  localPort: number;
  openedAt: number;
  closedAt?: number;
  /** Packets not recorded because the connection passed the recording cap (a flood). */
  dropped: number;
  /** Why the relay's parser gave up on this connection's bytes, if it did. */
  malformed?: string;
}

/** Packets kept per connection; a program that floods the broker is relayed, not recorded. */
const MAX_PACKETS_PER_CONNECTION = 5000;
const HOST = "127.0.0.1";
/** Where `-h HOST` is tested: a loopback address that a default of "localhost" never reaches. */
const ALTERNATE_HOST = "127.0.0.2";

interface Waiter {
  test(packet: WirePacket): boolean;
  resolve(packet: WirePacket): void;
}

/** The embedded broker with its recording relay; `await using` stops both. */
export class RecordingBroker implements AsyncDisposable {
  /** Where the program under test connects. */
  readonly host = HOST;
  readonly port: number;
  /**
   * A second recorded listener on another loopback address, for telling `-h HOST` from a
   * default host; `undefined` where the platform has no such address (macOS, by default).
   */
  readonly alternate: { host: string; port: number } | undefined;
  /** The broker itself, unrecorded: where the checker's own clients connect. */
  readonly direct: { host: string; port: number };
  /** While above 0, the recorded programs' subscriptions wait this long for their SUBACK. */
  subackDelayMs = 0;

  readonly #broker: EmbeddedBroker;
  readonly #servers: Server[];
  readonly #sockets = new Set<Socket>();
  readonly #relayPorts: Set<number>;
  readonly #packets: WirePacket[] = [];
  readonly #connections: WireConnection[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #counts = new Map<number, number>();

  private constructor(
    broker: EmbeddedBroker,
    servers: Server[],
    relayPorts: Set<number>,
    port: number,
    alternate: { host: string; port: number } | undefined,
  ) {
    this.#broker = broker;
    this.#servers = servers;
    this.#relayPorts = relayPorts;
    this.port = port;
    this.alternate = alternate;
    this.direct = { host: broker.host, port: broker.port };
  }

  /** Starts the broker and its relay on free loopback ports. */
  static async start(): Promise<RecordingBroker> {
    const relayPorts = new Set<number>();
    let self: RecordingBroker | undefined;
    const broker = await startEmbeddedBroker({
      holdSubscribe: (client) => {
        const port = (client as unknown as { conn?: { remotePort?: number } }).conn?.remotePort;
        const delay = self?.subackDelayMs ?? 0;
        if (delay <= 0 || port === undefined || !relayPorts.has(port)) return undefined;
        return new Promise((resolve) => setTimeout(resolve, delay));
      },
    });
    const servers: Server[] = [];
    try {
      const accept = (socket: Socket) => self!.#relay(socket);
      const main = createServer(accept);
      servers.push(main);
      const port = await listen(main, HOST);
      let alternate: { host: string; port: number } | undefined;
      const second = createServer(accept);
      try {
        alternate = { host: ALTERNATE_HOST, port: await listen(second, ALTERNATE_HOST) };
        servers.push(second);
      } catch {
        alternate = undefined; // no 127.0.0.2 here
      }
      self = new RecordingBroker(broker, servers, relayPorts, port, alternate);
      return self;
    } catch (error) {
      for (const server of servers) server.close();
      await broker.stop();
      throw error;
    }
  }

  /** The `seq` the next recorded packet gets: a mark to read {@linkcode packets} from. */
  mark(): number {
    return this.#packets.length;
  }

  /** The packets recorded from `from` (a {@linkcode mark}) on. */
  packets(from = 0): readonly WirePacket[] {
    return this.#packets.slice(from);
  }

  /** The connections recorded from index `from` on. */
  connections(from = 0): readonly WireConnection[] {
    return this.#connections.slice(from);
  }

  /** How many connections have been recorded so far: a mark for {@linkcode connections}. */
  connectionMark(): number {
    return this.#connections.length;
  }

  /**
   * The first packet from `from` on that passes `test`: one already recorded, or the next to
   * arrive. Never rejects; give it a `signal` to stop waiting (it then resolves `undefined`).
   */
  waitFor(
    test: (packet: WirePacket) => boolean,
    options: { from?: number; signal?: AbortSignal } = {},
  ): Promise<WirePacket | undefined> {
    const seen = this.#packets.slice(options.from ?? 0).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        test,
        resolve: (packet) => {
          this.#waiters.delete(waiter);
          options.signal?.removeEventListener("abort", onAbort);
          resolve(packet);
        },
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        resolve(undefined);
      };
      if (options.signal?.aborted) return resolve(undefined);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Closes the relay's connections and listeners, then the broker. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(
      this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    await this.#broker.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #relay(downstream: Socket): void {
    const connection: WireConnection = {
      index: this.#connections.length,
      localAddress: downstream.localAddress ?? "",
      localPort: downstream.localPort ?? 0,
      openedAt: performance.now(),
      dropped: 0,
    };
    this.#connections.push(connection);
    const upstream = connect(this.direct.port, this.direct.host);
    for (const socket of [downstream, upstream]) {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.on("error", () => {
        downstream.destroy();
        upstream.destroy();
      });
      socket.on("close", () => {
        this.#sockets.delete(socket);
        connection.closedAt ??= performance.now();
        downstream.destroy();
        upstream.destroy();
      });
    }
    upstream.on("connect", () => {
      if (upstream.localPort !== undefined) this.#relayPorts.add(upstream.localPort);
    });
    upstream.on("close", () => {
      if (upstream.localPort !== undefined) this.#relayPorts.delete(upstream.localPort);
    });
    const record = (direction: "up" | "down") => {
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let failed = false;
      parser.on("packet", (packet) => this.#record(connection, direction, packet));
      parser.on("error", (error: unknown) => {
        failed = true;
        connection.malformed ??= `${direction}: ${error instanceof Error ? error.message : error}`;
      });
      return (chunk: Uint8Array) => {
        if (!failed) parser.parse(chunk as Parameters<typeof parser.parse>[0]);
      };
    };
    downstream.on("data", record("up"));
    upstream.on("data", record("down"));
    // pipe(): the relay reads no faster than the other side takes, whatever the program sends.
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  }

  #record(connection: WireConnection, direction: "up" | "down", raw: unknown): void {
    const recorded = this.#counts.get(connection.index) ?? 0;
    if (recorded >= MAX_PACKETS_PER_CONNECTION) {
      connection.dropped++;
      return;
    }
    this.#counts.set(connection.index, recorded + 1);
    const p = raw as Record<string, unknown>;
    const packet: WirePacket = {
      seq: this.#packets.length,
      at: performance.now(),
      connection: connection.index,
      direction,
      cmd: String(p.cmd),
    };
    if (typeof p.messageId === "number") packet.messageId = p.messageId;
    switch (p.cmd) {
      case "connect":
        packet.clientId = String(p.clientId ?? "");
        packet.protocolVersion = Number(p.protocolVersion);
        break;
      case "subscribe":
        packet.qos = Number(p.qos);
        packet.subscriptions = ((p.subscriptions ?? []) as { topic: string; qos: number }[])
          .map(({ topic, qos }) => ({ topic, qos }));
        break;
      case "suback":
        packet.granted = ((p.granted ?? []) as (number | { qos: number })[])
          .map((g) => typeof g === "number" ? g : g.qos);
        break;
      case "publish":
        packet.topic = String(p.topic);
        packet.qos = Number(p.qos);
        packet.retain = p.retain === true;
        packet.payloadBytes = (p.payload as { length?: number } | undefined)?.length ?? 0;
        break;
    }
    this.#packets.push(packet);
    for (const waiter of [...this.#waiters]) {
      if (waiter.test(packet)) waiter.resolve(packet);
    }
  }
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("no port"));
      else resolve(address.port);
    });
  });
}

/**
 * Whether MQTT topic filter `filter` matches topic name `topic` (`+` one level, `#` the rest).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topicMatches } from "./recorder.ts";
 * assert.ok(topicMatches("+/+/request", "alice/uppercase/request"));
 * assert.ok(topicMatches("alice/#", "alice/key-exchange/response"));
 * assert.ok(!topicMatches("+/key-exchange/request", "alice/uppercase/request"));
 * ```
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return i < t.length || (i === t.length && i > 0);
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * The filters whose SUBACK (not a refusal) was recorded before packet `seq`: what a program
 * was subscribed to at that point, as far as it could know.
 */
export function acknowledgedBefore(packets: readonly WirePacket[], seq: number): string[] {
  const filters: string[] = [];
  for (const ack of packets) {
    if (ack.seq >= seq || ack.cmd !== "suback" || ack.direction !== "down") continue;
    const sub = packets.findLast((p) =>
      p.cmd === "subscribe" && p.direction === "up" && p.connection === ack.connection &&
      p.messageId === ack.messageId && p.seq < ack.seq
    );
    sub?.subscriptions?.forEach((s, i) => {
      if ((ack.granted?.[i] ?? 128) !== 128) filters.push(s.topic);
    });
  }
  return filters;
}
