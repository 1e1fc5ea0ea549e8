/**
 * cli/broker_options.ts: how the broker options become `BrokerOptions` (defaults, IPv6, the
 * `--url` forms and their default ports, the CA file read, the password taken from
 * `MQTT_PASSWORD` only with `--username`), and every way they are refused.
 */

import assert from "node:assert/strict";
import {
  BROKER_OPTIONS,
  brokerFromArgs,
  DEFAULT_PORT,
  describeFsError,
  parsePort,
} from "../../cli/broker_options.ts";
import { UsageError } from "../../cli/args.ts";

/** Runs `fn` with MQTT_PASSWORD set to `value` (or unset), then puts it back as it was. */
function withPassword<T>(value: string | undefined, fn: () => T): T {
  const before = Deno.env.get("MQTT_PASSWORD");
  const set = (v: string | undefined) =>
    v === undefined ? Deno.env.delete("MQTT_PASSWORD") : Deno.env.set("MQTT_PASSWORD", v);
  set(value);
  try {
    return fn();
  } finally {
    set(before);
  }
}

function usageError(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.ok(!error.message.includes("\n"), "one line");
    assert.match(error.message, reason);
    return true;
  });
}

Deno.test("parsePort: 1-65535 in plain decimal, nothing else", () => {
  assert.equal(parsePort("1", "-p/--port"), 1);
  assert.equal(parsePort("1884", "-p/--port"), 1884);
  assert.equal(parsePort("65535", "-p/--port"), 65535);
  for (const bad of ["0", "65536", "99999", "0x10", "1e3", " 80", "80 ", "", "-5", "1.0", "+80"]) {
    usageError(() => parsePort(bad, "-p/--port"), /^argument -p\/--port: invalid port/);
  }
  usageError(() => parsePort("0", "--url"), /^argument --url: invalid port '0' \(need an integer/);
});

Deno.test("brokerFromArgs: defaults, --host, --port, --tls, IPv6", () => {
  withPassword("not-used", () => {
    assert.deepEqual(brokerFromArgs({}), {
      transport: "mqtt",
      host: "localhost",
      port: DEFAULT_PORT,
    });
    assert.equal(DEFAULT_PORT, 1884);
    assert.deepEqual(brokerFromArgs({ host: "broker.lab", port: "8883", tls: true }), {
      transport: "mqtts",
      host: "broker.lab",
      port: 8883,
    });
    // An IPv6 address, bare or bracketed as in a URL, is the bare address.
    assert.equal(brokerFromArgs({ host: "::1" }).host, "::1");
    assert.equal(brokerFromArgs({ host: "[::1]" }).host, "::1");
  });
  for (const host of ["", "a b", "a/b", "\t"]) {
    usageError(() => brokerFromArgs({ host }), /^argument -h\/--host: invalid host/);
  }
  usageError(() => brokerFromArgs({ port: "0" }), /^argument -p\/--port: invalid port '0'/);
});

Deno.test("brokerFromArgs: --url forms and their default ports", () => {
  const cases: [string, object][] = [
    ["mqtt://broker.lab", { transport: "mqtt", host: "broker.lab", port: 1883 }],
    ["mqtt://broker.lab/", { transport: "mqtt", host: "broker.lab", port: 1883 }],
    ["mqtt://broker.lab:1884", { transport: "mqtt", host: "broker.lab", port: 1884 }],
    ["mqtts://broker.lab", { transport: "mqtts", host: "broker.lab", port: 8883 }],
    ["mqtts://10.0.0.1:8884", { transport: "mqtts", host: "10.0.0.1", port: 8884 }],
    ["mqtt://[::1]:1884", { transport: "mqtt", host: "::1", port: 1884 }],
    ["MQTT://broker.lab", { transport: "mqtt", host: "broker.lab", port: 1883 }],
    ["ws://broker.lab", { transport: "ws", host: "broker.lab", port: 80, path: "/" }],
    ["ws://broker.lab:80/mqtt", { transport: "ws", host: "broker.lab", port: 80, path: "/mqtt" }],
    ["ws://broker.lab:9001/mqtt", {
      transport: "ws",
      host: "broker.lab",
      port: 9001,
      path: "/mqtt",
    }],
    ["wss://broker.lab/mqtt", { transport: "wss", host: "broker.lab", port: 443, path: "/mqtt" }],
    ["wss://[::1]:8443/a/b", { transport: "wss", host: "::1", port: 8443, path: "/a/b" }],
  ];
  for (const [url, expected] of cases) {
    assert.deepEqual(brokerFromArgs({ url }), expected, url);
  }
});

Deno.test("brokerFromArgs: --url refusals", () => {
  const cases: [object, RegExp][] = [
    [{ url: "mqtt://h", host: "h" }, /not allowed with -h\/--host/],
    [{ url: "mqtt://h", port: "1884" }, /not allowed with -p\/--port/],
    [{ url: "mqtts://h", tls: true }, /not allowed with --tls/],
    [{ url: "mqtt://h", tls: false }, /not allowed with --tls/],
    [{ url: "http://h" }, /unsupported scheme 'http:' \(use mqtt, mqtts, ws or wss\)/],
    [{ url: "tls://h:8883" }, /unsupported scheme 'tls:'/],
    [{ url: "h:1884" }, /unsupported scheme 'h:'/],
    [{ url: "broker.lab" }, /invalid URL 'broker.lab'/],
    [{ url: "" }, /invalid URL/],
    [{ url: "mqtt://" }, /no host in 'mqtt:\/\/'/],
    [{ url: "mqtt://u:secret@h" }, /no credentials in the URL: use --username and MQTT_PASSWORD/],
    [{ url: "wss://u@h/mqtt" }, /no credentials in the URL/],
    [{ url: "mqtt://h/x" }, /a path is only for ws:\/\/ and wss:\/\/ URLs/],
    [{ url: "ws://h/mqtt?token=1" }, /no query or fragment/],
    [{ url: "ws://h/mqtt#top" }, /no query or fragment/],
    [{ url: "mqtt://h:0" }, /--url: invalid port '0'/],
    [{ url: "mqtt://h:65536" }, /--url: invalid URL/],
    [{ url: "mqtt://h", cafile: "/dev/null" }, /--cafile: the URL is not a TLS one/],
    [{ url: "ws://h/mqtt", cafile: "/dev/null" }, /--cafile: the URL is not a TLS one/],
  ];
  for (const [args, reason] of cases) {
    usageError(() => brokerFromArgs(args), reason);
  }
  // The password in a refused URL is not repeated back.
  try {
    brokerFromArgs({ url: "mqtt://u:secret@h" });
  } catch (error) {
    assert.ok(!(error as Error).message.includes("secret"));
  }
});

Deno.test("brokerFromArgs: --cafile is read, implies TLS; an unreadable one is a usage error", () => {
  const dir = Deno.makeTempDirSync({ prefix: "broker-args-" });
  try {
    const pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    Deno.writeTextFileSync(`${dir}/ca.pem`, pem);
    assert.deepEqual(brokerFromArgs({ cafile: `${dir}/ca.pem`, host: "b", port: "8883" }), {
      transport: "mqtts",
      host: "b",
      port: 8883,
      ca: [pem],
    });
    assert.deepEqual(brokerFromArgs({ cafile: `${dir}/ca.pem`, url: "wss://b/mqtt" }).ca, [pem]);
    assert.deepEqual(brokerFromArgs({ cafile: `${dir}/ca.pem`, url: "mqtts://b" }).ca, [pem]);
    usageError(
      () => brokerFromArgs({ cafile: `${dir}/missing.pem` }),
      /^argument --cafile: cannot read '.*missing\.pem': no such file$/,
    );
    usageError(() => brokerFromArgs({ cafile: dir }), /cannot read '.*': is a directory$/);
    Deno.writeFileSync(`${dir}/binary.der`, Uint8Array.of(0x30, 0x82, 0xff, 0xfe, 0x00));
    usageError(
      () => brokerFromArgs({ cafile: `${dir}/binary.der` }),
      /cannot read '.*binary\.der': not UTF-8 text$/,
    );
    // TLS would skip a file without a certificate in it, and then blame the broker's.
    for (const text of ["", "hello\n", "-----BEGIN PRIVATE KEY-----\nAAAA\n"]) {
      Deno.writeTextFileSync(`${dir}/not-a-cert.pem`, text);
      usageError(
        () => brokerFromArgs({ cafile: `${dir}/not-a-cert.pem` }),
        /^argument --cafile: '.*not-a-cert\.pem' holds no PEM certificate/,
      );
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("brokerFromArgs: MQTT_PASSWORD is read only with --username", () => {
  withPassword("s3cret pass", () => {
    assert.equal("password" in brokerFromArgs({}), false);
    assert.equal("username" in brokerFromArgs({ url: "mqtt://h" }), false);
    const broker = brokerFromArgs({ username: "lab-user" });
    assert.equal(broker.username, "lab-user");
    assert.equal(broker.password, "s3cret pass");
  });
  withPassword(undefined, () => {
    const broker = brokerFromArgs({ username: "lab-user" });
    assert.equal(broker.username, "lab-user");
    assert.equal(broker.password, undefined);
  });
});

Deno.test("BROKER_OPTIONS: the options every command shares", () => {
  assert.deepEqual(Object.keys(BROKER_OPTIONS).sort(), [
    "cafile",
    "help",
    "host",
    "port",
    "tls",
    "url",
    "username",
    "verbose",
    "version",
  ]);
  assert.equal("password" in BROKER_OPTIONS, false, "never a password on the command line");
});

Deno.test("describeFsError: a short reason per kind of failure", () => {
  assert.equal(describeFsError(new Deno.errors.NotFound("x")), "no such file");
  assert.equal(describeFsError(new Deno.errors.PermissionDenied("x")), "permission denied");
  assert.match(describeFsError(new Deno.errors.NotCapable("x")), /--allow-read/);
  assert.equal(describeFsError(new Deno.errors.IsADirectory("x")), "is a directory");
  assert.equal(describeFsError(new TypeError("bad utf-8")), "not UTF-8 text");
  assert.equal(describeFsError(new Error("first\nsecond")), "first");
});
