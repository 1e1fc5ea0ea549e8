/**
 * The broker options every command takes (`-h`/`--host`, `-p`/`--port`, `--url`, `--tls`,
 * `--cafile`, `--username`) and the lab's `--help` and `-v`, their help text, and how they become {@linkcode BrokerOptions}: the CA file is
 * read and the password taken from `MQTT_PASSWORD`, never from the command line, where `ps`
 * would show it to every user of the machine.
 *
 * @module
 */

import type { BrokerOptions, Transport } from "../lib/mqtt.ts";
import { errorLine } from "../lib/log.ts";
import { decodeUtf8 } from "../lib/utf8.ts";
import { UsageError } from "./args.ts";

/** The lab's port, the default of `--port`. */
export const DEFAULT_PORT = 1884;

/**
 * `parseArgs` options shared by the client and the responder. The lab's usage pattern fixes
 * `-h` as the broker's host: help has its long form only, so that a grader's
 * `-h HOST -p PORT` is never answered with the help text and exit 0.
 */
export const BROKER_OPTIONS = {
  help: { type: "boolean" },
  version: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  host: { type: "string", short: "h" },
  port: { type: "string", short: "p" },
  url: { type: "string" },
  tls: { type: "boolean" },
  cafile: { type: "string" },
  username: { type: "string" },
} as const;

/**
 * Help lines of the lab's own options, first in every `--help`: `--help`, `-v`, `-h`, `-p`.
 * Aligned as argparse aligns them.
 */
export const LAB_OPTIONS_HELP = `  --help                show this help message and exit
  -v, --verbose         debug lines with timings on stderr
  -h HOST, --host HOST  the broker's host name or address (default: localhost)
  -p PORT, --port PORT  the broker's port, 1-65535 (default: ${DEFAULT_PORT})`;

/** Help lines of the other broker options, after a command's own. */
export const MORE_BROKER_OPTIONS_HELP =
  `  --url URL             the broker as a URL instead of -h/-p/--tls; the port defaults
                        by scheme: mqtt://HOST[:PORT] (1883), mqtts://HOST[:PORT]
                        (8883), ws://HOST[:PORT]/PATH (80), wss://HOST[:PORT]/PATH (443)
  --tls                 MQTT over TLS (brokers usually listen on 8883)
  --cafile FILE         PEM file of the CA that signed the broker's certificate
                        (implies --tls)
  --username USER       user name for the broker; the password is read from the
                        MQTT_PASSWORD environment variable, never from the command line`;

/** The help line of `--version`, last in every `--help`. */
export const VERSION_HELP = "  --version             show the version and exit";

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
 * import { brokerFromArgs } from "./broker_options.ts";
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
    const password = readPassword();
    // Left out when unset: some brokers take a user name alone, and one that does not says
    // so in its CONNACK, which then names the variable (toBrokerError).
    if (password !== undefined) broker.password = password;
  }
  return broker;
}

function fromHostAndPort(args: BrokerArgs): BrokerOptions {
  const host = args.host ?? "localhost";
  const port = args.port === undefined ? DEFAULT_PORT : parsePort(args.port, "-p/--port");
  const tls = args.tls === true || args.cafile !== undefined;
  return { transport: tls ? "mqtts" : "mqtt", host: parseHost(host), port };
}

/**
 * A host name or address as `-h` takes it: an IPv6 address bare or in brackets. What people
 * paste from elsewhere (a URL, `host:port`) is refused with the option that says it.
 */
function parseHost(host: string): string {
  const refuse = (why: string) => {
    throw new UsageError(`argument -h/--host: ${why}`);
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) {
    refuse(`'${host}' is a URL: pass it with --url instead`);
  }
  // One colon is a port (IPv6 has at least two); so is a colon after a bracketed address.
  const withPort = /^\[([^\]]*)\]:([0-9]*)$/.exec(host) ?? /^([^:]*):([0-9]*)$/.exec(host);
  if (withPort) {
    const [, name, port] = withPort;
    refuse(
      `'${host}' holds a port: give it with -p (-h ${name} -p ${port || "PORT"}) ` +
        `or as --url mqtt://${host}`,
    );
  }
  if (host === "" || /[\s/@]/.test(host)) refuse(`invalid host '${host}'`);
  return host.replace(/^\[(.*)\]$/, "$1");
}

function fromUrl(text: string, args: BrokerArgs): BrokerOptions {
  for (
    const [name, given] of [["-h/--host", args.host], ["-p/--port", args.port], ["--tls", args.tls]]
  ) {
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
 * import { parsePort } from "./broker_options.ts";
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
