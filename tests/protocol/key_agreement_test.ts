/**
 * lib/protocol/key_agreement.ts: the lab's group, and the key agreement: both ends of an
 * exchange agree, and a bad peer key is refused with DhKeyError.
 */

import assert from "node:assert/strict";
import { agreeFernet, fernetFor, loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { DhKeyError, encodePublicKeyPem, generateKeyPair } from "../../lib/crypto/dh.ts";
import { pemEncode } from "../../lib/crypto/pem.ts";
import { dhPublicKeyPem } from "../../support/dh_reference.ts";

const group = loadLabGroup();

Deno.test("agreeFernet: both ends of one exchange get the same key", async () => {
  const a = generateKeyPair(group);
  const b = generateKeyPair(group);
  const fa = await agreeFernet(group, a, encodePublicKeyPem(group, b.publicKey));
  const fb = await agreeFernet(group, b, encodePublicKeyPem(group, a.publicKey));
  const decoder = new TextDecoder();
  assert.equal(decoder.decode(await fb.decrypt(await fa.encrypt("hello"))), "hello");
  assert.equal(decoder.decode(await fa.decrypt(await fb.encrypt("and back"))), "and back");
  // fernetFor is the same agreement from an already decoded y.
  const fc = await fernetFor(group, a, b.publicKey);
  assert.equal(decoder.decode(await fc.decrypt(await fb.encrypt("again"))), "again");
});

Deno.test("agreeFernet: a different peer key gives a different key", async () => {
  const a = generateKeyPair(group);
  const b = generateKeyPair(group);
  const c = generateKeyPair(group);
  const ab = await agreeFernet(group, a, encodePublicKeyPem(group, b.publicKey));
  const cb = await agreeFernet(group, c, encodePublicKeyPem(group, b.publicKey));
  await assert.rejects(cb.decrypt(await ab.encrypt("hello")));
});

/** Our group's public key PEM with any `y`, including the values we refuse to encode. */
const pemWithY = (y: bigint) => dhPublicKeyPem(group.p, group.g, y);

Deno.test("agreeFernet refuses a bad peer key with DhKeyError", async () => {
  const ours = generateKeyPair(group);
  const otherGroup = { p: 2n ** 127n - 1n, g: 3n, byteLength: 16 };
  const bad: [string, string][] = [
    ["y = 0", pemWithY(0n)],
    ["y = 1", pemWithY(1n)],
    ["another group's key", encodePublicKeyPem(otherGroup, 5n)],
    ["no PEM at all", "hello"],
    ["an empty string", ""],
    ["a PEM without its END line", pemWithY(5n).replace(/-----END.*\n$/, "")],
    ["a PEM of garbage", pemEncode("PUBLIC KEY", Uint8Array.of(1, 2, 3))],
  ];
  for (const [what, peerPem] of bad) {
    await assert.rejects(agreeFernet(group, ours, peerPem), DhKeyError, what);
  }
  // The good control: the same construction with an acceptable y is taken.
  await agreeFernet(group, ours, pemWithY(5n));
});

Deno.test("fernetFor re-checks the range of a y it is handed", async () => {
  const ours = generateKeyPair(group);
  for (const y of [0n, 1n, group.p - 1n, group.p, group.p + 5n]) {
    await assert.rejects(fernetFor(group, ours, y), DhKeyError, String(y));
  }
});

Deno.test("loadLabGroup is the 4096-bit group with generator 2", () => {
  assert.equal(group.byteLength, 512);
  assert.equal(group.p.toString(2).length, 4096);
  assert.equal(group.g, 2n);
  assert.deepEqual(loadLabGroup(), group);
});
