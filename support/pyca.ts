/**
 * pyca/cryptography under the system Python (`/usr/bin/python3`, not whatever `python3` is
 * first on PATH), as a reference oracle: a test hands it a script and compares its answer with
 * ours. Such a test runs no broker and no program of ours, so it belongs to the in-process tier
 * (`tests/`, not `tests/e2e/`).
 *
 * Without pyca, these tests are ignored with a printed reason, except under `CI=true`, where a
 * missing oracle must fail the run rather than quietly shrink it (`support/environment.ts`).
 *
 * @module
 */

import { PYTHON, skipUnless } from "./environment.ts";

export { PYTHON };

/**
 * Why the tests that need pyca must be skipped, or undefined when they must run (always
 * undefined under `CI=true`).
 */
export function pycaSkipReason(): string | undefined {
  return skipUnless("pyca/cryptography", () => {
    try {
      const { success } = new Deno.Command(PYTHON, {
        args: ["-c", "import cryptography.hazmat.primitives.asymmetric.dh"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      return success ? undefined : `${PYTHON} cannot import cryptography ` +
        "(apt-get install python3-cryptography)";
    } catch (e) {
      return e instanceof Deno.errors.NotFound
        ? `${PYTHON} is missing (apt-get install python3)`
        : `${PYTHON} cannot be run (${(e as Error).name})`;
    }
  });
}

/**
 * Runs `script` with /usr/bin/python3 (stdin optional) and returns its stdout; throws with
 * stderr when it exits non-zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pycaSkipReason, runPython } from "./pyca.ts";
 * if (pycaSkipReason() === undefined) {
 *   assert.equal(await runPython("import sys; print(sys.stdin.read().upper())", "abc"), "ABC\n");
 * }
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

/** A Deno.test that needs pyca: ignored when {@linkcode pycaSkipReason} says so. */
export function pycaTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: pycaSkipReason() !== undefined, fn });
}
