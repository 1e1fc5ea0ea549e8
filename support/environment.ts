/**
 * What the test run knows about where it runs: CI or not, and which Python has the peers.
 *
 * @example
 * ```ts
 * import { IN_CI, PYTHON } from "./environment.ts";
 * console.log(IN_CI ? "a missing peer fails" : "a missing peer skips", PYTHON);
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
