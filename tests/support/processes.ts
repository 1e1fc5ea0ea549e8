/**
 * Test helper: spawn a process (our entry points, the Python reference peers, mosquitto_pub),
 * collect its stdout and stderr as lines, and wait for a line that matches, instead of
 * sleeping. A wait fails fast, quoting the output, when the process exits without the line.
 *
 * @example
 * ```ts
 * import { spawnTask } from "./support/processes.ts";
 *
 * await using responder = spawnTask("responder", ["-p", "1884"]);
 * await responder.waitForLine(/subscribed to/, { stream: "stderr" });
 * responder.kill("SIGTERM");
 * console.log((await responder.status).code);
 * ```
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** Absolute path of the project root (where deno.json is), without a trailing slash. */
export const ROOT: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The Python that has pyca/cryptography and paho-mqtt (the one on PATH may not). */
export const PYTHON = "/usr/bin/python3";

const DEFAULT_WAIT_MS = 15_000;
const OUTPUT_QUOTED_CHARS = 3000;

/** Which output {@linkcode Peer.waitForLine} reads. */
export type StreamName = "stdout" | "stderr";

/** Options for {@linkcode spawnPeer}. */
export interface SpawnOptions {
  /** Working directory; default {@linkcode ROOT}. */
  cwd?: string;
  /** Extra environment variables (added to the inherited environment). */
  env?: Record<string, string>;
  /** Text written to stdin, which is then closed; default: stdin is /dev/null. */
  stdin?: string;
}

/** Options for {@linkcode Peer.waitForLine}. */
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
 *
 * @example
 * ```ts
 * import { spawnPeer } from "./support/processes.ts";
 * await using echo = spawnPeer("echo", ["hi"]);
 * await echo.waitForLine(/^hi$/, { stream: "stdout" });
 * ```
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

/**
 * Spawns `cmd args` with piped stdout/stderr and returns a {@linkcode Peer}.
 *
 * @example
 * ```ts
 * import { PYTHON, spawnPeer } from "./support/processes.ts";
 * await using py = spawnPeer(PYTHON, ["tests/peers/responder.py", "--port", "1884"]);
 * await py.waitForLine(/^ready$/, { stream: "stdout" });
 * ```
 */
export function spawnPeer(cmd: string, args: string[], options: SpawnOptions = {}): Peer {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    // A process that exits without reading stdin breaks the pipe: not our failure to report.
    writer.write(new TextEncoder().encode(options.stdin)).then(() => writer.close()).catch(() => {});
  }

  const logs: Record<StreamName, OutputLog> = { stdout: new OutputLog(), stderr: new OutputLog() };
  const waiters = new Set<Waiter>();
  const notify = () => {
    for (const w of [...waiters]) if (w.check()) waiters.delete(w);
  };
  const pump = async (stream: ReadableStream<Uint8Array>, log: OutputLog) => {
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
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
            new Error(`no line matching ${pattern} on ${stream} within ${timeoutMs} ms\n${describe()}`),
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

function tail(text: string): string {
  return text.length <= OUTPUT_QUOTED_CHARS ? text : `…${text.slice(-OUTPUT_QUOTED_CHARS)}`;
}

/**
 * Spawns a `deno run ...` task from deno.json with its exact permission flags (so the tests
 * prove those flags suffice), with `args` appended, from the project root.
 *
 * @example
 * ```ts
 * import { spawnTask } from "./support/processes.ts";
 * await using client = spawnTask("client", ["-p", "1884", "alice", "reverse", "abc"]);
 * console.log((await client.status).code);
 * ```
 */
export function spawnTask(task: string, args: string[], options: SpawnOptions = {}): Peer {
  const [deno, ...taskArgs] = taskCommand(task);
  if (deno !== "deno") throw new Error(`task ${task} does not start with "deno": ${deno}`);
  return spawnPeer(Deno.execPath(), [...taskArgs, ...args], options);
}

/**
 * The words of a deno.json task (split on spaces; our tasks have no quoting).
 *
 * @example
 * ```ts
 * import { taskCommand } from "./support/processes.ts";
 * taskCommand("responder"); // ["deno", "run", "--allow-net", ..., "responder.ts"]
 * ```
 */
export function taskCommand(task: string): string[] {
  const tasks = denoJson.tasks as Record<string, string>;
  const command = tasks[task];
  if (command === undefined) throw new Error(`no task "${task}" in deno.json`);
  if (/["'\\$&|;<>]/.test(command)) throw new Error(`task ${task} needs a shell: ${command}`);
  return command.trim().split(/\s+/);
}

let pythonChecked: string | undefined | null = null;

/**
 * Why tests that need the Python reference peers must be skipped (no /usr/bin/python3 with
 * pyca/cryptography and paho-mqtt), or `undefined` when they can run. Under `CI=true` it is
 * always `undefined`: there a missing peer must fail the tests, not skip them. Prints the
 * reason once.
 *
 * @example
 * ```ts
 * import { pythonSkipReason } from "./support/processes.ts";
 * Deno.test({ name: "interop", ignore: pythonSkipReason() !== undefined, fn() {} });
 * ```
 */
export function pythonSkipReason(): string | undefined {
  if (pythonChecked !== null) return pythonChecked;
  let ci = false;
  try {
    ci = Deno.env.get("CI") === "true";
  } catch {
    ci = false;
  }
  let reason: string | undefined;
  try {
    const out = new Deno.Command(PYTHON, {
      args: ["-c", "import cryptography, paho.mqtt.client"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      const detail = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
      reason = `${PYTHON} lacks pyca/cryptography or paho-mqtt (${detail}); ` +
        "apt-get install python3-cryptography python3-paho-mqtt";
    }
  } catch {
    reason = `${PYTHON} not found (apt-get install python3-cryptography python3-paho-mqtt)`;
  }
  pythonChecked = ci ? undefined : reason;
  if (pythonChecked !== undefined) {
    console.error(`note: ${pythonChecked}; skipping the tests that need the Python peers`);
  }
  return pythonChecked;
}
