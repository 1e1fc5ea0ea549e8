/**
 * HKDF-SHA256 (RFC 5869) through Web Crypto, and the protocol's one use of it: the Fernet key
 * from the DH shared secret (docs/protocol.md "Key derivation").
 *
 * @module
 */

const HASH_LEN = 32;

/**
 * HKDF-Extract then HKDF-Expand with SHA-256 (RFC 5869 §2.2, §2.3), `length` bytes of OKM.
 *
 * @param ikm input keying material
 * @param salt extract salt; an empty salt equals HashLen zero bytes, since HMAC zero-pads keys
 * @param info expand context; an empty info is NOT the same as a single zero byte
 * @param length 1..8160 bytes (RFC 5869 §2.3: L <= 255 * HashLen)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hkdfSha256 } from "./hkdf.ts";
 * // RFC 5869 A.3: empty salt and info.
 * const ikm = new Uint8Array(22).fill(0x0b);
 * const okm = await hkdfSha256(ikm, new Uint8Array(), new Uint8Array(), 42);
 * assert.equal(
 *   okm.toHex(),
 *   "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
 * );
 * ```
 */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  // RFC 5869 §2.3: the counter is one octet, so T(255) is the last block there is.
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_LEN) {
    throw new RangeError(`HKDF-SHA256 length must be 1..${255 * HASH_LEN} bytes`);
  }
  const prk = await crypto.subtle.importKey("raw", ikm as BufferSource, "HKDF", false, [
    "deriveBits",
  ]);
  const okm = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: salt as BufferSource, info: info as BufferSource },
    prk,
    length * 8,
  );
  return new Uint8Array(okm);
}

const ZERO_BYTE = Uint8Array.of(0);

/**
 * The 32-byte Fernet key from the DH shared secret: HKDF-SHA256 with salt = info = one 0x00
 * byte, as the lab's Python peer derives it (`HKDF(SHA256(), 32, salt=b"\x00", info=b"\x00")`).
 */
export function deriveFernetKey(sharedSecret: Uint8Array): Promise<Uint8Array> {
  return hkdfSha256(sharedSecret, ZERO_BYTE, ZERO_BYTE, 32);
}
