/**
 * HKDF-SHA256 (RFC 5869) through Web Crypto, and the protocol's two uses of it: the lab's
 * Fernet key from the DH shared secret (docs/protocol.md "Key derivation"), and the bound
 * token keys of the authenticated extension (docs/protocol.md "Bound tokens").
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

/** What a bound token key is bound to: its direction, and the topic levels it travels on. */
export interface TokenBinding {
  direction: "request" | "response";
  /** One topic level: no NUL, so the zero-byte separators of the info are unambiguous. */
  netid: string;
  action: string;
}

const BOUND_CONTEXT = "secure_mqtt token v1";

/**
 * The 32-byte Fernet key of a bound token: HKDF-SHA256 of the shared secret, salt one 0x00
 * byte, info `"secure_mqtt token v1" 0x00 DIR 0x00 NETID 0x00 ACTION` (UTF-8). A token under it
 * opens only in its direction, for its netid and action: it cannot be reflected or moved.
 * Throws RangeError for a netid or action with NUL or lone surrogates, which no topic level has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveBoundKey } from "./hkdf.ts";
 * const z = new Uint8Array(512).fill(1); // docs/protocol.md's known answer
 * const key = await deriveBoundKey(z, {
 *   direction: "request",
 *   netid: "le0nh4rt",
 *   action: "uppercase",
 * });
 * assert.equal(key.toHex(), "53a98e432afd27e0dafd95fe01f283eea4795abb38dac83e9694c7d83acbfaf8");
 * ```
 */
export function deriveBoundKey(
  sharedSecret: Uint8Array,
  binding: TokenBinding,
): Promise<Uint8Array> {
  const { direction, netid, action } = binding;
  for (const level of [netid, action]) {
    if (level.includes("\0") || !level.isWellFormed()) {
      throw new RangeError("a bound token's netid and action must be valid text without NUL");
    }
  }
  const info = new TextEncoder().encode(`${BOUND_CONTEXT}\0${direction}\0${netid}\0${action}`);
  return hkdfSha256(sharedSecret, ZERO_BYTE, info, 32);
}
