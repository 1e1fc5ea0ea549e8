/**
 * `secure_mqtt_client`: ask a responding client, through an MQTT broker it does not trust, to
 * transform a text, end-to-end encrypted. Parses the command line, calls
 * {@linkcode requestTransform}, prints the answer.
 *
 * @module
 */

import {
  CLIENT_HELP,
  CLIENT_NAME,
  CLIENT_USAGE,
  FROM_STDIN,
  parseClientArgs,
  readMessage,
} from "./cli/client_options.ts";
import { printOut, runCommand } from "./cli/command.ts";
import { ClientError, requestTransform } from "./lib/client/session.ts";
import { stderrLogger } from "./cli/logger.ts";
import { loadLabGroup } from "./lib/protocol/key_agreement.ts";
import denoJson from "./deno.json" with { type: "json" };

async function main(args: string[]): Promise<number> {
  const invocation = parseClientArgs(args);
  if (invocation.kind === "help") return printOut(CLIENT_HELP), 0;
  if (invocation.kind === "version") return printOut(`${CLIENT_NAME} ${denoJson.version}\n`), 0;
  const { verbose, ...request } = invocation.request;
  const message = request.message === FROM_STDIN
    ? await readMessage(Deno.stdin.readable)
    : request.message;
  const answer = await requestTransform({
    ...request,
    message,
    group: loadLabGroup(),
    logger: stderrLogger(CLIENT_NAME, verbose),
  });
  printOut(`${answer}\n`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(
    await runCommand(
      { name: CLIENT_NAME, usage: CLIENT_USAGE, failures: [ClientError], main },
      Deno.args,
    ),
  );
}
