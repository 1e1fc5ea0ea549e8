/**
 * The conformance cases of `secure_mqtt_check`: for each, its id, one line of what it checks,
 * and whether the lab requires it (naming the rule) or it is advisory (robustness beyond the
 * lab's text). docs/conformance.md says why each one matters. The checks themselves are in
 * ./client_suite.ts and ./responder_suite.ts, keyed by these ids.
 *
 * @module
 */

/** Which side of the protocol a case checks. */
export type Mode = "client" | "responder";

/** One case: what it checks and how much it counts. */
export interface CheckCase {
  /** `client.kx.zero-lead`: the mode, a group, a name. */
  readonly id: string;
  /** One line: what the case checks. */
  readonly title: string;
  /** True when the lab demands it: a failure makes the checker exit 1. */
  readonly required: boolean;
  /** For a required case, the lab rule it checks; for an advisory one, why it still matters. */
  readonly rule: string;
  /** Part of `--quick`. */
  readonly quick: boolean;
}

function required(id: string, title: string, rule: string, quick = true): CheckCase {
  return { id, title, required: true, rule, quick };
}

function advisory(id: string, title: string, rule: string, quick = true): CheckCase {
  return { id, title, required: false, rule, quick };
}

const USAGE = "command line: the lab's usage pattern";
const OUTPUT = "only the answer on stdout, everything else on stderr";
const KEY_CHECK = "peer public key check: PEM SubjectPublicKeyInfo, our p and g, 2 <= y <= p-2";
const MUST_NOT_CRASH = "bad input of any kind must not crash the program";

/** The client cases, in the order they run. */
export const CLIENT_CASES: readonly CheckCase[] = [
  required("client.cli.h-host", "-h HOST names the broker (not help)", `${USAGE}: -h HOST`),
  required("client.cli.help", "--help prints help on stdout and exits 0", `${USAGE}: --help`),
  required(
    "client.cli.wrong-option",
    "an unknown option: non-zero exit, an error and the usage on stderr",
    `${USAGE}: a wrong option gets an error and the usage`,
  ),
  required(
    "client.cli.missing-argument",
    "MESSAGE missing: non-zero exit, an error and the usage on stderr",
    `${USAGE}: a missing argument gets an error and the usage`,
  ),
  advisory(
    "client.cli.bad-action",
    "an unknown ACTION: a usage error before anything is sent",
    "a wrong argument is best refused before the broker sees it",
  ),
  required("client.action.uppercase", "uppercase: the answer printed, exit 0", "ACTION uppercase"),
  required("client.action.lowercase", "lowercase: the answer printed, exit 0", "ACTION lowercase"),
  required(
    "client.action.title-case",
    "title-case: the answer printed, exit 0",
    "ACTION title-case (the lab's year lists it)",
  ),
  required("client.action.reverse", "reverse: the answer printed, exit 0", "ACTION reverse"),
  required("client.action.shuffle", "shuffle: the answer printed, exit 0", "ACTION shuffle"),
  advisory(
    "client.action.random",
    "random, where the client offers it: the answer printed",
    "random comes from the course's later labs",
  ),
  required(
    "client.text.non-ascii",
    "a non-ASCII message travels as UTF-8 and the answer prints intact",
    "the message is sent as UTF-8",
  ),
  required(
    "client.kx.public-key",
    "its public key is a PEM SubjectPublicKeyInfo with the lab's p and g",
    "public key: PEM SubjectPublicKeyInfo of the lab's group",
  ),
  required(
    "client.kx.zero-lead",
    "a shared secret that starts with a zero byte still works",
    "Z is left-padded with zeros to 512 bytes",
  ),
  required(
    "client.mqtt.client-id",
    "the MQTT client ID is the NetID",
    "the NetID is the client ID",
  ),
  required(
    "client.mqtt.qos",
    "QoS 1 on every SUBSCRIBE and PUBLISH",
    "every SUBSCRIBE and PUBLISH at QoS 1",
  ),
  required(
    "client.mqtt.suback-first",
    "both response topics subscribed and SUBACKed before the key is published (SUBACK delayed)",
    "subscribe, and have the SUBACK, before step 1",
  ),
  required(
    "client.retained",
    "stale retained messages on the response topics are ignored",
    "a retained message on a response topic is stale",
  ),
  required(
    "client.kx.forged-first",
    "a token under another key before the genuine answer is never printed",
    "a token that fails to verify is not ours: keep waiting",
  ),
  required("client.hostile.y-one", "a responder key y = 1 is refused cleanly", KEY_CHECK),
  required("client.hostile.y-p-minus-1", "a responder key y = p-1 is refused cleanly", KEY_CHECK),
  required("client.hostile.other-p", "a key in another group (p) is refused cleanly", KEY_CHECK),
  required("client.hostile.other-g", "a key with another generator is refused cleanly", KEY_CHECK),
  required("client.hostile.not-pem", "a key exchange answer that is not PEM is refused", KEY_CHECK),
  required(
    "client.hostile.tampered",
    "an answer whose HMAC does not verify is never printed",
    "verify the HMAC before decrypting",
    false,
  ),
  required(
    "client.output.answer-only",
    "on success stdout holds the answer and nothing else",
    OUTPUT,
  ),
  required(
    "client.output.errors-on-stderr",
    "a refused connection: non-zero exit, the reason on stderr, nothing on stdout, no traceback",
    `${OUTPUT}; ${MUST_NOT_CRASH}`,
  ),
  advisory(
    "client.output.one-line-error",
    "a failure is reported in one line",
    "one clear line is what a user (and a grader's log) can read",
  ),
  advisory(
    "client.silent",
    "a silent responder: the client ends by itself, non-zero, in reasonable time",
    "a client without a deadline hangs its user (and the grader) for ever",
    false,
  ),
];

/** The responder cases, in the order they run. */
export const RESPONDER_CASES: readonly CheckCase[] = [
  required(
    "responder.start",
    "it is up: subscribed to the request topics (own broker) or answering a key exchange",
    "the responder answers <netid>/key-exchange/request",
  ),
  required(
    "responder.kx.public-key",
    "its public key is a PEM SubjectPublicKeyInfo with the lab's p and g",
    "public key: PEM SubjectPublicKeyInfo of the lab's group",
  ),
  required("responder.action.uppercase", "uppercase, as Python's str.upper()", "ACTION uppercase"),
  required("responder.action.lowercase", "lowercase, as Python's str.lower()", "ACTION lowercase"),
  required(
    "responder.action.title-case",
    "title-case, as Python's str.title()",
    "ACTION title-case (Python's str.title())",
  ),
  required(
    "responder.action.reverse",
    "reverse: the characters in reverse order",
    "ACTION reverse",
  ),
  required(
    "responder.action.shuffle",
    "shuffle: the same characters in another order",
    "ACTION shuffle",
  ),
  advisory(
    "responder.action.random",
    "random: characters dropped and repeated, in order",
    "random comes from the course's later labs",
  ),
  required(
    "responder.text.non-ascii",
    "non-ASCII text through uppercase, lowercase, title-case and reverse, as Python does",
    "the graders are Python: str.upper(), str.lower(), str.title(), code points",
  ),
  required(
    "responder.netids.concurrent",
    "four netids at once each get their own answer",
    "sessions are keyed by netid",
  ),
  required(
    "responder.kx.zero-lead",
    "a client whose shared secret starts with a zero byte is answered",
    "Z is left-padded with zeros to 512 bytes",
    false,
  ),
  required(
    "responder.kx.key-checks",
    "client keys y = 1 and y = p-1 get no usable session",
    KEY_CHECK,
  ),
  required(
    "responder.hostile.bad-keys",
    "keys that are not keys (junk, other p or g, empty) are survived; the next client answered",
    MUST_NOT_CRASH,
  ),
  required(
    "responder.hostile.bad-tokens",
    "junk tokens and tokens of another session are not answered; the next request is",
    `a token that fails to verify is refused; ${MUST_NOT_CRASH}`,
  ),
  required(
    "responder.hostile.unknown-action",
    "a request for an unknown action is survived; the next request answered",
    MUST_NOT_CRASH,
  ),
  advisory(
    "responder.hostile.oversize",
    "oversized payloads (3 MiB token, 1 MiB key) are survived; the next client answered",
    "one client's junk must not take the service down for everyone",
  ),
  advisory(
    "responder.hostile.retained-requests",
    "retained (stale) requests waiting when it subscribes are not answered",
    "a retained request was published before anyone asked: nobody waits for its answer",
  ),
  required(
    "responder.mqtt.qos",
    "QoS 1 on its SUBSCRIBE and on every PUBLISH",
    "every SUBSCRIBE and PUBLISH at QoS 1",
  ),
  advisory(
    "responder.mqtt.not-retained",
    "its answers are not retained",
    "a retained answer is stale for every later client",
  ),
  required(
    "responder.auth.signature",
    "with an identity: step 2b signs the transcript, by the trusted identity",
    "authenticated extension: step 2b (signature over the transcript)",
  ),
  required(
    "responder.auth.bound-tokens",
    "with an identity: bound request tokens get bound answers; a token of another action is refused",
    "authenticated extension: bound tokens",
  ),
];

/** Every case of `mode`. */
export function casesOf(mode: Mode): readonly CheckCase[] {
  return mode === "client" ? CLIENT_CASES : RESPONDER_CASES;
}

/**
 * The cases a run takes: `--quick` keeps the quick ones; `only` patterns (`*` any run of
 * characters, e.g. `client.kx.*`) keep those whose id matches one of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectCases } from "./cases.ts";
 * const ids = selectCases("client", { only: ["client.cli.*"] }).map((c) => c.id);
 * assert.deepEqual(ids, [
 *   "client.cli.h-host", "client.cli.help", "client.cli.wrong-option",
 *   "client.cli.missing-argument", "client.cli.bad-action",
 * ]);
 * ```
 */
export function selectCases(
  mode: Mode,
  options: { quick?: boolean; only?: readonly string[] } = {},
): CheckCase[] {
  const patterns = (options.only ?? []).map(globPattern);
  return casesOf(mode).filter((c) =>
    (!options.quick || c.quick) && (patterns.length === 0 || patterns.some((p) => p.test(c.id)))
  );
}

/** A `--only` pattern as a regular expression: `*` matches any run of characters. */
export function globPattern(pattern: string): RegExp {
  const escaped = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}
