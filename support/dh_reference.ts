/**
 * Diffie-Hellman made without the code under test, for checking it and for playing a hostile
 * peer: a textbook modular power, and SubjectPublicKeyInfo with any algorithm, parameters and
 * public value, none of which `lib/crypto/dh.ts` would encode (other groups, `y` out of range,
 * truncated or extra parameters).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKeyPem } from "../lib/crypto/dh.ts";
 * import { loadLabGroup } from "../lib/protocol/key_agreement.ts";
 * import { dhPublicKeyPem, referencePow } from "./dh_reference.ts";
 * const group = loadLabGroup();
 * // For a y that the library encodes, the hostile builder makes exactly its bytes.
 * assert.equal(dhPublicKeyPem(group.p, group.g, 5n), encodePublicKeyPem(group, 5n));
 * assert.equal(referencePow(4n, 13n, 497n), 445n);
 * ```
 * @module
 */

import { encodeBitString, encodeInteger, encodeOid, encodeSequence } from "../lib/crypto/der.ts";
import { pemEncode } from "../lib/crypto/pem.ts";

/** PKCS#3 dhKeyAgreement, the algorithm of the lab's keys. */
const DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1";

/** Textbook right-to-left square-and-multiply: slow, obviously right, the reference for modPow. */
export function referencePow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n % m;
  b = ((b % m) + m) % m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

/**
 * A SubjectPublicKeyInfo DER: `SEQUENCE { SEQUENCE { OID oid, SEQUENCE { ...params } },
 * BIT STRING publicKey }`, the parts given already encoded (so that any of them can be wrong).
 */
export function spkiDer(oid: string, params: Uint8Array[], publicKey: Uint8Array): Uint8Array {
  return encodeSequence(
    encodeSequence(encodeOid(oid), encodeSequence(...params)),
    encodeBitString(publicKey),
  );
}

/** A PKCS#3 public key PEM with any `p`, `g` and `y`: no range or group checks. */
export function dhPublicKeyPem(p: bigint, g: bigint, y: bigint): string {
  const der = spkiDer(DH_KEY_AGREEMENT, [encodeInteger(p), encodeInteger(g)], encodeInteger(y));
  return pemEncode("PUBLIC KEY", der);
}
