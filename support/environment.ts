/**
 * What the test run knows about where it runs: CI or not, which Python has the peers, and the
 * one rule for a test whose peer (mosquitto, openssl, the Python libraries, npx, a free port) is
 * missing: {@linkcode skipUnless}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandProblem, skipUnless } from "./environment.ts";
 * const deno = () => commandProblem(Deno.execPath(), ["--version"], "install Deno");
 * assert.equal(skipUnless("Deno", deno), undefined); // here: the tests that need it run
 * assert.match(commandProblem("no-such-tool", [], "apt-get install it")!, /not found/);
 * ```
 * @module
 */

function readCiFlag(): boolean {
  try {
    return Deno.env.get("CI") === "true";
  } catch {
    return false; // no --allow-env: we cannot know, so behave as a developer run
  }
}

/**
 * True under CI (`CI=true`): a missing peer (mosquitto, openssl, the Python libraries) is then
 * a failure, not a skip, so a broken install cannot quietly shrink the suite.
 */
export const IN_CI: boolean = readCiFlag();

/**
 * The interpreter with Debian's python3-cryptography and python3-paho-mqtt: `/usr/bin/python3`,
 * not whatever `python3` comes first on PATH.
 */
export const PYTHON = "/usr/bin/python3";

const probed = new Map<string, string | undefined>();

/**
 * The one skip rule. Why the tests that need `what` must be skipped here, or `undefined` when
 * they must run: `probe` says what is missing (`undefined`: nothing), and runs once per `what`
 * in a test module. A reason is printed once, to stderr. Under `CI=true` the answer is always
 * `undefined`: the tests run and fail, and the note says why they will.
 *
 * Use it as `ignore: skipUnless(...) !== undefined`; the helpers of `support/` wrap it for
 * their own peer (`mosquittoSkipReason`, `pythonPeersSkipReason`, `pycaSkipReason`,
 * `opensslSkipReason`).
 */
export function skipUnless(what: string, probe: () => string | undefined): string | undefined {
  if (!probed.has(what)) {
    const reason = probe();
    probed.set(what, reason);
    if (reason !== undefined) {
      console.error(
        IN_CI
          ? `note: ${reason}: CI=true, so the tests that need ${what} run, and fail`
          : `note: skipping the tests that need ${what}: ${reason}`,
      );
    }
  }
  return IN_CI ? undefined : probed.get(what);
}

/**
 * Whether `cmd args` runs and exits 0 here: the probe of a command-line tool, for
 * {@linkcode skipUnless}. Returns `undefined` when it does, or what went wrong, with `hint`
 * (how to install it) when the command is not there at all.
 */
export function commandProblem(cmd: string, args: string[], hint: string): string | undefined {
  try {
    const out = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? undefined : `\`${[cmd, ...args].join(" ")}\` exited ${out.code}`;
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? `${cmd} not found (${hint})`
      : `${cmd} cannot be run (${(error as Error).name})`;
  }
}
