/**
 * lib/crypto/fernet.ts: the spec's vectors, tampering, a fresh IV per token, the MAC checked
 * before decryption, ttl and skew as in pyca, and interop with pyca (run as a child process).
 */

import assert from "node:assert/strict";
import { Fernet, type FernetEncryptOptions, InvalidToken } from "../../lib/crypto/fernet.ts";
import { withFixedRandom } from "../../support/fixed_random.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";

interface Vector {
  desc?: string;
  token: string;
  now: string;
  ttl_sec?: number;
  iv?: number[];
  src?: string;
  secret: string;
}

const vectorsDir = new URL("./vectors/", import.meta.url);
const load = async (name: string): Promise<Vector[]> =>
  JSON.parse(await Deno.readTextFile(new URL(`${name}.json`, vectorsDir)));
const [generate, verify, invalid] = await Promise.all(
  ["generate", "verify", "invalid"].map(load),
);
const seconds = (iso: string) => Date.parse(iso) / 1000;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const isInvalidToken = (e: unknown) => e instanceof InvalidToken && e.message === "invalid token";

Deno.test("spec vectors: generate (with the vector's IV as the only random bytes)", async () => {
  assert.ok(generate.length > 0);
  for (const v of generate) {
    const f = await Fernet.fromBase64Key(v.secret);
    const iv = Uint8Array.from(v.iv!);
    const token = await withFixedRandom(iv, () => f.encrypt(v.src!, { timestamp: seconds(v.now) }));
    assert.equal(token, v.token);
  }
  assert.notEqual(
    crypto.getRandomValues(new Uint8Array(16)).toHex(),
    "000102030405060708090a0b0c0d0e0f",
  );
});

Deno.test("spec vectors: verify", async () => {
  assert.ok(verify.length > 0);
  for (const v of verify) {
    const f = await Fernet.fromBase64Key(v.secret);
    assert.equal(text(await f.decrypt(v.token, { ttl: v.ttl_sec, now: seconds(v.now) })), v.src);
  }
});

for (const v of invalid) {
  Deno.test(`spec vectors: invalid: ${v.desc}`, async () => {
    const f = await Fernet.fromBase64Key(v.secret);
    await assert.rejects(
      f.decrypt(v.token, { ttl: v.ttl_sec, now: seconds(v.now) }),
      isInvalidToken,
    );
  });
}

const key = crypto.getRandomValues(new Uint8Array(32));
const fernet = await Fernet.create(key);

Deno.test("round-trips strings and bytes; emits padded base64url", async () => {
  for (const data of ["", "hello", "x".repeat(16), "ünïcode ✓", new Uint8Array(1000).fill(7)]) {
    const token = await fernet.encrypt(data);
    assert.match(token, /^[A-Za-z0-9_-]+=*$/);
    assert.equal(token.length % 4, 0);
    const plain = await fernet.decrypt(token);
    assert.deepEqual(plain, typeof data === "string" ? new TextEncoder().encode(data) : data);
    assert.deepEqual(await fernet.decrypt(new TextEncoder().encode(token)), plain);
  }
});

Deno.test("any changed byte is an InvalidToken, and so is a missing padding", async () => {
  const token = await fernet.encrypt("a message of some length");
  const raw = Uint8Array.fromBase64(token, { alphabet: "base64url" });
  for (let i = 0; i < raw.length; i++) {
    const bad = raw.slice();
    bad[i] ^= 1 << (i % 8);
    await assert.rejects(fernet.decrypt(bad.toBase64({ alphabet: "base64url" })), isInvalidToken);
  }
  await assert.rejects(fernet.decrypt(token.replace(/=+$/, "")), isInvalidToken);
  // Standard base64 differs from base64url only where '+' or '/' appear: find such a token.
  let standard = raw.toBase64();
  while (standard === token) {
    standard = Uint8Array.fromBase64(await fernet.encrypt("x"), { alphabet: "base64url" })
      .toBase64();
  }
  await assert.rejects(fernet.decrypt(standard), isInvalidToken); // wrong alphabet
  await assert.rejects(fernet.decrypt(token.slice(0, -8)), isInvalidToken);
  const other = await Fernet.create(crypto.getRandomValues(new Uint8Array(32)));
  await assert.rejects(other.decrypt(token), isInvalidToken);
});

Deno.test("the IV is fresh for every token; a caller cannot choose it", async () => {
  const ivOf = (token: string) =>
    Uint8Array.fromBase64(token, { alphabet: "base64url" }).subarray(9, 25).toHex();
  const ts = 1_700_000_000;
  const tokens = await Promise.all(
    Array.from({ length: 8 }, () => fernet.encrypt("same", { timestamp: ts })),
  );
  assert.equal(new Set(tokens.map(ivOf)).size, 8);
  // An `iv` smuggled past the type is ignored.
  const smuggled = { timestamp: ts, iv: new Uint8Array(16) } as FernetEncryptOptions;
  assert.notEqual(ivOf(await fernet.encrypt("same", smuggled)), "00".repeat(16));
});

Deno.test("the MAC is verified before anything is decrypted", async () => {
  const token = await fernet.encrypt("secret");
  const raw = Uint8Array.fromBase64(token, { alphabet: "base64url" });
  raw[raw.length - 1] ^= 1;
  const forged = raw.toBase64({ alphabet: "base64url" });
  const subtle = crypto.subtle;
  const original = subtle.decrypt;
  let decrypts = 0;
  subtle.decrypt = function (...args: Parameters<SubtleCrypto["decrypt"]>) {
    decrypts++;
    return original.apply(subtle, args);
  };
  try {
    await assert.rejects(fernet.decrypt(forged), isInvalidToken);
    assert.equal(decrypts, 0);
    await fernet.decrypt(token);
    assert.equal(decrypts, 1);
  } finally {
    subtle.decrypt = original;
  }
});

Deno.test("ttl and skew as in pyca: stale after ts + ttl, refused beyond now + 60", async () => {
  const ts = 1_700_000_000;
  const token = await fernet.encrypt("t", { timestamp: ts });
  assert.equal(text(await fernet.decrypt(token, { ttl: 10, now: ts + 10 })), "t");
  await assert.rejects(fernet.decrypt(token, { ttl: 10, now: ts + 11 }), isInvalidToken);
  assert.equal(text(await fernet.decrypt(token, { ttl: 10, now: ts - 60 })), "t");
  await assert.rejects(fernet.decrypt(token, { ttl: 10, now: ts - 61 }), isInvalidToken);
  // Without a ttl pyca checks no time at all: a peer whose clock is off either way still works.
  assert.equal(text(await fernet.decrypt(token, { now: ts + 1_000_000 })), "t");
  assert.equal(text(await fernet.decrypt(token, { now: ts - 3600 })), "t");
  assert.equal(text(await fernet.decrypt(await fernet.encrypt("n"), { ttl: 5 })), "n");
});

Deno.test("keys and options are checked, with ordinary errors", async () => {
  await assert.rejects(Fernet.create(new Uint8Array(31)), TypeError);
  await assert.rejects(Fernet.fromBase64Key("c2hvcnQ="), TypeError);
  await assert.rejects(Fernet.fromBase64Key("%%%"), TypeError);
  assert.equal((await Fernet.fromBase64Key(Fernet.generateKey())) instanceof Fernet, true);
  assert.equal(Fernet.generateKey().length, 44);
  await assert.rejects(fernet.encrypt("x", { timestamp: -1 }), RangeError);
  await assert.rejects(fernet.encrypt("x", { timestamp: 1.5 }), RangeError);
  await assert.rejects(fernet.decrypt("x", { ttl: 1.5 }), RangeError);
});

pycaTest("pyca decrypts our tokens and we decrypt pyca's", async () => {
  const ours = await Promise.all(
    ["", "hello", "ünïcode ✓", "y".repeat(100)].map((m) => fernet.encrypt(m)),
  );
  const out = JSON.parse(
    await runPython(
      `
import base64, json, sys
from cryptography.fernet import Fernet
inp = json.load(sys.stdin)
f = Fernet(inp["key"])
print(json.dumps({
    "plain": [f.decrypt(t.encode()).decode() for t in inp["tokens"]],
    "tokens": [f.encrypt(m.encode()).decode() for m in ["", "from pyca", "ü" * 40]],
}))
`,
      JSON.stringify({ key: key.toBase64({ alphabet: "base64url" }), tokens: ours }),
    ),
  );
  assert.deepEqual(out.plain, ["", "hello", "ünïcode ✓", "y".repeat(100)]);
  const theirs = await Promise.all(
    out.tokens.map(async (t: string) => text(await fernet.decrypt(t, { ttl: 60 }))),
  );
  assert.deepEqual(theirs, ["", "from pyca", "ü".repeat(40)]);
});
