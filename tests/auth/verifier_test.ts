/**
 * lib/auth/verifier.ts: the client's pairing of key exchange responses (step 2) with signatures
 * (step 2b), with real keys: Ed25519 identities and signatures from lib/auth/identity.ts and
 * lib/auth/signature.ts, DH keys of the lab group. Either order, substitutions, strangers, junk,
 * what the summary says when nothing verified, memory that stays bounded under a flood, and the
 * work a flood costs (Web Crypto's verify and digest counted as they are called).
 */

import assert from "node:assert/strict";
import { signKeyExchange } from "../../lib/auth/signature.ts";
import { encodePublicKeyDer, encodePublicKeyPem, generateKeyPair } from "../../lib/crypto/dh.ts";
import { Identity } from "../../lib/auth/identity.ts";
import { KEPT, KeyExchangeVerifier, REMEMBERED } from "../../lib/auth/verifier.ts";
import { loadLabGroup } from "../../lib/protocol/key_agreement.ts";
import { dhPublicKeyPem } from "../../support/dh_reference.ts";

/** A text as the UTF-8 bytes that travel. */
const bytes = (text: string) => new TextEncoder().encode(text);

const group = loadLabGroup();
const encoder = new TextEncoder();
const NETID = "alice";

/** One exchange: our key A, the responder's B, and the responder's identity. */
async function exchange() {
  const { identity } = await Identity.generate();
  const ours = generateKeyPair(group);
  const theirs = generateKeyPair(group);
  const a = encodePublicKeyDer(group, ours.publicKey);
  const b = encodePublicKeyDer(group, theirs.publicKey);
  return {
    identity,
    a,
    b,
    y: theirs.publicKey,
    /** Step 2 as it travels: the responder's public key PEM. */
    keyPayload: encoder.encode(encodePublicKeyPem(group, theirs.publicKey)),
    /** Step 2b as the responder makes it. */
    signature: async () => bytes(await signKeyExchange(identity, NETID, a, b)),
    verifier: (trusted: string[] = [identity.fingerprint]) =>
      new KeyExchangeVerifier(group, NETID, a, new Set(trusted)),
  };
}

/** A valid public key of the group that no one holds the private key of (cheap to make). */
function strangerKey(i: number): { der: Uint8Array; payload: Uint8Array } {
  const y = 1000n + BigInt(i);
  return {
    der: encodePublicKeyDer(group, y),
    payload: encoder.encode(encodePublicKeyPem(group, y)),
  };
}

Deno.test("signature before key: the key completes the pair", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  assert.equal(await verifier.offerSignature(await x.signature()), undefined);
  const match = await verifier.offerKey(x.keyPayload);
  assert.ok(match);
  assert.equal(match.y, x.y);
  assert.deepEqual(match.der, x.b);
  assert.equal(match.signedBy, x.identity.fingerprint);
  assert.equal(verifier.sawOtherExchangeSigned(), false);
});

Deno.test("key before signature: the signature completes the pair", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  assert.equal(await verifier.offerKey(x.keyPayload), undefined);
  const match = await verifier.offerSignature(await x.signature());
  assert.ok(match);
  assert.equal(match.y, x.y);
  assert.equal(match.signedBy, x.identity.fingerprint);
});

Deno.test("among several responses, the one the signature covers is taken", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  // Another client with our netid was answered too: its key is a candidate, not a match.
  assert.equal(await verifier.offerKey(strangerKey(1).payload), undefined);
  assert.equal(await verifier.offerKey(x.keyPayload), undefined);
  assert.equal(await verifier.offerKey(strangerKey(2).payload), undefined);
  const match = await verifier.offerSignature(await x.signature());
  assert.equal(match?.y, x.y);
});

Deno.test("a trusted signature over another exchange: possible man in the middle", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  // The broker gave us its own B' and let the responder's signature over (A, B) through.
  const forged = strangerKey(3);
  assert.equal(await verifier.offerKey(forged.payload), undefined);
  assert.equal(await verifier.offerSignature(await x.signature()), undefined);
  assert.equal(verifier.sawOtherExchangeSigned(), true);
  assert.equal(
    verifier.summary(),
    "1 signature by the trusted identity did not cover this key exchange: possible man in " +
      "the middle",
  );
  // Should the genuine B arrive after all, the held signature covers it.
  assert.equal((await verifier.offerKey(x.keyPayload))?.y, x.y);
});

Deno.test("a signature over another A, or for another netid, never matches", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  const otherA = strangerKey(4).der;
  await verifier.offerKey(x.keyPayload);
  assert.equal(
    await verifier.offerSignature(bytes(await signKeyExchange(x.identity, NETID, otherA, x.b))),
    undefined,
  );
  assert.equal(
    await verifier.offerSignature(bytes(await signKeyExchange(x.identity, "mallory", x.a, x.b))),
    undefined,
  );
  assert.equal(
    await verifier.offerSignature(bytes(await signKeyExchange(x.identity, NETID, x.b, x.a))),
    undefined,
    "A and B swapped",
  );
  assert.equal(verifier.sawOtherExchangeSigned(), true);
  assert.match(verifier.summary(), /^3 signatures by the trusted identity did not cover this/);
});

Deno.test("a signature by an identity we do not trust is not taken", async () => {
  const x = await exchange();
  const { identity: stranger } = await Identity.generate();
  const verifier = x.verifier();
  await verifier.offerKey(x.keyPayload);
  // A perfectly valid signature over our exact exchange, by the wrong key.
  const payload = bytes(await signKeyExchange(stranger, NETID, x.a, x.b));
  assert.equal(await verifier.offerSignature(payload), undefined);
  assert.equal(await verifier.offerSignature(payload), undefined);
  assert.equal(verifier.sawOtherExchangeSigned(), false);
  // The second is the first again: a repeat, counted as such, its signer not named again.
  assert.equal(
    verifier.summary(),
    `1 signature by other identities (${stranger.fingerprint}…); 1 repeated message ignored`,
  );
});

Deno.test("any of several trusted identities will do", async () => {
  const x = await exchange();
  const { identity: other } = await Identity.generate();
  const verifier = x.verifier([other.fingerprint, x.identity.fingerprint]);
  await verifier.offerKey(x.keyPayload);
  const match = await verifier.offerSignature(await x.signature());
  assert.equal(match?.signedBy, x.identity.fingerprint);
});

Deno.test("malformed signatures and other versions are counted, not taken", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  await verifier.offerKey(x.keyPayload);
  const good = JSON.parse(await signKeyExchange(x.identity, NETID, x.a, x.b));
  const junk = [
    encoder.encode("not json"),
    new Uint8Array(0),
    encoder.encode("[]"),
    encoder.encode(JSON.stringify({ ...good, signature: good.signature.replace(/=+$/, "") })),
    encoder.encode(JSON.stringify({ ...good, identity: undefined })),
    new Uint8Array(64 * 1024).fill(0x7b),
  ];
  for (const payload of junk) assert.equal(await verifier.offerSignature(payload), undefined);
  assert.equal(
    await verifier.offerSignature(encoder.encode(JSON.stringify({ ...good, version: 2 }))),
    undefined,
  );
  assert.equal(verifier.sawOtherExchangeSigned(), false);
  assert.equal(
    verifier.summary(),
    "6 malformed signatures; 1 signature of an unsupported version",
  );
  // The genuine one still wins after all that.
  assert.equal((await verifier.offerSignature(await x.signature()))?.y, x.y);
});

/** A PEM public key with any p, g and y, as a hostile responder could send. */
const rawKeyPayload = (p: bigint, g: bigint, y: bigint) => encoder.encode(dhPublicKeyPem(p, g, y));

Deno.test("refused key exchange responses are counted with the first reason", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  for (
    const payload of [
      rawKeyPayload(group.p, group.g, 1n),
      rawKeyPayload(group.p, group.g, group.p - 1n),
      rawKeyPayload(group.p, 5n, 12345n),
      encoder.encode("not a key"),
      new Uint8Array([0xff, 0xfe]),
      new Uint8Array(9000).fill(0x41),
    ]
  ) {
    assert.equal(await verifier.offerKey(payload), undefined);
  }
  assert.equal(
    verifier.summary(),
    "6 key exchange responses refused (peer public key is out of range (need 2 <= y <= p-2)); " +
      "no signature arrived",
  );
  const other = x.verifier();
  await other.offerKey(encoder.encode("not a key"));
  assert.match(
    other.summary(),
    /^1 key exchange response refused \(peer public key is malformed: /,
  );
});

Deno.test("summary: nothing at all, and retained messages", async () => {
  const x = await exchange();
  const verifier = x.verifier();
  assert.equal(verifier.summary(), "no key exchange response arrived; no signature arrived");
  verifier.retained();
  assert.equal(
    verifier.summary(),
    "no key exchange response arrived; no signature arrived; 1 retained (stale) message ignored",
  );
  verifier.retained();
  await verifier.offerKey(x.keyPayload);
  assert.equal(verifier.summary(), "no signature arrived; 2 retained (stale) messages ignored");
  assert.equal(verifier.sawOtherExchangeSigned(), false);
});

Deno.test("memory stays bounded under a flood of keys and signatures", async () => {
  const x = await exchange();
  const FLOOD = 200;

  // The genuine key, then a flood of other responses: it is forgotten, the latest are kept.
  const keys = x.verifier();
  await keys.offerKey(x.keyPayload);
  const flood = Array.from({ length: FLOOD }, (_, i) => strangerKey(100 + i));
  for (const key of flood) assert.equal(await keys.offerKey(key.payload), undefined);
  assert.equal(await keys.offerSignature(await x.signature()), undefined, "the first is gone");
  const last = flood.at(-1)!;
  const covering = bytes(await signKeyExchange(x.identity, NETID, x.a, last.der));
  assert.ok(await keys.offerSignature(covering), "the latest is still held");

  // The genuine signature, then a flood of trusted ones over other exchanges: the same.
  const signatures = x.verifier();
  assert.equal(await signatures.offerSignature(await x.signature()), undefined);
  for (let i = 0; i < FLOOD; i++) {
    const other = bytes(await signKeyExchange(x.identity, NETID, x.a, strangerKey(1000 + i).der));
    assert.equal(await signatures.offerSignature(other), undefined);
  }
  assert.equal(await signatures.offerKey(x.keyPayload), undefined, "the first is gone");
  // What the summary counts is what is held, not what arrived.
  const [held] = signatures.summary().match(/^\d+/) ?? [];
  assert.ok(Number(held) < FLOOD, signatures.summary());
  assert.ok(await signatures.offerKey(strangerKey(1000 + FLOOD - 1).payload));
});

/** Counts the calls of `crypto.subtle[name]` while `fn` runs; the real method does the work. */
async function counting<T>(name: "verify" | "digest", fn: () => Promise<T>) {
  const subtle = crypto.subtle as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = subtle[name];
  let calls = 0;
  subtle[name] = function (this: unknown, ...args: unknown[]) {
    calls++;
    return original.apply(this, args);
  };
  try {
    return { result: await fn(), calls: () => calls };
  } finally {
    subtle[name] = original;
  }
}

/** The flood of the issue: valid fake keys, and genuine signatures over other exchanges. */
async function recordedFlood(x: Awaited<ReturnType<typeof exchange>>, keys = 8, signatures = 16) {
  return {
    keys: Array.from({ length: keys }, (_, i) => strangerKey(5000 + i).payload),
    signatures: await Promise.all(
      Array.from({ length: signatures }, async (_, i) => {
        const oldA = strangerKey(9000 + i).der;
        const oldB = strangerKey(9500 + i).der;
        return bytes(await signKeyExchange(x.identity, NETID, oldA, oldB));
      }),
    ),
  };
}

Deno.test("a flood of repeats: each pair is verified once, and a repeat costs no crypto", async () => {
  const x = await exchange();
  const flood = await recordedFlood(x);
  const verifier = x.verifier();
  const ROUNDS = 200;
  const { calls } = await counting("verify", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < flood.signatures.length; i++) {
        assert.equal(await verifier.offerKey(flood.keys[i % flood.keys.length]), undefined);
        assert.equal(await verifier.offerSignature(flood.signatures[i]), undefined);
      }
    }
  });
  // 8 keys and 16 signatures make 128 pairs; 6,400 messages, nothing verified twice.
  assert.equal(calls(), flood.keys.length * flood.signatures.length);
  const repeats = ROUNDS * 2 * flood.signatures.length - flood.keys.length -
    flood.signatures.length;
  assert.match(verifier.summary(), new RegExp(`; ${repeats} repeated messages ignored$`));
  // And the fingerprint of the one identity was taken once, however many signatures it made.
  const { calls: digests } = await counting("digest", async () => {
    const more = await recordedFlood(x, 0, 4);
    for (const signature of more.signatures) await verifier.offerSignature(signature);
  });
  assert.equal(digests(), 0);
});

for (const order of ["key first", "signature first"]) {
  Deno.test(`a genuine exchange arriving during a replaying flood still wins (${order})`, async () => {
    const x = await exchange();
    const flood = await recordedFlood(x);
    const verifier = x.verifier();
    const pour = async (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < flood.signatures.length; i++) {
          assert.equal(await verifier.offerKey(flood.keys[i % flood.keys.length]), undefined);
          assert.equal(await verifier.offerSignature(flood.signatures[i]), undefined);
        }
      }
    };
    await pour(3); // every slot held, by the flood
    const first = order === "key first"
      ? await verifier.offerKey(x.keyPayload)
      : await verifier.offerSignature(await x.signature());
    assert.equal(first, undefined);
    await pour(50); // repeats only: nothing the genuine one could be pushed out by
    const match = order === "key first"
      ? await verifier.offerSignature(await x.signature())
      : await verifier.offerKey(x.keyPayload);
    assert.equal(match?.signedBy, x.identity.fingerprint);
    assert.equal(match?.y, x.y);
  });
}

Deno.test("new junk is bounded work: each new message is verified against at most KEPT", async () => {
  const x = await exchange();
  const flood = await recordedFlood(x, 0, KEPT);
  const verifier = x.verifier();
  for (const signature of flood.signatures) await verifier.offerSignature(signature);
  // Every key new: each is verified against the KEPT signatures held, and no more.
  const { calls } = await counting("verify", async () => {
    for (let i = 0; i < 3 * KEPT; i++) await verifier.offerKey(strangerKey(20_000 + i).payload);
  });
  assert.equal(calls(), 3 * KEPT * KEPT);
  // An untrusted identity's signatures, however many and all new, are never verified.
  const { identity: stranger } = await Identity.generate();
  const { calls: untrusted } = await counting("verify", async () => {
    for (let i = 0; i < 50; i++) {
      const other = strangerKey(30_000 + i).der;
      await verifier.offerSignature(bytes(await signKeyExchange(stranger, NETID, x.a, other)));
    }
  });
  assert.equal(untrusted(), 0);
  // Payloads over their limits are refused unread: nothing is remembered of them.
  const huge = new Uint8Array(64 * 1024).fill(0x41);
  for (let i = 0; i < REMEMBERED + 1; i++) await verifier.offerKey(huge);
  assert.match(
    verifier.summary(),
    /\d+ key exchange responses refused \(peer public key is malformed: 65536 bytes/,
  );
});
