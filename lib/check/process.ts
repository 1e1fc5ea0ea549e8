/**
 * The programs the checker runs (a client per case, or the responder under test), each in a
 * process group of its own, so that ending it ends whatever it started too. Whatever the
 * program does, the checker stays in charge: output beyond a cap is counted and dropped, a
 * program that ignores SIGTERM gets SIGKILL, children it forked are killed with it, and every
 * program still alive when the checker is told to stop is ended by {@linkcode stopAllPrograms}.
 *
 * @module
 */

/** How much of each stream is kept: the first bytes (where usage and answers are)... */
const HEAD_BYTES = 64 * 1024;
/** ...and the last ones (where a traceback ends). */
const TAIL_BYTES = 16 * 1024;
/** How long a program gets between SIGTERM and SIGKILL. */
const DEFAULT_GRACE_MS = 1000;
/** How long its pipes may stay open after its group is gone (a child that left the group). */
const PIPE_DRAIN_MS = 1000;

/** The program could not be started at all (not found, not executable). */
export class ProgramStartError extends Error {
  override name = "ProgramStartError";
}

/** What a finished program left behind. */
export interface ProgramResult {
  /** The command line it ran with. */
  command: readonly string[];
  /** Its exit code, or `undefined` if a signal ended it. */
  code: number | undefined;
  /** The signal that ended it, if one did. */
  signal: string | undefined;
  /** Its output, capped (head and tail kept), decoded as UTF-8 with replacement characters. */
  stdout: string;
  stderr: string;
  /** The full sizes of its output, capped or not. */
  stdoutBytes: number;
  stderrBytes: number;
  /** Wall time from spawn to exit. */
  ms: number;
  /** Set when the checker ended it: its deadline passed, or the case needed no more of it. */
  killed?: "deadline" | "case";
  /**
   * True when, after its process group was killed, something still held its output open: a
   * process that left the group (`setsid`), which the checker cannot reach by the group's id.
   */
  leftBehind?: boolean;
}

/** A stream's bytes as kept: the first {@linkcode HEAD_BYTES}, and the last {@linkcode TAIL_BYTES}. */
class CappedOutput {
  readonly #head = new Uint8Array(HEAD_BYTES);
  #headLength = 0;
  #tail = new Uint8Array(0);
  total = 0;

  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    const part = chunk.subarray(0, HEAD_BYTES - this.#headLength);
    this.#head.set(part, this.#headLength);
    this.#headLength += part.length;
    const rest = chunk.subarray(part.length);
    if (rest.length === 0) return;
    const keep = Math.min(TAIL_BYTES, this.#tail.length + rest.length);
    const tail = new Uint8Array(keep);
    const fromRest = Math.min(rest.length, keep);
    tail.set(this.#tail.subarray(this.#tail.length - (keep - fromRest)));
    tail.set(rest.subarray(rest.length - fromRest), keep - fromRest);
    this.#tail = tail;
  }

  text(): string {
    const decoder = new TextDecoder();
    const head = decoder.decode(this.#head.subarray(0, this.#headLength));
    if (this.#tail.length === 0) return head;
    const skipped = this.total - this.#headLength - this.#tail.length;
    const gap = skipped > 0 ? `\n[… ${skipped} bytes not kept …]\n` : "";
    return head + gap + decoder.decode(this.#tail);
  }
}

const live = new Set<Program>();

/** A program under test, running in its own process group. */
export class Program implements AsyncDisposable {
  readonly command: readonly string[];
  readonly pid: number;
  /** Resolves when the program itself (the group's leader) has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #out = new CappedOutput();
  readonly #err = new CappedOutput();
  readonly #pumps: Promise<void>;
  readonly #started = performance.now();
  readonly #listeners = new Set<() => void>();
  #endedAt: number | undefined;
  #killed: "deadline" | "case" | undefined;
  #leftBehind = false;
  readonly #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #status: Deno.CommandStatus | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(command: readonly string[], child: Deno.ChildProcess) {
    this.command = command;
    this.#child = child;
    this.pid = child.pid;
    this.#pumps = Promise.all([
      this.#pump(child.stdout, this.#out),
      this.#pump(child.stderr, this.#err),
    ]).then(() => {});
    this.exited = child.status.then((status) => {
      this.#status = status;
      this.#endedAt = performance.now();
      this.#notify();
      return status;
    });
  }

  /**
   * Starts `command` (`[program, ...args]`) with stdin from /dev/null, in a new session (its
   * own process group), in `cwd` (default: ours). Throws {@linkcode ProgramStartError}.
   */
  static start(command: readonly string[], options: { cwd?: string } = {}): Program {
    const [program, ...args] = command;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args,
        cwd: options.cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // setsid(): the program leads a process group of its own, which kill(-pid) ends whole.
        detached: true,
      }).spawn();
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "not found"
        : error instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : error instanceof Error
        ? error.message.split("\n")[0]
        : String(error);
      throw new ProgramStartError(`cannot run ${program}: ${why}`, { cause: error });
    }
    const started = new Program(command, child);
    live.add(started);
    return started;
  }

  /** True once the program has exited. */
  get ended(): boolean {
    return this.#status !== undefined;
  }

  /** Everything kept of its stdout so far. */
  stdout(): string {
    return this.#out.text();
  }

  /** Everything kept of its stderr so far. */
  stderr(): string {
    return this.#err.text();
  }

  /** Calls `listener` whenever output arrives or the program exits; returns the remover. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Ends the program and its process group: SIGTERM, then SIGKILL after `graceMs`; then
   * SIGKILL to the group again, for children that outlived their parent. Resolves once the
   * program has exited and its pipes are closed (or given up on). Safe to call more than once.
   */
  stop(reason?: "deadline" | "case", graceMs = DEFAULT_GRACE_MS): Promise<void> {
    if (!this.ended && reason !== undefined) this.#killed ??= reason;
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    if (!this.ended) {
      this.#signal("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
      await Promise.race([this.exited, graceOver]);
      clearTimeout(timer);
    }
    this.#signal("SIGKILL");
    await this.exited;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), PIPE_DRAIN_MS);
    });
    const closed = await Promise.race([this.#pumps.then(() => true), drained]);
    clearTimeout(timer);
    if (!closed) {
      // Something outside the group still holds the pipes: stop reading them.
      this.#leftBehind = true;
      await Promise.allSettled(this.#readers.map((reader) => reader.cancel()));
      await this.#pumps;
    }
    live.delete(this);
  }

  /** What it left behind; call after {@linkcode stop}. */
  result(): ProgramResult {
    const status = this.#status;
    return {
      command: this.command,
      code: status === undefined || status.signal !== null ? undefined : status.code,
      signal: status?.signal ?? undefined,
      stdout: this.#out.text(),
      stderr: this.#err.text(),
      stdoutBytes: this.#out.total,
      stderrBytes: this.#err.total,
      ms: (this.#endedAt ?? performance.now()) - this.#started,
      killed: this.#killed,
      ...(this.#leftBehind ? { leftBehind: true } : {}),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #signal(signal: Deno.Signal): void {
    try {
      Deno.kill(-this.pid, signal);
    } catch {
      // The group is gone already (ESRCH), or this platform has no process groups.
      if (!this.ended) {
        try {
          this.#child.kill(signal);
        } catch {
          // Exited in between.
        }
      }
    }
  }

  async #pump(stream: ReadableStream<Uint8Array>, into: CappedOutput): Promise<void> {
    const reader = stream.getReader();
    this.#readers.push(reader);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        into.push(value);
        this.#notify();
      }
    } catch {
      // A cancelled or broken pipe just ends the output.
    }
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** Options of {@linkcode runProgram}. */
export interface RunOptions {
  /** The longest the program may run; then it is ended and marked `killed: "deadline"`. */
  deadlineMs: number;
  /** Aborting ends the program, marked `killed: "case"` (the case has seen enough). */
  signal?: AbortSignal;
  cwd?: string;
}

/**
 * Runs `command` to its end, or until its deadline or `signal`, and returns what it left.
 * Throws {@linkcode ProgramStartError} when it cannot start.
 */
export async function runProgram(
  command: readonly string[],
  options: RunOptions,
): Promise<ProgramResult> {
  const program = Program.start(command, { cwd: options.cwd });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), options.deadlineMs);
  });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<"case">((resolve) => {
    onAbort = () => resolve("case");
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const how = await Promise.race([program.exited.then(() => undefined), deadline, aborted]);
    await program.stop(how);
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
    await program.stop();
  }
  return program.result();
}

/** Ends every program still running (the checker was interrupted), and waits for them. */
export async function stopAllPrograms(): Promise<void> {
  await Promise.all([...live].map((program) => program.stop("case", 200)));
}
