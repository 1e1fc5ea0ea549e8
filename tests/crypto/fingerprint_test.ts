/** lib/crypto/fingerprint.ts: the SHA256: form of a key's fingerprint, computed and parsed. */

import assert from "node:assert/strict";
import { fingerprint, FingerprintError, parseFingerprint } from "../../lib/crypto/fingerprint.ts";

Deno.test("fingerprint is SHA256: and lowercase hex of SHA-256 (FIPS 180-2 vectors)", async () => {
  assert.equal(
    await fingerprint(new Uint8Array()),
    "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    await fingerprint(new TextEncoder().encode("abc")),
    "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("parseFingerprint canonicalises any case and refuses everything else", () => {
  const hex = "0123456789abcdef".repeat(4);
  for (const text of [`SHA256:${hex}`, `sha256:${hex.toUpperCase()}`, `Sha256:${hex}`]) {
    assert.equal(parseFingerprint(text), `SHA256:${hex}`);
  }
  const refused = [
    "",
    hex,
    `SHA256:${hex.slice(1)}`,
    `SHA256:${hex}0`,
    `SHA256:${hex.slice(1)}g`,
    `SHA256: ${hex}`,
    ` SHA256:${hex}`,
    `SHA256:${hex}\n`,
    `MD5:${hex}`,
    `SHA256:${btoa("x".repeat(32)).replace(/=+$/, "")}`,
  ];
  for (const text of refused) {
    assert.throws(() => parseFingerprint(text), (error) => {
      assert.ok(error instanceof FingerprintError);
      assert.equal(error.name, "FingerprintError");
      assert.equal(error.message, 'expected "SHA256:" followed by 64 hex digits');
      return true;
    }, JSON.stringify(text));
  }
});
