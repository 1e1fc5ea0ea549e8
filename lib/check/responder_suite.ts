/**
 * `secure_mqtt_check responder`: the checks of a responder under test. The checker plays
 * clients ({@linkcode CheckClient}) against a responder already on a broker, or starts one
 * (`-- COMMAND`, run as `COMMAND ARGS... -h HOST -p PORT`) on its own broker, where the
 * recording relay also shows what the responder sends, with which QoS and retain flag.
 * Hostile clients are each followed by a normal one, which must still be answered.
 *
 * @module
 */

import { parseSignatureMessage, SignatureMessageError } from "../auth/signature.ts";
import { toBrokerError } from "../mqtt.ts";
import { DhPrecomputation, encodePublicKeyPem } from "../crypto/dh.ts";
import { Fernet } from "../crypto/fernet.ts";
import { deriveBoundKey, deriveFernetKey } from "../crypto/hkdf.ts";
import { modPow } from "../crypto/modpow.ts";
import type { Logger } from "../log.ts";
import { loadLabGroup } from "../protocol/key_agreement.ts";
import { KEY_EXCHANGE, requestTopic, responseTopic, signatureTopic } from "../protocol/topics.ts";
import { actionProblem } from "./action_rules.ts";
import type { CheckCase } from "./cases.ts";
import { hostileKeys, secretBytes, stripped } from "./hostile_keys.ts";
import { endOf, quote, tellingLine } from "./judge.ts";
import { Program } from "./process.ts";
import { acknowledgedBefore, RecordingBroker, topicMatches } from "./recorder.ts";
import { type CaseResult, fail, type Outcome, pass, runCases, seconds, skip } from "./runner.ts";
import {
  type Answer,
  ask,
  awaitAnswer,
  CheckClient,
  type Crypto,
  type Delivery,
  keyExchange,
  newKeyPair,
  type Session,
  tryDecrypt,
} from "./scripted_client.ts";

/** What to check and how. */
export interface ResponderSuiteOptions {
  /** The responder to start on the checker's own broker... */
  command?: readonly string[];
  /** ...or the broker where one already runs. */
  broker?: { host: string; port: number };
  /** Fingerprints its identity must have; given, the authenticated cases are required. */
  trust: readonly string[];
  /** The netid it serves, when it serves only one (detected from its SUBSCRIBE otherwise). */
  netid?: string;
  /** How `COMMAND` takes the broker's host: given, always; not given, `-h`, then `--host`. */
  hostFlag?: string;
  portFlag: string;
  /** The longest the responder may take to subscribe. */
  deadlineMs: number;
  /** The longest the checker waits for one message. */
  waitMs: number;
  cwd?: string;
  logger?: Logger;
}

const MESSAGES: Record<string, string> = {
  uppercase: "Hello World, they're 42!",
  lowercase: "Hello World, THEY'RE 42!",
  "title-case": "they're bill's friends from the UK",
  reverse: "stressed desserts 42",
  shuffle: "abcdefghijklmnopqrstuvwxyz",
  random: "hello world",
};
/** Where Python's case mappings differ from naive ones: digraphs, ligatures, ß, final sigma. */
export const NON_ASCII = "ǆungla ﬁne straße ΌΣΟΣ ça 🚀 ǈ";
/** How many key exchanges `responder.kx.zero-lead` tries (1 in 256 succeeds). */
const ZERO_LEAD_TRIES = 2000;

class ResponderSuite {
  readonly c: Crypto;
  readonly group = loadLabGroup();
  readonly hostile = hostileKeys(this.group);
  /** Where the checker's clients connect. */
  where: { host: string; port: number };
  fixedNetid: string | undefined;
  program: Program | undefined;
  /** How the start went: `responder.start`'s verdict; not ok, every other case skips. */
  started: { ok: boolean; outcome: Outcome } = { ok: false, outcome: skip("not started") };
  sawSignature = false;
  /** The netid whose requests were left retained before the responder started. */
  retainedNetid: string | undefined;
  readonly #gone = new AbortController();

  constructor(
    readonly options: ResponderSuiteOptions,
    readonly recorder: RecordingBroker | undefined,
  ) {
    this.c = { group: this.group, dh: { precomputation: new DhPrecomputation(this.group) } };
    this.where = recorder?.direct ?? options.broker!;
    this.fixedNetid = options.netid;
  }

  get waitMs(): number {
    return this.options.waitMs;
  }

  netid(): string {
    return this.fixedNetid ?? freshNetid();
  }

  /** A new connection of the checker's, closed with `stack`. */
  async client(stack: AsyncDisposableStack): Promise<CheckClient> {
    return stack.use(
      await CheckClient.connect(this.where, (delivery) => {
        if (delivery.topic.endsWith(`/${KEY_EXCHANGE}/signature`)) this.sawSignature = true;
      }),
    );
  }

  /** A watched connection and a session for `netid`, or the failure to report. */
  async session(
    stack: AsyncDisposableStack,
    signal: AbortSignal,
    netid = this.netid(),
  ): Promise<{ client: CheckClient; session: Session } | Outcome> {
    const client = await this.client(stack);
    await client.watch(netid);
    const session = await keyExchange(client, netid, this.c, {
      waitMs: this.waitMs,
      signal,
      ordinary: true,
    });
    if (typeof session === "string") return this.failure("a key exchange response", session);
    return { client, session };
  }

  /** A failure, with what became of the responder if it has exited. */
  failure(expected: string, got: string): Outcome {
    const gone = this.goneLine();
    return fail(expected, gone ? `${got}; ${gone}` : got);
  }

  /** "the responder exited (exit 1 after 3 s): …", once it has. */
  goneLine(): string | undefined {
    if (this.program === undefined || !this.program.ended) return undefined;
    const run = this.program.result();
    const line = tellingLine(run.stderr);
    return `the responder exited (${endOf(run)})${line ? `: ${quote(line)}` : ""}`;
  }

  /** The case's signal, aborted too when the responder under test exits. */
  signalFor(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, this.#gone.signal]);
  }

  watchProgram(program: Program): void {
    this.program = program;
    program.exited.then(() => this.#gone.abort());
  }
}

type Body = (suite: ResponderSuite, signal: AbortSignal) => Promise<Outcome>;

// ---------------------------------------------------------------------------------------------
// Starting the responder under test

/** Starts `command` on the checker's broker and waits until it subscribes to key exchanges. */
async function launch(
  suite: ResponderSuite,
  recorder: RecordingBroker,
  hostFlag: string,
  signal: AbortSignal,
): Promise<{ program: Program; filters: string[] } | string> {
  const command = [
    ...suite.options.command!,
    hostFlag,
    recorder.host,
    suite.options.portFlag,
    String(recorder.port),
  ];
  suite.options.logger?.debug(`start: ${command.join(" ")}`);
  const mark = recorder.mark();
  const program = Program.start(command, { cwd: suite.options.cwd });
  const probe = freshNetid();
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), suite.options.deadlineMs);
  const abort = AbortSignal.any([signal, stop.signal]);
  program.exited.then(() => stop.abort());
  let filters: string[] = [];
  const subscribed = await recorder.waitFor((p) => {
    if (p.cmd !== "suback") return false;
    filters = acknowledgedBefore(recorder.packets(mark), p.seq + 1);
    return filters.some((f) => kxNetid(f, probe) !== undefined);
  }, { from: mark, signal: abort });
  clearTimeout(timer);
  if (subscribed) return { program, filters };
  await program.stop(program.ended ? undefined : "deadline");
  const run = program.result();
  const line = tellingLine(run.stderr);
  if (run.killed === "deadline") {
    return `no subscription to <netid>/key-exchange/request within ${
      seconds(suite.options.deadlineMs)
    }${line ? `; stderr ${quote(line)}` : ""}`;
  }
  return `${endOf(run)} without subscribing${line ? `; stderr ${quote(line)}` : ""}`;
}

/** The netid a filter serves key exchanges for: `*` for every netid, else the one. */
function kxNetid(filter: string, probe: string): string | undefined {
  if (topicMatches(filter, requestTopic(probe, KEY_EXCHANGE))) return "*";
  const first = filter.split("/")[0];
  if (first === "" || first === "+" || first === "#") return undefined;
  return topicMatches(filter, requestTopic(first, KEY_EXCHANGE)) ? first : undefined;
}

async function startOwn(suite: ResponderSuite, recorder: RecordingBroker, signal: AbortSignal) {
  const explicit = suite.options.hostFlag;
  const began = performance.now();
  let started = await launch(suite, recorder, explicit ?? "-h", signal);
  let note = "";
  if (typeof started === "string" && explicit === undefined) {
    const first = started;
    const retry = await launch(suite, recorder, "--host", signal);
    if (typeof retry !== "string") {
      suite.watchProgram(retry.program);
      detectNetid(suite, retry.filters);
      suite.started = {
        ok: true,
        outcome: fail(
          `-h ${recorder.host} to name the broker`,
          `${first}; --host works, and the other cases use it`,
        ),
      };
      return;
    }
    started = first;
  }
  if (typeof started === "string") {
    suite.started = {
      ok: false,
      outcome: fail("the responder subscribed to key exchanges", started),
    };
    return;
  }
  suite.watchProgram(started.program);
  detectNetid(suite, started.filters);
  note = `subscribed to ${started.filters.join(", ")} after ${seconds(performance.now() - began)}`;
  if (suite.fixedNetid !== undefined) note += ` (it serves the netid ${suite.fixedNetid} only)`;
  suite.started = { ok: true, outcome: pass(note) };
}

function detectNetid(suite: ResponderSuite, filters: string[]): void {
  if (suite.options.netid !== undefined) return;
  const probe = freshNetid();
  const served = filters.map((f) => kxNetid(f, probe)).filter((n) => n !== undefined);
  if (!served.includes("*")) suite.fixedNetid = served[0];
}

async function startRemote(suite: ResponderSuite, signal: AbortSignal) {
  await using stack = new AsyncDisposableStack();
  let result;
  try {
    result = await suite.session(stack, signal);
  } catch (error) {
    const broker = { transport: "mqtt" as const, ...suite.where };
    suite.started = {
      ok: false,
      outcome: fail("a broker to connect to", toBrokerError(error, broker).message),
    };
    return;
  }
  if ("status" in result) {
    suite.started = {
      ok: false,
      outcome: fail(
        "a responder answering key exchanges",
        result.status === "fail" ? result.got : "none",
      ),
    };
    return;
  }
  suite.started = { ok: true, outcome: pass() };
}

// ---------------------------------------------------------------------------------------------
// The cases

function judgeAnswer(
  suite: ResponderSuite,
  action: string,
  message: string,
  answer: Answer,
): Outcome | undefined {
  if (answer.text === undefined) {
    const noise = answer.noise > 0 ? ` (${answer.noise} that did not verify)` : "";
    return suite.failure(
      `an answer on <netid>/${action}/response`,
      `none within ${seconds(suite.waitMs)}${noise}`,
    );
  }
  const problem = actionProblem(action, message, answer.text);
  return problem === undefined ? undefined : fail(problem, quote(answer.text));
}

function actionCase(action: string): Body {
  return async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const message = MESSAGES[action];
    const answer = await ask(s.client, s.session.netid, action, message, {
      fernet: s.session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    if (action === "random" && answer.text === undefined && suite.goneLine() === undefined) {
      return skip(`no answer to random within ${seconds(suite.waitMs)} (it need not offer it)`);
    }
    return judgeAnswer(suite, action, message, answer) ?? pass();
  };
}

/** A normal client on a netid of its own, after hostile ones: it must still be answered. */
async function stillAnswered(
  suite: ResponderSuite,
  stack: AsyncDisposableStack,
  signal: AbortSignal,
  after: string,
  netid?: string,
): Promise<Outcome | undefined> {
  const s = await suite.session(stack, signal, netid);
  if ("status" in s) {
    return s.status === "fail"
      ? suite.failure(`a normal client answered after ${after}`, s.got)
      : s;
  }
  const answer = await ask(s.client, s.session.netid, "uppercase", "still there?", {
    fernet: s.session.fernet,
    waitMs: suite.waitMs,
    signal,
  });
  const problem = judgeAnswer(suite, "uppercase", "still there?", answer);
  if (problem?.status === "fail") {
    return fail(`a normal client answered after ${after}`, `${problem.expected}: ${problem.got}`);
  }
  return problem;
}

/** Cases that need several netids, against a responder that serves one. */
function needsNetids(suite: ResponderSuite): Outcome | undefined {
  return suite.fixedNetid === undefined
    ? undefined
    : skip(`needs several netids; the responder serves ${suite.fixedNetid} only`);
}

const BODIES: Record<string, Body> = {
  "responder.start": (suite) => Promise.resolve(suite.started.outcome),
  "responder.kx.public-key": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const client = await suite.client(stack);
    const netid = suite.netid();
    await client.watch(netid);
    const session = await keyExchange(client, netid, suite.c, { waitMs: suite.waitMs, signal });
    if (typeof session === "string") {
      return session.startsWith("its key:")
        ? fail("a PEM SubjectPublicKeyInfo of the lab's group", session.slice(9))
        : suite.failure("a key exchange response", session);
    }
    if (session.theirY === session.ours.publicKey) {
      return fail("a key of its own", "our own public key sent back");
    }
    return pass();
  },
  "responder.action.uppercase": actionCase("uppercase"),
  "responder.action.lowercase": actionCase("lowercase"),
  "responder.action.title-case": actionCase("title-case"),
  "responder.action.reverse": actionCase("reverse"),
  "responder.action.shuffle": actionCase("shuffle"),
  "responder.action.random": actionCase("random"),
  "responder.text.non-ascii": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    for (const action of ["uppercase", "lowercase", "title-case", "reverse"]) {
      const answer = await ask(s.client, s.session.netid, action, NON_ASCII, {
        fernet: s.session.fernet,
        waitMs: suite.waitMs,
        signal,
      });
      const problem = judgeAnswer(suite, action, NON_ASCII, answer);
      if (problem?.status === "fail") {
        return fail(`${action}: ${problem.expected}`, problem.got);
      }
      if (problem) return problem;
    }
    return pass();
  },
  "responder.netids.concurrent": async (suite, signal) => {
    const fixed = needsNetids(suite);
    if (fixed) return fixed;
    await using stack = new AsyncDisposableStack();
    const client = await suite.client(stack);
    const netids = [0, 1, 2, 3].map(() => freshNetid());
    await client.watch(...netids);
    const sessions = await Promise.all(
      netids.map((netid) =>
        keyExchange(client, netid, suite.c, { waitMs: suite.waitMs, signal, ordinary: true })
      ),
    );
    const missing = sessions.findIndex((s) => typeof s === "string");
    if (missing >= 0) {
      return suite.failure(
        "four key exchanges at once answered",
        `${netids[missing]}: ${sessions[missing]}`,
      );
    }
    const actions = ["uppercase", "lowercase", "reverse", "title-case"];
    const answers = await Promise.all(
      (sessions as Session[]).map((session, i) =>
        ask(client, session.netid, actions[i], MESSAGES[actions[i]], {
          fernet: session.fernet,
          waitMs: suite.waitMs,
          signal,
        })
      ),
    );
    for (const [i, answer] of answers.entries()) {
      const problem = judgeAnswer(suite, actions[i], MESSAGES[actions[i]], answer);
      if (problem?.status === "fail") return fail(`${netids[i]}: ${problem.expected}`, problem.got);
      if (problem) return problem;
    }
    return pass();
  },
  "responder.kx.zero-lead": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const client = await suite.client(stack);
    const netid = suite.netid();
    await client.watch(netid);
    const { group, dh } = suite.c;
    let ours = newKeyPair(suite.c);
    let previous: bigint | undefined;
    for (let tries = 1; tries <= ZERO_LEAD_TRIES; tries++) {
      if (signal.aborted) break;
      const session = await keyExchange(client, netid, suite.c, {
        waitMs: suite.waitMs,
        signal,
        ours,
      });
      if (typeof session === "string") {
        return suite.failure(`key exchange ${tries} answered`, session);
      }
      if (session.theirY === previous) {
        // A responder with one key for every exchange: step our exponent instead, Z by B.
        let x = ours.privateKey;
        let z = dh.precomputation.pow(session.theirY, x);
        const limit = 1n << BigInt(group.byteLength * 8 - 8);
        for (let k = 0; k < 20_000 && z >= limit; k++) {
          x++;
          z = z * session.theirY % group.p;
        }
        if (z >= limit) break;
        ours = { privateKey: x, publicKey: modPow(group.g, x, group.p) };
        previous = undefined;
        continue;
      }
      previous = session.theirY;
      if (session.z[0] !== 0) continue;
      const answer = await ask(client, netid, "reverse", "zero-led Z", {
        fernet: session.fernet,
        waitMs: suite.waitMs,
        signal,
      });
      const problem = judgeAnswer(suite, "reverse", "zero-led Z", answer);
      if (problem?.status === "fail" && answer.text === undefined) {
        return fail(
          "an answer when Z starts with a zero byte (all 512 bytes kept)",
          `none within ${
            seconds(suite.waitMs)
          } (key exchange ${tries}: the first with a zero-led Z)`,
        );
      }
      return problem ?? pass(`Z started with a zero byte after ${tries} key exchanges`);
    }
    return signal.aborted
      ? fail("a zero-led shared secret found in time", `the case's deadline passed first`)
      : skip(`no zero-led shared secret in ${ZERO_LEAD_TRIES} key exchanges (1 in 256 expected)`);
  },
  "responder.kx.key-checks": async (suite, signal) => {
    const fixed = needsNetids(suite);
    if (fixed) return fixed;
    await using stack = new AsyncDisposableStack();
    const client = await suite.client(stack);
    const keys = [suite.hostile["y-one"], suite.hostile["y-p-minus-1"]];
    const netids = keys.map(() => freshNetid());
    await client.watch(...netids);
    for (const [i, key] of keys.entries()) {
      await client.publish(requestTopic(netids[i], KEY_EXCHANGE), key.payload);
    }
    // A normal client after them: with its answer, the answers to the keys before it are in.
    const barrier = await suite.session(stack, signal);
    if ("status" in barrier) return barrier;
    const notes: string[] = [];
    for (const [i, key] of keys.entries()) {
      if (client.received(responseTopic(netids[i], KEY_EXCHANGE)).length === 0) {
        notes.push(`${key.label}: no key exchange response`);
        continue;
      }
      // It answered: is the session under the key everyone can compute usable?
      const probes: Fernet[] = [];
      for (const z of key.secrets) {
        const bytes = secretBytes(suite.group, z);
        for (const secret of [bytes, stripped(bytes)]) {
          probes.push(await Fernet.create(await deriveFernetKey(secret)));
        }
      }
      for (const probe of probes) {
        await client.publish(requestTopic(netids[i], "uppercase"), await probe.encrypt("probe"));
      }
      const after = await ask(barrier.client, barrier.session.netid, "uppercase", "after", {
        fernet: barrier.session.fernet,
        waitMs: suite.waitMs,
        signal,
      });
      if (after.text === undefined) {
        return suite.failure(
          "the normal client after it answered",
          `no answer (after ${key.label})`,
        );
      }
      for (const d of client.received(responseTopic(netids[i], "uppercase"))) {
        for (const probe of probes) {
          if (await tryDecrypt(probe, d.payload)) {
            return fail(
              `${key.label} refused`,
              `a request under Z = ${
                key.secrets.length > 1 ? "1 or p-1" : "1"
              } (known to everyone) answered`,
            );
          }
        }
      }
      notes.push(`${key.label}: answered the key exchange, but no session under it`);
    }
    return pass(notes.join("; "));
  },
  "responder.hostile.bad-keys": async (suite, signal) => {
    const fixed = needsNetids(suite);
    if (fixed) return fixed;
    await using stack = new AsyncDisposableStack();
    const client = await suite.client(stack);
    const h = suite.hostile;
    const junk: [string, string | Uint8Array][] = [
      ["not PEM", h["not-pem"].payload],
      ["empty", ""],
      ["64 KiB of random bytes", crypto.getRandomValues(new Uint8Array(65536))],
      ["a PEM whose base64 is cut short", encodePublicKeyPem(suite.group, 5n).slice(0, 300)],
      [h["other-p"].label, h["other-p"].payload],
      [h["other-g"].label, h["other-g"].payload],
      [
        "a PEM of 100 KiB",
        `-----BEGIN PUBLIC KEY-----\n${"QUFB\n".repeat(20_480)}-----END PUBLIC KEY-----\n`,
      ],
    ];
    const netids = junk.map(() => freshNetid());
    await client.watch(...netids);
    for (const [i, [, payload]] of junk.entries()) {
      await client.publish(requestTopic(netids[i], KEY_EXCHANGE), payload);
    }
    const problem = await stillAnswered(suite, stack, signal, "bad keys");
    if (problem) return problem;
    const answered = junk.filter((_, i) =>
      client.received(responseTopic(netids[i], KEY_EXCHANGE)).length > 0
    ).map(([label]) => label);
    return pass(
      answered.length === 0 ? "none answered" : `answered anyway: ${answered.join(", ")}`,
    );
  },
  "responder.hostile.bad-tokens": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s1 = await suite.session(stack, signal);
    if ("status" in s1) return s1;
    const { client } = s1;
    const netid = s1.session.netid;
    const oldToken = await s1.session.fernet.encrypt("an earlier session");
    const first = await ask(client, netid, "uppercase", "first", {
      fernet: s1.session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const firstProblem = judgeAnswer(suite, "uppercase", "first", first);
    if (firstProblem) return firstProblem;
    let otherToken: string | undefined;
    if (suite.fixedNetid === undefined) {
      const other = await suite.session(stack, signal);
      if ("status" in other) return other;
      otherToken = await other.session.fernet.encrypt("another netid's session");
    }
    const again = await keyExchange(client, netid, suite.c, {
      waitMs: suite.waitMs,
      signal,
      ordinary: true,
    });
    if (typeof again === "string") return suite.failure("a second key exchange answered", again);
    const forger = await Fernet.fromBase64Key(Fernet.generateKey());
    const tampered = Uint8Array.fromBase64(await again.fernet.encrypt("tampered"), {
      alphabet: "base64url",
    });
    tampered[tampered.length - 1] ^= 0x01;
    const junk: (string | Uint8Array)[] = [
      "not a token",
      "",
      crypto.getRandomValues(new Uint8Array(1024)),
      crypto.getRandomValues(new Uint8Array(96)).toBase64({ alphabet: "base64url" }),
      await forger.encrypt("under another key"),
      oldToken,
      tampered.toBase64({ alphabet: "base64url" }),
    ];
    if (otherToken) junk.push(otherToken);
    for (const payload of junk) await client.publish(requestTopic(netid, "uppercase"), payload);
    const answer = await ask(client, netid, "uppercase", "still here", {
      fernet: again.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const problem = judgeAnswer(suite, "uppercase", "still here", answer);
    if (problem?.status === "fail") {
      return fail(`the valid request after the junk answered: ${problem.expected}`, problem.got);
    }
    if (problem) return problem;
    for (const d of client.received(responseTopic(netid, "uppercase"))) {
      if (d.seq <= first.delivery!.seq || d === answer.delivery) continue;
      if (await tryDecrypt(s1.session.fernet, d.payload)) {
        return fail("the earlier session's token refused", "it was answered under the earlier key");
      }
      const plain = await tryDecrypt(again.fernet, d.payload);
      if (plain !== undefined) {
        return fail(
          "nothing answered but the valid request",
          "an answer to one of the junk tokens",
        );
      }
    }
    return pass(`${junk.length} junk tokens sent`);
  },
  "responder.hostile.unknown-action": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const { client, session } = s;
    await client.publish(
      requestTopic(session.netid, "frobnicate"),
      await session.fernet.encrypt("x"),
    );
    const answer = await ask(client, session.netid, "uppercase", "after frobnicate", {
      fernet: session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const problem = judgeAnswer(suite, "uppercase", "after frobnicate", answer);
    if (problem?.status === "fail") {
      return fail(`an answer after a request for frobnicate: ${problem.expected}`, problem.got);
    }
    if (problem) return problem;
    const replied = client.received(responseTopic(session.netid, "frobnicate")).length > 0;
    return pass(replied ? "it answered frobnicate with something" : "frobnicate not answered");
  },
  "responder.hostile.oversize": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const { client, session } = s;
    const openBefore = suite.recorder?.connections().filter((c) => c.closedAt === undefined) ?? [];
    await client.publish(requestTopic(session.netid, "uppercase"), "A".repeat(3 * 1024 * 1024));
    const kxNetid = suite.fixedNetid === undefined ? freshNetid() : session.netid;
    if (kxNetid !== session.netid) {
      await client.publish(
        requestTopic(kxNetid, KEY_EXCHANGE),
        crypto.getRandomValues(new Uint8Array(65536)).toBase64().repeat(12),
      );
    }
    const answer = await ask(client, session.netid, "uppercase", "after the big ones", {
      fernet: session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const problem = judgeAnswer(suite, "uppercase", "after the big ones", answer);
    if (problem?.status === "fail") {
      // On the checker's broker: did it leave the broker over the big packet, losing what was
      // sent to it meanwhile?
      const dropped = openBefore.find((c) => c.closedAt !== undefined);
      const why = dropped === undefined
        ? ""
        : "; it dropped its connection to the broker on the oversized payload, and the request " +
          "sent meanwhile was lost";
      return fail(`an answer after oversized payloads: ${problem.expected}`, problem.got + why);
    }
    return problem ?? pass();
  },
  "responder.hostile.retained-requests": async (suite, signal) => {
    const netid = suite.retainedNetid;
    const recorder = suite.recorder;
    if (recorder === undefined || netid === undefined) {
      return skip(
        "needs -- COMMAND: the requests must be retained before the responder subscribes",
      );
    }
    if (suite.fixedNetid !== undefined && suite.fixedNetid !== netid) {
      return skip(`the responder serves ${suite.fixedNetid} only`);
    }
    // It got the retained requests as it subscribed, long before this case: what it published
    // for their netid until now answered them.
    const answered = recorder.packets().filter((p) =>
      p.cmd === "publish" && p.direction === "up" && p.topic?.startsWith(`${netid}/`)
    ).map((p) => p.topic!);
    await using stack = new AsyncDisposableStack();
    const clear = await suite.client(stack);
    for (const action of [KEY_EXCHANGE, "uppercase"]) {
      await clear.publish(requestTopic(netid, action), "", true);
    }
    const problem = await stillAnswered(suite, stack, signal, "retained requests", netid);
    if (problem) return problem;
    if (answered.length > 0) {
      return fail("no answer to a retained request", `one on ${answered[0]}`);
    }
    return pass();
  },
  "responder.mqtt.qos": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const answer = await ask(s.client, s.session.netid, "uppercase", "qos", {
      fernet: s.session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const problem = judgeAnswer(suite, "uppercase", "qos", answer);
    if (problem) return problem;
    if (suite.recorder) {
      for (const p of suite.recorder.packets()) {
        if (p.direction !== "up") continue;
        for (const sub of p.subscriptions ?? []) {
          if (sub.qos !== 1) {
            return fail("QoS 1 on every SUBSCRIBE", `${sub.topic} at QoS ${sub.qos}`);
          }
        }
        if (p.cmd === "publish" && p.qos !== 1) {
          return fail("QoS 1 on every PUBLISH", `a PUBLISH on ${p.topic} at QoS ${p.qos}`);
        }
      }
      return pass("every packet it sent, as the broker saw it");
    }
    for (const d of [s.session.response, answer.delivery!]) {
      if (d.qos !== 1) {
        return fail("QoS 1 on every PUBLISH", `${d.topic} delivered at QoS ${d.qos}`);
      }
    }
    return pass("as delivered to a QoS 1 subscription");
  },
  "responder.mqtt.not-retained": async (suite, signal) => {
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const netid = s.session.netid;
    const answer = await ask(s.client, netid, "uppercase", "retained?", {
      fernet: s.session.fernet,
      waitMs: suite.waitMs,
      signal,
    });
    const problem = judgeAnswer(suite, "uppercase", "retained?", answer);
    if (problem) return problem;
    let retained: string[];
    if (suite.recorder) {
      retained = suite.recorder.packets().filter((p) =>
        p.cmd === "publish" && p.direction === "up" && p.retain
      ).map((p) => p.topic!);
    } else {
      // Retained messages come right after a new SUBACK, before our marker published after it.
      const fresh = await suite.client(stack);
      const marker = `${netid}/secure_mqtt_check-marker/response`;
      await fresh.subscribe([`${netid}/+/response`]);
      await fresh.publish(marker, "marker");
      await fresh.next(marker, suite.waitMs, signal);
      retained = [KEY_EXCHANGE, "uppercase"].flatMap((a) =>
        fresh.received(responseTopic(netid, a)).filter((d) => d.retain).map((d) => d.topic)
      );
      for (const topic of retained) await fresh.publish(topic, "", true);
    }
    if (retained.length > 0) {
      return fail("answers that are not retained", `retained on ${retained[0]}`);
    }
    return pass();
  },
  "responder.auth.signature": async (suite, signal) => {
    if (!(await hasIdentity(suite, signal))) {
      return skip("no identity: no step 2b seen (give --trust FINGERPRINT to require one)");
    }
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const verdict = await checkSignature(suite, s.client, s.session, signal);
    return typeof verdict === "string" ? pass(verdict) : verdict;
  },
  "responder.auth.bound-tokens": async (suite, signal) => {
    if (!(await hasIdentity(suite, signal))) {
      return skip("no identity: bound tokens follow a signed key exchange only");
    }
    await using stack = new AsyncDisposableStack();
    const s = await suite.session(stack, signal);
    if ("status" in s) return s;
    const { client, session } = s;
    const netid = session.netid;
    const signed = await checkSignature(suite, client, session, signal);
    if (typeof signed !== "string") return signed;
    const bound = async (dir: "request" | "response", action: string) =>
      await Fernet.create(await deriveBoundKey(session.z, { direction: dir, netid, action }));
    const request = await bound("request", "uppercase");
    const response = await bound("response", "uppercase");
    const wait = { waitMs: suite.waitMs, signal };
    await client.publish(requestTopic(netid, "uppercase"), await request.encrypt("bound"));
    const answer = await awaitAnswer(client, netid, "uppercase", response, wait);
    if (answer.text === undefined) {
      const lab = client.received(responseTopic(netid, "uppercase"));
      for (const d of lab) {
        if (await tryDecrypt(session.fernet, d.payload)) {
          return fail(
            "the answer under K(response, netid, uppercase)",
            "it came under the lab key",
          );
        }
      }
      return suite.failure(
        "an answer under K(response, netid, uppercase) to a bound request",
        `none within ${seconds(suite.waitMs)}`,
      );
    }
    if (answer.text !== "BOUND") return fail(quote("BOUND"), quote(answer.text));
    const lab = await ask(client, netid, "uppercase", "lab key", {
      fernet: session.fernet,
      ...wait,
    });
    if (lab.text !== "LAB KEY") {
      return suite.failure(
        "a lab-key request still answered under the lab key",
        lab.text === undefined ? "no answer" : quote(lab.text),
      );
    }
    // A token bound to reverse, moved to uppercase: refused. The bound request after it is the
    // barrier: its answer comes after any answer to the moved one.
    const moved = await bound("request", "reverse");
    await client.publish(requestTopic(netid, "uppercase"), await moved.encrypt("moved"));
    await client.publish(requestTopic(netid, "uppercase"), await request.encrypt("barrier"));
    const after = await awaitAnswer(client, netid, "uppercase", response, wait);
    if (after.text === "MOVED") {
      return fail("a token bound to reverse refused on uppercase", "it was answered");
    }
    if (after.text !== "BARRIER") {
      return suite.failure(
        "an answer to the bound request",
        after.text === undefined ? "none" : quote(after.text),
      );
    }
    return pass(`signed by ${signed}`);
  },
};

/**
 * Whether the responder has an identity: `--trust` says so, or a step 2b was seen. If none was
 * seen yet, two key exchanges in a row tell: a responder publishes step 2b right after step 2,
 * so the first exchange's signature arrives before the second exchange's response.
 */
async function hasIdentity(suite: ResponderSuite, signal: AbortSignal): Promise<boolean> {
  if (suite.options.trust.length > 0 || suite.sawSignature) return true;
  await using stack = new AsyncDisposableStack();
  const client = await suite.client(stack);
  const netids = suite.fixedNetid === undefined ? [freshNetid(), freshNetid()] : [suite.fixedNetid];
  await client.watch(...netids);
  for (const netid of [netids[0], netids.at(-1)!]) {
    await keyExchange(client, netid, suite.c, { waitMs: suite.waitMs, signal });
  }
  return suite.sawSignature;
}

/** Step 2b for `session`: the fingerprint on success, else the failure. */
async function checkSignature(
  suite: ResponderSuite,
  client: CheckClient,
  session: Session,
  signal: AbortSignal,
): Promise<string | Outcome> {
  const topic = signatureTopic(session.netid);
  const delivery: Delivery | undefined = await client.next(topic, suite.waitMs, signal);
  if (delivery === undefined) {
    return suite.failure(`a signature on ${topic}`, `none within ${seconds(suite.waitMs)}`);
  }
  if (delivery.retain) return fail("a live signature", "a retained one");
  if (delivery.qos !== 1) return fail("the signature at QoS 1", `QoS ${delivery.qos}`);
  let message;
  try {
    message = await parseSignatureMessage(delivery.payload);
  } catch (error) {
    if (!(error instanceof SignatureMessageError)) throw error;
    return fail("a version 1 step 2b message", error.message);
  }
  const { trust } = suite.options;
  if (trust.length > 0 && !trust.includes(message.fingerprint)) {
    return fail(`a signature by ${trust.join(" or ")}`, `one by ${message.fingerprint}`);
  }
  if (!(await message.verify(session.netid, session.ourDer, session.theirDer))) {
    return fail("a signature over this exchange's transcript", "one that does not verify over it");
  }
  return message.fingerprint;
}

/** The ids the responder suite implements (each a case of {@linkcode RESPONDER_CASES}). */
export const RESPONDER_CASE_IDS: readonly string[] = Object.keys(BODIES);

/**
 * Runs `cases` against the responder: starts it (on the checker's broker) or finds it (on
 * `options.broker`), runs each case in order, stops what it started, returns the results.
 */
export async function runResponderSuite(
  cases: readonly CheckCase[],
  options: ResponderSuiteOptions,
  hooks: { onResult?: (result: CaseResult) => void; signal?: AbortSignal } = {},
): Promise<CaseResult[]> {
  await using stack = new AsyncDisposableStack();
  const recorder = options.command === undefined
    ? undefined
    : stack.use(await RecordingBroker.start());
  const suite = new ResponderSuite(options, recorder);
  const signal = hooks.signal ?? new AbortController().signal;
  if (recorder) {
    if (cases.some((c) => c.id === "responder.hostile.retained-requests")) {
      await leaveRetainedRequests(suite);
    }
    await startOwn(suite, recorder, signal);
    stack.defer(async () => await suite.program?.stop());
  } else {
    await startRemote(suite, signal);
  }
  return await runCases(cases, async (c, caseSignal) => {
    if (c.id === "responder.start") return suite.started.outcome;
    if (!suite.started.ok) return skip("no responder to check (see responder.start)");
    if (suite.program?.ended) return fail("the responder running", suite.goneLine()!);
    return await BODIES[c.id](suite, suite.signalFor(caseSignal));
  }, {
    budgetMs: (c) => c.id === "responder.kx.zero-lead" ? 12 * options.waitMs : 4 * options.waitMs,
    onResult: hooks.onResult,
    signal: hooks.signal,
  });
}

/** Before the responder starts: a stale key exchange request and a junk request, retained. */
async function leaveRetainedRequests(suite: ResponderSuite) {
  const netid = freshNetid();
  await using client = await CheckClient.connect(suite.where);
  const stale = newKeyPair(suite.c);
  await client.publish(
    requestTopic(netid, KEY_EXCHANGE),
    encodePublicKeyPem(suite.group, stale.publicKey),
    true,
  );
  const forger = await Fernet.fromBase64Key(Fernet.generateKey());
  await client.publish(requestTopic(netid, "uppercase"), await forger.encrypt("stale"), true);
  suite.retainedNetid = netid;
}

function freshNetid(): string {
  return `r${crypto.getRandomValues(new Uint8Array(4)).toHex()}`;
}
