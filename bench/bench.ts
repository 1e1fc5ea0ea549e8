/**
 * `deno task bench`: secure_mqtt_client against the lab's Python path (paho-mqtt and
 * pyca/cryptography, whose DH is OpenSSL), every ratio measured side by side in one run on the
 * same machine, because absolute times on a shared VM drift from one minute to the next.
 *
 * 1. DH: keygen (g^x) and shared secret (y^x), ours at the shipped exponent and at 4096 bits,
 *    warm with a `DhPrecomputation` (the responder's path) and cold in a fresh process without
 *    one (the client's path, `bench/dh_micro.ts cold child`), against pyca/cryptography on the
 *    same dhparam4096.pem (`bench/pyca_dh_timing.py`). Round-robin, in blocks, medians.
 * 2. End to end: wall time of a client process from spawn to exit, `deno run` of main.ts with
 *    the client task's permissions against `bench/reference_client.py` (and `deno task client`),
 *    interleaved, with our responder, on a default mosquitto and on one with
 *    `set_tcp_nodelay true`; and the client's own `-v` marks.
 * 3. Responder: key exchanges and requests per second under closed-loop MQTT.js clients that
 *    reuse one precomputed key pair (so the responder, not the generator, is measured), and the
 *    responder's CPU time per key exchange from /proc.
 * 4. Start-up: `--help`, and spawn to the first byte (CONNECT) seen by a listener of ours.
 * 5. Memory: what one responder session costs (`bench/session_memory.ts`).
 * 6. The conformance suite: `secure_mqtt_check client`, all of it and `--quick`, against our own
 *    client (`deno run main.ts` with the client task's permissions), one run each, wall time.
 *
 * Prints one table and writes it, with the samples, to bench/results/latest.json.
 *
 *     deno task bench            # about a minute
 *     deno task bench --quick    # fewer runs, to check the bench itself; writes nothing
 *
 * @module
 */

import {
  computeSharedSecret,
  DhPrecomputation,
  encodePublicKeyPem,
  generateKeyPair,
  PRIVATE_KEY_BITS,
} from "../lib/crypto/dh.ts";
import { loadLabGroup, readPeerPublicKey } from "../lib/protocol/key_agreement.ts";
import { PYTHON } from "../support/environment.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import {
  type Peer,
  ROOT,
  runPeer,
  type RunResult,
  runTask,
  spawnPeer,
  startResponderTask,
  taskCommand,
} from "../support/processes.ts";
import { handshake, Tap } from "../support/tap.ts";

const QUICK = Deno.args.includes("--quick");
const RUNS = {
  /** DH samples per case, taken in `dhBlocks` round-robin blocks. */
  dh: QUICK ? 4 : 24,
  dhBlocks: QUICK ? 1 : 4,
  e2e: QUICK ? 3 : 21,
  startup: QUICK ? 3 : 15,
  loadSeconds: QUICK ? 1 : 5,
  loadClients: 8,
};
const TARGETS = {
  dhShippedWarm: 0.5,
  dhFullWarm: 3,
  e2eDefault: 0.75,
  e2eNodelay: 0.85,
  keyExchangesPerSecond: 100,
  /** Seconds: the whole client suite, and --quick, against our client. */
  checkSuite: 60,
  checkQuick: 15,
};
const DENO = Deno.execPath();
const REFERENCE = `${ROOT}/bench/reference_client.py`;
const MESSAGE = "hello world";
const ANSWER = "HELLO WORLD";
const PHASES = [
  "connected",
  "subscribed",
  "key exchange request sent",
  "key exchange answered",
  "request sent",
  "response verified",
];

// ---------------------------------------------------------------------------------------------
// Helpers

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function summary(xs: number[]) {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)), n: xs.length };
}

/** Pushes `ms` onto `samples[key]`. */
function record(samples: Record<string, number[]>, key: string, ms: number): void {
  (samples[key] ??= []).push(ms);
}

/** A /proc file through `cat`: Deno reads /proc only with --allow-all. */
async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** CPU seconds (user + system) process `pid` has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime, in USER_HZ
}

function check(who: string, run: RunResult, ok: boolean): RunResult {
  if (!ok) {
    throw new Error(
      `${who} failed (exit ${run.code}): stdout ${JSON.stringify(run.stdout.slice(-300))}, ` +
        `stderr ${JSON.stringify(run.stderr.slice(-500))}`,
    );
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// 1. Diffie-Hellman

interface PycaTiming {
  keygen_ms: number[];
  exchange_ms: number[];
  exponent_bits: number;
  cryptography: string;
  openssl: string;
  python: string;
}

async function benchDh() {
  const group = loadLabGroup();
  const precomputation = new DhPrecomputation(group);
  const dh = { precomputation };
  const peer = generateKeyPair(group).publicKey;
  const sizes = [PRIVATE_KEY_BITS, 4096];
  const samples: Record<string, number[]> = {};
  const warm = (bits: number) => {
    const t0 = performance.now();
    const { privateKey } = generateKeyPair(group, bits, dh);
    const t1 = performance.now();
    computeSharedSecret(group, privateKey, peer, dh);
    return [t1 - t0, performance.now() - t1];
  };
  const cold = async (bits: number) => {
    const args = ["run", "--allow-read", `${ROOT}/bench/dh_micro.ts`, "cold", "child"];
    const run = await runPeer(DENO, [...args, String(bits), "one-shot"]);
    return check("dh_micro.ts cold child", run, run.code === 0).stdout.trim().split(" ")
      .map(Number);
  };
  for (const bits of sizes) warm(bits); // builds the precomputation's tables
  let pyca: PycaTiming | undefined;
  const perBlock = RUNS.dh / RUNS.dhBlocks;
  // Each block times every case back to back, as pyca_dh_timing.py does; a cold child run
  // between two warm ones would evict the warm path's tables from the caches.
  for (let block = 0; block < RUNS.dhBlocks; block++) {
    for (const how of ["warm", "cold"]) {
      for (let i = 0; i < perBlock; i++) {
        for (const bits of sizes) {
          const [k, s] = how === "warm" ? warm(bits) : await cold(bits);
          record(samples, `${how} ${bits} keygen`, k);
          record(samples, `${how} ${bits} shared`, s);
        }
      }
    }
    const run = await runPeer(PYTHON, [
      `${ROOT}/bench/pyca_dh_timing.py`,
      `${ROOT}/dhparam4096.pem`,
      String(perBlock),
    ]);
    const timing: PycaTiming = JSON.parse(check("pyca_dh_timing.py", run, run.code === 0).stdout);
    if (pyca === undefined) pyca = timing;
    else {
      pyca.keygen_ms.push(...timing.keygen_ms);
      pyca.exchange_ms.push(...timing.exchange_ms);
    }
  }
  samples["pyca keygen"] = pyca!.keygen_ms;
  samples["pyca exchange"] = pyca!.exchange_ms;
  return { samples, pyca: pyca! };
}

// ---------------------------------------------------------------------------------------------
// 2. End to end

async function benchEndToEnd(broker: Broker) {
  const args = ["--host", broker.host, "-p", String(broker.port), "bench", "uppercase", MESSAGE];
  const kinds: Record<string, () => Promise<RunResult>> = {
    "deno run": () => runTask("client", args),
    "python": () => runPeer(PYTHON, [REFERENCE, ...args]),
    "deno task": () => runPeer(DENO, ["task", "-q", "client", ...args]),
    "deno run -v": () => runTask("client", ["-v", ...args]),
  };
  const times: Record<string, number[]> = {};
  const marks: Record<string, number[]> = {};
  await using _responder = await startResponderTask(broker);
  for (let i = -1; i < RUNS.e2e; i++) { // i = -1: warm-up, not counted
    for (const [kind, start] of Object.entries(kinds)) {
      const run = await start();
      check(kind, run, run.code === 0 && run.stdout === `${ANSWER}\n`);
      if (i < 0) continue;
      record(times, kind, run.ms);
      if (kind !== "deno run -v") continue;
      for (const line of run.stderr.split("\n")) {
        const mark = /debug: (.*) \(([\d.]+) ms\)$/.exec(line);
        const phase = PHASES.find((p) => mark?.[1].startsWith(p));
        if (phase) record(marks, phase, Number(mark![2]));
      }
    }
  }
  return { times, marks };
}

// ---------------------------------------------------------------------------------------------
// 3. Responder throughput

/** Runs `step` in a closed loop on every client for `seconds`; how many completed, and when. */
async function closedLoop<T>(
  clients: T[],
  seconds: number,
  step: (client: T) => Promise<void>,
): Promise<{ count: number; seconds: number }> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let count = 0;
  await Promise.all(clients.map(async (client) => {
    while (performance.now() < end) {
      await step(client);
      count++;
    }
  }));
  return { count, seconds: (performance.now() - t0) / 1000 };
}

async function benchResponder(broker: Broker, responder: Peer) {
  const group = loadLabGroup();
  const ours = generateKeyPair(group);
  const ourPem = encodePublicKeyPem(group, ours.publicKey);
  const decoder = new TextDecoder();
  const netids = Array.from({ length: RUNS.loadClients }, (_, i) => `load${i}`);
  const taps = await Promise.all(
    netids.map((netid) =>
      Tap.open(broker, [`${netid}/key-exchange/response`, `${netid}/uppercase/response`])
    ),
  );
  for (const tap of taps) {
    // As lib/mqtt.ts does for our client and responder: with Nagle's algorithm on, the next
    // request would wait behind the PUBACK just sent until the broker's delayed TCP ACK.
    (tap.mqtt.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  }
  const clients = taps.map((tap, i) => ({ tap, netid: netids[i] }));
  const measured = async (step: (c: typeof clients[number]) => Promise<void>) => {
    await closedLoop(clients, 0.5, step); // warm-up
    const cpu0 = await cpuSeconds(responder.pid);
    const run = await closedLoop(clients, RUNS.loadSeconds, step);
    const cpu = await cpuSeconds(responder.pid) - cpu0;
    return {
      perSecond: run.count / run.seconds,
      cpuMsEach: cpu * 1000 / run.count,
      coreShare: cpu / run.seconds,
    };
  };
  try {
    // The answer's key is parsed and range-checked (cheap) but not used: the generator's own
    // exponentiations would compete with the responder for the same two cores.
    const keyExchanges = await measured(async ({ tap, netid }) => {
      await tap.publish(`${netid}/key-exchange/request`, ourPem);
      const reply = await tap.next(`${netid}/key-exchange/response`);
      readPeerPublicKey(group, reply.payload);
    });
    const fernets = await Promise.all(clients.map(({ tap, netid }) => handshake(tap, netid)));
    const sessions = new Map(netids.map((netid, i) => [netid, fernets[i]]));
    const requests = await measured(async ({ tap, netid }) => {
      const fernet = sessions.get(netid)!;
      await tap.publish(`${netid}/uppercase/request`, await fernet.encrypt(MESSAGE));
      const reply = await tap.next(`${netid}/uppercase/response`);
      if (decoder.decode(await fernet.decrypt(reply.payload)) !== ANSWER) {
        throw new Error("the responder gave a wrong answer");
      }
    });
    return { clients: RUNS.loadClients, seconds: RUNS.loadSeconds, keyExchanges, requests };
  } finally {
    await Promise.all(taps.map((tap) => tap[Symbol.asyncDispose]()));
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Start-up

/** Spawn to the first byte a listener of ours receives (the client's CONNECT). */
async function firstByte(listener: Deno.TcpListener, cmd: string, args: string[]) {
  const t0 = performance.now();
  await using child = spawnPeer(cmd, args);
  const exited = child.status.then(() => {
    throw new Error(`${cmd} exited before connecting:\n${child.stderrText()}`);
  });
  using conn = await Promise.race([listener.accept(), exited]);
  const n = await conn.read(new Uint8Array(256));
  const ms = performance.now() - t0;
  if (n === null) throw new Error(`${cmd}: connection closed before the first byte`);
  child.kill("SIGKILL");
  return ms;
}

async function benchStartup() {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const where = ["--host", "127.0.0.1", "-p", String(listener.addr.port), "bench", "uppercase"];
  const help = async (cmd: string, args: string[]) => {
    const run = await runPeer(cmd, args);
    return check(`${cmd} --help`, run, run.code === 0 && run.stdout.startsWith("usage:")).ms;
  };
  const cases: Record<string, () => Promise<number>> = {
    "help deno run": () => help(DENO, [...taskCommand("client").slice(1), "--help"]),
    "help python": () => help(PYTHON, [REFERENCE, "--help"]),
    "help deno task": () => help(DENO, ["task", "-q", "client", "--help"]),
    "first byte deno run": () =>
      firstByte(listener, DENO, [...taskCommand("client").slice(1), ...where, "x"]),
    "first byte python": () => firstByte(listener, PYTHON, [REFERENCE, ...where, "x"]),
  };
  const times: Record<string, number[]> = {};
  for (let i = -1; i < RUNS.startup; i++) { // i = -1: warm-up, not counted
    for (const [name, run] of Object.entries(cases)) {
      const ms = await run();
      if (i >= 0) record(times, name, ms);
    }
  }
  return times;
}

// ---------------------------------------------------------------------------------------------
// 5. Memory

interface SessionMemory {
  sessions: number;
  maxSessions: number;
  heapBytes: number;
  externalBytes: number;
  rssBytes: number;
}

async function benchMemory(): Promise<SessionMemory> {
  // As the responder runs: its task's flags, plus a GC we can call.
  const flags = taskCommand("responder").slice(2, -1);
  const script = `${ROOT}/bench/session_memory.ts`;
  const run = await runPeer(DENO, ["run", "--v8-flags=--expose-gc", ...flags, script]);
  return JSON.parse(check("session_memory.ts", run, run.code === 0).stdout);
}

// ---------------------------------------------------------------------------------------------
// 6. The conformance suite

interface SuiteRun {
  ms: number;
  cases: number;
  passed: number;
}

async function benchCheck(): Promise<{ full: SuiteRun; quick: SuiteRun }> {
  const client = taskCommand("client").slice(1);
  const checker = taskCommand("check").slice(1);
  const suite = async (options: string[]): Promise<SuiteRun> => {
    const run = await runPeer(DENO, [
      ...checker,
      "client",
      "--json",
      ...options,
      "--",
      DENO,
      ...client,
    ], {
      timeoutMs: 300_000,
    });
    const report = JSON.parse(check("secure_mqtt_check client", run, run.code === 0).stdout);
    return { ms: run.ms, cases: report.summary.cases, passed: report.summary.passed };
  };
  return { full: await suite([]), quick: await suite(["--quick"]) };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Row {
  measure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: string;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;
const split = (k: number, s: number) => `${ms(k)} + ${ms(s)} = ${ms(k + s)}`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** A row comparing ours with the baseline; with a `limit`, the ratio is a target. */
function ratioRow(
  measure: string,
  ours: number,
  baseline: number,
  limit?: number,
  text: [string, string] = [ms(ours), ms(baseline)],
): Row {
  const ratio = ours / baseline;
  return {
    measure,
    ours: text[0],
    baseline: text[1],
    ratio: `${ratio.toFixed(2)}x`,
    target: limit === undefined ? "" : `<= ${limit}x`,
    verdict: limit === undefined
      ? ""
      : ratio <= limit
      ? "PASS"
      : `MISS by ${((ratio / limit - 1) * 100).toFixed(0)}%`,
  };
}

/** A row whose measure must stay within `limit` seconds. */
function secondsRow(measure: string, ms: number, limit: number): Row {
  const seconds = ms / 1000;
  return {
    measure,
    ours: `${seconds.toFixed(1)} s`,
    baseline: "",
    ratio: "",
    target: `<= ${limit} s`,
    verdict: seconds <= limit ? "PASS" : `MISS by ${((seconds / limit - 1) * 100).toFixed(0)}%`,
  };
}

function infoRow(measure: string, ours: string): Row {
  return { measure, ours, baseline: "", ratio: "", target: "", verdict: "" };
}

function formatTable(rows: Row[]): string {
  const head: Row = {
    measure: "measure",
    ours: "ours",
    baseline: "baseline",
    ratio: "ratio",
    target: "target",
    verdict: "verdict",
  };
  const cols = Object.keys(head) as (keyof Row)[];
  const width = (c: keyof Row) => Math.max(...[head, ...rows].map((r) => r[c].length));
  const line = (r: Row) => "| " + cols.map((c) => r[c].padEnd(width(c))).join(" | ") + " |";
  const rule = "|" + cols.map((c) => "-".repeat(width(c) + 2)).join("|") + "|";
  return [line(head), rule, ...rows.map(line)].join("\n");
}

/** The 1-minute load average: other work on the machine shows in it. */
async function loadAverage(): Promise<number> {
  return Number((await readProc("/proc/loadavg")).split(" ")[0]);
}

async function environment(mosquitto: string, pyca: PycaTiming, loadAtStart: number) {
  const paho = await runPeer(PYTHON, ["-c", "import paho.mqtt; print(paho.mqtt.__version__)"]);
  return {
    date: new Date().toISOString(),
    cpu: /model name\s*:\s*(.*)/.exec(await readProc("/proc/cpuinfo"))?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    kernel: (await readProc("/proc/sys/kernel/osrelease")).trim(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    python: pyca.python,
    cryptography: pyca.cryptography,
    openssl: pyca.openssl,
    paho: paho.stdout.trim(),
    mosquitto,
    privateKeyBits: PRIVATE_KEY_BITS,
    loadAverage: { start: loadAtStart, end: await loadAverage() },
  };
}

async function main() {
  const started = performance.now();
  const loadAtStart = await loadAverage();
  const progress = (what: string) =>
    console.error(`bench: ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)`);

  progress(`DH: ${RUNS.dh} rounds of ours warm and cold, and pyca/cryptography`);
  const dh = await benchDh();

  progress(`end to end on a default mosquitto, ${RUNS.e2e} rounds`);
  let mosquitto = "unknown";
  let e2eDefault, e2eNodelay, load;
  {
    await using broker = await startMosquitto();
    mosquitto = /mosquitto version (\S+)/.exec(broker.log())?.[1] ?? mosquitto;
    e2eDefault = await benchEndToEnd(broker);
  }
  {
    await using broker = await startMosquitto({ config: "set_tcp_nodelay true" });
    progress(`end to end on a set_tcp_nodelay mosquitto, ${RUNS.e2e} rounds`);
    e2eNodelay = await benchEndToEnd(broker);
    progress(`responder load, ${RUNS.loadClients} clients, ${RUNS.loadSeconds} s per phase`);
    await using responder = await startResponderTask(broker);
    load = await benchResponder(broker, responder);
  }
  progress(`start-up, ${RUNS.startup} rounds`);
  const startup = await benchStartup();
  progress("memory of the responder's sessions");
  const memory = await benchMemory();
  progress("the conformance suite (secure_mqtt_check client) against our client, full and --quick");
  const conformance = await benchCheck();
  const env = await environment(mosquitto, dh.pyca, loadAtStart);

  const m = (samples: Record<string, number[]>, key: string) => median(samples[key]);
  const d = (key: string) => m(dh.samples, key);
  const pyca = d("pyca keygen") + d("pyca exchange");
  const pycaBits = `${dh.pyca.exponent_bits}-bit x`;
  const pycaText = `${split(d("pyca keygen"), d("pyca exchange"))} (${pycaBits})`;
  const dhRow = (how: "warm" | "cold", bits: number, limit?: number) =>
    ratioRow(
      `DH ${how === "warm" ? "warm, precomputed" : "cold, fresh process"}, ${bits}-bit x: ` +
        "keygen + shared",
      d(`${how} ${bits} keygen`) + d(`${how} ${bits} shared`),
      pyca,
      limit,
      [split(d(`${how} ${bits} keygen`), d(`${how} ${bits} shared`)), pycaText],
    );
  const e2eRows = (name: string, e2e: typeof e2eDefault, limit: number) => [
    ratioRow(
      `end to end, ${name}: deno run main.ts`,
      m(e2e.times, "deno run"),
      m(e2e.times, "python"),
      limit,
    ),
    ratioRow(
      `end to end, ${name}: deno task client`,
      m(e2e.times, "deno task"),
      m(e2e.times, "python"),
    ),
  ];
  const kxRate = load.keyExchanges.perSecond;
  const kxTarget = TARGETS.keyExchangesPerSecond;
  const rows: Row[] = [
    dhRow("warm", PRIVATE_KEY_BITS, TARGETS.dhShippedWarm),
    dhRow("warm", 4096, TARGETS.dhFullWarm),
    dhRow("cold", PRIVATE_KEY_BITS),
    dhRow("cold", 4096),
    ...e2eRows("default mosquitto", e2eDefault, TARGETS.e2eDefault),
    ...e2eRows("set_tcp_nodelay", e2eNodelay, TARGETS.e2eNodelay),
    {
      measure: `responder: key exchanges/s, ${load.clients} clients (set_tcp_nodelay)`,
      ours: `${kxRate.toFixed(0)}/s`,
      baseline: "",
      ratio: "",
      target: `>= ${kxTarget}/s`,
      verdict: kxRate >= kxTarget
        ? "PASS"
        : `MISS by ${((1 - kxRate / kxTarget) * 100).toFixed(0)}%`,
    },
    infoRow(
      "responder: CPU per key exchange",
      `${ms(load.keyExchanges.cpuMsEach)} (${
        (load.keyExchanges.coreShare * 100).toFixed(0)
      }% of a core)`,
    ),
    infoRow(
      `responder: requests/s, ${load.clients} clients (set_tcp_nodelay)`,
      `${load.requests.perSecond.toFixed(0)}/s (${ms(load.requests.cpuMsEach)} CPU each, ${
        (load.requests.coreShare * 100).toFixed(0)
      }% of a core)`,
    ),
    ratioRow("start-up: --help, deno run", m(startup, "help deno run"), m(startup, "help python")),
    ratioRow(
      "start-up: --help, deno task",
      m(startup, "help deno task"),
      m(startup, "help python"),
    ),
    ratioRow(
      "start-up: spawn to first byte (CONNECT)",
      m(startup, "first byte deno run"),
      m(startup, "first byte python"),
    ),
    infoRow(
      "memory: one responder session (heap + external / RSS)",
      `${kib(memory.heapBytes + memory.externalBytes)} / ${kib(memory.rssBytes)}`,
    ),
    infoRow(
      `memory: ${memory.maxSessions} sessions, the default cap (heap + external / RSS)`,
      `${mib((memory.heapBytes + memory.externalBytes) * memory.maxSessions)} / ${
        mib(memory.rssBytes * memory.maxSessions)
      }`,
    ),
    secondsRow(
      `conformance: secure_mqtt_check client, ${conformance.full.cases} cases, our client`,
      conformance.full.ms,
      TARGETS.checkSuite,
    ),
    secondsRow(
      `conformance: secure_mqtt_check client --quick, ${conformance.quick.cases} cases`,
      conformance.quick.ms,
      TARGETS.checkQuick,
    ),
  ];
  const marks = (e2e: typeof e2eDefault) => ({
    ...Object.fromEntries(PHASES.map((p) => [p, median(e2e.marks[p] ?? [NaN])])),
    "process exit, from spawn": median(e2e.times["deno run -v"]),
  });
  const header = [
    `secure_mqtt_client bench, ${env.date.slice(0, 16)}Z; ${env.cpu}, ${env.cores} cores, ` +
    `Linux ${env.kernel}`,
    `deno ${env.deno} (V8 ${env.v8}); python ${env.python}, cryptography ${env.cryptography}, ` +
    `${env.openssl}, paho-mqtt ${env.paho}; mosquitto ${env.mosquitto}; responder: responder.ts`,
    `medians: DH ${RUNS.dh} each (round-robin, ${RUNS.dhBlocks} blocks); end to end ` +
    `${RUNS.e2e} each, interleaved; start-up ${RUNS.startup}; load ${RUNS.loadSeconds} s a phase; ` +
    `load average ${env.loadAverage.start} at the start, ${env.loadAverage.end} at the end`,
  ];
  const markLines = Object.entries({ default: marks(e2eDefault), nodelay: marks(e2eNodelay) })
    .map(([name, phases]) =>
      `-v marks, ${name} (ms since the session started): ` +
      Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")
    );
  console.log(`\n${header.join("\n")}\n\n${formatTable(rows)}\n\n${markLines.join("\n")}`);

  if (QUICK) return progress("done (--quick: nothing written)");
  const summaries = (samples: Record<string, number[]>) =>
    Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summary(v)]));
  const result = {
    environment: env,
    runs: RUNS,
    targets: TARGETS,
    table: rows,
    samples: {
      dh: summaries(dh.samples),
      endToEndDefault: { ...summaries(e2eDefault.times), marks: marks(e2eDefault) },
      endToEndNodelay: { ...summaries(e2eNodelay.times), marks: marks(e2eNodelay) },
      responder: load,
      startup: summaries(startup),
      memory,
      conformance,
    },
  };
  await Deno.writeTextFile(
    `${ROOT}/bench/results/latest.json`,
    JSON.stringify(result, null, 2) + "\n",
  );
  progress("done: bench/results/latest.json written");
}

if (import.meta.main) await main();
