/**
 * Test helper: run our real entry points as subprocesses, with exactly the permissions their
 * `deno task` grants (read from deno.json, so the tests prove the task's permission set).
 *
 * @example
 * ```ts
 * import { runTask } from "./support/cli.ts";
 * const { code, stdout } = await runTask("client", ["--help"]);
 * ```
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The project root (where deno.json and dhparam4096.pem are). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;

/** What a finished run left behind. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

/**
 * `deno run` arguments of a task in deno.json, e.g. `["run", "--allow-net", …, "main.ts"]`.
 * Tasks are plain `deno run FLAGS FILE` commands, which keeps this a simple split.
 */
export function taskArgs(task: keyof typeof denoJson.tasks): string[] {
  const words = denoJson.tasks[task].split(/\s+/);
  if (words[0] !== "deno") throw new Error(`task ${task} does not start with deno`);
  return words.slice(1);
}

/** Runs a deno.json task's command with `args`, from the project root, to completion. */
export async function runTask(
  task: keyof typeof denoJson.tasks,
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(task), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    // The child may stop reading early (input over the cap): a broken pipe is its answer.
    await writer.write(bytes).catch(() => {});
    await writer.close().catch(() => {});
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    ms: performance.now() - started,
  };
}
