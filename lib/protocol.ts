/**
 * The wire protocol shared by the client and the responder: topic names, actions, the text
 * transformations, size limits, and the key agreement that turns a peer's PEM into a Fernet.
 * `../shared/PROTOCOL.md` is the specification; this module is its only encoding in code.
 *
 * @example
 * ```ts
 * import { responseTopic, applyAction } from "./protocol.ts";
 * responseTopic("alice", "uppercase"); // "alice/uppercase/response"
 * applyAction("reverse", "abc"); // "cba"
 * ```
 * @module
 */

import {
  computeSharedSecret,
  decodePublicKeyPem,
  type DhGroup,
  type DhKeyPair,
  parseDhParamsPem,
} from "./crypto/dh.ts";
import { deriveFernetKey } from "./crypto/hkdf.ts";
import { Fernet } from "./crypto/fernet.ts";
// A text import, not a file read: the PEM becomes part of the module graph, so `deno compile`
// embeds it without --include, the binaries need no read permission for it and find it from
// any working directory, and `deno run` needs none either (static imports are not gated).
import labDhParamsPem from "../dhparam4096.pem" with { type: "text" };

/**
 * The actions a responder performs, in the order the usage text lists them.
 *
 * @example
 * ```ts
 * import { ACTIONS } from "./protocol.ts";
 * console.log(`action: one of ${ACTIONS.join(", ")}`);
 * ```
 */
export const ACTIONS = ["uppercase", "lowercase", "reverse", "shuffle", "random"] as const;

/**
 * One of {@linkcode ACTIONS}.
 *
 * @example
 * ```ts
 * import type { Action } from "./protocol.ts";
 * const action: Action = "shuffle";
 * ```
 */
export type Action = typeof ACTIONS[number];

/**
 * The pseudo-action whose topics carry the Diffie-Hellman public keys.
 *
 * @example
 * ```ts
 * import { KEY_EXCHANGE, requestTopic } from "./protocol.ts";
 * requestTopic("alice", KEY_EXCHANGE); // "alice/key-exchange/request"
 * ```
 */
export const KEY_EXCHANGE = "key-exchange";

/**
 * Largest message, in UTF-8 bytes, that the client sends and the responder accepts. A Fernet
 * token of it is about 1.4 MiB, well inside mosquitto's defaults, and it bounds what one
 * request can make a responder allocate.
 *
 * @example
 * ```ts
 * import { MAX_MESSAGE_BYTES } from "./protocol.ts";
 * const fits = (text: string) => new TextEncoder().encode(text).length <= MAX_MESSAGE_BYTES;
 * ```
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Largest payload (a token of a maximal message, with room to spare) worth decoding.
 *
 * @example
 * ```ts
 * import type { MqttMessage } from "./mqtt.ts";
 * import { MAX_PAYLOAD_BYTES } from "./protocol.ts";
 * const worthDecoding = (m: MqttMessage) => m.payload.length <= MAX_PAYLOAD_BYTES;
 * ```
 */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

/**
 * Largest PEM public key worth parsing: ours is about 1.1 KiB.
 *
 * @example
 * ```ts
 * import { MAX_PUBLIC_KEY_PEM_BYTES } from "./protocol.ts";
 * const worthParsing = (payload: Uint8Array) => payload.length <= MAX_PUBLIC_KEY_PEM_BYTES;
 * ```
 */
export const MAX_PUBLIC_KEY_PEM_BYTES = 8 * 1024;

/**
 * True when `value` names an action.
 *
 * @example
 * ```ts
 * import { isAction } from "./protocol.ts";
 * isAction("reverse"); // true
 * isAction("key-exchange"); // false
 * ```
 */
export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/**
 * Why `value` cannot be one MQTT topic level, or `undefined` when it can. Wildcards and the
 * separator would change which topics a subscription matches; NUL is forbidden by MQTT itself.
 *
 * @example
 * ```ts
 * import { topicLevelProblem } from "./protocol.ts";
 * topicLevelProblem("a/b"); // "must not contain '/'"
 * ```
 */
export function topicLevelProblem(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  for (const forbidden of ["/", "+", "#", "\0"]) {
    if (value.includes(forbidden)) {
      return `must not contain ${forbidden === "\0" ? "NUL" : `'${forbidden}'`}`;
    }
  }
  if (new TextEncoder().encode(value).length > 1024) return "is too long (over 1024 bytes)";
  return undefined;
}

/**
 * `<netid>/<action>/request`; `action` may be {@linkcode KEY_EXCHANGE}.
 *
 * @example
 * ```ts
 * import { requestTopic } from "./protocol.ts";
 * requestTopic("alice", "reverse"); // "alice/reverse/request"
 * ```
 */
export function requestTopic(netid: string, action: Action | typeof KEY_EXCHANGE): string {
  return `${netid}/${action}/request`;
}

/**
 * `<netid>/<action>/response`; `action` may be {@linkcode KEY_EXCHANGE}.
 *
 * @example
 * ```ts
 * import { KEY_EXCHANGE, responseTopic } from "./protocol.ts";
 * responseTopic("alice", KEY_EXCHANGE); // "alice/key-exchange/response"
 * ```
 */
export function responseTopic(netid: string, action: Action | typeof KEY_EXCHANGE): string {
  return `${netid}/${action}/response`;
}

/**
 * A request topic taken apart; see {@linkcode parseRequestTopic}.
 *
 * @example
 * ```ts
 * import { parseRequestTopic, type RequestTopic } from "./protocol.ts";
 * const topic: RequestTopic | undefined = parseRequestTopic("alice/reverse/request");
 * if (topic?.kind === "action") console.log(topic.netid, topic.action); // alice reverse
 * ```
 */
export type RequestTopic =
  | { kind: "key-exchange"; netid: string }
  | { kind: "action"; netid: string; action: string };

/**
 * Splits a topic the responder received. Returns `undefined` for anything that is not exactly
 * `<netid>/<x>/request` (extra levels, empty levels): such topics are not ours to answer.
 * An unknown action is returned as-is so the caller can log it by name.
 *
 * @example
 * ```ts
 * import { parseRequestTopic } from "./protocol.ts";
 * parseRequestTopic("alice/key-exchange/request"); // { kind: "key-exchange", netid: "alice" }
 * parseRequestTopic("alice/reverse/request/x"); // undefined
 * ```
 */
export function parseRequestTopic(topic: string): RequestTopic | undefined {
  const levels = topic.split("/");
  if (levels.length !== 3 || levels[2] !== "request") return undefined;
  const [netid, action] = levels;
  if (netid === "" || action === "") return undefined;
  if (action === KEY_EXCHANGE) return { kind: "key-exchange", netid };
  return { kind: "action", netid, action };
}

let strictUtf8: TextDecoder | undefined;

/**
 * Decodes UTF-8 strictly: `undefined` for bytes that are not valid UTF-8. Every text in the
 * protocol (PEM keys, messages, answers) is UTF-8, and a replacement character would silently
 * change a message instead of refusing it.
 *
 * @example
 * ```ts
 * import { decodeUtf8 } from "./protocol.ts";
 * decodeUtf8(new Uint8Array([0x68, 0x69])); // "hi"
 * decodeUtf8(new Uint8Array([0xff])); // undefined
 * ```
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  strictUtf8 ??= new TextDecoder("utf-8", { fatal: true });
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A source of uniform integers in `[0, n)`; tests pass a seeded one.
 *
 * @example
 * ```ts
 * import type { RandomInt } from "./protocol.ts";
 * const alwaysFirst: RandomInt = () => 0;
 * ```
 */
export type RandomInt = (n: number) => number;

/**
 * Random words drawn from the CSPRNG in bulk: one `getRandomValues` call per character would
 * make a 1 MiB shuffle take over a second of the responder's event loop.
 */
let pool: Uint32Array | undefined;
let poolNext = 0;

function randomWord(): number {
  if (pool === undefined || poolNext === pool.length) {
    pool ??= new Uint32Array(16 * 1024);
    crypto.getRandomValues(pool);
    poolNext = 0;
  }
  return pool[poolNext++];
}

/**
 * Uniform integer in `[0, n)` from the platform CSPRNG, without modulo bias (words at or
 * above the largest multiple of `n` are drawn again).
 *
 * @example
 * ```ts
 * import { cryptoRandomInt } from "./protocol.ts";
 * const die = cryptoRandomInt(6) + 1;
 * ```
 */
export const cryptoRandomInt: RandomInt = (n) => {
  const limit = Math.floor(0x1_0000_0000 / n) * n;
  let word;
  do word = randomWord(); while (word >= limit);
  return word % n;
};

/**
 * Applies an action to a text. Works on code points, not UTF-16 units, so that reversing or
 * shuffling never splits a surrogate pair into invalid text. Code points live in a typed array
 * while they are moved: a 1 MiB message then takes about 0.1 s, not seconds.
 *
 * @example
 * ```ts
 * import { applyAction } from "./protocol.ts";
 * applyAction("uppercase", "héllo"); // "HÉLLO"
 * ```
 */
export function applyAction(action: Action, text: string, randomInt = cryptoRandomInt): string {
  switch (action) {
    case "uppercase":
      return text.toUpperCase();
    case "lowercase":
      return text.toLowerCase();
    case "reverse":
      return fromCodePoints(codePoints(text).reverse());
    case "shuffle": {
      const cps = codePoints(text);
      for (let i = cps.length - 1; i > 0; i--) { // Fisher–Yates
        const j = randomInt(i + 1);
        const held = cps[i];
        cps[i] = cps[j];
        cps[j] = held;
      }
      return fromCodePoints(cps);
    }
    case "random": {
      // Each character is dropped, kept or doubled with equal odds.
      const cps = codePoints(text);
      const out = new Uint32Array(cps.length * 2);
      let n = 0;
      for (const cp of cps) {
        for (let copies = randomInt(3); copies > 0; copies--) out[n++] = cp;
      }
      return fromCodePoints(out.subarray(0, n));
    }
  }
}

function codePoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    out[n++] = cp;
    if (cp > 0xffff) i++; // the low surrogate was part of this code point
  }
  return out.subarray(0, n);
}

let utf16: TextDecoder | undefined;

function fromCodePoints(cps: Uint32Array): string {
  const units = new Uint16Array(cps.length * 2);
  let n = 0;
  for (const cp of cps) {
    if (cp > 0xffff) {
      units[n++] = 0xd800 + ((cp - 0x10000) >> 10);
      units[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else {
      units[n++] = cp;
    }
  }
  utf16 ??= new TextDecoder("utf-16le");
  return utf16.decode(units.subarray(0, n));
}

/**
 * The lab's Diffie-Hellman group, from the `dhparam4096.pem` at the project root (imported as
 * text, so also inside the compiled binaries). Parsed on demand, not at import time.
 *
 * @example
 * ```ts
 * import { loadLabGroup } from "./protocol.ts";
 * const group = loadLabGroup(); // parses the PEM on each call: keep the result
 * group.byteLength; // 512
 * ```
 */
export function loadLabGroup(): DhGroup {
  return parseDhParamsPem(labDhParamsPem);
}

/**
 * Turns our key pair and the peer's PEM public key into the session's Fernet: checks the
 * peer key (throws `DhKeyError`), computes the 512-byte zero-padded `Z`, stretches it with
 * HKDF-SHA256 (salt and info one zero byte each) and keys Fernet with the result.
 *
 * @example
 * ```ts
 * import { encodePublicKeyPem, generateKeyPair } from "./crypto/dh.ts";
 * import { agreeFernet, loadLabGroup } from "./protocol.ts";
 * const group = loadLabGroup();
 * const ours = generateKeyPair(group), theirs = generateKeyPair(group);
 * const fernet = await agreeFernet(group, ours, encodePublicKeyPem(group, theirs.publicKey));
 * const token = await fernet.encrypt("hello");
 * ```
 */
export async function agreeFernet(
  group: DhGroup,
  ours: DhKeyPair,
  peerPem: string,
): Promise<Fernet> {
  const peerY = decodePublicKeyPem(group, peerPem);
  const z = computeSharedSecret(group, ours.privateKey, peerY);
  return await Fernet.create(await deriveFernetKey(z));
}
