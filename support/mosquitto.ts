/**
 * Test helper: spawn a private mosquitto broker on a free loopback port, for integration tests.
 *
 * Never relies on a system mosquitto service: every broker is our own child process with its
 * own config in a temp dir, no persistence, and its log captured (the last lines are quoted in
 * errors). Tests that need a broker skip when mosquitto is absent, except under `CI=true`,
 * where a missing broker must fail loudly rather than silently skip
 * ({@linkcode mosquittoSkipReason}).
 *
 * @module
 */

import { skipUnless } from "./environment.ts";

const SYSTEM_MOSQUITTO = "/usr/sbin/mosquitto";
const LOG_LINES_KEPT = 400;
const READY_DEADLINE_MS = 5000;
const PORT_ATTEMPTS = 3;
const RUNNING_LINE = /mosquitto version \S+ running/;

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function findMosquitto(): string | undefined {
  let pathVar: string | undefined;
  try {
    pathVar = Deno.env.get("PATH");
  } catch {
    pathVar = undefined; // no env permission: fall back to the Debian location
  }
  for (const dir of (pathVar ?? "").split(":")) {
    if (dir === "") continue;
    const candidate = `${dir}/mosquitto`;
    if (isExecutableFile(candidate)) return candidate;
  }
  // Debian installs the broker in /usr/sbin, which is not on a non-root user's PATH.
  return isExecutableFile(SYSTEM_MOSQUITTO) ? SYSTEM_MOSQUITTO : undefined;
}

/** Absolute path of the mosquitto binary (PATH first, then /usr/sbin/mosquitto), or undefined. */
export const MOSQUITTO_PATH: string | undefined = findMosquitto();

/**
 * Why tests that need mosquitto must be skipped, or undefined when they must run
 * ({@linkcode skipUnless}: under `CI=true` a missing mosquitto fails them, in
 * {@linkcode startMosquitto}).
 */
export function mosquittoSkipReason(): string | undefined {
  return skipUnless(
    "mosquitto",
    () =>
      MOSQUITTO_PATH === undefined
        ? `mosquitto not found on PATH or at ${SYSTEM_MOSQUITTO} (apt-get install mosquitto)`
        : undefined,
  );
}

/**
 * A running private broker. `await using broker = await startMosquitto()` stops it at the end
 * of the scope; `restart()` keeps its port and drops its clients.
 */
export interface Broker extends AsyncDisposable {
  /** Always "127.0.0.1". */
  host: string;
  /** The main listener's port. */
  port: number;
  /** SIGTERM, wait for exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Stop, then start again with the same config on the same port. */
  restart(): Promise<void>;
  /** The last lines mosquitto logged (for assertions and debugging). */
  log(): string;
}

/** Options for {@link startMosquitto}. */
export interface StartMosquittoOptions {
  /** Port for the main listener; default {@link freePort}(). */
  port?: number;
  /**
   * Extra mosquitto.conf lines appended after the main listener's block, e.g. another
   * `listener` block or `password_file PATH`. If they mention `allow_anonymous`, ours
   * (`allow_anonymous true`) is left out.
   */
  config?: string;
  /**
   * Lines that belong to the main listener (placed right after its `listener` line), e.g.
   * `cafile`/`certfile`/`keyfile` to make it a TLS listener.
   */
  listenerConfig?: string;
  /**
   * User names and their passwords: the broker then refuses anonymous clients and anyone not
   * in this list (a `password_file` made with `mosquitto_passwd`, in the broker's temp dir).
   */
  users?: Record<string, string>;
}

/**
 * A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). Racy by
 * nature, but good enough for tests: a broker that then cannot bind fails with its log.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freePort } from "./mosquitto.ts";
 * const closedPort = freePort(); // nothing listens there
 * await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: closedPort }));
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}

/** Writes a mosquitto password file for `users` (`mosquitto_passwd -b`, one call per user). */
async function writePasswordFile(file: string, users: Record<string, string>): Promise<void> {
  let create = true;
  for (const [user, password] of Object.entries(users)) {
    const out = await new Deno.Command("mosquitto_passwd", {
      args: ["-b", ...(create ? ["-c"] : []), file, user, password],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`mosquitto_passwd failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    create = false;
  }
}

function buildConfig(port: number, options: StartMosquittoOptions, passwordFile?: string): string {
  const extra = (passwordFile ? `allow_anonymous false\npassword_file ${passwordFile}\n` : "") +
    (options.config ?? "");
  const lines = [
    "# written by support/mosquitto.ts",
    "persistence false",
    "log_dest stderr",
    "log_type all",
    "log_timestamp false",
  ];
  // Run as root (CI is root), mosquitto 2 drops to user "mosquitto", which then cannot read
  // password or key files in our 0700 temp dirs. Stay the user we are.
  if (Deno.uid() === 0) lines.push("user root");
  if (!/^\s*allow_anonymous\b/m.test(extra)) lines.push("allow_anonymous true");
  lines.push(`listener ${port} 127.0.0.1`);
  if (options.listenerConfig) lines.push(options.listenerConfig);
  if (extra) lines.push(extra);
  return lines.join("\n") + "\n";
}

async function canConnect(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

class MosquittoProcess {
  #child: Deno.ChildProcess;
  #status: Promise<Deno.CommandStatus>;
  #exited = false;
  #pump: Promise<void>;
  #lines: string[];
  #running = false;

  constructor(confPath: string, lines: string[]) {
    this.#lines = lines;
    this.#child = new Deno.Command(MOSQUITTO_PATH!, {
      args: ["-c", confPath],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#status = this.#child.status.then((status) => {
      this.#exited = true;
      return status;
    });
    this.#pump = this.#collect(this.#child.stderr);
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** True once mosquitto logged that it is running (all listeners bound). */
  get running(): boolean {
    return this.#running;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (partial + text).split("\n");
        partial = parts.pop()!;
        if (!this.#running && parts.some((line) => RUNNING_LINE.test(line))) this.#running = true;
        this.#lines.push(...parts);
        if (this.#lines.length > LOG_LINES_KEPT) {
          this.#lines.splice(0, this.#lines.length - LOG_LINES_KEPT);
        }
      }
    } catch {
      // The pipe breaking just ends the log.
    }
    if (partial) this.#lines.push(partial);
  }

  /** Resolves with the exit status once the process is gone and its log fully read. */
  async wait(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await this.#pump;
    return status;
  }

  async terminate(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Already gone between the check and the kill.
      }
    }
    await this.wait();
  }
}

/**
 * Start a private mosquitto on 127.0.0.1 and wait until its port accepts TCP connections.
 * Fails (with the broker's log) if mosquitto is missing, exits early, or is not ready within
 * about 5 s. `await using broker = await startMosquitto({ users: { alice: "pw" } })` is a
 * broker that takes only alice.
 */
export async function startMosquitto(options: StartMosquittoOptions = {}): Promise<Broker> {
  if (MOSQUITTO_PATH === undefined) {
    throw new Error(`mosquitto not found on PATH or at ${SYSTEM_MOSQUITTO}`);
  }
  const host = "127.0.0.1";
  let port = options.port ?? freePort();
  const dir = await Deno.makeTempDir({ prefix: "mosquitto-test-" });
  const confPath = `${dir}/mosquitto.conf`;
  const lines: string[] = [];
  let proc: MosquittoProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    lines.length = 0;
    const current = new MosquittoProcess(confPath, lines);
    proc = current;
    const deadline = Date.now() + READY_DEADLINE_MS;
    let backoffMs = 5;
    // Poll a condition (port accepts), bounded by a deadline; not a sleep for synchronisation.
    while (true) {
      if (current.exited) {
        const status = await current.wait();
        throw new Error(
          `mosquitto exited with code ${status.code} before listening on ${host}:${port}:\n` +
            lines.join("\n"),
        );
      }
      // The port accepting is not enough on its own: another process may hold it while ours
      // is about to die of "Address already in use". mosquitto logs "... running" only after
      // all its listeners are bound.
      if (current.running && await canConnect(host, port)) {
        if (!current.exited) return;
        continue; // died meanwhile: reported with its log above
      }
      if (Date.now() >= deadline) {
        await current.terminate();
        throw new Error(
          `mosquitto did not listen on ${host}:${port} within ${READY_DEADLINE_MS} ms:\n` +
            lines.join("\n"),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 100);
    }
  };

  const halt = async (): Promise<void> => {
    const current = proc;
    proc = undefined;
    if (current) await current.terminate();
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await halt();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    let passwordFile: string | undefined;
    if (options.users !== undefined) {
      passwordFile = `${dir}/passwd`;
      await writePasswordFile(passwordFile, options.users);
    }
    // A port from freePort() may be taken by another process before mosquitto binds it (tests
    // run in parallel, and every outgoing connection takes a port from the same range): then
    // another free port is tried, a few times.
    for (let attempt = 1;; attempt++) {
      await Deno.writeTextFile(confPath, buildConfig(port, options, passwordFile));
      try {
        await launch();
        break;
      } catch (error) {
        const taken = /Address already in use/.test(lines.join("\n"));
        if (options.port !== undefined || !taken || attempt === PORT_ATTEMPTS) throw error;
        port = freePort();
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    host,
    port,
    stop,
    async restart() {
      if (stopped) throw new Error("broker already stopped");
      await halt();
      try {
        await launch();
      } catch (error) {
        await stop();
        throw error;
      }
    },
    log: () => lines.join("\n"),
    [Symbol.asyncDispose]: stop,
  };
}
