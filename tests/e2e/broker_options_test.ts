/**
 * Options that real brokers need, end to end through the real entry points (main.ts and
 * responder.ts as subprocesses with their deno.json task's permissions) against a real
 * mosquitto: MQTT over TLS with a private CA (`--tls`, `--cafile`, `--url mqtts://`), user name
 * and password (`--username`, `MQTT_PASSWORD`), and the message read from stdin (`-`); and MQTT
 * over WebSocket (`--url ws://`) against the embedded aedes broker, since Debian's mosquitto
 * has no WebSocket listener.
 *
 * The TLS broker has a certificate from a throwaway CA (support/tls.ts) and a password file made
 * with `mosquitto_passwd`; anonymous clients are refused. Our own responder serves the same
 * broker with the same credentials, so a good run is a full exchange.
 */

import assert from "node:assert/strict";
import { startEmbeddedBroker } from "../../lib/embedded_broker.ts";
import { Identity } from "../../lib/auth/identity.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { Responder } from "../../lib/responder/responder.ts";
import { freePort, mosquittoSkipReason, startMosquitto } from "../../support/mosquitto.ts";
import {
  type Peer,
  type RunResult,
  runTask,
  spawnTask,
  startResponderTask,
} from "../../support/processes.ts";
import { makeTlsFixture, opensslSkipReason, type TlsFixture } from "../../support/tls.ts";
import {
  assertErrorLine,
  assertNoSecret,
  assertUsageError,
  TIMESTAMP,
} from "../../support/failures.ts";
import { CLIENT_USAGE } from "../../cli/client_options.ts";

const MAX_MESSAGE_BYTES = 1024 * 1024; // lib/protocol/limits.ts MAX_MESSAGE_BYTES, restated on purpose
const USER = "lab-user";
// Spaces and shell metacharacters: the password must survive the environment untouched.
const PASSWORD = "c0rrect horse $battery 'staple'";
const WRONG_PASSWORD = "Tr0ub4dor&3-not-it";

const NAME = "secure_mqtt_client";
const NEEDS_BROKER = mosquittoSkipReason() ?? opensslSkipReason();
const UNTRUSTED =
  /TLS: 127\.0\.0\.1:\d+ presented a certificate we do not trust \(.*\); name the CA .* --cafile$/m;

/** Runs the client (main.ts) to completion, never with the test runner's MQTT_PASSWORD. */
function runClient(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<RunResult> {
  return runTask("client", args, { ...options, withoutEnv: ["MQTT_PASSWORD"] });
}

/** Starts our responder (responder.ts) over TLS with the test user's credentials. */
function startResponder(
  port: number,
  options: { cafile: string; password: string },
): Promise<Peer> {
  return startResponderTask(
    { host: "127.0.0.1", port },
    ["--cafile", options.cafile, "--username", USER],
    { env: { MQTT_PASSWORD: options.password } },
  );
}

/** Exit 1, one `secure_mqtt_client: error:` line matching `reason`, no `secret` anywhere. */
const assertRuntimeFailure = (run: RunResult, reason: RegExp, secret?: string) =>
  assertErrorLine(run, NAME, reason, { secret });

/** A broker with a TLS listener from `pki` that accepts only USER / PASSWORD. */
function startSecureBroker(pki: TlsFixture) {
  return startMosquitto({
    listenerConfig: pki.mosquittoListenerConfig,
    users: { [USER]: PASSWORD },
  });
}

Deno.test({
  name: "TLS broker with a password file: good credentials exchange, bad ones exit 1",
  ignore: NEEDS_BROKER !== undefined,
  sanitizeResources: false, // the broker and responder live across the steps
  sanitizeOps: false,
  async fn(t) {
    await using pki = await makeTlsFixture();
    await using broker = await startSecureBroker(pki);
    const target = ["--host", "127.0.0.1", "-p", String(broker.port), "--timeout", "10"];
    await using responder = await startResponder(broker.port, {
      cafile: pki.caFile,
      password: PASSWORD,
    });
    const good = { env: { MQTT_PASSWORD: PASSWORD } };

    await t.step(
      "--cafile + --username + MQTT_PASSWORD: full exchange via our responder",
      async () => {
        const run = await runClient(
          [
            ...target,
            "-v",
            "--cafile",
            pki.caFile,
            "--username",
            USER,
            "alice",
            "uppercase",
            "tls ok",
          ],
          good,
        );
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, "TLS OK\n");
        // -v logs the connection in detail; the password must still not be in it.
        assert.match(run.stderr, /debug: connected to/);
        assertNoSecret(run, PASSWORD);
      },
    );

    await t.step("--tls and --cafile together also work (--cafile implies --tls)", async () => {
      const run = await runClient(
        [...target, "--tls", "--cafile", pki.caFile, "--username", USER, "bob", "reverse", "abc"],
        good,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "cba\n");
    });

    await t.step(
      "--url mqtts:// with --cafile: full exchange, by address and by name",
      async () => {
        // The certificate names both 127.0.0.1 and localhost; a name is checked against it.
        for (const host of ["127.0.0.1", "localhost"]) {
          const run = await runClient(
            [
              ...["--url", `mqtts://${host}:${broker.port}`, "--cafile", pki.caFile],
              ...["--username", USER, `url-${host.replaceAll(".", "-")}`, "reverse", "stressed"],
            ],
            good,
          );
          assert.equal(run.code, 0, run.stderr);
          assert.equal(run.stdout, "desserts\n");
          assertNoSecret(run, PASSWORD);
        }
      },
    );

    await t.step("the TLS port reached without TLS: exit 1, and the hint says --tls", async () => {
      for (
        const where of [
          ["--url", `mqtt://127.0.0.1:${broker.port}`],
          ["--host", "127.0.0.1", "-p", String(broker.port)],
        ]
      ) {
        const run = await runClient([...where, "--username", USER, "ivan", "uppercase", "x"], good);
        assertRuntimeFailure(
          run,
          /^secure_mqtt_client: error: connection to 127\.0\.0\.1:\d+ was closed before the broker answered \(a TLS port\? then add --tls\)$/,
          PASSWORD,
        );
      }
    });

    await t.step("message '-' is read from stdin, less its one trailing newline", async () => {
      const run = await runClient(
        [...target, "--cafile", pki.caFile, "--username", USER, "carol", "uppercase", "-"],
        { ...good, stdin: "from stdin, ünïcödé\n" },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "FROM STDIN, ÜNÏCÖDÉ\n");
    });

    await t.step(
      "wrong password: exit 1, 'not authorized', the password never printed",
      async () => {
        const run = await runClient(
          [...target, "-v", "--cafile", pki.caFile, "--username", USER, "dave", "uppercase", "x"],
          { env: { MQTT_PASSWORD: WRONG_PASSWORD } },
        );
        assertRuntimeFailure(run, /not authorized/, WRONG_PASSWORD);
      },
    );

    await t.step("user name without MQTT_PASSWORD, or no user at all: exit 1", async () => {
      const noPassword = await runClient(
        [...target, "--cafile", pki.caFile, "--username", USER, "erin", "uppercase", "x"],
      );
      assertRuntimeFailure(noPassword, /not authorized for 'lab-user': MQTT_PASSWORD is not set/);
      const anonymous = await runClient(
        [...target, "--cafile", pki.caFile, "frank", "uppercase", "x"],
      );
      assertRuntimeFailure(anonymous, /not authorized/);
    });

    await t.step(
      "a certificate from another CA: exit 1, the certificate is not trusted",
      async () => {
        const run = await runClient(
          [...target, "--cafile", pki.otherCaFile, "--username", USER, "gina", "uppercase", "x"],
          { env: { MQTT_PASSWORD: PASSWORD } },
        );
        assertRuntimeFailure(run, UNTRUSTED, PASSWORD);
      },
    );

    await t.step(
      "--tls with only the system CAs: the private CA is not trusted, exit 1",
      async () => {
        const run = await runClient(
          [...target, "--tls", "--username", USER, "hank", "uppercase", "x"],
          { env: { MQTT_PASSWORD: PASSWORD } },
        );
        assertRuntimeFailure(run, UNTRUSTED, PASSWORD);
      },
    );

    await t.step("the responder refuses to run with a wrong password or a wrong CA", async () => {
      for (
        const [cafile, password, reason] of [
          [pki.caFile, WRONG_PASSWORD, /not authorized/],
          [pki.otherCaFile, PASSWORD, UNTRUSTED],
        ] as const
      ) {
        await using bad = spawnTask("responder", [
          ...["--host", "127.0.0.1", "-p", String(broker.port)],
          ...["--cafile", cafile, "--username", USER],
        ], { env: { MQTT_PASSWORD: password } });
        const status = await bad.status;
        const stderr = bad.stderrText();
        assert.equal(status.code, 1, `responder exit code; stderr:\n${stderr}`);
        assert.match(stderr, new RegExp(`^${TIMESTAMP}secure_mqtt_responder: error: .*$`, "m"));
        assert.match(stderr, reason);
        assertNoSecret({ stdout: bad.stdoutText(), stderr: bad.stderrText() }, password);
      }
    });

    await t.step("the good responder logged no password either", () => {
      assertNoSecret({ stdout: responder.stdoutText(), stderr: responder.stderrText() }, PASSWORD);
    });
  },
});

Deno.test("the password has no command-line option: --password is a usage error", async () => {
  const run = await runTask("client", ["--password", "hunter2", "alice", "uppercase", "x"]);
  assertUsageError(run, NAME, /^secure_mqtt_client: error: unrecognized option --password/);
});

const TASK_READ_HINT = "cannot read a --cafile outside the project; the deno.json task needs an " +
  "unscoped --allow-read, as the binaries have (README: Permissions)";

Deno.test("the client and responder tasks can read a --cafile outside the project", async () => {
  // Not "grant it yourself": `deno task client ARGS` hands ARGS to the program, so a user
  // cannot add --allow-read there. The task's own permissions must cover any CA file path.
  const dir = await Deno.makeTempDir({ prefix: "cafile-" });
  try {
    const cafile = `${dir}/ca.pem`;
    await Deno.writeTextFile(cafile, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    const port = String(freePort()); // nothing listens: the run gets past option parsing
    const { code, stderr } = await runTask("client", [
      ...["--host", "127.0.0.1", "-p", port, "--cafile", cafile, "alice", "uppercase", "x"],
    ]);
    assert.doesNotMatch(stderr, /argument --cafile/, `client task: ${TASK_READ_HINT}`);
    assert.equal(code, 1, stderr);

    // The responder retries an unreachable broker for ever; a reconnect warning is proof enough.
    await using responder = spawnTask("responder", [
      ...["--host", "127.0.0.1", "-p", port, "--cafile", cafile],
    ]);
    const line = await responder.waitForLine(/reconnecting|error:/);
    assert.doesNotMatch(line, /argument --cafile/, `responder task: ${TASK_READ_HINT}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stdin over the 1 MiB cap is a usage error (exit 2), before connecting", async () => {
  const port = String(freePort()); // never reached: the cap is checked first
  const run = await runTask(
    "client",
    ["--host", "127.0.0.1", "-p", port, "alice", "uppercase", "-"],
    { stdin: "x".repeat(MAX_MESSAGE_BYTES + 1) },
  );
  assertUsageError(run, NAME, /: error: argument MESSAGE: .*1048576-byte limit/, CLIENT_USAGE);
});

Deno.test("stdin of exactly 1 MiB is accepted (the run gets as far as connecting)", async () => {
  const port = freePort();
  const { code, stdout, stderr } = await runTask(
    "client",
    ["--host", "127.0.0.1", "-p", String(port), "alice", "uppercase", "-"],
    { stdin: "é".repeat(MAX_MESSAGE_BYTES / 2) }, // 2 bytes each in UTF-8: exactly the cap
  );
  assert.equal(code, 1, stderr);
  assert.equal(stdout, "");
  assert.match(stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`));
});

Deno.test("stdin that is not UTF-8 is a usage error (exit 2)", async () => {
  for (const bytes of [[0xff, 0xfe, 0x41], [0x68, 0x69, 0xc3], [0xed, 0xa0, 0x80]]) {
    const run = await runTask(
      "client",
      ["--host", "127.0.0.1", "-p", String(freePort()), "alice", "uppercase", "-"],
      { stdin: new Uint8Array(bytes) },
    );
    assertUsageError(run, NAME, /not valid UTF-8$/, CLIENT_USAGE);
  }
});

Deno.test("--url ws://: MQTT over WebSocket, with and without --trust", async () => {
  // Our responder speaks MQTT over TCP to the same embedded broker.
  await using broker = await startEmbeddedBroker({ webSocket: true });
  assert.ok(broker.webSocketPort);
  const { identity } = await Identity.generate();
  await using _responder = await Responder.start({
    broker: { transport: "mqtt", host: broker.host, port: broker.port },
    group: loadLabGroup(),
    identity,
  });
  const url = `ws://${broker.host}:${broker.webSocketPort}/mqtt`;

  const plain = await runClient(["--url", url, "web", "uppercase", "over websocket"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, "OVER WEBSOCKET\n");
  assert.equal(plain.stderr, "");

  const trusting = await runClient([
    ...["-v", "--url", url, "--trust", identity.fingerprint],
    ...["web-trust", "reverse", "stressed"],
  ]);
  assert.equal(trusting.code, 0, trusting.stderr);
  assert.equal(trusting.stdout, "desserts\n");
  assert.ok(trusting.stderr.includes(`debug: connected to ${url} (`), trusting.stderr);
  assert.ok(trusting.stderr.includes(`authenticated by ${identity.fingerprint}`), trusting.stderr);

  // Over the same WebSocket, trusting another identity: refused at the deadline.
  const wary = await runClient([
    ...["--url", url, "--timeout", "1", "--trust", `SHA256:${"0f".repeat(32)}`],
    ...["web-wary", "uppercase", "x"],
  ]);
  assertRuntimeFailure(
    wary,
    /signed by SHA256:(0f){32} within 1 s: 1 signature by other identities/,
  );
});
