/**
 * `secure_mqtt_check client`: the checks of a client under test. The checker runs its own
 * broker ({@linkcode RecordingBroker}) and plays the responder ({@linkcode ScriptedResponder});
 * each case runs the client once or twice as `COMMAND ARGS... -h HOST -p PORT NETID ACTION
 * MESSAGE`, with a fresh NetID, and judges its exit, its output, what it published and what
 * the broker saw.
 *
 * @module
 */

import { encodePublicKeyPem, generateKeyPair } from "../crypto/dh.ts";
import { Fernet } from "../crypto/fernet.ts";
import type { Logger } from "../log.ts";
import { loadLabGroup } from "../protocol/key_agreement.ts";
import type { CheckCase } from "./cases.ts";
import { hostileKeys } from "./hostile_keys.ts";
import {
  crashOf,
  describeRun,
  failedCleanly,
  linesOf,
  quote,
  runDetails,
  succeeded,
  tellingLine,
} from "./judge.ts";
import { type ProgramResult, runProgram } from "./process.ts";
import {
  acknowledgedBefore,
  RecordingBroker,
  topicMatches,
  type WireConnection,
  type WirePacket,
} from "./recorder.ts";
import { type CaseResult, fail, type Outcome, pass, runCases, seconds, skip } from "./runner.ts";
import {
  type Exchange,
  FORGED_TEXT,
  type Script,
  ScriptedResponder,
} from "./scripted_responder.ts";

/** How the client under test is run. */
export interface ClientSuiteOptions {
  /** The client: program and arguments, before the lab's options and positionals. */
  command: readonly string[];
  /**
   * The option that names the broker host. Given, every case uses it; not given, `-h`, or
   * `--host` once `-h` has failed and `--host` works (so that one bug fails one case).
   */
  hostFlag?: string;
  /** The option that names the broker port (default `-p`). */
  portFlag?: string;
  /** The longest one run of the client may take; then it is ended ("hangs"). */
  deadlineMs: number;
  /** Where the client runs (default: our working directory). */
  cwd?: string;
  /** Progress lines (`-v`). */
  logger?: Logger;
}

/** How long a client may take to exit once it has its answer. */
const EXIT_GRACE_MS = 3000;
/** How long the SUBACK is held in `client.mqtt.suback-first`. */
const SUBACK_DELAY_MS = 500;

/** Messages per action, and what they are for. */
const MESSAGES: Record<string, string> = {
  uppercase: "hello world",
  lowercase: "Hello World",
  "title-case": "they're bill's friends from the UK",
  reverse: "stressed desserts",
  shuffle: "abcdefghijklmnop",
  random: "hello world",
};
const NON_ASCII = "grüße, ça va? Ωμέγα ✓ 🚀";

/** One run of the client, and what the checker saw of it. */
interface Observed {
  netid: string;
  action: string;
  message: string;
  run: ProgramResult;
  exchange: Exchange;
  packets: readonly WirePacket[];
  connections: readonly WireConnection[];
}

interface RunSpec {
  signal: AbortSignal;
  netid?: string;
  action?: string;
  message?: string;
  script?: Script;
  /** The arguments after the command, instead of the lab's usual ones. */
  argv?: string[];
  host?: { host: string; port: number };
  hostFlag?: string;
  /** Ends the run as soon as it holds: the verdict is known. */
  decisive?: (exchange: Exchange) => boolean;
  /** Called before the client starts, once the netid's script is in place. */
  prepare?: (netid: string) => Promise<void>;
}

class ClientSuite {
  readonly group = loadLabGroup();
  readonly hostile = hostileKeys(this.group);
  hostFlag: string;
  readonly portFlag: string;
  readonly #runs: ProgramResult[] = [];

  constructor(
    readonly broker: RecordingBroker,
    readonly responder: ScriptedResponder,
    readonly options: ClientSuiteOptions,
  ) {
    this.hostFlag = options.hostFlag ?? "-h";
    this.portFlag = options.portFlag ?? "-p";
  }

  /** The runs of the current case, for `--json`. */
  takeRuns(): ProgramResult[] {
    return this.#runs.splice(0);
  }

  /** Runs the client once for a fresh netid (unless `spec.netid`), under `spec.script`. */
  async run(spec: RunSpec): Promise<Observed> {
    const netid = spec.netid ?? freshNetid();
    const action = spec.action ?? "uppercase";
    const message = spec.message ?? MESSAGES[action] ?? "hello world";
    const exchange = this.responder.expect(netid, spec.script ?? { key: { kind: "normal" } });
    const where = spec.host ?? { host: this.broker.host, port: this.broker.port };
    const argv = spec.argv ?? [
      spec.hostFlag ?? this.hostFlag,
      where.host,
      this.portFlag,
      String(where.port),
      netid,
      action,
      message,
    ];
    const command = [...this.options.command, ...argv];
    const packetMark = this.broker.mark();
    const connectionMark = this.broker.connectionMark();
    const done = new AbortController();
    // Once it has its genuine answer, a client has EXIT_GRACE_MS to print it and exit.
    const plan = spec.script?.answer ?? "normal";
    const genuine = plan === "normal" || plan === "forged-first";
    let grace: ReturnType<typeof setTimeout> | undefined;
    const watch = () => {
      if (spec.decisive?.(exchange)) done.abort();
      else if (genuine && exchange.answers.length > 0 && grace === undefined) {
        grace = setTimeout(() => done.abort(), EXIT_GRACE_MS);
      }
    };
    const unwatch = exchange.onChange(watch);
    try {
      await spec.prepare?.(netid);
      this.options.logger?.debug(`run: ${command.join(" ")}`);
      const run = await runProgram(command, {
        deadlineMs: this.options.deadlineMs,
        signal: AbortSignal.any([spec.signal, done.signal]),
        cwd: this.options.cwd,
      });
      this.#runs.push(run);
      this.options.logger?.debug(`run ended: ${describeRun(run)}`);
      return {
        netid,
        action,
        message,
        run,
        exchange,
        packets: this.broker.packets(packetMark),
        connections: this.broker.connections(connectionMark),
      };
    } finally {
      unwatch();
      clearTimeout(grace);
      this.responder.forget(netid);
    }
  }
}

type Body = (suite: ClientSuite, signal: AbortSignal) => Promise<Outcome>;

// ---------------------------------------------------------------------------------------------
// Judging an exchange

/** What went wrong before an answer could be sent, or `undefined` when it went right. */
function exchangeProblem(o: Observed): Outcome | undefined {
  const { exchange, netid, action } = o;
  if (o.connections.length === 0) {
    return fail("a connection to the checker's broker", describeRun(o.run));
  }
  const mqtt5 = o.packets.find((p) => p.cmd === "connect" && p.protocolVersion === 5);
  if (mqtt5 && exchange.keyRequests.length === 0) {
    return fail(
      "an MQTT 3.1.1 connection (the checker's broker speaks 3.1.1)",
      `an MQTT 5 CONNECT, refused; ${describeRun(o.run)}`,
    );
  }
  if (exchange.keyRequests.length === 0) {
    return fail(
      `a key exchange request on ${netid}/key-exchange/request`,
      `${publishedTopics(o)}; ${describeRun(o.run)}`,
    );
  }
  const key = exchange.keyRequests[0];
  if (key.problem !== undefined) {
    return fail("a PEM SubjectPublicKeyInfo of the lab's group", key.problem);
  }
  const request = exchange.requests[0];
  if (request === undefined) {
    return exchange.keysSent === 0
      ? fail("a key exchange the checker could answer", describeRun(o.run))
      : fail(
        `a request on ${netid}/${action}/request`,
        `${publishedTopics(o)}; ${describeRun(o.run)}`,
      );
  }
  if (request.action !== action) {
    return fail(
      `a request on ${netid}/${action}/request`,
      `one on ${netid}/${request.action}/request`,
    );
  }
  if (request.key === "stale") {
    return fail(
      "the retained (stale) key exchange response ignored",
      "a request under the key it holds: the client took the retained message",
    );
  }
  if (request.key === "stripped") {
    return fail(
      "a key from all 512 bytes of the shared secret (it starts with a zero byte here)",
      "a request under the key of the secret without its leading zero byte",
    );
  }
  if (request.key !== "session") {
    return fail(
      "a request token under the session key",
      `${request.bytes} bytes that do not verify under it`,
    );
  }
  if (request.text !== o.message) {
    return fail(
      `the message ${quote(o.message)} in the request`,
      request.text === undefined ? "bytes that are not UTF-8" : quote(request.text),
    );
  }
  return undefined;
}

/** The topics the client published on, for a failure line. */
function publishedTopics(o: Observed): string {
  const topics = [
    ...new Set(
      o.packets.filter((p) => p.cmd === "publish" && p.direction === "up").map((p) => p.topic!),
    ),
  ];
  return topics.length === 0
    ? "nothing published"
    : `published on ${topics.slice(0, 3).join(", ")}${topics.length > 3 ? ", …" : ""}`;
}

/** The exchange and the answer: printed as a line of stdout, exit 0. */
function answerProblem(o: Observed): Outcome | undefined {
  const problem = exchangeProblem(o);
  if (problem) return problem;
  const sent = o.exchange.answers[0];
  if (sent === undefined) return fail("an answer sent", describeRun(o.run));
  const printed = linesOf(o.run.stdout).includes(sent.text);
  if (printed && succeeded(o.run)) return undefined;
  if (printed && o.run.killed === "case") {
    return fail(
      "exit 0 once the answer is printed",
      `the answer printed, then no exit within ${seconds(EXIT_GRACE_MS)}`,
    );
  }
  return fail(`${quote(sent.text)} on stdout and exit 0`, describeRun(o.run));
}

/** A failure the client must report cleanly: ended by itself, non-zero, no traceback. */
function cleanFailureProblem(o: Observed, what: string): Outcome | undefined {
  const { run } = o;
  if (run.killed === "deadline") return undefined; // judged by client.silent
  if (run.code === 0 && run.killed === undefined) {
    return fail(`a non-zero exit (${what})`, describeRun(run));
  }
  const crash = crashOf(run);
  if (crash) {
    return fail(
      `${what}, without a traceback`,
      `${crash}: ${quote(tellingLine(run.stderr + run.stdout) ?? "")}`,
    );
  }
  if (run.stderr.trim() === "" && run.killed === undefined) {
    return fail(`the reason on stderr (${what})`, describeRun(run));
  }
  return undefined;
}

function ended(run: ProgramResult): string {
  return run.killed === "deadline"
    ? `did not end within ${seconds(run.ms)} (see client.silent)`
    : `${describeRun(run)}`;
}

// ---------------------------------------------------------------------------------------------
// The cases

function actionCase(action: string, message?: string): Body {
  return async (suite, signal) => {
    const o = await suite.run({ signal, action, message });
    if (action === "random" && o.exchange.requests.length === 0 && !succeeded(o.run)) {
      const usage = /usage/i.test(o.run.stderr) || o.run.code === 2;
      if (usage || o.exchange.keyRequests.length === 0) {
        return skip(`the client does not offer random (${describeRun(o.run)})`);
      }
    }
    return answerProblem(o) ?? pass();
  };
}

function hostileCase(name: keyof ClientSuite["hostile"]): Body {
  return async (suite, signal) => {
    const key = suite.hostile[name];
    const o = await suite.run({
      signal,
      script: { key: { kind: "hostile", payload: key.payload, secrets: key.secrets } },
      decisive: (exchange) => exchange.requests.length > 0,
    });
    const ourKey = o.exchange.keyRequests[0];
    if (ourKey === undefined) return exchangeProblem(o)!;
    if (ourKey.problem !== undefined) {
      return fail("a PEM SubjectPublicKeyInfo of the lab's group", ourKey.problem);
    }
    if (o.exchange.keysSent === 0) {
      return fail(`the checker's key (${key.label}) delivered`, describeRun(o.run));
    }
    const request = o.exchange.requests[0];
    if (request !== undefined) {
      const why = request.key?.startsWith("hostile")
        ? " under a key everyone can compute from it"
        : "";
      return fail(`${key.label} refused`, `the client accepted it and sent its request${why}`);
    }
    return cleanFailureProblem(o, `${key.label} refused`) ?? pass(ended(o.run));
  };
}

const usageCase =
  (argv: (suite: ClientSuite, netid: string) => string[]): Body => async (suite, signal) => {
    const netid = freshNetid();
    const o = await suite.run({ signal, netid, argv: argv(suite, netid) });
    const { run } = o;
    if (run.killed === "deadline") {
      return fail("a usage error at once", `still running after ${seconds(run.ms)}`);
    }
    if (succeeded(run)) return fail("a non-zero exit, an error and the usage", describeRun(run));
    const crash = crashOf(run);
    if (crash) return fail("an error and the usage, without a traceback", crash);
    if (!/usage/i.test(run.stderr)) {
      return /usage/i.test(run.stdout)
        ? fail("the usage on stderr", `it on stdout; ${describeRun(run)}`)
        : fail("an error and the usage on stderr", describeRun(run));
    }
    if (linesOf(run.stderr).filter((l) => l.trim() !== "").length < 2) {
      return fail("an error line and the usage", describeRun(run));
    }
    return pass(`exit ${run.code ?? run.signal}`);
  };

const refusedPort = async (): Promise<number> => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return await Promise.resolve(port);
};

const BODIES: Record<string, Body> = {
  "client.cli.h-host": async (suite, signal) => {
    const where = suite.broker.alternate ?? { host: suite.broker.host, port: suite.broker.port };
    const judge = (o: Observed) => {
      const problem = answerProblem(o);
      if (problem) return problem;
      const wrong = o.connections.find((c) => c.localAddress !== where.host);
      if (wrong) return fail(`a connection to ${where.host}`, `one to ${wrong.localAddress}`);
      return undefined;
    };
    const o = await suite.run({ signal, host: where, hostFlag: "-h" });
    const problem = judge(o);
    const note = suite.broker.alternate
      ? undefined
      : "(127.0.0.2 is not available here: -h was not told from the default host)";
    if (!problem) {
      if (suite.options.hostFlag === undefined) suite.hostFlag = "-h";
      return pass(note);
    }
    if (suite.options.hostFlag !== undefined || problem.status !== "fail") return problem;
    const retry = await suite.run({ signal, host: where, hostFlag: "--host" });
    if (judge(retry) !== undefined) return problem;
    suite.hostFlag = "--host";
    return fail(
      `-h ${where.host} to name the broker`,
      `${problem.got}; --host works, and the other cases use it`,
    );
  },
  "client.cli.help": async (suite, signal) => {
    const o = await suite.run({ signal, argv: ["--help"] });
    if (succeeded(o.run) && o.run.stdout.trim() !== "" && !crashOf(o.run)) return pass();
    return fail("help on stdout and exit 0", describeRun(o.run));
  },
  "client.cli.wrong-option": usageCase((s, netid) => [
    "--no-such-option",
    s.hostFlag,
    s.broker.host,
    s.portFlag,
    String(s.broker.port),
    netid,
    "uppercase",
    "hello",
  ]),
  "client.cli.missing-argument": usageCase((s, netid) => [
    s.hostFlag,
    s.broker.host,
    s.portFlag,
    String(s.broker.port),
    netid,
    "uppercase",
  ]),
  "client.cli.bad-action": async (suite, signal) => {
    const o = await suite.run({
      signal,
      action: "frobnicate",
      message: "hello",
      decisive: (exchange) => exchange.requests.length > 0,
    });
    if (o.exchange.requests.length > 0) {
      return fail(
        "a usage error before anything is sent",
        `a request on ${o.netid}/frobnicate/request`,
      );
    }
    if (succeeded(o.run)) return fail("a non-zero exit", describeRun(o.run));
    const crash = crashOf(o.run);
    if (crash) return fail("a usage error, without a traceback", crash);
    if (o.run.killed === "deadline") {
      return fail("a usage error", `still running after ${seconds(o.run.ms)}`);
    }
    const usage = /usage/i.test(o.run.stderr);
    return pass(
      `exit ${o.run.code ?? o.run.signal}${usage ? ", with the usage" : ", without the usage"}`,
    );
  },
  "client.action.uppercase": actionCase("uppercase"),
  "client.action.lowercase": actionCase("lowercase"),
  "client.action.title-case": actionCase("title-case"),
  "client.action.reverse": actionCase("reverse"),
  "client.action.shuffle": actionCase("shuffle"),
  "client.action.random": actionCase("random"),
  "client.text.non-ascii": actionCase("uppercase", NON_ASCII),
  "client.kx.public-key": async (suite, signal) => {
    const o = await suite.run({ signal, decisive: (exchange) => exchange.keyRequests.length > 0 });
    const key = o.exchange.keyRequests[0];
    if (key === undefined) return exchangeProblem(o)!;
    if (key.problem !== undefined) {
      return fail("a PEM SubjectPublicKeyInfo of the lab's group", key.problem);
    }
    return pass();
  },
  "client.kx.zero-lead": async (suite, signal) => {
    const o = await suite.run({
      signal,
      action: "reverse",
      message: "zero-led Z",
      script: { key: { kind: "zero-lead" } },
      decisive: (exchange) => exchange.requests.some((r) => r.key === "stripped"),
    });
    return answerProblem(o) ?? pass();
  },
  "client.mqtt.client-id": async (suite, signal) => {
    const o = await suite.run({ signal });
    const ids = o.packets.filter((p) => p.cmd === "connect").map((p) => p.clientId!);
    if (ids.length === 0) return fail("a CONNECT", describeRun(o.run));
    const other = ids.find((id) => id !== o.netid);
    if (other !== undefined) return fail(`the client ID ${quote(o.netid)}`, quote(other));
    return pass();
  },
  "client.mqtt.qos": async (suite, signal) => {
    const o = await suite.run({ signal });
    const up = o.packets.filter((p) => p.direction === "up");
    for (const p of up) {
      for (const s of p.subscriptions ?? []) {
        if (s.qos !== 1) {
          return fail(`QoS 1 on every SUBSCRIBE`, `${s.topic} subscribed at QoS ${s.qos}`);
        }
      }
      if (p.cmd === "publish" && p.qos !== 1) {
        return fail("QoS 1 on every PUBLISH", `a PUBLISH on ${p.topic} at QoS ${p.qos}`);
      }
    }
    if (!up.some((p) => p.cmd === "subscribe")) return fail("a SUBSCRIBE", describeRun(o.run));
    if (!up.some((p) => p.cmd === "publish")) return fail("a PUBLISH", describeRun(o.run));
    return pass();
  },
  "client.mqtt.suback-first": async (suite, signal) => {
    const netid = freshNetid();
    const kxRequest = `${netid}/key-exchange/request`;
    const needed = [`${netid}/key-exchange/response`, `${netid}/uppercase/response`];
    const mark = suite.broker.mark();
    const early = new AbortController();
    let violation: string | undefined;
    let sentAfterMs: number | undefined;
    const stopWaiting = new AbortController();
    const watching = suite.broker.waitFor(
      (p) => p.cmd === "publish" && p.direction === "up" && p.topic === kxRequest,
      { from: mark, signal: AbortSignal.any([signal, stopWaiting.signal]) },
    ).then((publish) => {
      if (publish === undefined) return;
      const packets = suite.broker.packets(mark);
      const filters = acknowledgedBefore(packets, publish.seq);
      const missing = needed.filter((topic) => !filters.some((f) => topicMatches(f, topic)));
      const lastAck = packets.filter((p) => p.cmd === "suback" && p.seq < publish.seq).at(-1);
      if (lastAck) sentAfterMs = publish.at - lastAck.at;
      if (missing.length > 0) {
        const subscribe = packets.find((p) => p.cmd === "subscribe");
        const since = subscribe
          ? `${Math.round(publish.at - subscribe.at)} ms after its SUBSCRIBE, `
          : "";
        violation = `the key published ${since}before the SUBACK for ${missing.join(" and ")}`;
        early.abort();
      }
    });
    suite.broker.subackDelayMs = SUBACK_DELAY_MS;
    let o: Observed;
    try {
      o = await suite.run({ signal: AbortSignal.any([signal, early.signal]), netid });
    } finally {
      suite.broker.subackDelayMs = 0;
      stopWaiting.abort();
      await watching;
    }
    if (violation) {
      return fail(`SUBACKs for ${needed.join(" and ")} before the key exchange request`, violation);
    }
    if (o.exchange.keyRequests.length === 0) return exchangeProblem(o)!;
    return pass(
      `SUBACK held ${seconds(SUBACK_DELAY_MS)}` +
        (sentAfterMs === undefined ? "" : `; the key left ${Math.round(sentAfterMs)} ms after it`),
    );
  },
  "client.retained": async (suite, signal) => {
    // A key exchange response and an answer left retained by an earlier session.
    const stale = generateKeyPair(suite.group);
    const netid = freshNetid();
    const topics = [`${netid}/key-exchange/response`, `${netid}/uppercase/response`];
    try {
      const o = await suite.run({
        signal,
        netid,
        script: { key: { kind: "normal" }, staleKey: stale.privateKey },
        decisive: (exchange) => exchange.requests.some((r) => r.key === "stale"),
        prepare: async () => {
          const forger = await Fernet.fromBase64Key(Fernet.generateKey());
          await suite.responder.retain(topics[0], encodePublicKeyPem(suite.group, stale.publicKey));
          await suite.responder.retain(topics[1], await forger.encrypt("STALE ANSWER"));
        },
      });
      return answerProblem(o) ?? pass();
    } finally {
      await Promise.allSettled(topics.map((topic) => suite.responder.clearRetained(topic)));
    }
  },
  "client.kx.forged-first": async (suite, signal) => {
    const o = await suite.run({
      signal,
      script: { key: { kind: "normal" }, answer: "forged-first" },
    });
    if (o.run.stdout.includes(FORGED_TEXT)) {
      return fail("the forged answer never printed", describeRun(o.run));
    }
    const problem = answerProblem(o);
    if (problem === undefined) return pass("skipped the forged token");
    const exchanged = exchangeProblem(o) === undefined && o.exchange.answers.length > 0;
    if (exchanged && failedCleanly(o.run) && o.run.stdout.trim() === "") {
      return pass(`a clean failure (${describeRun(o.run)}); the lab's way is to skip it and wait`);
    }
    if (exchanged && o.run.killed === "deadline") {
      return fail(
        "the genuine answer, or a clean failure",
        `still running after ${seconds(o.run.ms)}`,
      );
    }
    return problem;
  },
  "client.hostile.y-one": hostileCase("y-one"),
  "client.hostile.y-p-minus-1": hostileCase("y-p-minus-1"),
  "client.hostile.other-p": hostileCase("other-p"),
  "client.hostile.other-g": hostileCase("other-g"),
  "client.hostile.not-pem": hostileCase("not-pem"),
  "client.hostile.tampered": async (suite, signal) => {
    const o = await suite.run({ signal, script: { key: { kind: "normal" }, answer: "tampered" } });
    const problem = exchangeProblem(o);
    if (problem) return problem;
    const sent = o.exchange.answers[0];
    if (sent === undefined) return fail("an answer sent", describeRun(o.run));
    const lines = linesOf(o.run.stdout);
    if (lines.includes(sent.text) || (sent.tamperedText && lines.includes(sent.tamperedText))) {
      return fail("the tampered answer never printed", "it printed it: is the HMAC checked?");
    }
    return cleanFailureProblem(o, "the tampered answer refused") ?? pass(ended(o.run));
  },
  "client.output.answer-only": async (suite, signal) => {
    const o = await suite.run({ signal });
    const problem = answerProblem(o);
    if (problem) return problem;
    const answer = o.exchange.answers[0].text;
    const out = o.run.stdout.replace(/\r\n/g, "\n");
    if (out === `${answer}\n` || out === answer) return pass();
    return fail(`stdout exactly ${quote(`${answer}\n`)}`, quote(o.run.stdout));
  },
  "client.output.errors-on-stderr": async (suite, signal) => {
    const port = await refusedPort();
    const o = await suite.run({ signal, host: { host: suite.broker.host, port } });
    const { run } = o;
    if (run.killed === "deadline") {
      return fail("a refused connection reported", `still running after ${seconds(run.ms)}`);
    }
    const problem = cleanFailureProblem(o, "a refused connection");
    if (problem) return problem;
    if (run.stdout !== "") return fail("nothing on stdout", `stdout ${quote(run.stdout)}`);
    return pass(describeRun(run));
  },
  "client.output.one-line-error": async (suite, signal) => {
    const port = await refusedPort();
    const o = await suite.run({ signal, host: { host: suite.broker.host, port } });
    const lines = linesOf(o.run.stderr).filter((l) => l.trim() !== "");
    if (o.run.killed === undefined && lines.length === 1) return pass();
    if (o.run.killed === "deadline") {
      return fail("one line on stderr", `still running after ${seconds(o.run.ms)}`);
    }
    return fail("one line on stderr", `${lines.length} lines: ${describeRun(o.run)}`);
  },
  "client.silent": async (suite, signal) => {
    const o = await suite.run({ signal, script: { key: { kind: "silent" } } });
    if (o.run.killed === "deadline") {
      return fail(
        "the client to end by itself",
        `still running after ${seconds(o.run.ms)}: it hangs`,
      );
    }
    if (o.exchange.keyRequests.length === 0) return exchangeProblem(o)!;
    return cleanFailureProblem(o, "no answer reported") ?? pass(`ended after ${seconds(o.run.ms)}`);
  },
};

/** The ids the client suite implements (each a case of {@linkcode CLIENT_CASES}). */
export const CLIENT_CASE_IDS: readonly string[] = Object.keys(BODIES);

/**
 * Runs `cases` against the client: starts the checker's broker and responder, runs each case
 * in order, stops everything, and returns the results.
 */
export async function runClientSuite(
  cases: readonly CheckCase[],
  options: ClientSuiteOptions,
  hooks: { onResult?: (result: CaseResult) => void; signal?: AbortSignal } = {},
): Promise<CaseResult[]> {
  await using broker = await RecordingBroker.start();
  await using responder = await ScriptedResponder.start(broker.direct, loadLabGroup());
  options.logger?.debug(`broker on ${broker.host}:${broker.port}`);
  const suite = new ClientSuite(broker, responder, options);
  return await runCases(cases, async (c, signal) => {
    const outcome = await BODIES[c.id](suite, signal);
    const runs = suite.takeRuns();
    if (runs.length > 0) outcome.details = { runs: runs.map(runDetails) };
    return outcome;
  }, {
    // A case runs the client at most twice (client.cli.h-host's retry with --host).
    budgetMs: () => 2 * options.deadlineMs + 10_000,
    onResult: hooks.onResult,
    signal: hooks.signal,
  });
}

function freshNetid(): string {
  return `c${crypto.getRandomValues(new Uint8Array(4)).toHex()}`;
}
