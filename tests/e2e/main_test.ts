/**
 * The client's entry point (main.ts) as a real process with the `client` task's permissions:
 * what only a process shows, the exit status and what goes to stdout and to stderr. The
 * parsing itself is tested in-process (tests/cli/client_options_test.ts).
 */

import assert from "node:assert/strict";
import { CLIENT_HELP, CLIENT_USAGE } from "../../cli/client_options.ts";
import { freePort } from "../../support/mosquitto.ts";
import { runTask } from "../../support/processes.ts";
import { assertErrorLine, assertUsageError } from "../../support/failures.ts";
import denoJson from "../../deno.json" with { type: "json" };

const NAME = "secure_mqtt_client";

Deno.test("--help: the help on stdout, exit 0; --version: deno.json's", async () => {
  const help = await runTask("client", ["--help"]);
  assert.equal(help.code, 0);
  assert.equal(help.stderr, "");
  assert.equal(help.stdout, CLIENT_HELP);
  const version = await runTask("client", ["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stderr, "");
  assert.equal(version.stdout, `secure_mqtt_client ${denoJson.version}\n`);
});

Deno.test("a usage error: exit 2, one reason line and then the usage on stderr", async () => {
  for (
    const [args, reason] of [
      [["-h"], "option -h needs a value"],
      [
        ["le0nh4rt", "uppercase", "hello", "world"],
        "unrecognized arguments: world " +
        "(quote a message with spaces)",
      ],
      [
        ["--nope", "le0nh4rt", "uppercase", "hi"],
        "unrecognized option --nope " +
        "(to pass a message that starts with '-', put -- before it)",
      ],
    ] as const
  ) {
    const run = await runTask("client", [...args], { withoutEnv: ["MQTT_PASSWORD"] });
    assertUsageError(run, NAME, reason, CLIENT_USAGE);
  }
});

Deno.test("-h HOST -p PORT, the lab's way, to a broker that is not running: exit 1", async () => {
  const port = freePort(); // nothing listens there
  for (
    const target of [
      ["-h", "127.0.0.1", "-p", String(port)],
      ["--host", "127.0.0.1", "--port", String(port)],
      ["--url", `mqtt://127.0.0.1:${port}`],
    ]
  ) {
    const run = await runTask("client", [...target, "le0nh4rt", "title-case", "hi"]);
    assertErrorLine(run, NAME, new RegExp(`127\\.0\\.0\\.1:${port}: connection refused$`));
  }
  const ws = await runTask("client", [
    ...["--url", `ws://127.0.0.1:${port}/mqtt`],
    ...["le0nh4rt", "reverse", "x"],
  ]);
  assertErrorLine(ws, NAME, new RegExp(`ws://127\\.0\\.0\\.1:${port}/mqtt: connection refused$`));
});
