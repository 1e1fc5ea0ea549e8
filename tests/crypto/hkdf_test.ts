/**
 * lib/crypto/hkdf.ts: HKDF-SHA256 against RFC 5869, and the session's Fernet key as pyca
 * derives it (pyca run as a child process).
 */

import assert from "node:assert/strict";
import { deriveBoundKey, deriveFernetKey, hkdfSha256 } from "../../lib/crypto/hkdf.ts";
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

// The known answers of the authenticated extension (pyca's HKDF), for Z = 512 bytes of 0x01.
const Z_ONES = new Uint8Array(512).fill(1);
const KNOWN = {
  lab: "22cdf46f081e7d080182f37f3d8bdfde7d5c21db5a5cb005a88966253cffbcc7",
  request: "53a98e432afd27e0dafd95fe01f283eea4795abb38dac83e9694c7d83acbfaf8",
  response: "d902ef05a561d206f3c774d58bdc8512a15439962f90dc7f2f868c54fd3160bd",
};

Deno.test("bound token keys: the extension's known answers, and each binding apart", async () => {
  assert.equal((await deriveFernetKey(Z_ONES)).toHex(), KNOWN.lab);
  const binding = { netid: "le0nh4rt", action: "uppercase" };
  const request = await deriveBoundKey(Z_ONES, { direction: "request", ...binding });
  const response = await deriveBoundKey(Z_ONES, { direction: "response", ...binding });
  assert.equal(request.toHex(), KNOWN.request);
  assert.equal(response.toHex(), KNOWN.response);
  // Another action or netid is another key: a token cannot be moved between them.
  const keys = new Set([KNOWN.lab, KNOWN.request, KNOWN.response]);
  for (
    const other of [
      { direction: "request", netid: "le0nh4rt", action: "reverse" },
      { direction: "request", netid: "le0nh4r", action: "tuppercase" }, // the separator counts
      { direction: "request", netid: "alice", action: "uppercase" },
    ] as const
  ) {
    keys.add((await deriveBoundKey(Z_ONES, other)).toHex());
  }
  assert.equal(keys.size, 6);
  for (const netid of ["a\0b", "\ud800"]) {
    assert.throws(
      () => deriveBoundKey(Z_ONES, { direction: "request", netid, action: "x" }),
      RangeError,
    );
  }
});

pycaTest("bound token keys match pyca's HKDF with the extension's info", async () => {
  const z = crypto.getRandomValues(new Uint8Array(512));
  const bindings = [
    { direction: "request", netid: "le0nh4rt", action: "title-case" },
    { direction: "response", netid: "ünï", action: "reverse" },
  ] as const;
  const out = await runPython(
    `
import json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
inp = json.loads(sys.stdin.read())
for b in inp["bindings"]:
    info = b"secure_mqtt token v1\\x00" + "\\x00".join(
        [b["direction"], b["netid"], b["action"]]).encode("utf-8")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\\x00", info=info)
    print(hkdf.derive(bytes.fromhex(inp["z"])).hex())
`,
    JSON.stringify({ z: z.toHex(), bindings }),
  );
  const ours = await Promise.all(bindings.map(async (b) => (await deriveBoundKey(z, b)).toHex()));
  assert.deepEqual(ours, out.trim().split("\n"));
});
