/**
 * An MQTT broker inside this process (aedes), on a free loopback port: what `deno task demo`
 * runs on, so that it needs no mosquitto. It can also listen for MQTT over WebSocket (the tests
 * use that for `--url ws://`, which Debian's mosquitto is built without), it lets a caller
 * see, and rewrite, every message a client publishes (the demo's man in the middle), and it
 * can hold a client's subscriptions before it grants them (secure_mqtt_check's slow SUBACK).
 *
 * @module
 */

import { Aedes, type Client, type PublishPacket, type Subscription } from "aedes";
import { Buffer } from "node:buffer";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { WebSocketServer } from "ws";

/**
 * Sees each message a client publishes, before the broker routes it; what it returns replaces
 * the payload (an attacker's broker can do exactly that).
 */
export type Interceptor = (
  topic: string,
  payload: Uint8Array,
) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

/** What {@linkcode startEmbeddedBroker} can add. */
export interface EmbeddedBrokerOptions {
  /** Also serve MQTT over WebSocket, on a port of its own. */
  webSocket?: boolean;
  interceptor?: Interceptor;
  /**
   * Sees each filter of a client's SUBSCRIBE before the broker grants it; the SUBACK (and the
   * subscription itself) waits until the returned promise settles. `undefined`: no wait.
   */
  holdSubscribe?: (client: Client, filter: string) => Promise<void> | undefined;
}

/** A running embedded broker; `await using` stops it. */
export interface EmbeddedBroker extends AsyncDisposable {
  host: string;
  /** MQTT over TCP. */
  port: number;
  /** MQTT over WebSocket (any path), when asked for. */
  webSocketPort?: number;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

/** Starts the broker and resolves once it listens. */
export async function startEmbeddedBroker(
  options: EmbeddedBrokerOptions = {},
): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const { interceptor } = options;
  if (interceptor) {
    broker.authorizePublish = (client: Client | null, packet: PublishPacket, done) => {
      if (client === null) return done(null); // the broker's own ($SYS)
      Promise.resolve(interceptor(packet.topic, new Uint8Array(packet.payload as Buffer)))
        .then((replaced) => {
          if (replaced !== undefined) packet.payload = Buffer.from(replaced);
          done(null);
        }, (error) => done(error));
    };
  }
  const { holdSubscribe } = options;
  if (holdSubscribe) {
    broker.authorizeSubscribe = (client: Client | null, subscription: Subscription, done) => {
      const held = client === null ? undefined : holdSubscribe(client, subscription.topic);
      if (held === undefined) return done(null, subscription);
      held.then(() => done(null, subscription), (error) => done(error, null));
    };
  }
  const sockets = new Set<Socket>();
  // No Nagle on the broker's sockets: a small PUBACK waiting for its TCP ACK would hold back
  // the next PUBLISH to the same client until the peer's delayed ACK (~40 ms).
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    broker.handle(readsAllAtOnce(socket));
  });
  const port = await listen(server);
  let http: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  let webSocketPort: number | undefined;
  if (options.webSocket) {
    // aedes reads a WebSocket stream that arrives in many small frames (as MQTT.js writes a
    // CONNECT) only in part under Deno, so each WebSocket is bridged to a TCP connection of
    // the broker's own, which it reads like any client's.
    http = createHttpServer();
    wss = new WebSocketServer({ server: http });
    wss.on("connection", (ws) => {
      const tcp = connect(port, HOST);
      tcp.setNoDelay(true);
      ws.on("message", (data: Buffer) => tcp.write(data));
      ws.on("close", () => tcp.destroy());
      tcp.on("data", (data) => ws.send(data));
      tcp.on("close", () => ws.close());
      tcp.on("error", () => ws.terminate());
    });
    webSocketPort = await listen(http);
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const client of wss?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => wss ? wss.close(() => resolve()) : resolve());
    await new Promise<void>((resolve) => http ? http.close(() => resolve()) : resolve());
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { host: HOST, port, webSocketPort, stop, [Symbol.asyncDispose]: stop };
}

/**
 * aedes reads a connection once per "readable" event with `read()`, which in Node returns all
 * that is buffered. Under Deno (2.9) it returns the first buffered chunk only. When two 64 KiB
 * reads fill a socket's buffer to its high-water mark before aedes gets to it, the socket stops
 * reading from the network, aedes takes one chunk, the buffer stays at the mark (so the socket
 * does not start reading again), and no "readable" comes again: a packet of 200 KiB or more that
 * arrives in one burst stalls its connection for good. So `read()` on our sockets takes it all,
 * as Node's does.
 */
function readsAllAtOnce(socket: Socket): Socket {
  const read = socket.read.bind(socket);
  socket.read = (size?: number) =>
    read(size ?? (socket.readableLength > 0 ? socket.readableLength : undefined));
  return socket;
}

function listen(server: Server | HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("no port"));
      else resolve(address.port);
    });
  });
}
