/**
 * lib/crypto/hkdf.ts: HKDF-SHA256 against RFC 5869, and the session's Fernet key as pyca
 * derives it (pyca run as a child process).
 */

import assert from "node:assert/strict";
import { deriveFernetKey, hkdfSha256 } from "../../lib/crypto/hkdf.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";

const hex = (s: string) => Uint8Array.fromHex(s);
const IKM = new Uint8Array(22).fill(0x0b);

Deno.test("RFC 5869 A.1 (test case 1)", async () => {
  const okm = await hkdfSha256(
    IKM,
    hex("000102030405060708090a0b0c"),
    hex("f0f1f2f3f4f5f6f7f8f9"),
    42,
  );
  assert.equal(
    okm.toHex(),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
});

Deno.test("RFC 5869 A.3 (test case 3: empty salt and info)", async () => {
  const okm = await hkdfSha256(IKM, new Uint8Array(), new Uint8Array(), 42);
  assert.equal(
    okm.toHex(),
    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  );
});

Deno.test("a zero-byte salt equals HashLen zeros; a zero-byte info is not empty info", async () => {
  const ikm = crypto.getRandomValues(new Uint8Array(512));
  const zero = Uint8Array.of(0);
  const key = await deriveFernetKey(ikm);
  assert.equal(key.length, 32);
  assert.deepEqual(key, await hkdfSha256(ikm, new Uint8Array(32), zero, 32));
  assert.deepEqual(key, await hkdfSha256(ikm, new Uint8Array(), zero, 32));
  assert.notDeepEqual(key, await hkdfSha256(ikm, zero, new Uint8Array(), 32));
});

Deno.test("output length: 1..255*32 bytes, prefixes agree", async () => {
  const longest = await hkdfSha256(IKM, IKM, IKM, 255 * 32);
  assert.equal(longest.length, 8160);
  assert.deepEqual(await hkdfSha256(IKM, IKM, IKM, 1), longest.subarray(0, 1));
  for (const bad of [0, -1, 255 * 32 + 1, 1.5, NaN]) {
    await assert.rejects(hkdfSha256(IKM, IKM, IKM, bad), RangeError, String(bad));
  }
});

pycaTest(
  "deriveFernetKey matches pyca HKDF(SHA256, 32, salt=b'\\x00', info=b'\\x00')",
  async () => {
    const inputs = Array.from(
      { length: 8 },
      (_, i) => crypto.getRandomValues(new Uint8Array(i ? 512 : 1)),
    );
    const out = await runPython(
      `
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
for line in sys.stdin.read().split():
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\\x00", info=b"\\x00")
    print(hkdf.derive(bytes.fromhex(line)).hex())
`,
      inputs.map((b) => b.toHex()).join("\n"),
    );
    const ours = await Promise.all(inputs.map(async (b) => (await deriveFernetKey(b)).toHex()));
    assert.deepEqual(ours, out.trim().split("\n"));
  },
);
