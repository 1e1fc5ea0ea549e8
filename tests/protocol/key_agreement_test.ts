/**
 * lib/protocol/key_agreement.ts: the lab's group, a peer's key as it arrives (readPeerPublicKey),
 * and SessionSecret: both ends of an exchange agree, a bad peer key is refused with DhKeyError,
 * and bound token keys keep to their binding.
 */

import assert from "node:assert/strict";
import {
  loadLabGroup,
  readPeerPublicKey,
  SessionSecret,
} from "../../lib/protocol/key_agreement.ts";
import {
  DhKeyError,
  type DhKeyPair,
  encodePublicKeyPem,
  generateKeyPair,
  type PeerPublicKey,
} from "../../lib/crypto/dh.ts";
import { InvalidToken } from "../../lib/crypto/fernet.ts";
import { pemEncode } from "../../lib/crypto/pem.ts";
import { MAX_PUBLIC_KEY_PEM_BYTES } from "../../lib/protocol/limits.ts";
import { dhPublicKeyPem } from "../../support/dh_reference.ts";

const group = loadLabGroup();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The secret `ours` agrees with a peer whose public key arrives as `payload`. */
function agree(ours: DhKeyPair, payload: string | Uint8Array): SessionSecret {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  return SessionSecret.agree(group, ours, readPeerPublicKey(group, bytes).y);
}

/** Both ends of one honest exchange. */
function exchange(): [SessionSecret, SessionSecret] {
  const a = generateKeyPair(group), b = generateKeyPair(group);
  return [
    agree(a, encodePublicKeyPem(group, b.publicKey)),
    agree(b, encodePublicKeyPem(group, a.publicKey)),
  ];
}

Deno.test("SessionSecret: both ends of one exchange get the same lab key", async () => {
  const [sa, sb] = exchange();
  const fa = await sa.labFernet(), fb = await sb.labFernet();
  assert.equal(decoder.decode(await fb.decrypt(await fa.encrypt("hello"))), "hello");
  assert.equal(decoder.decode(await fa.decrypt(await fb.encrypt("and back"))), "and back");
});

Deno.test("SessionSecret: a different peer key gives a different key", async () => {
  const a = generateKeyPair(group), b = generateKeyPair(group), c = generateKeyPair(group);
  const ab = await agree(a, encodePublicKeyPem(group, b.publicKey)).labFernet();
  const cb = await agree(c, encodePublicKeyPem(group, b.publicKey)).labFernet();
  await assert.rejects(cb.decrypt(await ab.encrypt("hello")), InvalidToken);
});

Deno.test("SessionSecret: a bound token opens only under its own binding", async () => {
  const [sa, sb] = exchange();
  const binding = { direction: "request", netid: "le0nh4rt", action: "uppercase" } as const;
  const token = await (await sa.boundFernet(binding)).encrypt("transfer 100 to bob");
  assert.equal(
    decoder.decode(await (await sb.boundFernet(binding)).decrypt(token)),
    "transfer 100 to bob",
  );
  const others = [
    sb.labFernet(),
    sb.boundFernet({ ...binding, direction: "response" }), // reflected back as the answer
    sb.boundFernet({ ...binding, action: "reverse" }), // moved to another action
    sb.boundFernet({ ...binding, netid: "alice" }), // moved to another netid
  ];
  for (const other of others) await assert.rejects((await other).decrypt(token), InvalidToken);
  // And a lab token does not open as a bound one: neither kind stands in for the other.
  const lab = await (await sa.labFernet()).encrypt("hi");
  await assert.rejects((await sb.boundFernet(binding)).decrypt(lab), InvalidToken);
});

/** Our group's public key PEM with any `y`, including the values we refuse to encode. */
const pemWithY = (y: bigint) => dhPublicKeyPem(group.p, group.g, y);

Deno.test("readPeerPublicKey refuses a bad peer key with DhKeyError", () => {
  const otherGroup = { p: 2n ** 127n - 1n, g: 3n, byteLength: 16 };
  const bad: [string, string | Uint8Array][] = [
    ["y = 0", pemWithY(0n)],
    ["y = 1", pemWithY(1n)],
    ["another group's key", encodePublicKeyPem(otherGroup, 5n)],
    ["no PEM at all", "hello"],
    ["an empty string", ""],
    ["a PEM without its END line", pemWithY(5n).replace(/-----END.*\n$/, "")],
    ["a PEM of garbage", pemEncode("PUBLIC KEY", Uint8Array.of(1, 2, 3))],
    ["not UTF-8", Uint8Array.of(0xff, 0xfe)],
    ["over the size limit", `${pemWithY(5n)}${" ".repeat(MAX_PUBLIC_KEY_PEM_BYTES)}`],
  ];
  for (const [what, payload] of bad) {
    const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
    assert.throws(() => readPeerPublicKey(group, bytes), DhKeyError, what);
  }
  // The good control: the same construction with an acceptable y is taken, with its DER.
  const key: PeerPublicKey = readPeerPublicKey(group, encoder.encode(pemWithY(5n)));
  assert.equal(key.y, 5n);
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
