/**
 * lib/check/process.ts, on real processes: a program that ignores SIGTERM and forks is ended
 * with its children; one that prints megabytes is capped, not buffered; one that cannot start
 * says why; one that escapes its process group is reported as left behind.
 */

import assert from "node:assert/strict";
import {
  Program,
  ProgramStartError,
  runProgram,
  stopAllPrograms,
} from "../../../lib/check/process.ts";

/** Whether process `pid` is gone or a zombie (it has exited; nobody reaped it yet). */
function hasExited(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

const onLinux = Deno.build.os === "linux";

/** Resolves once `program`'s stdout matches `pattern`. */
function untilOutput(program: Program, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!pattern.test(program.stdout())) return;
      remove();
      resolve();
    };
    const remove = program.onChange(check);
    check();
  });
}

Deno.test({
  name: "a program that ignores SIGTERM and forks: it and its child are ended",
  ignore: !onLinux,
  async fn() {
    // The child inherits the pipes: once they close, every process holding them has exited.
    const script = 'trap "" TERM; sleep 300 & echo "child $!"; while :; do sleep 1; done';
    const program = Program.start(["sh", "-c", script]);
    await untilOutput(program, /^child \d+\n$/); // its trap is set
    await program.stop("deadline", 200);
    const run = program.result();
    assert.equal(run.killed, "deadline");
    assert.equal(run.code, undefined);
    assert.equal(run.signal, "SIGKILL", "SIGTERM was ignored, SIGKILL was not");
    assert.equal(run.leftBehind, undefined);
    const child = Number(/^child (\d+)$/m.exec(run.stdout)?.[1]);
    assert.ok(hasExited(child), `the forked child ${child} still runs`);
  },
});

Deno.test("runProgram ends a program at its deadline", async () => {
  const run = await runProgram(["sleep", "300"], { deadlineMs: 100 });
  assert.equal(run.killed, "deadline");
  assert.equal(run.signal, "SIGTERM");
});

Deno.test({
  name: "a program that prints megabytes: its head and tail are kept, the rest counted",
  ignore: !onLinux,
  async fn() {
    const run = await runProgram(
      ["sh", "-c", "echo first; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo last"],
      { deadlineMs: 60_000 },
    );
    assert.equal(run.code, 0);
    assert.equal(run.stdoutBytes, 6 + 20_000_000 + 1 + 5);
    assert.ok(run.stdout.length < 100_000, `${run.stdout.length} characters kept`);
    assert.ok(run.stdout.startsWith("first\nxxx"));
    assert.ok(run.stdout.endsWith("xxx\nlast\n"));
    assert.match(run.stdout, /\[… \d+ bytes not kept …\]/);
  },
});

Deno.test("a program that exits by itself: its status and output, untouched", async () => {
  const run = await runProgram(["sh", "-c", "echo out; echo err >&2; exit 3"], {
    deadlineMs: 60_000,
  });
  assert.deepEqual(
    {
      code: run.code,
      signal: run.signal,
      killed: run.killed,
      stdout: run.stdout,
      stderr: run.stderr,
    },
    { code: 3, signal: undefined, killed: undefined, stdout: "out\n", stderr: "err\n" },
  );
});

Deno.test("the case's signal ends a program at once", async () => {
  const stop = new AbortController();
  const running = runProgram(["sh", "-c", "echo ready; exec sleep 300"], {
    deadlineMs: 60_000,
    signal: stop.signal,
  });
  stop.abort();
  const run = await running;
  assert.equal(run.killed, "case");
});

Deno.test("a program that cannot start: one line saying why", () => {
  assert.throws(
    () => Program.start(["/nonexistent/secure_mqtt_client"]),
    (error) =>
      error instanceof ProgramStartError &&
      error.message === "cannot run /nonexistent/secure_mqtt_client: not found",
  );
});

Deno.test({
  name: "stopAllPrograms ends what is still running (the checker was interrupted)",
  ignore: !onLinux,
  async fn() {
    const program = Program.start([
      "sh",
      "-c",
      'trap "" TERM INT; echo ready; while :; do sleep 1; done',
    ]);
    await untilOutput(program, /^ready\n$/); // its trap is set
    await stopAllPrograms();
    assert.ok(program.ended);
    assert.equal(program.result().signal, "SIGKILL");
  },
});

Deno.test({
  name: "a child that leaves the process group is reported as left behind",
  ignore: !onLinux,
  async fn() {
    // setsid puts the child in a session of its own, out of reach of the group's kill.
    const script = "setsid sh -c 'echo escaped $$; exec sleep 300' & wait";
    const run = await runProgram(["sh", "-c", script], { deadlineMs: 500 });
    const escaped = Number(/escaped (\d+)/.exec(run.stdout)?.[1]);
    try {
      assert.equal(run.leftBehind, true);
    } finally {
      if (escaped > 0) Deno.kill(escaped, "SIGKILL");
    }
  },
});
