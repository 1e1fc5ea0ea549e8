/**
 * lib/mqtt.ts against real brokers: `openMqtt` + `connected` with a private mosquitto (a good
 * connection, a refused port, the transports crossed, TLS with the right and the wrong CA, a
 * wrong password), and `subscribeAll` with an aedes broker that refuses a filter. The in-process
 * tests of the same module are in tests/mqtt_test.ts.
 */

import assert from "node:assert/strict";
import {
  type BrokerOptions,
  connected,
  openMqtt,
  subscribeAll,
  SubscriptionRefusedError,
} from "../../lib/mqtt.ts";
import { connectOutcome as connect } from "../../support/connect.ts";
import { freePort, mosquittoSkipReason, startMosquitto } from "../../support/mosquitto.ts";
import { makeTlsFixture, opensslSkipReason } from "../../support/tls.ts";
import { type AddressInfo, createServer } from "node:net";
import { Aedes } from "aedes";

const USER = "lab-user";
const PASSWORD = "c0rrect horse $battery";
const needsBroker = mosquittoSkipReason() !== undefined;
const needsTls = needsBroker || opensslSkipReason() !== undefined;

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
    await using broker = await startMosquitto({ users: { [USER]: PASSWORD } });
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
    await client.endAsync(true);
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise((resolve) => server.close(resolve));
  }
});
