/**
 * The broker options every command takes (`--host`, `-p`, `--url`, `--tls`, `--cafile`,
 * `--username`), their help text, and how they become {@linkcode BrokerOptions}: the CA file is
 * read and the password taken from `MQTT_PASSWORD`, never from the command line, where `ps`
 * would show it to every user of the machine.
 *
 * @module
 */

import type { BrokerOptions, Transport } from "../broker.ts";
import { errorLine } from "../log.ts";
import { decodeUtf8 } from "../utf8.ts";
import { UsageError } from "./args.ts";

/** The lab's port, the default of `--port`. */
export const DEFAULT_PORT = 1884;

/** `parseArgs` options shared by the client and the responder. */
export const BROKER_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  host: { type: "string" },
  port: { type: "string", short: "p" },
  url: { type: "string" },
  tls: { type: "boolean" },
  cafile: { type: "string" },
  username: { type: "string" },
} as const;

/** Help lines for {@linkcode BROKER_OPTIONS}, aligned as argparse aligns them. */
export const BROKER_OPTIONS_HELP = `  -h, --help            show this help message and exit
  --version             show the version and exit
  -v, --verbose         debug lines with timings on stderr
  --host HOST           broker host name or address (default: localhost)
  -p PORT, --port PORT  broker port, 1-65535 (default: ${DEFAULT_PORT})
  --url URL             the broker as a URL instead of --host/--port/--tls:
                        mqtt://HOST[:PORT], mqtts://..., ws://HOST[:PORT]/PATH or
                        wss://... (WebSocket, e.g. wss://broker.example/mqtt)
  --tls                 MQTT over TLS (brokers usually listen on 8883)
  --cafile FILE         PEM file of the CA that signed the broker's certificate
                        (implies --tls)
  --username USER       user name for the broker; the password is read from the
                        MQTT_PASSWORD environment variable, never from the command line`;

/** The broker options as `parseArgs` returns them. */
export interface BrokerArgs {
  host?: string;
  port?: string;
  url?: string;
  tls?: boolean;
  cafile?: string;
  username?: string;
}

const DEFAULT_URL_PORTS: Record<Transport, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/**
 * Checks the broker options and reads what they point at. Throws {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brokerFromArgs } from "./broker_args.ts";
 * assert.deepEqual(brokerFromArgs({ host: "broker.lab", port: "8883", tls: true }), {
 *   transport: "mqtts",
 *   host: "broker.lab",
 *   port: 8883,
 * });
 * assert.equal(brokerFromArgs({ url: "wss://lab.example/mqtt" }).port, 443);
 * ```
 */
export function brokerFromArgs(args: BrokerArgs): BrokerOptions {
  const broker = args.url === undefined ? fromHostAndPort(args) : fromUrl(args.url, args);
  if (args.cafile !== undefined) {
    if (broker.transport === "mqtt" || broker.transport === "ws") {
      throw new UsageError(
        "argument --cafile: the URL is not a TLS one (use mqtts:// or wss://)",
      );
    }
    broker.ca = [readCaFile(args.cafile)];
  }
  if (args.username !== undefined) {
    broker.username = args.username;
    broker.password = readPassword();
  }
  return broker;
}

function fromHostAndPort(args: BrokerArgs): BrokerOptions {
  const host = args.host ?? "localhost";
  if (host === "" || /[\s/]/.test(host)) {
    throw new UsageError(`argument --host: invalid host '${host}'`);
  }
  const port = args.port === undefined ? DEFAULT_PORT : parsePort(args.port, "-p/--port");
  const tls = args.tls === true || args.cafile !== undefined;
  return { transport: tls ? "mqtts" : "mqtt", host: host.replace(/^\[(.*)\]$/, "$1"), port };
}

function fromUrl(text: string, args: BrokerArgs): BrokerOptions {
  for (const [name, given] of [["--host", args.host], ["--port", args.port], ["--tls", args.tls]]) {
    if (given !== undefined) {
      throw new UsageError(`argument --url: not allowed with ${name} (the URL says where)`);
    }
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new UsageError(`argument --url: invalid URL '${text}'`, { cause: error });
  }
  const transport = url.protocol.slice(0, -1);
  if (!isTransport(transport)) {
    throw new UsageError(
      `argument --url: unsupported scheme '${url.protocol}' (use mqtt, mqtts, ws or wss)`,
    );
  }
  if (url.hostname === "") throw new UsageError(`argument --url: no host in '${text}'`);
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(
      "argument --url: no credentials in the URL: use --username and MQTT_PASSWORD",
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new UsageError("argument --url: no query or fragment, please");
  }
  const isWebSocket = transport === "ws" || transport === "wss";
  if (!isWebSocket && url.pathname !== "" && url.pathname !== "/") {
    throw new UsageError(`argument --url: a path is only for ws:// and wss:// URLs`);
  }
  // The URL parser takes port 0, and keeps a default port only for ws and wss.
  const port = url.port === "" ? DEFAULT_URL_PORTS[transport] : parsePort(url.port, "--url");
  const broker: BrokerOptions = {
    transport,
    host: decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, "$1"),
    port,
  };
  if (isWebSocket) broker.path = url.pathname;
  return broker;
}

function isTransport(value: string): value is Transport {
  return value === "mqtt" || value === "mqtts" || value === "ws" || value === "wss";
}

/**
 * A port: a whole number 1-65535 in decimal; `option` names the option in the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePort } from "./broker_args.ts";
 * assert.equal(parsePort("8883", "-p/--port"), 8883);
 * assert.throws(() => parsePort("0x50", "-p/--port"), /invalid port/);
 * ```
 */
export function parsePort(text: string, option: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new UsageError(`argument ${option}: invalid port '${text}' (need an integer 1-65535)`);
  }
  return port;
}

/**
 * The CA file's text, which must hold a PEM certificate: TLS would ignore anything else (with
 * a warning of its own on stderr) and then fail with a misleading "certificate not trusted".
 */
function readCaFile(path: string): string {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (error) {
    throw new UsageError(`argument --cafile: cannot read '${path}': ${describeFsError(error)}`, {
      cause: error,
    });
  }
  const text = decodeUtf8(bytes);
  if (text === undefined) {
    throw new UsageError(`argument --cafile: cannot read '${path}': not UTF-8 text`);
  }
  if (!/^-----BEGIN CERTIFICATE-----\r?$/m.test(text)) {
    throw new UsageError(
      `argument --cafile: '${path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  }
  return text;
}

function readPassword(): string | undefined {
  try {
    return Deno.env.get("MQTT_PASSWORD");
  } catch {
    return undefined; // no permission to read it: as if it were unset
  }
}

/** A short reason for a failed file read, fit to follow "cannot read 'FILE': ". */
export function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (grant --allow-read for it)";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (error instanceof TypeError) return "not UTF-8 text"; // Deno.readTextFile's refusal
  return errorLine(error);
}
