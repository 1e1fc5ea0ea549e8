/**
 * lib/auth/identity.ts: the responder's Ed25519 identity loaded from the PEM files openssl and
 * pyca write (and refused for every other key, form or damage), generated, signing, and its
 * fingerprint. openssl and pyca serve as reference oracles, run as child processes: no broker
 * and no program of ours, so this is an in-process test.
 */

import assert from "node:assert/strict";
import {
  Identity,
  IdentityError,
  type IdentityErrorKind,
  isEd25519Spki,
} from "../../lib/auth/identity.ts";
import { fingerprint } from "../../lib/crypto/fingerprint.ts";
import { encodeOid, encodeSequence, Tag } from "../../lib/crypto/der.ts";
import { tlv } from "../../support/der.ts";
import { pemEncode } from "../../lib/crypto/pem.ts";
import { pycaTest, runPython } from "../../support/pyca.ts";
import { opensslSkipReason } from "../../support/tls.ts";

// Keys come from the real tools at run time, so no key material is committed.

/** A Deno.test that needs the openssl CLI (a reference, like pyca): skipped without it. */
function opensslTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({ name, ignore: opensslSkipReason() !== undefined, fn });
}

async function openssl(args: string[], stdin = ""): Promise<Uint8Array> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const { success, code, stdout, stderr } = await child.output();
  if (!success) {
    throw new Error(`openssl ${args[0]} exited ${code}: ${new TextDecoder().decode(stderr)}`);
  }
  return stdout;
}

const opensslText = async (args: string[], stdin?: string) =>
  new TextDecoder().decode(await openssl(args, stdin));

const sha256Hex = async (bytes: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)).toHex();

/** Asserts that loading `text` fails with `kind`, on one line, without echoing the body. */
async function assertRefused(text: string, kind: IdentityErrorKind, message: RegExp) {
  await assert.rejects(Identity.fromPem(text), (error) => {
    assert.ok(error instanceof IdentityError, String(error));
    assert.equal(error.name, "IdentityError");
    assert.equal(error.kind, kind, error.message);
    assert.match(error.message, message);
    assert.doesNotMatch(error.message, /[\r\n]/);
    for (const line of text.split("\n")) {
      if (line.length >= 16 && !line.startsWith("-----")) {
        assert.ok(!error.message.includes(line), "the message echoes the key");
      }
    }
    return true;
  });
}

const PYCA_ED25519 = `
import hashlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat)
key = Ed25519PrivateKey.generate()
spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
print(spki.hex())
print("SHA256:" + hashlib.sha256(spki).hexdigest())
print(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(), end="")
`;

opensslTest(
  "fromPem loads `openssl genpkey -algorithm ed25519`, public key as openssl says",
  async () => {
    const pem = await opensslText(["genpkey", "-algorithm", "ed25519"]);
    const identity = await Identity.fromPem(pem);
    const spki = await openssl(["pkey", "-pubout", "-outform", "DER"], pem);
    assert.deepEqual(identity.publicKeyDer, spki);
    assert.equal(identity.fingerprint, "SHA256:" + (await sha256Hex(spki)));
  },
);

pycaTest("fromPem loads a pyca PKCS#8 key; fingerprint = pyca's SPKI through hashlib", async () => {
  const [spkiHex, fingerprint, ...pemLines] = (await runPython(PYCA_ED25519)).split("\n");
  const identity = await Identity.fromPem(pemLines.join("\n"));
  assert.equal(identity.publicKeyDer.toHex(), spkiHex);
  assert.equal(identity.fingerprint, fingerprint);
  assert.match(identity.fingerprint, /^SHA256:[0-9a-f]{64}$/);
});

opensslTest("fromPem refuses the keys openssl makes for other algorithms and forms", async (t) => {
  const genpkey = (...args: string[]) => opensslText(["genpkey", ...args]);
  const traditional = (pem: string) => opensslText(["pkey", "-traditional"], pem);
  const rsa = await genpkey("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024");
  const ec = await genpkey("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256");
  const ed25519 = await genpkey("-algorithm", "ed25519");
  const cases: [string, string, IdentityErrorKind, RegExp][] = [
    ["RSA, PKCS#8", rsa, "wrong-algorithm", /^holds an RSA key; .*Ed25519/],
    ["RSA, PKCS#1", await traditional(rsa), "wrong-algorithm", /^holds an RSA key; /],
    ["EC, PKCS#8", ec, "wrong-algorithm", /^holds an EC key; /],
    ["EC, SEC1", await traditional(ec), "wrong-algorithm", /^holds an EC key; /],
    ["X25519", await genpkey("-algorithm", "x25519"), "wrong-algorithm", /^holds an X25519 key/],
    ["Ed448", await genpkey("-algorithm", "ed448"), "wrong-algorithm", /^holds an Ed448 key; /],
    [
      "encrypted PKCS#8",
      await genpkey("-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:x"),
      "encrypted",
      /^is encrypted \(ENCRYPTED PRIVATE KEY\); store it unencrypted/,
    ],
    [
      "public key",
      await opensslText(["pkey", "-pubout"], ed25519),
      "public-key",
      /^is a public key; /,
    ],
  ];
  for (const [name, pem, kind, message] of cases) {
    await t.step(name, () => assertRefused(pem, kind, message));
  }
});

Deno.test("fromPem refuses garbage, empty files, damaged and doubled PEM", async (t) => {
  const { pem } = await Identity.generate();
  const { pem: other } = await Identity.generate();
  const body = pem.split("\n")[1];
  const cases: [string, string, IdentityErrorKind, RegExp][] = [
    ["empty", "", "not-pem", /^is empty; /],
    ["blank", " \n\n", "not-pem", /^is empty; /],
    ["garbage", "hello, world\n", "not-pem", /^is not a PEM private key; /],
    ["bare base64", body + "\n", "not-pem", /^is not a PEM private key; /],
    [
      "another PEM type",
      pem.replaceAll("PRIVATE KEY", "OPENSSH PRIVATE KEY"),
      "not-pem",
      /^is not a PEM private key \(OPENSSH PRIVATE KEY\); /,
    ],
    ["certificate", pem.replaceAll("PRIVATE KEY", "CERTIFICATE"), "public-key", /certificate/],
    ["two keys", pem + other, "malformed", /^holds 2 PEM blocks; /],
    ["damaged base64", pem.replace(body, body.slice(1)), "malformed", /^has a damaged PEM/],
    [
      "not PKCS#8",
      pemEncode("PRIVATE KEY", encodeSequence(tlv(Tag.INTEGER, Uint8Array.of(0)))),
      "malformed",
      /^is not a valid PKCS#8 key/,
    ],
    [
      "Ed25519 with a 31-byte key",
      pemEncode(
        "PRIVATE KEY",
        Uint8Array.fromHex("302d020100300506032b65700421041f" + "11".repeat(31)),
      ),
      "malformed",
      /^is not a valid Ed25519 private key; /,
    ],
    [
      "unknown algorithm",
      pemEncode(
        "PRIVATE KEY",
        encodeSequence(
          tlv(Tag.INTEGER, Uint8Array.of(0)),
          encodeSequence(encodeOid("1.2.3.4")),
          tlv(0x04, Uint8Array.of(0)),
        ),
      ),
      "wrong-algorithm",
      /^holds a key of another algorithm \(OID 1\.2\.3\.4\); /,
    ],
  ];
  for (const [name, text, kind, message] of cases) {
    await t.step(name, () => assertRefused(text, kind, message));
  }
});

Deno.test("fromPem reads the file as OpenSSL does: CRLF, blank lines, text around the block", async () => {
  const { identity, pem } = await Identity.generate();
  const text = "my identity, made today\n\n" + pem.replaceAll("\n", "\r\n") + "\n\ntrailing\n";
  const loaded = await Identity.fromPem(text);
  assert.equal(loaded.fingerprint, identity.fingerprint);
});

Deno.test("generate writes a PKCS#8 PEM that loads back to the same identity", async () => {
  const { identity, pem } = await Identity.generate();
  assert.match(
    pem,
    /^-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END PRIVATE KEY-----\n$/,
  );
  const loaded = await Identity.fromPem(pem);
  assert.equal(loaded.fingerprint, identity.fingerprint);
  assert.deepEqual(loaded.publicKeyDer, identity.publicKeyDer);
  assert.ok(isEd25519Spki(identity.publicKeyDer));
  assert.notEqual((await Identity.generate()).identity.fingerprint, identity.fingerprint);
});

pycaTest("generate's PEM loads in pyca, to the same public key", async () => {
  const { identity, pem } = await Identity.generate();
  const out = await runPython(
    `
import hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_private_key)
key = load_pem_private_key(sys.stdin.buffer.read(), password=None)
assert isinstance(key, Ed25519PrivateKey), type(key)
spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
print("SHA256:" + hashlib.sha256(spki).hexdigest())
`,
    pem,
  );
  assert.equal(out.trim(), identity.fingerprint);
});

Deno.test("sign gives 64 deterministic bytes that Web Crypto verifies with publicKeyDer", async () => {
  const { identity } = await Identity.generate();
  const data = new TextEncoder().encode("key exchange");
  const signature = await identity.sign(data);
  assert.equal(signature.length, 64);
  assert.deepEqual(await identity.sign(data), signature); // RFC 8032 signatures are deterministic
  const spki = identity.publicKeyDer as Uint8Array<ArrayBuffer>;
  const key = await crypto.subtle.importKey("spki", spki, "Ed25519", false, ["verify"]);
  assert.ok(await crypto.subtle.verify("Ed25519", key, signature as Uint8Array<ArrayBuffer>, data));
});

Deno.test("publicKeyDer is a copy: editing it changes neither the key nor the fingerprint", async () => {
  const { identity } = await Identity.generate();
  const copy = identity.publicKeyDer;
  copy[43] ^= 1;
  assert.notDeepEqual(identity.publicKeyDer, copy);
  assert.equal(await fingerprint(identity.publicKeyDer), identity.fingerprint);
});

Deno.test("isEd25519Spki accepts exactly the 44-byte Ed25519 SubjectPublicKeyInfo", async () => {
  const { identity } = await Identity.generate();
  const spki = identity.publicKeyDer;
  assert.ok(isEd25519Spki(spki));
  assert.ok(!isEd25519Spki(spki.subarray(0, 43)));
  assert.ok(!isEd25519Spki(Uint8Array.of(...spki, 0)));
  const x25519 = spki.slice();
  x25519[8] = 110; // OID 1.3.101.110
  assert.ok(!isEd25519Spki(x25519));
});
