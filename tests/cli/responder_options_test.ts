/**
 * cli/responder_options.ts, in-process: the lab's broker options first (`-h` is the host),
 * the identity options, the help (the actions answered and the limits), and the refusals.
 */

import assert from "node:assert/strict";
import { ACTIONS } from "../../lib/protocol/actions.ts";
import { UsageError } from "../../cli/args.ts";
import {
  parseResponderArgs,
  RESPONDER_HELP,
  RESPONDER_USAGE,
} from "../../cli/responder_options.ts";
import { DEFAULT_LIMITS } from "../../lib/responder/responder.ts";

function refused(args: string[], reason: RegExp): void {
  assert.throws(() => parseResponderArgs(args), (error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.ok(!error.message.includes("\n"), "one line");
    assert.match(error.message, reason);
    return true;
  });
}

Deno.test("parseResponderArgs: -h HOST -p PORT and the long forms; --help only as --help", () => {
  for (
    const args of [
      ["-h", "broker.lab", "-p", "1999"],
      ["--host", "broker.lab", "--port=1999"],
    ]
  ) {
    assert.deepEqual(parseResponderArgs(args), {
      kind: "serve",
      broker: { transport: "mqtt", host: "broker.lab", port: 1999 },
      identityFile: undefined,
      verbose: false,
    });
  }
  const serve = parseResponderArgs(["-v", "--identity", "id.pem"]);
  assert.equal(serve.kind === "serve" && serve.identityFile, "id.pem");
  assert.equal(serve.kind === "serve" && serve.verbose, true);
  assert.deepEqual(parseResponderArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseResponderArgs(["--version"]), { kind: "version" });
  assert.deepEqual(parseResponderArgs(["--new-identity", "id.pem"]), {
    kind: "new-identity",
    file: "id.pem",
  });
  assert.deepEqual(parseResponderArgs(["--identity", "id.pem", "--fingerprint"]), {
    kind: "fingerprint",
    identityFile: "id.pem",
  });
  refused(["--new-identity"], /^option --new-identity needs a value$/);
  refused(["--new-identity", "a.pem", "--identity", "b.pem"], /not allowed with --identity$/);
  refused(["--fingerprint"], /^argument --fingerprint: needs --identity FILE/);
});

Deno.test("parseResponderArgs: each refusal is one line that names the option", () => {
  refused(["-h"], /^option -h needs a value$/);
  refused(["-p", "99999"], /^argument -p\/--port: invalid port '99999'/);
  refused(["-p", "x"], /invalid port 'x'/);
  refused(["--bogus"], /^unrecognized option --bogus$/);
  refused(["extra"], /^unrecognized arguments: extra$/);
  refused(["--host", ""], /^argument -h\/--host: invalid host/);
  refused(["-h", "broker.lab:1884"], /^argument -h\/--host: 'broker\.lab:1884' holds a port/);
  refused(["--cafile", "/nonexistent/ca.pem"], /^argument --cafile: cannot read/);
  refused(["--url", "http://x"], /^argument --url: unsupported scheme/);
});

Deno.test("the responder's usage and help: the lab's options first, its actions and limits", () => {
  assert.match(
    RESPONDER_USAGE.replace(/\s+/g, " "),
    /^usage: secure_mqtt_responder \[--help\] \[-v\] \[-h HOST\] \[-p PORT\] /,
  );
  assert.ok(RESPONDER_HELP.startsWith(`${RESPONDER_USAGE}\n`));
  const help = RESPONDER_HELP.replace(/\s+/g, " ");
  assert.ok(help.indexOf(" --help ") < help.indexOf(" -h HOST, --host HOST "));
  assert.ok(help.indexOf(" -p PORT, --port PORT ") < help.indexOf(" --url URL "));
  assert.ok(help.includes(`actions answered: ${ACTIONS.join(", ")}`));
  for (
    const figure of [
      `${DEFAULT_LIMITS.maxSessions} live sessions`,
      `${DEFAULT_LIMITS.sessionIdleMs / 60_000} min idle`,
      `${DEFAULT_LIMITS.maxPendingKeyExchanges} netids waiting`,
      `${DEFAULT_LIMITS.maxRequestsInFlight} requests`,
    ]
  ) {
    assert.ok(help.includes(figure), figure);
  }
});
