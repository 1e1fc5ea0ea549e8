/**
 * lib/protocol.ts: topics, topic-level validation, request-topic parsing, and the actions'
 * contracts (shuffle and random checked as properties over a seeded source of randomness).
 */

import assert from "node:assert/strict";
import {
  ACTIONS,
  agreeFernet,
  applyAction,
  cryptoRandomInt,
  decodeUtf8,
  isAction,
  loadLabGroup,
  parseRequestTopic,
  requestTopic,
  responseTopic,
  topicLevelProblem,
} from "../lib/protocol.ts";
import { encodePublicKeyPem, generateKeyPair } from "../lib/crypto/dh.ts";

/** A seeded source for applyAction, so the property checks are reproducible. */
function seeded(seed: number) {
  return (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return Math.floor((seed / 0x1_0000_0000) * n);
  };
}

const sorted = (s: string) => Array.from(s).sort().join("");

Deno.test("topics follow <netid>/<action>/{request,response}", () => {
  assert.equal(requestTopic("alice", "key-exchange"), "alice/key-exchange/request");
  assert.equal(responseTopic("alice", "uppercase"), "alice/uppercase/response");
});

Deno.test("a netid must be one topic level", () => {
  assert.equal(topicLevelProblem("alice_01"), undefined);
  assert.equal(topicLevelProblem("ünï"), undefined);
  assert.match(topicLevelProblem("")!, /empty/);
  for (const bad of ["a/b", "a+", "#", "x\0y"]) assert.ok(topicLevelProblem(bad), bad);
  assert.match(topicLevelProblem("x".repeat(1025))!, /too long/);
});

Deno.test("parseRequestTopic takes exactly three levels ending in request", () => {
  assert.deepEqual(parseRequestTopic("a/key-exchange/request"), {
    kind: "key-exchange",
    netid: "a",
  });
  assert.deepEqual(parseRequestTopic("a/upper/request"), {
    kind: "action",
    netid: "a",
    action: "upper",
  });
  for (const t of ["a/b/c/request", "a/b/response", "/b/request", "a//request", "a/request"]) {
    assert.equal(parseRequestTopic(t), undefined, t);
  }
});

Deno.test("isAction knows exactly the five actions", () => {
  assert.deepEqual([...ACTIONS], ["uppercase", "lowercase", "reverse", "shuffle", "random"]);
  for (const a of ACTIONS) assert.ok(isAction(a));
  for (const a of ["Uppercase", "", "key-exchange", "toString"]) assert.ok(!isAction(a), a);
});

Deno.test("deterministic actions, on code points (no split surrogate pairs)", () => {
  const text = "Héllo 🚀 wörld";
  assert.equal(applyAction("uppercase", text), "HÉLLO 🚀 WÖRLD");
  assert.equal(applyAction("lowercase", "ÀB"), "àb");
  const reversed = applyAction("reverse", text);
  assert.equal(reversed, "dlröw 🚀 olléH");
  assert.equal(applyAction("reverse", ""), "");
});

Deno.test("shuffle is a permutation of the code points, and does shuffle", () => {
  const text = "abcdefghij🚀🎉";
  const rng = seeded(7);
  const outputs = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const out = applyAction("shuffle", text, rng);
    assert.equal(sorted(out), sorted(text));
    assert.ok(out.isWellFormed());
    outputs.add(out);
  }
  assert.ok(outputs.size > 150, `only ${outputs.size} distinct orders in 200`);
});

Deno.test("random keeps each character 0, 1 or 2 times in order, and varies", () => {
  const text = "abcdefgh";
  const rng = seeded(11);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const out = applyAction("random", text, rng);
    assert.match(out, /^a{0,2}b{0,2}c{0,2}d{0,2}e{0,2}f{0,2}g{0,2}h{0,2}$/);
    seen.add(out.length);
  }
  assert.ok(seen.size > 5, "lengths vary: characters are dropped and doubled");
});

Deno.test("a long shuffle draws randomness in bulk, not one CSPRNG call a character", () => {
  // One getRandomValues call per character made a 1 MiB shuffle block the responder's event
  // loop for over a second.
  const original = crypto.getRandomValues;
  let calls = 0;
  crypto.getRandomValues = function <T extends ArrayBufferView | null>(array: T): T {
    calls++;
    return original.call(crypto, array as ArrayBufferView) as T;
  };
  try {
    const text = "abcdefghijklmnopqrstuvwxyz".repeat(4000); // 104,000 code points
    assert.equal(sorted(applyAction("shuffle", text)), sorted(text));
    assert.ok(applyAction("random", text).length <= 2 * text.length);
  } finally {
    crypto.getRandomValues = original;
  }
  assert.ok(calls < 50, `${calls} CSPRNG calls for 208,000 draws`);
});

Deno.test("cryptoRandomInt stays in range and covers it", () => {
  const hits = new Array(3).fill(0);
  for (let i = 0; i < 3000; i++) hits[cryptoRandomInt(3)]++;
  for (const h of hits) assert.ok(h > 800 && h < 1200, `skewed: ${hits}`);
  assert.equal(cryptoRandomInt(1), 0);
});

Deno.test("agreeFernet: both ends of one exchange get the same key", async () => {
  const group = loadLabGroup();
  const a = generateKeyPair(group);
  const b = generateKeyPair(group);
  const fa = await agreeFernet(group, a, encodePublicKeyPem(group, b.publicKey));
  const fb = await agreeFernet(group, b, encodePublicKeyPem(group, a.publicKey));
  const token = await fa.encrypt("hello");
  assert.equal(new TextDecoder().decode(await fb.decrypt(token)), "hello");
});

Deno.test("decodeUtf8 is strict: invalid bytes are refused, not replaced", () => {
  assert.equal(decodeUtf8(new TextEncoder().encode("héllo 🚀")), "héllo 🚀");
  assert.equal(decodeUtf8(new Uint8Array()), "");
  for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
    assert.equal(decodeUtf8(new Uint8Array(bad)), undefined, JSON.stringify(bad));
  }
});
