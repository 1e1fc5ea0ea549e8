/**
 * `secure_mqtt_responder`: the responding client, as a long-running service. Parses the
 * command line, runs {@linkcode Responder} until SIGINT, SIGTERM or SIGHUP. Every line it writes
 * while it runs starts with its time (UTC, to the millisecond).
 *
 * @module
 */

import { readIdentityFile, writeNewIdentity } from "./cli/identity_file.ts";
import { EXIT_FAILURE, printErr, printOut, runCommand } from "./cli/command.ts";
import {
  parseResponderArgs,
  RESPONDER_HELP,
  RESPONDER_NAME,
  RESPONDER_USAGE,
} from "./cli/responder_options.ts";
import { stderrLogger } from "./cli/logger.ts";
import { loadLabGroup } from "./lib/protocol/key_agreement.ts";
import { Responder, ResponderError } from "./lib/responder/responder.ts";
import denoJson from "./deno.json" with { type: "json" };

async function main(args: string[]): Promise<number> {
  const invocation = parseResponderArgs(args);
  if (invocation.kind === "help") return printOut(RESPONDER_HELP), 0;
  if (invocation.kind === "version") return printOut(`${RESPONDER_NAME} ${denoJson.version}\n`), 0;
  if (invocation.kind === "new-identity") {
    const { file } = invocation;
    const identity = await writeNewIdentity(file);
    // The fingerprint is the answer; with the key itself on stdout, it goes to stderr.
    if (file === "-") printErr(`${RESPONDER_NAME}: new identity ${identity.fingerprint}\n`);
    else printOut(`${identity.fingerprint}\n`);
    return 0;
  }
  if (invocation.kind === "fingerprint") {
    printOut(`${(await readIdentityFile(invocation.identityFile)).fingerprint}\n`);
    return 0;
  }
  const { broker, identityFile, verbose } = invocation;
  const identity = identityFile === undefined ? undefined : await readIdentityFile(identityFile);
  // Writing is for --new-identity alone: a service that runs for a term gives it up at once.
  await Deno.permissions.revoke({ name: "write" });

  const logger = stderrLogger(RESPONDER_NAME, verbose, { timestamps: true });
  const responder = new Responder({ broker, group: loadLabGroup(), identity, logger });
  let signalled = false;
  const listeners = onSignals((signal) => {
    // A second signal while shutdown hangs ends the process at once.
    if (signalled) Deno.exit(EXIT_FAILURE);
    signalled = true;
    logger.info(`${signal}: shutting down`);
    void responder.stop();
  });
  try {
    await responder.run();
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  const s = responder.stats();
  logger.info(
    `stopped: ${s.keyExchanges} key exchange(s), ${s.answered} answer(s), ` +
      `${s.dropped} dropped message(s)`,
  );
  return 0;
}

/**
 * Each of the signals that end a service cleanly: Ctrl-C, `kill` and systemd's stop, and the
 * hang-up of the terminal it was started from (an SSH session that ends), which would otherwise
 * kill it with no line and no shutdown. Listening replaces a disposition inherited as "ignore"
 * (what `nohup` sets for SIGHUP), and the responder cannot tell: the kernel shows it in
 * /proc/self/status, which Deno opens only with --allow-all. docs/operating.md says how to keep
 * it running after a logout.
 */
function onSignals(handle: (signal: Deno.Signal) => void): [Deno.Signal, () => void][] {
  const added: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const listener = () => handle(signal);
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // SIGTERM and SIGHUP cannot be listened for on Windows; Ctrl-C (SIGINT) still works there.
    }
  }
  return added;
}

if (import.meta.main) {
  Deno.exit(
    await runCommand(
      {
        name: RESPONDER_NAME,
        usage: RESPONDER_USAGE,
        failures: [ResponderError],
        timestamps: true,
        main,
      },
      Deno.args,
    ),
  );
}
