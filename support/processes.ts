/**
 * Test helper: spawn a process (our entry points, the Python reference peers, mosquitto_pub),
 * collect its stdout and stderr as lines, and wait for a line that matches, instead of
 * sleeping. A wait fails fast, quoting the output, when the process exits without the line.
 *
 * `spawnTask`, `runTask` and `startResponderTask` run our entry points with their deno.json
 * task's own permissions, so that the tests prove those permissions suffice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawnPeer } from "./processes.ts";
 * await using cat = spawnPeer("cat", [], { stdin: "hello\nworld\n" });
 * assert.equal(await cat.waitForLine(/^w/, { stream: "stdout" }), "world");
 * assert.equal((await cat.status).code, 0);
 * assert.deepEqual(cat.lines("stdout"), ["hello", "world"]);
 * ```
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** Absolute path of the project root (where deno.json is), without a trailing slash. */
export const ROOT: string = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(
  /\/$/,
  "",
);

const DEFAULT_WAIT_MS = 15_000;
const OUTPUT_QUOTED_CHARS = 3000;

/** Which output {@linkcode Peer.waitForLine} reads. */
export type StreamName = "stdout" | "stderr";

/** Options for {@linkcode spawnPeer}. */
export interface SpawnOptions {
  /** Working directory; default {@linkcode ROOT}. */
  cwd?: string;
  /** Extra environment variables (added to the inherited one, plus NO_COLOR=1). */
  env?: Record<string, string>;
  /**
   * Names dropped from the inherited environment, e.g. `["MQTT_PASSWORD"]` so that a test of
   * "no password" really has none whatever the test runner's environment holds.
   */
  withoutEnv?: string[];
  /** Text or bytes written to stdin, which is then closed; default: stdin is /dev/null. */
  stdin?: string | Uint8Array;
}

/**
 * Options for {@linkcode Peer.waitForLine}: `from: peer.lineCount("stderr")` waits for a line
 * still to come, not one already seen.
 */
export interface WaitOptions {
  /** Stream to read; default "stderr", where our entry points log. */
  stream?: StreamName;
  /** Give up after this long; default 15 s. */
  timeoutMs?: number;
  /** Only lines from this index on (see {@linkcode Peer.lineCount}); default 0. */
  from?: number;
}

/**
 * A spawned process. `await using` kills it (SIGTERM) if still running and waits for it, so
 * no process or pipe outlives the test (Deno's sanitizers check both).
 */
export interface Peer extends AsyncDisposable {
  readonly pid: number;
  /**
   * Resolves with the first line of `stream` matching `pattern` (from line `from` on). Rejects
   * with the process's output when it times out or the process exits without such a line.
   */
  waitForLine(pattern: RegExp, options?: WaitOptions): Promise<string>;
  /** Complete lines received so far on `stream`. */
  lines(stream: StreamName): readonly string[];
  /** How many complete lines `stream` has so far (a mark for `waitForLine`'s `from`). */
  lineCount(stream: StreamName): number;
  /** Everything received on stdout so far. */
  stdoutText(): string;
  /** Everything received on stderr so far. */
  stderrText(): string;
  /** Sends a signal; a no-op once the process is gone. */
  kill(signal?: Deno.Signal): void;
  /** Exit status, once the process has exited and both pipes are read to the end. */
  readonly status: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  readonly exited: boolean;
}

class OutputLog {
  text = "";
  lines: string[] = [];
  #partial = "";
  ended = false;

  push(chunk: string): void {
    this.text += chunk;
    const parts = (this.#partial + chunk).split("\n");
    this.#partial = parts.pop()!;
    this.lines.push(...parts);
  }

  end(): void {
    if (this.#partial !== "") this.lines.push(this.#partial);
    this.#partial = "";
    this.ended = true;
  }
}

interface Waiter {
  check(): boolean;
}

/** Spawns `cmd args` with piped stdout/stderr and returns a {@linkcode Peer}. */
export function spawnPeer(cmd: string, args: string[], options: SpawnOptions = {}): Peer {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? ROOT,
    // NO_COLOR: log lines to match without ANSI colour codes in them.
    env: { ...inheritedEnv(options.withoutEnv), NO_COLOR: "1", ...options.env },
    clearEnv: options.withoutEnv !== undefined,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    // A process that exits without reading stdin breaks the pipe: not our failure to report.
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    writer.write(bytes).then(() => writer.close()).catch(() => {});
  }

  const logs: Record<StreamName, OutputLog> = { stdout: new OutputLog(), stderr: new OutputLog() };
  const waiters = new Set<Waiter>();
  const notify = () => {
    for (const w of [...waiters]) if (w.check()) waiters.delete(w);
  };
  const pump = async (stream: ReadableStream<Uint8Array>, log: OutputLog) => {
    try {
      // ignoreBOM: output that starts with U+FEFF (an answer can) is kept as it came.
      const decoder = new TextDecoderStream("utf-8", { ignoreBOM: true });
      for await (const text of stream.pipeThrough(decoder)) {
        log.push(text);
        notify();
      }
    } catch {
      // A broken pipe just ends the output.
    }
    log.end();
  };
  const pumps = Promise.all([pump(child.stdout, logs.stdout), pump(child.stderr, logs.stderr)]);
  let exited = false;
  const status = (async () => {
    const s = await child.status;
    exited = true;
    await pumps;
    notify();
    return s;
  })();

  const describe = () =>
    `--- stdout ---\n${tail(logs.stdout.text)}\n--- stderr ---\n${tail(logs.stderr.text)}`;

  const peer: Peer = {
    pid: child.pid,
    get exited() {
      return exited;
    },
    status,
    lines: (stream) => logs[stream].lines,
    lineCount: (stream) => logs[stream].lines.length,
    stdoutText: () => logs.stdout.text,
    stderrText: () => logs.stderr.text,
    kill(signal: Deno.Signal = "SIGTERM") {
      if (exited) return;
      try {
        child.kill(signal);
      } catch {
        // Exited between the check and the kill.
      }
    },
    waitForLine(pattern, wait = {}) {
      const stream = wait.stream ?? "stderr";
      const log = logs[stream];
      const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
      let next = wait.from ?? 0;
      return new Promise<string>((resolve, reject) => {
        const waiter: Waiter = {
          check() {
            for (; next < log.lines.length; next++) {
              if (pattern.test(log.lines[next])) {
                clearTimeout(timer);
                resolve(log.lines[next]);
                return true;
              }
            }
            if (log.ended) {
              clearTimeout(timer);
              reject(
                new Error(
                  `${cmd} ${args.join(" ")} ended its ${stream} without a line matching ` +
                    `${pattern}\n${describe()}`,
                ),
              );
              return true;
            }
            return false;
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `no line matching ${pattern} on ${stream} within ${timeoutMs} ms\n${describe()}`,
            ),
          );
        }, timeoutMs);
        if (!waiter.check()) waiters.add(waiter);
      });
    },
    async [Symbol.asyncDispose]() {
      peer.kill("SIGTERM");
      await status;
    },
  };
  return peer;
}

function inheritedEnv(without: string[] | undefined): Record<string, string> {
  if (without === undefined) return {}; // plain inheritance, done by Deno.Command itself
  const env = Deno.env.toObject();
  for (const name of without) delete env[name];
  return env;
}

function tail(text: string): string {
  return text.length <= OUTPUT_QUOTED_CHARS ? text : `…${text.slice(-OUTPUT_QUOTED_CHARS)}`;
}

/**
 * Spawns a `deno run ...` task from deno.json with its exact permission flags (so the tests
 * prove those flags suffice), with `args` appended, from the project root.
 */
export function spawnTask(task: string, args: string[], options: SpawnOptions = {}): Peer {
  return spawnPeer(Deno.execPath(), [...denoArgs(task), ...args], options);
}

/** A task's words after `deno`, to run with this very Deno (`Deno.execPath()`). */
function denoArgs(task: string): string[] {
  const [deno, ...args] = taskCommand(task);
  if (deno !== "deno") throw new Error(`task ${task} does not start with "deno": ${deno}`);
  return args;
}

/**
 * The words of a deno.json task (split on spaces; our tasks have no quoting).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskCommand } from "./processes.ts";
 * const [deno, run, ...rest] = taskCommand("responder");
 * assert.deepEqual([deno, run, rest.at(-1)], ["deno", "run", "responder.ts"]);
 * ```
 */
export function taskCommand(task: string): string[] {
  const tasks = denoJson.tasks as Record<string, string>;
  const command = tasks[task];
  if (command === undefined) throw new Error(`no task "${task}" in deno.json`);
  if (/["'\\$&|;<>]/.test(command)) throw new Error(`task ${task} needs a shell: ${command}`);
  return command.trim().split(/\s+/);
}

/** What a finished run of {@linkcode runPeer} or {@linkcode runTask} left behind. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, start-up included. */
  ms: number;
}

/**
 * Runs `cmd args` ({@linkcode spawnPeer}) to completion; SIGKILLs it after `timeoutMs`
 * (default 60 s) so that a hang fails the test instead of stalling the suite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runPeer } from "./processes.ts";
 * const { code, stdout } = await runPeer("echo", ["hi"]);
 * assert.deepEqual([code, stdout], [0, "hi\n"]);
 * ```
 */
export async function runPeer(
  cmd: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const started = performance.now();
  const run = spawnPeer(cmd, args, options);
  const timer = setTimeout(() => run.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const { code } = await run.status;
  clearTimeout(timer);
  return {
    code,
    stdout: run.stdoutText(),
    stderr: run.stderrText(),
    ms: performance.now() - started,
  };
}

/**
 * Runs a deno.json task to completion, with its exact permission flags (as
 * {@linkcode spawnTask}); see {@linkcode runPeer} for the timeout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runTask } from "./processes.ts";
 * const { code, stdout } = await runTask("client", ["--version"]);
 * assert.equal(code, 0);
 * assert.match(stdout, /^secure_mqtt_client \d+\.\d+\.\d+\n$/);
 * ```
 */
export function runTask(
  task: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  return runPeer(Deno.execPath(), [...denoArgs(task), ...args], options);
}

/**
 * Starts our responder (the `responder` task) against a broker and waits until it has logged
 * its subscriptions, so that no request can race its SUBSCRIBE. `args` are appended (TLS,
 * credentials, `-v`).
 */
export async function startResponderTask(
  broker: { host: string; port: number },
  args: string[] = [],
  options: SpawnOptions = {},
): Promise<Peer> {
  const responder = spawnTask(
    "responder",
    ["--host", broker.host, "-p", String(broker.port), ...args],
    options,
  );
  try {
    await responder.waitForLine(/subscribed to/);
  } catch (error) {
    await responder[Symbol.asyncDispose]();
    throw error;
  }
  return responder;
}

/**
 * `promise`, or a failure naming `what` after {@linkcode DEFAULT_WAIT_MS}: a stalled connection
 * makes a test fail with a reason, instead of hanging until the runner gives up.
 */
export async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing within ${DEFAULT_WAIT_MS / 1000} s`)),
      DEFAULT_WAIT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
