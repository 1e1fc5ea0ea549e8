/**
 * The wire protocol shared by the client and the responder (docs/protocol.md): topic names,
 * size limits, the lab's Diffie-Hellman group, and the key agreement that turns a peer's PEM
 * public key into the session's Fernet.
 *
 * @module
 */

import {
  computeSharedSecret,
  decodePeerPublicKey,
  decodePublicKeyPem,
  type DhGroup,
  DhKeyError,
  type DhKeyPair,
  type DhOptions,
  parseDhParamsPem,
  type PeerPublicKey,
} from "./crypto/dh.ts";
import { deriveFernetKey } from "./crypto/hkdf.ts";
import { Fernet } from "./crypto/fernet.ts";
import { decodeUtf8 } from "./utf8.ts";
// A text import, not a file read: the PEM is part of the module graph, so `deno compile` embeds
// it, and neither the binaries nor `deno run` need a read permission or a working directory.
import labDhParamsPem from "../dhparam4096.pem" with { type: "text" };

/** The pseudo-action whose topics carry the Diffie-Hellman public keys. */
export const KEY_EXCHANGE = "key-exchange";

/**
 * Largest message, in UTF-8 bytes, that the client sends and the responder accepts. Its token
 * is about 1.4 MiB, well inside a default mosquitto's limits.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Largest request or answer payload worth decoding: a maximal message's token, with room. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

/** Largest PEM public key worth parsing (ours is about 1.5 KiB). */
export const MAX_PUBLIC_KEY_PEM_BYTES = 8 * 1024;

/** Longest netid, in UTF-8 bytes: far beyond any real one, and short enough to log. */
export const MAX_NETID_BYTES = 1024;

/**
 * Why `value` cannot be one MQTT topic level, or `undefined` when it can. Wildcards and the
 * separator would change which topics a subscription matches; MQTT itself forbids NUL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topicLevelProblem } from "./protocol.ts";
 * assert.equal(topicLevelProblem("alice"), undefined);
 * assert.equal(topicLevelProblem("a/b"), "must not contain '/'");
 * ```
 */
export function topicLevelProblem(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  for (const forbidden of ["/", "+", "#", "\0"]) {
    if (value.includes(forbidden)) {
      return `must not contain ${forbidden === "\0" ? "NUL" : `'${forbidden}'`}`;
    }
  }
  if (new TextEncoder().encode(value).length > MAX_NETID_BYTES) {
    return `is too long (over ${MAX_NETID_BYTES} bytes)`;
  }
  return undefined;
}

/** `<netid>/<action>/request`; `action` may be {@linkcode KEY_EXCHANGE}. */
export function requestTopic(netid: string, action: string): string {
  return `${netid}/${action}/request`;
}

/** `<netid>/<action>/response`; `action` may be {@linkcode KEY_EXCHANGE}. */
export function responseTopic(netid: string, action: string): string {
  return `${netid}/${action}/response`;
}

/** `<netid>/key-exchange/signature`: step 2b of the authenticated extension. */
export function signatureTopic(netid: string): string {
  return `${netid}/${KEY_EXCHANGE}/signature`;
}

/** A request topic taken apart; see {@linkcode parseRequestTopic}. */
export type RequestTopic =
  | { kind: "key-exchange"; netid: string }
  | { kind: "action"; netid: string; action: string };

/**
 * Splits a topic the responder received; `undefined` for anything that is not exactly
 * `<netid>/<x>/request` with non-empty levels. An unknown action is returned as it is, so that
 * the caller can name it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRequestTopic } from "./protocol.ts";
 * assert.deepEqual(parseRequestTopic("alice/reverse/request"), {
 *   kind: "action",
 *   netid: "alice",
 *   action: "reverse",
 * });
 * assert.equal(parseRequestTopic("alice/reverse/request/x"), undefined);
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

/**
 * The lab's Diffie-Hellman group, from the `dhparam4096.pem` at the project root (embedded in
 * the module graph). Parses on each call: keep the result.
 */
export function loadLabGroup(): DhGroup {
  return parseDhParamsPem(labDhParamsPem);
}

/**
 * A peer's public key as it arrives in step 1 or 2: at most {@linkcode MAX_PUBLIC_KEY_PEM_BYTES}
 * of UTF-8 PEM, checked against our group. Throws `DhKeyError` only, with a one-line reason.
 */
export function readPeerPublicKey(group: DhGroup, payload: Uint8Array): PeerPublicKey & {
  pem: string;
} {
  if (payload.length > MAX_PUBLIC_KEY_PEM_BYTES) {
    throw new DhKeyError(
      `peer public key is malformed: ${payload.length} bytes is over the ` +
        `${MAX_PUBLIC_KEY_PEM_BYTES}-byte limit`,
    );
  }
  const pem = decodeUtf8(payload);
  if (pem === undefined) throw new DhKeyError("peer public key is malformed: not UTF-8 text");
  return { ...decodePeerPublicKey(group, pem), pem };
}

/**
 * Turns our key pair and the peer's public key into the session's Fernet: the peer key is
 * checked (a `DhKeyError` says why it is refused), `Z` is computed as 512 zero-padded bytes,
 * stretched with HKDF-SHA256 (salt and info one zero byte each), and keys Fernet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKeyPem, generateKeyPair } from "./crypto/dh.ts";
 * import { agreeFernet, loadLabGroup } from "./protocol.ts";
 * const group = loadLabGroup();
 * const alice = generateKeyPair(group), bob = generateKeyPair(group);
 * const a = await agreeFernet(group, alice, encodePublicKeyPem(group, bob.publicKey));
 * const b = await agreeFernet(group, bob, encodePublicKeyPem(group, alice.publicKey));
 * const plain = await b.decrypt(await a.encrypt("hello"));
 * assert.equal(new TextDecoder().decode(plain), "hello");
 * ```
 */
export async function agreeFernet(
  group: DhGroup,
  ours: DhKeyPair,
  peerPem: string,
): Promise<Fernet> {
  return await fernetFor(group, ours, decodePublicKeyPem(group, peerPem));
}

/**
 * {@linkcode agreeFernet} for a peer key already checked and decoded to `y`; `options` carry a
 * long-running caller's `DhPrecomputation`.
 */
export async function fernetFor(
  group: DhGroup,
  ours: DhKeyPair,
  peerY: bigint,
  options: DhOptions = {},
): Promise<Fernet> {
  const z = computeSharedSecret(group, ours.privateKey, peerY, options);
  return await Fernet.create(await deriveFernetKey(z));
}
