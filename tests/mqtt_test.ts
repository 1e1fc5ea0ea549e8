/**
 * lib/mqtt.ts: how brokers are named in messages, how every connection failure becomes a
 * one-line `BrokerError` (by the error's code, never its text), and `openMqtt` + `connected`
 * against a real mosquitto: a good connection, a refused port, a TLS listener reached without
 * TLS, TLS with the wrong CA, and a wrong password.
 */

import assert from "node:assert/strict";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  connected,
  NOT_MQTT,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
  toBrokerError,
} from "../lib/mqtt.ts";
import { freePort, mosquittoSkipReason, startMosquitto } from "../support/mosquitto.ts";
import { makeTlsFixture, opensslSkipReason } from "../support/tls.ts";
import type { MqttClient } from "mqtt";
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { Aedes } from "aedes";

const TCP: BrokerOptions = { transport: "mqtt", host: "broker.lab", port: 1884 };
const TLS: BrokerOptions = { transport: "mqtts", host: "broker.lab", port: 8883 };
const USER = "lab-user";
const PASSWORD = "c0rrect horse $battery";

/** An error as sockets and MQTT.js make them: a message and a code. */
function coded(code: string | number, message = `failure ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

function assertOneLine(error: BrokerError): void {
  assert.ok(!error.message.includes("\n"), `one line: ${JSON.stringify(error.message)}`);
}

Deno.test("brokerLabel: host:port, IPv6 in brackets, the URL of a WebSocket broker", () => {
  assert.equal(brokerLabel(TCP), "broker.lab:1884");
  assert.equal(brokerLabel({ transport: "mqtt", host: "127.0.0.1", port: 1 }), "127.0.0.1:1");
  assert.equal(brokerLabel(TLS), "broker.lab:8883");
  assert.equal(brokerLabel({ transport: "mqtt", host: "::1", port: 1884 }), "[::1]:1884");
  assert.equal(
    brokerLabel({ transport: "mqtts", host: "fe80::1%eth0", port: 8883 }),
    "[fe80::1%eth0]:8883",
  );
  assert.equal(
    brokerLabel({ transport: "ws", host: "127.0.0.1", port: 9001, path: "/mqtt" }),
    "ws://127.0.0.1:9001/mqtt",
  );
  assert.equal(brokerLabel({ transport: "ws", host: "h", port: 80 }), "ws://h:80");
  assert.equal(
    brokerLabel({ transport: "wss", host: "::1", port: 443, path: "/" }),
    "wss://[::1]:443/",
  );
});

Deno.test("brokerLabel: never shows credentials", () => {
  const label = brokerLabel({ ...TCP, username: USER, password: PASSWORD });
  assert.ok(!label.includes(PASSWORD) && !label.includes(USER), label);
});

Deno.test("toBrokerError: unreachable brokers", () => {
  const refused = toBrokerError(coded("ECONNREFUSED"), TCP);
  assert.equal(refused.name, "BrokerError");
  assert.deepEqual([refused.kind, refused.permanent], ["unreachable", false]);
  assert.equal(refused.message, "cannot connect to broker.lab:1884: connection refused");
  for (const code of ["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME"]) {
    const unknown = toBrokerError(coded(code), TCP);
    assert.deepEqual([unknown.kind, unknown.permanent], ["unreachable", false]);
    assert.equal(unknown.message, "cannot connect to broker.lab:1884: unknown host");
  }
  for (const code of ["ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]) {
    const e = toBrokerError(coded(code, `${code} happened\nmore detail`), TCP);
    assert.deepEqual([e.kind, e.permanent], ["unreachable", false]);
    assert.equal(e.message, `cannot connect to broker.lab:1884: ${code} happened`);
  }
  const v6 = toBrokerError(coded("ECONNREFUSED"), { transport: "mqtt", host: "::1", port: 1 });
  assert.equal(v6.message, "cannot connect to [::1]:1: connection refused");
});

Deno.test("toBrokerError: a connection closed before the broker answered hints at TLS", () => {
  for (const code of ["ECONNRESET", "EPIPE"]) {
    const plain = toBrokerError(coded(code), TCP);
    assert.deepEqual([plain.kind, plain.permanent], ["lost", false]);
    assert.match(plain.message, /^connection to broker\.lab:1884 was closed .*then add --tls\)$/);
    const tls = toBrokerError(coded(code), TLS);
    assert.match(tls.message, /\(a plain MQTT port\? then drop --tls and --cafile\)$/);
    const ws = toBrokerError(coded(code), { transport: "ws", host: "h", port: 80, path: "/" });
    assert.match(ws.message, /\(an MQTT-over-WebSocket port and path\? .* mqtt:\/\/HOST:PORT\)$/);
  }
});

Deno.test("toBrokerError: TLS failures are permanent", () => {
  for (
    const code of [
      "SELF_SIGNED_CERT_IN_CHAIN",
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "CERT_HAS_EXPIRED",
      "CERT_NOT_YET_VALID",
    ]
  ) {
    const e = toBrokerError(coded(code, "self-signed certificate in certificate chain"), TLS);
    assert.deepEqual([e.kind, e.permanent], ["tls", true], code);
    assert.equal(
      e.message,
      "TLS: broker.lab:8883 presented a certificate we do not trust (self-signed certificate " +
        "in certificate chain); name the CA that signed it with --cafile",
    );
  }
  const name = toBrokerError(coded("ERR_TLS_CERT_ALTNAME_INVALID"), TLS);
  assert.deepEqual([name.kind, name.permanent], ["tls", true]);
  assert.equal(
    name.message,
    "TLS: the certificate of broker.lab:8883 is not valid for the name broker.lab",
  );
  for (const code of ["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_TLS_HANDSHAKE_TIMEOUT", "ERR_OSSL_X"]) {
    const e = toBrokerError(coded(code, "handshake went wrong\nat somewhere"), TLS);
    assert.deepEqual([e.kind, e.permanent], ["tls", true], code);
    assert.equal(e.message, "TLS with broker.lab:8883 failed: handshake went wrong");
  }
});

Deno.test("toBrokerError: refused credentials are worded for what was sent", () => {
  const cases: [Partial<BrokerOptions>, RegExp][] = [
    [
      { username: "alice", password: "pw" },
      /: not authorized \(check --username and MQTT_PASSWORD\)$/,
    ],
    [{ username: "alice" }, /: not authorized for 'alice': MQTT_PASSWORD is not set \(export it/],
    [
      {},
      /: not authorized \(does the broker want a user name\? --username, and the password in MQTT_PASSWORD\)$/,
    ],
  ];
  for (const [credentials, reason] of cases) {
    for (const code of [5, 135]) {
      const e = toBrokerError(coded(code), { ...TCP, ...credentials });
      assert.deepEqual([e.kind, e.permanent], ["refused", true]);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes("pw"), "never the password");
    }
  }
  const bad = toBrokerError(coded(4), { ...TCP, username: "alice" });
  assert.match(bad.message, /: bad user name or password for 'alice': MQTT_PASSWORD is not set/);
});

Deno.test("toBrokerError: a server that is no MQTT broker is named as such", () => {
  const e = toBrokerError(
    coded(
      NOT_MQTT,
      "answered, but not as an MQTT broker (an HTTP server? check the host and port)",
    ),
    TCP,
  );
  assert.equal(e.kind, "not-mqtt");
  assert.equal(
    e.message,
    "broker.lab:1884 answered, but not as an MQTT broker (an HTTP server? check the host and port)",
  );
});

Deno.test("toBrokerError: CONNACK refusals, permanent or worth another try", () => {
  const permanent: [number, RegExp][] = [
    [4, /bad user name or password \(does the broker want a user name\?/],
    [5, /not authorized \(does the broker want a user name\?/],
    [134, /bad user name or password/],
    [135, /not authorized/],
    [1, /unsupported protocol version$/],
    [2, /client identifier rejected$/],
    [138, /banned$/],
  ];
  for (const [code, reason] of permanent) {
    const e = toBrokerError(coded(code, "Connection refused: Not authorized"), TCP);
    assert.deepEqual([e.kind, e.permanent], ["refused", true], String(code));
    assert.match(e.message, /^broker broker\.lab:1884 refused the connection: /);
    assert.match(e.message, reason);
  }
  const transient: [number, RegExp][] = [
    [3, /server unavailable$/],
    [136, /server unavailable$/],
    [137, /server busy$/],
    [151, /quota exceeded$/],
    [159, /connection rate exceeded$/],
  ];
  for (const [code, reason] of transient) {
    const e = toBrokerError(coded(code), TCP);
    assert.deepEqual([e.kind, e.permanent], ["refused", false], String(code));
    assert.match(e.message, reason);
  }
  const unknown = toBrokerError(coded(200), TCP);
  assert.equal(unknown.message, "broker broker.lab:1884 refused the connection: reason code 200");
  assert.equal(unknown.permanent, true);
});

Deno.test("toBrokerError: anything else is a lost connection, in one line", () => {
  const e = toBrokerError(new Error("Keepalive timeout\nstack-like detail"), TCP);
  assert.deepEqual([e.kind, e.permanent], ["lost", false]);
  assert.equal(e.message, "connection to broker.lab:1884 failed: Keepalive timeout");
  assert.equal(toBrokerError("weird", TCP).message, "connection to broker.lab:1884 failed: weird");
  assert.equal(toBrokerError(undefined, TCP).kind, "lost");
  // Classified by code, never by text: a message that looks like a refusal is still "lost".
  assert.equal(toBrokerError(new Error("ECONNREFUSED"), TCP).kind, "lost");
  const cause = coded("ECONNREFUSED");
  assert.equal(toBrokerError(cause, TCP).cause, cause);
  const already = new BrokerError("tls", "as it was", true);
  assert.equal(toBrokerError(already, TCP), already);
});

// ---------------------------------------------------------------------------------------------
// Against a real mosquitto

const needsBroker = mosquittoSkipReason() !== undefined;
const needsTls = needsBroker || opensslSkipReason() !== undefined;

/** `connected(openMqtt(broker))`: resolves with the client, or rejects with its BrokerError. */
async function connect(broker: BrokerOptions): Promise<BrokerError | undefined> {
  const client = openMqtt(broker, { clientId: `broker-test-${crypto.randomUUID()}` });
  try {
    await connected(client, broker);
    assert.equal(client.connected, true);
    return undefined;
  } catch (error) {
    assert.ok(error instanceof BrokerError, String(error));
    assertOneLine(error);
    return error;
  } finally {
    await end(client);
  }
}

function end(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

Deno.test({
  name: "openMqtt + connected: a running broker connects; a closed port is refused",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const ok = await connect({ transport: "mqtt", host: broker.host, port: broker.port });
    assert.equal(ok, undefined);

    const port = freePort(); // nothing listens there
    const refused = await connect({ transport: "mqtt", host: "127.0.0.1", port });
    assert.ok(refused);
    assert.deepEqual([refused.kind, refused.permanent], ["unreachable", false]);
    assert.equal(refused.message, `cannot connect to 127.0.0.1:${port}: connection refused`);
    assert.equal((refused.cause as { code?: string }).code, "ECONNREFUSED");
  },
});

Deno.test({
  name: "openMqtt + connected: the transports crossed, each way, get the hint that uncrosses them",
  ignore: needsBroker,
  async fn() {
    await using broker = await startMosquitto();
    const where = { host: broker.host, port: broker.port };
    const tls = await connect({ transport: "mqtts", ...where });
    assert.ok(tls);
    assert.match(tls.message, /\(a plain MQTT port\? then drop --tls and --cafile\)$/);
    const ws = await connect({ transport: "ws", ...where, path: "/mqtt" });
    assert.ok(ws);
    assert.match(ws.message, /a plain MQTT port takes mqtt:\/\/HOST:PORT\)$/);
  },
});

Deno.test("openMqtt + connected: an HTTP server on the port is named as no MQTT broker", async () => {
  // node:http answers the CONNECT packet, which is no HTTP request, with a 400 at once.
  const server = createHttpServer((_request, response) => response.end("hello"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const notMqtt = await connect({ transport: "mqtt", host: "127.0.0.1", port });
    assert.ok(notMqtt);
    assert.deepEqual([notMqtt.kind, notMqtt.permanent], ["not-mqtt", false]);
    assert.equal(
      notMqtt.message,
      `127.0.0.1:${port} answered, but not as an MQTT broker (an HTTP server? check the host ` +
        "and port)",
    );
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

Deno.test({
  name: "openMqtt + connected: TLS with the right CA, without TLS, and with the wrong CA",
  ignore: needsTls,
  async fn() {
    await using pki = await makeTlsFixture();
    await using broker = await startMosquitto({ listenerConfig: pki.mosquittoListenerConfig });
    const ca = [await Deno.readTextFile(pki.caFile)];
    const where = { host: broker.host, port: broker.port };

    assert.equal(await connect({ transport: "mqtts", ...where, ca }), undefined);
    // The certificate names localhost too, and a host name is checked against it.
    assert.equal(
      await connect({ transport: "mqtts", host: "localhost", port: broker.port, ca }),
      undefined,
    );

    const plain = await connect({ transport: "mqtt", ...where });
    assert.ok(plain);
    assert.equal(plain.kind, "lost");
    assert.match(plain.message, new RegExp(`^connection to 127\\.0\\.0\\.1:${broker.port} `));
    assert.match(plain.message, /--tls/);

    const wrongCa = [await Deno.readTextFile(pki.otherCaFile)];
    const untrusted = await connect({ transport: "mqtts", ...where, ca: wrongCa });
    assert.ok(untrusted);
    assert.deepEqual([untrusted.kind, untrusted.permanent], ["tls", true]);
    assert.match(
      untrusted.message,
      /^TLS: 127\.0\.0\.1:\d+ presented a certificate we do not trust/,
    );
    assert.match(untrusted.message, /--cafile$/);
  },
});

Deno.test({
  name: "openMqtt + connected: a wrong password is refused for good, and never shown",
  ignore: needsBroker,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "broker-test-" });
    try {
      const passwd = `${dir}/passwd`;
      const made = await new Deno.Command("mosquitto_passwd", {
        args: ["-b", "-c", passwd, USER, PASSWORD],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      await using broker = await startMosquitto({
        config: `allow_anonymous false\npassword_file ${passwd}`,
      });
      const where: BrokerOptions = { transport: "mqtt", host: broker.host, port: broker.port };

      assert.equal(await connect({ ...where, username: USER, password: PASSWORD }), undefined);
      for (
        const credentials of [
          { username: USER, password: "wrong" },
          { username: USER },
          { username: "nobody", password: PASSWORD },
          {},
        ]
      ) {
        const refused = await connect({ ...where, ...credentials });
        assert.ok(refused, JSON.stringify(credentials));
        assert.deepEqual([refused.kind, refused.permanent], ["refused", true]);
        assert.match(
          refused.message,
          new RegExp(
            `^broker 127\\.0\\.0\\.1:${broker.port} refused the connection: not authorized`,
          ),
        );
        assert.ok(!refused.message.includes(PASSWORD));
        if (credentials.username === USER && !("password" in credentials)) {
          assert.match(refused.message, /MQTT_PASSWORD is not set/);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "connected: a connection closed before the CONNACK rejects as lost",
  async fn() {
    // A server that accepts and closes at once: no CONNACK, no error code on our side.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const closing = (async () => {
      const conn = await listener.accept();
      conn.close();
    })();
    try {
      const error = await connect({ transport: "mqtt", host: "127.0.0.1", port });
      assert.ok(error);
      assert.equal(error.kind, "lost");
      assert.match(error.message, new RegExp(`^connection to 127\\.0\\.0\\.1:${port} `));
    } finally {
      await closing;
      listener.close();
    }
  },
});

Deno.test("subscribeAll: a refused filter is named; the granted ones in the same SUBSCRIBE too", async () => {
  // mosquitto grants every subscription (its ACLs filter deliveries); aedes can refuse one.
  const aedes = await Aedes.createBroker();
  aedes.authorizeSubscribe = (_client, subscription, done) =>
    done(null, subscription.topic.startsWith("+") ? null : subscription); // null: refused
  const server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const where: BrokerOptions = {
    transport: "mqtt",
    host: "127.0.0.1",
    port: (server.address() as AddressInfo).port,
  };
  const client = openMqtt(where, { clientId: "refused" });
  try {
    await connected(client, where);
    await subscribeAll(client, ["le0nh4rt/uppercase/response"]);
    const refusal = await subscribeAll(client, ["le0nh4rt/a/response", "+/+/request"])
      .then(() => undefined, (e) => e);
    assert.ok(refusal instanceof SubscriptionRefusedError, String(refusal));
    assert.deepEqual(refusal.refused, [{ topic: "+/+/request", code: 0x80 }]);
    assert.equal(
      refusal.message,
      "the broker refused the subscription to +/+/request (unspecified error)",
    );
  } finally {
    await end(client);
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise((resolve) => server.close(resolve));
  }
});
