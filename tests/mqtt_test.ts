/**
 * lib/mqtt.ts, in process: how brokers are named in messages, how every connection failure
 * becomes a one-line `BrokerError` (by the error's code, never its text), and `openMqtt` +
 * `connected` against servers that are no broker (an HTTP server, one that hangs up at once).
 * Against real brokers: tests/e2e/mqtt_test.ts.
 */

import assert from "node:assert/strict";
import {
  BrokerError,
  brokerLabel,
  type BrokerOptions,
  NOT_MQTT,
  toBrokerError,
} from "../lib/mqtt.ts";
import { connectOutcome as connect } from "../support/connect.ts";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";

const TCP: BrokerOptions = { transport: "mqtt", host: "broker.lab", port: 1884 };
const TLS: BrokerOptions = { transport: "mqtts", host: "broker.lab", port: 8883 };
const USER = "lab-user";
const PASSWORD = "c0rrect horse $battery";

/** An error as sockets and MQTT.js make them: a message and a code. */
function coded(code: string | number, message = `failure ${code}`): Error {
  return Object.assign(new Error(message), { code });
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
      const e = toBrokerError(coded(code), { ...TCP, ...credentials }, code);
      assert.deepEqual([e.kind, e.permanent], ["refused", true]);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes("pw"), "never the password");
    }
  }
  const bad = toBrokerError(coded(4), { ...TCP, username: "alice" }, 4);
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
    const e = toBrokerError(coded(code, "Connection refused: Not authorized"), TCP, code);
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
    const e = toBrokerError(coded(code), TCP, code);
    assert.deepEqual([e.kind, e.permanent], ["refused", false], String(code));
    assert.match(e.message, reason);
  }
  const unknown = toBrokerError(coded(200), TCP, 200);
  assert.equal(unknown.message, "broker broker.lab:1884 refused the connection: reason code 200");
  assert.equal(unknown.permanent, true);
});

Deno.test("toBrokerError: a numeric code is a refusal only with the CONNACK that carried it", () => {
  // MQTT.js's own protocol errors: a second CONNACK or an AUTH (130), a topic alias (148), a
  // packet over the maximum size (149); before any CONNACK, or after one that accepted us.
  for (
    const [code, message] of [
      [130, "Protocol error: duplicate CONNACK on the same network connection"],
      [130, "Protocol error: Auth packet received but enhanced authentication was not requested"],
      [148, "Received a PUBLISH Topic Alias but no Topic Alias Maximum was advertised"],
      [149, "exceeding packets size publish"],
    ] as const
  ) {
    for (const connack of [undefined, 0, 135]) {
      const e = toBrokerError(coded(code, message), TCP, connack);
      assert.deepEqual([e.kind, e.permanent], ["lost", false], `${code} after ${connack}`);
      assert.equal(e.message, `connection to broker.lab:1884 failed: ${message}`);
    }
  }
  // The CONNACK's own code: a refusal, whatever MQTT.js's text.
  const refused = toBrokerError(coded(135, "Connection refused: Not authorized"), TCP, 135);
  assert.deepEqual([refused.kind, refused.permanent], ["refused", true]);
  // A CONNACK of 0 accepted us: an error with code 0 is no refusal.
  assert.equal(toBrokerError(coded(0), TCP, 0).kind, "lost");
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
