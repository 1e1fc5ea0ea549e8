/**
 * The independent peer for interop tests: pyca/cryptography under the system Python
 * (`/usr/bin/python3`, not whatever `python3` is first on PATH).
 *
 * Without it, interop tests are ignored with a printed reason, except under CI=true, where a
 * missing peer must fail the run rather than quietly shrink it.
 *
 * @module
 */

import { IN_CI, PYTHON } from "../../support/environment.ts";

export { PYTHON };

async function probe(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command(PYTHON, {
      args: ["-c", "import cryptography.hazmat.primitives.asymmetric.dh"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `${PYTHON} cannot import cryptography`;
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? `${PYTHON} is missing`
      : `${PYTHON} cannot be run (${(e as Error).name})`;
  }
}

/** Why pyca cannot be used, or undefined when it can. */
export const pycaMissingReason: string | undefined = await probe();

/** True when /usr/bin/python3 can import pyca/cryptography. */
export const pycaAvailable: boolean = pycaMissingReason === undefined;

/**
 * Runs `script` with /usr/bin/python3 (stdin optional) and returns its stdout; throws with
 * stderr when it exits non-zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runPython } from "./pyca.ts";
 * assert.equal(await runPython("import sys; print(sys.stdin.read().upper())", "abc"), "ABC\n");
 * ```
 */
export async function runPython(script: string, stdin?: string): Promise<string> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin ?? ""));
  await writer.close();
  const { success, code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  if (!success) throw new Error(`python exited ${code}: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

/**
 * Deno.test that needs pyca: ignored (and the reason printed) when pyca is missing, unless
 * CI=true, where it runs and fails.
 */
export function pycaTest(name: string, fn: () => Promise<void>): void {
  const ignore = !pycaAvailable && !IN_CI;
  if (ignore) console.log(`skip: ${name} because ${pycaMissingReason}`);
  Deno.test({
    name,
    ignore,
    fn: async () => {
      if (!pycaAvailable) throw new Error(`CI=true but ${pycaMissingReason}`);
      await fn();
    },
  });
}
