/**
 * `deno task compile` (scripts/compile.ts): the compile graph, its one-line failures, and, where
 * a real denort is at hand, the standalone binaries themselves.
 *
 * Three tiers, because CI has no internet and there is no denort on npm:
 *
 * 1. Always: the compile step completes with `DENORT_BIN` pointed at the `deno` CLI itself. That
 *    proves the module graph (type check, embedded dhparam4096.pem and deno.json, baked flags,
 *    both entry points), but the output is NOT a working app: the deno CLI ignores the payload
 *    `deno compile` appends (only denort looks for it). So it is never run.
 * 2. Always: every way the base binary can be missing gives one line on stderr and exit 1.
 * 3. Only with a real denort (`DENORT_BIN` set to one, or the download works): the binaries are
 *    run like the client tests run main.ts, from another working directory. Elsewhere these
 *    steps are skipped with a printed reason, even under CI=true (the one skip allowed there).
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { compileArgs, explainCompileFailure, taskParts } from "../../scripts/compile.ts";
import { freePort, mosquittoSkipReason, startMosquitto } from "../../support/mosquitto.ts";
import { runPeer, type RunResult, runTask, spawnPeer } from "../../support/processes.ts";
import { makeTlsFixture, opensslSkipReason } from "../../support/tls.ts";
import { assertErrorLine, assertUsageError } from "../../support/failures.ts";
import { CLIENT_USAGE } from "../../cli/client_options.ts";
import { RESPONDER_USAGE } from "../../cli/responder_options.ts";

const TARGET = Deno.build.target;
const BINARIES = ["secure_mqtt_client", "secure_mqtt_responder", "secure_mqtt_check"] as const;

/** The non-empty lines of a stderr. */
function ourLines(stderr: string): string[] {
  return stderr.trimEnd().split("\n").filter((line) => line !== "");
}

/**
 * Runs the `compile` task's command (its own permissions) with `args`. `env` entries set to
 * `undefined` are removed, so a DENORT_BIN in the caller's environment cannot leak in.
 */
function runCompile(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<RunResult> {
  const set = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
  const unset = Object.keys(env).filter((name) => env[name] === undefined);
  return runTask("compile", args, {
    env: Object.fromEntries(set),
    withoutEnv: ["DENORT_BIN", ...unset],
  });
}

/** Exactly one line on stderr, `compile: error: ...`, exit 1, no trace of a stack. */
const assertOneLineFailure = (run: RunResult, pattern: RegExp) =>
  assertErrorLine(run, "compile", pattern);

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "compile-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("compile graph: the three binaries build on DENORT_BIN=<deno CLI> (no app)", async () => {
  await withTempDir(async (dir) => {
    // The deno CLI stands in for denort so the step completes offline; the result would just
    // act as `deno` if run, so it is only inspected, never run.
    const run = await runCompile(["--output-dir", dir], { DENORT_BIN: Deno.execPath() });
    assert.equal(run.code, 0, `compile failed:\n${run.stderr}`);
    for (const name of BINARIES) {
      const info = await Deno.stat(`${dir}/${name}`);
      assert.ok(info.isFile && info.size > 1024 * 1024, `${name} is a sizeable file`);
      assert.ok((info.mode! & 0o111) !== 0, `${name} is executable`);
      assert.match(
        run.stderr,
        new RegExp(`compile: built ${dir}/${name} \\(\\d+ MiB, ${TARGET}\\)`),
      );
    }
    // deno compile lists what it embedded, once per binary: the DH group and deno.json (for
    // --version) must be in each, from the module graph (no --include needed).
    for (const file of ["dhparam4096.pem", "deno.json", "main.ts", "responder.ts", "check.ts"]) {
      assert.ok(run.stderr.includes(file), `${file} embedded:\n${run.stderr}`);
    }
    assert.equal(run.stderr.match(/dhparam4096\.pem/g)?.length, 3, "the PEM in every binary");
    assert.match(run.stderr, /warning: DENORT_BIN is the deno CLI, not denort/);
    console.error(`  (compile graph: the three binaries in ${(run.ms / 1000).toFixed(1)} s)`);
  });
});

Deno.test("no download and no DENORT_BIN: one line saying what is missing, exit 1", async () => {
  await withTempDir(async (dir) => {
    // Deterministic "no internet": an empty DENO_DIR (no cached denort) and a proxy on a port
    // where nothing listens, so the download fails at once, online or not. The npm packages
    // come from the real cache, as they would on a machine that ran the tests before.
    const info = await runPeer(Deno.execPath(), ["info", "--json"]);
    const { denoDir } = JSON.parse(info.stdout) as { denoDir: string };
    await Deno.mkdir(`${dir}/deno_dir`);
    await Deno.symlink(`${denoDir}/npm`, `${dir}/deno_dir/npm`);
    const proxy = `http://127.0.0.1:${freePort()}`;
    const run = await runCompile(["--output-dir", `${dir}/out`], {
      DENO_DIR: `${dir}/deno_dir`,
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      NO_PROXY: undefined,
      no_proxy: undefined,
    });
    const line = assertOneLineFailure(run, /cannot download the Deno runtime/);
    assert.ok(line.includes(`denort-${TARGET}.zip`), line);
    assert.ok(line.includes("set DENORT_BIN"), line);
    // deno compile may have made the directory, but no binary (nor a half-written one) is left.
    const left = await Array.fromAsync(Deno.readDir(`${dir}/out`), (e) => e.name).catch(() => []);
    assert.deepEqual(left, [], "nothing written");
  });
});

Deno.test("a DENORT_BIN that is missing, a directory or not executable: its own line", async () => {
  await withTempDir(async (dir) => {
    const notExecutable = `${dir}/denort-copy`;
    await Deno.writeFile(notExecutable, new Uint8Array([0x7f, 0x45, 0x4c, 0x46]), { mode: 0o644 });
    const cases: [string, RegExp][] = [
      [`${dir}/nowhere/denort`, /DENORT_BIN=.*nowhere\/denort: no such file/],
      [dir, /DENORT_BIN=.* is not a file/],
      [notExecutable, /DENORT_BIN=.*denort-copy is not executable/],
      ["", /DENORT_BIN= is empty/],
    ];
    for (const [value, pattern] of cases) {
      const run = await runCompile(["--output-dir", dir], { DENORT_BIN: value });
      assertOneLineFailure(run, pattern);
    }
  });
});

Deno.test("a DENORT_BIN that deno compile rejects (not a binary): one line, exit 1", async () => {
  await withTempDir(async (dir) => {
    const script = `${dir}/denort`;
    await Deno.writeTextFile(script, "#!/bin/sh\necho not a runtime\n", { mode: 0o755 });
    const run = await runCompile(["--output-dir", dir], { DENORT_BIN: script });
    assertOneLineFailure(run, /DENORT_BIN=.*denort cannot serve as the Deno runtime for .*ELF/);
  });
});

Deno.test("compile usage: --help; --target checked against known targets (exit 2)", async () => {
  const help = await runCompile(["--help"]);
  assert.equal(help.code, 0);
  for (const word of ["--target", "--output-dir", "DENORT_BIN", "x86_64-unknown-linux-gnu"]) {
    assert.ok(help.stdout.includes(word), `help mentions ${word}`);
  }
  const bad = await runCompile(["--target", "riscv64-unknown-linux-gnu"]);
  assertUsageError(bad, "compile", /^compile: error: unknown --target 'riscv64/);
  const stray = await runCompile(["main.ts"]);
  assertUsageError(stray, "compile", "unrecognized arguments: main.ts");
});

Deno.test("explainCompileFailure: base-binary failures become one line, others not", () => {
  const download = `Compile main.ts to secure_mqtt_client
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'x.tmp-1'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/...): client error (Connect)
    2: dns error
    3: failed to lookup address information: Name or service not known

Stack backtrace:
   0: <unknown>`;
  const line = explainCompileFailure(download, { target: "x86_64-unknown-linux-gnu" })!;
  assert.match(line, /^cannot download .*denort-x86_64-unknown-linux-gnu\.zip/);
  assert.match(line, /failed to lookup address information: Name or service not known;/);
  assert.doesNotMatch(line, /\n/);

  const elf = "error: Writing\n\nCaused by:\n    0: Writing binary bytes\n    1: Invalid object: " +
    "Not an ELF file\n";
  const denort = explainCompileFailure(elf, { target: "t", denortBin: "/x/denort" })!;
  assert.match(denort, /^DENORT_BIN=\/x\/denort cannot serve .*: Invalid object: Not an ELF file/);

  const typeError = "Check main.ts\nTS2322 [ERROR]: Type 'string' is not assignable\n" +
    "error: Type checking failed.";
  assert.equal(explainCompileFailure(typeError, { target: "t" }), undefined);
});

Deno.test("baked permissions: the tasks' own, the narrowest set that works, nothing else", () => {
  const target = "x86_64-unknown-linux-gnu";
  const expected = [
    "--allow-net",
    "--allow-read",
    "--allow-env=MQTT_PASSWORD",
    "--ignore-env=READABLE_STREAM,DEBUG,MQTTJS_SOCKS_PROXY,WS_NO_BUFFER_UTIL",
    "--no-prompt",
  ];
  // The sets are in deno.json; the binaries take them from there. The responder may also write,
  // for --new-identity FILE alone: it revokes that before it serves. And it may collect garbage
  // when it chooses (lib/mqtt_size_guard.ts, while it skips a packet over its limit).
  assert.deepEqual(taskParts("client"), { flags: expected, entry: "main.ts" });
  assert.deepEqual(taskParts("responder"), {
    flags: [
      "--v8-flags=--expose-gc",
      ...expected.slice(0, 2),
      "--allow-write",
      ...expected.slice(2),
    ],
    entry: "responder.ts",
  });
  // The checker runs the program under test, and writes --junit FILE; it reads no variable.
  assert.deepEqual(taskParts("check"), {
    flags: [
      "--allow-run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--ignore-env=READABLE_STREAM,DEBUG,MQTTJS_SOCKS_PROXY,WS_NO_BUFFER_UTIL",
      "--no-prompt",
    ],
    entry: "check.ts",
  });
  const args = compileArgs("client", "/out/secure_mqtt_client", { target });
  assert.deepEqual(args, [
    "compile",
    "--no-check",
    ...expected,
    "--target",
    target,
    "--output",
    "/out/secure_mqtt_client",
    "main.ts",
  ]);
  const scoped = compileArgs("client", "o", { target, readScope: "/etc/mqtt/ca.pem,/srv/ca" });
  assert.ok(scoped.includes("--allow-read=/etc/mqtt/ca.pem,/srv/ca"));
  assert.ok(!scoped.includes("--allow-read"), "the unscoped read is replaced, not kept");
});

// ---------------------------------------------------------------------------------------------
// Tier 3: the real artefacts, wherever a real denort is available.

/** Builds the real binaries into `dir`, or says why it cannot here. */
async function buildRealBinaries(dir: string): Promise<{ skip: string } | { ok: true }> {
  const denort = Deno.env.get("DENORT_BIN");
  if (denort !== undefined) {
    let same = false;
    try {
      same = Deno.realPathSync(denort) === Deno.realPathSync(Deno.execPath());
    } catch {
      same = false; // a bad path is the compile step's to report
    }
    if (same) {
      return { skip: "DENORT_BIN is the deno CLI, which compiles but does not make a working app" };
    }
  }
  const run = await runCompile(["--output-dir", dir], { DENORT_BIN: denort });
  if (run.code === 0) return { ok: true };
  const lines = ourLines(run.stderr);
  if (run.code === 1 && lines.length === 1 && /Deno runtime/.test(lines[0])) {
    return { skip: `no real denort here: ${lines[0]}` };
  }
  throw new Error(`deno task compile failed:\n${run.stderr}`);
}

/** Runs a binary to completion from `cwd`. */
function runBinary(
  path: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<RunResult> {
  return runPeer(path, args, options);
}

Deno.test({
  name: "compiled binaries (needs a real denort: DENORT_BIN or a working download)",
  sanitizeResources: false, // brokers and responders span steps
  sanitizeOps: false,
  async fn(t) {
    await withTempDir(async (dir) => {
      const bin = `${dir}/bin`;
      const elsewhere = `${dir}/cwd`; // run from a directory with no project files in it
      await Deno.mkdir(elsewhere);
      const built = await buildRealBinaries(bin);
      const brokerSkip = mosquittoSkipReason() ?? opensslSkipReason();
      const skip = "skip" in built ? built.skip : undefined;
      if (skip !== undefined) console.error(`note: skipping the compiled-binary steps: ${skip}`);
      const client = `${bin}/secure_mqtt_client`;
      const responder = `${bin}/secure_mqtt_responder`;
      const checker = `${bin}/secure_mqtt_check`;

      await t.step({
        name: "--help and --version (the version from deno.json) on each",
        ignore: skip !== undefined,
        async fn() {
          for (
            const [path, name] of [
              [client, BINARIES[0]],
              [responder, BINARIES[1]],
              [checker, BINARIES[2]],
            ]
          ) {
            const help = await runBinary(path, ["--help"], { cwd: elsewhere });
            assert.equal(help.code, 0, help.stderr);
            assert.match(help.stdout, new RegExp(`^usage: ${name} `));
            const version = await runBinary(path, ["--version"], { cwd: elsewhere });
            assert.equal(version.code, 0, version.stderr);
            assert.equal(version.stdout, `${name} ${denoJson.version}\n`);
            assert.equal(version.stderr, "");
          }
        },
      });

      await t.step({
        name: "usage errors exit 2 with one reason line and the usage line",
        ignore: skip !== undefined,
        async fn() {
          const cases: [string, string[], RegExp][] = [
            [client, ["alice"], /required: action, message/],
            [client, ["-p", "0", "alice", "uppercase", "x"], /argument -p\/--port/],
            [client, ["alice", "shout", "x"], /invalid choice 'shout'/],
            [responder, ["-p", "70000"], /argument -p\/--port/],
            [responder, ["--bogus"], /unrecognized option --bogus/],
          ];
          for (const [path, args, reason] of cases) {
            const run = await runBinary(path, args, { cwd: elsewhere });
            const [name, usage] = path === client
              ? [BINARIES[0], CLIENT_USAGE]
              : [BINARIES[1], RESPONDER_USAGE];
            assertUsageError(run, name, reason, usage);
          }
        },
      });

      await t.step({
        name: "a full exchange against mosquitto, binary client and binary responder",
        ignore: skip !== undefined || mosquittoSkipReason() !== undefined,
        async fn() {
          await using broker = await startMosquitto();
          const target = ["--host", "127.0.0.1", "-p", String(broker.port)];
          await using server = spawnPeer(responder, target, { cwd: elsewhere });
          await server.waitForLine(/subscribed to/);
          const run = await runBinary(client, [...target, "alice", "reverse", "stressed"], {
            cwd: elsewhere,
          });
          assert.equal(run.code, 0, run.stderr);
          assert.equal(run.stdout, "desserts\n");
          const down = await runBinary(client, ["-p", String(freePort()), "a", "uppercase", "x"], {
            cwd: elsewhere,
          });
          assertErrorLine(down, BINARIES[0], /^secure_mqtt_client: error: cannot connect to /);
        },
      });

      await t.step({
        name: "TLS with --cafile and a password: the baked read and env permissions suffice",
        ignore: skip !== undefined || brokerSkip !== undefined,
        async fn() {
          await using pki = await makeTlsFixture();
          await using broker = await startMosquitto({
            listenerConfig: pki.mosquittoListenerConfig,
            users: { "lab-user": "binary-secret" },
          });
          const options = [
            ...["--host", "127.0.0.1", "-p", String(broker.port)],
            ...["--cafile", pki.caFile, "--username", "lab-user"],
          ];
          const env = { NO_COLOR: "1", MQTT_PASSWORD: "binary-secret" };
          await using server = spawnPeer(responder, options, { cwd: elsewhere, env });
          await server.waitForLine(/subscribed to/);
          const run = await runBinary(client, [...options, "bob", "uppercase", "over tls"], {
            cwd: elsewhere,
            env,
          });
          assert.equal(run.code, 0, run.stderr);
          assert.equal(run.stdout, "OVER TLS\n");
        },
      });
    });
  },
});
