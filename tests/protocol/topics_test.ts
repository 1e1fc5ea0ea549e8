/**
 * lib/protocol.ts: topic names, topic-level checks, request-topic parsing, the lab's group, and
 * the key agreement (both ends agree; a bad peer key is refused with DhKeyError).
 */

import assert from "node:assert/strict";
import {
  loadLabGroup,
  readPeerPublicKey,
  SessionSecret,
} from "../../lib/protocol/key_agreement.ts";
import {
  KEY_EXCHANGE,
  parseRequestTopic,
  requestTopic,
  responseTopic,
  signatureTopic,
  topicLevelProblem,
} from "../../lib/protocol/topics.ts";
import { MAX_NETID_BYTES } from "../../lib/protocol/limits.ts";
import {
  DhKeyError,
  type DhKeyPair,
  encodePublicKeyDer,
  encodePublicKeyPem,
  generateKeyPair,
} from "../../lib/crypto/dh.ts";

const group = loadLabGroup();

Deno.test("topics are <netid>/<action>/{request,response}, and the signature topic", () => {
  assert.equal(KEY_EXCHANGE, "key-exchange");
  assert.equal(requestTopic("alice", KEY_EXCHANGE), "alice/key-exchange/request");
  assert.equal(responseTopic("alice", KEY_EXCHANGE), "alice/key-exchange/response");
  assert.equal(requestTopic("alice", "uppercase"), "alice/uppercase/request");
  assert.equal(responseTopic("alice", "uppercase"), "alice/uppercase/response");
  assert.equal(signatureTopic("alice"), "alice/key-exchange/signature");
});

Deno.test("a netid must be one topic level: no separator, wildcard or NUL, not empty", () => {
  for (const good of ["alice_01", "ünï", "a.b-c", "🚀", " ", "x".repeat(MAX_NETID_BYTES)]) {
    assert.equal(topicLevelProblem(good), undefined, good);
  }
  assert.equal(topicLevelProblem(""), "must not be empty");
  const bad: [string, string][] = [
    ["a/b", "must not contain '/'"],
    ["/", "must not contain '/'"],
    ["a+", "must not contain '+'"],
    ["#", "must not contain '#'"],
    ["x\0y", "must not contain NUL"],
  ];
  for (const [value, problem] of bad) assert.equal(topicLevelProblem(value), problem, value);
});

Deno.test("a netid is at most MAX_NETID_BYTES bytes of UTF-8, not UTF-16 units", () => {
  const tooLong = `is too long (over ${MAX_NETID_BYTES} bytes)`;
  assert.equal(topicLevelProblem("x".repeat(MAX_NETID_BYTES + 1)), tooLong);
  // é is two bytes: 512 of them fill the limit exactly, one more is over it.
  assert.equal(topicLevelProblem("é".repeat(MAX_NETID_BYTES / 2)), undefined);
  assert.equal(topicLevelProblem("é".repeat(MAX_NETID_BYTES / 2) + "x"), tooLong);
  assert.equal(topicLevelProblem("🚀".repeat(MAX_NETID_BYTES / 4 + 1)), tooLong);
});

Deno.test("parseRequestTopic takes exactly three non-empty levels ending in request", () => {
  assert.deepEqual(parseRequestTopic("a/key-exchange/request"), {
    kind: "key-exchange",
    netid: "a",
  });
  assert.deepEqual(parseRequestTopic("a/upper/request"), {
    kind: "action",
    netid: "a",
    action: "upper",
  });
  assert.deepEqual(parseRequestTopic("ünï/title-case/request"), {
    kind: "action",
    netid: "ünï",
    action: "title-case",
  });
  const refused = [
    "a/b/c/request", // an extra level
    "a/uppercase/request/", // an empty extra level
    "/a/uppercase/request",
    "a/b/response",
    "a/key-exchange/signature",
    "/b/request", // empty netid
    "a//request", // empty action
    "//request",
    "a/request",
    "request",
    "",
  ];
  for (const t of refused) assert.equal(parseRequestTopic(t), undefined, t);
});

/** The lab Fernet that `ours` agrees with a peer whose public key arrives as `payload`. */
async function labFernet(ours: DhKeyPair, payload: string | Uint8Array) {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return await SessionSecret.agree(group, ours, readPeerPublicKey(group, bytes).y).labFernet();
}

Deno.test("SessionSecret: both ends of one exchange get the same lab key", async () => {
  const a = generateKeyPair(group);
  const b = generateKeyPair(group);
  const fa = await labFernet(a, encodePublicKeyPem(group, b.publicKey));
  const fb = await labFernet(b, encodePublicKeyPem(group, a.publicKey));
  const decoder = new TextDecoder();
  assert.equal(decoder.decode(await fb.decrypt(await fa.encrypt("hello"))), "hello");
  assert.equal(decoder.decode(await fa.decrypt(await fb.encrypt("and back"))), "and back");
});

Deno.test("SessionSecret: a different peer key gives a different key", async () => {
  const a = generateKeyPair(group);
  const b = generateKeyPair(group);
  const c = generateKeyPair(group);
  const ab = await labFernet(a, encodePublicKeyPem(group, b.publicKey));
  const cb = await labFernet(c, encodePublicKeyPem(group, b.publicKey));
  await assert.rejects(cb.decrypt(await ab.encrypt("hello")));
});

/** A PEM of `der` as pyca writes one. */
function pem(der: Uint8Array): string {
  return `-----BEGIN PUBLIC KEY-----\n${der.toBase64()}\n-----END PUBLIC KEY-----\n`;
}

/** Our group's public-key DER with `y` (0 to 255), including the values we refuse to encode. */
function derWithSmallY(y: number): Uint8Array {
  const der = encodePublicKeyDer(group, 5n);
  assert.deepEqual(der.subarray(-3), Uint8Array.of(0x02, 0x01, 0x05)); // INTEGER 5, last
  der[der.length - 1] = y;
  return der;
}

Deno.test("readPeerPublicKey refuses a bad peer key with DhKeyError", async () => {
  const ours = generateKeyPair(group);
  const otherGroup = { p: 2n ** 127n - 1n, g: 3n, byteLength: 16 };
  const bad: [string, string][] = [
    ["y = 0", pem(derWithSmallY(0))],
    ["y = 1", pem(derWithSmallY(1))],
    ["another group's key", encodePublicKeyPem(otherGroup, 5n)],
    ["no PEM at all", "hello"],
    ["an empty string", ""],
    ["a PEM without its END line", pem(derWithSmallY(5)).replace(/-----END.*\n$/, "")],
    ["a PEM of garbage", pem(Uint8Array.of(1, 2, 3))],
  ];
  for (const [what, peerPem] of bad) {
    await assert.rejects(labFernet(ours, peerPem), DhKeyError, what);
  }
  // The good control: the same construction with an acceptable y is taken.
  await labFernet(ours, pem(derWithSmallY(5)));
});

Deno.test("SessionSecret.agree re-checks the range of a y it is handed", () => {
  const ours = generateKeyPair(group);
  for (const y of [0n, 1n, group.p - 1n, group.p, group.p + 5n]) {
    assert.throws(() => SessionSecret.agree(group, ours, y), DhKeyError, String(y));
  }
});

Deno.test("loadLabGroup is the 4096-bit group with generator 2", () => {
  assert.equal(group.byteLength, 512);
  assert.equal(group.p.toString(2).length, 4096);
  assert.equal(group.g, 2n);
  assert.deepEqual(loadLabGroup(), group);
});
