/**
 * lib/auth/signature.ts: the transcript a key-exchange signature covers, signing and verifying
 * it, and the version 1 signature message; interop with pyca (an oracle run as a child process)
 * both ways.
 */

import assert from "node:assert/strict";
import {
  encodeTranscript,
  type KeyExchangeSignature,
  parseSignatureMessage,
  SignatureMessageError,
  signKeyExchange,
} from "../../lib/auth/signature.ts";
import { Identity } from "../../lib/auth/identity.ts";
import { encodeBitString, encodeInteger, encodeOid, encodeSequence } from "../../lib/crypto/der.ts";
import { tlv } from "../../support/der.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";

/** A text as the UTF-8 bytes that travel. */
const bytes = (text: string) => new TextEncoder().encode(text);

const utf8 = (text: string) => new TextEncoder().encode(text);
const json = (value: unknown) => utf8(JSON.stringify(value));

/** Seeded xorshift32 bytes, so that a failure reproduces. */
function seededBytes(seed: number, length: number): Uint8Array {
  let s = seed;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

// DH public keys are opaque to the transcript; these have the size of a 4096-bit DH SPKI.
const A = seededBytes(1, 1061);
const B = seededBytes(2, 1062);

Deno.test("encodeTranscript lays out context, netid, A and B as the protocol says", () => {
  const a = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x05); // SEQUENCE { INTEGER 5 }
  const b = Uint8Array.of(0x30, 0x00); // empty SEQUENCE
  const expected = [
    "7365637572655f6d717474206b65792065786368616e6765207631", // "secure_mqtt key exchange v1"
    "00",
    "0007", // "jürgen" is 7 UTF-8 bytes: ü is c3 bc
    "6ac3bc7267656e",
    "00000005",
    "3003020105",
    "00000002",
    "3000",
  ].join("");
  assert.equal(encodeTranscript("jürgen", a, b).toHex(), expected);
  assert.equal(
    encodeTranscript("", new Uint8Array(), new Uint8Array()).toHex(),
    expected.slice(0, 56) + "0000" + "00000000" + "00000000",
  );
});

Deno.test("encodeTranscript refuses a netid that UTF-8 and a uint16 length cannot carry", () => {
  assert.equal(encodeTranscript("a".repeat(65535), A, B).length, 28 + 2 + 65535 + 8 + 2123);
  assert.throws(() => encodeTranscript("a".repeat(65536), A, B), RangeError);
  assert.throws(() => encodeTranscript("é".repeat(32768), A, B), RangeError); // 65536 bytes
  assert.throws(() => encodeTranscript("net\ud800id", A, B), RangeError); // lone surrogate
});

Deno.test("a signed key exchange verifies, and only for its own netid, A and B", async () => {
  const { identity } = await Identity.generate();
  const netid = "jürgen";
  const payload = bytes(await signKeyExchange(identity, netid, A, B));
  const message = await parseSignatureMessage(payload);
  assert.equal(message.fingerprint, identity.fingerprint);
  assert.deepEqual(message.identity, identity.publicKeyDer);
  assert.equal(message.signature.length, 64);
  assert.equal(await message.verify(netid, A, B), true);
  assert.equal(await message.verify(netid, A, B), true); // the cached key gives the same answer

  const flippedNetid = String.fromCharCode(netid.charCodeAt(0) ^ 1) + netid.slice(1);
  assert.equal(await message.verify(flippedNetid, A, B), false);
  assert.equal(await message.verify(netid, B, A), false);
  assert.equal(await message.verify(netid, A, B.subarray(1)), false);
  // Bounded and seeded: the same bits on every run.
  for (const bit of [0, 7, 4000, 8 * 1061 - 1]) {
    assert.equal(await message.verify(netid, flipBit(A, bit), B), false, `A bit ${bit}`);
    assert.equal(await message.verify(netid, A, flipBit(B, bit)), false, `B bit ${bit}`);
  }
  const parsed = JSON.parse(new TextDecoder().decode(payload));
  for (const bit of [0, 255, 256, 511]) {
    const signature = flipBit(message.signature, bit).toBase64();
    const forged = await parseSignatureMessage(json({ ...parsed, signature }));
    assert.equal(await forged.verify(netid, A, B), false, `signature bit ${bit}`);
  }
});

Deno.test("another identity's signature has another fingerprint and does not pass as ours", async () => {
  const { identity: ours } = await Identity.generate();
  const { identity: theirs } = await Identity.generate();
  const mine = await parseSignatureMessage(bytes(await signKeyExchange(ours, "alice", A, B)));
  const payload = bytes(await signKeyExchange(theirs, "alice", A, B));
  const other = await parseSignatureMessage(payload);
  assert.equal(other.fingerprint, theirs.fingerprint);
  assert.notEqual(other.fingerprint, mine.fingerprint);
  assert.equal(await other.verify("alice", A, B), true);
  // Their signature presented under our identity.
  const spliced = { ...JSON.parse(new TextDecoder().decode(payload)) };
  spliced.identity = ours.publicKeyDer.toBase64();
  const forged = await parseSignatureMessage(json(spliced));
  assert.equal(forged.fingerprint, ours.fingerprint);
  assert.equal(await forged.verify("alice", A, B), false);
});

Deno.test("verify works on its own copies of the identity and signature", async () => {
  const { identity } = await Identity.generate();
  const message = await parseSignatureMessage(bytes(await signKeyExchange(identity, "n", A, B)));
  message.signature.fill(0);
  message.identity.fill(0);
  assert.equal(await message.verify("n", A, B), true);
});

Deno.test("verify answers false, without throwing, for a key that is not a curve point", async () => {
  // y = 2^255 - 1 is not below the field prime: no Ed25519 public key encodes as these bytes.
  const notAPoint = Uint8Array.of(
    ...Uint8Array.fromHex("302a300506032b6570032100"),
    ...new Uint8Array(32).fill(0xff),
  );
  notAPoint[43] = 0x7f;
  const payload = json({
    version: 1,
    identity: notAPoint.toBase64(),
    signature: seededBytes(6, 64).toBase64(),
  });
  const message = await parseSignatureMessage(payload);
  assert.equal(await message.verify("n", A, B), false);
});

Deno.test("signKeyExchange writes version 1 JSON with padded standard base64", async () => {
  const { identity } = await Identity.generate();
  const text = await signKeyExchange(identity, "n", A, B);
  assert.match(
    text,
    /^\{"version":1,"identity":"[A-Za-z0-9+/]{59}=","signature":"[A-Za-z0-9+/]{86}=="\}$/,
  );
  assert.equal(JSON.parse(text).identity, identity.publicKeyDer.toBase64());
});

/** Asserts the refusal's kind, that it is one line, and that it echoes nothing it was sent. */
async function assertRefused(payload: Uint8Array, kind: SignatureMessageError["kind"]) {
  await assert.rejects(parseSignatureMessage(payload), (error) => {
    assert.ok(error instanceof SignatureMessageError, String(error));
    assert.equal(error.name, "SignatureMessageError");
    assert.equal(error.kind, kind, error.message);
    assert.doesNotMatch(error.message, /[\r\n]/);
    assert.doesNotMatch(error.message, /[A-Za-z0-9+/]{20}/, "the message echoes base64");
    return true;
  });
}

Deno.test("parseSignatureMessage refuses what is not exactly a version 1 message", async (t) => {
  const { identity: signer } = await Identity.generate();
  const good = JSON.parse(await signKeyExchange(signer, "n", A, B));
  const with_ = (changes: Record<string, unknown>) => json({ ...good, ...changes });
  const without = (name: string) => {
    const copy = { ...good };
    delete copy[name];
    return json(copy);
  };
  const x25519 = await crypto.subtle.generateKey("X25519", true, ["deriveBits"]) as CryptoKeyPair;
  const x25519Spki = new Uint8Array(await crypto.subtle.exportKey("spki", x25519.publicKey));
  assert.equal(x25519Spki.length, 44); // the same size as an Ed25519 key: only the OID differs
  const rsaSpki = encodeSequence(
    encodeSequence(encodeOid("1.2.840.113549.1.1.1"), tlv(0x05, new Uint8Array())),
    encodeBitString(encodeSequence(encodeInteger((1n << 1023n) + 1n), encodeInteger(65537n))),
  );
  const plusSlash = new Uint8Array(64).fill(0xfb); // base64 "+/v7..."
  const standard = plusSlash.toBase64();
  assert.match(standard, /\+/);
  await parseSignatureMessage(with_({ signature: standard })); // the control: accepted

  const sig: string = good.signature;
  const id: string = good.identity;
  const cases: [string, Uint8Array, SignatureMessageError["kind"]][] = [
    ["not JSON", utf8("version 1"), "malformed"],
    ["empty", new Uint8Array(), "malformed"],
    [
      "invalid UTF-8",
      Uint8Array.of(...utf8('{"version":1,"x":"'), 0xff, ...utf8('"}')),
      "malformed",
    ],
    ["byte order mark", Uint8Array.of(0xef, 0xbb, 0xbf, ...with_({})), "malformed"],
    ["JSON array", json([good]), "malformed"],
    ["JSON string", json("x"), "malformed"],
    ["JSON null", json(null), "malformed"],
    ["version 2", with_({ version: 2 }), "unsupported-version"],
    ["version 0", with_({ version: 0 }), "unsupported-version"],
    ["version 1.5", with_({ version: 1.5 }), "unsupported-version"],
    ["version 2, another shape", json({ version: 2, keys: [] }), "unsupported-version"],
    ['version "1"', with_({ version: "1" }), "malformed"],
    ["version null", with_({ version: null }), "malformed"],
    ["no version", without("version"), "malformed"],
    ["no identity", without("identity"), "malformed"],
    ["no signature", without("signature"), "malformed"],
    ["identity not a string", with_({ identity: [id] }), "malformed"],
    [
      "url-safe alphabet",
      with_({ signature: plusSlash.toBase64({ alphabet: "base64url" }) }),
      "malformed",
    ],
    ["signature without padding", with_({ signature: sig.replace(/=+$/, "") }), "malformed"],
    ["identity without padding", with_({ identity: id.replace(/=+$/, "") }), "malformed"],
    ["line break", with_({ signature: sig.slice(0, 44) + "\n" + sig.slice(44) }), "malformed"],
    ["leading space", with_({ identity: " " + id }), "malformed"],
    ["trailing space", with_({ signature: sig + " " }), "malformed"],
    ["non-zero padding bits", with_({ signature: sig.slice(0, 85) + "B==" }), "malformed"],
    ["not base64", with_({ signature: "*".repeat(88) }), "malformed"],
    ["63-byte signature", with_({ signature: seededBytes(3, 63).toBase64() }), "malformed"],
    ["65-byte signature", with_({ signature: seededBytes(3, 65).toBase64() }), "malformed"],
    ["X25519 identity", with_({ identity: x25519Spki.toBase64() }), "malformed"],
    ["RSA identity", with_({ identity: rsaSpki.toBase64() }), "malformed"],
    [
      "raw 32-byte key",
      with_({ identity: signer.publicKeyDer.subarray(12).toBase64() }),
      "malformed",
    ],
    [
      "identity with a trailing byte",
      with_({ identity: Uint8Array.of(...signer.publicKeyDer, 0).toBase64() }),
      "malformed",
    ],
    ["oversized", with_({ padding: "x".repeat(5000) }), "malformed"],
  ];
  for (const [name, payload, kind] of cases) {
    await t.step(name, () => assertRefused(payload, kind));
  }
});

Deno.test("parseSignatureMessage ignores unknown members and JSON whitespace", async () => {
  const { identity } = await Identity.generate();
  const good = JSON.parse(await signKeyExchange(identity, "n", A, B));
  const extended = { note: "x".repeat(1000), next: { version: 2 }, ...good, list: [1, 2] };
  const message = await parseSignatureMessage(utf8(JSON.stringify(extended, null, 2)));
  assert.equal(message.fingerprint, identity.fingerprint);
  assert.equal(await message.verify("n", A, B), true);
});

// A netid with a 4-byte UTF-8 character (a surrogate pair in JavaScript) and an empty one.
const INTEROP_CASES = [
  { netid: "alice", a: A, b: B },
  { netid: "jürgen/ünïcode-🦀", a: seededBytes(4, 300), b: seededBytes(5, 1062) },
  { netid: "", a: new Uint8Array(), b: Uint8Array.of(0x30, 0x00) },
];

/** The stdin of the Python side: the cases in hex, and whatever else it needs. */
const pythonRequest = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cases: INTEROP_CASES.map(({ netid, a, b }) => ({ netid, a: a.toHex(), b: b.toHex() })),
    ...extra,
  });

// Written from the protocol text, not from lib/auth/signature.ts: an independent transcript.
const PYTHON_TRANSCRIPT = `
import base64, hashlib, json, struct, sys


def transcript(netid, a, b):
    n = netid.encode("utf-8")
    return (b"secure_mqtt key exchange v1" + bytes([0])
            + struct.pack(">H", len(n)) + n
            + struct.pack(">I", len(a)) + a
            + struct.pack(">I", len(b)) + b)

request = json.loads(sys.stdin.buffer.read())
cases = request["cases"]
`;

pycaTest(
  "interop: pyca signs its own transcript, we verify it and build the same bytes",
  async () => {
    const out = JSON.parse(
      await runPython(
        PYTHON_TRANSCRIPT + `
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
key = Ed25519PrivateKey.generate()
spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
results = []
for case in cases:
    t = transcript(case["netid"], bytes.fromhex(case["a"]), bytes.fromhex(case["b"]))
    message = {"version": 1, "identity": base64.b64encode(spki).decode(),
               "signature": base64.b64encode(key.sign(t)).decode()}
    results.append({"payload": json.dumps(message), "transcript": t.hex()})
print(json.dumps({"fingerprint": "SHA256:" + hashlib.sha256(spki).hexdigest(),
                  "results": results}))
`,
        pythonRequest(),
      ),
    );
    for (const [i, { netid, a, b }] of INTEROP_CASES.entries()) {
      const { payload, transcript } = out.results[i];
      assert.equal(encodeTranscript(netid, a, b).toHex(), transcript, netid);
      const message: KeyExchangeSignature = await parseSignatureMessage(utf8(payload));
      assert.equal(message.fingerprint, out.fingerprint);
      assert.equal(await message.verify(netid, a, b), true, netid);
      assert.equal(await message.verify(netid + "x", a, b), false, netid);
    }
  },
);

pycaTest("interop: we sign, pyca verifies against the transcript it builds itself", async () => {
  const { identity } = await Identity.generate();
  const payloads = [];
  for (const { netid, a, b } of INTEROP_CASES) {
    payloads.push(await signKeyExchange(identity, netid, a, b));
  }
  const out = JSON.parse(
    await runPython(
      PYTHON_TRANSCRIPT + `
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

def check(case, payload, netid):
    message = json.loads(payload)
    assert message["version"] == 1
    spki = base64.b64decode(message["identity"], validate=True)
    key = load_der_public_key(spki)
    assert isinstance(key, Ed25519PublicKey)
    t = transcript(netid, bytes.fromhex(case["a"]), bytes.fromhex(case["b"]))
    try:
        key.verify(base64.b64decode(message["signature"], validate=True), t)
        verdict = "ok"
    except InvalidSignature:
        verdict = "bad"
    return {"fingerprint": "SHA256:" + hashlib.sha256(spki).hexdigest(), "verdict": verdict}

print(json.dumps([
    [check(case, payload, case["netid"]), check(case, payload, case["netid"] + "x")]
    for case, payload in zip(cases, request["payloads"])
]))
`,
      pythonRequest({ payloads }),
    ),
  );
  for (const [i, [honest, moved]] of out.entries()) {
    const { netid } = INTEROP_CASES[i];
    assert.deepEqual(honest, { fingerprint: identity.fingerprint, verdict: "ok" }, netid);
    assert.deepEqual(moved, { fingerprint: identity.fingerprint, verdict: "bad" }, netid);
  }
  assert.equal(out.length, INTEROP_CASES.length);
});
