/**
 * check.ts, the `check` task as a user runs it: help, usage errors (exit 2), the table and the
 * exit status of a run, `--json`, `--junit FILE`, and that no process it started outlives it,
 * whether the program hangs or the checker itself is interrupted.
 */

import assert from "node:assert/strict";
import { ROOT, runTask, spawnTask } from "../../support/processes.ts";
import { PYTHON, pythonPeersSkipReason } from "../../support/python.ts";

const needsPython = pythonPeersSkipReason() !== undefined;
const buggy = (...args: string[]) => [PYTHON, `${ROOT}/tests/peers/buggy_client.py`, ...args];

/** Whether process `pid` has exited (gone, or a zombie nobody reaped yet). */
function hasExited(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

Deno.test("--help on stdout, exit 0; --list names every case", async () => {
  const help = await runTask("check", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: secure_mqtt_check client +\[options\] -- COMMAND/);
  assert.equal(help.stderr, "");
  const list = await runTask("check", ["client", "--list"]);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^client\.kx\.zero-lead +required +quick +a shared secret/m);
  assert.match(list.stdout, /^client\.silent +advisory +a silent responder/m);
});

Deno.test("usage errors: exit 2, one reason line and the usage", async () => {
  for (
    const [args, reason] of [
      [["client"], /client mode needs the client's command after --/],
      [["responder", "-p", "x"], /invalid port 'x'/],
      [
        ["client", "--", "/nonexistent/secure_mqtt_client"],
        /cannot run \/nonexistent\/secure_mqtt_client: not found/,
      ],
    ] as const
  ) {
    const run = await runTask("check", [...args]);
    assert.equal(run.code, 2, `${args}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split("\n");
    assert.match(lines[0], /^secure_mqtt_check: error: /);
    assert.match(lines[0], reason);
    assert.match(lines[1], /^usage: secure_mqtt_check client/);
  }
});

Deno.test({
  name: "a failing required case: its row in the table, the summary line, JUnit, exit 1",
  ignore: needsPython,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "check-junit-" });
    try {
      const run = await runTask("check", [
        "client",
        "--only",
        "client.mqtt.*",
        "--junit",
        `${dir}/report.xml`,
        "--",
        ...buggy("--bug", "qos0"),
      ]);
      assert.equal(run.code, 1, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^secure_mqtt_check client: .*buggy_client\.py --bug qos0$/);
      assert.match(run.stdout, /^PASS +client\.mqtt\.client-id +required /m);
      assert.match(
        run.stdout,
        /^FAIL +client\.mqtt\.qos +required +expected QoS 1 on every SUBSCRIBE, got \S+ subscribed at QoS 0$/m,
      );
      assert.match(lines.at(-1)!, /^3 cases: 2 passed, 1 failed \(required\), .*: FAIL/);
      const xml = await Deno.readTextFile(`${dir}/report.xml`);
      assert.match(xml, /<testsuite name="secure_mqtt_check client" tests="3" failures="1"/);
      assert.match(
        xml,
        /<testcase classname="client.mqtt" name="client.mqtt.qos" [^>]*>[\s\S]*?<failure /,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "--json: the report alone on stdout, exit 0 when every required case passes",
  ignore: needsPython,
  async fn() {
    const run = await runTask("check", [
      "client",
      "--json",
      "--only",
      "client.action.uppercase",
      "--",
      ...buggy(),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.tool, "secure_mqtt_check");
    assert.deepEqual(report.summary, {
      cases: 1,
      passed: 1,
      requiredFailed: 0,
      advisoryFailed: 0,
      skipped: 0,
    });
    assert.equal(report.results[0].details.runs[0].code, 0);
  },
});

/** A client that ignores SIGTERM and SIGINT, forks, tells the test it is up, and never ends. */
async function hangingClient(dir: string, port: number): Promise<string> {
  const script = `${dir}/hang.sh`;
  await Deno.writeTextFile(
    script,
    `trap "" TERM INT\nsleep 300 &\necho "$$ $!" > ${dir}/pids\n` +
      `exec 3<>/dev/tcp/127.0.0.1/${port}\nwait\n`,
  );
  return script;
}

function pidsIn(dir: string): number[] {
  return Deno.readTextFileSync(`${dir}/pids`).trim().split(" ").map(Number);
}

Deno.test({
  name: "a client that hangs, ignores SIGTERM and forks: reported as hanging, and ended",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "check-hang-" });
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const script = await hangingClient(dir, listener.addr.port);
      const checker = spawnTask("check", [
        "client",
        "--only",
        "client.silent",
        "--deadline",
        "1",
        "--",
        "bash",
        script,
      ]);
      using _up = await listener.accept();
      const status = await checker.status;
      assert.equal(status.code, 0, "an advisory case: the exit status stays 0");
      assert.match(
        checker.stdoutText(),
        /^WARN +client\.silent +advisory +expected the client to end by itself, got still running after [\d.]+ s: it hangs$/m,
      );
      for (const pid of pidsIn(dir)) assert.ok(hasExited(pid), `${pid} outlived the checker`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "SIGINT to the checker: it ends the program it runs (and its children), then exits 1",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "check-int-" });
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const script = await hangingClient(dir, listener.addr.port);
      const checker = spawnTask("check", [
        "client",
        "--only",
        "client.silent",
        "--",
        "bash",
        script,
      ]);
      using _up = await listener.accept();
      checker.kill("SIGINT");
      const status = await checker.status;
      assert.equal(status.code, 1);
      assert.match(checker.stderrText(), /interrupted: 0 of 1 cases finished/);
      for (const pid of pidsIn(dir)) assert.ok(hasExited(pid), `${pid} outlived the checker`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
