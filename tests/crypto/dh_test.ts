/**
 * lib/crypto/dh.ts: the group from dhparam4096.pem, key pairs, shared secrets (left-padded),
 * the public key in both SubjectPublicKeyInfo forms and every key refused, checked against a
 * textbook modPow (support/dh_reference.ts) and against pyca (an oracle run as a child process).
 */

import assert from "node:assert/strict";
import {
  computeSharedSecret,
  decodePeerPublicKey,
  DhKeyError,
  DhParamsError,
  DhPrecomputation,
  encodePublicKeyDer,
  encodePublicKeyPem,
  generateKeyPair,
  OID_DH_KEY_AGREEMENT,
  OID_DH_PUBLIC_NUMBER,
  parseDhParamsPem,
  parsePublicKeyInfo,
  PRIVATE_KEY_BITS,
  warmUp,
} from "../../lib/crypto/dh.ts";
import { fingerprint } from "../../lib/crypto/fingerprint.ts";
import { encodeBitString, encodeInteger, encodeSequence, Tag } from "../../lib/crypto/der.ts";
import { tlv } from "../../support/der.ts";
import { modPow, ModPowPrecomputation } from "../../lib/crypto/modpow.ts";
import { pemEncode } from "../../lib/crypto/pem.ts";
import { deriveFernetKey } from "../../lib/crypto/hkdf.ts";
import { Fernet } from "../../lib/crypto/fernet.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";
import { referencePow, spkiDer } from "../../support/dh_reference.ts";

const paramsPem = await Deno.readTextFile(new URL("../../dhparam4096.pem", import.meta.url));
const group = parseDhParamsPem(paramsPem);
const { p, g } = group;
const q = (p - 1n) / 2n;

const bitLength = (n: bigint) => n.toString(2).length;
const toHex = (n: bigint) => n.toString(16);

const keyError = (message: RegExp) => (e: unknown) =>
  e instanceof DhKeyError && message.test(e.message);

Deno.test("parses the shipped DH parameters", () => {
  assert.equal(bitLength(p), 4096);
  assert.equal(g, 2n);
  assert.equal(group.byteLength, 512);
  assert.ok(Object.isFrozen(group));
});

Deno.test("parseDhParamsPem rejects unusable parameter files", () => {
  const params = (...ints: bigint[]) =>
    pemEncode("DH PARAMETERS", encodeSequence(...ints.map(encodeInteger)));
  const bad = (text: string, message: RegExp) =>
    assert.throws(
      () => parseDhParamsPem(text),
      (e) => e instanceof DhParamsError && message.test(e.message),
    );
  assert.equal(parseDhParamsPem(params(p, g, 1024n)).p, p); // privateValueLength is allowed
  bad(params(p + 1n, g), /p must be odd/);
  bad(params(p, 1n), /2 <= g <= p-2/);
  bad(params(p, p - 1n), /2 <= g <= p-2/);
  bad(params(p, 0n), /malformed: INTEGER must be positive/);
  bad(params(p), /malformed: truncated/);
  bad(params(p, g, 1n, 1n), /malformed: trailing bytes/);
  bad(paramsPem.replaceAll("DH PARAMETERS", "PUBLIC KEY"), /malformed: wrong PEM label/);
  bad("", /malformed/);
});

Deno.test("generateKeyPair: exact exponent size, below p-1, y = g^x", () => {
  assert.ok(PRIVATE_KEY_BITS >= 320);
  const seen = new Set<bigint>();
  for (let i = 0; i < 5; i++) {
    const { privateKey: x, publicKey: y } = generateKeyPair(group);
    assert.equal(bitLength(x), PRIVATE_KEY_BITS);
    assert.equal(y, referencePow(g, x, p));
    seen.add(x);
  }
  assert.equal(seen.size, 5);
  const full = generateKeyPair(group, 4096);
  assert.equal(bitLength(full.privateKey), 4096);
  assert.ok(full.privateKey <= p - 2n);
  assert.equal(full.publicKey, modPow(2n, full.privateKey, p));
  for (const bits of [0, 319, 4097, 400.5, NaN]) {
    assert.throws(() => generateKeyPair(group, bits), RangeError, String(bits));
  }
});

Deno.test("our exponents are even, so our public keys lie in the subgroup of order q", () => {
  // p ≡ 3 (mod 8): g = 2 is a non-residue, and an odd x would make y one too.
  assert.equal(p % 8n, 3n);
  assert.equal(modPow(g, q, p), p - 1n);
  const precomputation = new DhPrecomputation(group);
  for (let i = 0; i < 16; i++) {
    const pair = generateKeyPair(group, PRIVATE_KEY_BITS, i % 2 ? { precomputation } : {});
    assert.equal(pair.privateKey & 1n, 0n, "x is even");
    assert.equal(modPow(pair.publicKey, q, p), 1n, "y^q = 1 (mod p)");
  }
  // A group where g is a residue has no such bit to hide: x keeps its full randomness there.
  const residue = { ...group, g: 4n };
  const odd = Array.from({ length: 32 }, () => generateKeyPair(residue).privateKey & 1n);
  assert.ok(odd.includes(1n), "some odd exponents for g = 4");
});

Deno.test("with a precomputation: the same keys and secrets, through the warm paths", () => {
  const precomputation = new DhPrecomputation(group);
  const peer = generateKeyPair(group);
  for (let i = 0; i < 3; i++) {
    const ours = generateKeyPair(group, PRIVATE_KEY_BITS, { precomputation });
    assert.equal(bitLength(ours.privateKey), PRIVATE_KEY_BITS);
    assert.equal(ours.publicKey, referencePow(g, ours.privateKey, p));
    const z = computeSharedSecret(group, ours.privateKey, peer.publicKey, { precomputation });
    assert.deepEqual(z, computeSharedSecret(group, ours.privateKey, peer.publicKey));
    assert.deepEqual(z, computeSharedSecret(group, peer.privateKey, ours.publicKey));
  }
  const full = generateKeyPair(group, 4096, { precomputation });
  assert.equal(full.publicKey, referencePow(g, full.privateKey, p));
  const { stats } = precomputation;
  assert.equal(stats.comb, 4); // every g^x
  assert.equal(stats["montgomery-window"], 3); // every y^x
  assert.equal(stats.tablesBuilt, 2); // 384 and 4096 bits
});

Deno.test("a precomputation for another group is refused", () => {
  const { privateKey } = generateKeyPair(group);
  for (const other of [new ModPowPrecomputation(p, 5n), new ModPowPrecomputation(p + 2n, g)]) {
    const options = { precomputation: other };
    assert.throws(() => generateKeyPair(group, PRIVATE_KEY_BITS, options), RangeError);
    assert.throws(() => computeSharedSecret(group, privateKey, 5n, options), RangeError);
    assert.deepEqual(other.stats.comb + other.stats["montgomery-window"], 0);
  }
});

Deno.test("two of our key pairs agree on a 512-byte secret", () => {
  const a = generateKeyPair(group), b = generateKeyPair(group);
  const za = computeSharedSecret(group, a.privateKey, b.publicKey);
  const zb = computeSharedSecret(group, b.privateKey, a.publicKey);
  assert.equal(za.length, 512);
  assert.deepEqual(za, zb);
  assert.equal(BigInt("0x" + za.toHex()), referencePow(b.publicKey, a.privateKey, p));
});

Deno.test("the shared secret is left-padded, never stripped", () => {
  // y = 4 and x = 2 give Z = 16: one significant byte after 511 zeros.
  const z = computeSharedSecret(group, 2n, 4n);
  assert.equal(z.length, 512);
  assert.deepEqual(z.subarray(0, 511), new Uint8Array(511));
  assert.equal(z[511], 16);
});

Deno.test("computeSharedSecret re-checks the peer's range and our exponent", () => {
  const x = generateKeyPair(group).privateKey;
  for (const y of [-1n, 0n, 1n, p - 1n, p, p + 2n]) {
    assert.throws(() => computeSharedSecret(group, x, y), keyError(/out of range/));
  }
  assert.throws(() => computeSharedSecret(group, 0n, 5n), RangeError);
  assert.throws(() => computeSharedSecret(group, p - 1n, 5n), RangeError);
});

Deno.test("public key PEM round-trips and decodes both SPKI forms", () => {
  const { publicKey: y } = generateKeyPair(group);
  const pem = encodePublicKeyPem(group, y);
  assert.match(
    pem,
    new RegExp(
      "^-----BEGIN PUBLIC KEY-----\n([A-Za-z0-9+/=]{64}\n)+[A-Za-z0-9+/=]+\n" +
        "-----END PUBLIC KEY-----\n$",
    ),
  );
  assert.equal(decodePeerPublicKey(group, pem).y, y);
  const pkcs3 = parsePublicKeyInfo(encodePublicKeyDer(group, y));
  assert.deepEqual(pkcs3, { algorithm: OID_DH_KEY_AGREEMENT, p, g, q: undefined, y });

  const yDer = encodeInteger(y);
  const x942 = (...extra: Uint8Array[]) =>
    spkiDer(
      OID_DH_PUBLIC_NUMBER,
      [encodeInteger(p), encodeInteger(g), encodeInteger(q), ...extra],
      yDer,
    );
  const validation = encodeSequence(encodeBitString(Uint8Array.of(1, 2, 3)), encodeInteger(7n));
  for (
    const der of [
      x942(),
      x942(encodeInteger(2n)),
      x942(validation),
      x942(encodeInteger(2n), validation),
    ]
  ) {
    assert.equal(decodePeerPublicKey(group, pemEncode("PUBLIC KEY", der)).y, y);
    assert.equal(decodePeerPublicKey(group, pemEncode("PUBLIC KEY", der)).y, y);
  }
  assert.equal(parsePublicKeyInfo(x942()).q, q);
  // PKCS#3 with the optional privateValueLength.
  const withLength = spkiDer(OID_DH_KEY_AGREEMENT, [
    encodeInteger(p),
    encodeInteger(g),
    encodeInteger(384n),
  ], yDer);
  assert.equal(decodePeerPublicKey(group, pemEncode("PUBLIC KEY", withLength)).y, y);
  // The smallest and largest acceptable y.
  assert.equal(decodePeerPublicKey(group, encodePublicKeyPem(group, 2n)).y, 2n);
  assert.equal(decodePeerPublicKey(group, encodePublicKeyPem(group, p - 2n)).y, p - 2n);
});

Deno.test("decodePeerPublicKey refuses other parameters, bad ranges and malformed keys", () => {
  const y = generateKeyPair(group).publicKey;
  const ints = (...v: bigint[]) => v.map(encodeInteger);
  const pkcs3 = (params: Uint8Array[], yDer = encodeInteger(y)) =>
    pemEncode("PUBLIC KEY", spkiDer(OID_DH_KEY_AGREEMENT, params, yDer));
  const refuse = (pem: string, message: RegExp) =>
    assert.throws(() => decodePeerPublicKey(group, pem).y, keyError(message));

  refuse(pkcs3(ints(p + 2n, g)), /different DH parameters/);
  refuse(pkcs3(ints(p, 5n)), /different DH parameters/);
  refuse(
    pemEncode("PUBLIC KEY", spkiDer(OID_DH_PUBLIC_NUMBER, ints(p, g, q - 1n), encodeInteger(y))),
    /different DH parameters/,
  );
  for (const bad of [-5n, 0n, 1n, p - 1n, p, 1n << 5000n]) {
    refuse(pkcs3(ints(p, g), encodeInteger(bad)), /out of range \(need 2 <= y <= p-2\)/);
  }
  refuse(
    pemEncode("PUBLIC KEY", spkiDer("1.2.840.10045.2.1", ints(p, g), encodeInteger(y))),
    /malformed: not a DH key/,
  );
  refuse(
    pemEncode("PUBLIC KEY", spkiDer(OID_DH_PUBLIC_NUMBER, ints(p, g), encodeInteger(y))),
    /malformed: truncated/,
  );
  refuse(pkcs3(ints(p, g, 0n)), /malformed: INTEGER must be positive/);
  refuse(pkcs3(ints(p, g, 1n, 1n)), /malformed: trailing bytes/);
  refuse(
    pkcs3(ints(p, g), tlv(Tag.OBJECT_IDENTIFIER, Uint8Array.of(1))),
    /malformed: unexpected tag/,
  );
  refuse(pkcs3(ints(p, g), new Uint8Array([...encodeInteger(y), 0])), /malformed: trailing bytes/);
  const der = encodePublicKeyDer(group, y);
  refuse(pemEncode("PUBLIC KEY", der.subarray(0, der.length - 1)), /malformed: truncated/);
  refuse(pemEncode("PUBLIC KEY", new Uint8Array([...der, 0])), /malformed: trailing bytes/);
  const unused = der.slice();
  unused[der.length - encodeInteger(y).length - 1] = 1; // the BIT STRING's unused-bits octet
  refuse(pemEncode("PUBLIC KEY", unused), /malformed: BIT STRING has unused bits/);
  refuse(
    encodePublicKeyPem(group, y).replaceAll("PUBLIC KEY", "PRIVATE KEY"),
    /malformed: wrong PEM label/,
  );
  refuse("not a key", /malformed: missing BEGIN/);
});

Deno.test("decodePeerPublicKey returns the DER a fingerprint is taken over", async () => {
  const y = generateKeyPair(group).publicKey;
  const der = encodePublicKeyDer(group, y);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der)).toHex();
  const pem = encodePublicKeyPem(group, y);
  for (
    const text of [
      pem,
      pem.replaceAll("\n", "\r\n"),
      // The key it takes: after text, past a block that is not a key.
      `Hi,\n-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n${pem}`,
    ]
  ) {
    const key = decodePeerPublicKey(group, text);
    assert.deepEqual(key.der, der);
    assert.equal(await fingerprint(key.der), `SHA256:${digest}`);
  }
});

Deno.test("decodePeerPublicKey takes the first block that is a key, and only a DH one", () => {
  const a = generateKeyPair(group).publicKey, b = generateKeyPair(group).publicKey;
  const [pemA, pemB] = [encodePublicKeyPem(group, a), encodePublicKeyPem(group, b)];
  assert.equal(decodePeerPublicKey(group, pemA + pemB).y, a);
  const notAKey = pemEncode("PUBLIC KEY", encodeSequence(encodeInteger(1n)));
  assert.equal(decodePeerPublicKey(group, notAKey + pemB).y, b);
  // An EC key (any algorithm OpenSSL would load) stops the search: it is the key, and not ours.
  const ec = pemEncode("PUBLIC KEY", spkiDer("1.2.840.10045.2.1", [], encodeInteger(1n)));
  assert.throws(() => decodePeerPublicKey(group, ec + pemA).y, keyError(/malformed: not a DH key/));
  // A block OpenSSL would read as a key, bar the bytes after it, stops it too (DER stays strict).
  const trailing = pemEncode("PUBLIC KEY", new Uint8Array([...encodePublicKeyDer(group, a), 0]));
  assert.throws(
    () => decodePeerPublicKey(group, trailing + pemB).y,
    keyError(/malformed: trailing bytes/),
  );
  assert.throws(() => decodePeerPublicKey(group, notAKey).y, keyError(/malformed: unexpected tag/));
});

// ---------------------------------------------------------------------------------------------
// Interop with pyca/cryptography (OpenSSL)

const PY_PRELUDE = `
import json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_parameters, load_pem_public_key)
inp = json.load(sys.stdin)
params = load_pem_parameters(inp["params"].encode())
pn = params.parameter_numbers()
def pem_of(key):
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
def spki(y, q=None):
    numbers = dh.DHPublicNumbers(y, dh.DHParameterNumbers(pn.p, pn.g, q))
    return pem_of(numbers.public_key())
`;

async function pyca(script: string, input: Record<string, unknown>) {
  return JSON.parse(
    await runPython(PY_PRELUDE + script, JSON.stringify({ params: paramsPem, ...input })),
  );
}

pycaTest("pyca agrees with us in both directions, in both SPKI forms", async () => {
  const ours = generateKeyPair(group);
  const out = await pyca(
    `
theirs = params.generate_private_key()
ty = theirs.public_key().public_numbers().y
print(json.dumps({
    "pem": pem_of(theirs.public_key()),
    "x942": spki(ty, (pn.p - 1) // 2),
    "z": theirs.exchange(load_pem_public_key(inp["ours"].encode())).hex(),
}))
`,
    { ours: encodePublicKeyPem(group, ours.publicKey) },
  );
  const theirY = decodePeerPublicKey(group, out.pem).y;
  assert.equal(decodePeerPublicKey(group, out.x942).y, theirY);
  // Under this label OpenSSL's X9.42 decoder takes the key too, and so do we.
  const x942Label = out.x942.replaceAll("PUBLIC KEY", "X9.42 DH PARAMETERS");
  assert.equal(decodePeerPublicKey(group, x942Label).y, theirY);
  assert.equal(parsePublicKeyInfo(pemDecodeDer(out.x942)).algorithm, OID_DH_PUBLIC_NUMBER);
  assert.equal(computeSharedSecret(group, ours.privateKey, theirY).toHex(), out.z);
});

pycaTest("pyca takes our public keys and finds them in the subgroup, as its own", async () => {
  const ours = Array.from({ length: 8 }, () => generateKeyPair(group));
  const out = await pyca(
    `
q = (pn.p - 1) // 2
theirs = [params.generate_private_key() for _ in range(4)]
print(json.dumps({
    "ours_in_subgroup": [pow(load_pem_public_key(k.encode()).public_numbers().y, q, pn.p) == 1
                         for k in inp["ours"]],
    "theirs_in_subgroup": [pow(t.public_key().public_numbers().y, q, pn.p) == 1 for t in theirs],
    "z": [theirs[0].exchange(load_pem_public_key(k.encode())).hex() for k in inp["ours"]],
    "pem": pem_of(theirs[0].public_key()),
}))
`,
    { ours: ours.map((pair) => encodePublicKeyPem(group, pair.publicKey)) },
  );
  assert.deepEqual(out.ours_in_subgroup, ours.map(() => true));
  // OpenSSL draws its exponents the same way for this group: ours look like pyca's.
  assert.deepEqual(out.theirs_in_subgroup, [true, true, true, true]);
  const theirY = decodePeerPublicKey(group, out.pem).y;
  assert.deepEqual(
    out.z,
    ours.map((pair) => computeSharedSecret(group, pair.privateKey, theirY).toHex()),
  );
});

function pemDecodeDer(pem: string): Uint8Array {
  return Uint8Array.fromBase64(pem.split("\n").filter((l) => l && !l.startsWith("-----")).join(""));
}

pycaTest("our SPKI PEM is byte-identical to pyca's for the same y", async () => {
  const ys = [
    generateKeyPair(group).publicKey,
    generateKeyPair(group).publicKey,
    2n,
    255n,
    p - 2n,
    1n << 4095n, // top bit set: INTEGER gets a leading 0x00
    (1n << 4088n) - 1n, // one byte shorter than p
  ];
  const out: string[] = await pyca(`print(json.dumps([spki(int(y, 16)) for y in inp["ys"]]))`, {
    ys: ys.map(toHex),
  });
  assert.deepEqual(ys.map((y) => encodePublicKeyPem(group, y)), out);
});

pycaTest(
  "a shared secret with a leading zero byte matches pyca, through HKDF and Fernet",
  async () => {
    const theirs = await pyca(
      `
k = params.generate_private_key()
# PKCS#8, not DHPrivateNumbers: rebuilding from numbers runs OpenSSL's DH_check (~5 s).
from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
pkcs8 = k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
print(json.dumps({"key": pkcs8, "y": hex(k.public_key().public_numbers().y)}))
`,
      {},
    );
    const theirY = BigInt(theirs.y);
    // Z(x + 1) = Z(x) * y: one multiplication per try instead of an exponentiation (~256 tries).
    let x = generateKeyPair(group).privateKey;
    let z = modPow(theirY, x, p);
    for (let tries = 0; z >= 1n << 4088n; tries++) {
      assert.ok(tries < 20_000, "no Z with a leading zero byte in 20000 tries");
      x += 1n;
      z = (z * theirY) % p;
    }
    assert.equal(bitLength(x), PRIVATE_KEY_BITS);
    const ours = computeSharedSecret(group, x, theirY);
    assert.equal(ours[0], 0);
    const key = await deriveFernetKey(ours);
    const fernet = await Fernet.create(key);
    const out = await pyca(
      `
from cryptography.fernet import Fernet
import base64
from cryptography.hazmat.primitives.serialization import load_pem_private_key
k = load_pem_private_key(inp["key"].encode(), None)
z = k.exchange(load_pem_public_key(inp["ours"].encode()))
key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\\x00", info=b"\\x00").derive(z)
f = Fernet(base64.urlsafe_b64encode(key))
print(json.dumps({
    "z": z.hex(), "key": key.hex(),
    "plain": f.decrypt(inp["token"].encode()).decode(),
    "token": f.encrypt(b"from pyca").decode(),
}))
`,
      {
        key: theirs.key,
        ours: encodePublicKeyPem(group, modPow(g, x, p)),
        token: await fernet.encrypt("from deno"),
      },
    );
    assert.equal(out.z, ours.toHex());
    assert.equal(out.key, key.toHex());
    assert.equal(out.plain, "from deno");
    assert.equal(new TextDecoder().decode(await fernet.decrypt(out.token)), "from pyca");
  },
);

Deno.test("warmUp changes nothing but speed: key agreement still matches the textbook", () => {
  const a = generateKeyPair(group);
  warmUp(group);
  const b = generateKeyPair(group);
  warmUp(group);
  const z = computeSharedSecret(group, a.privateKey, b.publicKey);
  const expected = referencePow(b.publicKey, a.privateKey, group.p);
  assert.equal(BigInt("0x" + z.toHex()), expected);
  assert.deepEqual(z, computeSharedSecret(group, b.privateKey, a.publicKey));
});
