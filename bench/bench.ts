/**
 * `deno task bench`: secure_mqtt_client against the lab's Python path (paho-mqtt +
 * pyca/cryptography, whose DH is OpenSSL), everything measured side by side in ONE run, so
 * that every target is a ratio of numbers taken on the same machine at the same time.
 *
 * 1. DH: keygen (g^x) and shared secret (y^x), ours in-process (shipped exponent and a full
 *    4096-bit one) against pyca/cryptography on the same dhparam4096.pem
 *    (bench/pyca_dh_timing.py, a /usr/bin/python3 subprocess). Medians.
 * 2. End to end: wall time of a client process from spawn to exit, ours (`deno run` with the
 *    client task's permissions, and `deno task client`) against bench/reference_client.py,
 *    interleaved, on one private mosquitto (default config) and OUR responder.
 * 3. Responder: key exchanges/s and requests/s with N concurrent MQTT clients (a light load
 *    generator on lib/mqtt.ts that reuses one precomputed client key for the exchanges, so
 *    the responder, not the generator, is what is measured).
 * 4. Start-up: `--help`, and the first byte on the wire (CONNECT) seen by a TCP listener here.
 *
 * Prints one table with pass/miss per target and writes it as JSON to
 * bench/results/latest.json and bench/results/<date>.json.
 *
 *     deno task bench            # about a minute
 *     deno task bench --quick    # fewer runs, to check the bench itself
 *
 * @module
 */

import {
  computeSharedSecret,
  decodePublicKeyPem,
  encodePublicKeyPem,
  generateKeyPair,
  parseDhParamsPem,
  PRIVATE_KEY_BITS,
} from "../lib/crypto/dh.ts";
import type { Fernet } from "../lib/crypto/fernet.ts";
import { MqttClient, type MqttMessage } from "../lib/mqtt.ts";
import { agreeFernet } from "../lib/protocol.ts";
import { type Broker, startMosquitto } from "../tests/support/mosquitto.ts";
import denoJson from "../deno.json" with { type: "json" };

const QUICK = Deno.args.includes("--quick");
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = Deno.execPath();
export const PYTHON = "/usr/bin/python3";
const DHPARAM = `${ROOT}/dhparam4096.pem`;

const RUNS = {
  dh: QUICK ? 5 : 25,
  e2e: QUICK ? 3 : 15,
  startup: QUICK ? 3 : 15,
  phases: QUICK ? 2 : 7,
  coldDh: QUICK ? 3 : 9,
  loadSeconds: QUICK ? 1.5 : 4,
  loadClients: 8,
};

const TARGETS = {
  dhShipped: 0.5,
  dhFull: 3,
  e2e: 0.6,
  keyExchangesPerSecond: 100,
};

// ---------------------------------------------------------------------------------------------
// Small statistics and process helpers

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median, min and max of a sample, rounded for the JSON. */
function summary(xs: number[]) {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)), n: xs.length };
}

const decoder = new TextDecoder();

/** A /proc file, through `cat`: Deno reads /proc only with --allow-all. "" when unreadable. */
function readProc(path: string): string {
  try {
    return decoder.decode(
      new Deno.Command("cat", { args: [path], stderr: "null" }).outputSync().stdout,
    );
  } catch {
    return "";
  }
}

/** The client task's own command line (deno.json), so the bench runs what users run. */
export function taskArgs(task: "client" | "responder"): string[] {
  const words = denoJson.tasks[task].split(/\s+/);
  if (words[0] !== "deno") throw new Error(`task ${task} does not start with deno`);
  return words.slice(1);
}

export interface Timed {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawn, wait for exit and for the pipes to close; wall time from just before spawn. */
export async function timedRun(cmd: string, args: string[]): Promise<Timed> {
  const command = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" });
  const t0 = performance.now();
  const out = await command.output();
  const ms = performance.now() - t0;
  return {
    ms,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

export function expectAnswer(who: string, run: Timed, answer: string): void {
  if (run.code !== 0 || run.stdout !== `${answer}\n`) {
    throw new Error(
      `${who} failed (exit ${run.code}): stdout ${JSON.stringify(run.stdout)}, stderr ${
        JSON.stringify(run.stderr.slice(-500))
      }`,
    );
  }
}

/** A long-running child whose output is drained line by line (so its pipes never fill). */
export class Service {
  #child: Deno.ChildProcess;
  #lines: string[] = [];
  #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  #status: Promise<Deno.CommandStatus>;

  constructor(cmd: string, args: string[]) {
    this.#child = new Deno.Command(cmd, {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#drain(this.#child.stdout);
    this.#drain(this.#child.stderr);
    this.#status = this.#child.status;
  }

  async #drain(stream: ReadableStream<Uint8Array>) {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        if (this.#lines.length < 200) this.#lines.push(line);
        this.#waiters = this.#waiters.filter((w) => !(w.re.test(line) && (w.resolve(line), true)));
      }
    }
  }

  async waitFor(re: RegExp, ms = 15_000): Promise<string> {
    const seen = this.#lines.find((l) => re.test(l));
    if (seen) return seen;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        new Promise<string>((resolve) => this.#waiters.push({ re, resolve })),
        this.#status.then((s) => {
          throw new Error(`exited (${s.code}) before ${re}:\n${this.#lines.join("\n")}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** CPU seconds (user + system) the process has used so far, from /proc. */
  cpuSeconds(): number {
    try {
      const stat = readProc(`/proc/${this.#child.pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ
    } catch {
      return NaN;
    }
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await this.#status;
  }
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

/** Child mode: the first keygen and shared secret of a fresh process, what the CLI pays. */
async function coldDhChild(bits: number): Promise<void> {
  const group = parseDhParamsPem(await Deno.readTextFile(DHPARAM));
  const peer = 3n ** 3000n % group.p;
  const t0 = performance.now();
  const { privateKey } = generateKeyPair(group, bits);
  const t1 = performance.now();
  computeSharedSecret(group, privateKey, peer);
  console.log(JSON.stringify([t1 - t0, performance.now() - t1]));
}

async function benchColdDh(): Promise<{ keygen: number[]; shared: number[] }> {
  const keygen: number[] = [], shared: number[] = [];
  for (let i = 0; i < RUNS.coldDh; i++) {
    const r = await timedRun(DENO, [
      "run",
      "--allow-read",
      import.meta.filename!,
      "--cold-dh-child",
      String(PRIVATE_KEY_BITS),
    ]);
    const [k, e] = JSON.parse(r.stdout) as number[];
    keygen.push(k);
    shared.push(e);
  }
  return { keygen, shared };
}

async function benchDh() {
  const group = parseDhParamsPem(await Deno.readTextFile(DHPARAM));
  const peer = generateKeyPair(group).publicKey;
  const sizes = [PRIVATE_KEY_BITS, 4096];
  const keygen: Record<number, number[]> = {}, shared: Record<number, number[]> = {};
  for (const bits of sizes) {
    keygen[bits] = [];
    shared[bits] = [];
    computeSharedSecret(group, generateKeyPair(group, bits).privateKey, peer); // warm-up
  }
  // Round-robin, so a busy second slows every case alike.
  for (let i = 0; i < RUNS.dh; i++) {
    for (const bits of sizes) {
      const t0 = performance.now();
      const { privateKey } = generateKeyPair(group, bits);
      const t1 = performance.now();
      computeSharedSecret(group, privateKey, peer);
      const t2 = performance.now();
      keygen[bits].push(t1 - t0);
      shared[bits].push(t2 - t1);
    }
  }
  const out = await new Deno.Command(PYTHON, {
    args: [`${ROOT}/bench/pyca_dh_timing.py`, DHPARAM, String(RUNS.dh)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`pyca_dh_timing.py failed: ${decoder.decode(out.stderr)}`);
  const pyca = JSON.parse(decoder.decode(out.stdout)) as PycaTiming;
  return { keygen, shared, pyca };
}

// ---------------------------------------------------------------------------------------------
// 2. End to end

export const MESSAGE = "hello world";
export const ANSWER = "HELLO WORLD";

async function benchEndToEnd(broker: Broker) {
  const where = ["-p", String(broker.port), "--host", broker.host];
  const ours = [...taskArgs("client"), ...where, "bench", "uppercase", MESSAGE];
  const task = ["task", "-q", "client", ...where, "bench", "uppercase", MESSAGE];
  const python = [`${ROOT}/bench/reference_client.py`, ...where, "bench", "uppercase", MESSAGE];
  const kinds = {
    ours: () => timedRun(DENO, ours),
    python: () => timedRun(PYTHON, python),
    task: () => timedRun(DENO, task),
  };
  const times: Record<keyof typeof kinds, number[]> = { ours: [], python: [], task: [] };
  for (const [name, run] of Object.entries(kinds)) {
    expectAnswer(`${name} (warm-up)`, await run(), ANSWER);
  }
  // Interleaved: ours, python, task, ours, python, task...
  for (let i = 0; i < RUNS.e2e; i++) {
    for (
      const [name, run] of Object.entries(kinds) as [keyof typeof kinds, () => Promise<Timed>][]
    ) {
      const r = await run();
      expectAnswer(name, r, ANSWER);
      times[name].push(r.ms);
    }
  }
  // Where our time goes: the client's own -v marks (ms since requestTransform started).
  const marks: Record<string, number[]> = {};
  for (let i = 0; i < RUNS.phases; i++) {
    const r = await timedRun(DENO, [
      ...taskArgs("client"),
      "-v",
      ...where,
      "bench",
      "uppercase",
      MESSAGE,
    ]);
    expectAnswer("ours -v", r, ANSWER);
    for (const line of r.stderr.split("\n")) {
      const m =
        /debug: (connected|subscribed|key exchange request sent|key exchange answered|request sent|response verified)\b.*?\(([\d.]+) ms\)$/
          .exec(line) ?? /debug: (request sent).*, ([\d.]+) ms\)$/.exec(line);
      if (m) (marks[m[1]] ??= []).push(Number(m[2]));
    }
    (marks["process exit (wall, from spawn)"] ??= []).push(r.ms);
  }
  return { times, marks };
}

// ---------------------------------------------------------------------------------------------
// 3. Responder throughput

/** One MQTT connection of the load generator, with a queue per subscribed topic. */
class LoadClient {
  #waiters = new Map<string, (m: MqttMessage) => void>();
  private constructor(readonly mqtt: MqttClient, readonly netid: string) {}

  static async open(broker: Broker, netid: string, topics: string[]): Promise<LoadClient> {
    const holder: { self?: LoadClient } = {};
    const mqtt = await MqttClient.connect({
      host: broker.host,
      port: broker.port,
      clientId: `load-${netid}`,
      onMessage: (m) => holder.self?.deliver(m),
    });
    const self = holder.self = new LoadClient(mqtt, netid);
    await mqtt.subscribe(topics.map((t) => `${netid}/${t}/response`), 1);
    return self;
  }

  deliver(m: MqttMessage): void {
    const w = this.#waiters.get(m.topic);
    if (w && !m.retain) this.#waiters.delete(m.topic), w(m);
  }

  /** Publishes and resolves with the next message on the matching response topic. */
  ask(kind: string, payload: string): Promise<MqttMessage> {
    const reply = new Promise<MqttMessage>((resolve) => {
      this.#waiters.set(`${this.netid}/${kind}/response`, resolve);
    });
    return this.mqtt.publish(`${this.netid}/${kind}/request`, payload, { qos: 1 }).then(() =>
      reply
    );
  }
}

/** Runs `step` on every client in a closed loop for `seconds`; returns completions per second. */
async function closedLoop(
  clients: LoadClient[],
  seconds: number,
  step: (c: LoadClient) => Promise<void>,
  responder?: Service,
): Promise<{ perSecond: number; responderCpu: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const t0 = performance.now();
  const cpu0 = responder?.cpuSeconds() ?? NaN;
  await Promise.all(clients.map(async (c) => {
    while (performance.now() < end) {
      await step(c);
      done++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = ((responder?.cpuSeconds() ?? NaN) - cpu0) / elapsed;
  return { perSecond: done / elapsed, responderCpu: cpu };
}

async function benchResponder(broker: Broker, responder: Service) {
  const group = parseDhParamsPem(await Deno.readTextFile(DHPARAM));
  const ours = generateKeyPair(group);
  const ourPem = encodePublicKeyPem(group, ours.publicKey);
  const n = RUNS.loadClients;
  const clients = await Promise.all(
    Array.from(
      { length: n },
      (_, i) => LoadClient.open(broker, `load${i}`, ["key-exchange", "uppercase"]),
    ),
  );
  try {
    // Key exchanges: the responder's answer is parsed and checked (cheap), not used, so the
    // generator's own CPU stays out of the way of the responder's.
    const kx = async (c: LoadClient) => {
      const m = await c.ask("key-exchange", ourPem);
      decodePublicKeyPem(group, decoder.decode(m.payload));
    };
    await closedLoop(clients, 0.5, kx); // warm-up
    const kxRun = await closedLoop(clients, RUNS.loadSeconds, kx, responder);

    // Requests: one real session per client, then encrypted requests, each answer verified.
    const sessions = new Map<LoadClient, Fernet>();
    for (const c of clients) {
      const m = await c.ask("key-exchange", ourPem);
      sessions.set(c, await agreeFernet(group, ours, decoder.decode(m.payload)));
    }
    const request = async (c: LoadClient) => {
      const fernet = sessions.get(c)!;
      const m = await c.ask("uppercase", await fernet.encrypt(MESSAGE));
      if (decoder.decode(await fernet.decrypt(m.payload)) !== ANSWER) {
        throw new Error("wrong answer");
      }
    };
    await closedLoop(clients, 0.5, request); // warm-up
    const requestRun = await closedLoop(clients, RUNS.loadSeconds, request, responder);
    return {
      clients: n,
      seconds: RUNS.loadSeconds,
      keyExchangesPerSecond: kxRun.perSecond,
      /** Share of one core the responder used meanwhile (1 = a core saturated). */
      responderCpuDuringKeyExchanges: Math.round(kxRun.responderCpu * 100) / 100,
      requestsPerSecond: requestRun.perSecond,
      responderCpuDuringRequests: Math.round(requestRun.responderCpu * 100) / 100,
    };
  } finally {
    await Promise.all(clients.map((c) => c.mqtt.close()));
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Start-up

/** Spawn to first byte received by a listener of ours (the client's CONNECT); then kill it. */
async function firstByte(listener: Deno.TcpListener, cmd: string, args: string[]): Promise<number> {
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "null", stderr: "null" });
  const t0 = performance.now();
  const proc = child.spawn();
  const conn = await listener.accept();
  const n = await conn.read(new Uint8Array(256));
  const ms = performance.now() - t0;
  if (n === null) throw new Error(`${cmd}: connection closed before the first byte`);
  proc.kill("SIGKILL");
  await proc.status;
  conn.close();
  return ms;
}

async function benchStartup() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((listener.addr as Deno.NetAddr).port);
  const where = ["-p", port, "--host", "127.0.0.1"];
  const times: Record<string, number[]> = {
    oursHelp: [],
    pythonHelp: [],
    taskHelp: [],
    oursFirstByte: [],
    pythonFirstByte: [],
  };
  const ref = `${ROOT}/bench/reference_client.py`;
  const help = async (key: string, cmd: string, args: string[]) => {
    const r = await timedRun(cmd, args);
    if (r.code !== 0 || !r.stdout.startsWith("usage:")) throw new Error(`${key}: ${r.stderr}`);
    times[key].push(r.ms);
  };
  try {
    for (let i = -1; i < RUNS.startup; i++) { // i = -1: warm-up, not counted
      const sample = i >= 0;
      const before = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.length]));
      await help("oursHelp", DENO, [...taskArgs("client"), "--help"]);
      await help("pythonHelp", PYTHON, [ref, "--help"]);
      await help("taskHelp", DENO, ["task", "-q", "client", "--help"]);
      times.oursFirstByte.push(
        await firstByte(listener, DENO, [
          ...taskArgs("client"),
          ...where,
          "bench",
          "uppercase",
          "x",
        ]),
      );
      times.pythonFirstByte.push(
        await firstByte(listener, PYTHON, [ref, ...where, "bench", "uppercase", "x"]),
      );
      if (!sample) { for (const [k, n] of Object.entries(before)) times[k].length = n; }
    }
  } finally {
    listener.close();
  }
  return times;
}

// ---------------------------------------------------------------------------------------------
// Environment

async function environment(mosquitto: string, pyca: PycaTiming) {
  const cpuinfo = readProc("/proc/cpuinfo");
  const paho = await new Deno.Command(PYTHON, {
    args: ["-c", "import paho.mqtt; print(paho.mqtt.__version__)"],
    stdout: "piped",
  }).output();
  return {
    date: new Date().toISOString(),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    kernel: readProc("/proc/sys/kernel/osrelease").trim(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    python: pyca.python,
    cryptography: pyca.cryptography,
    openssl: pyca.openssl,
    paho: decoder.decode(paho.stdout).trim(),
    mosquitto,
    privateKeyBits: PRIVATE_KEY_BITS,
  };
}

// ---------------------------------------------------------------------------------------------
// The run

interface Row {
  measure: string;
  ours: string;
  reference: string;
  ratio: string;
  target: string;
  verdict: string;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

function targetRow(
  measure: string,
  ours: number,
  ref: number,
  limit: number,
  unit = ms,
): Row & { pass: boolean; ratioValue: number } {
  const ratio = ours / ref;
  const pass = ratio <= limit;
  return {
    measure,
    ours: unit(ours),
    reference: unit(ref),
    ratio: `${ratio.toFixed(2)}x`,
    target: `<= ${limit}x`,
    verdict: pass ? "PASS" : `MISS by ${((ratio / limit - 1) * 100).toFixed(0)}%`,
    pass,
    ratioValue: ratio,
  };
}

function printTable(rows: Row[]): void {
  const cols: (keyof Row)[] = ["measure", "ours", "reference", "ratio", "target", "verdict"];
  const head: Row = {
    measure: "measure",
    ours: "ours",
    reference: "reference",
    ratio: "ratio",
    target: "target",
    verdict: "verdict",
  };
  const width = (c: keyof Row) => Math.max(...[head, ...rows].map((r) => r[c].length));
  const line = (r: Row) => "| " + cols.map((c) => r[c].padEnd(width(c))).join(" | ") + " |";
  console.log(line(head));
  console.log("|" + cols.map((c) => "-".repeat(width(c) + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
}

async function main() {
  const started = performance.now();
  const progress = (what: string) =>
    console.error(`bench: ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)`);

  progress("DH, ours and pyca/cryptography");
  const dh = await benchDh();
  const cold = await benchColdDh();

  progress("starting mosquitto and our responder");
  await using broker = await startMosquitto();
  const mosquittoVersion = /mosquitto version (\S+)/.exec(broker.log())?.[1] ?? "unknown";
  let responderName = "responder.ts (ours)";
  let responder: Service;
  try {
    await Deno.stat(`${ROOT}/responder.ts`);
    responder = new Service(DENO, [
      ...taskArgs("responder"),
      "-p",
      String(broker.port),
      "--host",
      broker.host,
    ]);
    await responder.waitFor(/subscribed to/);
  } catch (error) {
    console.error(
      `bench: our responder is not usable (${(error as Error).message}); using responder.py`,
    );
    responderName = "tests/peers/responder.py (Python)";
    responder = new Service(PYTHON, [
      `${ROOT}/tests/peers/responder.py`,
      "--port",
      String(broker.port),
    ]);
    await responder.waitFor(/^ready$/);
  }
  let e2e, load;
  try {
    progress(`end to end, ${RUNS.e2e} x (deno run, python, deno task), interleaved`);
    e2e = await benchEndToEnd(broker);
    progress(`responder load, ${RUNS.loadClients} clients`);
    load = await benchResponder(broker, responder);
  } finally {
    await responder.stop();
  }
  progress("start-up");
  const startup = await benchStartup();
  const env = await environment(mosquittoVersion, dh.pyca);

  const k = (bits: number) => median(dh.keygen[bits]);
  const s = (bits: number) => median(dh.shared[bits]);
  const pk = median(dh.pyca.keygen_ms), pe = median(dh.pyca.exchange_ms);
  const e = {
    ours: median(e2e.times.ours),
    python: median(e2e.times.python),
    task: median(e2e.times.task),
  };
  const st = Object.fromEntries(Object.entries(startup).map(([key, v]) => [key, median(v)]));
  const B = PRIVATE_KEY_BITS;
  const info = (measure: string, ours: string, reference = "", ratio = ""): Row => ({
    measure,
    ours,
    reference,
    ratio,
    target: "",
    verdict: "",
  });
  const targets = {
    dhShipped: targetRow(
      `DH warm: keygen + shared, ${B}-bit x vs pyca`,
      k(B) + s(B),
      pk + pe,
      TARGETS.dhShipped,
    ),
    dhFull: targetRow(
      "DH warm: keygen + shared, 4096-bit x vs pyca",
      k(4096) + s(4096),
      pk + pe,
      TARGETS.dhFull,
    ),
    e2e: targetRow("end to end: deno run main.ts vs Python client", e.ours, e.python, TARGETS.e2e),
    // What users (and the check) type: the task runner adds a process of its own.
    e2eTask: targetRow(
      "end to end: deno task client vs Python client",
      e.task,
      e.python,
      TARGETS.e2e,
    ),
  };
  const kxPass = load.keyExchangesPerSecond >= TARGETS.keyExchangesPerSecond;
  const rows: Row[] = [
    info(
      `DH warm: keygen (g^x), ${B}-bit x / 4096-bit x`,
      `${ms(k(B))} / ${ms(k(4096))}`,
      `${ms(pk)} (${dh.pyca.exponent_bits}-bit x)`,
    ),
    info(
      `DH warm: shared secret (y^x), ${B}-bit x / 4096-bit x`,
      `${ms(s(B))} / ${ms(s(4096))}`,
      ms(pe),
    ),
    targets.dhShipped,
    targets.dhFull,
    info(
      `DH cold (first call, fresh process), ${B}-bit x: keygen + shared`,
      `${ms(median(cold.keygen))} + ${ms(median(cold.shared))}`,
      ms(pk + pe),
      `${((median(cold.keygen) + median(cold.shared)) / (pk + pe)).toFixed(2)}x`,
    ),
    targets.e2e,
    targets.e2eTask,
    {
      measure: `responder: key exchanges/s, ${load.clients} clients`,
      ours: load.keyExchangesPerSecond.toFixed(0),
      reference: "",
      ratio: `responder at ${(load.responderCpuDuringKeyExchanges * 100).toFixed(0)}% of a core`,
      target: `>= ${TARGETS.keyExchangesPerSecond}/s`,
      verdict: kxPass
        ? "PASS"
        : `MISS by ${
          ((1 - load.keyExchangesPerSecond / TARGETS.keyExchangesPerSecond) * 100).toFixed(0)
        }%`,
    },
    info(
      `responder: requests/s, ${load.clients} clients`,
      load.requestsPerSecond.toFixed(0),
      "",
      `responder at ${(load.responderCpuDuringRequests * 100).toFixed(0)}% of a core`,
    ),
    info(
      "start-up: --help (deno run / deno task)",
      `${ms(st.oursHelp)} / ${ms(st.taskHelp)}`,
      ms(st.pythonHelp),
      `${(st.oursHelp / st.pythonHelp).toFixed(2)}x`,
    ),
    info(
      "start-up: spawn to first byte (CONNECT)",
      ms(st.oursFirstByte),
      ms(st.pythonFirstByte),
      `${(st.oursFirstByte / st.pythonFirstByte).toFixed(2)}x`,
    ),
  ];

  console.log(
    `\nsecure_mqtt_client bench, ${
      env.date.slice(0, 16)
    }Z; ${env.cpu}, ${env.cores} cores, Linux ${env.kernel}`,
  );
  console.log(
    `deno ${env.deno} (v8 ${env.v8}); python ${env.python}, cryptography ${env.cryptography}, ` +
      `${env.openssl}, paho-mqtt ${env.paho}; mosquitto ${env.mosquitto}; responder: ${responderName}`,
  );
  console.log(
    `medians: DH ${RUNS.dh} runs each; end to end ${RUNS.e2e} runs each, interleaved; start-up ${RUNS.startup}; ` +
      `load ${RUNS.loadSeconds} s per phase\n`,
  );
  printTable(rows);
  const phases = Object.entries(e2e.marks).map(([name, xs]) => `${name} ${median(xs).toFixed(1)}`)
    .join(", ");
  console.log(`\nours -v, median ms since the session started: ${phases}`);

  const result = {
    environment: { ...env, responder: responderName },
    runs: RUNS,
    table: rows,
    targets: {
      ...Object.fromEntries(
        Object.entries(targets).map(([key, t]) => [key, {
          ratio: Math.round(t.ratioValue * 1000) / 1000,
          limit: TARGETS[(key === "e2eTask" ? "e2e" : key) as keyof typeof TARGETS],
          pass: t.pass,
        }]),
      ),
      keyExchangesPerSecond: {
        value: Math.round(load.keyExchangesPerSecond),
        limit: TARGETS.keyExchangesPerSecond,
        pass: kxPass,
      },
    },
    samples: {
      dh: {
        [`ours_keygen_${B}`]: summary(dh.keygen[B]),
        [`ours_shared_${B}`]: summary(dh.shared[B]),
        ours_keygen_4096: summary(dh.keygen[4096]),
        ours_shared_4096: summary(dh.shared[4096]),
        pyca_keygen: summary(dh.pyca.keygen_ms),
        pyca_exchange: summary(dh.pyca.exchange_ms),
        pyca_exponent_bits: dh.pyca.exponent_bits,
        [`ours_cold_first_keygen_${B}`]: summary(cold.keygen),
        [`ours_cold_first_shared_${B}`]: summary(cold.shared),
      },
      endToEnd: {
        ours_deno_run: summary(e2e.times.ours),
        python_reference: summary(e2e.times.python),
        ours_deno_task: summary(e2e.times.task),
        ours_verbose_marks: Object.fromEntries(
          Object.entries(e2e.marks).map(([key, v]) => [key, summary(v)]),
        ),
      },
      responder: {
        ...load,
        keyExchangesPerSecond: Math.round(load.keyExchangesPerSecond),
        requestsPerSecond: Math.round(load.requestsPerSecond),
      },
      startup: Object.fromEntries(Object.entries(startup).map(([key, v]) => [key, summary(v)])),
    },
  };
  if (!QUICK) {
    const dir = `${ROOT}/bench/results`;
    await Deno.mkdir(dir, { recursive: true });
    const json = JSON.stringify(result, null, 2) + "\n";
    await Deno.writeTextFile(`${dir}/latest.json`, json);
    await Deno.writeTextFile(`${dir}/${env.date.slice(0, 10)}.json`, json);
    console.log(
      `\nwritten: bench/results/latest.json, bench/results/${env.date.slice(0, 10)}.json`,
    );
  }
  progress("done");
}

if (import.meta.main) {
  const child = Deno.args.indexOf("--cold-dh-child");
  if (child >= 0) await coldDhChild(Number(Deno.args[child + 1]));
  else await main();
}
